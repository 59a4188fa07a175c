"""
End to end: a paired device that floods the hub, and one that never reads
while another sends it large frames, do not get a normal device dropped,
and the hub's memory stays bounded.
"""

import json
import os
from datetime import datetime, timezone

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from pz import pki
from pz.tls import pzpClientOptions
from tests.e2e.harness import Zone, pzctl

#: How long each attacker runs, and the most frames it may send.
_SECONDS = 6.0
_MAX_FRAMES = 200_000


@implementer(IHandshakeListener)
class _Attacker(Int32StringReceiver):
    """
    A device of the zone (a certificate from the zone CA) that, once
    registered, either floods C{to} with C{frame} or stops reading.
    """

    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self, to=None, size: int = 100, read: bool = True, every: float = 0.001,
                 batch: int = 0) -> None:
        self._to = to
        self._every = every
        self._batch = batch or max(1, 65536 // (size + 100))
        self._size = size
        self._read = read
        self.sent = 0
        self.codes = []
        self.lost = defer.Deferred()
        self._loop = None

    def handshakeCompleted(self) -> None:
        pass

    def stringReceived(self, data: bytes) -> None:
        payload = json.loads(data)["payload"]
        if payload.get("status") == "registered":
            if not self._read:
                self.transport.pauseProducing()
            if self._to is not None:
                self._loop = task.LoopingCall(self._flood)
                self._loop.start(self._every)
        elif payload.get("status") == "error":
            self.codes.append(payload.get("code"))

    def _flood(self) -> None:
        frame = json.dumps({"type": "prop", "to": self._to, "id": "f",
                            "payload": {"status": "message", "text": "x" * self._size}})
        for _ in range(self._batch):
            if self.sent >= _MAX_FRAMES:
                return
            self.sendString(frame.encode("utf-8"))
            self.sent += 1

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.lost.callback(None)


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class FlowTests(TestCase):
    """
    Attackers with paired devices' credentials against a real hub.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_attackersDoNotDropNormalDevices(self):
        """
        While one device floods unknown destinations and another pushes
        64 KiB messages at a device that reads nothing: the flooder is
        refused with C{RATE_LIMITED} and dropped, the reader that does not
        read is dropped with C{TOO_SLOW}, the hub's memory stays far below
        the unbounded growth seen before, and two normal devices exchange
        messages throughout without ever being dropped.
        """
        zone = Zone(self)
        yield zone.startHub("--link-queue", str(1024 * 1024), "--slow-link-timeout", "3",
                            "--queue-budget", str(8 * 1024 * 1024))
        yield zone.pairDevice("phone")
        yield zone.pairDevice("laptop")
        caKey = pki.readPrivateKey(os.path.join(zone.hubDir, "ca.key"))
        caCert = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        pid = int(zone.hub._transport.pid)
        before = _rss(pid)

        def attacker(name, protocol):
            key = pki.newKey()
            cert = pki.issueDeviceCertificate(caKey, caCert, pki.makeCSR(key, name),
                                              zone.deviceId(name), 1000 + len(name),
                                              datetime.now(timezone.utc))
            endpoint = wrapClientTLS(pzpClientOptions(caCert, key, cert, "127.0.0.1"),
                                     HostnameEndpoint(reactor, "127.0.0.1", zone.port))
            return connectProtocol(endpoint, protocol)

        flooder = _Attacker(to=zone.deviceId("nobody"))
        sink = _Attacker(read=False)
        # within its share (200 frames of up to 64 KiB a second): only
        # the queue stops it
        pusher = _Attacker(to=zone.deviceId("sink"), size=60 * 1024, every=0.01, batch=1)
        yield attacker("flooder", flooder)
        yield attacker("sink", sink)
        yield task.deferLater(reactor, 0.5, lambda: None)
        yield attacker("pusher", pusher)

        peak = before
        deadline = reactor.seconds() + _SECONDS
        sends = 0
        while reactor.seconds() < deadline:
            out = yield pzctl("--pzp-dir", zone.deviceDir("phone"), "send",
                              zone.deviceId("laptop"), f"still here {sends}")
            self.assertIn("delivered", out)
            sends += 1
            peak = max(peak, _rss(pid))
        for protocol in (flooder, sink, pusher):
            if protocol.transport is not None and protocol.transport.connected:
                protocol.stop()
        yield defer.DeferredList([flooder.lost, sink.lost, pusher.lost])

        self.assertGreater(sends, 0)
        self.assertIn("RATE_LIMITED", flooder.codes)
        self.assertEqual(flooder.codes[-1], "TOO_MANY_ERRORS")
        log = zone.hub.log()
        self.assertIn("TOO_SLOW", log)
        self.assertNotIn("RATE_LIMITED", pusher.codes)
        self.assertLess(peak - before, 100 * 1024 * 1024)
        status = yield zone.status("phone")
        self.assertEqual((status["mode"], status["state"]), ("Hub", "Connected"))
        for name in ("phone", "laptop"):
            self.assertEqual(log.count(f"{zone.deviceId(name)} disconnected"), 0)
