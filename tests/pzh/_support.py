"""
Shared fixtures for the hub's tests: a hub with its zone in a temporary
directory, an in-memory store and a L{Clock} set to the present, and
clients that reach it over TLS in memory (L{TLSMemoryBIOFactory} at both
ends, pumped by L{twisted.test.iosim}).
"""

import itertools
import json
import sqlite3
from datetime import datetime, timezone

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, connect
from zope.interface import implementer

from pz import pki, tls
from pzh.hub import Hub, HubSettings
from pzh.protocol import HubFactory
from pzh.store import SQLiteHubStore
from pzh.zone import loadOrCreateZone
from tests.support import frames, nowClock

__all__ = ["HubFixture", "FrameClient", "SlowReaderTransport", "frames", "USER", "HOST",
           "ZONE", "RENEWAL_DUE"]

USER = "anna"
HOST = "127.0.0.1"
ZONE = f"{USER}@{HOST}"

#: Seconds after issue by which a certificate of the default 90-day lifetime
#: is in its renewal window (the last third of its life).
RENEWAL_DUE = 61 * 24 * 3600.0




@implementer(IHandshakeListener)
class FrameClient(Int32StringReceiver):
    """
    A bare client: records every frame the hub sends and sends whatever the
    test asks, lies included.

    @ivar received: the decoded frames, in order.
    @ivar handshook: whether the TLS handshake completed.
    @ivar lost: the reason the connection was lost, once it is.
    """

    MAX_LENGTH = 64 * 1024 * 1024

    def __init__(self) -> None:
        self.received = []
        self.sizes = []
        self.handshook = False
        self.lost = None

    def handshakeCompleted(self) -> None:
        """
        Record the handshake.
        """
        self.handshook = True

    def stringReceived(self, data: bytes) -> None:
        """
        Record one frame, and its size.
        """
        self.sizes.append(len(data))
        self.received.append(json.loads(data))

    def connectionLost(self, reason) -> None:
        """
        Record the loss.
        """
        self.lost = reason

    def send(self, obj) -> None:
        """
        Send C{obj} as one JSON frame.
        """
        self.sendString(json.dumps(obj).encode("utf-8"))

    def sendProp(self, to: str, payload: dict, msgId: str = "m1", sender: str = "") -> None:
        """
        Send a C{prop} envelope.
        """
        self.send({"type": "prop", "from": sender, "to": to, "id": msgId, "payload": payload})

    def statuses(self) -> list:
        """
        The C{status} of every frame received.
        """
        return [f["payload"].get("status") for f in self.received]

    def codes(self) -> list:
        """
        The codes of the error frames received.
        """
        return [f["payload"]["code"] for f in self.received
                if f["payload"].get("status") == "error"]

    def take(self) -> list:
        """
        The frames received since the last call.
        """
        out, self.received = self.received, []
        return out


class SlowReaderTransport(FakeTransport):
    """
    The hub's end of a connection whose client can stop reading, with a
    send buffer that pauses its producer when full and resumes it once
    drained, as a TCP transport does.

    @ivar stalled: while True, nothing written reaches the client.
    """

    stalled = False
    bufferSize = 16 * 1024
    producerPaused = False

    def pending(self) -> int:
        """
        Bytes written and not yet taken by the client.
        """
        return sum(len(chunk) for chunk in self.stream)

    def write(self, data) -> None:
        """
        Buffer C{data}; pause the producer once the buffer is full.
        """
        FakeTransport.write(self, data)
        if (self.producer is not None and self.streamingProducer and not self.producerPaused
                and self.pending() > self.bufferSize):
            self.producerPaused = True
            self.producer.pauseProducing()

    def abortConnection(self) -> None:
        """
        Close, discarding what the client has not read, as a socket does.
        """
        self.stream = []
        FakeTransport.abortConnection(self)

    def bufferReceived(self, buf) -> None:
        """
        Deliver C{buf} unless the connection is closing: a closed socket
        reads nothing more.
        """
        if not self.disconnecting:
            FakeTransport.bufferReceived(self, buf)

    def getOutBuffer(self):
        """
        Nothing while stalled; otherwise the buffer, after which a paused
        producer is resumed.
        """
        if self.stalled or self.disconnected:
            return None
        data = FakeTransport.getOutBuffer(self)
        if self.producerPaused and self.producer is not None:
            self.producerPaused = False
            self.producer.resumeProducing()
        return data


class Link:
    """
    One connection from a test client to the hub.

    @ivar client: the L{FrameClient}.
    @ivar server: the hub's L{pzh.protocol.HubProtocol}.
    @ivar pump: the L{IOPump} between them.
    """

    def __init__(self, client, serverTLS, pump) -> None:
        self.client = client
        self.serverTLS = serverTLS
        self.server = serverTLS.wrappedProtocol
        self.pump = pump

    @property
    def closed(self) -> bool:
        """
        Whether the connection is gone at both ends.
        """
        return self.client.lost is not None and self.pump.serverIO.disconnected


class HubFixture:
    """
    A hub for one test, with helpers to enrol devices and connect clients.
    """

    def __init__(self, testCase, settings: HubSettings = HubSettings()) -> None:
        self.testCase = testCase
        self.clock = nowClock()
        self.zone = loadOrCreateZone(testCase.mktemp(), USER, HOST, HOST, 8000, 9000)
        self.storePath = self.zone.path("hub.db")
        self.store = SQLiteHubStore(self.storePath)
        testCase.addCleanup(self.store.close)
        self.hub = Hub(self.zone, self.store, self.clock, settings)
        self.serverOptions = tls.hubServerOptions(
            self.zone.caCert, self.zone.hubKey, self.zone.hubCert
        )
        self._ports = itertools.count(40000)
        self.links = []

    def now(self) -> datetime:
        """
        The fixture clock's time as a datetime.
        """
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    def revokeMany(self, count: int, notAfter: float) -> None:
        """
        Record C{count} revoked certificates of a device that no longer
        exists, valid until C{notAfter}, straight into the store (one
        transaction, so a test can make a large CRL quickly); the next CRL
        the hub signs lists them.
        """
        db = sqlite3.connect(self.storePath)
        try:
            with db:
                serials = [str(10 ** 30 + i * 7919) for i in range(count)]
                db.executemany("INSERT INTO certificates (serial, device_id, not_after)"
                               " VALUES (?, 'gone', ?)", [(s, notAfter) for s in serials])
                db.executemany("INSERT INTO revocations (serial, device_id, revoked)"
                               " VALUES (?, 'gone', ?)", [(s, self.clock.seconds()) for s in serials])
        finally:
            db.close()

    def storeState(self) -> dict:
        """
        Every row of the store's tables, read through a connection of its
        own, to compare before and after something that must not change
        state.
        """
        db = sqlite3.connect(self.storePath)
        try:
            return {
                table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("devices", "tokens", "revocations", "settings")
            }
        finally:
            db.close()

    def deviceId(self, name: str) -> str:
        """
        The id of the device of this zone called C{name}.
        """
        return f"{self.zone.zoneId}/{name}"

    def enrolDevice(self, name: str):
        """
        Enrol a device through the hub's enrolment (as a pairing code
        would), returning its key and certificate.
        """
        key = pki.newKey()
        code = self.hub.enrolment.newCode(name)
        csr = pki.csrPEM(pki.makeCSR(key, name)).decode("ascii")
        device, cert = self.hub.enrolment.enrol(code.token, csr, "127.0.0.9")
        return key, cert

    def foreignDevice(self, name: str):
        """
        A key and certificate for the same device id, issued by another CA
        that carries this zone's name.
        """
        caKey, caCert = pki.createZoneCA(self.zone.zoneId, self.now())
        key = pki.newKey()
        cert = pki.issueDeviceCertificate(
            caKey, caCert, pki.makeCSR(key, name), self.deviceId(name), 7, self.now()
        )
        return key, cert

    def connect(self, clientOptions, serverTransport=FakeTransport) -> Link:
        """
        Open a TLS connection from a new L{FrameClient} with
        C{clientOptions} and pump it until nothing moves.

        @param serverTransport: the hub end's transport class (a
            L{SlowReaderTransport} makes a client that stops reading).
        """
        port = next(self._ports)
        serverFactory = TLSMemoryBIOFactory(
            self.serverOptions, False, HubFactory(self.hub), self.clock
        )
        client = FrameClient()
        wrapped = Factory.forProtocol(lambda: client)
        clientFactory = TLSMemoryBIOFactory(clientOptions, True, wrapped, self.clock)
        hubAddress = IPv4Address("TCP", HOST, 8000)
        clientAddress = IPv4Address("TCP", HOST, port)
        serverTLS = serverFactory.buildProtocol(clientAddress)
        clientTLS = clientFactory.buildProtocol(hubAddress)
        pump = connect(
            serverTLS,
            serverTransport(serverTLS, True, hostAddress=hubAddress, peerAddress=clientAddress),
            clientTLS,
            FakeTransport(clientTLS, False, hostAddress=clientAddress, peerAddress=hubAddress),
            greet=False,
            clock=self.clock,
        )
        link = Link(client, serverTLS, pump)
        self.links.append(link)
        self.flush()
        return link

    def connectDevice(self, key, cert, serverTransport=FakeTransport) -> Link:
        """
        Connect as an enrolled device presenting C{cert}.
        """
        return self.connect(tls.pzpClientOptions(self.zone.caCert, key, cert, HOST),
                            serverTransport)

    def connectVirgin(self) -> Link:
        """
        Connect as a device with no certificate, as one that enrols does.
        """
        return self.connect(tls.enrolmentClientOptions(HOST))

    def flush(self) -> None:
        """
        Pump every link until none moves any more bytes.
        """
        for _ in range(1000):
            moved = False
            for link in self.links:
                if link.pump.pump():
                    moved = True
            if not moved:
                return
        raise AssertionError("links never went quiet")

    def advance(self, seconds: float) -> None:
        """
        Move the clock on, then pump.
        """
        self.clock.advance(seconds)
        self.flush()

    def coalesce(self) -> None:
        """
        Let the registry's pending C{pzpUpdate} go out.
        """
        self.advance(self.hub.settings.coalesce)

    def close(self) -> None:
        """
        Close every link, let everything settle, and check that nothing is
        left scheduled on the clock.
        """
        for link in self.links:
            if link.client.lost is None and link.client.transport is not None:
                link.client.transport.loseConnection()
        self.flush()
        self.advance(self.hub.settings.coalesce)
        self.testCase.assertEqual(len(self.hub.registry), 0)
        self.testCase.assertEqual(self.clock.getDelayedCalls(), [])
