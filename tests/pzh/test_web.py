"""
Tests for L{pzh.web}: the hub's web side, requested in memory with
L{treq.testing.StubTreq}.
"""

import json

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site
from zope.interface import implementer

from pz.testing import ZONE, MemoryHub
from pzh.interfaces import IZoneLink
from pzh.web import makeSite
from pzh.weblimits import GuardedChannel, WebLimits



@implementer(IZoneLink)
class _Link:
    """
    A connected device as the registry sees it.
    """

    replaced = False
    peerPort = 0
    fingerprint = None

    def __init__(self, deviceId: str, address: str, lastSeen: float = 1.0) -> None:
        self.deviceId = deviceId
        self.address = address
        self.lastSeen = lastSeen
        self.transport = StringTransport()

    def sendString(self, data: bytes) -> None:
        pass


class WebTests(SynchronousTestCase):
    """
    The home page and C{/health}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.site = makeSite(self.hub, reactor=self.fixture.clock)
        self.treq = StubTreq(self.site.resource)
        self.session = self.signIn()

    def signIn(self) -> str:
        """
        Sign in with a new admin link; the session cookie's value.
        """
        _, url = self.site.adminAuth.newLink()
        d = self.treq.get("https://127.0.0.1:9000/signin?" + url.split("?")[1],
                          allow_redirects=False)
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 303)
        return {c.name: c.value for c in response.cookies()}["pz_session"]

    def connect(self, link) -> None:
        """
        Put C{link} in the hub's registry without any update going out.
        """
        self.hub.registry.register(link)
        self.hub.registry.cancel()

    def get(self, path: str):
        """
        GET C{path}; return the response and its body.
        """
        d = self.treq.get("https://127.0.0.1:9000" + path,
                          headers={"Cookie": f"pz_session={self.session}"})
        self.treq.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        return response, body

    def test_site(self):
        """
        L{makeSite} returns a L{Site}.
        """
        self.assertIsInstance(self.site, Site)

    def test_health(self):
        """
        C{/health} is JSON naming the zone and counting connected devices.
        """
        response, body = self.get("/health")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(json.loads(body), {"status": "ok", "zone": ZONE, "connected": 0})
        self.connect(_Link(f"{ZONE}/phone", "127.0.0.1:1"))
        _, body = self.get("/health")
        self.assertEqual(json.loads(body)["connected"], 1)

    def test_home(self):
        """
        The home page is the admin page (L{pzh.adminpage}, tested in
        C{tests.pzh.test_adminpage}), naming the zone; the same with or
        without the trailing slash.
        """
        response, body = self.get("/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"text/html; charset=utf-8"])
        self.assertIn(f"<h1>Personal zone {ZONE}</h1>".encode(), body)
        self.assertIn(b'<table id="devices">', body)
        _, again = self.get("")
        self.assertEqual(again, body)

    def test_notFound(self):
        """
        Other paths are 404.
        """
        response, _ = self.get("/nothing")
        self.assertEqual(response.code, 404)


class GuardedWebTests(SynchronousTestCase):
    """
    The hub's site as the web port serves it, over a L{StringTransport}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.reactor = MemoryReactorClock()
        self.site = makeSite(self.fixture.hub, limits=WebLimits(maxBody=2048), reactor=self.reactor)

    def request(self, data: bytes) -> StringTransport:
        address = IPv4Address("TCP", "127.0.0.1", 1)
        channel = self.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(data)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        return transport

    def test_tooLargeBeforeBody(self):
        """
        A POST announcing a body over the limit is refused with 413 before
        any of the body arrives, and closed once the client has had time
        to read it.
        """
        transport = self.request(b"POST /.well-known/mmm/ HTTP/1.1\r\nHost: hub\r\n"
                                 b"Content-Length: 1000000000000\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.reactor.advance(GuardedChannel.lingerTimeout)
        self.assertTrue(transport.disconnecting)

    def test_headers(self):
        """
        The home page (here its refusal) comes with the security headers
        and a C{Server} header naming no version.
        """
        value = self.request(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n").value()
        self.assertIn(b"X-Frame-Options: DENY", value)
        self.assertIn(b"X-Content-Type-Options: nosniff", value)
        self.assertIn(b"Content-Security-Policy: default-src 'self'; script-src 'self';", value)
        self.assertIn(b"Server: pz\r\n", value)
        self.assertNotIn(b"Twisted", value)

    def test_nonASCIITarget(self):
        """
        A request target holding non-ASCII bytes is refused with 400 and
        closed: Twisted's own 405 page raised on it (found by the fuzz run).
        """
        for target in (b"/health?\x80", b"/health/\x80"):
            transport = self.request(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 0\r\n\r\n")
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "), transport.value())
            self.assertTrue(transport.disconnecting)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_oddContentType(self):
        """
        A POST whose C{Content-Type} holds a control character that Python's
        email parser reads as a line break (found by the fuzz run) is
        answered, not turned into an unhandled exception: the site never
        parses form bodies, which none of its resources read.
        """
        for ctype in (b"a\x0bb", b"text/plain\x1c", b"application/json\x85"):
            transport = self.request(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype
                                     + b"\r\nContent-Length: 2\r\n\r\n{}")
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 405 "))
