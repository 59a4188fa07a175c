"""
Tests for L{pzp.enrol}: a virgin device enrols with a real hub over TLS in
memory (L{TLSMemoryBIOFactory} at both ends, pumped by
L{twisted.test.iosim}), and refuses what an impostor or a broken hub sends.

The hub is L{pz.testing.MemoryHub}.
"""

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.testing import HOST, HUB_PORT, ZONE, MemoryHub, PeerCertTransport, frame, frames
from pzh.enrolment import tokenHash
from pzh.zone import loadOrCreateZone
from pzp.enrol import EnrolmentProtocol, EnrolmentResult
from tests.pzp._support import SMALL_FRAME, growCRL, prop, recordHubEnvelopes


class EnrolmentOverTLSTests(SynchronousTestCase):
    """
    L{EnrolmentProtocol} against a real hub.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.hub = self.fixture.hub
        self.store = self.fixture.store

    def enrol(self, code, name="phone", key=None):
        """
        Run one enrolment attempt with C{code}; return the protocol.
        """
        protocol = EnrolmentProtocol(code, key or pki.newKey(), name, self.clock)
        self.fixture.connectProtocol(tls.enrolmentClientOptions(code.host), protocol)
        return protocol

    def refusal(self, code, name="phone") -> str:
        """
        The error code an enrolment attempt with C{code} ends with.
        """
        return self.failureResultOf(self.enrol(code, name).result, ZoneError).value.code

    def test_success(self):
        """
        A fresh code yields an L{EnrolmentResult} whose certificate is for
        the device's key and id, with the zone CA, a CRL signed by it and
        the hub's address; the hub consumed the token and recorded the
        device.
        """
        code = self.hub.enrolment.newCode("phone")
        key = pki.newKey()
        protocol = self.enrol(code, key=key)
        result = self.successResultOf(protocol.result)
        self.assertIsInstance(result, EnrolmentResult)
        self.assertEqual(result.cert.public_key(), key.public_key())
        self.assertEqual(result.zoneId, ZONE)
        self.assertEqual(result.deviceId, f"{ZONE}/phone")
        self.assertEqual(pki.identityOf(result.cert), f"{ZONE}/phone")
        self.assertEqual((result.hubHost, result.hubPort), (HOST, HUB_PORT))
        self.assertEqual(result.caCert, self.fixture.zone.caCert)
        pki.verifyCRL(result.crl, self.fixture.zone.caCert)
        self.assertIsNotNone(self.store.getToken(tokenHash(code.token)).used)
        self.assertEqual(self.store.getDevice(f"{ZONE}/phone").serial,
                         result.cert.serial_number)
        self.assertTrue(protocol.transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_largeCRL(self):
        """
        A zone whose CRL is larger than the device's frame limit still
        enrols it: the CRL comes ahead of C{enrolled} in pieces, which the
        device joins and checks like a whole one.
        """
        crl = growCRL(self.fixture)
        code = self.hub.enrolment.newCode("phone")
        protocol = EnrolmentProtocol(code, pki.newKey(), "phone", self.clock)
        protocol.MAX_LENGTH = SMALL_FRAME
        self.fixture.connectProtocol(tls.enrolmentClientOptions(code.host), protocol)
        result = self.successResultOf(protocol.result)
        self.assertEqual(pki.crlPEM(result.crl), pki.crlPEM(crl))

    def test_wrongFingerprint(self):
        """
        A code pinning another CA's fingerprint makes the device refuse the
        hub with C{HUB_UNTRUSTED} before it sends the token: the hub never
        sees an C{enrol} and the token stays unused.
        """
        seen = recordHubEnvelopes(self)
        code = self.hub.enrolment.newCode("phone")
        other = loadOrCreateZone(self.mktemp(), "mallory", HOST, HOST, HUB_PORT, 9000)
        forged = PairingCode(code.host, code.port, code.token, other.caFingerprint)
        self.assertEqual(self.refusal(forged), "HUB_UNTRUSTED")
        self.assertEqual(seen, [])
        self.assertIsNone(self.store.getToken(tokenHash(code.token)).used)
        self.assertEqual(self.store.listDevices(), [])

    def test_impostorHub(self):
        """
        A hub of another zone (its own CA) is refused with
        C{HUB_UNTRUSTED} by a device holding a code of this zone; the
        impostor never learns the token.
        """
        impostor = MemoryHub(self, clock=self.clock, onDisk=False)
        seen = recordHubEnvelopes(self)
        code = self.hub.enrolment.newCode("phone")
        protocol = EnrolmentProtocol(code, pki.newKey(), "phone", self.clock)
        impostor.connectProtocol(tls.enrolmentClientOptions(HOST), protocol)
        self.assertEqual(self.failureResultOf(protocol.result, ZoneError).value.code,
                         "HUB_UNTRUSTED")
        self.assertEqual(seen, [])

    def test_hostNotInCertificate(self):
        """
        The right CA is not enough: the hub's certificate must name the
        host the code names, or the device refuses with C{HUB_UNTRUSTED}.
        """
        seen = recordHubEnvelopes(self)
        code = self.hub.enrolment.newCode("phone")
        elsewhere = PairingCode("127.0.0.2", code.port, code.token, code.caFingerprint)
        self.assertEqual(self.refusal(elsewhere), "HUB_UNTRUSTED")
        self.assertEqual(seen, [])
        self.assertIsNone(self.store.getToken(tokenHash(code.token)).used)

    def test_unknownToken(self):
        """
        A token the hub never issued: C{TOKEN_INVALID} from the hub.
        """
        code = self.hub.enrolment.newCode("phone")
        unknown = PairingCode(code.host, code.port, "x" * 32, code.caFingerprint)
        self.assertEqual(self.refusal(unknown), "TOKEN_INVALID")

    def test_usedToken(self):
        """
        A code used once already: C{TOKEN_USED} from the hub.
        """
        code = self.hub.enrolment.newCode("phone")
        self.successResultOf(self.enrol(code).result)
        self.assertEqual(self.refusal(code), "TOKEN_USED")

    def test_expiredToken(self):
        """
        A code past its lifetime: C{TOKEN_EXPIRED} from the hub.
        """
        code = self.hub.enrolment.newCode("phone")
        self.clock.advance(self.hub.enrolment.codeLifetime + 1)
        self.assertEqual(self.refusal(code), "TOKEN_EXPIRED")

    def test_nameTaken(self):
        """
        A code for a name another device enrolled with meanwhile:
        C{NAME_TAKEN} from the hub.
        """
        first = self.hub.enrolment.newCode("phone")
        second = self.hub.enrolment.newCode("phone")
        self.successResultOf(self.enrol(first).result)
        self.assertEqual(self.refusal(second), "NAME_TAKEN")

    def test_rateLimited(self):
        """
        After repeated bad tokens from one address the hub answers
        C{RATE_LIMITED}, and the device reports that.
        """
        code = self.hub.enrolment.newCode("phone")
        bad = PairingCode(code.host, code.port, "y" * 32, code.caFingerprint)
        codes = [self.refusal(bad) for _ in range(6)]
        self.assertEqual(codes, ["TOKEN_INVALID"] * 5 + ["RATE_LIMITED"])


class EnrolmentProtocolTests(SynchronousTestCase):
    """
    L{EnrolmentProtocol} fed frames directly over a L{StringTransport}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.zone = self.fixture.zone
        self.code = PairingCode(HOST, HUB_PORT, "t" * 32, self.zone.caFingerprint)
        self.key = pki.newKey()
        self.protocol = EnrolmentProtocol(self.code, self.key, "phone", self.clock, timeout=30)
        self.transport = PeerCertTransport(self.zone.hubCert)
        self.protocol.makeConnection(self.transport)

    def hello(self, **overrides):
        payload = {"status": "hello", "zone": ZONE, "ca": self.zone.caPEM.decode("ascii")}
        payload.update(overrides)
        return prop({k: v for k, v in payload.items() if v is not None})

    def sent(self) -> list:
        out = frames(self.transport.value())
        self.transport.clear()
        return out

    def refusalCode(self) -> str:
        return self.failureResultOf(self.protocol.result, ZoneError).value.code

    def test_helloSendsToken(self):
        """
        A hello whose CA matches the pinned fingerprint and whose
        certificate checks out gets the token, the name and a CSR for the
        device's key, addressed to the zone.
        """
        self.protocol.dataReceived(frame(self.hello()))
        [enrol] = self.sent()
        self.assertEqual(enrol["to"], ZONE)
        payload = enrol["payload"]
        self.assertEqual((payload["status"], payload["token"], payload["name"]),
                         ("enrol", self.code.token, "phone"))
        self.assertIn("BEGIN CERTIFICATE REQUEST", payload["csr"])
        self.assertNoResult(self.protocol.result)

    def test_timeout(self):
        """
        A hub that never finishes: after the timeout the attempt fails with
        C{TIMEOUT}, the connection closes and no timer is left.
        """
        self.clock.advance(29)
        self.assertNoResult(self.protocol.result)
        self.clock.advance(1)
        self.assertEqual(self.refusalCode(), "TIMEOUT")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionLost(self):
        """
        A hang-up before the answer fails the attempt with
        C{NOT_CONNECTED} and stops the timer.
        """
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.refusalCode(), "NOT_CONNECTED")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_hubError(self):
        """
        An error from the hub ends the attempt with its code and message.
        """
        self.protocol.dataReceived(frame(prop(
            {"status": "error", "code": "TOKEN_USED", "message": "used"})))
        failure = self.failureResultOf(self.protocol.result, ZoneError)
        self.assertEqual((failure.value.code, failure.value.message), ("TOKEN_USED", "used"))
        self.assertTrue(self.transport.disconnecting)

    def test_unknownErrorCode(self):
        """
        An error code this version does not know becomes C{INTERNAL}.
        """
        self.protocol.dataReceived(frame(prop({"status": "error", "code": "NEWFANGLED"})))
        self.assertEqual(self.refusalCode(), "INTERNAL")

    def test_errorCodeNotAString(self):
        """
        An error whose code is not even a string (a list) also becomes
        C{INTERNAL} instead of escaping as an exception.
        """
        self.protocol.dataReceived(frame(prop({"status": "error", "code": ["X"]})))
        self.assertEqual(self.refusalCode(), "INTERNAL")

    def test_unexpectedMessage(self):
        """
        A message other than hello before the hello is refused with
        C{UNKNOWN_MESSAGE}; the attempt goes on.
        """
        self.protocol.dataReceived(frame(prop({"status": "enrolled"})))
        [error] = self.sent()
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")
        self.assertNoResult(self.protocol.result)

    def test_secondHello(self):
        """
        A second hello is refused and does not make the device send its
        token again.
        """
        self.protocol.dataReceived(frame(self.hello()))
        self.sent()
        self.protocol.dataReceived(frame(self.hello()))
        [error] = self.sent()
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")

    def test_helloWithoutValidCA(self):
        """
        A hello whose C{ca} is not a PEM certificate is refused with
        C{HUB_UNTRUSTED}; nothing is sent.
        """
        self.protocol.dataReceived(frame(self.hello(ca="not a certificate")))
        self.assertEqual(self.refusalCode(), "HUB_UNTRUSTED")
        self.assertEqual(self.sent(), [])

    def test_helloWithoutZone(self):
        """
        A hello that names no zone (or not as a string) is refused with
        C{HUB_UNTRUSTED}: the device does not send its token with no
        destination.
        """
        for zone in (None, 7, ""):
            self.setUp()
            self.protocol.dataReceived(frame(self.hello(zone=zone)))
            self.assertEqual(self.refusalCode(), "HUB_UNTRUSTED")
            self.assertEqual(self.sent(), [])

    def test_helloForOtherZone(self):
        """
        A hello naming a zone the hub's certificate is not for is refused.
        """
        self.protocol.dataReceived(frame(self.hello(zone="bob@127.0.0.1")))
        self.assertEqual(self.refusalCode(), "HUB_UNTRUSTED")
        self.assertEqual(self.sent(), [])

    def test_noPeerCertificate(self):
        """
        Without a hub certificate from the handshake the hello is refused.
        """
        self.transport.peerCert = None
        self.protocol.dataReceived(frame(self.hello()))
        self.assertEqual(self.refusalCode(), "HUB_UNTRUSTED")

    def enrolled(self, **overrides):
        """
        Send the hello, then an enrolled answer issued for the device's key
        (with C{overrides}).
        """
        self.protocol.dataReceived(frame(self.hello()))
        self.sent()
        cert = pki.issueDeviceCertificate(
            self.zone.caKey, self.zone.caCert, pki.makeCSR(self.key, "phone"),
            f"{ZONE}/phone", 99, self.fixture.now(),
        )
        payload = {
            "status": "enrolled",
            "certificate": pki.certificatePEM(cert).decode("ascii"),
            "crl": self.fixture.hub.authority.crlPEM.decode("ascii"),
            "hub": f"{HOST}:{HUB_PORT}",
        }
        payload.update(overrides)
        self.protocol.dataReceived(frame(prop(payload, to=f"{ZONE}/phone")))

    def test_enrolled(self):
        """
        A correct answer yields the result and closes the connection.
        """
        self.enrolled()
        result = self.successResultOf(self.protocol.result)
        self.assertEqual(result.deviceId, f"{ZONE}/phone")
        self.assertTrue(self.transport.disconnecting)

    def test_enrolledForAnotherKey(self):
        """
        A certificate for another key is refused with C{CERT_INVALID}.
        """
        other = pki.issueDeviceCertificate(
            self.zone.caKey, self.zone.caCert, pki.makeCSR(pki.newKey(), "phone"),
            f"{ZONE}/phone", 98, self.fixture.now(),
        )
        self.enrolled(certificate=pki.certificatePEM(other).decode("ascii"))
        self.assertEqual(self.refusalCode(), "CERT_INVALID")

    def test_enrolledWithForeignCRL(self):
        """
        A CRL not signed by the zone CA is refused with C{CERT_INVALID}.
        """
        caKey, caCert = pki.createZoneCA(ZONE, self.fixture.now())
        crl = pki.buildCRL(caKey, caCert, [], 1, self.fixture.now())
        self.enrolled(crl=pki.crlPEM(crl).decode("ascii"))
        self.assertEqual(self.refusalCode(), "CERT_INVALID")

    def test_enrolledIncomplete(self):
        """
        An answer without a usable hub address is refused with
        C{BAD_ENVELOPE}.
        """
        self.enrolled(hub="nowhere")
        self.assertEqual(self.refusalCode(), "BAD_ENVELOPE")

    def test_enrolledBeforeHello(self):
        """
        An C{enrolled} answer before the device asked is refused and
        yields nothing.
        """
        self.protocol.dataReceived(frame(prop({"status": "enrolled", "certificate": ""})))
        self.assertNoResult(self.protocol.result)
        [error] = self.sent()
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")
