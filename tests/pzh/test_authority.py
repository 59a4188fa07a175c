"""
Tests for L{pzh.authority}: issuing device certificates and keeping the
zone's CRL.
"""

import os
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import ZoneError
from pz.testing import RENEWAL_DUE, MemoryHub, nowClock
from pzh.authority import ZoneAuthority
from pzh.store import SQLiteHubStore
from pzh.zone import loadOrCreateZone


ZONE = "anna@127.0.0.1"


class ZoneAuthorityTests(SynchronousTestCase):
    """
    L{ZoneAuthority} signs device certificates and publishes the CRL.
    """

    def setUp(self):
        self.clock = nowClock()
        self.zone = loadOrCreateZone(self.mktemp(), "anna", "127.0.0.1", "127.0.0.1", 8000, 9000)
        self.store = SQLiteHubStore(self.zone.path("hub.db"))
        self.addCleanup(self.store.close)
        self.authority = self.makeAuthority()

    def makeAuthority(self, store=None) -> ZoneAuthority:
        return ZoneAuthority(self.zone, store or self.store, self.clock, timedelta(days=30))

    def csr(self, key=None):
        return pki.makeCSR(key or pki.newKey(), "whatever")

    def test_now(self):
        """
        The authority's time is its clock's.
        """
        self.assertLess(abs(self.authority.now().timestamp() - self.clock.seconds()), 1e-5)

    def test_firstCRL(self):
        """
        A new zone publishes an empty CRL numbered 1, signed by the zone CA,
        written to C{crl.pem}, with a C{nextUpdate} a week on.
        """
        crl = self.authority.crl
        pki.verifyCRL(crl, self.zone.caCert)
        self.assertEqual(pki.crlNumber(crl), 1)
        self.assertEqual(len(list(crl)), 0)
        self.assertEqual(self.store.getSetting("crl_number"), "1")
        self.assertEqual(pki.readCRL(self.zone.path("crl.pem")), crl)
        self.assertEqual(self.authority.crlPEM, pki.crlPEM(crl))
        self.assertEqual(crl.next_update_utc - crl.last_update_utc, timedelta(days=7))

    def test_restartKeepsCRL(self):
        """
        A restarted authority serves the CRL it published, not a new one.
        """
        again = self.makeAuthority()
        self.assertEqual(again.crl, self.authority.crl)
        self.assertEqual(pki.crlNumber(again.crl), 1)

    def test_publishLists(self):
        """
        Publishing lists every revoked serial with its date under the next
        number.
        """
        self.store.addRevocation(f"{ZONE}/phone", 2**100, 1000.0)
        self.store.addRevocation(f"{ZONE}/old", 7, 500.0)
        crl = self.authority.publishCRL()
        self.assertIs(self.authority.crl, crl)
        self.assertEqual(pki.crlNumber(crl), 2)
        self.assertEqual(
            sorted((r.serial_number, r.revocation_date_utc.timestamp()) for r in crl),
            [(7, 500.0), (2**100, 1000.0)],
        )
        self.assertEqual(pki.readCRL(self.zone.path("crl.pem")), crl)

    def test_lostFileNumberGrows(self):
        """
        If C{crl.pem} is lost, the next CRL still gets a higher number.
        """
        self.authority.publishCRL()
        os.remove(self.zone.path("crl.pem"))
        self.assertEqual(pki.crlNumber(self.makeAuthority().crl), 3)

    def test_olderStoreNumberGrows(self):
        """
        If the store is older than C{crl.pem} (restored from a backup, or
        lost), the next CRL is numbered above the one devices already hold.
        """
        for _ in range(4):
            self.authority.publishCRL()
        self.assertEqual(pki.crlNumber(self.authority.crl), 5)
        fresh = SQLiteHubStore(":memory:")
        self.addCleanup(fresh.close)
        self.assertGreater(pki.crlNumber(self.makeAuthority(fresh).crl), 5)
        self.store.putSetting("crl_number", "2")
        self.assertGreater(pki.crlNumber(self.makeAuthority().crl), 5)

    def test_issueDevice(self):
        """
        A device certificate names the device id the hub chose, whatever
        the CSR said, for the CSR's key, valid for the configured lifetime,
        and verifies as that device.
        """
        key = pki.newKey()
        cert = self.authority.issueDevice(self.csr(key), f"{ZONE}/phone")
        self.assertEqual(cert.public_key(), key.public_key())
        self.assertEqual(self.authority.verifyDevice(cert), f"{ZONE}/phone")
        self.assertEqual(pki.identityOf(cert), f"{ZONE}/phone")
        lifetime = cert.not_valid_after_utc - self.authority.now()
        self.assertLess(abs(lifetime - timedelta(days=30)), timedelta(seconds=1))

    def test_serials(self):
        """
        Serials are positive, fit the 20 octets X.509 allows, and differ.
        """
        serials = {self.authority.issueDevice(self.csr(), f"{ZONE}/d").serial_number
                   for _ in range(20)}
        self.assertEqual(len(serials), 20)
        for serial in serials:
            self.assertTrue(0 < serial < 2**159)

    def test_badCSR(self):
        """
        A CSR for a key that is not P-256 is refused.
        """
        rsaKey = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([]))
               .sign(rsaKey, pki._HASH()))
        e = self.assertRaises(pki.CertificateError, self.authority.issueDevice, csr, "x/y")
        self.assertEqual(e.code, "CERT_INVALID")

    def test_verifyRevoked(self):
        """
        Once its serial is in a published CRL, a certificate is
        C{CERT_REVOKED}; before publishing, it is still accepted.
        """
        cert = self.authority.issueDevice(self.csr(), f"{ZONE}/phone")
        self.store.addRevocation(f"{ZONE}/phone", cert.serial_number, self.clock.seconds())
        self.assertEqual(self.authority.verifyDevice(cert), f"{ZONE}/phone")
        self.authority.publishCRL()
        e = self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_REVOKED")

    def test_verifyExpired(self):
        """
        A certificate past its lifetime by the authority's clock is
        C{CERT_EXPIRED}.
        """
        cert = self.authority.issueDevice(self.csr(), f"{ZONE}/phone")
        self.clock.advance(timedelta(days=31).total_seconds())
        e = self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_EXPIRED")

    def test_verifyForeign(self):
        """
        A certificate from another CA is C{CERT_UNTRUSTED}.
        """
        caKey, caCert = pki.createZoneCA(ZONE, self.authority.now())
        cert = pki.issueDeviceCertificate(caKey, caCert, self.csr(), f"{ZONE}/phone", 5,
                                          self.authority.now())
        e = self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_UNTRUSTED")


class LifecycleTests(SynchronousTestCase):
    """
    Revoking and renewing device certificates.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.authority = self.fixture.hub.authority
        self.store = self.fixture.store
        self.clock = self.fixture.clock

    def csr(self, key=None):
        return pki.makeCSR(key or pki.newKey(), "whatever")

    def test_issueRecorded(self):
        """
        Every certificate issued is remembered for its device, so revoking
        the device revokes it too.
        """
        key, cert = self.fixture.enrolDevice("phone")
        extra = self.authority.issueDevice(self.csr(), f"{ZONE}/phone")
        serials = self.authority.revoke(f"{ZONE}/phone")
        self.assertEqual(sorted(serials), sorted([cert.serial_number, extra.serial_number]))

    def test_revoke(self):
        """
        Revoking publishes a new CRL listing the device's serial before it
        returns; the certificate is then refused.
        """
        key, cert = self.fixture.enrolDevice("phone")
        before = pki.crlNumber(self.authority.crl)
        self.assertEqual(self.authority.revoke(f"{ZONE}/phone"), [cert.serial_number])
        self.assertEqual(pki.crlNumber(self.authority.crl), before + 1)
        onDisk = pki.readCRL(self.fixture.zone.path("crl.pem"))
        self.assertTrue(pki.crlListsSerial(onDisk, self.fixture.zone.caCert,
                                           cert.serial_number))
        e = self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_REVOKED")

    def test_revokeTwice(self):
        """
        Revoking a revoked device changes nothing and signs no new CRL.
        """
        self.fixture.enrolDevice("phone")
        self.authority.revoke(f"{ZONE}/phone")
        crl = self.authority.crl
        self.assertEqual(self.authority.revoke(f"{ZONE}/phone"), [])
        self.assertIs(self.authority.crl, crl)

    def test_revokeUnknown(self):
        """
        Revoking a device never enrolled is C{UNKNOWN_DESTINATION}.
        """
        e = self.assertRaises(ZoneError, self.authority.revoke, f"{ZONE}/ghost")
        self.assertEqual(e.code, "UNKNOWN_DESTINATION")

    def test_crlDue(self):
        """
        The CRL is due for re-signing once half its life is gone.
        """
        self.assertFalse(self.authority.crlDue())
        self.clock.advance(timedelta(days=3, hours=12).total_seconds() - 60)
        self.assertFalse(self.authority.crlDue())
        self.clock.advance(120)
        self.assertTrue(self.authority.crlDue())
        self.authority.publishCRL()
        self.assertFalse(self.authority.crlDue())

    def test_renewalIdentity(self):
        """
        An expired certificate may renew within the grace period, not after.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.clock.advance(timedelta(days=91).total_seconds())
        self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(self.authority.renewalIdentity(cert), f"{ZONE}/phone")
        self.clock.advance(timedelta(days=30).total_seconds())
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_EXPIRED")

    def test_renewalIdentityRevoked(self):
        """
        A revoked certificate may not renew, expired or not.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.authority.revoke(f"{ZONE}/phone")
        self.clock.advance(timedelta(days=91).total_seconds())
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_REVOKED")

    def test_renewalIdentityForeign(self):
        """
        Another CA's expired certificate may not renew.
        """
        key, cert = self.fixture.foreignDevice("phone")
        self.clock.advance(timedelta(days=91).total_seconds())
        e = self.assertRaises(pki.CertificateError, self.authority.renewalIdentity, cert)
        self.assertEqual(e.code, "CERT_UNTRUSTED")

    def test_renew(self):
        """
        Renewing issues a new certificate for the CSR's key and makes it the
        device's current one.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        newKey = pki.newKey()
        renewed, superseded = self.authority.renew(f"{ZONE}/phone", self.csr(newKey))
        self.assertEqual(superseded, [])
        self.assertNotEqual(renewed.serial_number, cert.serial_number)
        self.assertEqual(renewed.public_key(), newKey.public_key())
        self.assertEqual(self.authority.verifyDevice(renewed), f"{ZONE}/phone")
        device = self.store.getDevice(f"{ZONE}/phone")
        self.assertEqual(device.serial, renewed.serial_number)
        self.assertEqual(device.notAfter, renewed.not_valid_after_utc.timestamp())

    def test_renewRefused(self):
        """
        A revoked or unknown device may not renew (C{CERT_REVOKED}), and a
        bad request is C{CERT_INVALID}.
        """
        self.fixture.enrolDevice("phone")
        self.clock.advance(RENEWAL_DUE)
        e = self.assertRaises(ZoneError, self.authority.renew, f"{ZONE}/ghost", self.csr())
        self.assertEqual(e.code, "CERT_REVOKED")
        rsaKey = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        bad = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(
            rsaKey, pki._HASH())
        e = self.assertRaises(ZoneError, self.authority.renew, f"{ZONE}/phone", bad)
        self.assertEqual(e.code, "CERT_INVALID")
        self.authority.revoke(f"{ZONE}/phone")
        e = self.assertRaises(ZoneError, self.authority.renew, f"{ZONE}/phone", self.csr())
        self.assertEqual(e.code, "CERT_REVOKED")
