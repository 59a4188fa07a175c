"""
Fuzzing the hub's device port: streams of mutated envelopes, random JSON
and bytes with lying length prefixes, cut at random points, sent by a
registered device, by a client with no certificate (enrolment only), by a
client with another CA's certificate, and as raw bytes into the TLS layer
before any handshake.

After every example: nothing was logged as a failure or unhandled; every
frame the hub read got an answer (an error for the unauthenticated links)
or the link was closed; the hub's buffers and output stay within bounds;
and for unauthenticated links the store and the registry are unchanged.
Over each run the traced heap neither keeps growing nor peaks high.
"""

import struct

from hypothesis import given, strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import CODES
from pz.testing import ZONE, MemoryHub, frames
from pzh.hub import HubSettings
from pzh.protocol import HubFactory, HubProtocol

from tests.fuzz._frames import chunked, units, variants
from tests.fuzz._harness import VARIANTS, FuzzRun, fuzzSettings

#: A small frame limit, so that over-limit frames are cheap to make; a
#: long idle timeout, so the standing receiver link never times out as
#: the clock moves between examples.
_SETTINGS = HubSettings(maxFrame=64 * 1024, idleTimeout=10.0**9)

#: The most a generated field grows: just over the frame limit, which is
#: all it takes to test it; anything larger only costs memory.
_GROWN = _SETTINGS.maxFrame + 16 * 1024

_BAD_CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBAA==\n-----END CERTIFICATE REQUEST-----\n"


class _Transport(StringTransport):
    """
    A L{StringTransport} from C{host} whose peer presented C{certificate}.
    """

    def __init__(self, certificate, host: str, port: int) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", host, port))
        self._certificate = certificate

    def getPeerCertificate(self):
        return self._certificate


class _CountingProtocol(HubProtocol):
    """
    A L{HubProtocol} that counts the frames it read while its link was
    open: each of them must get an answer.
    """

    delivered = 0

    def stringReceived(self, data: bytes) -> None:
        if not self.transport.disconnecting:
            self.delivered += 1
        super().stringReceived(data)


_hosts = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)).map(
    lambda t: "127.%d.%d.%d" % t)


class DevicePortFuzz(FuzzRun, SynchronousTestCase):
    """
    The device port under generated input.
    """

    target = "device port"

    def setUp(self):
        self.fixture = MemoryHub(self, _SETTINGS)
        self.hub = self.fixture.hub
        self.clock = self.fixture.clock
        self.phoneKey, self.phoneCert = self.fixture.enrolDevice("phone")
        _, laptopCert = self.fixture.enrolDevice("laptop")
        self.fixture.enrolDevice("watch")
        self.foreignCert = self.fixture.foreignDevice("phone")[1]
        self.hub.enrolment.newCode("tablet")
        self.csr = pki.csrPEM(pki.makeCSR(pki.newKey(), "tablet")).decode("ascii")
        self._ports = iter(range(20000, 10**9))
        self.laptop, self.laptopTransport = self._open(laptopCert, "127.0.0.1")
        self.hub.registry.cancel()
        self.laptopTransport.clear()
        self.addCleanup(self._closeLaptop)
        self.startRun()

    def _closeLaptop(self):
        self.laptop.connectionLost(Failure(ConnectionDone()))
        self.hub.registry.cancel()

    def _open(self, certificate, host):
        protocol = _CountingProtocol(self.hub)
        transport = _Transport(certificate, host, next(self._ports))
        protocol.makeConnection(transport)
        protocol.handshakeCompleted()
        return protocol, transport

    def deviceBases(self) -> list:
        """
        Valid messages a registered device sends: to the hub, to a device
        that is connected, to one that is not, to nobody; a service call.
        """
        phone, laptop = f"{ZONE}/phone", f"{ZONE}/laptop"
        return [
            {"type": "prop", "from": phone, "to": ZONE, "id": "p1", "payload": {"status": "ping"}},
            {"type": "prop", "from": "", "to": laptop, "id": "s1",
             "payload": {"status": "Sync_Hash", "hashes": ["a", "b"], "note": "\U0001F600"}},
            {"type": "prop", "from": phone, "to": f"{ZONE}/watch", "id": "s2",
             "payload": {"status": "Sync_Hash", "hashes": []}},
            {"type": "prop", "from": phone, "to": "bob@127.0.0.2/x", "id": "s3",
             "payload": {"status": "hello"}},
            {"type": "JSONRPC", "from": phone, "to": laptop, "id": "r1", "resp_to": phone,
             "payload": {"jsonrpc": "2.0", "method": "Service.call", "params": [1, "two"]}},
            {"type": "prop", "from": phone, "to": "", "id": "n1",
             "payload": {"status": "renew", "csr": _BAD_CSR}},
        ]

    def enrolBases(self) -> list:
        """
        What a client without a certificate sends: an enrolment with a
        wrong token (and a good request), and anything else.
        """
        return [
            {"type": "prop", "from": "", "to": ZONE, "id": "e1",
             "payload": {"status": "enrol", "token": "Wrong-token-0123456789abcdef",
                         "name": "tablet", "csr": self.csr}},
            {"type": "prop", "from": "", "to": ZONE, "id": "e2",
             "payload": {"status": "enrol", "token": "", "csr": _BAD_CSR}},
            {"type": "prop", "from": "", "to": f"{ZONE}/laptop", "id": "e3",
             "payload": {"status": "Sync_Hash", "hashes": ["a"]}},
            {"type": "prop", "from": "", "to": ZONE, "id": "e4", "payload": {"status": "ping"}},
        ]

    def state(self):
        """
        What an unauthenticated peer must not change: the registry and
        every row of the store.
        """
        return ({link.deviceId: id(link) for link in self.hub.registry.links()},
                self.fixture.storeState())

    def feed(self, certificate, host: str, count: int, pieces: list, authenticated: bool):
        """
        Open a link presenting C{certificate} from C{host}, send it
        C{pieces} (C{count} frames as generated), close it, and check
        every property.
        """
        before = self.state() if not authenticated else None
        delayed = len(self.clock.getDelayedCalls())
        protocol, transport = self._open(certificate, host)
        transport.clear()
        largest = 0
        for piece in pieces:
            protocol.dataReceived(piece)
            # At most one frame's worth is buffered beyond one read (a
            # closed link keeps the read that closed it, and no more).
            largest = max(largest, len(piece))
            self.assertLessEqual(len(getattr(protocol, "_unprocessed", b"")),
                                 protocol.MAX_LENGTH + 4 + largest)
        self.checkLog()
        answers = frames(transport.value())
        forwarded = frames(self.laptopTransport.value())
        self.laptopTransport.clear()
        for answer in answers + forwarded:
            self.assertIn(answer["type"], ("prop", "JSONRPC"))
            payload = answer["payload"]
            if payload.get("status") == "error":
                self.assertIn(payload["code"], CODES)
                self.assertNotIn("Traceback", payload["message"])
        for frame in forwarded:
            self.assertEqual(frame["from"], f"{ZONE}/phone")
        if not authenticated:
            for answer in answers:
                self.assertEqual(answer["payload"]["status"], "error", answer)
            self.assertEqual(forwarded, [])
        self.assertGreaterEqual(len(answers) + len(forwarded), protocol.delivered,
                                "a frame went unanswered")
        size = sum(len(piece) for piece in pieces)
        self.assertLessEqual(len(transport.value()), 4 * size + 4096 * (protocol.delivered + 3))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.hub.registry.cancel()
        self.checkLog()
        self.assertEqual(len(self.hub.registry), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), delayed)
        if before is not None:
            self.assertEqual(self.state(), before)
        # Let the enrolment limits forget, so every example reaches the checks.
        self.clock.advance(61)
        self.counted(count, size)

    def example(self, data, certificate, host: str, bases: list, authenticated: bool) -> None:
        """
        One example: a generated stream, cut at random, then byte-level
        mutants of it, each on a link of its own.
        """
        stream = data.draw(units(bases, _GROWN))
        wire = b"".join(u.data for u in stream)
        count = sum(max(1, u.frames) for u in stream)
        self.feed(certificate, host, count, data.draw(chunked(wire)), authenticated)
        for mutant in variants(data.draw(st.integers(0, 2**32 - 1)), wire, VARIANTS):
            half = len(mutant) // 2
            self.feed(certificate, host, count, [mutant[:half], mutant[half:]], authenticated)

    @fuzzSettings(1.0)
    @given(st.data())
    def fuzzRegistered(self, data):
        self.example(data, self.phoneCert, "127.0.0.1", self.deviceBases(), True)

    def test_registeredDevice(self):
        """
        Whatever a registered device sends, the hub answers each frame (or
        forwards it, from that device) or closes the link, and never fails.
        """
        self.fuzzRegistered()
        self.finishRun("registered device")

    @fuzzSettings(1.0)
    @given(st.data())
    def fuzzEnrolling(self, data):
        self.example(data, None, data.draw(_hosts), self.enrolBases(), False)

    def test_enrollingClient(self):
        """
        Whatever a client without a certificate sends, it gets only errors
        or a close, and nothing in the hub changes.
        """
        self.fuzzEnrolling()
        self.finishRun("no certificate")

    @fuzzSettings(0.5)
    @given(st.data())
    def fuzzForeign(self, data):
        self.example(data, self.foreignCert, data.draw(_hosts),
                 self.deviceBases() + self.enrolBases(), False)

    def test_foreignCertificate(self):
        """
        Whatever a client with another CA's certificate for a device of
        this zone sends, it gets only errors or a close, and nothing in
        the hub changes.
        """
        self.fuzzForeign()
        self.finishRun("foreign certificate")


class TLSLayerFuzz(FuzzRun, SynchronousTestCase):
    """
    Bytes into the device port's TLS layer before any handshake: a real
    ClientHello mutated, or random bytes.
    """

    target = "device port TLS"

    def setUp(self):
        self.fixture = MemoryHub(self, _SETTINGS)
        self.hub = self.fixture.hub
        self.clock = self.fixture.clock
        self.factory = TLSMemoryBIOFactory(
            self.fixture.serverOptions, False, HubFactory(self.hub), self.clock)
        self.hello = self._clientHello()
        self._ports = iter(range(20000, 10**9))
        self.startRun()

    def _clientHello(self) -> bytes:
        """
        The first bytes a real device sends.
        """
        key, cert = self.fixture.enrolDevice("phone")
        options = tls.pzpClientOptions(self.fixture.zone.caCert, key, cert, "127.0.0.1")
        client = TLSMemoryBIOFactory(options, True, HubFactory(self.hub), self.clock)
        protocol = client.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8000))
        transport = StringTransport()
        protocol.makeConnection(transport)
        return transport.value()

    @fuzzSettings(0.25)
    @given(st.data())
    def fuzzTLS(self, data):
        hello = bytearray(self.hello)
        for _ in range(data.draw(st.integers(0, 6))):
            where = data.draw(st.integers(0, len(hello) - 1))
            hello[where] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(hello)))
        wire = data.draw(st.one_of(
            st.just(bytes(hello[:cut])),
            st.just(bytes(hello)) .map(lambda h: h + struct.pack(">I", 5) + b"hello"),
            st.binary(min_size=1, max_size=600),
            st.binary(max_size=32).map(lambda b: b"\x16\x03\x01\xff\xff" + b),
        ))
        before = self.fixture.storeState()
        delayed = len(self.clock.getDelayedCalls())
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.9", next(self._ports)))
        transport = StringTransport()
        protocol.makeConnection(transport)
        for piece in data.draw(chunked(wire)):
            protocol.dataReceived(piece)
        self.checkLog()
        self.assertLessEqual(len(transport.value()), 16384)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.checkLog()
        self.assertEqual(len(self.hub.registry), 0)
        self.assertEqual(len(self.clock.getDelayedCalls()), delayed)
        self.assertEqual(self.fixture.storeState(), before)
        self.counted(1, len(wire))

    def test_beforeHandshake(self):
        """
        No bytes sent before or instead of a TLS handshake make the hub
        fail, answer at length, or change anything.
        """
        self.fuzzTLS()
        self.finishRun("before the handshake")
