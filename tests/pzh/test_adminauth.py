"""
Tests for L{pzh.adminauth}: signing in to the hub's admin web side, as
the hub's site serves it (L{pzh.web.makeSite}) over a L{StringTransport},
with a L{MemoryReactorClock} as the clock.
"""

import json
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from pz.testing import ZONE, MemoryHub
from pzh.adminauth import LINK_LIFETIME, SESSION_LIFETIME, AdminAuth, guarded
from pzh.web import makeSite
from pzh.weblimits import HSTS, SECURITY_HEADERS


class _Response:
    """
    A parsed HTTP/1.1 response.
    """

    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.code = int(lines[0].split(b" ")[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b": ")
            self.headers.setdefault(name.lower().decode(), []).append(value.decode())

    def header(self, name: str):
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def json(self):
        return json.loads(self.body)


class _Echo(Resource):
    """
    A resource that says which method reached it.
    """

    isLeaf = True

    def render(self, request) -> bytes:
        return b"reached " + request.method


class AdminAuthTests(SynchronousTestCase):
    """
    Sign-in links, sessions, the CSRF token and the attempt limit.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.addCleanup(self.fixture.close)
        self.clock = MemoryReactorClock()
        self.auth = AdminAuth(self.clock, "hub.example", 9443)
        self.site = makeSite(self.fixture.hub, reactor=self.clock, auth=self.auth)
        self.site.resource.putChild(b"echo", guarded(_Echo(), self.auth))

    def request(self, method: str, path: str, headers=(), address="127.0.0.1",
                body: bytes = b"") -> _Response:
        """
        Send one request from C{address}; the parsed response.
        """
        peer = (IPv6Address if ":" in address else IPv4Address)("TCP", address, 1234)
        channel = self.site.buildProtocol(peer)
        transport = StringTransport(peerAddress=peer)
        channel.makeConnection(transport)
        lines = [f"{method} {path} HTTP/1.1", "Host: hub.example", "Connection: close",
                 f"Content-Length: {len(body)}", *headers]
        channel.dataReceived("\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + body)
        channel.connectionLost(Failure(ConnectionDone()))
        return _Response(transport.value())

    def signInPath(self) -> str:
        """
        A new link's path and query.
        """
        _, url = self.auth.newLink()
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    def signIn(self) -> str:
        """
        Sign in with a new link; the session cookie's value.
        """
        response = self.request("GET", self.signInPath())
        self.assertEqual(response.code, 303, response.body)
        return SimpleCookie(response.header("set-cookie"))["pz_session"].value

    def cookie(self, value: str) -> str:
        return f"Cookie: pz_session={value}"

    def assertRefused(self, response, code: int, errorCode: str) -> None:
        self.assertEqual(response.code, code, response.body)
        self.assertEqual(response.json["code"], errorCode)
        self.assertNotIn(b"Personal zone", response.body)

    def test_link(self):
        """
        L{AdminAuth.newLink} answers an id and an HTTPS URL to C{/signin}
        on the zone's host and web port, whose token holds the id; each
        link differs.
        """
        tokenId, url = self.auth.newLink()
        self.assertTrue(url.startswith("https://hub.example:9443/signin?token="), url)
        token = url.split("token=")[1]
        self.assertEqual(token.split(".")[0], tokenId)
        self.assertGreater(len(token), 40)
        self.assertNotEqual(self.auth.newLink()[1], url)
        self.assertEqual(AdminAuth(self.clock, "::1", 9000).newLink()[1][:22],
                         "https://[::1]:9000/sig")

    def test_badSettings(self):
        """
        A lifetime that is not positive is refused when the hub starts.
        """
        for settings in ({"linkLifetime": 0}, {"sessionLifetime": -1}):
            self.assertRaises(ValueError, AdminAuth, self.clock, "hub", 1, **settings)

    def test_signIn(self):
        """
        A link sets a C{pz_session} cookie (Secure, HttpOnly,
        SameSite=Strict, Path=/, Max-Age) and redirects to C{/}, which the
        cookie opens.
        """
        response = self.request("GET", self.signInPath())
        self.assertEqual(response.code, 303)
        self.assertEqual(response.header("location"), "/")
        cookie = SimpleCookie(response.header("set-cookie"))["pz_session"]
        self.assertGreater(len(cookie.value), 30)
        self.assertTrue(cookie["secure"])
        self.assertTrue(cookie["httponly"])
        self.assertEqual(cookie["samesite"].lower(), "strict")
        self.assertEqual(cookie["path"], "/")
        self.assertEqual(cookie["max-age"], str(int(SESSION_LIFETIME)))
        home = self.request("GET", "/", [self.cookie(cookie.value)])
        self.assertEqual(home.code, 200)
        self.assertIn(f"Personal zone {ZONE}".encode(), home.body)

    def test_secondUse(self):
        """
        A link opens one session only: its second use is 401, sets no
        cookie, and says it was used.
        """
        path = self.signInPath()
        self.assertEqual(self.request("GET", path).code, 303)
        again = self.request("GET", path)
        self.assertRefused(again, 401, "NOT_AUTHORISED")
        self.assertIn("already been used", again.json["message"])
        self.assertIsNone(again.header("set-cookie"))

    def test_expiredLink(self):
        """
        A link is refused once its ten minutes have passed.
        """
        path = self.signInPath()
        self.clock.advance(LINK_LIFETIME + 1)
        response = self.request("GET", path)
        self.assertRefused(response, 401, "NOT_AUTHORISED")
        self.assertIsNone(response.header("set-cookie"))

    def test_linkInTime(self):
        """
        Just before its end a link still works.
        """
        path = self.signInPath()
        self.clock.advance(LINK_LIFETIME - 1)
        self.assertEqual(self.request("GET", path).code, 303)

    def test_wrongTokens(self):
        """
        A wrong secret for a real link, an unknown id, no token, a token
        with no secret and a non-ASCII one are all 401 with no cookie, and
        leave the real link usable.
        """
        path = self.signInPath()
        good = path.split("token=")[1]
        tokenId = good.split(".")[0]
        for token in (f"{tokenId}.AAAA", f"{tokenId}.", tokenId, "nope.AAAA", "", "%C3%A9",
                      good[:-1]):
            response = self.request("GET", f"/signin?token={token}")
            self.assertRefused(response, 401, "NOT_AUTHORISED")
            self.assertIsNone(response.header("set-cookie"))
            self.clock.advance(1)
        self.assertEqual(self.request("GET", "/signin").code, 401)
        self.assertEqual(self.request("GET", path).code, 303)

    def test_noSession(self):
        """
        Without a cookie, with a forged one, and with an expired session,
        C{/} and a guarded resource are 401 JSON and show nothing.
        """
        self.assertRefused(self.request("GET", "/"), 401, "NOT_AUTHORISED")
        self.assertRefused(self.request("GET", "/echo"), 401, "NOT_AUTHORISED")
        self.assertRefused(self.request("GET", "/echo/deeper"), 401, "NOT_AUTHORISED")
        forged = self.request("GET", "/", [self.cookie("A" * 43)])
        self.assertRefused(forged, 401, "NOT_AUTHORISED")
        value = self.signIn()
        self.assertEqual(self.request("GET", "/", [self.cookie(value)]).code, 200)
        self.assertRefused(self.request("GET", "/", [self.cookie(value[:-1])]), 401,
                           "NOT_AUTHORISED")
        self.clock.advance(SESSION_LIFETIME - 1)
        self.assertEqual(self.request("GET", "/echo", [self.cookie(value)]).code, 200)
        self.clock.advance(1)
        self.assertRefused(self.request("GET", "/", [self.cookie(value)]), 401, "NOT_AUTHORISED")
        self.assertRefused(self.request("GET", "/echo", [self.cookie(value)]), 401,
                           "NOT_AUTHORISED")

    def test_openPaths(self):
        """
        C{/health} and the sign-in page need no session; a path that does
        not exist is 404 without one.
        """
        self.assertEqual(self.request("GET", "/health").code, 200)
        self.assertEqual(self.request("GET", "/nothing").code, 404)

    def test_logout(self):
        """
        L{AdminAuth.logout} ends every session and voids unused links.
        """
        first, second = self.signIn(), self.signIn()
        unused = self.signInPath()
        self.assertEqual(self.auth.logout(), 2)
        for value in (first, second):
            self.assertRefused(self.request("GET", "/", [self.cookie(value)]), 401,
                               "NOT_AUTHORISED")
        self.assertEqual(self.request("GET", unused).code, 401)
        self.assertEqual(self.auth.logout(), 0)

    def test_csrf(self):
        """
        A POST, PUT, PATCH or DELETE to a guarded resource needs the
        session's C{X-CSRF-Token}: without it, or with another session's
        or a wrong one, 403; with it, it passes.  A GET needs none.
        """
        value = self.signIn()
        other = self.signIn()
        session = self.auth.sessionOf(_CookieRequest(value))
        token = self.auth.csrfToken(session)
        otherToken = self.auth.csrfToken(self.auth.sessionOf(_CookieRequest(other)))
        self.assertNotEqual(token, otherToken)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            for extra in ([], ["X-CSRF-Token: wrong"], [f"X-CSRF-Token: {otherToken}"],
                          ["X-CSRF-Token: \u00e9"]):
                response = self.request(method, "/echo", [self.cookie(value), *extra])
                self.assertRefused(response, 403, "CSRF_REQUIRED")
            passed = self.request(method, "/echo",
                                  [self.cookie(value), f"X-CSRF-Token: {token}"])
            self.assertEqual((passed.code, passed.body), (200, b"reached " + method.encode()))
        self.assertEqual(self.request("GET", "/echo", [self.cookie(value)]).body, b"reached GET")
        # Without a session the answer is 401, whatever the header.
        self.assertRefused(self.request("POST", "/echo", [f"X-CSRF-Token: {token}"]), 401,
                           "NOT_AUTHORISED")

    def test_sessionResource(self):
        """
        C{GET /session} gives the page its session's CSRF token.
        """
        value = self.signIn()
        response = self.request("GET", "/session", [self.cookie(value)])
        self.assertEqual(response.code, 200)
        session = self.auth.sessionOf(_CookieRequest(value))
        self.assertEqual(response.json["csrf"], self.auth.csrfToken(session))
        self.assertEqual(response.header("cache-control"), "no-store")
        self.assertRefused(self.request("GET", "/session"), 401, "NOT_AUTHORISED")

    def test_signOut(self):
        """
        C{POST /signout} with the CSRF token ends that session only and
        clears the cookie; without the token it is 403 and the session
        lives on.
        """
        value, other = self.signIn(), self.signIn()
        token = self.auth.csrfToken(self.auth.sessionOf(_CookieRequest(value)))
        self.assertRefused(self.request("POST", "/signout", [self.cookie(value)]), 403,
                           "CSRF_REQUIRED")
        self.assertEqual(self.request("GET", "/", [self.cookie(value)]).code, 200)
        response = self.request("POST", "/signout",
                                [self.cookie(value), f"X-CSRF-Token: {token}"])
        self.assertEqual(response.code, 200)
        self.assertEqual(SimpleCookie(response.header("set-cookie"))["pz_session"]["max-age"],
                         "0")
        self.assertRefused(self.request("GET", "/", [self.cookie(value)]), 401, "NOT_AUTHORISED")
        self.assertEqual(self.request("GET", "/", [self.cookie(other)]).code, 200)

    def test_rateLimited(self):
        """
        20 wrong tokens in one second from one address: the first ten are
        401, the rest 429 C{RATE_LIMITED} with a C{Retry-After}; even a
        valid link is refused then, and works once the address waited.
        Another address is not held back.
        """
        codes = [self.request("GET", "/signin?token=x.y").code for _ in range(20)]
        self.assertEqual(codes, [401] * 10 + [429] * 10)
        limited = self.request("GET", "/signin?token=x.y")
        self.assertRefused(limited, 429, "RATE_LIMITED")
        self.assertEqual(limited.header("retry-after"), "1")
        path = self.signInPath()
        self.assertEqual(self.request("GET", path).code, 429)
        self.assertEqual(self.request("GET", path, address="127.0.0.2").code, 303)
        self.clock.advance(1)
        self.assertEqual(self.request("GET", self.signInPath()).code, 303)

    def test_rateLimitedIPv6Network(self):
        """
        IPv6 addresses of one /64 share their attempts.
        """
        codes = [self.request("GET", "/signin?token=x.y", address=f"2001:db8::{n:x}").code
                 for n in range(11)]
        self.assertEqual(codes, [401] * 10 + [429])
        self.assertEqual(self.request("GET", "/signin?token=x.y",
                                      address="2001:db8:0:1::1").code, 401)

    def test_headers(self):
        """
        Every response (sign-in, refusals, the page, C{/health}, 404)
        carries the security headers: a content policy without inline
        script, no sniffing, no referrer, HSTS over HTTPS.
        """
        value = self.signIn()
        policy = dict(SECURITY_HEADERS)[b"Content-Security-Policy"].decode()
        self.assertIn("script-src 'self'", policy)
        self.assertNotIn("unsafe-inline", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        responses = [
            self.request("GET", self.signInPath()),
            self.request("GET", "/signin?token=x.y"),
            self.request("GET", "/"),
            self.request("GET", "/", [self.cookie(value)]),
            self.request("POST", "/echo", [self.cookie(value)]),
            self.request("GET", "/health"),
            self.request("GET", "/nothing"),
        ]
        for response in responses:
            self.assertEqual(response.header("content-security-policy"), policy)
            self.assertEqual(response.header("x-content-type-options"), "nosniff")
            self.assertEqual(response.header("referrer-policy"), "no-referrer")

    def test_hsts(self):
        """
        Over TLS the answers, refusals included, carry HSTS.
        """
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
        transport.getHost = lambda: IPv4Address("TCP", "127.0.0.1", 443)
        channel.makeConnection(transport)
        channel.isSecure = lambda: True
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n")
        channel.connectionLost(Failure(ConnectionDone()))
        response = _Response(transport.value())
        self.assertEqual(response.code, 401)
        self.assertEqual(response.header(HSTS[0].decode()), HSTS[1].decode())

    def test_tokenNotLogged(self):
        """
        The access log line of a sign-in keeps the token out.
        """
        from pzh.weblimits import _redactedLogFormatter
        from twisted.web.test.requesthelper import DummyRequest

        path = self.signInPath()
        request = DummyRequest([b"signin"])
        request.uri = path.encode("ascii")
        request.method = b"GET"
        request.clientproto = b"HTTP/1.1"
        request.code = 303
        request.sentLength = 0
        line = self.site._logFormatter("now", request)
        self.assertEqual(self.site._logFormatter, _redactedLogFormatter)
        self.assertNotIn(path.split("token=")[1].split(".")[1], line)
        self.assertIn("/signin?token=REDACTED", line)


class _CookieRequest:
    """
    Just enough of a request to carry a session cookie.
    """

    def __init__(self, value: str) -> None:
        self._value = value.encode("ascii")

    def getCookie(self, name: bytes):
        return self._value if name == b"pz_session" else None
