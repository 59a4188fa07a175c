"""
Tests for L{pz.mesh.builders}: new master and device identities.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import DeviceKeys, MasterKeys, makePersonalProfile, newApplicationIdentifier
from pz.mesh.keys import KeyPair
from pz.mesh.model import DevicePrivateProfile
from pz.mesh.signing import sign, verifyDeviceProfile, verifyMasterProfile, verifyPersonalProfile

from .world import T0


class BuilderTests(SynchronousTestCase):
    """
    The builders produce profiles that satisfy the signature rules.
    """

    def test_device(self):
        """
        A device's Identifier is its signature key's UDF; its signed profile
        verifies; its private profile reloads into the same keys.
        """
        device = DeviceKeys.generate()
        profile = verifyDeviceProfile(device.signedProfile(updated=T0, names=["n"]))
        self.assertEqual(profile.Identifier, device.signature.udf)
        self.assertEqual(profile.Names, ("n",))
        self.assertEqual(profile.DeviceEncryptiontionKey.UDF, device.encryption.udf)
        private = DevicePrivateProfile.fromJSON(device.privateProfile().toJSON())
        self.assertEqual(DeviceKeys.fromPrivateProfile(private), device)

    def test_master(self):
        """
        A master's Identifier is its master key's UDF; it lists its online
        and escrow keys; its escrowed key set holds every private key.
        """
        master = MasterKeys.generate(onlineKeys=2, escrowKeys=1)
        profile = verifyMasterProfile(master.signedProfile(updated=T0))
        self.assertEqual(profile.Identifier, master.signature.udf)
        self.assertEqual(
            [key.UDF for key in profile.OnlineSignatureKeys], [k.udf for k in master.online]
        )
        self.assertEqual([key.UDF for key in profile.MasterEscrowKeys], [master.escrow[0].udf])
        udfs = [KeyPair.fromKey(key).udf for key in master.escrowedKeySet().PrivateKeys]
        self.assertEqual(
            udfs, [master.signature.udf, *[k.udf for k in master.online], master.escrow[0].udf]
        )

    def test_p256Master(self):
        """
        A P-256 master uses P-256 for its escrow keys too.
        """
        master = MasterKeys.generate(escrowKeys=1, curve="P-256")
        self.assertEqual(master.escrow[0].curve, "P-256")
        verifyMasterProfile(master.signedProfile(updated=T0))

    def test_personal(self):
        """
        A personal profile takes its master's Identifier and verifies once
        signed by an online key.
        """
        master = MasterKeys.generate()
        device = DeviceKeys.generate()
        personal = makePersonalProfile(
            master.signedProfile(updated=T0), devices=[device.signedProfile()], updated=T0
        )
        self.assertEqual(personal.Identifier, master.identifier)
        self.assertEqual(verifyPersonalProfile(sign(personal, master.online[0])), personal)

    def test_applicationIdentifier(self):
        """
        Application identifiers are random and shaped like UDFs.
        """
        first, second = newApplicationIdentifier(), newApplicationIdentifier()
        self.assertNotEqual(first, second)
        self.assertRegex(first, r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")
