"""
The documentation says what the code does.
"""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import CODES
from pz.tools.drawmachines import MACHINES, draw

_ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _read(*parts) -> str:
    with open(os.path.join(_ROOT, *parts), encoding="utf-8") as f:
        return f.read()


class DocsTests(SynchronousTestCase):
    """
    Docs that would otherwise drift.
    """

    def test_errorCodesDocumented(self):
        """
        docs/wire-protocol.md lists exactly the error codes pz.errors knows.
        """
        documented = set(re.findall(r"^\| `([A-Z_]+)` \|", _read("docs", "wire-protocol.md"), re.M))
        self.assertEqual(documented, set(CODES))

    def test_machineDiagramsCurrent(self):
        """
        The committed diagrams are the ones C{make docs} draws from the
        machines now.
        """
        out = self.mktemp()
        draw(out)
        for name in MACHINES:
            with open(os.path.join(out, name + ".dot"), encoding="utf-8") as f:
                self.assertEqual(f.read(), _read("docs", "state-machines", name + ".dot"),
                                 f"{name} changed: run make docs")

    def test_diagramsNameSeedStates(self):
        """
        The drawn machines carry the state names of the PZP specification.
        """
        self.assertEqual(
            set(re.findall(r"^\t(\w+) \[color=blue", MACHINES["hub-mode"].asDigraph().source, re.M)),
            {"NotConnected", "Connecting", "Connected", "Disconnecting"},
        )
        self.assertEqual(
            set(re.findall(r"^\t(\w+) \[color=blue", MACHINES["virgin-mode"].asDigraph().source, re.M)),
            {"NotConnected", "Connecting", "Connected", "Hub"},
        )

    def test_readmeStartsWithRunAndTest(self):
        """
        The README's first two commands are make run and make test.
        """
        commands = re.findall(r"^make (\w+)", _read("README.md"), re.M)
        self.assertEqual(commands[:2], ["run", "test"])
