"""
The README's tutorial, run as written.
"""

import os
import sys

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests.e2e.harness import freePort, shortTempDir

_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "tutorial.sh")


class TutorialTests(TestCase):
    """
    docs/examples/tutorial.sh is what the README tells people to type.
    """

    timeout = 90

    @defer.inlineCallbacks
    def test_tutorialRuns(self):
        """
        The tutorial starts a hub and two devices, shows them connected and
        delivers the phone's message into the laptop's inbox.
        """
        env = dict(os.environ, BIN=os.path.dirname(sys.executable), WORK=shortTempDir(self),
                   PORT=str(freePort()), WEB_PORT=str(freePort()))
        out, err, code = yield getProcessOutputAndValue("/bin/bash", [_SCRIPT], env=env)
        out = out.decode("utf-8")
        self.assertEqual(code, 0, err.decode("utf-8") + out)
        self.assertIn("state  Hub/Connected", out)
        self.assertIn("alice@127.0.0.1/laptop  connected", out)
        self.assertIn("delivered to alice@127.0.0.1/laptop", out)
        self.assertIn("alice@127.0.0.1/phone: hello from the phone", out)
