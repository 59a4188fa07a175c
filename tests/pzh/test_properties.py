"""
Property tests for the hub protocol: whatever a peer sends, the hub answers
with error frames carrying known codes (or closes the link), never lets an
exception escape, and changes no state.

Each example gets a fresh L{HubProtocol} on a L{StringTransport} that
presents a certificate (a registered device) or none (a client that may
only enrol), sharing one hub per test.
"""

import json
import struct
from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import CODES
from pz.testing import ZONE, MemoryHub, frames
from pzh.protocol import HubProtocol

from tests.support import changeType

_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])

#: Names that the hub answers with something other than an error.
_ANSWERED = {"ping"}


class _CertTransport(StringTransport):
    """
    A L{StringTransport} whose peer presented C{certificate}.
    """

    def __init__(self, certificate, port: int) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self._certificate = certificate

    def getPeerCertificate(self):
        return self._certificate


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _json(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


#: Any text, with extra weight on lone surrogates: valid in JSON strings,
#: not encodable as UTF-8.
_text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE00F), max_size=4),
).filter(lambda s: s not in _ANSWERED)

_jsonValues = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)

_IDS = [ZONE, "", f"{ZONE}/laptop", f"{ZONE}/nobody", "bob@127.0.0.2/phone", "x" * 600]

_fieldValues = st.one_of(
    _jsonValues,
    st.sampled_from(_IDS),
    st.sampled_from(["prop", "JSONRPC", "enrol", "Sync_Hash", "pzpUpdate"]),
)

_KEYS = ["type", "from", "to", "id", "payload", "resp_to"]

#: JSON objects that look like envelopes: the right keys, any values.
_envelopeShaped = st.dictionaries(
    st.sampled_from(_KEYS) | _text, _fieldValues, max_size=7
)


def _deleteField(obj: dict, path: tuple) -> None:
    target = obj
    for key in path[:-1]:
        target = target[key]
    target.pop(path[-1], None)


def _setField(obj: dict, path: tuple, value) -> None:
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _paths(obj: dict) -> list:
    out = [(k,) for k in obj]
    if isinstance(obj.get("payload"), dict):
        out += [("payload", k) for k in obj["payload"]]
    return out



@st.composite
def _mutated(draw, base: dict) -> bytes:
    """
    C{base} with one to three fields deleted, replaced or changed in type,
    framed with its true length or a random one.
    """
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(obj)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "replace", "retype"]))
        if action == "delete":
            _deleteField(obj, path)
        elif action == "replace":
            _setField(obj, path, draw(_fieldValues))
        else:
            target = obj
            for key in path[:-1]:
                target = target[key]
            _setField(obj, path, changeType(target[path[-1]]))
    body = _json(obj)
    prefix = draw(st.sampled_from(["true", "true", "random"]))
    if prefix == "true":
        return _frame(body)
    length = draw(st.integers(0, 2**32 - 1) | st.integers(0, len(body) + 8))
    return struct.pack(">I", length) + body


def _framed(bodies) -> bytes:
    return b"".join(_frame(b) for b in bodies)


class _HubProperties:
    """
    The shared machinery: a hub with an enrolled, connectable device, an
    enrolled offline device and an unused pairing code.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.clock = self.fixture.clock
        self.phoneKey, self.phoneCert = self.fixture.enrolDevice("phone")
        self.fixture.enrolDevice("laptop")
        self.code = self.hub.enrolment.newCode("tablet")
        self.csr = pki.csrPEM(pki.makeCSR(pki.newKey(), "tablet")).decode("ascii")
        self._ports = iter(range(41000, 60000))

    def connect(self, certificate):
        """
        A new hub protocol whose peer presented C{certificate}, past its
        greeting.
        """
        protocol = HubProtocol(self.hub)
        transport = _CertTransport(certificate, next(self._ports))
        protocol.makeConnection(transport)
        protocol.handshakeCompleted()
        greeting = frames(transport.value())
        transport.clear()
        return protocol, transport, greeting

    def state(self):
        """
        Everything the hub keeps: registry contents and the store.
        """
        return ({d: id(link) for d, link in
                 ((link.deviceId, link) for link in self.hub.registry.links())},
                self.fixture.storeState())

    def check(self, certificate, data: bytes) -> None:
        """
        Feed C{data} to a new link presenting C{certificate} and check the
        properties.
        """
        protocol, transport, _ = self.connect(certificate)
        before = self.state()
        protocol.dataReceived(data)
        for answer in frames(transport.value()):
            payload = answer["payload"]
            self.assertEqual(payload["status"], "error", answer)
            self.assertIn(payload["code"], CODES)
            self.assertIsInstance(payload["message"], str)
            self.assertNotIn("Traceback", payload["message"])
        self.assertEqual(self.state(), before)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.hub.registry.cancel()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.hub.registry), 0)
        # Let the rate limiter forget, so every example tries the checks.
        self.clock.advance(61)


class DeviceLinkProperties(_HubProperties, SynchronousTestCase):
    """
    What a registered device sends cannot hurt the hub.
    """

    def base(self) -> dict:
        return {"type": "prop", "from": f"{ZONE}/phone", "to": f"{ZONE}/nobody",
                "id": "m1", "payload": {"status": "Sync_Hash", "hashes": ["a", "b"]}}

    def test_registered(self):
        """
        The harness really registers the device (else the properties below
        would prove nothing about registered links).
        """
        protocol, transport, greeting = self.connect(self.phoneCert)
        self.assertEqual([g["payload"]["status"] for g in greeting], ["registered"])
        self.assertIs(self.hub.registry.get(f"{ZONE}/phone"), protocol)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.hub.registry.cancel()

    @_SETTINGS
    @given(st.binary(max_size=600))
    def test_randomBytes(self, data):
        """
        Random bytes, random length prefixes included, get only error
        frames or a close.
        """
        self.check(self.phoneCert, data)

    @_SETTINGS
    @given(st.lists(st.binary(max_size=200), min_size=1, max_size=7))
    def test_randomFrames(self, bodies):
        """
        Correctly framed random bodies get only error frames or a close.
        """
        self.check(self.phoneCert, _framed(bodies))

    @_SETTINGS
    @given(st.lists(_jsonValues | _envelopeShaped, min_size=1, max_size=7))
    def test_randomJSON(self, values):
        """
        Random JSON values and envelope-shaped objects get only error frames
        or a close.
        """
        self.check(self.phoneCert, _framed(_json(v) for v in values))

    @_SETTINGS
    @given(st.lists(st.fixed_dictionaries(
        {"to": _text | st.sampled_from(_IDS), "id": _text, "from": _text,
         "type": st.sampled_from(["prop", "JSONRPC"])},
        optional={"resp_to": _text}), min_size=1, max_size=6))
    def test_randomIds(self, headers):
        """
        Well-formed envelopes with arbitrary strings as ids (surrogates and
        overlong ones included) get only error frames.
        """
        bodies = []
        for header in headers:
            header["payload"] = {"status": "Sync_Hash"}
            bodies.append(_json(header))
        self.check(self.phoneCert, _framed(bodies))

    @_SETTINGS
    @given(st.data())
    def test_mutatedEnvelopes(self, data):
        """
        Valid envelopes with fields deleted, replaced or retyped, and
        random length prefixes, get only error frames or a close.
        """
        count = data.draw(st.integers(1, 6))
        self.check(self.phoneCert,
                   b"".join(data.draw(_mutated(self.base())) for _ in range(count)))


class EnrollingLinkProperties(_HubProperties, SynchronousTestCase):
    """
    What a client without a certificate sends cannot hurt the hub.
    """

    def base(self) -> dict:
        return {"type": "prop", "from": "", "to": ZONE, "id": "e1",
                "payload": {"status": "enrol", "token": "Wrong-token-0123456789",
                            "name": "tablet", "csr": self.csr}}

    def test_enrolling(self):
        """
        The harness really makes an enrolling link, and the base message
        is refused only for its token.
        """
        protocol, transport, greeting = self.connect(None)
        self.assertEqual([g["payload"]["status"] for g in greeting], ["hello"])
        self.assertTrue(protocol.enrolling)
        protocol.dataReceived(_frame(_json(self.base())))
        [answer] = frames(transport.value())
        self.assertEqual(answer["payload"]["code"], "TOKEN_INVALID")
        protocol.connectionLost(Failure(ConnectionDone()))

    @_SETTINGS
    @given(st.binary(max_size=600))
    def test_randomBytes(self, data):
        """
        Random bytes get only error frames or a close.
        """
        self.check(None, data)

    @_SETTINGS
    @given(st.lists(_jsonValues | _envelopeShaped, min_size=1, max_size=7))
    def test_randomJSON(self, values):
        """
        Random JSON gets only error frames or a close.
        """
        self.check(None, _framed(_json(v) for v in values))

    @_SETTINGS
    @given(st.data())
    def test_mutatedEnrolment(self, data):
        """
        Enrol messages with fields deleted, replaced or retyped, and random
        length prefixes, get only error frames or a close, and enrol
        nobody.
        """
        count = data.draw(st.integers(1, 6))
        self.check(None, b"".join(data.draw(_mutated(self.base())) for _ in range(count)))

    @_SETTINGS
    @given(st.lists(st.one_of(_text, st.none(), st.integers(),
                              st.lists(st.text(max_size=5), max_size=3)),
                    min_size=1, max_size=6))
    def test_randomTokens(self, tokens):
        """
        Any token value but the real one enrols nobody.
        """
        frameList = []
        for token in tokens:
            base = self.base()
            base["payload"]["token"] = token
            frameList.append(_json(base))
        self.check(None, _framed(frameList))


class RenewingLinkProperties(_HubProperties, SynchronousTestCase):
    """
    What a device with an expired certificate, admitted only to renew,
    sends cannot hurt the hub.
    """

    def setUp(self):
        super().setUp()
        self.clock.advance(timedelta(days=95).total_seconds())

    def base(self) -> dict:
        return {"type": "prop", "from": "", "to": ZONE, "id": "r1",
                "payload": {"status": "renew", "csr": self.csr[:200]}}

    def test_renewing(self):
        """
        The harness really makes a renewing link, and the base message is
        refused only for its request.
        """
        protocol, transport, greeting = self.connect(self.phoneCert)
        self.assertEqual([g["payload"]["status"] for g in greeting], ["renewRequired"])
        protocol.dataReceived(_frame(_json(self.base())))
        [answer] = frames(transport.value())
        self.assertEqual(answer["payload"]["code"], "CERT_INVALID")
        protocol.connectionLost(Failure(ConnectionDone()))

    @_SETTINGS
    @given(st.lists(_jsonValues | _envelopeShaped, min_size=1, max_size=7))
    def test_randomJSON(self, values):
        """
        Random JSON gets only error frames or a close.
        """
        self.check(self.phoneCert, _framed(_json(v) for v in values))

    @_SETTINGS
    @given(st.data())
    def test_mutatedRenewal(self, data):
        """
        Renew messages with fields deleted, replaced or retyped, and random
        length prefixes, get only error frames or a close, and renew
        nothing.
        """
        count = data.draw(st.integers(1, 6))
        self.check(self.phoneCert,
                   b"".join(data.draw(_mutated(self.base())) for _ in range(count)))
