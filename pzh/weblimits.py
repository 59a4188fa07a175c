# -*- test-case-name: tests.pzh.test_weblimits -*-
"""
A web site that no client can hold open or use to fill the disk: what the
hub's HTTPS port and C{twistd meshportal} serve through.

C{twisted.web} on its own spools any body a client announces (to a
temporary file above 100 kB) before a resource can look at it, restarts
its idle timer on every byte received, and accepts as many connections as
the process has file descriptors.  L{GuardedSite} and L{ConnectionCaps}
close each of those:

    - a C{Content-Length} over the limit is refused with 413 as soon as the
      headers end, before any of the body is read; a chunked body is
      refused the moment it passes the limit, so no more than the limit is
      ever kept;
    - a whole request (request line, headers and body, and the TLS
      handshake before them) must arrive within C{requestTimeout} seconds
      of the connection opening, or of the previous response, however the
      bytes trickle in; a connection that does not manage it gets 408 (or,
      if it sent nothing, is just closed);
    - at most C{maxConnections} connections at once, and C{maxPerAddress}
      from one address (L{ConnectionCaps}, outside the TLS layer, as
      L{webFactory} assembles them); others are closed as soon as they are
      accepted, so the descriptors left serve the device port and the admin
      socket (L{sizedForFileLimit} fits the caps to the process's
      descriptor limit, which L{raiseFileLimit} raises as far as it may go).

Every answer carries the headers a browser needs to keep the pages to
themselves (L{SECURITY_HEADERS}, plus C{Strict-Transport-Security} over
HTTPS), and a C{Server} header naming no software version.
"""

import collections
import json
import re

import attrs
from twisted.logger import Logger
from twisted.protocols.policies import WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web.http import HTTPChannel, combinedLogFormatter
from twisted.web.server import Request, Site

__all__ = [
    "WebLimits",
    "GuardedSite",
    "ConnectionCaps",
    "webFactory",
    "RefusalLog",
    "plainRefusal",
    "SECURITY_HEADERS",
    "HSTS",
    "SERVER",
    "raiseFileLimit",
    "sizedForFileLimit",
    "limitOptions",
    "limitsFromOptions",
]

#: What the C{Server} header says: no product name, no version.
SERVER = b"pz"

#: Headers on every response: no MIME sniffing, no framing, no referrer
#: (a sign-in link's token must not leak), and a content policy that lets
#: a page load scripts, style sheets, images and data from its own origin
#: only, and run no inline script or style at all.
SECURITY_HEADERS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Frame-Options", b"DENY"),
    (b"Content-Security-Policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
     b"form-action 'self'"),
    (b"Referrer-Policy", b"no-referrer"),
)

#: Over HTTPS: browsers use HTTPS only for this host for a year.
HSTS = (b"Strict-Transport-Security", b"max-age=31536000")

#: The most input a refused client may still send while its refusal
#: reaches it (see L{GuardedChannel._refuse}): what the socket buffers of a
#: fast link hold, not a body anyone keeps.
LINGER_BYTES = 8 * 1024 * 1024

#: Descriptors kept back from the web port for everything else: device
#: links, the admin socket, the databases, logs and the listening sockets.
RESERVED_DESCRIPTORS = 64


def _positive(instance, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@attrs.frozen
class WebLimits:
    """
    What one web client may take.

    @ivar maxBody: the largest request body, in bytes.
    @ivar requestTimeout: seconds to send one whole request, counted from
        the connection or from the previous response.
    @ivar maxConnections: connections open at once, from everyone.
    @ivar maxPerAddress: connections open at once from one address.
    """

    maxBody: int = attrs.field(default=1024 * 1024, validator=_positive)
    requestTimeout: float = attrs.field(default=30.0, validator=_positive)
    maxConnections: int = attrs.field(default=512, validator=_positive)
    maxPerAddress: int = attrs.field(default=32, validator=_positive)


def raiseFileLimit(resource=None) -> int:
    """
    Raise this process's soft limit on open files to its hard limit (at
    most 65,536), and return the soft limit now in force.  Without it a
    Linux process gets 1,024 descriptors whatever the machine allows.
    """
    if resource is None:
        import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return 65536 if soft == resource.RLIM_INFINITY else soft


def sizedForFileLimit(limits: WebLimits, fileLimit: int) -> WebLimits:
    """
    C{limits} with the connection caps lowered, where needed, so the web
    port can hold at most half of the descriptors left after
    L{RESERVED_DESCRIPTORS}: the device port and the admin socket always
    keep the other half.
    """
    share = max(1, (fileLimit - RESERVED_DESCRIPTORS) // 2)
    total = min(limits.maxConnections, share)
    return attrs.evolve(limits, maxConnections=total,
                        maxPerAddress=min(limits.maxPerAddress, total))


def _rawResponse(status: int, reason: bytes, payload: bytes, secure: bool) -> bytes:
    headers = [
        (b"Server", SERVER),
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(payload)).encode("ascii")),
        (b"Connection", b"close"),
        (b"Cache-Control", b"no-store"),
        *SECURITY_HEADERS,
    ]
    if secure:
        headers.append(HSTS)
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, reason, head, payload)


def _peer(transport) -> str:
    peer = transport.getPeer()
    host = getattr(peer, "host", None)
    return f"{host}:{peer.port}" if host is not None else str(peer)


def plainRefusal(status: int, code: str, message: str) -> bytes:
    """
    The body of a refusal where no resource says otherwise:
    C{{"error": CODE, "message": "..."}}.
    """
    return json.dumps({"error": code, "message": message}).encode("utf-8")


class RefusalLog:
    """
    Logs refusals without letting a client flood the log: the first one,
    then at most one line per C{interval} seconds counting the rest.
    """

    log = Logger()

    def __init__(self, clock, interval: float = 60.0) -> None:
        self._clock = clock
        self._interval = interval
        self._loggedAt = None
        self._unlogged = 0

    def note(self, peer: str, reason: str) -> None:
        """
        A client at C{peer} was refused for C{reason}.
        """
        now = self._clock.seconds()
        self._unlogged += 1
        if self._loggedAt is not None and now - self._loggedAt < self._interval:
            return
        self.log.info("web port refused {count} request(s) or connection(s) since the last "
                      "report; the latest from {peer}: {reason}",
                      count=self._unlogged, peer=peer, reason=reason)
        self._loggedAt, self._unlogged = now, 0


class GuardedRequest(Request):
    """
    A request that refuses a body past the site's limit instead of storing
    it, and answers with the security headers and a neutral C{Server}.
    """

    _bodySize = 0

    def handleContentChunk(self, data: bytes) -> None:
        self._bodySize += len(data)
        if self._bodySize > self.channel.limits.maxBody:
            self.channel.refuseTooLarge()
            return
        super().handleContentChunk(data)

    def render(self, resrc) -> None:
        self.setHeader(b"server", SERVER)
        for name, value in SECURITY_HEADERS:
            self.setHeader(name, value)
        if self.isSecure():
            self.setHeader(*HSTS)
        if not self.uri.isascii():
            # A request target is ASCII (RFC 9112, section 3.2); Twisted's
            # own error pages (405, 404) fail to decode any other.  Found by
            # the fuzz run of the web port.
            self.channel._refuse(400, b"Bad Request", "BAD_REQUEST",
                                 "the request target must be ASCII", linger=False)
            return
        super().render(resrc)


class GuardedChannel(HTTPChannel):
    """
    An HTTP/1.1 connection with a deadline for each whole request and a
    body limit applied before the body is read.
    """

    _deadline = None
    _refused = False
    _started = False
    _lingering = None
    _discarded = 0

    #: Seconds a refused client is given to read its refusal before the
    #: connection is closed (the time Apache's lingering close allows).
    lingerTimeout = 2.0

    @property
    def limits(self) -> WebLimits:
        """
        The site's L{WebLimits}: one set for every connection of a port.
        """
        return self.site.limits

    def connectionMade(self) -> None:
        super().connectionMade()
        self._armDeadline()

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            self._discard(data)
            return
        self._started = True
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        if self.length is not None and self.length > self.limits.maxBody:
            self.refuseTooLarge()
            return
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self._refused:
            return
        self._cancelDeadline()
        super().allContentReceived()

    def requestDone(self, request) -> None:
        pending = bool(self._dataBuffer)
        super().requestDone(request)
        if not self.persistent:
            self._abortLater()
        elif not (self._refused or self._handlingRequest or self._deadline):
            # The next request's clock starts now (a pipelined one that was
            # already handled armed its own).
            self._started = pending
            self._armDeadline()

    def connectionLost(self, reason) -> None:
        self._cancelDeadline()
        if self._lingering is not None and self._lingering.active():
            self._lingering.cancel()
        super().connectionLost(reason)

    def refuseTooLarge(self) -> None:
        """
        Answer 413 and close, reading nothing more.
        """
        self._refuse(413, b"Payload Too Large", "TOO_LARGE",
                     f"the request body exceeds {self.limits.maxBody} bytes")

    def _refuse(self, status: int, reason: bytes, code: str, message: str,
                linger: bool = True) -> None:
        """
        Answer C{status} in the form of the resource asked for, and close.

        @param linger: whether the client may still be sending (a body past
            the limit, a request cut off by the deadline).  Closing a socket
            that holds unread input makes the kernel send a reset, which can
            reach the client before the refusal and erase it: the client,
            still writing its body, sees only "connection lost" (found by
            the Mesh end-to-end test on a loaded machine).  So the channel
            first reads and drops input for up to L{lingerTimeout} seconds
            (or until the client closes, as a client that has read the
            answer's C{Connection: close} does), and only then closes.
        """
        if self._refused:
            return
        self._refused = True
        self._cancelDeadline()
        self.site.refusals.note(_peer(self.transport), f"{status} {reason.decode()}")
        # The request line, if it came, says which resource would have
        # answered, and so in which form to refuse.
        payload = self.site.refusalBody(getattr(self, "_path", b""), status, code, message)
        self.transport.write(_rawResponse(status, reason, payload, self.isSecure()))
        if linger:
            self._lingering = self.callLater(self.lingerTimeout, self._close)
        else:
            self._close()

    def _discard(self, data: bytes) -> None:
        """
        Drop what a refused client still sends while the refusal reaches
        it; one sending more than L{LINGER_BYTES} is closed at once.
        """
        self._discarded += len(data)
        if self._discarded > LINGER_BYTES and not self.transport.disconnecting:
            self._close()

    def _close(self) -> None:
        """
        Close, and abort if the peer does not let the close finish.
        """
        self._abortLater()
        if not self.transport.disconnecting:
            self.loseConnection()

    def _abortLater(self) -> None:
        if self._abortingCall is None and self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def _armDeadline(self) -> None:
        self._cancelDeadline()
        self._deadline = self.callLater(self.limits.requestTimeout, self._deadlinePassed)

    def _cancelDeadline(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _deadlinePassed(self) -> None:
        self._deadline = None
        if not self._started:
            # Nothing to answer: a client that sent nothing is just closed.
            self._refused = True
            self.site.refusals.note(_peer(self.transport), "no request in time")
            self._close()
            return
        self._refuse(408, b"Request Timeout", "TIMEOUT",
                     f"a request must arrive whole within {self.limits.requestTimeout:g} s")


#: A secret in a query string (the admin sign-in link's C{token=}).
_SECRET_QUERY = re.compile(r"([?&]token=)[^&\s\"]*")


def _redactedLogFormatter(timestamp: str, request) -> str:
    """
    Twisted's combined log line, with any C{token=} value in the request
    target replaced, so the access log holds no sign-in secret.
    """
    return _SECRET_QUERY.sub(r"\1REDACTED", combinedLogFormatter(timestamp, request))


class GuardedSite(Site):
    """
    A L{Site} served through L{GuardedChannel} and L{GuardedRequest}.

    @ivar limits: the L{WebLimits} in force.
    @ivar refusals: the L{RefusalLog} of this site and its caps.
    @param refusalBodies: for a path prefix (bytes), the callable making
        the body of a 413 or 408 there from the status and a sentence, so
        a refusal keeps the form of the resource it stands in for.
    """

    protocol = GuardedChannel
    requestFactory = GuardedRequest

    def __init__(self, resource, limits: WebLimits = WebLimits(), reactor=None,
                 refusalBodies=None) -> None:
        # Twisted's idle timer runs exactly while the deadline does (it
        # stops while a request is handled), and restarts on every byte:
        # the deadline replaces it.
        # No resource here reads form fields, and parsing them only adds
        # risk (a Content-Type holding a control character made Twisted
        # raise out of dataReceived).
        super().__init__(resource, timeout=None, reactor=reactor, parsePOSTFormSubmission=False,
                         logFormatter=_redactedLogFormatter)
        self.limits = limits
        self.refusals = RefusalLog(self.reactor)
        self._refusalBodies = dict(refusalBodies or {})

    def refusalBody(self, path: bytes, status: int, code: str, message: str) -> bytes:
        """
        The body refusing a request for C{path}: in the form of the
        resource mounted there if it gave one (C{refusalBodies} maps a path
        prefix to a callable taking the status and the message), else
        L{plainRefusal}.
        """
        for prefix, body in self._refusalBodies.items():
            if path.startswith(prefix):
                return body(status, message)
        return plainRefusal(status, code, message)


class ConnectionCaps(WrappingFactory):
    """
    Caps the connections open at once to C{wrappedFactory}: in all, and
    from one address.  A connection past a cap is closed as soon as it is
    accepted, before any TLS handshake, so it holds a descriptor for no
    time.  It must be the outermost factory on the port: a factory that
    L{TLSMemoryBIOFactory} wraps cannot refuse a connection.
    """

    def __init__(self, wrappedFactory, limits: WebLimits, refusals: RefusalLog) -> None:
        super().__init__(wrappedFactory)
        self.limits = limits
        self.refusals = refusals
        self._open = collections.Counter()

    @property
    def openConnections(self) -> int:
        """
        How many connections are open now.
        """
        return len(self.protocols)

    def buildProtocol(self, addr):
        """
        A protocol for a new connection, or L{None} (closing it at once)
        when a cap is reached.
        """
        address = getattr(addr, "host", "")
        if len(self.protocols) >= self.limits.maxConnections:
            self.refusals.note(address, f"{len(self.protocols)} web connections open")
            return None
        if self._open[address] >= self.limits.maxPerAddress:
            self.refusals.note(address, f"{self._open[address]} web connections open from it")
            return None
        protocol = super().buildProtocol(addr)
        protocol.capAddress = address
        return protocol

    def registerProtocol(self, p) -> None:
        super().registerProtocol(p)
        self._open[p.capAddress] += 1

    def unregisterProtocol(self, p) -> None:
        super().unregisterProtocol(p)
        self._open[p.capAddress] -= 1
        if self._open[p.capAddress] <= 0:
            del self._open[p.capAddress]


def webFactory(site: GuardedSite, tlsOptions=None) -> ConnectionCaps:
    """
    What to listen with on a plain TCP endpoint to serve C{site}: its
    connection caps, then TLS with C{tlsOptions} (an
    L{IOpenSSLServerConnectionCreator}) if given, then the site.
    """
    inner = site if tlsOptions is None else TLSMemoryBIOFactory(tlsOptions, False, site)
    return ConnectionCaps(inner, site.limits, site.refusals)


def limitOptions(prefix: str = "", withBody: bool = True) -> list:
    """
    The C{usage.Options} parameters that set L{WebLimits}, their names
    starting with C{prefix} (C{"web-"} on the hub, whose web port is one of
    several).
    """
    defaults = WebLimits()
    options = [
        [prefix + "request-timeout", None, defaults.requestTimeout,
         "Seconds a web client has to send a whole request (headers and body).", float],
        [prefix + "max-connections", None, defaults.maxConnections,
         "Web connections open at once, from everyone (lowered to fit the open-file limit).",
         int],
        [prefix + "max-per-address", None, defaults.maxPerAddress,
         "Web connections open at once from one address.", int],
    ]
    if withBody:
        options.insert(0, [prefix + "max-body", None, defaults.maxBody,
                           "Largest web request body accepted, in bytes.", int])
    return options


def limitsFromOptions(options, prefix: str = "") -> WebLimits:
    """
    The L{WebLimits} that C{options} (parsed with L{limitOptions}) ask for.

    @raise usage.UsageError: naming the option that is out of range.
    """
    from twisted.python import usage

    if options[prefix + "max-body"] < 1024:
        raise usage.UsageError(f"--{prefix}max-body must be at least 1024")
    for name in ("request-timeout", "max-connections", "max-per-address"):
        if options[prefix + name] <= 0:
            raise usage.UsageError(f"--{prefix}{name} must be positive")
    return WebLimits(
        maxBody=options[prefix + "max-body"],
        requestTimeout=options[prefix + "request-timeout"],
        maxConnections=options[prefix + "max-connections"],
        maxPerAddress=options[prefix + "max-per-address"],
    )
