"""
Tests for certificate renewal at the hub: over a registered link
(L{pzh.router.Router.renew}), and over a link admitted only to renew, for a
certificate that expired less than the grace period ago
(L{pzh.protocol.HubProtocol}, L{pzh.authority.ZoneAuthority.renewalIdentity});
and that a revoked device never renews.  Devices connect over TLS in memory.
"""

import sqlite3
from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import ZoneError
from pz.testing import RENEWAL_DUE, ZONE, MemoryHub
from pz.wire import Envelope
from pzh.authority import MAX_LIVE_CERTIFICATES
from pzh.hub import HubSettings


GRACE = HubSettings().gracePeriod


class _RenewalTestCase(SynchronousTestCase):
    """
    A hub for each test; every link must close cleanly and leave nothing
    on the clock.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, HubSettings())
        self.hub = self.fixture.hub
        self.authority = self.hub.authority
        self.clock = self.fixture.clock
        self.phoneId = self.fixture.deviceId("phone")
        self.addCleanup(self.fixture.close)

    def renewFrame(self, key, msgId="r1", name="phone") -> dict:
        """
        A C{renew} request for C{key}, its CSR naming C{name}.
        """
        return {"type": "prop", "from": "", "to": ZONE, "id": msgId,
                "payload": {"status": "renew",
                            "csr": pki.csrPEM(pki.makeCSR(key, name)).decode("ascii")}}

    def certificates(self) -> list:
        """
        Every certificate serial the store remembers issuing.
        """
        db = sqlite3.connect(self.fixture.storePath)
        try:
            return sorted(db.execute("SELECT serial, device_id FROM certificates").fetchall())
        finally:
            db.close()

    def expireBy(self, cert, seconds: float) -> None:
        """
        Move the clock to C{seconds} after C{cert} expired.
        """
        target = cert.not_valid_after_utc.timestamp() + seconds
        self.clock.advance(target - self.clock.seconds())

    def device(self, name: str):
        """
        Enrol and connect a device; its link with the first frames taken.
        """
        key, cert = self.fixture.enrolDevice(name)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        self.fixture.coalesce()
        link.client.take()
        return link

    def connected(self, advance: float = RENEWAL_DUE):
        """
        Enrol the phone, move the clock by C{advance} and connect it.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.clock.advance(advance)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        self.fixture.coalesce()
        link.client.take()
        return cert, link

    def renewOver(self, link, msgId: str = "r1", key=None) -> dict:
        """
        Ask for a renewal over C{link}; the answer's payload.
        """
        link.client.send(self.renewFrame(key or pki.newKey(), msgId))
        self.fixture.flush()
        [answer] = [f for f in link.client.take() if f["payload"].get("ref") == msgId]
        return answer["payload"]

    def graceRenewals(self, count: int):
        """
        Enrol the phone, let its certificate expire and ask C{count} times
        to renew, each on a new link admitted for renewal only.

        @return: the expired key and certificate, and each answer payload.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, 60)
        answers = []
        for i in range(count):
            link = self.fixture.connectDevice(key, cert)
            self.assertEqual(link.client.statuses(), ["renewRequired"])
            link.client.take()
            answers.append(self.renewOver(link, f"g{i}"))
        return key, cert, answers


class GracePeriodTests(_RenewalTestCase):
    """
    A device that slept past its certificate's expiry.
    """

    def test_renewRequired(self):
        """
        A certificate of the zone, not revoked, expired less than the grace
        period ago: the hub completes the handshake, registers nothing,
        tells nobody of a join, and answers C{renewRequired} naming the
        device.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, GRACE.total_seconds() - 1)
        laptop = self.device("laptop")
        link = self.fixture.connectDevice(key, cert)
        self.fixture.coalesce()
        self.assertEqual([f["payload"] for f in link.client.take()],
                         [{"status": "renewRequired", "device": self.phoneId}])
        self.assertFalse(link.closed)
        self.assertIsNone(self.hub.registry.get(self.phoneId))
        self.assertEqual(laptop.client.take(), [])
        self.assertEqual(self.authority.renewalIdentity(cert), self.phoneId)

    def test_renewWithinGrace(self):
        """
        On that link, C{renew} gets a certificate for the device's id
        (whatever the CSR names) over the new key, valid from now for the
        configured lifetime; the store makes it current and remembers it;
        the link then closes, and the new certificate registers.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.expireBy(oldCert, timedelta(days=3).total_seconds())
        link = self.fixture.connectDevice(oldKey, oldCert)
        link.client.take()
        key = pki.newKey()
        link.client.send(self.renewFrame(key, name="laptop"))
        self.fixture.flush()
        [renewed] = link.client.take()
        payload = renewed["payload"]
        self.assertEqual((payload["status"], payload["ref"]), ("renewed", "r1"))
        cert = pki.loadCertificate(payload["certificate"].encode("ascii"))
        self.assertEqual(pki.identityOf(cert), self.phoneId)
        self.assertEqual(cert.public_key(), key.public_key())
        self.assertEqual(cert.not_valid_before_utc, self.fixture.now().replace(microsecond=0)
                         - pki.CLOCK_SKEW)
        self.assertEqual(cert.not_valid_after_utc - cert.not_valid_before_utc,
                         self.authority.certLifetime + pki.CLOCK_SKEW)
        self.assertNotIn("crl", payload)
        self.assertTrue(link.closed)
        self.assertEqual(self.hub.store.getDevice(self.phoneId).serial, cert.serial_number)
        self.assertIn((str(cert.serial_number), self.phoneId), self.certificates())
        again = self.fixture.connectDevice(key, cert)
        self.assertEqual(again.client.statuses(), ["registered"])

    def test_onlyRenew(self):
        """
        Anything but C{renew} on a renewal-only link (a ping to the hub, a
        message to another device, an enrolment) gets C{CERT_EXPIRED} and
        the link closes; nothing is routed and the store is unchanged.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, 60)
        laptop = self.device("laptop")
        code = self.hub.enrolment.newCode("tablet")
        before = self.fixture.storeState()
        attempts = [
            (ZONE, {"status": "ping"}),
            (self.fixture.deviceId("laptop"), {"status": "message", "text": "hi"}),
            ("", {"status": "enrol", "token": code.token, "csr": "x"}),
        ]
        for to, payload in attempts:
            link = self.fixture.connectDevice(key, cert)
            link.client.take()
            link.client.sendProp(to, payload, msgId="x1")
            self.fixture.flush()
            [error] = [f["payload"] for f in link.client.take()]
            self.assertEqual((error["status"], error["code"], error["ref"]),
                             ("error", "CERT_EXPIRED", "x1"))
            self.assertTrue(link.closed)
        self.fixture.coalesce()
        self.assertEqual(laptop.client.take(), [])
        self.assertEqual(self.fixture.storeState(), before)

    def test_afterGrace(self):
        """
        Once the grace period is over, C{renewalIdentity} refuses with
        C{CERT_EXPIRED} telling the user to pair the device again, and the
        hub says so over the link (no CRL, no renewal offered) and closes.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, GRACE.total_seconds() + 1)
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_EXPIRED")
        self.assertIn("pair the device again", e.message)
        link = self.fixture.connectDevice(key, cert)
        [frame] = link.client.received
        payload = frame["payload"]
        self.assertEqual((payload["status"], payload["code"]), ("error", "CERT_EXPIRED"))
        self.assertIn("pair the device again", payload["message"])
        self.assertNotIn("crl", payload)
        self.assertTrue(link.closed)

    def test_graceBoundary(self):
        """
        The grace period counts from the certificate's notAfter: a second
        before its end renewal is offered, a second after it is not.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, GRACE.total_seconds() - 1)
        self.assertEqual(self.authority.renewalIdentity(cert), self.phoneId)
        self.clock.advance(2)
        self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)

    def test_foreignExpired(self):
        """
        An expired certificate for the same id from another CA is refused
        with C{CERT_UNTRUSTED}, not offered renewal.
        """
        key, cert = self.fixture.foreignDevice("phone")
        self.expireBy(cert, 60)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.codes(), ["CERT_UNTRUSTED"])
        self.assertNotIn("renewRequired", link.client.statuses())
        self.assertTrue(link.closed)


class RevokedNeverRenewsTests(_RenewalTestCase):
    """
    However it asks, a revoked device gets no new certificate.
    """

    def test_renewalIdentityRevoked(self):
        """
        A revoked certificate that then expired is refused by
        C{renewalIdentity} with C{CERT_REVOKED}; over the link the hub
        answers C{CERT_REVOKED} with the CRL and offers no renewal.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.hub.revoke(self.phoneId)
        self.expireBy(cert, 60)
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_REVOKED")
        link = self.fixture.connectDevice(key, cert)
        [frame] = link.client.received
        self.assertEqual(frame["payload"]["code"], "CERT_REVOKED")
        crl = pki.loadCRL(frame["payload"]["crl"].encode("ascii"))
        self.assertTrue(pki.crlListsSerial(crl, self.fixture.zone.caCert, cert.serial_number))
        self.assertTrue(link.closed)

    def test_supersededCertificateOfRevokedDevice(self):
        """
        A device's older certificate that had expired before the device was
        revoked is not on the CRL, but it belongs to a revoked device: it
        is refused with C{CERT_REVOKED}, never offered renewal.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        self.authority.renew(self.phoneId, pki.makeCSR(pki.newKey(), "phone"))
        self.expireBy(oldCert, 3600)
        self.hub.revoke(self.phoneId)
        self.assertFalse(pki.isRevoked(self.authority.crl, oldCert.serial_number))
        self.clock.advance(3600)
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, oldCert)
        self.assertEqual(e.code, "CERT_REVOKED")
        link = self.fixture.connectDevice(oldKey, oldCert)
        self.assertEqual(link.client.codes(), ["CERT_REVOKED"])
        self.assertNotIn("renewRequired", link.client.statuses())
        self.assertTrue(link.closed)

    def test_authorityRenewRevoked(self):
        """
        C{ZoneAuthority.renew} for a revoked device raises C{ZoneError}
        C{CERT_REVOKED} and issues nothing: no certificate recorded, the
        device's current serial unchanged.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.authority.revoke(self.phoneId)
        issued = self.certificates()
        e = self.assertRaises(ZoneError, self.authority.renew, self.phoneId,
                              pki.makeCSR(pki.newKey(), "phone"))
        self.assertEqual(e.code, "CERT_REVOKED")
        self.assertEqual(self.certificates(), issued)
        self.assertEqual(self.hub.store.getDevice(self.phoneId).serial, cert.serial_number)

    def test_routerRenewRevokedMeanwhile(self):
        """
        A device revoked while its link stays registered (another hub
        process revoked it, say) and that then asks to renew over that link
        gets C{CERT_REVOKED} for its request, and no certificate is issued.
        """
        link = self.device("phone")
        self.authority.revoke(self.phoneId)
        self.assertIsNotNone(self.hub.registry.get(self.phoneId))
        issued = self.certificates()
        link.client.send(self.renewFrame(pki.newKey()))
        self.fixture.flush()
        [frame] = link.client.take()
        payload = frame["payload"]
        self.assertEqual((payload["status"], payload["code"], payload["ref"]),
                         ("error", "CERT_REVOKED", "r1"))
        self.assertNotIn("certificate", payload)
        self.assertEqual(self.certificates(), issued)

    def test_routerRenewDirect(self):
        """
        C{Router.renew} itself raises C{CERT_REVOKED} for a revoked device's
        link and sends it nothing.
        """
        self.device("phone")
        server = self.hub.registry.get(self.phoneId)
        self.authority.revoke(self.phoneId)
        sent = []
        self.patch(server, "sendMessage", lambda to, payload, msgId=None: sent.append(payload))
        csr = pki.csrPEM(pki.makeCSR(pki.newKey(), "phone")).decode("ascii")
        envelope = Envelope("prop", self.phoneId, ZONE, "r2", {"status": "renew", "csr": csr})
        e = self.assertRaises(ZoneError, self.hub.router.renew, server, envelope)
        self.assertEqual(e.code, "CERT_REVOKED")
        self.assertEqual(sent, [])

    def test_revokedDuringRenewalOnlyLink(self):
        """
        A device offered renewal (expired within grace) and revoked before
        its C{renew} arrives gets C{CERT_REVOKED}, and the link closes.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, 60)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["renewRequired"])
        link.client.take()
        self.authority.revoke(self.phoneId)
        issued = self.certificates()
        link.client.send(self.renewFrame(pki.newKey()))
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["CERT_REVOKED"])
        self.assertTrue(link.closed)
        self.assertEqual(self.certificates(), issued)


class RegisteredRenewalTests(_RenewalTestCase):
    """
    Renewal over a registered link, before expiry.
    """

    def test_renewKeepsLink(self):
        """
        A registered device that renews gets C{renewed} and stays
        registered on the same link; its old certificate is not revoked
        (it stays valid until it expires), and the store remembers both.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        link = self.fixture.connectDevice(oldKey, oldCert)
        self.fixture.coalesce()
        link.client.take()
        server = self.hub.registry.get(self.phoneId)
        link.client.send(self.renewFrame(pki.newKey()))
        self.fixture.flush()
        [renewed] = link.client.take()
        self.assertEqual(renewed["payload"]["status"], "renewed")
        cert = pki.loadCertificate(renewed["payload"]["certificate"].encode("ascii"))
        self.assertFalse(link.closed)
        self.assertIs(self.hub.registry.get(self.phoneId), server)
        self.assertEqual(self.authority.verifyDevice(oldCert), self.phoneId)
        self.assertEqual(
            [s for s, d in self.certificates() if d == self.phoneId],
            sorted([str(oldCert.serial_number), str(cert.serial_number)]))


class RenewalLimitTests(_RenewalTestCase):
    """
    Renewal cannot be used to mint certificates (and so CRL entries)
    without end: only in the renewal window, and a device holds a bounded
    number of unexpired certificates, of which at most two unrevoked.
    """

    def test_notDue(self):
        """
        A certificate before the last third of its life cannot renew: the
        answer is C{RENEWAL_NOT_DUE}, naming when it can, and nothing is
        issued or changed.
        """
        cert, link = self.connected(advance=3600)
        before = self.fixture.storeState()
        payload = self.renewOver(link)
        self.assertEqual((payload["status"], payload["code"]), ("error", "RENEWAL_NOT_DUE"))
        opens = self.authority.renewalOpens(cert.not_valid_before_utc, cert.not_valid_after_utc)
        self.assertIn(f"{opens:%Y-%m-%d %H:%M}", payload["message"])
        self.assertEqual(self.fixture.storeState(), before)
        self.assertEqual(len(self.certificates()), 1)
        self.assertFalse(link.closed)

    def test_windowBoundary(self):
        """
        The window opens when two thirds of the certificate's life have
        passed, less the allowed clock skew, which is never later than
        the device's own renewal time.
        """
        key, cert = self.fixture.enrolDevice("phone")
        opens = self.authority.renewalOpens(cert.not_valid_before_utc, cert.not_valid_after_utc)
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        self.assertEqual(opens, cert.not_valid_before_utc + life * 2 / 3 - pki.CLOCK_SKEW)
        csr = pki.makeCSR(pki.newKey(), "phone")
        self.clock.advance(opens.timestamp() - self.clock.seconds() - 1)
        e = self.assertRaises(ZoneError, self.authority.renew, self.phoneId, csr, cert)
        self.assertEqual(e.code, "RENEWAL_NOT_DUE")
        self.clock.advance(1)
        self.authority.renew(self.phoneId, csr, cert)

    def test_floodBounded(self):
        """
        Renewing over and over on one link, with the same CSR, issues one
        certificate: once renewed, the device's newest certificate governs
        the window, and every further request is C{RENEWAL_NOT_DUE}.
        Nothing is revoked, and the CRL is unchanged.
        """
        cert, link = self.connected()
        crl = self.authority.crl
        key = pki.newKey()
        answers = [self.renewOver(link, f"r{i}", key) for i in range(12)]
        self.assertEqual([a["status"] for a in answers], ["renewed"] + ["error"] * 11)
        self.assertEqual({a.get("code") for a in answers[1:]}, {"RENEWAL_NOT_DUE"})
        self.assertEqual(len(self.certificates()), 2)
        self.assertIs(self.authority.crl, crl)
        renewed = pki.loadCertificate(answers[0]["certificate"].encode("ascii"))
        self.assertEqual(self.hub.store.getDevice(self.phoneId).serial, renewed.serial_number)

    def test_oldCertificateWaitsForNewest(self):
        """
        A device that lost the answer to its renewal connects again with
        its old certificate, which still works; it cannot renew with it
        before the new certificate is due, and renews within the grace
        period once the old one has expired.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        self.authority.renew(self.phoneId, pki.makeCSR(pki.newKey(), "phone"), cert)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        self.fixture.coalesce()
        link.client.take()
        self.assertEqual(self.renewOver(link)["code"], "RENEWAL_NOT_DUE")
        self.expireBy(cert, 60)
        grace = self.fixture.connectDevice(key, cert)
        self.assertEqual(grace.client.statuses(), ["renewRequired"])
        grace.client.take()
        self.assertEqual(self.renewOver(grace, "g1")["status"], "renewed")

    def test_graceRenewalBounded(self):
        """
        An expired certificate within the grace period may renew once per
        link, but a device holds at most L{MAX_LIVE_CERTIFICATES}
        unexpired certificates: further requests are C{RATE_LIMITED},
        naming when it can renew again.  A new certificate supersedes all
        but the one that was current, so at most two are valid at once
        and the CRL gains one entry.
        """
        _, _, answers = self.graceRenewals(MAX_LIVE_CERTIFICATES + 3)
        serials = [pki.loadCertificate(a["certificate"].encode("ascii")).serial_number
                   for a in answers if a["status"] == "renewed"]
        self.assertEqual(len(serials), MAX_LIVE_CERTIFICATES)
        self.assertEqual({a.get("code") for a in answers[len(serials):]}, {"RATE_LIMITED"})
        self.assertIn("can renew again after", answers[-1]["message"])
        self.assertEqual([pki.isRevoked(self.authority.crl, s) for s in serials],
                         [True, False, False])
        self.assertEqual(len(list(self.authority.crl)), 1)

    def test_supersededPushed(self):
        """
        A renewal that revokes a superseded certificate sends every
        connected device the new CRL; the superseded certificate is then
        refused C{CERT_REVOKED}, the newest registers.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.expireBy(cert, 60)
        laptop = self.device("laptop")
        keys, certs = [], []
        for i in range(MAX_LIVE_CERTIFICATES):
            link = self.fixture.connectDevice(key, cert)
            link.client.take()
            keys.append(pki.newKey())
            certs.append(pki.loadCertificate(
                self.renewOver(link, f"g{i}", keys[-1])["certificate"].encode("ascii")))
        [push] = [f for f in laptop.client.take() if f["payload"]["status"] == "crlUpdate"]
        crl = pki.loadCRL(push["payload"]["crl"].encode("ascii"))
        self.assertTrue(pki.crlListsSerial(crl, self.fixture.zone.caCert, certs[0].serial_number))
        self.assertEqual(self.fixture.connectDevice(keys[0], certs[0]).client.codes(),
                         ["CERT_REVOKED"])
        self.assertEqual(self.fixture.connectDevice(keys[-1], certs[-1]).client.statuses(),
                         ["registered"])


class CRLPruningTests(_RenewalTestCase):
    """
    A revoked serial leaves the CRL once its certificate has expired.
    """

    def test_expiredSerialsDropped(self):
        """
        The next CRL signed after a revoked certificate's C{notAfter} no
        longer lists it; one still valid stays listed.  The store still
        knows it was revoked: the expired certificate is never offered
        renewal.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        newCert, _ = self.authority.renew(self.phoneId, pki.makeCSR(pki.newKey(), "phone"), cert)
        self.authority.revoke(self.phoneId)
        crl = self.authority.crl
        self.assertTrue(pki.isRevoked(crl, cert.serial_number))
        self.assertTrue(pki.isRevoked(crl, newCert.serial_number))
        self.expireBy(cert, 60)
        crl = self.authority.publishCRL()
        self.assertFalse(pki.isRevoked(crl, cert.serial_number))
        self.assertTrue(pki.isRevoked(crl, newCert.serial_number))
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_REVOKED")

    def test_supersededExpiredNeverRenews(self):
        """
        A superseded certificate (revoked at a renewal, its device still
        enrolled) that has expired and left the CRL is refused
        C{CERT_REVOKED}, not offered renewal.
        """
        _, _, answers = self.graceRenewals(MAX_LIVE_CERTIFICATES)
        first = pki.loadCertificate(answers[0]["certificate"].encode("ascii"))
        self.assertTrue(pki.isRevoked(self.authority.crl, first.serial_number))
        self.expireBy(first, 60)
        self.authority.publishCRL()
        self.assertFalse(pki.isRevoked(self.authority.crl, first.serial_number))
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, first)
        self.assertEqual(e.code, "CERT_REVOKED")
