"""
End to end: a real C{twistd pzh} whose web port is held by hundreds of
slow connections, each sending a byte a second, keeps serving
C{/health}, its admin socket and new pairings, and closes the slow
connections at its request deadline.  The hub runs with only 256 file
descriptors, so without the connection caps the slow connections alone
would exhaust them.
"""

import os
import sys

from twisted.internet import defer, protocol, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial.unittest import TestCase
from twisted.web.client import readBody

from tests.e2e.harness import TWISTD, Twistd, Zone, _Process, pzctl, pzctlJSON, waitFor

#: Descriptors the hub may open.
FILE_LIMIT = 256

#: Slow connections the test opens, more than FILE_LIMIT.
SLOW = 300

#: The hub's whole-request deadline in this test, in seconds.
DEADLINE = 8

_LIMITED = ("import os, resource, sys; n = int(sys.argv[1]); "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


class _LimitedTwistd(Twistd):
    """
    C{twistd} started with at most C{FILE_LIMIT} open files.
    """

    def start(self) -> "_LimitedTwistd":
        self._proc = _Process()
        argv = [sys.executable, "-c", _LIMITED, str(FILE_LIMIT), TWISTD, "-n",
                "--logfile", self.logfile, "--pidfile", "", self.plugin] + self.args
        self._transport = reactor.spawnProcess(self._proc, sys.executable, argv,
                                               env=dict(os.environ))
        self._testCase.addCleanup(self.stop)
        return self


class _Trickle(protocol.Protocol):
    """
    Sends one byte a second and records when the server closes.
    """

    def __init__(self) -> None:
        self.closed = defer.Deferred()
        self._loop = task.LoopingCall(self._tick)

    def connectionMade(self) -> None:
        self._loop.start(1.0)

    def _tick(self) -> None:
        self.transport.write(b"\x16")

    def connectionLost(self, reason) -> None:
        if self._loop.running:
            self._loop.stop()
        self.closed.callback(reactor.seconds())


class _Collect(protocol.Protocol):
    """
    Collects what the server sends until it closes.
    """

    def __init__(self) -> None:
        self.closed = defer.Deferred()
        self._data = []

    def dataReceived(self, data: bytes) -> None:
        self._data.append(data)

    def connectionLost(self, reason) -> None:
        self.closed.callback(b"".join(self._data))


class WebPortHeldTests(TestCase):
    """
    The hub's web port cannot be held.
    """

    timeout = 120

    @defer.inlineCallbacks
    def startSlow(self, zone):
        """
        Open C{SLOW} trickling connections to the web port from 127.0.0.2;
        fire with their protocols once each was accepted or refused.
        """
        slow = []
        for _ in range(SLOW):
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", zone.webPort, timeout=5,
                                          bindAddress=("127.0.0.2", 0))
            client = _Trickle()
            self.addCleanup(lambda c=client: c.transport and c.transport.abortConnection())
            yield connectProtocol(endpoint, client)
            slow.append(client)
        return slow

    @defer.inlineCallbacks
    def health(self, zone):
        response = yield zone.webAgent().request(b"GET", f"https://127.0.0.1:{zone.webPort}/health".encode())
        body = yield readBody(response)
        return response.code, body, response.headers

    @defer.inlineCallbacks
    def assertRefusedAtOnce(self, zone):
        """
        A request over TLS announcing a 10**12-byte body, and sending none
        of it, is answered 413 and closed without waiting for the body.
        """
        with open(os.path.join(zone.hubDir, "ca.pem"), "rb") as f:
            ca = Certificate.loadPEM(f.read())
        client = _Collect()
        endpoint = wrapClientTLS(optionsForClientTLS("127.0.0.1", trustRoot=ca),
                                 TCP4ClientEndpoint(reactor, "127.0.0.1", zone.webPort))
        yield connectProtocol(endpoint, client)
        client.transport.write(b"POST /.well-known/mmm/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               b"Content-Length: 1000000000000\r\n\r\n")
        # A 413 cannot come from the deadline (that answers 408): the
        # timer only bounds the test.
        timer = reactor.callLater(20, client.transport.abortConnection)
        received = yield client.closed
        self.assertTrue(timer.active(), "the hub did not close the connection")
        timer.cancel()
        self.assertTrue(received.startswith(b"HTTP/1.1 413 "), received[:200])

    @defer.inlineCallbacks
    def test_heldPortStillServes(self):
        """
        With C{SLOW} trickling connections opened from one address, the
        hub still answers C{/health} (from another, with the security
        headers), C{pzctl} over the admin socket, a new pairing (whose code
        stays out of the proxy's command line), and a request announcing a
        huge body (413 at once); every slow connection is closed soon after
        the deadline although it keeps sending.
        """
        zone = Zone(self)
        zone.hub = _LimitedTwistd(self, "pzh", [
            "--data-dir", zone.hubDir, "--name", zone.user, "--interface", "127.0.0.1",
            "--port", str(zone.port), "--web-port", str(zone.webPort),
            "--web-request-timeout", str(DEADLINE), "--web-max-per-address", "32",
        ], os.path.join(zone.root, "hub.log")).start()
        yield pzctl("--hub-dir", zone.hubDir, "wait", "--timeout", "20")

        started = reactor.seconds()
        slow = yield self.startSlow(zone)

        try:
            code, body, headers = yield self.health(zone)
        except Exception as e:
            self.fail(f"/health failed: {e!r}; the hub's log ends:\n{zone.hub.log()[-2000:]}")
        self.assertEqual(code, 200, body)
        self.assertEqual(headers.getRawHeaders(b"server"), [b"pz"])
        self.assertEqual(headers.getRawHeaders(b"x-frame-options"), [b"DENY"])
        self.assertTrue(headers.getRawHeaders(b"strict-transport-security"))
        yield pzctl("--hub-dir", zone.hubDir, "wait", "--timeout", "5")
        self.assertEqual((yield pzctlJSON("--hub-dir", zone.hubDir, "devices", "--json")), [])

        code = yield zone.pairCode("phone")
        codeFile = os.path.join(zone.root, "phone.code")
        with open(codeFile, "w") as f:
            f.write(code + "\n")
        device = zone.startDevice("phone", None, "--pair-file", codeFile)
        yield zone.waitState("phone", "Hub", "Connected", timeout=30)
        with open(f"/proc/{device._transport.pid}/cmdline", "rb") as f:
            commandLine = f.read()
        token = code.split("/")[-1].split("#")[0]
        self.assertNotIn(token.encode("ascii"), commandLine)
        self.assertIn(b"--pair-file", commandLine)

        yield self.assertRefusedAtOnce(zone)

        closedAt = yield waitFor(
            lambda: all(c.closed.called for c in slow) and [c.closed.result for c in slow],
            timeout=DEADLINE + 30, interval=0.5, what="the hub to close every slow connection")
        self.assertLess(max(closedAt) - started, DEADLINE + 30)
        code, _, _ = yield self.health(zone)
        self.assertEqual(code, 200)
