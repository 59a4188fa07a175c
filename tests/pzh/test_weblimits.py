"""
Tests for L{pzh.weblimits}: the web port's body limit, whole-request
deadline, connection caps and response headers, driven in memory with
L{StringTransport} and a L{MemoryReactorClock}.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from pzh.weblimits import (
    LINGER_BYTES,
    GuardedChannel,
    RESERVED_DESCRIPTORS,
    GuardedSite,
    RefusalLog,
    WebLimits,
    raiseFileLimit,
    sizedForFileLimit,
    webFactory,
)

LIMITS = WebLimits(maxBody=1000, requestTimeout=30.0, maxConnections=4, maxPerAddress=2)


class _Recorder(Resource):
    """
    Records the bodies it is given; C{/slow} answers only when told to.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies = []
        self.waiting = []

    def render_GET(self, request):
        if request.path == b"/slow":
            self.waiting.append(request)
            return NOT_DONE_YET
        return b"<!doctype html><p>hello</p>"

    def render_POST(self, request):
        self.bodies.append(request.content.read())
        return b"ok"


def _post(length: int, body: bytes = b"", extra: bytes = b"") -> bytes:
    return (b"POST /x HTTP/1.1\r\nHost: hub\r\nContent-Length: "
            + str(length).encode("ascii") + b"\r\n" + extra + b"\r\n" + body)


class _TCPTransport(StringTransport):
    """
    A transport with the TCP option the HTTP channel sets.
    """

    def setTcpNoDelay(self, enabled) -> None:
        pass


@implementer(ISSLTransport)
class _TLSTransport(_TCPTransport):
    """
    A transport that says it is TLS.
    """


class _Connection:
    """
    One client connection to a site, over a L{StringTransport}.
    """

    def __init__(self, site, host: str = "127.0.0.1", port: int = 40000) -> None:
        self.address = IPv4Address("TCP", host, port)
        self.channel = site.buildProtocol(self.address)
        self.transport = StringTransport(peerAddress=self.address)
        if self.channel is not None:
            self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def close(self) -> None:
        """
        The connection went away, as the reactor reports it.
        """
        self.channel.connectionLost(Failure(ConnectionDone()))

    @property
    def written(self) -> bytes:
        return self.transport.value()

    def headers(self) -> dict:
        head = self.written.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
        return {name.lower(): value for name, value in (line.split(b": ", 1) for line in head)}


class _SiteTestCase(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.resource = _Recorder()
        self.site = GuardedSite(self.resource, LIMITS, reactor=self.reactor)
        self.connections = []
        self.addCleanup(self._closeAll)

    def _closeAll(self):
        for connection in self.connections:
            if connection.channel is not None and connection.channel.transport is not None:
                connection.close()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def connect(self, host: str = "127.0.0.1", port: int = 40000) -> _Connection:
        connection = _Connection(self.site, host, port)
        self.connections.append(connection)
        return connection


class BodyLimitTests(_SiteTestCase):
    """
    A body over the limit is refused before it is read.
    """

    def test_contentLengthRefusedBeforeBody(self):
        """
        A C{Content-Length} over the limit gets 413 as soon as the headers
        end, with no body sent; the resource is never called and no body
        file is opened.
        """
        client = self.connect()
        client.send(_post(10 ** 12))
        self.assertTrue(client.written.startswith(b"HTTP/1.1 413 "), client.written)
        self.assertIn(b"TOO_LARGE", client.written)
        self.assertIsNone(client.channel.requests[0].content)
        self.assertEqual(self.resource.bodies, [])

    def test_lingerBeforeClose(self):
        """
        After a 413 the connection stays open for C{lingerTimeout} seconds,
        reading and dropping the body still arriving, so the client is
        never reset before it reads the refusal; then it is closed.
        """
        client = self.connect()
        client.send(_post(10 ** 12))
        answered = client.written
        self.reactor.advance(client.channel.lingerTimeout - 0.5)
        client.send(b"x" * 65536)
        self.assertFalse(client.transport.disconnecting)
        self.assertEqual(client.written, answered)
        self.reactor.advance(0.5)
        self.assertTrue(client.transport.disconnecting)

    def test_lingerEndsWithClient(self):
        """
        A client that closes after reading the refusal ends the lingering
        at once: no timer is left behind.
        """
        client = self.connect()
        client.send(_post(10 ** 12))
        client.close()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_lingerBounded(self):
        """
        A refused client that keeps sending past C{LINGER_BYTES} is closed
        without waiting.
        """
        client = self.connect()
        client.send(_post(10 ** 12))
        chunk = b"x" * (1024 * 1024)
        for _ in range(LINGER_BYTES // len(chunk)):
            client.send(chunk)
        self.assertFalse(client.transport.disconnecting)
        client.send(b"x")
        self.assertTrue(client.transport.disconnecting)

    def test_bodyAfterRefusalIgnored(self):
        """
        Body bytes that still arrive after the 413 are neither stored nor
        answered.
        """
        client = self.connect()
        client.send(_post(LIMITS.maxBody + 1))
        answered = client.written
        client.send(b"x" * (LIMITS.maxBody + 1))
        self.assertEqual(client.written, answered)
        self.assertIsNone(client.channel.requests[0].content)
        self.assertEqual(self.resource.bodies, [])

    def test_noContinueWhenRefused(self):
        """
        C{Expect: 100-continue} with a body over the limit gets the 413
        alone, never a 100 inviting the body.
        """
        client = self.connect()
        client.send(_post(LIMITS.maxBody + 1, extra=b"Expect: 100-continue\r\n"))
        self.assertNotIn(b"100 Continue", client.written)
        self.assertTrue(client.written.startswith(b"HTTP/1.1 413 "))

    def test_chunkedRefusedAtLimit(self):
        """
        A chunked body is refused the moment it passes the limit; no more
        than the limit was kept.
        """
        client = self.connect()
        client.send(b"POST /x HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 600
        client.send(b"258\r\n" + chunk + b"\r\n")
        self.assertEqual(client.written, b"")
        client.send(b"258\r\n" + chunk + b"\r\n")
        self.assertTrue(client.written.startswith(b"HTTP/1.1 413 "))
        content = client.channel.requests[0].content
        content.seek(0)
        self.assertLessEqual(len(content.read()), LIMITS.maxBody)
        client.send(b"0\r\n\r\n")
        self.assertEqual(self.resource.bodies, [])

    def test_refusalForm(self):
        """
        Under a prefix given in C{refusalBodies}, a refusal's body is the
        one that prefix's callable makes; elsewhere the plain JSON error.
        """
        self.site = GuardedSite(self.resource, LIMITS, reactor=self.reactor, refusalBodies={
            b"/api/": lambda status, message: b'{"Status": %d}' % (status,)})
        client = self.connect()
        client.send(_post(10 ** 6).replace(b"/x", b"/api/x"))
        self.assertTrue(client.written.endswith(b'\r\n\r\n{"Status": 413}'), client.written)
        other = self.connect(port=2)
        other.send(_post(10 ** 6))
        self.assertIn(b'"error": "TOO_LARGE"', other.written)

    def test_bodyAtLimit(self):
        """
        A body of exactly the limit is handed to the resource.
        """
        client = self.connect()
        client.send(_post(LIMITS.maxBody, b"y" * LIMITS.maxBody))
        self.assertTrue(client.written.startswith(b"HTTP/1.1 200 "), client.written)
        self.assertEqual(self.resource.bodies, [b"y" * LIMITS.maxBody])


class DeadlineTests(_SiteTestCase):
    """
    A whole request must arrive within C{requestTimeout}, however the bytes
    trickle in.
    """

    def test_tricklingClosed(self):
        """
        A client sending one byte every 10 s (each restarting the idle
        timer) gets 408 and is closed when the deadline passes.
        """
        client = self.connect()
        for byte in b"GET / HTTP/1.1\r\n":
            if self.reactor.seconds() >= LIMITS.requestTimeout:
                break
            client.send(bytes([byte]))
            self.reactor.advance(10)
        self.assertTrue(client.written.startswith(b"HTTP/1.1 408 "), client.written)
        self.assertLessEqual(self.reactor.seconds(), LIMITS.requestTimeout + 10)
        self.reactor.advance(client.channel.lingerTimeout)
        self.assertTrue(client.transport.disconnecting)

    def test_silentClosed(self):
        """
        A connection that sends nothing is closed at the deadline, with no
        answer.
        """
        client = self.connect()
        self.reactor.advance(LIMITS.requestTimeout - 1)
        self.assertFalse(client.transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(client.transport.disconnecting)
        self.assertEqual(client.written, b"")

    def test_abortIfNotClosed(self):
        """
        A peer that does not let the close finish is aborted.
        """
        client = self.connect()
        self.reactor.advance(LIMITS.requestTimeout)
        self.assertFalse(client.transport.disconnected)
        self.reactor.advance(client.channel.abortTimeout)
        self.assertTrue(client.transport.disconnected)

    def test_slowBodyClosed(self):
        """
        The deadline covers the body too.
        """
        client = self.connect()
        client.send(_post(100, b"z" * 10))
        self.reactor.advance(LIMITS.requestTimeout)
        self.assertTrue(client.written.startswith(b"HTTP/1.1 408 "))
        self.assertEqual(self.resource.bodies, [])

    def test_notWhileHandled(self):
        """
        Once a request has arrived whole, the deadline stops: a response
        that takes longer still goes out.
        """
        client = self.connect()
        client.send(b"GET /slow HTTP/1.1\r\nHost: hub\r\n\r\n")
        self.reactor.advance(LIMITS.requestTimeout * 2)
        self.assertFalse(client.transport.disconnecting)
        [request] = self.resource.waiting
        request.write(b"late")
        request.finish()
        self.assertTrue(client.written.startswith(b"HTTP/1.1 200 "))

    def test_rearmedForNextRequest(self):
        """
        On a kept-alive connection each request gets its own deadline,
        counted from the previous response.
        """
        client = self.connect()
        self.reactor.advance(LIMITS.requestTimeout - 5)
        client.send(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
        self.assertTrue(client.written.startswith(b"HTTP/1.1 200 "))
        self.reactor.advance(LIMITS.requestTimeout - 1)
        self.assertFalse(client.transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(client.transport.disconnecting)


class ConnectionCapTests(_SiteTestCase):
    """
    Connections are capped per address and in all, outside TLS.
    """

    def setUp(self):
        super().setUp()
        self.caps = webFactory(self.site)
        self.open = []
        self.addCleanup(self._closeCapped)

    def _closeCapped(self):
        for protocol in self.open:
            if protocol in self.caps.protocols:
                protocol.connectionLost(Failure(ConnectionDone()))

    def connectCapped(self, host: str = "127.0.0.1", port: int = 40000):
        """
        A connection through the caps: its protocol, or L{None} if refused.
        """
        address = IPv4Address("TCP", host, port)
        protocol = self.caps.buildProtocol(address)
        if protocol is not None:
            protocol.makeConnection(StringTransport(peerAddress=address))
            self.open.append(protocol)
        return protocol

    def test_perAddress(self):
        """
        Past C{maxPerAddress} connections from one address, more from it
        are refused (closed at once) while another address still gets in;
        one closing frees its place.
        """
        first = self.connectCapped(port=1)
        self.connectCapped(port=2)
        self.assertIsNone(self.connectCapped(port=3))
        self.assertIsNotNone(self.connectCapped("127.0.0.2"))
        first.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(self.connectCapped(port=4))
        self.assertEqual(self.caps.openConnections, 3)

    def test_total(self):
        """
        Past C{maxConnections} in all, every new connection is refused.
        """
        for n in range(LIMITS.maxConnections):
            self.assertIsNotNone(self.connectCapped(f"127.0.0.{n + 1}"))
        self.assertIsNone(self.connectCapped("127.0.1.1"))
        self.assertEqual(self.caps.openConnections, LIMITS.maxConnections)

    def test_refusedBeforeTLS(self):
        """
        With TLS, the caps refuse before the TLS layer exists: a refused
        connection gets no protocol at all, so the port closes it at once.
        """
        caps = webFactory(self.site, _serverTLS())
        for n in range(LIMITS.maxPerAddress):
            address = IPv4Address("TCP", "127.0.0.1", n)
            protocol = caps.buildProtocol(address)
            self.assertIsInstance(protocol.wrappedProtocol, TLSMemoryBIOProtocol)
            protocol.makeConnection(_TCPTransport(peerAddress=address))
            self.addCleanup(protocol.connectionLost, Failure(ConnectionDone()))
        self.assertIsNone(caps.buildProtocol(IPv4Address("TCP", "127.0.0.1", 99)))

    def test_channelClosesCount(self):
        """
        A connection the site closes (here after a 413) stops counting
        once the transport reports it gone.
        """
        protocol = self.connectCapped()
        protocol.dataReceived(_post(10 ** 9))
        self.reactor.advance(GuardedChannel.lingerTimeout)
        self.assertTrue(protocol.transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.caps.openConnections, 0)


def _serverTLS():
    """
    TLS server options with a throwaway certificate.
    """
    from datetime import datetime, timezone

    from twisted.internet.ssl import PrivateCertificate

    from pz import pki

    now = datetime.now(timezone.utc)
    caKey, caCert = pki.createZoneCA("web@127.0.0.1", now)
    key = pki.newKey()
    cert = pki.issueHubCertificate(caKey, caCert, "web@127.0.0.1", ["127.0.0.1"],
                                   key.public_key(), now)
    return PrivateCertificate.loadPEM(pki.keyPEM(key) + pki.certificatePEM(cert)).options()


class HeaderTests(_SiteTestCase):
    """
    Responses carry the security headers and a neutral C{Server}.
    """

    def test_headers(self):
        """
        An HTML page comes with C{nosniff}, C{DENY} framing, a content
        policy that loads nothing from elsewhere and runs no inline script,
        and C{Server} naming no version.
        """
        client = self.connect()
        client.send(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
        headers = client.headers()
        self.assertEqual(headers[b"x-content-type-options"], b"nosniff")
        self.assertEqual(headers[b"x-frame-options"], b"DENY")
        self.assertIn(b"default-src 'self'", headers[b"content-security-policy"])
        self.assertIn(b"script-src 'self';", headers[b"content-security-policy"])
        self.assertNotIn(b"unsafe", headers[b"content-security-policy"])
        self.assertIn(b"frame-ancestors 'none'", headers[b"content-security-policy"])
        self.assertEqual(headers[b"server"], b"pz")
        self.assertNotIn(b"strict-transport-security", headers)

    def test_hstsOverTLS(self):
        """
        Over TLS, C{Strict-Transport-Security} is sent too, also on a
        refusal.
        """
        for send in (b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n", _post(10 ** 6)):
            address = IPv4Address("TCP", "127.0.0.1", 1)
            channel = self.site.buildProtocol(address)
            transport = _TLSTransport(peerAddress=address)
            channel.makeConnection(transport)
            channel.dataReceived(send)
            self.assertIn(b"Strict-Transport-Security: max-age=", transport.value())
            channel.connectionLost(Failure(ConnectionDone()))

    def test_refusalHeaders(self):
        """
        A refusal carries the same headers.
        """
        client = self.connect()
        client.send(_post(10 ** 6))
        headers = client.headers()
        self.assertEqual(headers[b"server"], b"pz")
        self.assertEqual(headers[b"x-frame-options"], b"DENY")
        self.assertEqual(headers[b"connection"], b"close")


class _FakeResource:
    RLIMIT_NOFILE = 7
    RLIM_INFINITY = -1

    def __init__(self, soft, hard, fail=False) -> None:
        self.limits = (soft, hard)
        self.fail = fail

    def getrlimit(self, which):
        return self.limits

    def setrlimit(self, which, limits):
        if self.fail:
            raise ValueError("not permitted")
        self.limits = limits


class FileLimitTests(SynchronousTestCase):
    """
    The caps fit the process's descriptor limit.
    """

    def test_raise(self):
        """
        The soft limit is raised to the hard one, at most 65,536.
        """
        fake = _FakeResource(1024, 4096)
        self.assertEqual(raiseFileLimit(fake), 4096)
        self.assertEqual(fake.limits, (4096, 4096))
        fake = _FakeResource(1024, _FakeResource.RLIM_INFINITY)
        self.assertEqual(raiseFileLimit(fake), 65536)

    def test_raiseRefused(self):
        """
        If raising is refused, the current soft limit stands.
        """
        self.assertEqual(raiseFileLimit(_FakeResource(1024, 4096, fail=True)), 1024)

    def test_sized(self):
        """
        The web port gets at most half of the descriptors left after the
        reserve; caps already below stay.
        """
        limits = sizedForFileLimit(WebLimits(maxConnections=5000, maxPerAddress=4000), 1024)
        self.assertEqual(limits.maxConnections, (1024 - RESERVED_DESCRIPTORS) // 2)
        self.assertEqual(limits.maxPerAddress, limits.maxConnections)
        self.assertEqual(sizedForFileLimit(WebLimits(), 65536), WebLimits())

    def test_invalid(self):
        """
        Limits must be positive.
        """
        self.assertRaises(ValueError, WebLimits, maxBody=0)
        self.assertRaises(ValueError, WebLimits, requestTimeout=-1)


class RefusalLogTests(SynchronousTestCase):
    """
    Refusals are logged without flooding the log.
    """

    def test_rateLimited(self):
        """
        The first refusal is logged; the next ones within a minute only
        counted, and reported in the next line.
        """
        clock = Clock()
        refusals = RefusalLog(clock)
        events = []
        refusals.log = Logger(observer=events.append)
        for n in range(1000):
            refusals.note(f"127.0.0.{n % 200}", "408 Request Timeout")
        self.assertEqual(len(events), 1)
        clock.advance(60)
        refusals.note("127.0.0.9", "413 Payload Too Large")
        self.assertEqual(len(events), 2)
        self.assertEqual(events[1]["count"], 1000)
        self.assertEqual(events[1]["peer"], "127.0.0.9")

    def test_siteRefusalsLogged(self):
        """
        A site's refusals (here 300 connections timing out) write one line.
        """
        reactor = MemoryReactorClock()
        site = GuardedSite(_Recorder(), LIMITS, reactor=reactor)
        events = []
        site.refusals.log = Logger(observer=events.append)
        channels = []
        for n in range(300):
            address = IPv4Address("TCP", "127.0.0.1", n)
            channel = site.buildProtocol(address)
            channel.makeConnection(StringTransport(peerAddress=address))
            channel.dataReceived(b"G")
            channels.append(channel)
        reactor.advance(LIMITS.requestTimeout)
        self.assertEqual(len(events), 1)
        for channel in channels:
            channel.connectionLost(Failure(ConnectionDone()))
