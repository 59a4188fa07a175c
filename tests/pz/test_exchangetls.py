"""
Tests for L{pz.tls}'s part of the peer-to-peer certificate exchange: the
peer server lets a device of an unknown zone through its handshake only
while an exchange ticket is outstanding, and only a well-formed device
certificate of the zone CA it presents; the dialling device accepts only
the certificate the code pins.
"""

from OpenSSL import SSL
from twisted.internet.ssl import CertificateOptions
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.pki import CertificateError
from pz.testing import tlsLoopback
from tests.pz.test_friendpeertls import FRIEND, _friendZone, _now
from tests.pz.test_tls import NOW, ZONE, _Zone, _zones, namedZone

STRANGER = "carol@far.example"


def _strangerZone() -> _Zone:
    return namedZone(STRANGER)


class ExchangeServerTLSTests(SynchronousTestCase):
    """
    L{tls.peerServerOptions} with C{exchangeOpen}, and
    L{tls.verifyExchangeDevice}.
    """

    def setUp(self):
        self.zone, self.forger = _zones()
        self.friend = _friendZone()
        self.stranger = _strangerZone()
        self.serverKey, self.serverCert = self.zone.device("tablet")
        self.open = True

    def serverOptions(self, exchangeOpen="default"):
        if exchangeOpen == "default":
            exchangeOpen = lambda: self.open  # noqa: E731
        return tls.peerServerOptions(self.zone.caCert, self.serverKey, self.serverCert, None,
                                     now=_now, friendCAs=[self.friend.caCert],
                                     exchangeOpen=exchangeOpen)

    def dial(self, options, zone, key, cert):
        """
        Dial C{options} as the exchanging device does: C{cert} with its
        zone's CA in the chain, trusting only the server's certificate.
        """
        client = tls.exchangeClientOptions(zone.caCert, key, cert,
                                           pki.certificateDigest(self.serverCert))
        return tlsLoopback(options, client)

    def assertRefused(self, server, client):
        self.assertFalse(server.handshook)
        self.assertIsNotNone(client.lost)
        client.lost.trap(SSL.Error)

    def test_refusedWithoutTicket(self):
        """
        With no ticket outstanding (or no exchange at all) a device of an
        unknown zone is refused in the handshake, as before.
        """
        key, cert = self.stranger.device("phone")
        self.open = False
        options = self.serverOptions()
        self.assertRefused(*self.dial(options, self.stranger, key, cert))
        self.assertRefused(*self.dial(self.serverOptions(None), self.stranger, key, cert))

    def test_acceptedWithTicket(self):
        """
        While a ticket is outstanding the unknown zone's device completes
        the handshake, its identity its device id; the same options refuse
        it again once the ticket is gone.
        """
        key, cert = self.stranger.device("phone")
        options = self.serverOptions()
        server, client = self.dial(options, self.stranger, key, cert)
        self.assertTrue(server.handshook)
        self.assertTrue(client.handshook)
        self.assertEqual(pki.identityOf(server.peer), f"{STRANGER}/phone")
        self.open = False
        self.assertRefused(*self.dial(options, self.stranger, key, cert))

    def test_ownAndFriendUnchanged(self):
        """
        With a ticket outstanding this zone's devices and a friend's still
        come in under their own rules.
        """
        options = self.serverOptions()
        key, cert = self.zone.device("laptop")
        server, _ = self.dial(options, self.zone, key, cert)
        self.assertEqual(pki.identityOf(server.peer), f"{ZONE}/laptop")
        key, cert = self.friend.device("phone")
        server, _ = self.dial(options, self.friend, key, cert)
        self.assertEqual(pki.identityOf(server.peer), f"{FRIEND}/phone")

    def test_forgedOwnZoneRefused(self):
        """
        A CA of another key naming this very zone cannot pass its devices
        off as this zone's by the exchange: refused C{CERT_INVALID}.
        """
        key, cert = self.forger.device("laptop")
        options = self.serverOptions()
        self.assertRefused(*self.dial(options, self.forger, key, cert))
        self.assertEqual([e.code for e in options.verifier.refusals], ["CERT_INVALID"])

    def test_hubOrWrongZoneRefused(self):
        """
        The unknown zone's hub certificate is no PZP, and a device
        certificate naming a zone other than its CA's is refused; so is a
        chain without the CA.
        """
        options = self.serverOptions()
        self.assertRefused(*self.dial(options, self.stranger, self.stranger.hubKey,
                                      self.stranger.hubCert))
        key = pki.newKey()
        liar = pki.issueDeviceCertificate(self.stranger.caKey, self.stranger.caCert,
                                          pki.makeCSR(key, "x"), f"{FRIEND}/x", 77, NOW)
        self.assertRefused(*self.dial(options, self.stranger, key, liar))
        self.assertEqual([e.code for e in options.verifier.refusals],
                         ["CERT_INVALID", "CERT_INVALID"])
        key, cert = self.stranger.device("bare")
        bare = CertificateOptions(privateKey=tls._pkey(key), certificate=tls._x509(cert),
                                  **tls.tlsSettings())
        self.assertRefused(*tlsLoopback(self.serverOptions(), bare))

    def test_verifyExchangeDevice(self):
        """
        L{tls.verifyExchangeDevice} names the device; refuses a CA that is
        none, a known zone, another CA's certificate.
        """
        key, cert = self.stranger.device("phone")
        self.assertEqual(tls.verifyExchangeDevice(cert, self.stranger.caCert, NOW, {ZONE}),
                         f"{STRANGER}/phone")
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyExchangeDevice, cert,
                                           self.stranger.caCert, NOW, {STRANGER}).code,
                         "CERT_INVALID")
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyExchangeDevice, cert,
                                           cert, NOW, set()).code, "CERT_UNTRUSTED")
        self.assertEqual(self.assertRaises(CertificateError, tls.verifyExchangeDevice, cert,
                                           self.friend.caCert, NOW, set()).code,
                         "CERT_UNTRUSTED")


class ExchangeClientTLSTests(SynchronousTestCase):
    """
    L{tls.exchangeClientOptions}: only the pinned certificate is accepted.
    """

    def test_pinned(self):
        """
        The device whose certificate the code pins is accepted, whatever
        CA issued it; another device, even of the same zone, is not.
        """
        zone, _ = _zones()
        stranger = _strangerZone()
        serverKey, serverCert = zone.device("tablet")
        server = tls.peerServerOptions(zone.caCert, serverKey, serverCert, None, now=_now,
                                       exchangeOpen=lambda: True)
        key, cert = stranger.device("phone")
        good = tls.exchangeClientOptions(stranger.caCert, key, cert,
                                         pki.certificateDigest(serverCert))
        s, c = tlsLoopback(server, good)
        self.assertTrue(c.handshook)
        self.assertEqual(pki.identityOf(c.peer), f"{ZONE}/tablet")
        _, other = zone.device("other")
        bad = tls.exchangeClientOptions(stranger.caCert, key, cert, pki.certificateDigest(other))
        s, c = tlsLoopback(server, bad)
        self.assertFalse(c.handshook)
        self.assertEqual([e.code for e in bad.verifier.refusals], ["CERT_UNTRUSTED"])
