"""
End to end: zone services and Peer mode with real C{twistd} processes on
127.0.0.1 and real TLS.  Device A calls C{get42} on device B through the
hub, then over their direct peer link, which keeps working with the hub
stopped; a revoked device's peer link closes at once; the peer port takes
only devices of the zone, and bad input there harms nothing.
"""

import json
import os
import time

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.trial.unittest import TestCase

from pz import pki, tls
from pz.admin import adminCall
from pz.testing import frame, frames, prop
from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor


#: The integrators' guide's example service, run by twistd pzp --service.
EXAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples"))


def _peers(zone: Zone, name: str) -> dict:
    return adminCall(zone.deviceDir(name), "peers", timeout=5)["peers"]


@defer.inlineCallbacks
def _peerLinked(zone: Zone, name: str, other: str, timeout: float = 20.0):
    yield waitFor(lambda: _peers(zone, name).get(zone.deviceId(other)) == "Connected",
                  timeout=timeout, interval=0.05, what=f"{name}'s peer link to {other}")


class _Recorder(Protocol):
    """
    A raw client on the peer port: what came back, and when it closed.
    """

    def __init__(self) -> None:
        self.data = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


def _deviceFiles(zone: Zone, name: str) -> tuple:
    identity = os.path.join(zone.deviceDir(name), "zone", "identity")
    return (pki.readPrivateKey(os.path.join(identity, "key.pem")),
            pki.readCertificate(os.path.join(identity, "cert.pem")))


@defer.inlineCallbacks
def _exchange(endpoint, data: bytes, wait: float):
    """
    Connect to C{endpoint}, send C{data}, and collect what comes back for
    C{wait} seconds or until the other end closes; fires with the bytes
    and whether the other end closed.
    """
    client = _Recorder()
    yield connectProtocol(endpoint, client)
    client.transport.write(data)
    timer = reactor.callLater(wait, client.transport.loseConnection)
    yield client.closed
    closedByPeer = timer.active()
    if closedByPeer:
        timer.cancel()
    return client.data, closedByPeer


def _dialPeerPort(port: int, caCert, key, cert, payloads=(), wait: float = 3.0):
    """
    Connect to a peer port over TLS presenting C{cert}, and send
    C{payloads} as frames (L{_exchange}).
    """
    options = tls.peerClientOptions(caCert, key, cert, None)
    return _exchange(wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port)),
                     b"".join(frame(payload) for payload in payloads), wait)


def _dialRaw(port: int, data: bytes, wait: float = 3.0):
    """
    Connect without TLS and send C{data} (L{_exchange}).
    """
    return _exchange(TCP4ClientEndpoint(reactor, "127.0.0.1", port), data, wait)


class ServicesTests(TestCase):
    """
    A calls B's services, through the hub and directly.
    """

    timeout = 180

    @defer.inlineCallbacks
    def test_hubThenPeerThenHubDown(self):
        """
        With B running no peer server, A's call goes through the hub; once B
        runs one (and the guide's thermometer, given with --service), A
        links directly and the same call takes the peer link;
        with the hub stopped it still does, A still lists B's services
        (from the peer, then, with B stopped too, from the synced cache),
        and a policy edited on A reaches B over the peer link.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("a")
        code = yield zone.pairCode("b")
        zone.startDevice("b", code, "--no-peer")
        yield zone.waitState("b", "Hub", "Connected")
        a, b = zone.deviceDir("a"), zone.deviceId("b")

        out = yield pzctl("--pzp-dir", a, "call", b, "get42", "get42")
        self.assertEqual(out, "42\n")
        answer = yield pzctlJSON("--pzp-dir", a, "call", "--json", b, "get42", "get42")
        self.assertEqual(answer, {"result": 42, "via": "hub"})
        self.assertEqual(_peers(zone, "a"), {b: "NotConnected"})

        yield zone.devices["b"].stop()
        zone.startDevice("b", None, "--service", "thermometer_service:makeThermometer",
                         env={"PYTHONPATH": EXAMPLES})
        yield _peerLinked(zone, "a", "b")
        answer = yield pzctlJSON("--pzp-dir", a, "call", "--json", b, "get42", "get42")
        self.assertEqual(answer, {"result": 42, "via": "peer"})
        out = yield pzctl("--pzp-dir", a, "call", b, "thermometer", "read", '["kitchen"]')
        self.assertEqual(out, "21.5\n")

        cache = os.path.join(a, "zone", "items", "servicecache.json")
        yield waitFor(lambda: b in json.load(open(cache)), what="B in A's service cache")
        yield zone.hub.stop()
        answer = yield pzctlJSON("--pzp-dir", a, "call", "--json", b, "get42", "get42")
        self.assertEqual(answer, {"result": 42, "via": "peer"})
        services = yield pzctlJSON("--pzp-dir", a, "services", "--json")
        self.assertIn({"device": b, "service": "get42", "version": "1.0", "methods": ["get42"],
                       "via": "peer"}, services)

        # Peer-triggered sync: a policy edited on A reaches B over the peer
        # link, with no hub to pass it on.
        policy = os.path.join("zone", "items", "policies", "policy.xml")
        with open(os.path.join(a, policy), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(a, policy), "w", encoding="utf-8") as f:
            f.write(text.replace("Permit every request of this zone's own devices.",
                                 "Permit every request (edited on A)."))
        yield waitFor(lambda: "edited on A" in open(os.path.join(zone.deviceDir("b"), policy),
                                                     encoding="utf-8").read(),
                      timeout=15, what="A's policy on B")

        yield zone.devices["b"].stop()
        services = yield pzctlJSON("--pzp-dir", a, "services", "--json")
        self.assertIn({"device": b, "service": "get42", "version": "1.0", "methods": ["get42"],
                       "via": "cache"}, services)
        out, err, code = yield pzctl("--pzp-dir", a, "call", b, "get42", "get42", check=False)
        self.assertEqual((out, code), ("", 1))
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("NOT_CONNECTED", err)

    @defer.inlineCallbacks
    def test_revokedPeerClosedWithinASecond(self):
        """
        Revoking B closes A's peer link to it within 1 s of C{pzctl revoke}
        returning, and A's calls to B are refused.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("a")
        yield zone.pairDevice("b")
        yield _peerLinked(zone, "a", "b")
        yield pzctl("--hub-dir", zone.hubDir, "revoke", zone.deviceId("b"))
        revoked = time.monotonic()
        yield waitFor(lambda: _peers(zone, "a").get(zone.deviceId("b")) != "Connected",
                      timeout=5, interval=0.02, what="A to close its link to B")
        self.assertLess(time.monotonic() - revoked, 1.0)
        out, err, code = yield pzctl("--pzp-dir", zone.deviceDir("a"), "call",
                                     zone.deviceId("b"), "get42", "get42", check=False)
        self.assertEqual(code, 1)
        self.assertIn("UNKNOWN_DESTINATION", err)

    @defer.inlineCallbacks
    def test_peerPortRefusesStrangers(self):
        """
        A's peer port refuses a device certificate of another zone and the
        hub's own certificate (the link closes before anything is read),
        while B's certificate is answered (B itself runs no peer mode, so
        the test's connection is its link); bad input from B there (a frame
        that is not JSON, a call to an unknown method, wrong argument
        types, an answer to no call, a million-element argument) gets
        clear errors, and A keeps serving.
        """
        zone = Zone(self)
        other = Zone(self, user="mallory")
        yield zone.startHub()
        yield other.startHub()
        yield zone.pairDevice("a")
        code = yield zone.pairCode("b")
        # B links to A only through this test's own connection.
        zone.startDevice("b", code, "--no-peer")
        yield zone.waitState("b", "Hub", "Connected")
        yield other.pairDevice("m")
        status = yield zone.status("a")
        port = status["peer_port"]
        self.assertGreater(port, 0)
        caCert = pki.readCertificate(os.path.join(zone.deviceDir("a"), "zone", "ca.pem"))
        ping = prop({"status": "ping"}, to=zone.deviceId("a"))

        mKey, mCert = _deviceFiles(other, "m")
        data, closed = yield _dialPeerPort(port, caCert, mKey, mCert, [ping])
        self.assertEqual((data, closed), (b"", True))
        hubKey = pki.readPrivateKey(os.path.join(zone.hubDir, "hub.key"))
        hubCert = pki.readCertificate(os.path.join(zone.hubDir, "hub.pem"))
        data, closed = yield _dialPeerPort(port, caCert, hubKey, hubCert, [ping])
        self.assertEqual((data, closed), (b"", True))

        bKey, bCert = _deviceFiles(zone, "b")
        a = zone.deviceId("a")

        def call(callId, method, params):
            return {"type": "JSONRPC", "from": zone.deviceId("b"), "to": a, "id": f"e{callId}",
                    "payload": {"jsonrpc": "2.0", "id": callId, "method": method,
                                "params": params}}

        payloads = [
            ping,
            call(1, "get42.noSuchMethod", {}),
            call(2, "context.read", {"name": 7}),
            {"type": "JSONRPC", "from": zone.deviceId("b"), "to": a, "id": "e3",
             "payload": {"jsonrpc": "2.0", "id": "nobody-asked", "result": 1}},
            call(4, "get42.get42", {}),
        ]
        data, closed = yield _dialPeerPort(port, caCert, bKey, bCert, payloads, wait=3.0)
        answers = [f["payload"] for f in frames(data)]
        self.assertIn("pong", [p.get("status") for p in answers])
        errors = {p.get("id"): p.get("error", {}).get("data", {}).get("zone_code")
                  for p in answers if "jsonrpc" in p}
        self.assertEqual(errors.get(1), "NO_SUCH_METHOD")
        self.assertEqual(errors.get(2), "BAD_ARGUMENTS")
        self.assertNotIn("nobody-asked", errors)
        self.assertIn({"jsonrpc": "2.0", "id": 4, "result": 42}, answers)
        self.assertFalse(closed)

        # A million-element argument is over any frame limit: refused, and
        # that link (only) is closed.
        data, closed = yield _dialPeerPort(
            port, caCert, bKey, bCert, [call(5, "get42.get42", [0] * 1_000_000)])
        [refusal] = [f["payload"] for f in frames(data) if f["payload"].get("status") == "error"]
        self.assertEqual((refusal["code"], closed), ("FRAME_TOO_LARGE", True))
        # And the noise is no frame at all: refused before TLS.
        data, closed = yield _dialRaw(port, os.urandom(4096))
        self.assertTrue(closed)

        out = yield pzctl("--pzp-dir", zone.deviceDir("b"), "call", a, "get42", "get42")
        self.assertEqual(out, "42\n")
        self.assertIn("to no call waiting for it", zone.devices["a"].log())
