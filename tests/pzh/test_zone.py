"""
Tests for L{pzh.zone}: the hub's zone on disk.
"""

import json
import os
import stat
from datetime import datetime, timezone

from cryptography import x509
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import ZoneError
from pzh.zone import ZONE_FILE, loadOrCreateZone, loadZone, validUser


def _names(cert) -> set:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(san.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class LoadOrCreateZoneTests(SynchronousTestCase):
    """
    L{loadOrCreateZone} makes the zone on first start and reuses it later.
    """

    def setUp(self):
        self.dataDir = self.mktemp()
        self.zone = loadOrCreateZone(self.dataDir, "anna", "hub.example", "127.0.0.1", 8000, 9000)
        self.now = datetime.now(timezone.utc)

    def test_created(self):
        """
        The first start writes the CA and hub keys (0600) and certificates
        and the zone description, in a 0700 directory.
        """
        for name in ("ca.key", "ca.pem", "hub.key", "hub.pem", ZONE_FILE):
            self.assertTrue(os.path.exists(os.path.join(self.dataDir, name)), name)
        self.assertEqual(_mode(self.dataDir), 0o700)
        self.assertEqual(_mode(os.path.join(self.dataDir, "ca.key")), 0o600)
        self.assertEqual(_mode(os.path.join(self.dataDir, "hub.key")), 0o600)
        with open(os.path.join(self.dataDir, ZONE_FILE)) as f:
            self.assertEqual(json.load(f), {"zone": "anna@hub.example", "user": "anna",
                                            "host": "hub.example", "port": 8000,
                                            "web_port": 9000})

    def test_directoryTightened(self):
        """
        A data directory left 0755 (by an older version, or made by hand)
        is 0700 again after the next start.
        """
        os.chmod(self.dataDir, 0o755)
        loadOrCreateZone(self.dataDir, "anna", "hub.example", "127.0.0.1", 8000, 9000)
        self.assertEqual(_mode(self.dataDir), 0o700)

    def test_identity(self):
        """
        The zone id is C{user@host}, the CA names it, and the hub
        certificate is a hub certificate of that zone for its host names.
        """
        zone = self.zone
        self.assertEqual(zone.zoneId, "anna@hub.example")
        self.assertEqual(pki.identityOf(zone.caCert), "anna@hub.example")
        self.assertEqual(_names(zone.hubCert), {"hub.example", "127.0.0.1", "localhost"})
        for host in ("hub.example", "127.0.0.1", "localhost"):
            tls.verifyHubCertificate(zone.hubCert, zone.caCert, host, self.now,
                                     zoneId=zone.zoneId)
        self.assertEqual(zone.caFingerprint, pki.caFingerprint(zone.caCert))
        self.assertEqual(zone.caPEM, pki.certificatePEM(zone.caCert))
        self.assertEqual(zone.path("x"), os.path.join(self.dataDir, "x"))

    def test_reloaded(self):
        """
        A second start reuses the same CA and hub key and keeps the zone id,
        given no user or the zone's own, whatever host it is given; the
        ports follow the latest start.
        """
        again = loadOrCreateZone(self.dataDir, None, "other.example", "127.0.0.1", 8001, 0)
        self.assertEqual(again.zoneId, "anna@hub.example")
        again = loadOrCreateZone(self.dataDir, "anna", "other.example", "127.0.0.1", 8001, 0)
        self.assertEqual(again.zoneId, "anna@hub.example")
        self.assertEqual(again.caCert, self.zone.caCert)
        self.assertEqual(again.hubKey.public_key(), self.zone.hubKey.public_key())
        self.assertEqual(again.hubCert, self.zone.hubCert)
        self.assertEqual((again.port, again.webPort), (8001, 0))
        self.assertEqual((loadZone(self.dataDir).port, loadZone(self.dataDir).webPort),
                         (8001, 0))

    def test_renameRefused(self):
        """
        Another user name for an existing zone is refused with
        C{BAD_REQUEST}, naming the zone's, and nothing is written.
        """
        with open(os.path.join(self.dataDir, ZONE_FILE), "rb") as f:
            before = f.read()
        error = self.assertRaises(ZoneError, loadOrCreateZone, self.dataDir, "bob",
                                  "hub.example", "127.0.0.1", 8001, 0)
        self.assertEqual(error.code, "BAD_REQUEST")
        self.assertIn("is anna@hub.example; a zone cannot be renamed: start with --name anna",
                      error.message)
        with open(os.path.join(self.dataDir, ZONE_FILE), "rb") as f:
            self.assertEqual(f.read(), before)

    def test_newInterface(self):
        """
        Reached under a new address, the hub gets a new certificate for the
        same key naming the new address as well as the old ones.
        """
        again = loadOrCreateZone(self.dataDir, "anna", "hub.example", "127.0.0.2", 8000, 9000)
        self.assertNotEqual(again.hubCert.serial_number, self.zone.hubCert.serial_number)
        self.assertEqual(again.hubCert.public_key(), self.zone.hubKey.public_key())
        self.assertEqual(_names(again.hubCert),
                         {"hub.example", "127.0.0.1", "127.0.0.2", "localhost"})
        self.assertEqual(loadZone(self.dataDir).hubCert, again.hubCert)
        tls.verifyHubCertificate(again.hubCert, again.caCert, "127.0.0.2", self.now)

    def test_wildcardInterface(self):
        """
        A wildcard listening address is not a name to put in a certificate.
        """
        zone = loadOrCreateZone(self.mktemp(), "anna", "127.0.0.1", "0.0.0.0", 8000, 9000)
        self.assertEqual(_names(zone.hubCert), {"127.0.0.1", "localhost"})
        zone = loadOrCreateZone(self.mktemp(), "anna", "127.0.0.1", "::", 8000, 9000)
        self.assertEqual(_names(zone.hubCert), {"127.0.0.1", "localhost"})


class LoadZoneTests(SynchronousTestCase):
    """
    L{loadZone} reads an existing zone, as C{pzctl} does.
    """

    def test_missing(self):
        """
        An empty or missing directory is C{NOT_RUNNING}.
        """
        e = self.assertRaises(ZoneError, loadZone, self.mktemp())
        self.assertEqual(e.code, "NOT_RUNNING")

    def test_loads(self):
        """
        What L{loadOrCreateZone} made loads back the same.
        """
        dataDir = self.mktemp()
        made = loadOrCreateZone(dataDir, "anna", "127.0.0.1", "127.0.0.1", 8000, 9000)
        loaded = loadZone(dataDir)
        self.assertEqual((loaded.zoneId, loaded.user, loaded.host, loaded.port, loaded.webPort),
                         ("anna@127.0.0.1", "anna", "127.0.0.1", 8000, 9000))
        self.assertEqual(loaded.caCert, made.caCert)
        self.assertEqual(loaded.caKey.public_key(), made.caKey.public_key())
        self.assertEqual(loaded.hubCert, made.hubCert)


class HelperTests(SynchronousTestCase):
    """
    L{validUser}.
    """

    def test_validUser(self):
        """
        User names are 1-64 letters, digits, '.', '_' or '-'.
        """
        for name in ("anna", "a", "a.b_c-d", "x" * 64):
            self.assertTrue(validUser(name), name)
        for name in ("", "x" * 65, "a@b", "a/b", "a b", "a:b"):
            self.assertFalse(validUser(name), name)
