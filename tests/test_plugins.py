"""
The twistd dropins load: a plugin that fails to import silently becomes
"Unknown command", so this checks every tapname is really there.
"""

import os
import sys
import zipfile

from twisted.application.service import IServiceMaker
from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase, TestCase

import twisted.plugins


class PluginTests(SynchronousTestCase):
    """
    C{twistd pzh}, C{twistd pzp} and C{twistd meshportal} exist.
    """

    def test_tapnames(self):
        """
        getPlugins(IServiceMaker) lists pzh, pzp and meshportal, each naming a module
        that imports and offers Options and makeService.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker, twisted.plugins)}
        for name in ("pzh", "pzp", "meshportal"):
            self.assertIn(name, makers)
            self.assertTrue(callable(makers[name].makeService))
            self.assertIsNotNone(makers[name].options)


_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class InstallTests(TestCase):
    """
    How the project is installed keeps the dropins visible to C{twistd}
    and runs this tree's code.
    """

    timeout = 60

    @defer.inlineCallbacks
    def test_editableIsPlainPath(self):
        """
        The default PEP 660 editable wheel (what C{pip install -e .} builds,
        with no C{editable_mode=compat} and so no deprecation warning) is a
        C{.pth} file naming the project root, not an import hook: only a
        real directory on C{sys.path} lets Twisted find C{twisted/plugins/}.
        """
        out = os.path.abspath(self.mktemp())
        os.makedirs(out)
        script = ("import sys, setuptools.build_meta as b; "
                  "sys.stdout.write(b.build_editable(sys.argv[1]))")
        stdout, stderr, code = yield getProcessOutputAndValue(
            sys.executable, ["-c", script, out], env=dict(os.environ), path=_ROOT)
        self.assertEqual(code, 0, stderr.decode("utf-8", "replace"))
        self.assertNotIn(b"compat", stderr.lower())
        wheel = os.path.join(out, stdout.decode("utf-8").strip().splitlines()[-1])
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            [pth] = [n for n in names if n.endswith(".pth")]
            self.assertEqual(z.read(pth).decode("utf-8").strip(), _ROOT)
        self.assertEqual([n for n in names if n.endswith(".py")], [])

    @defer.inlineCallbacks
    def test_twistdFromElsewhere(self):
        """
        C{twistd --help} run from another folder lists every dropin, and
        the processes the end-to-end tests start import this tree's code.
        """
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        stdout, stderr, code = yield getProcessOutputAndValue(twistd, ["--help"], env=env,
                                                              path="/")
        self.assertEqual(code, 0, stderr)
        for name in (b"pzh", b"pzp", b"meshportal"):
            self.assertRegex(stdout, rb"\n\s+" + name + rb"\s")
        stdout, _, _ = yield getProcessOutputAndValue(
            sys.executable, ["-c", "import pzh.tap; print(pzh.tap.__file__)"], env=env, path="/")
        self.assertEqual(os.path.dirname(os.path.dirname(stdout.decode("utf-8").strip())), _ROOT)
