# -*- test-case-name: tests.pzh.test_adminauth -*-
"""
Signing in to the hub's admin web page.

Whoever can run C{pzctl --hub-dir DIR admin-link} on the hub's machine
(the owner of the data directory, through the admin socket) gets a one-time
sign-in link, C{https://HOST:WEB_PORT/signin?token=TOKEN}.  Opening it
within L{LINK_LIFETIME} seconds, once, sets a session cookie; every other
page of the admin side asks for that cookie (L{guarded}), and every request
that changes something also for the session's CSRF token in an
C{X-CSRF-Token} header, which a page of another site cannot send.

A token is C{ID.SECRET}: the id picks the link, and the SHA-256 of the
secret is compared with the stored one with L{hmac.compare_digest}, so
neither the secret nor how much of it matched shows in the timing, and the
hub never keeps a secret that would open a session.  Session ids are kept
as their SHA-256 too.

Links and sessions live in this process's memory only: a restart of the
hub signs everyone out and voids the links not yet used.  That is the
safe default for a page that can revoke devices, and costs a new
C{admin-link}.
"""

import hashlib
import hmac
import ipaddress
import json
import secrets
from collections import OrderedDict
from typing import Callable, Optional

import attrs
from twisted.logger import Logger
from twisted.web.resource import Resource

from pz.bucket import TokenBucket
from pz.errors import ZoneError

__all__ = [
    "AdminAuth",
    "Session",
    "guarded",
    "SignInResource",
    "SignOutResource",
    "SessionResource",
    "COOKIE",
    "CSRF_HEADER",
    "LINK_LIFETIME",
    "SESSION_LIFETIME",
]

#: The session cookie's name.
COOKIE = b"pz_session"

#: The header carrying the session's CSRF token on a state-changing request.
CSRF_HEADER = b"X-CSRF-Token"

#: Seconds a sign-in link stays valid.
LINK_LIFETIME = 600.0

#: Seconds a session lasts from its sign-in.
SESSION_LIFETIME = 12 * 3600.0

#: Methods that change something, and so need the CSRF token.
STATE_CHANGING = frozenset({b"POST", b"PUT", b"PATCH", b"DELETE"})

#: Links and sessions kept at most; past them the oldest goes.
MAX_LINKS = 64
MAX_SESSIONS = 64

#: Sign-in attempts from one address: this many a second, this many at once.
SIGNIN_RATE = 1.0
SIGNIN_BURST = 10

#: Addresses whose attempt buckets are kept at most.
MAX_BUCKETS = 4096


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _json(request, status: int, code: str, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps({"code": code, "message": message}).encode("utf-8")


def _addressKey(request) -> str:
    """
    What one client's attempts are counted under: its IPv4 address, or the
    /64 network of its IPv6 address (one host usually holds a whole /64).
    """
    host = getattr(request.getClientAddress(), "host", "") or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@attrs.frozen
class _Link:
    digest: bytes
    expires: float
    used: bool = False


@attrs.frozen
class Session:
    """
    One signed-in browser.

    @ivar key: the SHA-256 of the cookie's value, under which it is kept.
    @ivar csrf: the token every state-changing request must carry.
    @ivar created: when it was signed in.
    @ivar expires: when it ends.
    """

    key: bytes
    csrf: str
    created: float
    expires: float


class AdminAuth:
    """
    Sign-in links, sessions and the sign-in rate limit of one hub.

    @param clock: an L{IReactorTime}: its C{seconds} is the time.
    @param host: the host name the hub's web port is reached at.
    @param webPort: that port.
    @param random: makes a URL-safe secret of the given number of bytes
        (L{secrets.token_urlsafe}; tests pass a predictable one).
    """

    log = Logger()

    def __init__(self, clock, host: str, webPort: int, *,
                 linkLifetime: float = LINK_LIFETIME,
                 sessionLifetime: float = SESSION_LIFETIME,
                 rate: float = SIGNIN_RATE, burst: int = SIGNIN_BURST,
                 random: Callable[[int], str] = secrets.token_urlsafe) -> None:
        if linkLifetime <= 0 or sessionLifetime <= 0:
            raise ValueError("lifetimes must be positive")
        self._clock = clock
        self._host = host
        self._webPort = webPort
        self.linkLifetime = linkLifetime
        self.sessionLifetime = sessionLifetime
        self._rate = rate
        self._burst = burst
        self._random = random
        self._links = OrderedDict()
        self._sessions = OrderedDict()
        self._buckets = OrderedDict()

    def _now(self) -> float:
        return self._clock.seconds()

    def _prune(self) -> None:
        now = self._now()
        for table in (self._links, self._sessions):
            for key in [k for k, v in table.items() if v.expires <= now]:
                del table[key]

    @property
    def baseURL(self) -> str:
        """
        C{https://HOST:PORT}, with an IPv6 host in brackets.
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self._webPort}"

    def newLink(self) -> tuple:
        """
        A new one-time sign-in link.

        @return: C{(tokenId, url)}: the id names the link in logs (it
            opens nothing alone); the URL carries the whole token.
        """
        self._prune()
        tokenId, secret = self._random(9), self._random(32)
        while len(self._links) >= MAX_LINKS:
            self._links.popitem(last=False)
        self._links[tokenId] = _Link(_digest(secret), self._now() + self.linkLifetime)
        self.log.info("admin sign-in link {tokenId} issued", tokenId=tokenId)
        return tokenId, f"{self.baseURL}/signin?token={tokenId}.{secret}"

    def allowAttempt(self, request) -> float:
        """
        Count a sign-in attempt from C{request}'s address.

        @return: 0 if it may go ahead, else the seconds until one may.
        """
        key = _addressKey(request)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(self._rate, self._burst, self._now)
            while len(self._buckets) >= MAX_BUCKETS:
                self._buckets.popitem(last=False)
        self._buckets[key] = bucket
        return bucket.take()

    def signIn(self, request, token: str) -> Session:
        """
        Use C{token} to open a session, setting its cookie on C{request}.

        @raise ZoneError: C{NOT_AUTHORISED}, saying why, if the token is
            malformed, unknown, expired or used; nothing is set then.
        """
        self._prune()
        tokenId, _, secret = token.partition(".")
        link = self._links.get(tokenId)
        # Compare a digest even for an unknown id, so that the timing does
        # not say which ids exist.
        stored = link.digest if link is not None else _digest("")
        matches = hmac.compare_digest(_digest(secret), stored)
        if link is None or not matches or not secret:
            raise ZoneError("NOT_AUTHORISED", "this sign-in link is not valid (it has expired "
                                              "or was never issued): ask for a new one with "
                                              "pzctl admin-link")
        if link.used:
            raise ZoneError("NOT_AUTHORISED", "this sign-in link has already been used: ask "
                                              "for a new one with pzctl admin-link")
        self._links[tokenId] = attrs.evolve(link, used=True)
        sessionId = self._random(32)
        now = self._now()
        session = Session(_digest(sessionId), self._random(32), now, now + self.sessionLifetime)
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        self._sessions[session.key] = session
        request.addCookie(COOKIE, sessionId.encode("ascii"), path=b"/",
                          max_age=str(int(self.sessionLifetime)).encode("ascii"),
                          secure=True, httpOnly=True, sameSite="strict")
        self.log.info("admin signed in with link {tokenId}", tokenId=tokenId)
        return session

    def sessionOf(self, request) -> Optional[Session]:
        """
        The live session whose cookie C{request} carries, if any.
        """
        value = request.getCookie(COOKIE)
        if not value:
            return None
        try:
            key = _digest(value.decode("ascii"))
        except UnicodeDecodeError:
            return None
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires <= self._now():
            del self._sessions[key]
            return None
        return session

    def csrfToken(self, session: Session) -> str:
        """
        The token C{session}'s state-changing requests must carry in
        C{X-CSRF-Token}.
        """
        return session.csrf

    def csrfValid(self, request, session: Session) -> bool:
        """
        Whether C{request} carries C{session}'s CSRF token.
        """
        given = request.getHeader(CSRF_HEADER)
        if not given:
            return False
        return hmac.compare_digest(given, session.csrf.encode("ascii"))

    def endSession(self, session: Session) -> None:
        """
        Sign C{session} out.
        """
        self._sessions.pop(session.key, None)

    def logout(self) -> int:
        """
        End every session and void every unused link.

        @return: how many sessions were live.
        """
        self._prune()
        count = len(self._sessions)
        self._sessions.clear()
        self._links.clear()
        self.log.info("admin sessions ended: {count}", count=count)
        return count

    def refusal(self, request) -> Optional[bytes]:
        """
        Check C{request} for a session, and for the CSRF token if it
        changes something.

        @return: the body of the refusal (the response code set), or
            L{None} if it may go on.
        """
        session = self.sessionOf(request)
        if session is None:
            return _json(request, 401, "NOT_AUTHORISED",
                         "sign in first: open the link pzctl admin-link prints")
        if request.method in STATE_CHANGING and not self.csrfValid(request, session):
            return _json(request, 403, "CSRF_REQUIRED",
                         "this request needs the session's X-CSRF-Token header")
        request.setHeader(b"cache-control", b"no-store")
        return None


class _Refused(Resource):
    """
    Answers with a refusal already decided.
    """

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self._body = body

    def render(self, request) -> bytes:
        return self._body


class _Guarded(Resource):
    """
    C{resource}, and everything under it, for a signed-in session only.
    """

    def __init__(self, resource, auth: AdminAuth) -> None:
        super().__init__()
        self._resource = resource
        self._auth = auth
        self.isLeaf = getattr(resource, "isLeaf", False)

    def getChildWithDefault(self, path, request):
        body = self._auth.refusal(request)
        if body is not None:
            return _Refused(body)
        return self._resource.getChildWithDefault(path, request)

    def render(self, request):
        body = self._auth.refusal(request)
        if body is not None:
            return body
        return self._resource.render(request)


def guarded(resource, auth: AdminAuth) -> Resource:
    """
    C{resource} behind the sign-in: without a live session, C{401}
    C{{"code": "NOT_AUTHORISED", ...}}; a POST, PUT, PATCH or DELETE
    without the session's C{X-CSRF-Token}, C{403}
    C{{"code": "CSRF_REQUIRED", ...}}.
    """
    return _Guarded(resource, auth)


class SignInResource(Resource):
    """
    C{GET /signin?token=TOKEN}: a valid token sets the session cookie and
    redirects to C{/}; any other gets C{401} and sets nothing; too many
    attempts from one address get C{429}.
    """

    isLeaf = True

    def __init__(self, auth: AdminAuth) -> None:
        super().__init__()
        self._auth = auth

    def render_GET(self, request) -> bytes:
        wait = self._auth.allowAttempt(request)
        if wait:
            request.setHeader(b"retry-after", str(max(1, int(wait + 0.999))).encode("ascii"))
            return _json(request, 429, "RATE_LIMITED",
                         "too many sign-in attempts from this address; wait and try again")
        tokens = request.args.get(b"token") or [b""]
        try:
            token = tokens[0].decode("ascii")
        except UnicodeDecodeError:
            return _json(request, 401, "NOT_AUTHORISED", "the sign-in token is not ASCII")
        try:
            self._auth.signIn(request, token)
        except ZoneError as e:
            return _json(request, 401, e.code, e.message)
        request.setResponseCode(303)
        request.setHeader(b"location", b"/")
        request.setHeader(b"cache-control", b"no-store")
        return b""


class SignOutResource(Resource):
    """
    C{POST /signout} (behind L{guarded}, so with the CSRF token): ends
    this session and clears its cookie.
    """

    isLeaf = True

    def __init__(self, auth: AdminAuth) -> None:
        super().__init__()
        self._auth = auth

    def render_POST(self, request) -> bytes:
        session = self._auth.sessionOf(request)
        if session is not None:
            self._auth.endSession(session)
        request.addCookie(COOKIE, b"", path=b"/", max_age=b"0", secure=True, httpOnly=True,
                          sameSite="strict")
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"signed_out": True}).encode("utf-8")


class SessionResource(Resource):
    """
    C{GET /session} (behind L{guarded}): the session's CSRF token and end,
    for the page's script (another site cannot read it: no CORS).
    """

    isLeaf = True

    def __init__(self, auth: AdminAuth) -> None:
        super().__init__()
        self._auth = auth

    def render_GET(self, request) -> bytes:
        session = self._auth.sessionOf(request)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"csrf": self._auth.csrfToken(session),
                           "expires": session.expires}).encode("utf-8")
