"""
Tests for L{pzh.portal.tap} (C{twistd meshportal}) and its plugin.
"""

import json
import os
from datetime import datetime, timezone

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IServiceMaker
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.plugin import getPlugins
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.services import StoreService
from pzh.portal.replica import PortalReplica
from pzh.portal.tap import FrozenHeapService, Options, makeService
from pzh.weblimits import ConnectionCaps, GuardedSite, WebLimits
from tests.support import takenPort


def _options(*argv) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    The command line.
    """

    def test_defaults(self):
        """
        Only --data-dir is needed; it is made absolute; the portal listens
        on 127.0.0.1:8080 over HTTP and reports that URI.
        """
        options = _options("--data-dir", "portal")
        self.assertEqual(options["data-dir"], os.path.abspath("portal"))
        self.assertEqual((options["interface"], options["port"]), ("127.0.0.1", 8080))
        self.assertEqual(options["uri"], "http://127.0.0.1:8080/.well-known/mmm/")
        self.assertIsNone(options["follow"])

    def test_https(self):
        """
        With --cert and --key the reported URI is https.
        """
        options = _options("--data-dir", "d", "--cert", "c.pem", "--key", "k.pem", "--port", "8443")
        self.assertEqual(options["uri"], "https://127.0.0.1:8443/.well-known/mmm/")

    def test_follow(self):
        """
        --follow takes a portal URL, normalised to its transaction URL.
        """
        options = _options("--data-dir", "d", "--follow", "http://127.0.0.1:9/")
        self.assertEqual(options["follow"], "http://127.0.0.1:9/.well-known/mmm/")

    def test_refused(self):
        """
        Missing --data-dir, --cert without --key, a bad port, a tiny body
        limit, a non-positive interval, both --follow and --moved-to, and a
        --follow that is not a URL are usage errors.
        """
        for argv in ([], ["--data-dir", "d", "--cert", "c"], ["--data-dir", "d", "--port", "70000"],
                     ["--data-dir", "d", "--max-body", "10"], ["--data-dir", "d", "--max-pending", "0"],
                     ["--data-dir", "d", "--follow-interval", "0"],
                     ["--data-dir", "d", "--commit-delay", "-1"],
                     ["--data-dir", "d", "--commit-delay", "2"],
                     ["--data-dir", "d", "--follow", "http://a/", "--moved-to", "http://b/"],
                     ["--data-dir", "d", "--follow", "nowhere"]):
            self.assertRaises(usage.UsageError, _options, *argv)


    def test_listen(self):
        """
        C{--listen} may be given more than once; without it the list is
        empty and the portal listens on C{--interface}/C{--port}.
        """
        self.assertEqual(_options("--data-dir", "d")["listen"], [])
        options = _options("--data-dir", "d", "--listen", "unix:/run/pz/portal.sock",
                           "--listen", "tcp:8081")
        self.assertEqual(options["listen"], ["unix:/run/pz/portal.sock", "tcp:8081"])
        self.assertIn("--listen=", str(Options()))

    def test_badListen(self):
        """
        A description that cannot work is a usage error of one line, and
        so is C{ssl:} with C{--cert} (the portal's own TLS).
        """
        message = str(self.assertRaises(usage.UsageError, _options, "--data-dir", "d",
                                        "--listen", "tcp:http"))
        self.assertIn("--listen 'tcp:http' is not an endpoint", message)
        self.assertNotIn("\n", message)
        message = str(self.assertRaises(usage.UsageError, _options, "--data-dir", "d",
                                        "--cert", "c.pem", "--key", "k.pem",
                                        "--listen", "ssl:8443"))
        self.assertIn("--listen 'ssl:8443'", message)

    def test_webLimits(self):
        """
        The web limits are options, with the hub's defaults; a limit that
        is not positive is a usage error.
        """
        self.assertEqual(_options("--data-dir", "d")["limits"], WebLimits())
        options = _options("--data-dir", "d", "--max-body", "2048", "--request-timeout", "5",
                           "--max-connections", "40", "--max-per-address", "4")
        self.assertEqual(options["limits"], WebLimits(2048, 5.0, 40, 4))
        for name in ("--request-timeout", "--max-connections", "--max-per-address"):
            error = self.assertRaises(usage.UsageError, _options, "--data-dir", "d", name, "0")
            self.assertIn(name, str(error))


class MakeServiceTests(SynchronousTestCase):
    """
    The service tree.
    """

    def build(self, *argv):
        reactor = MemoryReactorClock()
        top = makeService(_options("--data-dir", self.dataDir, *argv), reactor)
        return reactor, top

    def setUp(self):
        self.dataDir = os.path.abspath(self.mktemp())

    def test_plain(self):
        """
        HTTP on the interface and port, the store in DATA_DIR/portal.db,
        closed before twistd forks and again when the service stops.
        """
        reactor, top = self.build("--port", "18080")
        [closer] = [s for s in top if isinstance(s, StoreService)]
        [web] = [s for s in top if isinstance(s, StreamServerEndpointService)]
        self.assertIsInstance(web.endpoint, TCP4ServerEndpoint)
        self.assertEqual(closer.store._path, os.path.join(self.dataDir, "portal.db"))
        self.assertIsNone(closer.store._connection)
        self.assertEqual(os.stat(self.dataDir).st_mode & 0o777, 0o700)
        top.startService()
        self.assertEqual(reactor.tcpServers[0][:1], (18080,))
        closer.store.head()
        top.stopService()
        self.assertIsNone(closer.store._connection)

    def test_dataDirTightened(self):
        """
        A data directory left 0755 is 0700 once the portal is built.
        """
        os.mkdir(self.dataDir, 0o755)
        os.chmod(self.dataDir, 0o755)
        self.build()
        self.assertEqual(os.stat(self.dataDir).st_mode & 0o777, 0o700)

    def test_guarded(self):
        """
        The portal is served by a L{GuardedSite} with the limits asked
        for, whose portal takes bodies up to the same limit.
        """
        _, top = self.build("--max-body", "4096", "--max-per-address", "3")
        [web] = [s for s in top if isinstance(s, StreamServerEndpointService)]
        self.assertIsInstance(web.factory, ConnectionCaps)
        site = web.factory.wrappedFactory
        self.assertIsInstance(site, GuardedSite)
        self.assertEqual(site.limits.maxBody, 4096)
        self.assertEqual(web.factory.limits.maxPerAddress, 3)
        portal = site.resource.children[b".well-known"].children[b"mmm"]
        self.assertEqual(portal._maxBody, 4096)

    def test_tooLargeInMeshForm(self):
        """
        A body over the limit is refused before it is read, with a tagged
        L{MeshResponse} whose Status is 413, as the portal itself would.
        """
        _, top = self.build("--max-body", "4096")
        [web] = [s for s in top if isinstance(s, StreamServerEndpointService)]
        address = IPv4Address("TCP", "127.0.0.1", 1)
        protocol = web.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        self.addCleanup(protocol.connectionLost, Failure(ConnectionDone()))
        protocol.dataReceived(b"POST /.well-known/mmm/ HTTP/1.1\r\nHost: p\r\n"
                              b"Content-Length: 4097\r\n\r\n")
        head, body = transport.value().split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "))
        self.assertEqual(json.loads(body)["MeshResponse"]["Status"], 413)

    def test_groupCommit(self):
        """
        The portal commits in its own writer thread, started with the
        service and stopped after the store is closed; --commit-delay sets
        how long a batch of writes stays open.
        """
        _, top = self.build("--commit-delay", "0.01")
        [closer] = [s for s in top if isinstance(s, StoreService)]
        self.assertEqual(closer.drain.__self__.settings.commitDelay, 0.01)
        [writer] = closer.workers
        pool = writer._pool
        self.assertFalse(pool.started)
        top.startService()
        self.assertTrue(pool.started)
        self.successResultOf(defer.maybeDeferred(top.stopService))
        self.assertTrue(pool.joined)
        self.assertIsNone(closer.store._connection)

    def test_https(self):
        """
        With a certificate and key, the portal listens with TLS.
        """
        now = datetime.now(timezone.utc)
        caKey, caCert = pki.createZoneCA("portal@127.0.0.1", now)
        key = pki.newKey()
        cert = pki.issueHubCertificate(caKey, caCert, "portal@127.0.0.1", ["127.0.0.1"],
                                       key.public_key(), now)
        os.makedirs(self.dataDir)
        certFile, keyFile = os.path.join(self.dataDir, "c.pem"), os.path.join(self.dataDir, "k.pem")
        pki.writePEM(certFile, pki.certificatePEM(cert))
        pki.writePrivateKey(keyFile, key)
        _, top = self.build("--cert", certFile, "--key", keyFile)
        [web] = [s for s in top if isinstance(s, StreamServerEndpointService)]
        self.assertIsInstance(web.endpoint, TCP4ServerEndpoint)
        self.assertIsInstance(web.factory.wrappedFactory, TLSMemoryBIOFactory)

    def test_listenServices(self):
        """
        With C{--listen}, the portal listens on each description, with the
        same guarded site, and not on C{--port}.
        """
        path = os.path.abspath(self.mktemp())
        reactor, top = self.build("--listen", f"unix:{path}", "--listen",
                                  "tcp:18081:interface=127.0.0.1")
        unix, tcp = [s for s in top if isinstance(s, StreamServerEndpointService)]
        self.assertIsInstance(unix.endpoint, UNIXServerEndpoint)
        self.assertEqual(unix.endpoint._address, path)
        self.assertEqual((tcp.endpoint._port, tcp.endpoint._interface), (18081, "127.0.0.1"))
        self.assertIs(unix.factory, tcp.factory)
        self.assertIsInstance(unix.factory.wrappedFactory, GuardedSite)
        top.startService()
        self.assertEqual([p[0] for p in reactor.tcpServers], [18081])
        self.assertEqual([p[0] for p in reactor.unixServers], [path])
        top.stopService()

    def test_listenPortTaken(self):
        """
        A C{--listen} TCP port that is taken stops the portal in one line,
        like C{--port}.
        """
        port = takenPort(self)
        error = self.assertRaises(SystemExit, self.build, "--listen",
                                  f"tcp:{port}:interface=127.0.0.1")
        self.assertEqual(str(error),
                         f"meshportal: cannot listen on 127.0.0.1:{port}: address already in use")

    def test_heapFrozenOnceStarted(self):
        """
        When the portal starts, after every other service of its tree, one
        full collection runs and then what the process holds is frozen out
        of the garbage collector's passes; nothing is frozen before.
        """
        _, top = self.build()
        frozen = top.services[-1]
        self.assertIsInstance(frozen, FrozenHeapService)
        calls = []
        frozen._collect = lambda: calls.append("collect")
        frozen._freeze = lambda: calls.append("freeze")
        self.assertEqual(calls, [])
        top.startService()
        self.assertEqual(calls, ["collect", "freeze"])
        self.successResultOf(defer.maybeDeferred(top.stopService))

    def test_badCertificate(self):
        """
        Certificate files that cannot be read are a usage error.
        """
        self.assertRaises(usage.UsageError, self.build, "--cert", "/nonexistent", "--key", "/none")

    def test_follow(self):
        """
        With --follow, a replica follows the primary, and writes go there.
        """
        _, top = self.build("--follow", "http://127.0.0.1:9/")
        [replica] = [s for s in top if isinstance(s, PortalReplica)]
        self.assertEqual(replica._portal.settings.primary, "http://127.0.0.1:9/.well-known/mmm/")
        self.assertEqual(replica._interval, 5.0)


class PluginTests(SynchronousTestCase):
    """
    The C{twistd meshportal} dropin.
    """

    def test_plugin(self):
        """
        C{getPlugins(IServiceMaker)} lists C{meshportal}, naming this module.
        """
        [maker] = [p for p in getPlugins(IServiceMaker) if p.tapname == "meshportal"]
        self.assertIs(maker.options, Options)
        self.assertEqual(maker.name, "Mesh portal")
