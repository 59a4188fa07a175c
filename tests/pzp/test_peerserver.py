"""
Tests for L{pzp.peerserver}: the peer server listens where it is told,
reports the port it got, and a port it cannot have leaves the device
running without one.
"""

from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from pzp.peerserver import PeerServer


class _Busy(MemoryReactor):
    def listenTCP(self, port, factory, backlog=50, interface=""):
        raise CannotListenError(interface, port, OSError(98, "Address already in use"))


class PeerServerTests(SynchronousTestCase):
    def test_listens(self):
        reactor = MemoryReactor()
        factory = Factory()
        server = PeerServer(reactor, lambda: factory, 8040, "127.0.0.1")
        self.assertEqual(server.port(), 0)
        server.start()
        [(port, got, _, interface)] = reactor.tcpServers
        self.assertEqual((port, got, interface), (8040, factory, "127.0.0.1"))
        self.assertEqual(server.port(), 8040)
        server.start()
        self.assertEqual(len(reactor.tcpServers), 1)
        server.stop()
        self.assertEqual(server.port(), 0)

    def test_none(self):
        """
        Port C{None}: no peer server at all.
        """
        reactor = MemoryReactor()
        server = PeerServer(reactor, lambda: self.fail("no factory needed"), None)
        server.start()
        self.assertEqual((reactor.tcpServers, server.port()), ([], 0))
        server.stop()

    def test_cannotListen(self):
        """
        A port in use is logged and leaves no peer server (port 0), with
        the reason kept.
        """
        server = PeerServer(_Busy(), Factory, 8040)
        server.start()
        self.assertEqual(server.port(), 0)
        self.assertIn("cannot listen on port 8040", server.error)
        self.assertEqual(len(self.flushLoggedErrors()), 0)
