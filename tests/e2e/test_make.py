"""
C{make run} and C{make stop} as the README describes them, against this
test run's virtualenv (its installation step is skipped).
"""

import os
import re
import shlex
import sys

from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Twistd, _Process, freePort, pzctl, shortTempDir, waitFor
from tests.support import takenPort

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@defer.inlineCallbacks
def make(*args):
    """
    Run C{make ARGS} in the project with this interpreter's virtualenv,
    without its install and system-tool steps; fire with (output, status).
    """
    venv = sys.prefix
    argv = ["-s", "-C", _ROOT, f"VENV={venv}", "-o", f"{venv}/.installed", "-o", "systools",
            *args]
    out, err, code = yield getProcessOutputAndValue("make", argv, env=dict(os.environ))
    return (out + err).decode("utf-8", "replace"), code


class MakeTests(TestCase):
    """
    C{make run} / C{make stop}.
    """

    timeout = 90

    def setUp(self):
        self.runDir = os.path.join(shortTempDir(self), "run")
        self.addCleanup(make, f"RUN_DIR={self.runDir}", "stop")

    @defer.inlineCallbacks
    def test_stopStalePidFile(self):
        """
        C{make stop} with a pid file whose process is gone says so, removes
        the file and succeeds.
        """
        os.makedirs(self.runDir)
        out, _, _ = yield getProcessOutputAndValue(
            sys.executable, ["-c", "import os; print(os.getpid())"])
        with open(os.path.join(self.runDir, "hub.pid"), "w") as f:
            f.write(out.decode().strip())
        out, code = yield make(f"RUN_DIR={self.runDir}", "stop")
        self.assertEqual(code, 0, out)
        self.assertIn("hub was not running", out)
        self.assertFalse(os.path.exists(os.path.join(self.runDir, "hub.pid")))

    @defer.inlineCallbacks
    def test_runPortTaken(self):
        """
        C{make run} with a port something else listens on says so in one
        line and fails: no "running", no pairing code.
        """
        port = takenPort(self)
        out, code = yield make(f"RUN_DIR={self.runDir}", f"PORT={port}",
                               f"WEB_PORT={freePort()}", "run")
        self.assertNotEqual(code, 0, out)
        self.assertIn(f"pzh: cannot listen on 127.0.0.1:{port}: address already in use", out)
        self.assertNotIn("Traceback", out)
        self.assertNotIn("running", out)
        self.assertNotIn("pz://", out)

    @defer.inlineCallbacks
    def test_printedCommandsWork(self):
        """
        The C{twistd pzp} command C{make run} prints, run as printed from
        the project folder, pairs the device, and a second device started
        the same way from the same folder (with a code from the printed
        C{pzctl ... pair} command) too; the printed C{pzctl} command then
        lists the first; C{make stop} stops the hub.
        """
        out, code = yield make(f"RUN_DIR={self.runDir}", f"PORT={freePort()}",
                               f"WEB_PORT={freePort()}", "run")
        self.assertEqual(code, 0, out)
        # The admin page is opened by a one-time sign-in link, printed.
        self.assertRegex(out, r"admin page \(one-time sign-in link, 10 minutes\): "
                              r"https://127\.0\.0\.1:\d+/signin\?token=\S+")
        [pzp] = [line.strip() for line in out.splitlines() if " -n pzp " in line]
        [devices] = re.findall(r"then watch it:\s+(.*)", out)
        # Printed as "echo 'CODE' | twistd ... --pair -": the code goes in
        # on standard input, as the shell's pipe would give it.
        [(phoneCode, command)] = re.findall(r"^echo '([^']+)' \| (.*)$", pzp)
        argv = shlex.split(command)
        self.assertNotIn("--pidfile", argv)
        self.assertEqual(argv[-2:], ["--pair", "-"])
        device = _AsPrinted(self, argv, phoneCode).start()
        [more] = re.findall(r"More codes:\s+(.*)", out)
        more = shlex.split(more)
        laptopCode = yield pzctl(*more[1:])
        laptop = [a.replace("phone", "laptop") for a in argv]
        second = _AsPrinted(self, laptop, laptopCode.strip()).start()
        for name in ("phone", "laptop"):
            dataDir = os.path.join(self.runDir, name)
            yield pzctl("--pzp-dir", dataDir, "wait", "--timeout", "30")
            self.assertTrue(os.path.exists(os.path.join(dataDir, "twistd.pid")))

        @defer.inlineCallbacks
        def listed():
            argv = shlex.split(devices)
            out, _, _ = yield getProcessOutputAndValue(argv[0], argv[1:], env=dict(os.environ),
                                                       path=_ROOT)
            return b"/phone   connected" in out or b"/phone  connected" in out

        yield waitFor(listed, what="phone listed as connected")
        yield device.stop()
        yield second.stop()
        out, code = yield make(f"RUN_DIR={self.runDir}", "stop")
        self.assertEqual((code, out.strip()), (0, "hub stopped"))


class _AsPrinted(Twistd):
    """
    A command line run exactly as printed, from the project folder.
    """

    def __init__(self, testCase, argv: list, stdin: str) -> None:
        super().__init__(testCase, argv[argv.index("-n") + 1], [], "")
        self._argv = argv
        self._stdin = stdin

    def start(self) -> "Twistd":
        self._proc = _Process()
        self._transport = reactor.spawnProcess(self._proc, self._argv[0], self._argv,
                                               env=dict(os.environ), path=_ROOT)
        self._transport.write(self._stdin.encode("utf-8") + b"\n")
        self._transport.closeStdin()
        self._testCase.addCleanup(self.stop)
        return self
