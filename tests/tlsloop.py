"""
Both ends of a TLS connection in memory, pumped by C{iosim}: what the TLS
tests of the core and of every endpoint drive their handshakes with.
"""

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import connectedServerAndClient
from zope.interface import implementer

from pz import tls

__all__ = ["TLSRecorder", "tlsLoopback"]


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
