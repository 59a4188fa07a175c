"""
Tests for L{pz.mesh.encryption}: application private parts are readable by
exactly the devices in C{DecryptID}; escrow and the EncryptedData container.
"""

import attrs
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import DeviceKeys
from pz.mesh.encryption import (
    decryptApplicationPrivate,
    decryptData,
    decryptStructure,
    decryptWith,
    encryptApplicationPrivate,
    encryptData,
    encryptTo,
    recipientsOf,
)
from pz.mesh.errors import MeshEncryptionError, MeshFormatError, MeshKeyError
from pz.mesh.keys import KeyPair, generateEncryptionKey, generateSignatureKey
from pz.mesh.model import (
    EscrowedKeySet,
    MailProfile,
    MailProfilePrivate,
    NetworkProfilePrivate,
    OfflineEscrowEntry,
    PasswordProfile,
    PasswordProfilePrivate,
    SignedApplicationProfile,
)
from pz.mesh.signing import verifyApplicationProfile

from .world import T0, makeWorld


class ApplicationPrivatePartTests(SynchronousTestCase):
    """
    The private part of an application profile is encrypted to the devices
    its entry lists in DecryptID, and only they can read it.
    """

    def setUp(self):
        self.world = makeWorld()

    def assertUnreadable(self, application, key):
        """
        Check that C{key} cannot read C{application}'s private part, with
        status 401.
        """
        error = self.assertRaises(MeshEncryptionError, decryptApplicationPrivate, application, key)
        self.assertEqual(error.status, 401)
        return error

    def test_listedDeviceReads(self):
        """
        The laptop, listed in DecryptID, reads the private part back exactly,
        from its key pair or from its private profile, after the signed
        application has travelled as JSON and been verified.
        """
        world = self.world
        received = SignedApplicationProfile.fromJSON(world.signedApplication.toJSON())
        application = verifyApplicationProfile(received, world.personal)
        self.assertEqual(
            decryptApplicationPrivate(application, world.laptop.encryption), world.secrets
        )
        self.assertEqual(
            decryptApplicationPrivate(application, world.laptop.privateProfile()), world.secrets
        )

    def test_unlistedDevicesCannotRead(self):
        """
        The phone (connected, allowed to sign, but not in DecryptID), a
        device outside the profile, and a device's other keys cannot read it.
        """
        world = self.world
        error = self.assertUnreadable(world.application, world.phone.encryption)
        self.assertIn("not a recipient", error.message)
        self.assertUnreadable(world.application, world.tablet.encryption)
        self.assertUnreadable(world.application, world.phone.privateProfile())

    def test_recipientsAreExactlyDecryptID(self):
        """
        The encryption names exactly the encryption keys of the DecryptID
        devices, in order.
        """
        world = self.world
        entry = attrs.evolve(
            world.entry, DecryptID=[world.phone.identifier, world.laptop.identifier]
        )
        personal = world.personalAt(T0, applications=[entry])
        application = encryptApplicationPrivate(
            PasswordProfile(Identifier=entry.Identifier), world.secrets, personal
        )
        self.assertEqual(
            recipientsOf(application.EncryptedData),
            (world.phone.encryption.udf, world.laptop.encryption.udf),
        )
        for device in (world.laptop, world.phone):
            self.assertEqual(
                decryptApplicationPrivate(application, device.encryption), world.secrets
            )

    def test_kidCannotBeBorrowed(self):
        """
        Relabelling a recipient entry with one's own key's UDF does not let
        a non-recipient read: the wrapped key was made for the other key.
        """
        world = self.world
        encrypted = world.application.EncryptedData
        [recipient] = encrypted.recipients
        relabelled = attrs.evolve(
            recipient, header={**recipient.header, "kid": world.phone.encryption.udf}
        )
        stolen = attrs.evolve(
            world.application, EncryptedData=attrs.evolve(encrypted, recipients=[relabelled])
        )
        error = self.assertUnreadable(stolen, world.phone.encryption)
        self.assertIn("does not decrypt", error.message)

    def test_tampering(self):
        """
        Changing the ciphertext, the tag, the protected header or the wrapped
        key makes decryption fail rather than return altered data.
        """
        world = self.world
        encrypted = world.application.EncryptedData

        def flip(data):
            data = bytearray(data)
            data[0] ^= 1
            return bytes(data)

        [recipient] = encrypted.recipients
        variants = [
            attrs.evolve(encrypted, ciphertext=flip(encrypted.ciphertext)),
            attrs.evolve(encrypted, tag=flip(encrypted.tag)),
            attrs.evolve(encrypted, protected=b'{"enc":"A128GCM"}'),
            attrs.evolve(
                encrypted,
                recipients=[attrs.evolve(recipient, encrypted_key=flip(recipient.encrypted_key))],
            ),
        ]
        for variant in variants:
            self.assertUnreadable(
                attrs.evolve(world.application, EncryptedData=variant), world.laptop.encryption
            )

    def test_decryptIDNamesUnknownDevice(self):
        """
        DecryptID naming a device the profile does not contain is refused
        rather than silently skipped.
        """
        world = self.world
        entry = attrs.evolve(world.entry, DecryptID=[world.tablet.identifier])
        personal = world.personalAt(T0, applications=[entry])
        error = self.assertRaises(
            MeshEncryptionError,
            encryptApplicationPrivate,
            PasswordProfile(Identifier=entry.Identifier),
            world.secrets,
            personal,
        )
        self.assertIn("does not contain", error.message)

    def test_noReaders(self):
        """
        An entry with no DecryptID, an application the profile does not
        list, or one of another type than its entry says, cannot be
        encrypted.
        """
        world = self.world
        entry = attrs.evolve(world.entry, DecryptID=None)
        personal = world.personalAt(T0, applications=[entry])
        self.assertRaises(
            MeshEncryptionError,
            encryptApplicationPrivate,
            PasswordProfile(Identifier=entry.Identifier),
            world.secrets,
            personal,
        )
        self.assertRaises(
            MeshEncryptionError,
            encryptApplicationPrivate,
            PasswordProfile(Identifier="MUNLI-STED"),
            world.secrets,
            world.personal,
        )
        self.assertRaises(
            MeshEncryptionError,
            encryptApplicationPrivate,
            MailProfile(Identifier=world.entry.Identifier),
            MailProfilePrivate(),
            world.personal,
        )

    def test_privatePartType(self):
        """
        Each application type takes only its own private part type, when
        encrypting and when decrypting.
        """
        world = self.world
        self.assertRaises(
            MeshFormatError,
            encryptApplicationPrivate,
            PasswordProfile(Identifier=world.entry.Identifier),
            NetworkProfilePrivate(),
            world.personal,
        )
        mislabelled = MailProfile(
            Identifier="x",
            EncryptedData=encryptTo(world.secrets, [world.laptop.encryption.publicKey()]),
        )
        self.assertRaises(
            MeshFormatError, decryptApplicationPrivate, mislabelled, world.laptop.encryption
        )

    def test_mailProfile(self):
        """
        A mail profile's private part round-trips to its reader.
        """
        world = self.world
        entry = attrs.evolve(world.entry, Type="MailProfile")
        personal = world.personalAt(T0, applications=[entry])
        private = MailProfilePrivate(EmailAddress="alice@example.com", DisplayName="Alice")
        application = encryptApplicationPrivate(
            MailProfile(Identifier=entry.Identifier), private, personal
        )
        self.assertEqual(decryptApplicationPrivate(application, world.laptop.encryption), private)

    def test_noEncryptedPart(self):
        """
        An application profile without a private part says so.
        """
        self.assertRaises(
            MeshEncryptionError,
            decryptApplicationPrivate,
            PasswordProfile(Identifier="x"),
            self.world.laptop.encryption,
        )

    def test_p256(self):
        """
        P-256 device encryption keys work the same way.
        """
        world = makeWorld("P-256", "P-256")
        self.assertEqual(
            decryptApplicationPrivate(world.application, world.laptop.encryption), world.secrets
        )
        self.assertRaises(
            MeshEncryptionError,
            decryptApplicationPrivate,
            world.application,
            world.phone.encryption,
        )


class GenericEncryptionTests(SynchronousTestCase):
    """
    L{encryptTo} and friends, as used for escrow, and the single-recipient
    EncryptedData container.
    """

    def test_escrow(self):
        """
        A master's keys escrowed to its escrow key come back intact, through
        an OfflineEscrowEntry's JSON, and cannot be read with another key.
        """
        world = makeWorld()
        keySet = world.master.escrowedKeySet()
        escrowKey = world.master.escrow[0]
        entry = OfflineEscrowEntry(
            Identifier=world.master.identifier,
            EncryptedData=encryptTo(keySet, [escrowKey.publicKey()]),
        )
        received = OfflineEscrowEntry.fromJSON(entry.toJSON())
        recovered = decryptStructure(received.EncryptedData, escrowKey, EscrowedKeySet)
        self.assertEqual(recovered, keySet)
        self.assertEqual(KeyPair.fromKey(recovered.PrivateKeys[0]).udf, world.master.signature.udf)
        self.assertRaises(
            MeshEncryptionError, decryptWith, received.EncryptedData, generateEncryptionKey()
        )

    def test_bytesAndDuplicates(self):
        """
        Bytes can be encrypted too; a key listed twice becomes one recipient.
        """
        key = generateEncryptionKey()
        encrypted = encryptTo(b"raw", [key.publicKey(), key.publicKey()])
        self.assertEqual(len(encrypted.recipients), 1)
        self.assertEqual(decryptWith(encrypted, key), b"raw")

    def test_badRecipients(self):
        """
        No recipients, or a signature-only key as recipient, is refused.
        """
        self.assertRaises(MeshEncryptionError, encryptTo, b"x", [])
        self.assertRaises(MeshKeyError, encryptTo, b"x", [generateSignatureKey().publicKey()])

    def test_expectedType(self):
        """
        L{decryptStructure} refuses a plaintext of another type.
        """
        key = generateEncryptionKey()
        encrypted = encryptTo(PasswordProfilePrivate(), [key.publicKey()])
        self.assertRaises(MeshFormatError, decryptStructure, encrypted, key, EscrowedKeySet)

    def test_encryptedData(self):
        """
        The draft's EncryptedData container holds a compact JWE that its
        recipient reads and others cannot.
        """
        for curve in ("X25519", "P-256"):
            key = generateEncryptionKey(curve)
            encrypted = encryptData(b"secret", key.publicKey())
            self.assertEqual(encrypted.Data.count(b"."), 4)
            self.assertEqual(decryptData(encrypted, key), b"secret")
            self.assertRaises(MeshEncryptionError, decryptData, encrypted, generateEncryptionKey())
        self.assertRaises(
            MeshEncryptionError, decryptData, attrs.evolve(encrypted, Data=b"junk"), key
        )
        device = DeviceKeys.generate()
        self.assertEqual(
            decryptData(encryptData(b"d", device.encryption.publicKey()), device.privateProfile()),
            b"d",
        )
