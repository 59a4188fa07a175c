"""
Tests for L{pz.endpoints}: where a process listens, from C{--port} and
C{--interface} or from C{--listen} endpoint descriptions.
"""

import os
import socket
from datetime import datetime, timezone

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint, UNIXServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.python.lockfile import FilesystemLock
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.endpoints import checkCanListenOn, checkDescription, listeningService, tcpEndpoint
from pz.process import StartupError
from tests.support import takenPort


class TCPEndpointTests(SynchronousTestCase):
    """
    L{tcpEndpoint} listens on C{--port} at C{--interface}.
    """

    def test_ipv4(self):
        """
        An IPv4 interface gives a TCP4 endpoint.
        """
        endpoint = tcpEndpoint(MemoryReactor(), 8000, "127.0.0.1")
        self.assertIsInstance(endpoint, TCP4ServerEndpoint)
        self.assertEqual((endpoint._port, endpoint._interface), (8000, "127.0.0.1"))

    def test_ipv6(self):
        """
        An IPv6 interface gives a TCP6 endpoint.
        """
        endpoint = tcpEndpoint(MemoryReactor(), 8000, "::1")
        self.assertIsInstance(endpoint, TCP6ServerEndpoint)
        self.assertEqual((endpoint._port, endpoint._interface), (8000, "::1"))


class CheckDescriptionTests(SynchronousTestCase):
    """
    L{checkDescription} accepts what C{serverFromString} can listen on and
    refuses the rest in one line naming the option.
    """

    def test_accepted(self):
        """
        TCP (IPv4 and IPv6) and UNIX descriptions are returned unchanged.
        """
        for description in ("tcp:8000", "tcp:0:interface=127.0.0.1", "unix:/run/pz/web.sock",
                            "tcp6:8000:interface=\\:\\:1"):
            self.assertEqual(checkDescription(description, "listen", True), description)

    def test_refused(self):
        """
        An unknown kind, a bad or missing port, a port out of range, a UNIX
        socket without a path and a systemd socket that was not passed are
        usage errors of one line naming the option and the description.
        """
        for description, reason in (
            ("foo:1", "Unknown endpoint type: 'foo'"),
            ("tcp:abc", "invalid literal"),
            ("tcp:", "invalid literal"),
            ("tcp:70000", "70000 is not a port number"),
            ("unix:", "no socket path"),
            ("systemd:domain=INET:index=7", "systemd passed no socket of that index"),
        ):
            error = self.assertRaises(usage.UsageError, checkDescription, description,
                                      "web-listen", True)
            message = str(error)
            self.assertTrue(message.startswith(f"--web-listen {description!r} "), message)
            self.assertIn(reason, message)
            self.assertIn("tcp:PORT:interface=ADDRESS", message)
            self.assertNotIn("\n", message)

    def test_ownTLS(self):
        """
        A port the process wraps in its own TLS refuses an C{ssl:}
        description; one it does not accepts it.
        """
        key = self.mktemp()
        caKey, caCert = pki.createZoneCA("anna@127.0.0.1", datetime.now(timezone.utc))
        pki.writePrivateKey(key, caKey)
        cert = self.mktemp()
        pki.writePEM(cert, pki.certificatePEM(caCert))
        description = f"ssl:0:privateKey={key}:certKey={cert}"
        self.assertEqual(checkDescription(description, "listen", False), description)
        message = str(self.assertRaises(usage.UsageError, checkDescription, description,
                                        "listen", True))
        self.assertIn("this port has its own TLS", message)


class CheckCanListenOnTests(SynchronousTestCase):
    """
    L{checkCanListenOn} refuses a TCP description whose port is taken, in
    the words of C{--port}'s refusal.
    """

    def test_taken(self):
        """
        A taken TCP port: C{cannot listen on ADDRESS:PORT: address already
        in use}.
        """
        port = takenPort(self)
        error = self.assertRaises(StartupError, checkCanListenOn, MemoryReactor(),
                                  f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(str(error), f"cannot listen on 127.0.0.1:{port}: address already in use")

    def test_allInterfaces(self):
        """
        Without an interface, the port is checked on every IPv4 address.
        """
        port = takenPort(self)
        error = self.assertRaises(StartupError, checkCanListenOn, MemoryReactor(), f"tcp:{port}")
        self.assertIn(f"cannot listen on 0.0.0.0:{port}: ", str(error))

    def test_free(self):
        """
        A free TCP port, port 0 and a UNIX socket pass.
        """
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for description in (f"tcp:{port}:interface=127.0.0.1", "tcp:0", f"unix:{self.mktemp()}"):
            checkCanListenOn(MemoryReactor(), description)


    def test_unixSocketUnusable(self):
        """
        A UNIX socket in a missing folder, or one a running listener holds,
        is refused in one line naming it.
        """
        missing = os.path.join(os.path.abspath(self.mktemp()), "web.sock")
        error = self.assertRaises(StartupError, checkCanListenOn, MemoryReactor(),
                                  f"unix:{missing}")
        self.assertEqual(str(error), f"cannot listen on {missing}: no folder "
                                     f"{os.path.dirname(missing)}")
        held = os.path.abspath(self.mktemp())
        lock = FilesystemLock(held + ".lock")
        self.assertTrue(lock.lock())
        self.addCleanup(lock.unlock)
        error = self.assertRaises(StartupError, checkCanListenOn, MemoryReactor(), f"unix:{held}")
        self.assertEqual(str(error), f"cannot listen on {held}: address already in use")


class ListeningServiceTests(SynchronousTestCase):
    """
    L{listeningService} listens where the description says, with the
    factory given.
    """

    def test_tcp(self):
        """
        A TCP description listens on its port and interface.
        """
        reactor, factory = MemoryReactor(), Factory()
        service = listeningService(reactor, "tcp:8123:interface=127.0.0.1", factory)
        self.assertIsInstance(service, StreamServerEndpointService)
        service.startService()
        [(port, listening, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8123, "127.0.0.1"))
        self.assertIs(listening, factory)

    def test_unix(self):
        """
        A UNIX description listens on its path.
        """
        reactor, factory = MemoryReactor(), Factory()
        path = self.mktemp()
        service = listeningService(reactor, f"unix:{path}", factory)
        self.assertIsInstance(service.endpoint, UNIXServerEndpoint)
        service.startService()
        [(address, listening, _, _, _)] = reactor.unixServers
        self.assertEqual(address, path)
        self.assertIs(listening, factory)
