"""
Tests for L{pzp.friendtrust}: which friend zones a device trusts, read
from its trusted PZH certificates.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.sync.zoneitems import friendCRLPath, trustedHubPath
from pzp.friendtrust import friendCAs, friendCRLs
from tests.pz.test_friendpeertls import FRIEND, _friendZone
from tests.pz.test_tls import NOW, ZONE, _zones


class FriendCAsTests(SynchronousTestCase):
    """
    L{friendCAs} lists the trusted PZH certificates other than the zone's
    own, each under the name its zone gives it.
    """

    def setUp(self):
        self.root = self.mktemp()
        self.zone, self.foreign = _zones()
        self.friend = _friendZone()

    def put(self, path: str, data: bytes) -> None:
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    def test_friendsOnly(self):
        """
        The zone's own CA is no friend; a friend's CA is; a file under a
        name that is not its zone's, or that is no certificate, is skipped.
        """
        self.put(trustedHubPath(ZONE), pki.certificatePEM(self.zone.caCert))
        self.put(trustedHubPath(FRIEND), pki.certificatePEM(self.friend.caCert))
        self.put("certificates/trusted-pzh/other@x.pem", pki.certificatePEM(self.friend.caCert))
        self.put("certificates/trusted-pzh/junk@x.pem", b"not a certificate")
        self.assertEqual(friendCAs(self.root, ZONE), {FRIEND: self.friend.caCert})

    def test_noFolder(self):
        """
        Without the folder there are no friends.
        """
        self.assertEqual(friendCAs(self.root, ZONE), {})

    def test_crls(self):
        """
        L{friendCRLs} gives each friend's shared CRL that its CA signed; a
        forged one, junk, or one of a zone that is no friend is skipped.
        """
        self.put(trustedHubPath(FRIEND), pki.certificatePEM(self.friend.caCert))
        self.assertEqual(friendCRLs(self.root, friendCAs(self.root, ZONE)), [])
        crl = pki.buildCRL(self.friend.caKey, self.friend.caCert, [], 4, NOW)
        self.put(friendCRLPath(FRIEND), pki.crlPEM(crl))
        self.put(friendCRLPath("other@x"), pki.crlPEM(crl))
        self.assertEqual([pki.crlNumber(c) for c in friendCRLs(self.root, friendCAs(self.root, ZONE))], [4])
        for junk in (b"junk", pki.crlPEM(pki.buildCRL(self.zone.caKey, self.zone.caCert, [], 5,
                                                      NOW))):
            self.put(friendCRLPath(FRIEND), junk)
            self.assertEqual(friendCRLs(self.root, friendCAs(self.root, ZONE)), [])
