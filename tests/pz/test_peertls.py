"""
Tests for L{pz.tls}'s peer link options: two devices of a zone, both ends
run in memory with L{pz.testing.tlsLoopback}.
"""

from datetime import timedelta

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls, udf
from pz.pki import CertificateError
from pz.testing import tlsLoopback
from tests.pz.test_tls import NOW, ZONE, _zones


def _fingerprint(cert) -> str:
    return udf.key_fingerprint(cert.public_key())


def _now():
    return NOW


class PeerTLSTests(SynchronousTestCase):
    """
    Tests for L{tls.peerServerOptions} and L{tls.peerClientOptions}.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()
        self.serverKey, self.serverCert = self.zone.device("tablet")
        self.clientKey, self.clientCert = self.zone.device("laptop")

    def serverOptions(self, crl=None):
        return tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert, crl,
                                     now=_now)

    def clientOptions(self, key=None, cert=None, expected="the server's", caCert=None, crl=None):
        if expected == "the server's":
            expected = _fingerprint(self.serverCert)
        return tls.peerClientOptions(
            caCert or self.zone.caCert, key or self.clientKey, cert or self.clientCert,
            expected, crl=crl, now=_now)

    def assertRefused(self, server, client):
        """
        The handshake failed and the link is closed at both ends.  (In TLS
        1.3 the client's side of the handshake completes before the server
        judges the client's certificate: a server's refusal closes a link
        the client already thought up, before any data.)
        """
        self.assertFalse(server.handshook)
        self.assertIsNotNone(client.lost)
        self.assertIsNotNone(server.lost)
        client.lost.trap(SSL.Error)

    def test_zoneDeviceAccepted(self):
        """
        Two devices of the zone complete the handshake and each sees the
        other's device certificate.
        """
        server, client = tlsLoopback(self.serverOptions(), self.clientOptions())
        self.assertTrue(server.handshook)
        self.assertTrue(client.handshook)
        self.assertEqual(server.peer, self.clientCert)
        self.assertEqual(client.peer, self.serverCert)
        self.assertEqual(pki.identityOf(server.peer), f"{ZONE}/laptop")

    def test_foreignDeviceRefusedByServer(self):
        """
        A client device of another CA (with the very same zone name) is
        refused by the peer server during the handshake.
        """
        key, cert = self.foreign.device("laptop")
        options = self.serverOptions()
        server, client = tlsLoopback(options, self.clientOptions(key, cert))
        self.assertRefused(server, client)

    def test_foreignDeviceRefusedByClient(self):
        """
        A peer server holding another CA's certificate is refused by the
        dialling device, even with no pinned fingerprint.
        """
        key, cert = self.foreign.device("tablet")
        options = tls.peerServerOptions(self.foreign.caCert, key, cert, None, now=_now)
        server, client = tlsLoopback(options, self.clientOptions(expected=None))
        self.assertRefused(server, client)

    def test_hubCertificateRefusedByServer(self):
        """
        The hub's certificate, though issued by the zone CA, is not a
        device's: the peer server refuses it.
        """
        options = self.serverOptions()
        server, client = tlsLoopback(
            options, self.clientOptions(self.zone.hubKey, self.zone.hubCert))
        self.assertRefused(server, client)
        self.assertEqual([e.code for e in options.verifier.refusals], ["CERT_INVALID"])

    def test_hubCertificateRefusedByClient(self):
        """
        A peer port that presents the hub's certificate is refused by the
        dialling device.
        """
        options = tls.peerServerOptions(self.zone.caCert, self.zone.hubKey, self.zone.hubCert,
                                        None, now=_now)
        clientOptions = self.clientOptions(expected=None)
        server, client = tlsLoopback(options, clientOptions)
        self.assertRefused(server, client)
        self.assertEqual([e.code for e in clientOptions.verifier.refusals], ["CERT_INVALID"])

    def test_revokedDeviceRefused(self):
        """
        A device the CRL lists is refused by the peer server; the CRL is
        read at each handshake, so a new one applies to the next link.
        """
        crls = [None]
        options = tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert,
                                        lambda: crls[-1], now=_now)
        server, client = tlsLoopback(options, self.clientOptions())
        self.assertTrue(server.handshook)
        crls.append(pki.buildCRL(self.zone.caKey, self.zone.caCert,
                                 [(self.clientCert.serial_number, NOW - timedelta(minutes=1))],
                                 1, NOW))
        server, client = tlsLoopback(options, self.clientOptions())
        self.assertRefused(server, client)
        self.assertEqual([e.code for e in options.verifier.refusals], ["CERT_REVOKED"])

    def test_revokedServerRefused(self):
        """
        A dialling device given the CRL refuses a revoked peer server.
        """
        crl = pki.buildCRL(self.zone.caKey, self.zone.caCert,
                           [(self.serverCert.serial_number, NOW - timedelta(minutes=1))], 1, NOW)
        clientOptions = self.clientOptions(crl=crl)
        server, client = tlsLoopback(self.serverOptions(), clientOptions)
        self.assertRefused(server, client)
        self.assertEqual([e.code for e in clientOptions.verifier.refusals], ["CERT_REVOKED"])

    def test_wrongFingerprintRefused(self):
        """
        A zone device whose key is not the one C{pzpUpdate} gave is refused
        by the dialling device.
        """
        clientOptions = self.clientOptions(expected=_fingerprint(self.clientCert))
        server, client = tlsLoopback(self.serverOptions(), clientOptions)
        self.assertRefused(server, client)
        self.assertEqual([e.code for e in clientOptions.verifier.refusals], ["CERT_UNTRUSTED"])

    def test_noClientCertificateRefused(self):
        """
        A client with no certificate cannot complete the handshake.
        """
        server, client = tlsLoopback(self.serverOptions(), tls.enrolmentClientOptions("x.example"))
        self.assertRefused(server, client)


class VerifyZoneDeviceTests(SynchronousTestCase):
    """
    Tests for L{tls.verifyZoneDevice} alone.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()

    def test_device(self):
        """
        A zone device's certificate proves its device id, with or without
        its fingerprint pinned.
        """
        key, cert = self.zone.device("watch")
        self.assertEqual(tls.verifyZoneDevice(cert, self.zone.caCert, None, NOW),
                         f"{ZONE}/watch")
        self.assertEqual(
            tls.verifyZoneDevice(cert, self.zone.caCert, None, NOW, _fingerprint(cert)),
            f"{ZONE}/watch")

    def test_refusals(self):
        """
        The hub, another CA's device and an unexpected key are refused with
        their codes.
        """
        key, cert = self.zone.device("watch")
        _, foreignCert = self.foreign.device("watch")
        cases = [
            (self.zone.hubCert, None, "CERT_INVALID"),
            (foreignCert, None, "CERT_UNTRUSTED"),
            (cert, _fingerprint(self.zone.hubCert), "CERT_UNTRUSTED"),
            (None, None, "CERT_REQUIRED"),
        ]
        for presented, expected, code in cases:
            with self.assertRaises(CertificateError) as e:
                tls.verifyZoneDevice(presented, self.zone.caCert, None, NOW, expected)
            self.assertEqual(e.exception.code, code)
