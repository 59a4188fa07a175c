"""
Tests for L{pzp.zonedir}: the device's zone directory on disk.
"""

import errno
import os
import stat
from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pzp.zonedir import MARKER, Credentials, ZoneDirectory

ZONE = "alice@127.0.0.1"
NOW = datetime.now(timezone.utc)


def makeCredentials(name="phone", hubHost="127.0.0.1", hubPort=8000, serial=2):
    """
    Credentials as enrolment would give them, made directly with the CA.
    """
    caKey, caCert = pki.createZoneCA(ZONE, NOW)
    key = pki.newKey()
    cert = pki.issueDeviceCertificate(caKey, caCert, pki.makeCSR(key, name),
                                      f"{ZONE}/{name}", serial, NOW)
    crl = pki.buildCRL(caKey, caCert, [], 1, NOW)
    return Credentials(zoneId=ZONE, deviceId=f"{ZONE}/{name}", hubHost=hubHost,
                       hubPort=hubPort, key=key, cert=cert, caCert=caCert, crl=crl)


def keyFiles(top: str) -> list:
    """
    Every private key file under C{top}.
    """
    return [os.path.join(d, f) for d, _, files in os.walk(top) for f in files
            if f == "key.pem"]


class ZoneDirectoryTests(SynchronousTestCase):
    """
    Tests for L{ZoneDirectory}.
    """

    def setUp(self):
        self.dataDir = self.mktemp()
        self.zoneDir = ZoneDirectory(self.dataDir)
        self.creds = makeCredentials()

    def assertSameCredentials(self, loaded, stored):
        self.assertEqual(
            (loaded.zoneId, loaded.deviceId, loaded.hubHost, loaded.hubPort),
            (stored.zoneId, stored.deviceId, stored.hubHost, stored.hubPort),
        )
        self.assertEqual(pki.keyPEM(loaded.key), pki.keyPEM(stored.key))
        self.assertEqual(loaded.cert, stored.cert)
        self.assertEqual(loaded.caCert, stored.caCert)
        self.assertEqual(pki.crlPEM(loaded.crl), pki.crlPEM(stored.crl))

    def test_notEnrolled(self):
        """
        A data directory without a zone is not enrolled and has no marker.
        """
        self.assertFalse(self.zoneDir.enrolled())
        self.assertIsNone(self.zoneDir.marker())

    def test_roundTrip(self):
        """
        What C{store} writes, C{load} reads back unchanged.
        """
        self.zoneDir.store(self.creds)
        self.assertTrue(self.zoneDir.enrolled())
        self.assertSameCredentials(self.zoneDir.load(), self.creds)

    def test_roundTripIPv6(self):
        """
        A hub reached by an IPv6 address keeps its address and port.
        """
        creds = makeCredentials(hubHost="::1", hubPort=8443)
        self.zoneDir.store(creds)
        loaded = self.zoneDir.load()
        self.assertEqual((loaded.hubHost, loaded.hubPort), ("::1", 8443))

    def test_marker(self):
        """
        The marker names the zone, the device and the hub address.
        """
        self.zoneDir.store(self.creds)
        marker = self.zoneDir.marker()
        self.assertEqual(
            (marker["zone"], marker["device"], marker["hub"]),
            (ZONE, f"{ZONE}/phone", "127.0.0.1:8000"),
        )

    def test_keyMode(self):
        """
        The private key is readable by its owner only (0600), and the zone
        directory is not open to others.
        """
        self.zoneDir.store(self.creds)
        keys = keyFiles(self.zoneDir.path)
        self.assertTrue(keys)
        for path in keys:
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(self.zoneDir.path).st_mode) & 0o077, 0)

    def test_noStagingLeft(self):
        """
        After a store only the zone directory remains, no staging copy;
        the leftovers of an earlier crash are cleared away.
        """
        os.makedirs(os.path.join(self.dataDir, "zone.new"))
        with open(os.path.join(self.dataDir, "zone.new", "junk"), "w") as f:
            f.write("half-written")
        self.zoneDir.store(self.creds)
        self.assertEqual(os.listdir(self.dataDir), ["zone"])
        self.assertFalse(os.path.exists(self.zoneDir.file("junk")))

    def failWriting(self, name):
        """
        Make writing a PEM file called C{name} fail as a full disk would.
        """
        original = pki.writePEM

        def writePEM(path, data, *args, **kwargs):
            if os.path.basename(path) == name:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(path, data, *args, **kwargs)

        self.patch(pki, "writePEM", writePEM)

    def test_atomic(self):
        """
        A store that fails midway (after the key was written) leaves no
        zone directory: the device is still in no zone.
        """
        self.failWriting("ca.pem")
        self.assertRaises(OSError, self.zoneDir.store, self.creds)
        self.assertFalse(os.path.exists(self.zoneDir.path))
        self.assertFalse(self.zoneDir.enrolled())
        self.assertIsNone(self.zoneDir.marker())

    def test_atomicMarkerLast(self):
        """
        Even a failure writing the very last file (the marker) leaves no
        zone directory.
        """
        self.failWriting(MARKER)
        self.assertRaises(OSError, self.zoneDir.store, self.creds)
        self.assertFalse(os.path.exists(self.zoneDir.path))

    def test_markerRequired(self):
        """
        A zone directory without its marker is not a zone: not enrolled,
        no marker, and it is never wiped.
        """
        self.zoneDir.store(self.creds)
        os.unlink(self.zoneDir.file(MARKER))
        self.assertFalse(self.zoneDir.enrolled())
        self.assertIsNone(self.zoneDir.marker())
        self.assertFalse(self.zoneDir.wipe())
        self.assertTrue(os.path.exists(self.zoneDir.file("ca.pem")))

    def test_unreadableMarker(self):
        """
        A marker that is not JSON reads as no marker.
        """
        self.zoneDir.store(self.creds)
        with open(self.zoneDir.file(MARKER), "w") as f:
            f.write("{torn")
        self.assertIsNone(self.zoneDir.marker())

    def test_file(self):
        """
        C{file} names paths inside the zone directory.
        """
        self.assertEqual(self.zoneDir.file("inbox.jsonl"),
                         os.path.join(os.path.abspath(self.dataDir), "zone", "inbox.jsonl"))

    def test_wipe(self):
        """
        C{wipe} erases a marked zone directory and only that: the rest of
        the data directory stays.
        """
        self.zoneDir.store(self.creds)
        other = os.path.join(self.dataDir, "keep.txt")
        with open(other, "w") as f:
            f.write("mine")
        self.assertTrue(self.zoneDir.wipe())
        self.assertFalse(os.path.exists(self.zoneDir.path))
        self.assertFalse(self.zoneDir.enrolled())
        self.assertEqual(os.listdir(self.dataDir), ["keep.txt"])

    def test_wipeRefusesLink(self):
        """
        A zone directory that is a symbolic link to somewhere else (a path
        the proxy did not create) is not wiped.
        """
        elsewhere = ZoneDirectory(self.mktemp())
        elsewhere.store(self.creds)
        os.makedirs(self.dataDir)
        os.symlink(elsewhere.path, self.zoneDir.path)
        self.assertFalse(self.zoneDir.wipe())
        self.assertTrue(elsewhere.enrolled())

    def test_replaceIdentity(self):
        """
        A renewed key and certificate replace the old pair, which is then
        gone from disk; the rest is untouched.
        """
        self.zoneDir.store(self.creds)
        renewed = makeCredentials(serial=3)
        self.zoneDir.replaceIdentity(renewed.key, renewed.cert)
        loaded = self.zoneDir.load()
        self.assertEqual(pki.keyPEM(loaded.key), pki.keyPEM(renewed.key))
        self.assertEqual(loaded.cert, renewed.cert)
        self.assertEqual(loaded.caCert, self.creds.caCert)
        self.assertEqual(len(keyFiles(self.zoneDir.path)), 1)

    def test_replaceCRL(self):
        """
        C{replaceCRL} stores the new list.
        """
        self.zoneDir.store(self.creds)
        caKey, caCert = pki.createZoneCA(ZONE, NOW)
        newer = pki.buildCRL(caKey, caCert, [(5, NOW)], 2, NOW)
        self.zoneDir.replaceCRL(newer)
        self.assertEqual(pki.crlPEM(self.zoneDir.load().crl), pki.crlPEM(newer))

    def test_replaceCRLHeld(self):
        """
        A CRL the items already hold (synchronisation wrote it) is not
        written again.
        """
        self.zoneDir.store(self.creds)
        path = self.zoneDir.file("items", "crl.pem")
        before = os.stat(path)
        self.zoneDir.replaceCRL(self.creds.crl)
        after = os.stat(path)
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))
