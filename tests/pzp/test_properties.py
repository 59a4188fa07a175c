"""
Property tests for the proxy's protocols: whatever the other end sends --
random bytes, random JSON, random envelopes, or valid frames broken on
purpose -- a L{HubLinkProtocol} (registered or not) and an
L{EnrolmentProtocol} (before or after the hub's hello) answer only with
error frames carrying known codes or close cleanly, let no exception
escape, and change no state.

Each example gets a fresh protocol on a L{StringTransport} that presents
the hub's certificate; the zone and credentials are shared per test.
"""

import json
import struct

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import CODES, ZoneError
from pz.pairing import PairingCode
from pz.testing import HOST, HUB_PORT, ZONE, MemoryHub, PeerCertTransport, frames, nowClock
from pzp.enrol import EnrolmentProtocol
from pzp.hublink import HubLinkProtocol
from pzp.inbox import MAX_TEXT
from pzp.proxy import ProxySettings
from tests.pzp._support import FakeProxy, enrolledCredentials

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])

DEVICE = f"{ZONE}/phone"
TABLET = f"{ZONE}/tablet"

#: Names a hub or device may send, to reach every branch more often than
#: random text would.
_NAMES = ["registered", "error", "message", "pzpUpdate", "ack", "pong", "ping", "hello",
          "enrolled", "enrol", "crlUpdate", "renewed", "", "status"]

#: Any text, with extra weight on lone surrogates (valid in JSON strings,
#: not encodable as UTF-8).
_text = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE00F), max_size=4),
)

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.floats(allow_nan=False, allow_infinity=False), _text,
)

_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_text, inner, max_size=4)),
    max_leaves=10,
)

#: Payload fields the protocols look at, given random values.
_FIELDS = ["text", "code", "message", "ref", "devices", "joined", "left", "crl", "ca",
           "zone", "certificate", "hub", "device"]


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _encode(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


@st.composite
def _envelopes(draw):
    """
    An envelope-shaped object: mostly well-formed around a random payload.
    """
    payload = draw(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=4))
    payload["status"] = draw(st.one_of(st.sampled_from(_NAMES), _text, _json))
    envelope = {
        "type": draw(st.one_of(st.just("prop"), st.just("JSONRPC"), _json)),
        "from": draw(st.one_of(st.just(TABLET), st.just(ZONE), _json)),
        "to": draw(st.one_of(st.just(DEVICE), _json)),
        "id": draw(st.one_of(st.just("m1"), _json)),
        "payload": payload,
    }
    for key in draw(st.lists(st.sampled_from(list(envelope)), max_size=2)):
        envelope.pop(key, None)
    return envelope


def _validPzpUpdate(payload) -> bool:
    lists = [payload.get(k) for k in ("devices", "joined", "left") if k in payload]
    return bool(lists) and all(isinstance(v, list) for v in lists)


def _changesRegisteredLink(envelope) -> bool:
    """
    Whether a registered link may rightly act on C{envelope}: a text
    message or a peer list (what the properties must not count as a
    change of state).
    """
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    if not isinstance(payload, dict):
        return False
    status = payload.get("status")
    if status == "message":
        return isinstance(payload.get("text"), str)
    if status == "pzpUpdate":
        return _validPzpUpdate(payload)
    return False


def _registers(envelope) -> bool:
    """
    Whether an unregistered link may rightly act on C{envelope}.
    """
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    return isinstance(payload, dict) and payload.get("status") in ("registered",
                                                                   "renewRequired")


def _noValidPort(value) -> bool:
    _, _, port = str(value).rpartition(":")
    try:
        int(port)
    except ValueError:
        return True
    return False


#: Ways to break an envelope whatever its payload: a field that must be
#: a string, object or known type given a value that is not.
_ENVELOPE_BREAKERS = [
    (("type",), lambda v: v not in ("prop", "JSONRPC")),
    (("from",), lambda v: v is not None and not isinstance(v, str)),
    (("to",), lambda v: not isinstance(v, str)),
    (("id",), lambda v: not isinstance(v, str)),
    (("payload",), lambda v: not isinstance(v, dict)),
    (("payload", "status"), lambda v: not isinstance(v, str) or not v),
]
_ENVELOPE_REQUIRED = [("type",), ("to",), ("id",), ("payload",), ("payload", "status")]


@st.composite
def _broken(draw, valid):
    """
    One of the C{valid} frames, broken on purpose.  C{valid} is a list of
    C{(envelope, breakers, required)}: C{breakers} are C{(path, invalid)}
    pairs where any value for which C{invalid} holds makes the frame
    invalid, C{required} paths that the frame cannot do without.
    """
    envelope, breakers, required = draw(st.sampled_from(valid))
    body = _encode(envelope)
    kind = draw(st.sampled_from(["truncate", "badByte", "drop", "replace"]))
    if kind == "truncate":
        # A proper prefix of a compact JSON object is never JSON.
        return body[:draw(st.integers(0, len(body) - 1))]
    if kind == "badByte":
        i = draw(st.integers(0, len(body) - 1))
        return body[:i] + b"\xff" + body[i + 1:]
    broken = json.loads(body)
    if kind == "drop":
        path = draw(st.sampled_from(_ENVELOPE_REQUIRED + required))
    else:
        path, invalid = draw(st.sampled_from(_ENVELOPE_BREAKERS + breakers))
    target = broken
    for key in path[:-1]:
        target = target[key]
    if kind == "drop":
        del target[path[-1]]
    else:
        target[path[-1]] = draw(_json.filter(invalid))
    return _encode(broken)


def _inputs(envelopeFilter, valid):
    """
    What the other end sends: raw bytes, framed bytes, framed random JSON,
    framed random envelopes (except those C{envelopeFilter} says may
    rightly change state), framed broken valid frames.
    """
    def allowed(envelope):
        return not envelopeFilter(envelope)

    one = st.one_of(
        st.binary(max_size=64),
        st.binary(max_size=64).map(_frame),
        _json.map(_encode).map(_frame),
        _envelopes().filter(allowed).map(_encode).map(_frame),
        _broken(valid).map(_frame),
    )
    return st.lists(one, min_size=1, max_size=4)


class _PropertyBase(SynchronousTestCase):
    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.zone = self.fixture.zone

    def assertOnlyErrors(self, transport):
        """
        Everything written is an error frame with a known code.
        """
        for frame in frames(transport.value()):
            payload = frame["payload"]
            self.assertEqual(payload["status"], "error", frame)
            self.assertIn(payload["code"], CODES)

    def assertRefusedIfFired(self, d, close):
        """
        C{d} has not fired, or failed with a known code; never succeeded.
        Then C{close} the connection, after which it has failed.
        """
        fired = d.called
        if fired:
            self.assertIn(self.failureResultOf(d, ZoneError).value.code, CODES)
        close()
        if not fired:
            self.failureResultOf(d, ZoneError)


class _RecordingInbox:
    def __init__(self) -> None:
        self.added = []

    def add(self, sender, text):
        self.added.append((sender, text))


class HubLinkPropertyTests(_PropertyBase):
    """
    L{HubLinkProtocol} under hostile input.
    """

    def setUp(self):
        super().setUp()
        self.creds = enrolledCredentials(self.fixture, "phone")

    def newLink(self, registered: bool):
        self.clock = nowClock()
        proxy = FakeProxy(self.clock, self.creds, _RecordingInbox(), ProxySettings())
        link = HubLinkProtocol(proxy)
        transport = PeerCertTransport(self.zone.hubCert)
        link.makeConnection(transport)
        link.handshakeCompleted()
        if registered:
            link.dataReceived(_frame(_encode({
                "type": "prop", "from": ZONE, "to": DEVICE, "id": "r",
                "payload": {"status": "registered", "device": DEVICE, "zone": ZONE}})))
            self.successResultOf(link.registered)
            transport.clear()
        return link, proxy, transport

    def assertUnchanged(self, proxy):
        self.assertEqual(proxy.inbox.added, [])
        self.assertEqual(proxy.updates, [])
        self.assertEqual(proxy.crls, [])
        self.assertEqual(proxy.renewals, [])

    def close(self, link):
        link.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    _message = {"type": "prop", "from": TABLET, "to": DEVICE, "id": "m",
                "payload": {"status": "message", "text": "hi"}}
    _full = {"type": "prop", "from": ZONE, "to": DEVICE, "id": "u",
             "payload": {"status": "pzpUpdate", "devices": [{"id": TABLET}]}}
    _delta = {"type": "prop", "from": ZONE, "to": DEVICE, "id": "d",
              "payload": {"status": "pzpUpdate", "joined": [{"id": TABLET}], "left": []}}
    _registered = {"type": "prop", "from": ZONE, "to": DEVICE, "id": "r",
                   "payload": {"status": "registered", "device": DEVICE, "zone": ZONE}}

    _validRegistered = [
        (_message,
         [(("payload", "text"), lambda v: not isinstance(v, str) or len(v) > MAX_TEXT),
          (("payload", "status"), lambda v: v not in ("message", "pzpUpdate"))],
         [("payload", "text")]),
        (_full,
         [(("payload", "devices"), lambda v: not isinstance(v, list)),
          (("payload", "status"), lambda v: v not in ("message", "pzpUpdate"))],
         [("payload", "devices")]),
        (_delta,
         [(("payload", "joined"), lambda v: not isinstance(v, list)),
          (("payload", "left"), lambda v: not isinstance(v, list)),
          (("payload", "status"), lambda v: v not in ("message", "pzpUpdate"))],
         []),
    ]

    _validUnregistered = [
        (_registered,
         [(("payload", "status"), lambda v: v not in ("registered", "renewRequired"))],
         []),
        (_message, [], []),
        (_full, [], []),
    ]

    @_SETTINGS
    @given(_inputs(_changesRegisteredLink, _validRegistered))
    def test_registered(self, inputs):
        """
        A registered link answers garbage with known error codes or closes,
        and never touches the inbox, the peers, the CRL or the
        certificate.
        """
        link, proxy, transport = self.newLink(registered=True)
        for data in inputs:
            link.dataReceived(data)
        self.assertOnlyErrors(transport)
        self.assertUnchanged(proxy)
        self.close(link)
        self.assertEqual(len(proxy.hubInputs.lostReasons), 1)

    @_SETTINGS
    @given(_inputs(_registers, _validUnregistered))
    def test_unregistered(self, inputs):
        """
        A link not yet registered answers garbage with known error codes
        or closes; C{registered} never succeeds (a hub error may fail it),
        and nothing else changes.
        """
        link, proxy, transport = self.newLink(registered=False)
        for data in inputs:
            link.dataReceived(data)
        self.assertOnlyErrors(transport)
        self.assertUnchanged(proxy)
        self.assertRefusedIfFired(link.registered, lambda: self.close(link))
        self.assertEqual(proxy.hubInputs.lostReasons, [])


class EnrolmentPropertyTests(_PropertyBase):
    """
    L{EnrolmentProtocol} under hostile input.
    """

    def setUp(self):
        super().setUp()
        self.key = pki.newKey()
        self.code = PairingCode(HOST, HUB_PORT, "t" * 32, self.zone.caFingerprint)
        caPEM = self.zone.caPEM.decode("ascii")
        cert = pki.issueDeviceCertificate(self.zone.caKey, self.zone.caCert,
                                          pki.makeCSR(self.key, "phone"), DEVICE, 99,
                                          self.fixture.now())
        self.hello = {"type": "prop", "from": ZONE, "to": "", "id": "h",
                      "payload": {"status": "hello", "zone": ZONE, "ca": caPEM}}
        self.enrolled = {"type": "prop", "from": ZONE, "to": DEVICE, "id": "e",
                         "payload": {"status": "enrolled",
                                     "certificate": pki.certificatePEM(cert).decode("ascii"),
                                     "crl": self.fixture.hub.authority.crlPEM.decode("ascii"),
                                     "hub": f"{HOST}:{HUB_PORT}"}}

    def newProtocol(self, helloSeen: bool):
        self.clock = nowClock()
        protocol = EnrolmentProtocol(self.code, self.key, "phone", self.clock)
        transport = PeerCertTransport(self.zone.hubCert)
        protocol.makeConnection(transport)
        if helloSeen:
            protocol.dataReceived(_frame(_encode(self.hello)))
            [enrol] = frames(transport.value())
            self.assertEqual(enrol["payload"]["status"], "enrol")
            transport.clear()
        return protocol, transport

    def feed(self, protocol, transport, inputs):
        for data in inputs:
            protocol.dataReceived(data)
        self.assertOnlyErrors(transport)
        self.assertRefusedIfFired(
            protocol.result, lambda: protocol.connectionLost(Failure(ConnectionDone())))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def helloInputs(self):
        caPEM = self.hello["payload"]["ca"]
        valid = [(self.hello,
                  [(("payload", "ca"), lambda v: v != caPEM),
                   (("payload", "zone"), lambda v: v != ZONE),
                   (("payload", "status"), lambda v: v != "hello")],
                  [("payload", "ca"), ("payload", "zone")])]
        return _inputs(lambda envelope: False, valid)

    @_SETTINGS
    @given(st.data())
    def test_beforeHello(self, data):
        """
        Before a genuine hello the device answers garbage with known error
        codes or ends the attempt, and never sends its token.
        """
        protocol, transport = self.newProtocol(helloSeen=False)
        inputs = data.draw(self.helloInputs())
        self.feed(protocol, transport, inputs)

    @_SETTINGS
    @given(st.data())
    def test_afterHello(self, data):
        """
        After the hello the device accepts no broken or random answer as
        its enrolment.
        """
        protocol, transport = self.newProtocol(helloSeen=True)
        payload = self.enrolled["payload"]
        valid = [(self.enrolled,
                  [(("payload", "certificate"), lambda v: v != payload["certificate"]),
                   (("payload", "crl"), lambda v: v != payload["crl"]),
                   (("payload", "hub"), _noValidPort),
                   (("payload", "status"), lambda v: v != "enrolled")],
                  [("payload", "certificate"), ("payload", "crl"), ("payload", "hub")])]
        inputs = data.draw(_inputs(lambda envelope: False, valid))
        self.feed(protocol, transport, inputs)
