"""
Tests for L{pz.tls}'s peer server options with friend zones: a device
accepts a friend zone's device on its peer port, and nothing else of that
zone.
"""

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.pki import CertificateError
from pz.testing import tlsLoopback
from tests.pz.test_tls import NOW, ZONE, _Zone, _zones, namedZone

FRIEND = "bert@other.example"


def _friendZone() -> _Zone:
    return namedZone(FRIEND)


def _now():
    return NOW


class FriendPeerTLSTests(SynchronousTestCase):
    """
    L{tls.peerServerOptions} with C{friendCAs}, and L{tls.verifyFriendDevice}.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()
        self.friend = _friendZone()
        self.serverKey, self.serverCert = self.zone.device("tablet")

    def serverOptions(self, friendCAs):
        return tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert, None,
                                     now=_now, friendCAs=friendCAs)

    def dial(self, options, key, cert):
        """
        Dial C{options} presenting C{cert}, trusting this zone's CA.
        """
        return tlsLoopback(options, tls.peerClientOptions(self.zone.caCert, key, cert, None,
                                                          now=_now))

    def assertRefused(self, server, client):
        self.assertFalse(server.handshook)
        self.assertIsNotNone(client.lost)
        client.lost.trap(SSL.Error)

    def test_friendDeviceAccepted(self):
        """
        A device of a friend zone completes the handshake, its identity the
        friend's device id; this zone's own devices still do.
        """
        key, cert = self.friend.device("phone")
        server, client = self.dial(self.serverOptions([self.friend.caCert]), key, cert)
        self.assertTrue(server.handshook)
        self.assertEqual(pki.identityOf(server.peer), f"{FRIEND}/phone")
        key, cert = self.zone.device("laptop")
        server, client = self.dial(self.serverOptions([self.friend.caCert]), key, cert)
        self.assertEqual(pki.identityOf(server.peer), f"{ZONE}/laptop")

    def test_revokedFriendDevice(self):
        """
        With the CRL the friend zone shared, its revoked device is refused
        C{CERT_REVOKED} and its others still come in; a CRL some other CA
        signed revokes nothing of the friend's.
        """
        key, cert = self.friend.device("phone")
        otherKey, other = self.friend.device("tv")
        crl = pki.buildCRL(self.friend.caKey, self.friend.caCert, [(cert.serial_number, NOW)],
                           2, NOW)
        options = tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert, None,
                                        now=_now, friendCAs=[self.friend.caCert],
                                        friendCRLs=[crl])
        self.assertRefused(*self.dial(options, key, cert))
        self.assertEqual([e.code for e in options.verifier.refusals], ["CERT_REVOKED"])
        server, _ = self.dial(options, otherKey, other)
        self.assertTrue(server.handshook)
        forged = pki.buildCRL(self.zone.caKey, self.zone.caCert, [(cert.serial_number, NOW)],
                              3, NOW)
        options = tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert, None,
                                        now=_now, friendCAs=[self.friend.caCert],
                                        friendCRLs=[forged])
        server, _ = self.dial(options, key, cert)
        self.assertTrue(server.handshook)

    def test_notAFriend(self):
        """
        Without the friend's CA among C{friendCAs} its device is refused.
        """
        key, cert = self.friend.device("phone")
        options = self.serverOptions([])
        self.assertRefused(*self.dial(options, key, cert))

    def test_friendHubRefused(self):
        """
        The friend's hub certificate is no PZP: refused C{CERT_INVALID}.
        """
        options = self.serverOptions([self.friend.caCert])
        self.assertRefused(*self.dial(options, self.friend.hubKey, self.friend.hubCert))
        self.assertEqual([e.code for e in options.verifier.refusals], ["CERT_INVALID"])

    def test_verifyFriendDevice(self):
        """
        L{tls.verifyFriendDevice} names the friend's device, and refuses
        another CA's certificate, the friend's hub, and a certificate of
        the friend CA naming a device of another zone.
        """
        key, cert = self.friend.device("phone")
        self.assertEqual(tls.verifyFriendDevice(cert, self.friend.caCert, NOW), f"{FRIEND}/phone")
        _, ours = self.zone.device("x")
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyFriendDevice, ours,
                                           self.friend.caCert, NOW).code, "CERT_UNTRUSTED")
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyFriendDevice,
                                           self.friend.hubCert, self.friend.caCert, NOW).code,
                         "CERT_INVALID")
        liar = pki.issueDeviceCertificate(self.friend.caKey, self.friend.caCert,
                                          pki.makeCSR(key, "x"), f"{ZONE}/laptop", 99, NOW)
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyFriendDevice, liar,
                                           self.friend.caCert, NOW).code, "CERT_INVALID")
        options = self.serverOptions([self.friend.caCert])
        self.assertRefused(*self.dial(options, key, liar))
