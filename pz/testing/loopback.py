# -*- test-case-name: tests.pz.test_testing -*-
"""
Both ends of a TLS connection in memory: L{TLSMemoryBIOFactory} on each
side, pumped by L{twisted.test.iosim}, on a L{Clock} -- no sockets.

The clients here are for protocol tests: L{TLSRecorder} only records the
handshake, L{FrameClient} records every frame and sends whatever a test
asks, lies included.
"""

import json
import struct
import time

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, connect, connectedServerAndClient
from zope.interface import implementer

from pz import tls

__all__ = ["nowClock", "nowReactor", "frames", "frame", "TLSRecorder", "tlsLoopback",
           "FrameClient", "SlowReaderTransport", "Link", "connectPair", "flushPumps", "address",
           "tlsFactory", "protocolFactory", "PeerCertTransport", "prop"]


def nowClock() -> Clock:
    """
    A L{Clock} that reads the present time, so that certificates made with
    the real time are valid by it.
    """
    clock = Clock()
    clock.advance(time.time())
    return clock


def nowReactor() -> MemoryReactorClock:
    """
    A L{MemoryReactorClock} that reads the present time: a clock, and a
    reactor that records the connections a device asks for.
    """
    reactor = MemoryReactorClock()
    reactor.advance(time.time())
    return reactor


def frames(data: bytes) -> list:
    """
    Split the bytes a protocol wrote into the JSON objects of its frames.
    """
    out = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        out.append(json.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


def frame(obj) -> bytes:
    """
    One wire frame carrying C{obj} as JSON.
    """
    data = json.dumps(obj).encode("utf-8")
    return struct.pack(">I", len(data)) + data


def prop(payload: dict, to: str = "", sender: str = "", msgId: str = "m1") -> dict:
    """
    A C{prop} envelope carrying C{payload}.
    """
    return {"type": "prop", "from": sender, "to": to, "id": msgId, "payload": payload}


@implementer(IHandshakeListener)
class TLSRecorder(Protocol):
    """
    The application protocol at either end: records what it learns.

    @ivar handshook: whether the TLS handshake completed.
    @ivar peer: the peer certificate seen in C{handshakeCompleted}.
    @ivar lost: why the connection was lost, once it is.
    """

    handshook = False
    peer = "not seen"
    lost = None

    def handshakeCompleted(self):
        """
        Record the peer's certificate, as the hub protocol does.
        """
        self.handshook = True
        self.peer = tls.peerCertificate(self.transport)

    def connectionLost(self, reason):
        """
        Record why the connection was lost.
        """
        self.lost = reason


def tlsLoopback(serverOptions, clientOptions, serverTransportFactory=None):
    """
    Connect a client and a server in memory over TLS and pump until
    nothing moves.

    @param serverTransportFactory: the server's in-memory transport, when a
        test must see or change its bytes (C{iosim}'s default otherwise).
    @return: C{(serverApp, clientApp)}, the two L{TLSRecorder}s.
    """
    clock = Clock()
    serverApp, clientApp = TLSRecorder(), TLSRecorder()
    serverWrapped, clientWrapped = Factory(), Factory()
    serverWrapped.protocol = lambda: serverApp
    clientWrapped.protocol = lambda: clientApp
    serverFactory = TLSMemoryBIOFactory(serverOptions, False, serverWrapped, clock)
    clientFactory = TLSMemoryBIOFactory(clientOptions, True, clientWrapped, clock)
    kwargs = {}
    if serverTransportFactory is not None:
        kwargs["serverTransportFactory"] = serverTransportFactory
    connectedServerAndClient(
        lambda: serverFactory.buildProtocol(None),
        lambda: clientFactory.buildProtocol(None),
        clock=clock,
        **kwargs,
    )
    return serverApp, clientApp


@implementer(IHandshakeListener)
class FrameClient(Int32StringReceiver):
    """
    A bare client: records every frame the hub sends and sends whatever the
    test asks, lies included.

    @ivar received: the decoded frames, in order.
    @ivar sizes: the size of each frame received, in bytes.
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
    The server's end of a connection whose client can stop reading, with a
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
    One connection between a client and a server in memory.

    @ivar client: the client's application protocol (under TLS).
    @ivar clientTLS: the client's TLS protocol.
    @ivar serverTLS: the server's TLS protocol.
    @ivar server: the server's application protocol (under TLS).
    @ivar pump: the L{IOPump} between them.
    """

    def __init__(self, clientTLS, serverTLS, pump) -> None:
        self.clientTLS = clientTLS
        self.client = getattr(clientTLS, "wrappedProtocol", clientTLS)
        self.serverTLS = serverTLS
        self.server = getattr(serverTLS, "wrappedProtocol", serverTLS)
        self.pump = pump

    @property
    def closed(self) -> bool:
        """
        Whether the connection is gone at both ends.
        """
        if hasattr(self.client, "lost"):
            clientGone = self.client.lost is not None
        else:
            clientGone = self.pump.clientIO.disconnected
        return clientGone and self.pump.serverIO.disconnected

    def flush(self) -> bool:
        """
        Pump until nothing moves; whether anything did.
        """
        return self.pump.flush()


def connectPair(serverFactory, clientFactory, clock, serverAddress, clientAddress,
                serverTransport=FakeTransport) -> Link:
    """
    Connect a protocol of C{clientFactory} to one of C{serverFactory} (each
    a TLS factory, or any factory) over an L{IOPump} on C{clock}; nothing
    is pumped yet.

    @param serverTransport: the server end's transport class (a
        L{SlowReaderTransport} makes a client that stops reading).
    """
    serverTLS = serverFactory.buildProtocol(clientAddress)
    clientTLS = clientFactory.buildProtocol(serverAddress)
    pump = connect(
        serverTLS,
        serverTransport(serverTLS, True, hostAddress=serverAddress, peerAddress=clientAddress),
        clientTLS,
        FakeTransport(clientTLS, False, hostAddress=clientAddress, peerAddress=serverAddress),
        greet=False,
        clock=clock,
    )
    return Link(clientTLS, serverTLS, pump)


def flushPumps(pumps, limit: int = 1000) -> None:
    """
    Pump every connection until none moves any more bytes.

    @raise AssertionError: if they still move after C{limit} rounds.
    """
    for _ in range(limit):
        moved = False
        for pump in list(pumps):
            if pump.pump():
                moved = True
        if not moved:
            return
    raise AssertionError("links never went quiet")


def address(host: str, port: int) -> IPv4Address:
    """
    A TCP address on C{host}.
    """
    return IPv4Address("TCP", host, port)


def tlsFactory(options, isClient: bool, wrapped, clock) -> TLSMemoryBIOFactory:
    """
    C{wrapped} under TLS with C{options}.
    """
    return TLSMemoryBIOFactory(options, isClient, wrapped, clock)


def protocolFactory(protocol) -> Factory:
    """
    A factory that builds C{protocol}, once.
    """
    return Factory.forProtocol(lambda: protocol)


class PeerCertTransport(StringTransport):
    """
    A L{StringTransport} between loopback addresses that presents a TLS
    peer certificate, as the TLS layer would after the handshake: for a
    protocol test that feeds a link bytes directly.
    """

    def __init__(self, peerCert=None, hostPort: int = 40000, peerPort: int = 8000) -> None:
        super().__init__(address("127.0.0.1", hostPort), address("127.0.0.1", peerPort))
        self.peerCert = peerCert

    def getPeerCertificate(self):
        """
        The certificate given, as the TLS layer would give it.
        """
        return self.peerCert
