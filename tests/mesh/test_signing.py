"""
Tests for L{pz.mesh.signing}: signing, and every way each of the Reference
draft's signature rules can be broken, each refused with status 401.
"""

import json

import attrs
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import DeviceKeys, MasterKeys
from pz.mesh.errors import MeshFormatError, MeshSignatureError, MeshStaleProfileError
from pz.mesh.keys import generateEncryptionKey, generateSignatureKey
from pz.mesh.model import (
    ConnectionRequest,
    ConnectionResult,
    DeviceProfile,
    JoseSignature,
    JoseWebSignature,
    MasterProfile,
    NetworkProfile,
    PasswordProfile,
    PersonalProfile,
    SignedApplicationProfile,
    SignedConnectionRequest,
    SignedDeviceProfile,
    SignedMasterProfile,
    SignedPersonalProfile,
)
from pz.mesh.schema import encodeBinary
from pz.mesh.signing import (
    checkFresh,
    sign,
    signData,
    signPayload,
    unverifiedPayload,
    verify,
    verifyApplicationProfile,
    verifyConnectionRequest,
    verifyConnectionResult,
    verifyData,
    verifyDeviceProfile,
    verifyMasterProfile,
    verifyPayload,
    verifyPersonalProfile,
)

from .world import T0, later, makeWorld, withPayload, withProtected


class RefusalMixin:
    """
    Helpers for asserting that a rule refuses, with status 401 and a clear
    message.
    """

    def assertRefused(self, fragment, function, *args, **kwargs):
        """
        Call C{function} and check it raises L{MeshSignatureError}, status
        401, whose message contains C{fragment}.
        """
        error = self.assertRaises(MeshSignatureError, function, *args, **kwargs)
        self.assertEqual(error.status, 401)
        self.assertIn(fragment, error.message)
        return error


class PayloadSignatureTests(RefusalMixin, SynchronousTestCase):
    """
    L{signPayload} and L{verifyPayload}: JWS over bytes.
    """

    def test_roundTrip(self):
        """
        A payload signed by a key verifies against a list holding that key,
        for both signature curves, and the protected header names the
        algorithm and the key's UDF.
        """
        for curve, alg in [("Ed25519", "EdDSA"), ("P-256", "ES256")]:
            key = generateSignatureKey(curve)
            token = signPayload(b"hello", key)
            header = json.loads(token.signatures[0].protected)
            self.assertEqual(header, {"alg": alg, "kid": key.udf})
            data, signer = verifyPayload(
                token, [generateSignatureKey().publicKey(), key.publicKey()]
            )
            self.assertEqual(data, b"hello")
            self.assertEqual(signer, key.publicKey())

    def test_wrongKey(self):
        """
        A signature by a key not in the trusted list is refused.
        """
        token = signPayload(b"hello", generateSignatureKey())
        self.assertRefused(
            "not a trusted key", verifyPayload, token, [generateSignatureKey().publicKey()]
        )

    def test_kidLies(self):
        """
        A signature whose protected C{kid} names a trusted key but which was
        made with another key does not verify.
        """
        trusted, attacker = generateSignatureKey(), generateSignatureKey()
        forged = signPayload(b"hello", attacker)
        header = json.dumps({"alg": "EdDSA", "kid": trusted.udf}).encode()
        token = JoseWebSignature(
            payload=b"hello",
            signatures=[JoseSignature(protected=header, signature=forged.signatures[0].signature)],
        )
        self.assertRefused("does not verify", verifyPayload, token, [trusted.publicKey()])

    def test_unprotectedKidOnlyNamesAKeyToTry(self):
        """
        A C{kid} in the unprotected header (where the Mesh reference
        implementation puts it) only says which trusted key to try: moving
        it out of a protected header the signature covered breaks the
        signature, and one naming an untrusted key is refused.
        """
        key = generateSignatureKey()
        token = signPayload(b"hello", key)
        header = json.dumps({"alg": "EdDSA"}).encode()
        stripped = JoseWebSignature(
            payload=b"hello",
            signatures=[
                JoseSignature(
                    protected=header,
                    header={"kid": key.udf},
                    signature=token.signatures[0].signature,
                )
            ],
        )
        self.assertRefused("does not verify", verifyPayload, stripped, [key.publicKey()])
        other = generateSignatureKey()
        self.assertRefused("which is not", verifyPayload, stripped, [other.publicKey()])

    def test_tamperedPayload(self):
        """
        Changing one byte of the payload breaks the signature.
        """
        key = generateSignatureKey("P-256")
        token = attrs.evolve(signPayload(b"hello", key), payload=b"hellp")
        self.assertRefused("does not verify", verifyPayload, token, [key.publicKey()])

    def test_tamperedSignature(self):
        """
        Changing the signature bytes breaks it.
        """
        key = generateSignatureKey()
        token = signPayload(b"hello", key)
        bad = bytearray(token.signatures[0].signature)
        bad[0] ^= 1
        token = attrs.evolve(
            token, signatures=[attrs.evolve(token.signatures[0], signature=bytes(bad))]
        )
        self.assertRefused("does not verify", verifyPayload, token, [key.publicKey()])

    def test_algorithmSubstitution(self):
        """
        Algorithms other than the one the key's type allows are refused,
        including C{none} and HMAC (which would use the public key as a
        shared secret).
        """
        key = generateSignatureKey()
        for alg in ["none", "HS256", "ES256", None]:
            header = {"kid": key.udf}
            if alg is not None:
                header["alg"] = alg
            token = JoseWebSignature(
                payload=b"x",
                signatures=[JoseSignature(protected=json.dumps(header).encode(), signature=b"")],
            )
            self.assertRefused("not EdDSA", verifyPayload, token, [key.publicKey()])

    def test_malformedHeaders(self):
        """
        Signatures without any header, or with a protected one that is not a
        JSON object, are refused; so is a JWS with no signature at all.
        """
        key = generateSignatureKey()
        for protected, fragment in [
            (None, "no header"),
            (b"not json", "not JSON"),
            (b"[1]", "not an object"),
        ]:
            token = JoseWebSignature(
                payload=b"x", signatures=[JoseSignature(protected=protected, signature=b"")]
            )
            self.assertRefused(fragment, verifyPayload, token, [key.publicKey()])
        self.assertRefused(
            "no signature",
            verifyPayload,
            JoseWebSignature(payload=b"x", signatures=[]),
            [key.publicKey()],
        )

    def test_secondSignatureCounts(self):
        """
        With several signatures, one by a trusted key suffices.
        """
        trusted, other = generateSignatureKey(), generateSignatureKey()
        first = signPayload(b"x", other).signatures[0]
        second = signPayload(b"x", trusted).signatures[0]
        token = JoseWebSignature(payload=b"x", signatures=[first, second])
        self.assertEqual(verifyPayload(token, [trusted.publicKey()])[0], b"x")

    def test_encryptionKeyCannotBeTrustedSigner(self):
        """
        An X25519 key listed as a signer makes verification fail clearly.
        """
        token = signPayload(b"x", generateSignatureKey())
        self.assertRefused(
            "cannot make signatures", verifyPayload, token, [generateEncryptionKey().publicKey()]
        )

    def test_signedData(self):
        """
        The draft's L{SignedData} container holds a JWS Compact Serialization
        that verifies, and refuses tampering and the wrong key.
        """
        key = generateSignatureKey()
        signed = signData(b"payload", key)
        self.assertEqual(signed.Data.count(b"."), 2)
        self.assertEqual(verifyData(signed, [key.publicKey()]), b"payload")
        protected, _, signature = signed.Data.split(b".")
        tampered = attrs.evolve(
            signed, Data=b".".join([protected, encodeBinary(b"payloaf").encode(), signature])
        )
        self.assertRefused("does not verify", verifyData, tampered, [key.publicKey()])
        self.assertRefused(
            "not a trusted key", verifyData, signed, [generateSignatureKey().publicKey()]
        )
        self.assertRefused(
            "Compact", verifyData, attrs.evolve(signed, Data=b"a.b"), [key.publicKey()]
        )


class MasterProfileRuleTests(RefusalMixin, SynchronousTestCase):
    """
    A MasterProfile is signed by its own MasterSignatureKey, whose UDF is its
    Identifier.
    """

    def setUp(self):
        self.master = MasterKeys.generate(onlineKeys=1)

    def test_valid(self):
        """
        A master profile signed by its master key verifies and its
        Identifier is that key's UDF.
        """
        profile = verifyMasterProfile(self.master.signedProfile(updated=T0))
        self.assertEqual(profile.Identifier, self.master.signature.udf)
        self.assertEqual(profile.MasterSignatureKey.UDF, self.master.signature.udf)

    def test_signedByOnlineKey(self):
        """
        Signed by one of its own online keys instead: refused.
        """
        signed = sign(self.master.profile(updated=T0), self.master.online[0])
        self.assertRefused("not its MasterSignatureKey", verifyMasterProfile, signed)

    def test_identifierNotMasterKey(self):
        """
        An Identifier other than the master key's UDF is refused, even when
        correctly signed: the Identifier is what others trust.
        """
        profile = attrs.evolve(self.master.profile(updated=T0), Identifier="MAAAA-BBBBB")
        signed = sign(profile, self.master.signature)
        self.assertRefused("not the UDF of its MasterSignatureKey", verifyMasterProfile, signed)

    def test_stolenIdentity(self):
        """
        An attacker cannot claim a victim's master Identifier with their own
        key, nor relabel their own key with the victim's UDF.
        """
        victim = self.master
        attacker = MasterKeys.generate()
        claimed = attrs.evolve(attacker.profile(updated=T0), Identifier=victim.identifier)
        self.assertRefused("not the UDF", verifyMasterProfile, sign(claimed, attacker.signature))
        relabelled = attrs.evolve(
            attacker.signature.publicKey(),
            UDF=victim.identifier,
            PublicParameters=attrs.evolve(
                attacker.signature.publicKey().PublicParameters, kid=None
            ),
        )
        profile = attrs.evolve(
            attacker.profile(updated=T0),
            Identifier=victim.identifier,
            MasterSignatureKey=relabelled,
        )
        self.assertRefused(
            "is not the fingerprint", verifyMasterProfile, sign(profile, attacker.signature)
        )

    def test_noMasterKey(self):
        """
        A master profile without a MasterSignatureKey cannot be verified.
        """
        profile = MasterProfile(Identifier=self.master.identifier)
        self.assertRefused(
            "has no MasterSignatureKey", verifyMasterProfile, sign(profile, self.master.signature)
        )

    def test_tamperedPayload(self):
        """
        A master profile whose payload was changed after signing (an online
        key added) is refused.
        """
        signed = self.master.signedProfile(updated=T0)
        extra = generateSignatureKey().publicKey()
        changed = attrs.evolve(
            unverifiedPayload(signed),
            OnlineSignatureKeys=unverifiedPayload(signed).OnlineSignatureKeys + (extra,),
        )
        self.assertRefused(
            "does not verify", verifyMasterProfile, withPayload(signed, changed.toJSON())
        )

    def test_envelopeIdentifier(self):
        """
        The signed form's Identifier must match the profile's.
        """
        signed = attrs.evolve(self.master.signedProfile(updated=T0), Identifier="MOTHER")
        self.assertRefused("envelope Identifier", verifyMasterProfile, signed)

    def test_wrongPayloadType(self):
        """
        A SignedMasterProfile carrying a device profile is refused, even one
        validly signed by its own key.
        """
        device = DeviceKeys.generate()
        signed = SignedMasterProfile(
            Identifier=device.identifier,
            SignedData=device.signedProfile(updated=T0).SignedData,
        )
        self.assertRefused("must carry a MasterProfile", verifyMasterProfile, signed)

    def test_wrongSignedForm(self):
        """
        Passing a different signed form is refused rather than misread.
        """
        device = DeviceKeys.generate().signedProfile(updated=T0)
        self.assertRefused("expected a SignedMasterProfile", verifyMasterProfile, device)

    def test_noSignedData(self):
        """
        A signed form with nothing in it is refused.
        """
        self.assertRefused(
            "has no SignedData", verifyMasterProfile, SignedMasterProfile(Identifier="x")
        )

    def test_undecodablePayload(self):
        """
        A payload that is not a Mesh structure is a format error.
        """
        signed = self.master.signedProfile(updated=T0)
        signed = attrs.evolve(signed, SignedData=signPayload(b"{}", self.master.signature))
        self.assertRaises(MeshFormatError, verifyMasterProfile, signed)


class DeviceProfileRuleTests(RefusalMixin, SynchronousTestCase):
    """
    A DeviceProfile is signed by its own DeviceSignatureKey, whose UDF is its
    Identifier.
    """

    def setUp(self):
        self.device = DeviceKeys.generate()

    def test_valid(self):
        """
        A device profile signed by its device signature key verifies, for
        both signature curves.
        """
        for keys in (self.device, DeviceKeys.generate("P-256", "P-256")):
            profile = verifyDeviceProfile(keys.signedProfile(updated=T0, description="d"))
            self.assertEqual(profile.Identifier, keys.identifier)
            self.assertEqual(profile.Description, "d")

    def test_signedByAnotherKey(self):
        """
        Signed by its own authentication key, or by another device's
        signature key: refused.
        """
        profile = self.device.profile(updated=T0)
        self.assertRefused(
            "not its DeviceSignatureKey",
            verifyDeviceProfile,
            sign(profile, self.device.authentication),
        )
        other = DeviceKeys.generate()
        self.assertRefused(
            "not its DeviceSignatureKey", verifyDeviceProfile, sign(profile, other.signature)
        )

    def test_keySubstitution(self):
        """
        Replacing the DeviceSignatureKey with one's own (and signing with
        it) while keeping the victim's Identifier is refused.
        """
        attacker = DeviceKeys.generate()
        profile = attrs.evolve(
            self.device.profile(updated=T0),
            DeviceSignatureKey=attacker.signature.publicKey(),
        )
        self.assertRefused(
            "not the UDF of its DeviceSignatureKey",
            verifyDeviceProfile,
            sign(profile, attacker.signature),
        )

    def test_noSignatureKey(self):
        """
        A device profile without a DeviceSignatureKey cannot be verified.
        """
        profile = DeviceProfile(Identifier=self.device.identifier)
        self.assertRefused(
            "has no DeviceSignatureKey", verifyDeviceProfile, sign(profile, self.device.signature)
        )

    def test_encryptionKeyAsSignatureKey(self):
        """
        A DeviceSignatureKey that cannot sign (X25519) is refused.
        """
        encryption = self.device.encryption
        profile = attrs.evolve(
            self.device.profile(updated=T0),
            Identifier=encryption.udf,
            DeviceSignatureKey=encryption.publicKey(),
        )
        signed = SignedDeviceProfile(
            Identifier=encryption.udf,
            SignedData=signPayload(profile.toJSON(), self.device.signature),
        )
        self.assertRefused("cannot make signatures", verifyDeviceProfile, signed)

    def test_tamperedPayload(self):
        """
        Swapping the encryption key after signing is refused.
        """
        signed = self.device.signedProfile(updated=T0)
        swapped = attrs.evolve(
            unverifiedPayload(signed), DeviceEncryptiontionKey=generateEncryptionKey().publicKey()
        )
        self.assertRefused(
            "does not verify", verifyDeviceProfile, withPayload(signed, swapped.toJSON())
        )

    def test_protectedHeaderTampered(self):
        """
        Changing the protected header (even to equivalent JSON) breaks the
        signature, since the signature covers its bytes.
        """
        signed = self.device.signedProfile(updated=T0)
        protected = json.dumps({"kid": self.device.identifier, "alg": "EdDSA"}, indent=1).encode()
        self.assertRefused("does not verify", verifyDeviceProfile, withProtected(signed, protected))

    def test_replay(self):
        """
        With the held profile given, an older profile (a replay) and the
        same profile again are refused; a newer one is accepted.
        """
        old = self.device.signedProfile(updated=T0)
        new = self.device.signedProfile(updated=later(1))
        self.assertEqual(verifyDeviceProfile(new, previous=old).Updated, later(1))
        error = self.assertRefused("not later", verifyDeviceProfile, old, previous=new)
        self.assertIsInstance(error, MeshStaleProfileError)
        self.assertRefused("not later", verifyDeviceProfile, new, previous=new)


class PersonalProfileRuleTests(RefusalMixin, SynchronousTestCase):
    """
    A PersonalProfile is signed by a key in its master's OnlineSignatureKeys;
    its master and devices verify by their own rules.
    """

    def setUp(self):
        self.world = makeWorld()

    def test_valid(self):
        """
        The personal profile verifies with either online key, and its
        Identifier is the master's.
        """
        world = self.world
        for online in world.master.online:
            profile = verifyPersonalProfile(sign(world.personal, online))
            self.assertEqual(profile.Identifier, world.master.identifier)
            self.assertEqual(len(profile.Devices), 2)

    def test_signedByMasterKey(self):
        """
        The master signature key is not an online key: a personal profile it
        signs is refused.
        """
        self.assertRefused(
            "not one of its master's OnlineSignatureKeys",
            verifyPersonalProfile,
            sign(self.world.personal, self.world.master.signature),
        )

    def test_keyNotInMastersList(self):
        """
        A key outside the master's OnlineSignatureKeys, such as another
        person's online key or a device key, is refused.
        """
        for key in [MasterKeys.generate().online[0], self.world.laptop.signature]:
            self.assertRefused(
                "not one of its master's OnlineSignatureKeys",
                verifyPersonalProfile,
                sign(self.world.personal, key),
            )

    def test_forgedMaster(self):
        """
        An attacker who embeds a master profile listing their own online key
        (but cannot sign it with the victim's master key) is refused.
        """
        world = self.world
        attackerKey = generateSignatureKey()
        master = unverifiedPayload(world.signedMaster)
        forgedMaster = attrs.evolve(
            master, OnlineSignatureKeys=master.OnlineSignatureKeys + (attackerKey.publicKey(),)
        )
        signedForged = sign(forgedMaster, attackerKey)
        personal = attrs.evolve(world.personal, SignedMasterProfile=signedForged)
        self.assertRefused(
            "not its MasterSignatureKey", verifyPersonalProfile, sign(personal, attackerKey)
        )

    def test_someoneElsesMaster(self):
        """
        A personal profile whose Identifier is not its master's is refused.
        """
        other = MasterKeys.generate()
        personal = attrs.evolve(
            self.world.personal, SignedMasterProfile=other.signedProfile(updated=T0)
        )
        self.assertRefused(
            "is not its master's", verifyPersonalProfile, sign(personal, other.online[0])
        )

    def test_noMaster(self):
        """
        A personal profile without its master cannot be verified.
        """
        personal = attrs.evolve(self.world.personal, SignedMasterProfile=None)
        self.assertRefused(
            "has no SignedMasterProfile",
            verifyPersonalProfile,
            sign(personal, self.world.master.online[0]),
        )

    def test_forgedDevice(self):
        """
        A device whose profile does not verify makes the whole personal
        profile fail, even though an online key signed it.
        """
        world = self.world
        attacker = DeviceKeys.generate()
        badDevice = sign(world.laptop.profile(updated=T0), attacker.signature)
        personal = attrs.evolve(world.personal, Devices=[badDevice])
        error = self.assertRefused(
            "not its DeviceSignatureKey",
            verifyPersonalProfile,
            sign(personal, world.master.online[0]),
        )
        self.assertIn("SignedPersonalProfile", error.message)

    def test_tamperedPayload(self):
        """
        Adding a device to a signed personal profile breaks its signature.
        """
        world = self.world
        signed = world.signedPersonal
        changed = attrs.evolve(
            world.personal,
            Devices=world.personal.Devices + (world.tablet.signedProfile(updated=T0),),
        )
        self.assertRefused(
            "does not verify", verifyPersonalProfile, withPayload(signed, changed.toJSON())
        )

    def test_replayedOldProfile(self):
        """
        Once a newer personal profile is held, the older one is refused as a
        replay; an update must carry a later Updated.
        """
        world = self.world
        newer = sign(world.personalAt(later(1)), world.master.online[0])
        verifyPersonalProfile(newer, previous=world.signedPersonal)
        error = self.assertRefused(
            "replayed or stale", verifyPersonalProfile, world.signedPersonal, previous=newer
        )
        self.assertIsInstance(error, MeshStaleProfileError)
        sameTime = sign(
            attrs.evolve(world.personalAt(later(1)), Names=["x"]), world.master.online[1]
        )
        self.assertRefused("not later", verifyPersonalProfile, sameTime, previous=newer)
        undated = sign(world.personalAt(None), world.master.online[0])
        self.assertRefused("absent", verifyPersonalProfile, undated, previous=newer)

    def test_replayedOldMaster(self):
        """
        After the master drops an online key, a profile signed by that key
        and embedding the old master (which still lists it) is refused,
        although on its own it verifies.
        """
        world = self.world
        revoked = world.master.online[1]
        reduced = attrs.evolve(world.master, online=world.master.online[:1])
        newMaster = reduced.signedProfile(updated=later(1))
        held = sign(world.personalAt(later(1), master=newMaster), reduced.online[0])
        replay = sign(world.personalAt(later(2)), revoked)
        verifyPersonalProfile(replay)
        error = self.assertRefused(
            "master profile that is not newer", verifyPersonalProfile, replay, previous=held
        )
        self.assertIsInstance(error, MeshStaleProfileError)
        self.assertRefused(
            "OnlineSignatureKeys",
            verifyPersonalProfile,
            sign(world.personalAt(later(2), master=newMaster), revoked),
            previous=held,
        )

    def test_differentProfileIsNotAnUpdate(self):
        """
        A profile cannot be accepted as the update of someone else's.
        """
        other = makeWorld()
        newer = sign(other.personalAt(later(1)), other.master.online[0])
        self.assertRefused(
            "is not a version of", verifyPersonalProfile, newer, previous=self.world.signedPersonal
        )


class ApplicationProfileRuleTests(RefusalMixin, SynchronousTestCase):
    """
    An application profile is listed in the personal profile and signed by a
    device its entry's SignID names.
    """

    def setUp(self):
        self.world = makeWorld()

    def test_valid(self):
        """
        Signed by either device in SignID, against the verified or the signed
        personal profile, it verifies.
        """
        world = self.world
        for device in (world.laptop, world.phone):
            signed = sign(world.application, device.signature)
            self.assertIsInstance(verifyApplicationProfile(signed, world.personal), PasswordProfile)
            self.assertEqual(
                verifyApplicationProfile(signed, world.signedPersonal).Identifier,
                world.entry.Identifier,
            )

    def test_signerNotInSignID(self):
        """
        A device of the profile that SignID does not name, a device outside
        the profile, and an online key are all refused.
        """
        world = self.world
        entry = attrs.evolve(world.entry, SignID=[world.laptop.identifier])
        personal = world.personalAt(T0, applications=[entry])
        for key in (world.phone.signature, world.tablet.signature, world.master.online[0]):
            self.assertRefused(
                "not a device its entry's SignID names",
                verifyApplicationProfile,
                sign(world.application, key),
                personal,
            )

    def test_signIDNamesUnknownDevice(self):
        """
        SignID naming a device the profile does not contain grants nothing.
        """
        world = self.world
        entry = attrs.evolve(world.entry, SignID=[world.tablet.identifier])
        personal = world.personalAt(T0, applications=[entry])
        self.assertRefused(
            "SignID",
            verifyApplicationProfile,
            sign(world.application, world.tablet.signature),
            personal,
        )

    def test_notListed(self):
        """
        An application the personal profile does not list is refused.
        """
        world = self.world
        stray = attrs.evolve(world.application, Identifier="MSTRA-YAPPL")
        self.assertRefused(
            "not once",
            verifyApplicationProfile,
            sign(stray, world.laptop.signature),
            world.personal,
        )

    def test_typeMismatch(self):
        """
        An application of another type than its entry says is refused.
        """
        world = self.world
        network = NetworkProfile(Identifier=world.entry.Identifier, Updated=T0)
        self.assertRefused(
            "its entry says PasswordProfile",
            verifyApplicationProfile,
            sign(network, world.laptop.signature),
            world.personal,
        )

    def test_tampered(self):
        """
        Replacing the encrypted part after signing breaks the signature.
        """
        world = self.world
        other = makeWorld()
        changed = attrs.evolve(world.application, EncryptedData=other.application.EncryptedData)
        self.assertRefused(
            "does not verify",
            verifyApplicationProfile,
            withPayload(world.signedApplication, changed.toJSON()),
            world.personal,
        )

    def test_forgedPersonal(self):
        """
        The personal profile given as a signed form is verified first: a
        forged one is refused before it can vouch for anything.
        """
        world = self.world
        forged = sign(world.personal, world.laptop.signature)
        self.assertRefused(
            "OnlineSignatureKeys", verifyApplicationProfile, world.signedApplication, forged
        )

    def test_replay(self):
        """
        With the held version given, an older application profile is refused.
        """
        world = self.world
        newer = sign(attrs.evolve(world.application, Updated=later(1)), world.laptop.signature)
        verifyApplicationProfile(newer, world.personal, previous=world.signedApplication)
        self.assertRefused(
            "not later",
            verifyApplicationProfile,
            world.signedApplication,
            world.personal,
            previous=newer,
        )

    def test_wrongPayloadType(self):
        """
        A SignedApplicationProfile must carry an application profile.
        """
        world = self.world
        signed = SignedApplicationProfile(
            Identifier=world.master.identifier, SignedData=world.signedPersonal.SignedData
        )
        self.assertRefused(
            "must carry an ApplicationProfile", verifyApplicationProfile, signed, world.personal
        )


class ConnectionRuleTests(RefusalMixin, SynchronousTestCase):
    """
    A connection request is signed by the requesting device; the result by an
    administration key of the profile.
    """

    def setUp(self):
        self.world = makeWorld()
        self.device = self.world.tablet
        self.request = ConnectionRequest(
            ParentUDF=self.world.master.identifier, Device=self.device.signedProfile(updated=T0)
        )

    def result(self, **changes):
        """
        A connection result accepting C{self.request}, with C{changes}.
        """
        fields = {
            "ParentUDF": self.request.ParentUDF,
            "Device": self.request.Device,
            "Result": "Accepted",
            **changes,
        }
        return ConnectionResult(**fields)

    def test_requestValid(self):
        """
        A request signed by the device it carries verifies; its Identifier is
        the device's.
        """
        signed = sign(self.request, self.device.signature)
        self.assertEqual(signed.Identifier, self.device.identifier)
        self.assertEqual(verifyConnectionRequest(signed), self.request)

    def test_requestSignedByOther(self):
        """
        A request signed by any key but the carried device's signature key is
        refused.
        """
        for key in (self.device.authentication, self.world.laptop.signature):
            self.assertRefused(
                "the requesting device's DeviceSignatureKey",
                verifyConnectionRequest,
                sign(self.request, key),
            )

    def test_requestCarryingForgedDevice(self):
        """
        A request carrying a device profile that does not verify is refused.
        """
        attacker = DeviceKeys.generate()
        request = attrs.evolve(
            self.request, Device=sign(self.device.profile(updated=T0), attacker.signature)
        )
        self.assertRefused(
            "not its DeviceSignatureKey", verifyConnectionRequest, sign(request, attacker.signature)
        )

    def test_requestIncomplete(self):
        """
        A request without a device or without a ParentUDF is refused.
        """
        noDevice = ConnectionRequest(ParentUDF="x")
        self.assertRefused(
            "carries no Device",
            verifyConnectionRequest,
            SignedConnectionRequest(
                Identifier=None, SignedData=signPayload(noDevice.toJSON(), self.device.signature)
            ),
        )
        noParent = attrs.evolve(self.request, ParentUDF=None)
        self.assertRefused(
            "names no ParentUDF", verifyConnectionRequest, sign(noParent, self.device.signature)
        )

    def test_resultCannotPassAsRequest(self):
        """
        A connection result (a subclass of request) signed by the device is
        not accepted as a request.
        """
        signed = SignedConnectionRequest(
            Identifier=self.device.identifier,
            SignedData=signPayload(self.result().toJSON(), self.device.signature),
        )
        self.assertRefused("must carry a ConnectionRequest", verifyConnectionRequest, signed)

    def test_resultValid(self):
        """
        A result signed by an online key of the profile verifies.
        """
        for key in self.world.master.online:
            signed = sign(self.result(), key)
            self.assertEqual(
                verifyConnectionResult(signed, self.world.signedPersonal).Result, "Accepted"
            )

    def test_resultSignedByNonAdministrator(self):
        """
        A result signed by the master key itself, by a device of the profile,
        or by the requesting device is refused: only administration keys may
        answer.
        """
        for key in (
            self.world.master.signature,
            self.world.laptop.signature,
            self.device.signature,
        ):
            self.assertRefused(
                "administration key",
                verifyConnectionResult,
                sign(self.result(), key),
                self.world.personal,
            )

    def test_resultForAnotherProfile(self):
        """
        A result naming another profile is refused, even if signed by this
        profile's administrator.
        """
        signed = sign(self.result(ParentUDF="MOTHE-RPROF"), self.world.master.online[0])
        self.assertRefused("is for profile", verifyConnectionResult, signed, self.world.personal)

    def test_resultIncomplete(self):
        """
        A result without an outcome or without the device is refused.
        """
        key = self.world.master.online[0]
        self.assertRefused(
            "has no Result",
            verifyConnectionResult,
            sign(self.result(Result=None), key),
            self.world.personal,
        )
        noDevice = self.result(Device=None)
        signed = sign(noDevice, key)
        self.assertRefused("carries no Device", verifyConnectionResult, signed, self.world.personal)

    def test_resultTampered(self):
        """
        Turning a refusal into an acceptance after signing is refused.
        """
        signed = sign(self.result(Result="Refused"), self.world.master.online[0])
        tampered = withPayload(signed, self.result(Result="Accepted").toJSON())
        self.assertRefused("does not verify", verifyConnectionResult, tampered, self.world.personal)


class DispatchAndFreshnessTests(RefusalMixin, SynchronousTestCase):
    """
    L{verify} applies the right rule to each signed form; L{checkFresh}
    compares versions.
    """

    def setUp(self):
        self.world = makeWorld()

    def test_dispatch(self):
        """
        Each signed form goes to its rule and returns its payload type.
        """
        world = self.world
        request = ConnectionRequest(
            ParentUDF=world.master.identifier, Device=world.tablet.signedProfile(updated=T0)
        )
        result = ConnectionResult(
            ParentUDF=world.master.identifier, Device=request.Device, Result="Query"
        )
        cases = [
            (world.signedMaster, MasterProfile, {}),
            (world.personal.Devices[0], DeviceProfile, {}),
            (world.signedPersonal, PersonalProfile, {}),
            (world.signedApplication, PasswordProfile, {"personal": world.personal}),
            (sign(request, world.tablet.signature), ConnectionRequest, {}),
            (sign(result, world.master.online[0]), ConnectionResult, {"personal": world.personal}),
        ]
        for signed, payloadType, kwargs in cases:
            self.assertIs(type(verify(signed, **kwargs)), payloadType)

    def test_dispatchNeedsPersonal(self):
        """
        Forms whose rule depends on the personal profile need it.
        """
        self.assertRefused("without its personal profile", verify, self.world.signedApplication)

    def test_dispatchPrevious(self):
        """
        L{verify} passes C{previous} on, so replays are refused through it.
        """
        world = self.world
        newer = sign(world.personalAt(later(1)), world.master.online[0])
        self.assertRefused("not later", verify, world.signedPersonal, previous=newer)

    def test_checkFresh(self):
        """
        Freshness needs the same kind and Identifier; a held profile without
        Updated can be replaced by anything newer; connection requests have
        no versions.
        """
        world = self.world
        self.assertRefused("cannot replace", checkFresh, world.signedMaster, world.signedPersonal)
        undated = sign(world.personalAt(None), world.master.online[0])
        checkFresh(world.signedPersonal, undated)
        request = sign(
            ConnectionRequest(ParentUDF="x", Device=world.tablet.signedProfile(updated=T0)),
            world.tablet.signature,
        )
        self.assertRaises(MeshFormatError, checkFresh, request, request)

    def test_signedFormsRoundTrip(self):
        """
        Signed objects survive their JSON encoding and still verify.
        """
        world = self.world
        text = world.signedPersonal.toJSON()
        self.assertEqual(SignedPersonalProfile.fromJSON(text), world.signedPersonal)
        verifyPersonalProfile(SignedPersonalProfile.fromJSON(text))
        application = SignedApplicationProfile.fromJSON(world.signedApplication.toJSON())
        verifyApplicationProfile(application, world.personal)
