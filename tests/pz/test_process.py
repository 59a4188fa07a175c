"""
Tests for L{pz.process}: how a zone process sits in twistd.
"""

import json
import os
import socket

from twisted.application.service import Application, IServiceCollection
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver, Logger
from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SynchronousTestCase

from pz import process
from pz.errors import ZoneError
from pzp.tap import Options as PZPOptions
from tests.support import takenPort


def _twistd(*argv) -> ServerOptions:
    """
    Parse a C{twistd} command line the way C{twistd} does.
    """
    config = ServerOptions()
    config.parseOptions(list(argv))
    return config


class PlaceTwistdFilesTests(SynchronousTestCase):
    """
    Under twistd, the pid file and a daemon's log file default into the
    plugin's data directory.
    """

    def test_foreground(self):
        """
        C{twistd -n pzp --data-dir D}: the pid file is C{D/twistd.pid}; the
        log stays on standard output; nothing is created yet.
        """
        dataDir = os.path.abspath(self.mktemp())
        config = _twistd("-n", "pzp", "--data-dir", dataDir)
        self.assertEqual(config["pidfile"], os.path.join(dataDir, "twistd.pid"))
        self.assertIsNone(config["logfile"])
        self.assertFalse(os.path.exists(dataDir))

    def test_daemon(self):
        """
        Daemonised, the log file is C{D/twistd.log} too.
        """
        dataDir = os.path.abspath(self.mktemp())
        config = _twistd("pzh", "--data-dir", dataDir)
        self.assertEqual(config["pidfile"], os.path.join(dataDir, "twistd.pid"))
        self.assertEqual(config["logfile"], os.path.join(dataDir, "twistd.log"))

    def test_explicitKept(self):
        """
        A C{--pidfile} or C{--logfile} the user gave is kept, an empty pid
        file (none) included.
        """
        config = _twistd("--pidfile", "x.pid", "--logfile", "x.log", "meshportal", "-d", "p")
        self.assertEqual((config["pidfile"], config["logfile"]),
                         (os.path.abspath("x.pid"), "x.log"))
        config = _twistd("-n", "--pidfile", "", "pzh", "-d", "h")
        self.assertEqual(config["pidfile"], "")

    def test_notUnderTwistd(self):
        """
        Parsed on their own, the plugin's options have no twistd options
        to change, and nothing is created.
        """
        dataDir = os.path.abspath(self.mktemp())
        options = PZPOptions()
        options.parseOptions(["-d", dataDir])
        process.placeTwistdFiles(options, dataDir, "pzp")
        self.assertIsNone(getattr(options, "parent", None))
        self.assertFalse(os.path.exists(dataDir))

    def test_dataDirInUse(self):
        """
        A data directory another process holds is refused in one line while
        twistd parses its options, before its own pid file check (which
        prints a paragraph).
        """
        dataDir = os.path.abspath(self.mktemp())
        lock = process.DataDirLock(dataDir).acquire()
        self.addCleanup(lock.release)
        error = self.assertRaises(SystemExit, _twistd, "-n", "pzh", "-d", dataDir)
        self.assertEqual(str(error),
                         f"pzh: another process is already using the data directory {dataDir}")


class DataDirLockTests(SynchronousTestCase):
    """
    L{process.DataDirLock} allows one holder per directory.
    """

    def test_exclusive(self):
        """
        A second holder is refused until the first releases; the lock
        writes nothing into the directory.
        """
        path = os.path.abspath(self.mktemp())
        first = process.DataDirLock(path).acquire()
        self.assertEqual(os.listdir(path), [])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o700)
        self.assertTrue(process.DataDirLock.heldElsewhere(path))
        error = self.assertRaises(process.StartupError, process.DataDirLock(path).acquire)
        self.assertIn(path, str(error))
        first.release()
        self.assertFalse(process.DataDirLock.heldElsewhere(path))
        process.DataDirLock(path).acquire().release()

    def test_missingDirectory(self):
        """
        Nobody holds a directory that does not exist, and asking creates
        nothing.
        """
        path = os.path.abspath(self.mktemp())
        self.assertFalse(process.DataDirLock.heldElsewhere(path))
        self.assertFalse(os.path.exists(path))


class CheckCanListenTests(SynchronousTestCase):
    """
    L{process.checkCanListen} refuses a port something listens on.
    """

    def test_taken(self):
        """
        One line naming the address and the reason.
        """
        port = takenPort(self)
        error = self.assertRaises(process.StartupError, process.checkCanListen, "127.0.0.1", port)
        self.assertEqual(str(error), f"cannot listen on 127.0.0.1:{port}: address already in use")

    def test_free(self):
        """
        A free port, and port 0, pass.
        """
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        process.checkCanListen("127.0.0.1", port)
        process.checkCanListen("127.0.0.1", 0)

    def test_exitOnStartupError(self):
        """
        Start-up errors become C{SystemExit} with the program's name.
        """
        def fails(error):
            with process.exitOnStartupError("pzx"):
                raise error

        self.assertEqual(str(self.assertRaises(SystemExit, fails, process.StartupError("no"))),
                         "pzx: no")
        self.assertEqual(
            str(self.assertRaises(SystemExit, fails, ZoneError("BAD_REQUEST", "bad"))),
            "pzx: BAD_REQUEST: bad")
        self.assertRaises(ValueError, fails, ValueError("a bug stays a bug"))


class RotatedLogTests(SynchronousTestCase):
    """
    The log file rotates and keeps at most L{process.MAX_ROTATED_LOGS} old
    files.
    """

    def test_bounded(self):
        """
        Writing many times the rotation length leaves the live log and
        C{MAX_ROTATED_LOGS} rotated files, not one per rotation.
        """
        dataDir = os.path.abspath(self.mktemp())
        os.makedirs(dataDir)
        self.patch(process, "ROTATE_LENGTH", 2000)
        config = _twistd("--logfile", os.path.join(dataDir, "twistd.log"), "pzh", "-d", dataDir)
        observer = process.logObserverFor(config)
        log = Logger(observer=observer)
        for i in range(200):
            log.info("line {i} {pad}", i=i, pad="x" * 100)
        names = sorted(os.listdir(dataDir))
        self.assertEqual(names, ["twistd.log"] + [f"twistd.log.{n}" for n in
                                                  range(1, process.MAX_ROTATED_LOGS + 1)])
        with open(os.path.join(dataDir, "twistd.log")) as f:
            self.assertIn("line 199", f.read())

    def test_notAFile(self):
        """
        In the foreground without C{--logfile}, with C{--logfile -}, with
        syslog or a C{--logger}, twistd keeps its own observer.
        """
        self.assertIsNone(process.logObserverFor(_twistd("-n", "pzh", "-d", "h")))
        self.assertIsNone(process.logObserverFor(_twistd("-n", "--logfile", "-", "pzh", "-d", "h")))
        self.assertIsNone(process.logObserverFor(_twistd("--syslog", "pzh", "-d", "h")))
        self.assertIsNone(process.logObserverFor(None))

    def test_givenToTwistd(self):
        """
        L{process.ProcessRoot} sets its observer as the application's
        L{ILogObserver}, which twistd uses before its own file observer.
        """
        observer = object()
        root = process.ProcessRoot(process.DataDirLock(self.mktemp()), observer)
        application = Application("pzh")
        root.setServiceParent(application)
        self.assertIs(application.getComponent(ILogObserver), observer)
        self.assertIn(root, list(IServiceCollection(application)))


class ProcessRootTests(SynchronousTestCase):
    """
    L{process.ProcessRoot} holds the data directory while it runs.
    """

    def test_releasedOnStop(self):
        path = os.path.abspath(self.mktemp())
        root = process.ProcessRoot(process.DataDirLock(path).acquire())
        root.startService()
        self.assertTrue(process.DataDirLock.heldElsewhere(path))
        self.successResultOf(root.stopService())
        self.assertFalse(process.DataDirLock.heldElsewhere(path))


class ProcessExitTests(SynchronousTestCase):
    """
    L{process.ProcessExit} stops a process that gave up, with status 1.
    """

    def test_fail(self):
        """
        The reason is recorded for C{pzctl}, the reactor stops, and the
        interpreter's exit becomes status 1; a second failure changes
        nothing.
        """
        dataDir = self.mktemp()
        os.makedirs(dataDir)
        reactor = MemoryReactorClock()
        atExit, exits = [], []
        exit = process.ProcessExit(reactor, "pzp", dataDir, atExit.append, exits.append)
        self.assertIsNone(process.readExitRecord(dataDir))
        exit.fail(ZoneError("TOKEN_USED", "used"))
        exit.fail(ZoneError("TOKEN_INVALID", "later"))
        reactor.run()
        self.assertFalse(reactor.running)
        self.assertEqual(len(atExit), 1)
        atExit[0]()
        self.assertEqual(exits, [1])
        record = process.readExitRecord(dataDir)
        self.assertEqual((record.code, record.message), ("TOKEN_USED", "used"))
        with open(os.path.join(dataDir, process.EXIT_RECORD)) as f:
            self.assertEqual(json.load(f)["code"], "TOKEN_USED")
        process.clearExitRecord(dataDir)
        process.clearExitRecord(dataDir)
        self.assertIsNone(process.readExitRecord(dataDir))
