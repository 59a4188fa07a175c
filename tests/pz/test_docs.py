"""
The documentation says what the code does.
"""

import importlib.util
import os
import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import CODES

_ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def _drawingTool():
    """
    The drawing tool C{make docs} runs, C{docs/state-machines/draw.py},
    loaded from its file (it lives beside the pictures, outside the
    packages).
    """
    path = os.path.join(_ROOT, "docs", "state-machines", "draw.py")
    spec = importlib.util.spec_from_file_location("_drawmachines", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_draw = _drawingTool()
MACHINES, draw = _draw.machines(), _draw.draw
#: Every picture make docs draws: one per machine, and those of several.
DRAWN = [*MACHINES, *_draw.PICTURES]


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
        for name in DRAWN:
            with open(os.path.join(out, name + ".dot"), encoding="utf-8") as f:
                self.assertEqual(f.read(), _read("docs", "state-machines", name + ".dot"),
                                 f"{name} changed: run make docs")

    def test_makeDocsRunsTheTool(self):
        """
        The command of C{make docs} runs the tool from its file and writes
        every machine's C{.dot} into the folder it is given.
        """
        with open(os.path.join(_ROOT, "Makefile"), encoding="utf-8") as f:
            [command] = re.findall(r"^docs:.*\n\t\$\(BIN\)/python (.+)$", f.read(), re.M)
        script, folder = command.split()
        self.assertEqual((script, folder), ("docs/state-machines/draw.py", "docs/state-machines"))
        out = os.path.abspath(self.mktemp())
        done = subprocess.run([sys.executable, script, out], cwd=_ROOT, capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stderr)
        for name in DRAWN:
            self.assertIn(os.path.join(out, name + ".dot"), done.stdout.splitlines())
            with open(os.path.join(out, name + ".dot"), encoding="utf-8") as f:
                self.assertEqual(f.read(), _read("docs", "state-machines", name + ".dot"))

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
        self.assertEqual(
            set(re.findall(r"^\t(\w+) \[color=blue", MACHINES["peer-mode"].asDigraph().source, re.M)),
            {"NotConnected", "Connecting", "Connected", "Disconnecting"},
        )

    def test_wholePicture(self):
        """
        The picture of the three modes carries each machine's own states.
        """
        with open(os.path.join(_ROOT, "docs", "state-machines", "zone-modes.dot"),
                  encoding="utf-8") as f:
            source = f.read()
        for prefix in ("virgin", "hub", "peer"):
            self.assertIn(f"{prefix}_NotConnected", source)
            self.assertIn(f"{prefix}_Connected", source)
        self.assertIn("peer_NotConnected -> peer_Connecting", source)

    def test_architectureNamesRealFiles(self):
        """
        Every file and folder docs/architecture.md names exists, and every
        pzctl verb module it names is one the installed verbs come from.
        """
        text = _read("docs", "architecture.md")
        paths = set(re.findall(r"`((?:pz|pzh|pzp|tests|bench|docs|twisted)/[\w/.]*)`", text))
        self.assertIn("pzh/commands.py", paths)
        for path in paths:
            self.assertTrue(os.path.exists(os.path.join(_ROOT, path)), path)
        from importlib.metadata import entry_points

        modules = {e.value.split(":")[0].replace(".", "/") + ".py"
                   for e in entry_points(group="pzctl.verbs")}
        self.assertTrue(modules <= paths, modules - paths)

    def test_readmeStartsWithRunAndTest(self):
        """
        The README's first two commands are make run and make test.
        """
        commands = re.findall(r"^make (\w+)", _read("README.md"), re.M)
        self.assertEqual(commands[:2], ["run", "test"])
