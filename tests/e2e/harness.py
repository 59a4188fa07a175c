"""
Running real C{twistd pzh} / C{twistd pzp} processes and C{pzctl} from
trial tests, on 127.0.0.1 only.

Tests wait for conditions by polling with the reactor (never by sleeping
the process), each wait bounded by a timeout.
"""

import json
import os
import shutil
import signal
import socket
import sys
import tempfile

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.utils import getProcessOutputAndValue
from twisted.web.client import Agent
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
PZCTL = os.path.join(BIN, "pzctl")


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that nothing listens on right now.
    """
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def shortTempDir(testCase) -> str:
    """
    A fresh directory with a short path (UNIX socket paths are limited to
    about 100 bytes), removed after the test.
    """
    path = tempfile.mkdtemp(prefix="pz")
    testCase.addCleanup(shutil.rmtree, path, True)
    return path


class _Process(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.ended = defer.Deferred()
        self.output = []

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.exitCode = reason.value.exitCode
        self.ended.callback(reason.value.exitCode)


class Twistd:
    """
    One C{twistd -n PLUGIN ...} process.
    """

    def __init__(self, testCase, plugin: str, args: list, logfile: str, env=None) -> None:
        """
        @param env: variables to set in the process's environment, beside
            this one's.
        """
        self._env = dict(os.environ, **(env or {}))
        self._testCase = testCase
        self.plugin = plugin
        self.args = args
        self.logfile = logfile
        self._proc = None
        self._transport = None

    def start(self) -> "Twistd":
        self._proc = _Process()
        argv = [TWISTD, "-n", "--logfile", self.logfile, "--pidfile", "", self.plugin] + self.args
        self._transport = reactor.spawnProcess(self._proc, TWISTD, argv, env=self._env)
        self._testCase.addCleanup(self.stop)
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._proc.ended.called

    def exited(self):
        """
        Fires with the exit status once the process has ended on its own.
        """
        d = defer.Deferred()
        self._proc.ended.addBoth(lambda result: (d.callback(self._proc.exitCode), result)[1])
        return d

    def kill(self, sig=signal.SIGKILL):
        """
        Send C{sig}; fires when the process has ended.
        """
        if not self.running:
            return defer.succeed(None)
        self._transport.signalProcess(sig)
        return self._proc.ended

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop gracefully, killing after 10 s.
        """
        if not self.running:
            return
        self._transport.signalProcess("TERM")
        timer = reactor.callLater(10, lambda: self.running and self._transport.signalProcess("KILL"))
        yield self._proc.ended
        if timer.active():
            timer.cancel()

    def log(self) -> str:
        """
        The process's log so far.
        """
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class PZCtlError(Exception):
    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(code, stderr)
        self.exitCode = code
        self.stderr = stderr


@defer.inlineCallbacks
def pzctl(*args, check: bool = True):
    """
    Run C{pzctl ARGS}; fires with its stdout (text).  With C{check}, a
    non-zero exit fails with L{PZCtlError}; without, fires with
    C{(stdout, stderr, exitCode)}.
    """
    out, err, code = yield getProcessOutputAndValue(PZCTL, list(args), env=dict(os.environ))
    out, err = out.decode("utf-8"), err.decode("utf-8")
    if not check:
        return out, err, code
    if code != 0:
        raise PZCtlError(code, err)
    return out


@defer.inlineCallbacks
def pzctlJSON(*args):
    """
    Run C{pzctl ARGS --json}-style commands and parse their output.
    """
    out = yield pzctl(*args)
    return json.loads(out)


@defer.inlineCallbacks
def waitFor(check, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"):
    """
    Poll C{check} (may return a Deferred) until it returns something true;
    fire with that.  Fails with C{AssertionError} after C{timeout} seconds.

    A check that takes a while (one that runs C{pzctl}, a new Python
    process) is followed by a pause as long as it took: polled back to
    back it would keep a core busy, slowing the very processes waited for
    and the tests running beside this one.
    """
    deadline = reactor.seconds() + timeout
    last = None
    while True:
        started = reactor.seconds()
        try:
            result = yield defer.maybeDeferred(check)
            if result:
                return result
            last = result
        except Exception as e:
            last = e
        if reactor.seconds() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        pause = max(interval, reactor.seconds() - started)
        yield task.deferLater(reactor, min(pause, max(0.0, deadline - reactor.seconds())),
                              lambda: None)


@implementer(IPolicyForHTTPS)
class ZoneCA:
    """
    HTTPS trust in one zone's CA only, checking the server's name: how a
    client that was given the zone's C{ca.pem} reaches the hub's web port.
    """

    def __init__(self, caPEM: bytes) -> None:
        self._ca = Certificate.loadPEM(caPEM)

    def creatorForNetloc(self, hostname, port):
        return optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._ca)


class Zone:
    """
    A hub and its devices for one test, each a real process.
    """

    def __init__(self, testCase, user: str = "alice") -> None:
        self.testCase = testCase
        self.root = shortTempDir(testCase)
        self.user = user
        self.port = freePort()
        self.webPort = freePort()
        self.hubDir = os.path.join(self.root, "hub")
        self.hub = None
        self.devices = {}

    @property
    def zoneId(self) -> str:
        return f"{self.user}@127.0.0.1"

    def deviceId(self, name: str) -> str:
        return f"{self.zoneId}/{name}"

    def webAgent(self) -> Agent:
        """
        An HTTP agent for the hub's web port, trusting the zone's CA only.
        """
        with open(os.path.join(self.hubDir, "ca.pem"), "rb") as f:
            return Agent(reactor, contextFactory=ZoneCA(f.read()))

    @defer.inlineCallbacks
    def startHub(self, *extra):
        """
        Start (or restart) the hub; fires once its admin socket answers.
        """
        self.hub = Twistd(self.testCase, "pzh", [
            "--data-dir", self.hubDir, "--name", self.user, "--interface", "127.0.0.1",
            "--port", str(self.port), "--web-port", str(self.webPort), *extra,
        ], os.path.join(self.root, "hub.log")).start()
        yield pzctl("--hub-dir", self.hubDir, "wait", "--timeout", "20")
        return self.hub

    @defer.inlineCallbacks
    def pairCode(self, name: str, *extra) -> str:
        out = yield pzctl("--hub-dir", self.hubDir, "pair", "--device", name, *extra)
        return out.strip()

    def deviceDir(self, name: str) -> str:
        return os.path.join(self.root, name)

    def startDevice(self, name: str, code=None, *extra, env=None) -> Twistd:
        """
        Start a device's proxy (enrolling with C{code} if given).

        @param env: environment variables for the process.
        """
        args = ["--data-dir", self.deviceDir(name), "--name", name,
                "--keepalive", "2", "--max-backoff", "1",
                "--peer-port", "0", "--peer-interface", "127.0.0.1", *extra]
        if code is not None:
            args += ["--pair", code]
        proc = Twistd(self.testCase, "pzp", args,
                      os.path.join(self.root, f"{name}.log"), env).start()
        self.devices[name] = proc
        return proc

    @defer.inlineCallbacks
    def pairDevice(self, name: str):
        """
        Pair a new device and wait until it is Hub/Connected.
        """
        code = yield self.pairCode(name)
        self.startDevice(name, code)
        status = yield self.waitState(name, "Hub", "Connected")
        return status

    def status(self, name: str):
        return pzctlJSON("--pzp-dir", self.deviceDir(name), "status", "--json")

    def waitState(self, name: str, mode: str, state: str, timeout: float = 20.0):
        """
        Wait until the device reports C{mode}/C{state}; fires with its
        status.
        """
        @defer.inlineCallbacks
        def check():
            status = yield self.status(name)
            return status if (status["mode"], status["state"]) == (mode, state) else None

        return waitFor(check, timeout, what=f"{name} to reach {mode}/{state}")

    def devicesList(self):
        return pzctlJSON("--hub-dir", self.hubDir, "devices", "--json")
