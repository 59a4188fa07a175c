"""
Tests for L{pz.pki}.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL.crypto import X509
from service_identity.cryptography import extract_patterns
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.pki import CertificateError
from pz.udf import key_fingerprint

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
ZONE = "anna@hub.example"
DEVICE = ZONE + "/phone"

_cache: dict = {}


def _zone(name: str = "ours"):
    """
    A zone CA key and certificate for L{ZONE}, made once per C{name}.  The
    C{"foreign"} zone has a CA with exactly the same name as ours but
    another key.
    """
    if name not in _cache:
        _cache[name] = pki.createZoneCA(ZONE, NOW)
    return _cache[name]


def _device(caName: str = "ours", serial: int = 1000, deviceId: str = DEVICE, **kw):
    """
    Issue a device certificate from zone C{caName}.
    """
    caKey, caCert = _zone(caName)
    key = pki.newKey()
    cert = pki.issueDeviceCertificate(
        caKey, caCert, pki.makeCSR(key, deviceId), deviceId, serial, NOW, **kw
    )
    return key, cert


def _flipLastByte(der: bytes) -> bytes:
    """
    Change the last byte of a DER structure, which is inside its signature.
    """
    return der[:-1] + bytes([der[-1] ^ 0x01])


def _leaf(subjectKey, names=None, ca=False, keyUsage=True, extra=()):
    """
    Sign an unusual certificate with our zone CA, to exercise checks that
    our own issuing functions never trip.
    """
    caKey, caCert = _zone()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]))
        .issuer_name(caCert.subject)
        .public_key(subjectKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if keyUsage:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=keyUsage is True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=keyUsage is not True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if names is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=False
        )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(caKey, hashes.SHA256())


class CertificateErrorTests(SynchronousTestCase):
    """
    Tests for L{CertificateError}.
    """

    def test_attributes(self):
        """
        The code and message are kept as attributes and both appear in the
        string form.
        """
        e = CertificateError("CERT_REVOKED", "The certificate has been revoked.")
        self.assertEqual(e.code, "CERT_REVOKED")
        self.assertEqual(e.message, "The certificate has been revoked.")
        self.assertIn("CERT_REVOKED", str(e))
        self.assertIsInstance(e, Exception)


class KeyFileTests(SynchronousTestCase):
    """
    Tests for L{pki.newKey}, L{pki.writePrivateKey} and
    L{pki.readPrivateKey}.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.path = os.path.join(self.directory, "device.key")

    def test_newKeyIsP256(self):
        """
        L{pki.newKey} makes an ECDSA P-256 key.
        """
        key = pki.newKey()
        self.assertIsInstance(key, ec.EllipticCurvePrivateKey)
        self.assertIsInstance(key.curve, ec.SECP256R1)

    def test_roundTrip(self):
        """
        A key written as unencrypted PEM PKCS#8 reads back as the same key.
        """
        key = pki.newKey()
        pki.writePrivateKey(self.path, key)
        with open(self.path, "rb") as f:
            self.assertTrue(f.read().startswith(b"-----BEGIN PRIVATE KEY-----"))
        self.assertEqual(
            key_fingerprint(pki.readPrivateKey(self.path)), key_fingerprint(key)
        )

    def test_mode0600(self):
        """
        The key file is readable and writable by its owner only, even under
        a permissive umask and when it replaces a world-readable file.
        """
        with open(self.path, "wb") as f:
            f.write(b"old")
        os.chmod(self.path, 0o644)
        old = os.umask(0)
        try:
            pki.writePrivateKey(self.path, pki.newKey())
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_noTemporaryLeft(self):
        """
        Writing leaves only the target file in the directory.
        """
        pki.writePrivateKey(self.path, pki.newKey())
        pki.writePrivateKey(self.path, pki.newKey())
        self.assertEqual(os.listdir(self.directory), ["device.key"])

    def test_failedWriteKeepsOldFile(self):
        """
        If the write fails, the old file is left as it was and no temporary
        file remains.
        """
        pki.writePEM(self.path, b"old")
        self.assertRaises(TypeError, pki.writePEM, self.path, object())
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"old")
        self.assertEqual(os.listdir(self.directory), ["device.key"])


class PEMFileTests(SynchronousTestCase):
    """
    Tests for L{pki.writePEM} and the PEM helpers for certificates and CRLs.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.mkdir(self.directory)

    def test_certificateRoundTrip(self):
        """
        A certificate written with L{pki.writePEM} reads back equal, with the
        requested mode.
        """
        _, caCert = _zone()
        path = os.path.join(self.directory, "ca.pem")
        pki.writePEM(path, pki.certificatePEM(caCert))
        self.assertEqual(pki.readCertificate(path), caCert)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)
        pki.writePEM(path, pki.certificatePEM(caCert), mode=0o640)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)

    def test_crlRoundTrip(self):
        """
        A CRL written with L{pki.writePEM} reads back equal.
        """
        caKey, caCert = _zone()
        crl = pki.buildCRL(caKey, caCert, [(7, NOW)], 3, NOW)
        path = os.path.join(self.directory, "zone.crl")
        pki.writePEM(path, pki.crlPEM(crl))
        self.assertEqual(pki.readCRL(path), crl)

    def test_garbageCertificate(self):
        """
        Bytes that are not a PEM certificate are refused with
        C{CERT_INVALID}.
        """
        with self.assertRaises(CertificateError) as e:
            pki.loadCertificate(b"not a certificate")
        self.assertEqual(e.exception.code, "CERT_INVALID")

    def test_garbageCRL(self):
        """
        Bytes that are not a PEM CRL are refused with C{CRL_INVALID}.
        """
        with self.assertRaises(CertificateError) as e:
            pki.loadCRL(b"not a CRL")
        self.assertEqual(e.exception.code, "CRL_INVALID")


class ZoneCATests(SynchronousTestCase):
    """
    Tests for L{pki.createZoneCA} and L{pki.caFingerprint}.
    """

    def test_certificate(self):
        """
        The zone CA is self-signed, names the zone (CN, O, URI SAN), is a CA
        that can sign no intermediate CA, may sign certificates and CRLs,
        and has a subject key identifier and a random 159-bit-or-less serial.
        """
        key, cert = _zone()
        cert.verify_directly_issued_by(cert)
        self.assertEqual(cert.subject, cert.issuer)
        self.assertEqual(
            cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, ZONE
        )
        self.assertEqual(
            cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value,
            "Personal zone",
        )
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(constraints.critical)
        self.assertTrue(constraints.value.ca)
        self.assertEqual(constraints.value.path_length, 0)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        self.assertTrue(usage.critical)
        self.assertTrue(usage.value.key_cert_sign)
        self.assertTrue(usage.value.crl_sign)
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        self.assertEqual(pki.identityOf(cert), ZONE)
        self.assertLess(cert.serial_number, 2**159)
        self.assertGreater(cert.serial_number, 0)
        self.assertEqual(key_fingerprint(key), key_fingerprint(cert.public_key()))
        self.assertIsInstance(key.curve, ec.SECP256R1)

    def test_validity(self):
        """
        The CA is valid from just before C{now} for its lifetime (ten years
        by default).
        """
        _, cert = _zone()
        self.assertEqual(cert.not_valid_before_utc, NOW - pki.CLOCK_SKEW)
        self.assertEqual(cert.not_valid_after_utc, NOW + timedelta(days=3650))
        _, short = pki.createZoneCA(ZONE, NOW, timedelta(days=1))
        self.assertEqual(short.not_valid_after_utc, NOW + timedelta(days=1))

    def test_randomSerial(self):
        """
        Two CAs have different serial numbers.
        """
        self.assertNotEqual(_zone()[1].serial_number, _zone("foreign")[1].serial_number)

    def test_fingerprint(self):
        """
        The CA fingerprint is the UDF of its public key, for either
        certificate type.
        """
        key, cert = _zone()
        self.assertEqual(pki.caFingerprint(cert), key_fingerprint(key.public_key()))
        self.assertEqual(
            pki.caFingerprint(X509.from_cryptography(cert)), pki.caFingerprint(cert)
        )
        self.assertNotEqual(
            pki.caFingerprint(cert), pki.caFingerprint(_zone("foreign")[1])
        )


class CSRTests(SynchronousTestCase):
    """
    Tests for L{pki.makeCSR}.
    """

    def test_names(self):
        """
        The CSR names the identity as CN and as a C{pz:} URI SAN, and its
        signature proves possession of the key.
        """
        key = pki.newKey()
        csr = pki.makeCSR(key, DEVICE)
        self.assertTrue(csr.is_signature_valid)
        self.assertEqual(
            csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, DEVICE
        )
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(
            san.value.get_values_for_type(x509.UniformResourceIdentifier),
            ["pz:" + DEVICE],
        )


class HubCertificateTests(SynchronousTestCase):
    """
    Tests for L{pki.issueHubCertificate}.
    """

    def setUp(self):
        self.caKey, self.caCert = _zone()
        self.key = pki.newKey()
        self.cert = pki.issueHubCertificate(
            self.caKey,
            self.caCert,
            ZONE,
            ["hub.example", "192.0.2.7", "2001:db8::7"],
            self.key.public_key(),
            NOW,
        )

    def test_names(self):
        """
        Host names become DNS SANs, addresses become IP SANs, and the zone id
        is the URI SAN.
        """
        san = self.cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["hub.example"])
        self.assertEqual(
            san.get_values_for_type(x509.IPAddress),
            [
                ipaddress.ip_address("192.0.2.7"),
                ipaddress.ip_address("2001:db8::7"),
            ],
        )
        self.assertEqual(
            san.get_values_for_type(x509.UniformResourceIdentifier), ["pz:" + ZONE]
        )

    def test_usage(self):
        """
        The hub certificate is a TLS server and client certificate, not a
        CA, signed by the zone CA and naming its key.
        """
        self.cert.verify_directly_issued_by(self.caCert)
        self.assertFalse(
            self.cert.extensions.get_extension_for_class(
                x509.BasicConstraints
            ).value.ca
        )
        self.assertTrue(
            self.cert.extensions.get_extension_for_class(
                x509.KeyUsage
            ).value.digital_signature
        )
        self.assertEqual(
            list(
                self.cert.extensions.get_extension_for_class(
                    x509.ExtendedKeyUsage
                ).value
            ),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        aki = self.cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value
        ski = self.caCert.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value
        self.assertEqual(aki.key_identifier, ski.digest)
        self.assertEqual(
            key_fingerprint(self.cert.public_key()), key_fingerprint(self.key)
        )

    def test_lifetime(self):
        """
        The hub certificate lasts 825 days by default.
        """
        self.assertEqual(self.cert.not_valid_after_utc, NOW + timedelta(days=825))
        self.assertEqual(
            pki.verifyPeerCertificate(self.cert, self.caCert, None, NOW), ZONE
        )

    def test_randomSerial(self):
        """
        Each hub certificate gets its own random serial number.
        """
        other = pki.issueHubCertificate(
            self.caKey, self.caCert, ZONE, ["hub.example"], self.key.public_key(), NOW
        )
        self.assertNotEqual(other.serial_number, self.cert.serial_number)

    def test_needsHostName(self):
        """
        A hub certificate without any host name is refused.
        """
        self.assertRaises(
            ValueError,
            pki.issueHubCertificate,
            self.caKey,
            self.caCert,
            ZONE,
            [],
            self.key.public_key(),
            NOW,
        )


class DeviceCertificateTests(SynchronousTestCase):
    """
    Tests for L{pki.issueDeviceCertificate}.
    """

    def setUp(self):
        self.caKey, self.caCert = _zone()

    def test_hubDecidesIdentity(self):
        """
        The certificate names the id the hub chose, whatever the CSR asked
        for, and carries the hub's serial number.
        """
        key = pki.newKey()
        csr = pki.makeCSR(key, "anna@hub.example/admin")
        cert = pki.issueDeviceCertificate(
            self.caKey, self.caCert, csr, DEVICE, 4242, NOW
        )
        self.assertEqual(pki.identityOf(cert), DEVICE)
        self.assertEqual(
            cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, DEVICE
        )
        self.assertEqual(cert.serial_number, 4242)
        self.assertEqual(key_fingerprint(cert.public_key()), key_fingerprint(key))
        cert.verify_directly_issued_by(self.caCert)

    def test_usage(self):
        """
        A device certificate is for TLS clients and servers, is not a CA,
        may make signatures, and names its issuer's key.
        """
        _, cert = _device()
        self.assertFalse(
            cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        )
        self.assertTrue(
            cert.extensions.get_extension_for_class(
                x509.KeyUsage
            ).value.digital_signature
        )
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        self.assertIn(ExtendedKeyUsageOID.CLIENT_AUTH, eku)
        self.assertIn(ExtendedKeyUsageOID.SERVER_AUTH, eku)
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)

    def test_validity(self):
        """
        A device certificate starts five minutes before C{now} (for clock
        skew) and lasts 90 days by default, or the lifetime asked for.
        """
        _, cert = _device()
        self.assertEqual(cert.not_valid_before_utc, NOW - timedelta(minutes=5))
        self.assertEqual(cert.not_valid_after_utc, NOW + timedelta(days=90))
        _, short = _device(lifetime=timedelta(days=1))
        self.assertEqual(short.not_valid_after_utc, NOW + timedelta(days=1))

    def test_neverOutlivesCA(self):
        """
        A device certificate never lasts past its CA's expiry.
        """
        caKey, caCert = pki.createZoneCA(ZONE, NOW, timedelta(days=10))
        key = pki.newKey()
        cert = pki.issueDeviceCertificate(
            caKey, caCert, pki.makeCSR(key, DEVICE), DEVICE, 1, NOW
        )
        self.assertEqual(cert.not_valid_after_utc, caCert.not_valid_after_utc)

    def test_badSignatureRefused(self):
        """
        A CSR whose signature does not verify (the requester does not hold
        the key) is refused with C{CERT_INVALID}.
        """
        csr = pki.makeCSR(pki.newKey(), DEVICE)
        tampered = x509.load_der_x509_csr(
            _flipLastByte(csr.public_bytes(serialization.Encoding.DER))
        )
        self.assertFalse(tampered.is_signature_valid)
        with self.assertRaises(CertificateError) as e:
            pki.issueDeviceCertificate(
                self.caKey, self.caCert, tampered, DEVICE, 1, NOW
            )
        self.assertEqual(e.exception.code, "CERT_INVALID")

    def test_otherKeyTypesRefused(self):
        """
        A CSR for a key other than ECDSA P-256 (P-384, Ed25519) is refused
        with C{CERT_INVALID}.
        """
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
        for key, digest in [
            (ec.generate_private_key(ec.SECP384R1()), hashes.SHA256()),
            (ed25519.Ed25519PrivateKey.generate(), None),
        ]:
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(name)
                .sign(key, digest)
            )
            self.assertTrue(csr.is_signature_valid)
            with self.assertRaises(CertificateError) as e:
                pki.issueDeviceCertificate(
                    self.caKey, self.caCert, csr, DEVICE, 1, NOW
                )
            self.assertEqual(e.exception.code, "CERT_INVALID")


class IdentityTests(SynchronousTestCase):
    """
    Tests for L{pki.identityOf} and L{pki.uriForIdentity}.
    """

    def test_plain(self):
        """
        An ordinary device id is written into the URI SAN as it is.
        """
        self.assertEqual(pki.uriForIdentity(DEVICE), "pz:" + DEVICE)

    def test_unusualCharacters(self):
        """
        Ids with spaces, colons, asterisks or non-ASCII text survive the
        trip through a certificate, and the certificate's URI SAN remains
        one that service_identity can parse (so TLS hostname checks of
        certificates we issue never break on it).
        """
        for identity in [
            "anna@[::1]:8443/Anna's phone",
            "anna@hub.example/*",
            "zoë@hub/télé",
            "anna@hub/100%",
        ]:
            _, cert = _device(deviceId=identity)
            self.assertEqual(pki.identityOf(cert), identity)
            extract_patterns(cert)

    def test_none(self):
        """
        A certificate with no C{pz:} URI SAN has no identity.
        """
        key = pki.newKey()
        self.assertIsNone(pki.identityOf(_leaf(key)))
        self.assertIsNone(
            pki.identityOf(
                _leaf(
                    key, names=[x509.UniformResourceIdentifier("https://hub.example/")]
                )
            )
        )

    def test_firstPZURI(self):
        """
        The first C{pz:} URI SAN counts; other URIs are skipped.
        """
        cert = _leaf(
            pki.newKey(),
            names=[
                x509.UniformResourceIdentifier("https://hub.example/"),
                x509.UniformResourceIdentifier("pz:first@hub"),
                x509.UniformResourceIdentifier("pz:second@hub"),
            ],
        )
        self.assertEqual(pki.identityOf(cert), "first@hub")

    def test_pyOpenSSL(self):
        """
        A pyOpenSSL certificate is accepted too.
        """
        _, cert = _device()
        self.assertEqual(pki.identityOf(X509.from_cryptography(cert)), DEVICE)

    def test_emptyRefused(self):
        """
        An empty identity cannot be written into a certificate.
        """
        self.assertRaises(ValueError, pki.uriForIdentity, "")


class CRLTests(SynchronousTestCase):
    """
    Tests for L{pki.buildCRL}, L{pki.crlNumber}, L{pki.verifyCRL},
    L{pki.isRevoked} and L{pki.crlListsSerial}.
    """

    def setUp(self):
        self.caKey, self.caCert = _zone()
        self.crl = pki.buildCRL(
            self.caKey,
            self.caCert,
            [(1001, NOW - timedelta(days=1)), (1002, NOW)],
            17,
            NOW,
        )

    def test_contents(self):
        """
        The CRL carries its number, issuer, update times (next update a week
        later by default), authority key identifier and one entry per
        revoked serial with its date.
        """
        self.assertEqual(pki.crlNumber(self.crl), 17)
        self.assertEqual(self.crl.issuer, self.caCert.subject)
        self.assertEqual(self.crl.last_update_utc, NOW)
        self.assertEqual(self.crl.next_update_utc, NOW + timedelta(days=7))
        self.crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        self.assertEqual(
            {(r.serial_number, r.revocation_date_utc) for r in self.crl},
            {(1001, NOW - timedelta(days=1)), (1002, NOW)},
        )
        other = pki.buildCRL(self.caKey, self.caCert, [], 18, NOW, timedelta(hours=1))
        self.assertEqual(other.next_update_utc, NOW + timedelta(hours=1))
        self.assertEqual(pki.crlNumber(other), 18)
        self.assertEqual(len(other), 0)

    def test_verifies(self):
        """
        The zone's CRL verifies under the zone CA.
        """
        pki.verifyCRL(self.crl, self.caCert)
        pki.verifyCRL(self.crl, X509.from_cryptography(self.caCert))

    def test_isRevoked(self):
        """
        L{pki.isRevoked} tells listed serials from others.
        """
        self.assertTrue(pki.isRevoked(self.crl, 1001))
        self.assertFalse(pki.isRevoked(self.crl, 1003))

    def assertCRLInvalid(self, crl, caCert):
        """
        L{pki.verifyCRL} refuses C{crl} with C{CRL_INVALID}.
        """
        with self.assertRaises(CertificateError) as e:
            pki.verifyCRL(crl, caCert)
        self.assertEqual(e.exception.code, "CRL_INVALID")

    def test_tamperedRefused(self):
        """
        A CRL whose signature was altered is refused.
        """
        tampered = x509.load_der_x509_crl(
            _flipLastByte(self.crl.public_bytes(serialization.Encoding.DER))
        )
        self.assertCRLInvalid(tampered, self.caCert)

    def test_foreignRefused(self):
        """
        A CRL signed by another CA is refused, even when that CA has the
        same name as ours, and so is one whose issuer is not our CA.
        """
        foreignKey, foreignCert = _zone("foreign")
        foreign = pki.buildCRL(foreignKey, foreignCert, [(1001, NOW)], 99, NOW)
        self.assertCRLInvalid(foreign, self.caCert)
        otherKey, otherCert = pki.createZoneCA("bob@elsewhere", NOW)
        self.assertCRLInvalid(
            pki.buildCRL(otherKey, otherCert, [], 1, NOW), self.caCert
        )

    def test_withoutNumberRefused(self):
        """
        A CRL without a CRL number (which devices need to refuse rollbacks)
        is refused, and has no number.
        """
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.caCert.subject)
            .last_update(NOW)
            .next_update(NOW + timedelta(days=1))
            .sign(self.caKey, hashes.SHA256())
        )
        self.assertCRLInvalid(crl, self.caCert)
        with self.assertRaises(CertificateError) as e:
            pki.crlNumber(crl)
        self.assertEqual(e.exception.code, "CRL_INVALID")

    def test_checkCRLUpdate(self):
        """
        L{pki.checkCRLUpdate} takes a CRL of the zone CA whose number is
        above the held one's (equal only with C{allowSame}; anything when
        none is held) and refuses an older one as L{pki.StaleCRL} and a
        foreign one as C{CRL_INVALID}.
        """
        older = pki.buildCRL(self.caKey, self.caCert, [], 16, NOW)
        newer = pki.buildCRL(self.caKey, self.caCert, [], 18, NOW)
        self.assertEqual(pki.checkCRLUpdate(newer, self.caCert, self.crl), 18)
        self.assertEqual(pki.checkCRLUpdate(older, self.caCert, None), 16)
        self.assertEqual(pki.checkCRLUpdate(self.crl, self.caCert, self.crl, allowSame=True), 17)
        for crl, allowSame in ((self.crl, False), (older, False), (older, True)):
            with self.assertRaises(pki.StaleCRL) as e:
                pki.checkCRLUpdate(crl, self.caCert, self.crl, allowSame=allowSame)
            self.assertEqual((e.exception.code, e.exception.held), ("CRL_INVALID", 17))
        foreignKey, foreignCert = _zone("foreign")
        foreign = pki.buildCRL(foreignKey, foreignCert, [], 99, NOW)
        with self.assertRaises(CertificateError) as e:
            pki.checkCRLUpdate(foreign, self.caCert, self.crl)
        self.assertNotIsInstance(e.exception, pki.StaleCRL)

    def test_crlListsSerial(self):
        """
        L{pki.crlListsSerial} is true only for a CRL that verifies under our
        CA and lists the serial; a foreign CA's CRL listing it, a tampered
        CRL, a CRL that does not list it, or no CRL at all, are no proof.
        """
        self.assertTrue(pki.crlListsSerial(self.crl, self.caCert, 1001))
        self.assertFalse(pki.crlListsSerial(self.crl, self.caCert, 1003))
        foreignKey, foreignCert = _zone("foreign")
        foreign = pki.buildCRL(foreignKey, foreignCert, [(1001, NOW)], 99, NOW)
        self.assertFalse(pki.crlListsSerial(foreign, self.caCert, 1001))
        self.assertTrue(pki.crlListsSerial(foreign, foreignCert, 1001))
        tampered = x509.load_der_x509_crl(
            _flipLastByte(self.crl.public_bytes(serialization.Encoding.DER))
        )
        self.assertFalse(pki.crlListsSerial(tampered, self.caCert, 1001))
        self.assertFalse(pki.crlListsSerial(None, self.caCert, 1001))
        self.assertFalse(pki.crlListsSerial(b"garbage", self.caCert, 1001))


class VerifyPeerCertificateTests(SynchronousTestCase):
    """
    Tests for L{pki.verifyPeerCertificate}: one test per refusal code, and
    the order in which the checks run.
    """

    def setUp(self):
        self.caKey, self.caCert = _zone()
        self.key, self.cert = _device(serial=2001)
        self.crl = pki.buildCRL(self.caKey, self.caCert, [(1001, NOW)], 5, NOW)

    def assertCode(self, code, cert, crl=None, now=NOW, caCert=None):
        """
        L{pki.verifyPeerCertificate} refuses with C{code}.
        """
        with self.assertRaises(CertificateError) as e:
            pki.verifyPeerCertificate(cert, caCert or self.caCert, crl, now)
        self.assertEqual(e.exception.code, code)
        self.assertTrue(e.exception.message)

    def test_accepted(self):
        """
        A device certificate from our CA, in date and not revoked, proves
        its device id, given as either certificate type, with or without a
        CRL.
        """
        self.assertEqual(
            pki.verifyPeerCertificate(self.cert, self.caCert, self.crl, NOW), DEVICE
        )
        self.assertEqual(
            pki.verifyPeerCertificate(
                X509.from_cryptography(self.cert),
                X509.from_cryptography(self.caCert),
                None,
                NOW,
            ),
            DEVICE,
        )

    def test_naiveNowIsUTC(self):
        """
        A naive C{now} is taken as UTC.
        """
        naive = NOW.replace(tzinfo=None)
        self.assertEqual(
            pki.verifyPeerCertificate(self.cert, self.caCert, None, naive), DEVICE
        )

    def test_required(self):
        """
        No certificate: C{CERT_REQUIRED}.
        """
        self.assertCode("CERT_REQUIRED", None, self.crl)

    def test_untrustedForeignCA(self):
        """
        A certificate from another CA with the same name: C{CERT_UNTRUSTED}.
        """
        _, foreign = _device("foreign")
        self.assertCode("CERT_UNTRUSTED", foreign)

    def test_untrustedOtherIssuer(self):
        """
        A certificate from a differently named CA: C{CERT_UNTRUSTED}.
        """
        otherKey, otherCert = pki.createZoneCA("bob@elsewhere", NOW)
        cert = pki.issueDeviceCertificate(
            otherKey, otherCert, pki.makeCSR(self.key, DEVICE), DEVICE, 1, NOW
        )
        self.assertCode("CERT_UNTRUSTED", cert)

    def test_untrustedTampered(self):
        """
        Our certificate with its signature altered: C{CERT_UNTRUSTED}.
        """
        tampered = x509.load_der_x509_certificate(
            _flipLastByte(self.cert.public_bytes(serialization.Encoding.DER))
        )
        self.assertCode("CERT_UNTRUSTED", tampered)

    def test_notYetValid(self):
        """
        Before its validity starts (beyond the skew allowance):
        C{CERT_EXPIRED}.
        """
        self.assertCode("CERT_EXPIRED", self.cert, now=NOW - timedelta(minutes=6))
        pki.verifyPeerCertificate(
            self.cert, self.caCert, None, NOW - timedelta(minutes=4)
        )

    def test_expired(self):
        """
        After it expires: C{CERT_EXPIRED}.
        """
        self.assertCode("CERT_EXPIRED", self.cert, now=NOW + timedelta(days=91))

    def test_revoked(self):
        """
        Listed on the zone's CRL: C{CERT_REVOKED}.
        """
        crl = pki.buildCRL(self.caKey, self.caCert, [(2001, NOW)], 6, NOW)
        self.assertCode("CERT_REVOKED", self.cert, crl)

    def test_badCRL(self):
        """
        A CRL that is not our CA's: C{CRL_INVALID}, even if it does not list
        the certificate, since a forged CRL must never pass unnoticed.
        """
        foreignKey, foreignCert = _zone("foreign")
        crl = pki.buildCRL(foreignKey, foreignCert, [], 6, NOW)
        self.assertCode("CRL_INVALID", self.cert, crl)

    def test_caIsNoPeer(self):
        """
        The CA certificate itself (which is issued by the CA): C{CERT_INVALID}.
        """
        self.assertCode("CERT_INVALID", self.caCert)

    def test_noIdentity(self):
        """
        A certificate from our CA without a C{pz:} URI SAN: C{CERT_INVALID}.
        """
        self.assertCode("CERT_INVALID", _leaf(pki.newKey()))
        self.assertCode(
            "CERT_INVALID",
            _leaf(pki.newKey(), names=[x509.DNSName("phone.example")]),
        )

    def test_wrongKeyUsage(self):
        """
        A certificate from our CA whose key may not sign, or has no key usage
        at all, or is not for TLS authentication: C{CERT_INVALID}.
        """
        names = [x509.UniformResourceIdentifier("pz:" + DEVICE)]
        self.assertCode("CERT_INVALID", _leaf(pki.newKey(), names, keyUsage="agree"))
        self.assertCode("CERT_INVALID", _leaf(pki.newKey(), names, keyUsage=False))
        self.assertCode(
            "CERT_INVALID",
            _leaf(
                pki.newKey(),
                names,
                extra=[x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])],
            ),
        )
        self.assertEqual(
            pki.verifyPeerCertificate(
                _leaf(pki.newKey(), names), self.caCert, None, NOW
            ),
            DEVICE,
        )

    def test_order(self):
        """
        The first failing check names the problem: trust before dates,
        dates before revocation, revocation before usage.
        """
        _, foreign = _device("foreign")
        self.assertCode("CERT_UNTRUSTED", foreign, now=NOW + timedelta(days=1000))
        crl = pki.buildCRL(self.caKey, self.caCert, [(2001, NOW)], 6, NOW)
        self.assertCode("CERT_EXPIRED", self.cert, crl, now=NOW + timedelta(days=91))
        crl = pki.buildCRL(
            self.caKey, self.caCert, [(self.caCert.serial_number, NOW)], 7, NOW
        )
        self.assertCode("CERT_REVOKED", self.caCert, crl)
