# -*- test-case-name: tests.pz.test_process -*-
"""
How a zone process (C{twistd pzh}, C{twistd pzp}, C{twistd meshportal})
sits in C{twistd}.

  - Its pid file, and its log file when it runs as a daemon, default to
    its own data directory, so two services started from one folder never
    collide on C{twistd.pid}.
  - One process per data directory: a lock on the directory itself is held
    before anything in it is written.
  - A start-up that cannot succeed (data directory in use, a port taken)
    ends the program before it daemonises with one line and status 1.
  - The log file rotates at 1 MB and keeps a bounded number of old files.
  - A running process that meets a hopeless error stops with status 1.

C{twistd} parses its own options, then the plugin's, then reads the pid
and log file names, so a plugin's C{postOptions} may still fill in the
defaults its parent left (L{placeTwistdFiles}).  The log observer reaches
C{twistd} the way a C{.tac} file sets one: as the application's
L{ILogObserver} component (L{ProcessRoot}).
"""

import atexit
import contextlib
import errno
import fcntl
import gc
import json
import os
import socket
import sys

from twisted.application import service
from twisted.logger import ILogObserver, Logger, textFileLogObserver
from twisted.python.logfile import LogFile

from pz.errors import ZoneError
from pz.files import privateDirectory

__all__ = [
    "StartupError", "placeTwistdFiles", "DataDirLock", "checkCanListen", "exitOnStartupError",
    "ProcessRoot", "logObserverFor", "ProcessExit", "PID_FILE", "LOG_FILE", "ROTATE_LENGTH",
    "MAX_ROTATED_LOGS", "EXIT_RECORD", "readExitRecord", "clearExitRecord",
]

#: twistd's own default pid file name, relative to the current folder.
_TWISTD_PIDFILE = "twistd.pid"

#: The pid and log file names inside a data directory.
PID_FILE = "twistd.pid"
LOG_FILE = "twistd.log"

#: Bytes after which the log file is rotated (twistd's own figure).
ROTATE_LENGTH = 1_000_000

#: Rotated log files kept (C{twistd.log.1} ... C{twistd.log.N}); older ones are deleted.
MAX_ROTATED_LOGS = 5


class StartupError(Exception):
    """
    The process cannot start; the message is one line for a person.
    """


def _inUse(dataDir: str) -> str:
    return f"another process is already using the data directory {dataDir}"


def placeTwistdFiles(options, dataDir: str, tapname: str) -> None:
    """
    Under C{twistd}, default the pid file (and, for a daemon, the log file)
    into C{dataDir}, and refuse at once, in one line, a data directory that
    a running process holds (before twistd's multi-line pid file check).

    Call it from a plugin's C{postOptions}.  A C{--pidfile} or C{--logfile}
    the user gave is kept; only twistd's bare default C{twistd.pid} is
    moved.  Outside twistd (no parent options) it does nothing.
    """
    parent = getattr(options, "parent", None)
    if parent is None or "pidfile" not in parent:
        return
    if DataDirLock.heldElsewhere(dataDir):
        raise SystemExit(f"{tapname}: {_inUse(dataDir)}")
    if parent["pidfile"] == _TWISTD_PIDFILE:
        parent["pidfile"] = os.path.join(dataDir, PID_FILE)
    if not parent.get("nodaemon") and not parent.get("logfile") and not parent.get("syslog"):
        parent["logfile"] = os.path.join(dataDir, LOG_FILE)


class DataDirLock:
    """
    An exclusive lock on a data directory, taken on the directory itself
    (C{flock}), so taking it writes nothing.  The kernel drops it when the
    process ends, however it ends.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = None

    def acquire(self) -> "DataDirLock":
        """
        Create the directory if needed, lock it, then make it 0700 even if
        it was wider: the lock comes first, so a refused process changes
        nothing.

        @raise StartupError: another process holds it.
        """
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StartupError(_inUse(self.path))
        self._fd = fd
        privateDirectory(self.path)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def heldElsewhere(path: str) -> bool:
        """
        Whether another holder has C{path} locked now; writes nothing.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def checkCanListen(interface: str, port: int) -> None:
    """
    Bind C{interface:port} for a moment, as Twisted's listener will
    (C{SO_REUSEADDR}), so a port that is taken stops the start-up before
    anything is written or any other port opens.

    @raise StartupError: the port cannot be bound.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((interface, port))
    except OSError as e:
        host = f"[{interface}]" if family == socket.AF_INET6 else interface
        reason = (e.strerror or errno.errorcode.get(e.errno, str(e))).lower()
        raise StartupError(f"cannot listen on {host}:{port}: {reason}")
    finally:
        probe.close()


@contextlib.contextmanager
def exitOnStartupError(tapname: str):
    """
    Turn a L{StartupError} or L{ZoneError} raised while a plugin builds its
    service into C{SystemExit}: C{twistd} then prints the one line and
    exits with status 1, before it writes a pid file or daemonises.
    """
    try:
        yield
    except (StartupError, ZoneError) as e:
        raise SystemExit(f"{tapname}: {e}")


def logObserverFor(twistdOptions):
    """
    The bounded rotating file observer for the log file C{twistd} was told
    to use, or L{None} where twistd logs elsewhere (standard output in the
    foreground, syslog, a C{--logger}).
    """
    if twistdOptions is None or "pidfile" not in twistdOptions:
        return None
    name = twistdOptions.get("logfile")
    if twistdOptions.get("logger") or twistdOptions.get("syslog") or not name or name == "-":
        return None
    logFile = LogFile.fromFullPath(name, rotateLength=ROTATE_LENGTH,
                                   maxRotatedFiles=MAX_ROTATED_LOGS)
    return textFileLogObserver(logFile)


class ProcessRoot(service.MultiService):
    """
    The root of a zone process's services: keeps its data directory locked
    while it lives, and hands twistd its log observer when it becomes the
    application's child (as a C{.tac} file would with C{setComponent}).
    """

    def __init__(self, lock: DataDirLock, logObserver=None) -> None:
        super().__init__()
        self.lock = lock
        self.logObserver = logObserver

    def setServiceParent(self, parent):
        if self.logObserver is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.logObserver)
        return super().setServiceParent(parent)

    def startService(self) -> None:
        super().startService()
        # What start-up made (modules, the zone, the store) lives as long
        # as the process: moved out of the collector's reach, a full
        # collection no longer walks it all, which stalled the reactor
        # for tens of milliseconds under load.
        gc.collect()
        gc.freeze()

    def stopService(self):
        def release(result):
            self.lock.release()
            return result

        return super().stopService().addBoth(release)


#: Where a process that gave up records why, for C{pzctl wait} to report.
EXIT_RECORD = "exit.json"


def readExitRecord(dataDir: str):
    """
    The L{ZoneError} the last process on C{dataDir} stopped with, or
    L{None} if it did not give up (or a new one has started since).
    """
    try:
        with open(os.path.join(dataDir, EXIT_RECORD), encoding="utf-8") as f:
            record = json.load(f)
        return ZoneError(record["code"], record["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clearExitRecord(dataDir: str) -> None:
    """
    Forget why an earlier process stopped; call it with the lock held.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(dataDir, EXIT_RECORD))


class ProcessExit:
    """
    Ends a running process that cannot do its job: one log line saying
    why, the reason recorded in its data directory (L{readExitRecord}), the
    reactor stopped (so twistd removes its pid file and closes its log), and
    exit status 1 once the interpreter ends.
    """

    _log = Logger()

    def __init__(self, reactor, tapname: str, dataDir: str, registerAtExit=atexit.register,
                 exit=os._exit) -> None:
        self._reactor = reactor
        self._tapname = tapname
        self._dataDir = dataDir
        self._registerAtExit = registerAtExit
        self._exit = exit
        self.failed = False

    def fail(self, error: ZoneError) -> None:
        """
        Stop the process because of C{error}.
        """
        if self.failed:
            return
        self.failed = True
        self._log.critical("{tapname}: {code}: {message}; exiting", tapname=self._tapname,
                           code=error.code, message=error.message)
        record = json.dumps({"code": error.code, "message": error.message})
        with contextlib.suppress(OSError):
            with open(os.path.join(self._dataDir, EXIT_RECORD), "w", encoding="utf-8") as f:
                f.write(record)
        self._registerAtExit(self._exitNonZero)
        self._reactor.callWhenRunning(self._reactor.stop)

    def _exitNonZero(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(1)
