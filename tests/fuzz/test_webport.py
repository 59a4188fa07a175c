"""
Fuzzing the hub's web port: raw HTTP bytes into the site the hub serves
(health, home page and the Mesh portal under C{/.well-known/mmm/}), with
request lines, headers and bodies generated and mutated: lying or
malformed C{Content-Length}, chunked bodies good and bad, random paths,
and for the portal every transaction's request built from its declaration
then mutated, all cut at random points and some pipelined.

After every example: nothing was logged as a failure or unhandled; the
output is HTTP responses, none of them a 500; nothing is left scheduled
once the connection is gone; neither the hub's store nor the portal's log
changed, but for the unsigned escrow and encrypted entries the portal
accepts from anyone by design (written once).  Over each run the traced
heap neither keeps growing nor peaks high.
"""

import json
import re

from hypothesis import given, strategies as st
from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.messages import TRANSACTIONS
from pz.testing import MemoryHub
from pzh.portal.tap import hubPortal
from pzh.web import makeSite

from tests.fuzz._frames import chunked, jsonValues, mutatedObject, variants
from tests.fuzz._harness import VARIANTS, FuzzRun, fuzzSettings
from tests.mesh.strategies import structures

#: Entries the portal takes from anyone, unsigned, once each: escrow
#: entries (of either kind) and encrypted profiles.
_UNSIGNED = {"EscrowEntry", "OfflineEscrowEntry", "OnlineEscrowEntry", "EncryptedProfile"}

_STATUS = re.compile(rb"(?:^|\r\n|\n)HTTP/1\.[01] (\d{3})")

_methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"POST", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS",
                     b"TRACE", b"CONNECT", b"PATCH", b"get", b""]),
    st.binary(min_size=1, max_size=8),
)

_segment = st.one_of(
    st.sampled_from([b"", b"mmm", b"health", b"..", b".", b"%00", b"%2f", b"%zz", b"\xff", b"?a=1",
                     b"#x", b";p"]),
    st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

_paths = st.one_of(
    st.sampled_from([b"/", b"/health", b"/.well-known/mmm/", b"/.well-known/mmm", b"/.well-known/",
                     b"*", b"http://127.0.0.1:9000/.well-known/mmm/", b"//", b"/health/x",
                     b"/.well-known/mmm/?x=1", b"/.well-known/mmm//"]),
    st.lists(_segment, max_size=4).map(lambda s: b"/.well-known/mmm/" + b"/".join(s)),
    st.lists(_segment, max_size=4).map(lambda s: b"/" + b"/".join(s)),
    st.binary(max_size=20),
)

_versions = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 x",
                                                b"HTTP/9.9", b"", b"HTTP/1.01"])

_headerNames = st.one_of(
    st.sampled_from([b"Host", b"Content-Type", b"Accept", b"Connection", b"Expect",
                     b"Transfer-Encoding", b"Content-Length", b"Cookie", b"X-Forwarded-For",
                     b"Upgrade", b"Authorization", b"Content-Encoding"]),
    st.binary(max_size=12),
)

_headerValues = st.one_of(
    st.sampled_from([b"127.0.0.1:9000", b"application/json", b"close", b"keep-alive",
                     b"100-continue", b"chunked", b"gzip", b"h2c", b"", b" x", b"a\tb"]),
    st.binary(max_size=40),
)


def _portalBodies():
    """
    Every transaction's request built from its declaration, and mutated.
    """
    requests = [request for _, request, _ in TRANSACTIONS]
    return st.one_of([structures(cls, 1) for cls in requests]).map(
        lambda s: json.loads(s.toJSON()))


_bodies = st.one_of(
    st.just(b""),
    jsonValues.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
)


@st.composite
def _request(draw, portal) -> tuple:
    """
    One HTTP request's bytes, and whether it is complete as framed.
    """
    nl = draw(st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r"]))
    method = draw(_methods)
    path = draw(_paths)
    version = draw(_versions)
    if draw(st.integers(0, 3)) > 0:
        body = json.dumps(mutatedObject(draw, draw(portal)),
                          ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    else:
        body = draw(_bodies)
    headers = [(b"Host", b"127.0.0.1:9000")] if draw(st.booleans()) else []
    extra = draw(st.lists(st.tuples(_headerNames, _headerValues), max_size=4))
    headers += extra
    framing = draw(st.sampled_from(
        ["length"] * 6 + ["none", "short", "long", "huge", "negative", "words", "twice",
                          "chunked", "chunked", "badchunk", "hugechunk", "both"]))
    # Complete means the server has all it needs to answer: lines end in
    # CRLF (Twisted waits for more after a bare LF or CR), and no generated
    # header changes how the body is framed.
    complete = nl == b"\r\n" and not any(
        name.lower() in (b"content-length", b"transfer-encoding", b"expect")
        or b"\n" in name + value or b"\r" in name + value
        for name, value in extra)
    if framing == "length":
        headers.append((b"Content-Length", b"%d" % len(body)))
    elif framing == "none":
        complete = complete and (method not in (b"POST", b"PUT") or not body)
    elif framing == "short":
        headers.append((b"Content-Length", b"%d" % draw(st.integers(0, max(0, len(body) - 1)))))
    elif framing == "long":
        headers.append((b"Content-Length", b"%d" % (len(body) + draw(st.integers(1, 4096)))))
        complete = False
    elif framing == "huge":
        headers.append((b"Content-Length", draw(st.sampled_from(
            [b"1000000000000", b"1e12", b"99999999999999999999999", b"18446744073709551616"]))))
        complete = False
    elif framing == "negative":
        headers.append((b"Content-Length", b"-1"))
    elif framing == "words":
        # Some of these Twisted reads as a length (" 5" is 5): not complete.
        headers.append((b"Content-Length", draw(st.sampled_from([b"ten", b"0x10", b" 5", b"5 5", b"+5"]))))
        complete = False
    elif framing == "twice":
        headers += [(b"Content-Length", b"%d" % len(body)), (b"Content-Length", b"%d" % (len(body) + 1))]
    elif framing in ("chunked", "badchunk", "hugechunk", "both"):
        headers.append((b"Transfer-Encoding", b"chunked"))
        if framing == "both":
            headers.append((b"Content-Length", b"%d" % len(body)))
        chunks, rest = [], body
        while rest:
            size = draw(st.integers(1, max(1, len(rest))))
            chunks.append(b"%x\r\n%s\r\n" % (size, rest[:size]))
            rest = rest[size:]
        if framing == "badchunk":
            chunks.append(draw(st.sampled_from([b"zz\r\n", b"-1\r\n", b"5\r\nab\r\n", b"\r\n"])))
            complete = False
        elif framing == "hugechunk":
            chunks.append(b"ffffffffffff\r\n")
            complete = False
        body = b"".join(chunks) + b"0\r\n\r\n"
    head = method + b" " + path + (b" " + version if version else b"") + nl
    head += b"".join(name + b": " + value + nl for name, value in headers)
    return head + nl + body, complete


class WebPortFuzz(FuzzRun, SynchronousTestCase):
    """
    The web port under generated input.
    """

    target = "web port"

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.clock = self.fixture.clock
        self.portal = hubPortal(self.hub, self.clock, MultiService())
        self.addCleanup(self.portal.store.close)
        self.site = makeSite(self.hub, self.portal)
        self.site.reactor = self.clock
        self._ports = iter(range(20000, 10**9))
        self.portalBodies = _portalBodies()
        self.startRun()

    def state(self):
        """
        The hub's store and the portal log's head.
        """
        return self.fixture.storeState(), self.portal.store.head()

    def checkState(self, before) -> None:
        """
        Nothing changed since C{before} but unsigned entries appended.
        """
        store, head = self.state()
        self.assertEqual(store, before[0])
        for record in self.portal.store.records(before[1].sequence, 1000):
            [tag] = json.loads(record.entry)
            self.assertIn(tag, _UNSIGNED, record.entry[:300])

    def feed(self, pieces: list, requests: int, complete: bool) -> None:
        """
        Send C{pieces} on a new connection, close it, and check every
        property.
        """
        before = self.state()
        delayed = len(self.clock.getDelayedCalls())
        protocol = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", next(self._ports)))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1))
        protocol.makeConnection(transport)
        for piece in pieces:
            if transport.disconnecting:
                break
            protocol.dataReceived(piece)
        # The portal answers writes once their group commit ran: at the end
        # of this reactor turn.
        self.clock.advance(0)
        self.checkLog()
        out = transport.value()
        statuses = [int(s) for s in _STATUS.findall(out)]
        if out:
            self.assertTrue(out.startswith(b"HTTP/1."), out[:200])
        self.assertNotIn(500, statuses, out[:2000])
        if complete and not transport.disconnecting:
            self.assertTrue(statuses, b"".join(pieces)[:600])
        self.assertLessEqual(len(out), 1024 * 1024)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.checkLog()
        self.assertEqual(len(self.clock.getDelayedCalls()), delayed)
        self.checkState(before)
        self.counted(requests, sum(len(p) for p in pieces))

    def example(self, data, requests) -> None:
        """
        One example: the requests pipelined and cut at random, then
        byte-level mutants of them.
        """
        wire = b"".join(r for r, _ in requests)
        complete = requests[0][1]
        self.feed(data.draw(chunked(wire)), len(requests), complete and len(requests) == 1)
        for mutant in variants(data.draw(st.integers(0, 2**32 - 1)), wire, VARIANTS):
            self.feed([mutant], len(requests), False)

    @fuzzSettings(1.0)
    @given(st.data())
    def fuzzHTTP(self, data):
        requests = data.draw(st.lists(_request(self.portalBodies), min_size=1, max_size=3))
        self.example(data, requests)

    def test_http(self):
        """
        Whatever a client sends the web port, it gets HTTP answers (never
        a 500) or a close, nothing is left behind, and nothing changes.
        """
        self.fuzzHTTP()
        self.finishRun("HTTP")

    @fuzzSettings(1.0)
    @given(st.data())
    def fuzzPortal(self, data):
        obj = mutatedObject(data.draw, data.draw(self.portalBodies))
        body = json.dumps(obj).encode("utf-8", "surrogatepass")
        request = (b"POST /.well-known/mmm/ HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        self.example(data, [(request + body, True)])

    def test_portalTransactions(self):
        """
        Every portal transaction's request, built from its declaration and
        mutated, is answered (never with a 500) and changes nothing but
        unsigned entries.
        """
        self.fuzzPortal()
        self.finishRun("portal transactions")
