"""
The README's tutorial, run as written.
"""

import os
import re
import sys

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.e2e.harness import freePort, shortTempDir

_ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
_SCRIPT = os.path.join(_ROOT, "docs", "examples", "tutorial.sh")
_README = os.path.join(_ROOT, "README.md")


def _commands(text: str, section: str) -> list:
    """
    The C{twistd} and C{pzctl} command lines in the code blocks of the
    README section whose title starts with C{section}, without a C{$ }
    prompt.
    """
    start = text.index("\n## " + section)
    end = text.find("\n## ", start + 1)
    body = text[start:end if end > 0 else None]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        for line in block.splitlines():
            line = line.removeprefix("$ ").strip()
            if line.startswith(("twistd ", "pzctl ")):
                commands.append(line)
    return commands


def _asScripted(command: str) -> str:
    """
    A README command as the script writes it: its ports and pairing codes
    are variables.
    """
    command = command.replace("--port 8000", '--port "$PORT"')
    command = command.replace("--web-port 9000", '--web-port "$WEB_PORT"')
    return re.sub(r"--pair '[^']*'", "--pair CODE", command)


class TutorialScriptTests(SynchronousTestCase):
    """
    The script runs the README's commands, not look-alikes.
    """

    def test_sameCommands(self):
        """
        Every C{twistd}/C{pzctl} command of the README's tutorial is a line
        of the script (ports and codes as variables), with no extra
        C{--pidfile} or C{--logfile}.
        """
        with open(_README, encoding="utf-8") as f:
            readme = _commands(f.read(), "Five-minute tutorial")
        with open(_SCRIPT, encoding="utf-8") as f:
            script = f.read()
        scriptLines = []
        for line in script.splitlines():
            line = re.sub(r"^\w+=\$\((.*)\)$", r"\1", line.split(" >")[0].strip())
            # A code piped in stands for the one a person pastes (--pair -).
            line = re.sub(r"^printf .*? \| ", "", line)
            scriptLines.append(re.sub(r'--pair "\$\w+"', "--pair CODE", line))
        self.assertGreaterEqual(len(readme), 8)
        for command in readme:
            self.assertIn(_asScripted(command), scriptLines)
        self.assertNotIn("--pidfile", script)
        self.assertNotIn("--logfile", script)


class TutorialTests(TestCase):
    """
    docs/examples/tutorial.sh is what the README tells people to type.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_tutorialRuns(self):
        """
        The tutorial starts a hub and two devices in one folder (each
        service's pid file in its own data directory, none in the folder),
        shows them connected, delivers the phone's message into the laptop's
        inbox, the phone reconnects to a restarted hub, a preference
        edited on the phone is on the laptop, and the phone calls the
        laptop's get42.
        """
        work = shortTempDir(self)
        env = dict(os.environ, BIN=os.path.dirname(sys.executable), WORK=work,
                   PORT=str(freePort()), WEB_PORT=str(freePort()))
        out, err, code = yield getProcessOutputAndValue("/bin/bash", [_SCRIPT], env=env)
        out = out.decode("utf-8")
        self.assertEqual(code, 0, err.decode("utf-8") + out)
        self.assertIn("state  Hub/Connected", out)
        self.assertIn("alice@127.0.0.1/laptop  connected", out)
        self.assertIn("delivered to alice@127.0.0.1/laptop", out)
        self.assertIn("alice@127.0.0.1/phone: hello from the phone", out)
        self.assertIn("phone reconnected", out)
        shared = out.split("phone reconnected")[1]
        self.assertEqual(len(re.findall(r"^synchronised: \d items sent, \d received, 0 conflicts$",
                                        shared, re.M)), 2)
        self.assertIn('"peer_connection": "no"', shared)
        called = out.split('"peer_connection": "no"')[1]
        self.assertEqual(called.splitlines()[1], "42")
        self.assertIn("alice@127.0.0.1/laptop  get42 1.0  [get42]  via", called)
        self.assertFalse(os.path.exists(os.path.join(work, "twistd.pid")))
        self.assertFalse(os.path.exists(os.path.join(work, "twistd.log")))
