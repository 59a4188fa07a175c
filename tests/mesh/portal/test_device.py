"""
Tests for L{pz.mesh.device}: a device's Mesh keys and account state on
disk, private to its owner.
"""

import os
import stat
from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import MasterKeys
from pz.mesh.device import MeshDevice, nextUpdate, signedDeviceProfile, makeDeviceKeys
from pz.mesh.signing import unverifiedPayload, verifyDeviceProfile
from pzh.portal.service import zoneRequestOf

from tests.mesh.portal._support import T0, makePerson


class DeviceTests(SynchronousTestCase):
    """
    L{MeshDevice} in a fresh data directory.
    """

    def setUp(self):
        self.dataDir = self.mktemp()
        self.device = MeshDevice(self.dataDir)

    def assertPrivate(self):
        """
        The mesh directory is 0700 and every file in it 0600.
        """
        self.assertEqual(stat.S_IMODE(os.stat(self.device.path).st_mode), 0o700)
        for name in os.listdir(self.device.path):
            self.assertEqual(stat.S_IMODE(os.stat(self.device.file(name)).st_mode), 0o600, name)

    def test_empty(self):
        """
        A device with nothing stored has no keys, account, profile or
        connection.
        """
        for read in (self.device.keys, self.device.signedProfile, self.device.master,
                     self.device.account, self.device.personal, self.device.connection,
                     self.device.zoneKey, self.device.description):
            self.assertIsNone(read())

    def test_create(self):
        """
        Created keys come back the same; the signed profile verifies, names
        the device, and carries a certificate request for its P-256
        authentication key.
        """
        keys = self.device.create("tablet", T0)
        loaded = self.device.keys()
        self.assertEqual(loaded, keys)
        self.assertEqual(self.device.description(), "tablet")
        profile = verifyDeviceProfile(self.device.signedProfile())
        self.assertEqual((profile.Identifier, profile.Description), (keys.identifier, "tablet"))
        self.assertIsNotNone(zoneRequestOf(profile))
        self.assertEqual(keys.authentication.curve, "P-256")
        self.assertIs(type(self.device.zoneKey()), type(keys.authentication.privateKey))
        self.assertPrivate()

    def test_accountState(self):
        """
        Master keys, account, personal profile and a connection in progress
        round-trip, all private.
        """
        alice = makePerson()
        master = MasterKeys.generate(onlineKeys=2, escrowKeys=1)
        self.device.saveMaster(master)
        self.assertEqual(self.device.master(), master)
        self.device.saveAccount("alice", "https://p/", None, alice.udf, admin=True)
        self.assertEqual(self.device.account(), {"account": "alice", "portal": "https://p/", "ca": None,
                                                 "profile": alice.udf, "admin": True})
        self.device.savePersonal(alice.personal)
        self.assertEqual(self.device.personal(), alice.personal)
        self.assertEqual(self.device.personalUpdated(), T0)
        request = alice.request(alice.admin)
        self.device.saveConnection("alice", "https://p/", "/ca.pem", alice.udf, request)
        self.assertEqual(self.device.connection()["request"], request)
        self.device.clearConnection()
        self.assertIsNone(self.device.connection())
        self.assertPrivate()

    def test_forget(self):
        """
        After a refusal a device of no account forgets its request and keys;
        a device of an account keeps its keys.
        """
        self.device.create("tablet", T0)
        alice = makePerson()
        self.device.saveConnection("alice", "https://p/", None, alice.udf, alice.request(alice.admin))
        self.device.forget()
        self.assertFalse(os.path.exists(self.device.path))
        self.device.create("tablet", T0)
        self.device.saveAccount("bob", "https://p/", None, "MX", admin=False)
        self.device.forget()
        self.assertIsNotNone(self.device.keys())

    def test_nextUpdate(self):
        """
        A new version's time is now, or just after the previous one if the
        clock is behind it.
        """
        self.assertEqual(nextUpdate(T0, None), T0)
        self.assertEqual(nextUpdate(T0, T0 - timedelta(1)), T0)
        self.assertEqual(nextUpdate(T0, T0), T0 + timedelta(microseconds=1))

    def test_profileCarriesRequest(self):
        """
        L{signedDeviceProfile} puts the request inside what is signed.
        """
        keys = makeDeviceKeys()
        signed = signedDeviceProfile(keys, "x", T0)
        self.assertIsNotNone(unverifiedPayload(signed).DeviceAuthenticationKey.X509CSR)
