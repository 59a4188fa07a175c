"""
The portal reads what the Mesh reference implementation sends
(hallambaker/Mathematical-Mesh, Documentation/Specification/Examples/
Examples.md): each form through the real HTTP resource, each with its
refusals. What the portal writes stays its own form.
"""

import json

from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import DeviceKeys
from pz.mesh.keys import udfOf
from pz.mesh.messages import TransferRequest, accountNameFingerprint
from pz.mesh.model import DeviceProfile, PublicKey
from pz.mesh.schema import fromJSON

from tests.mesh import reference as ref
from tests.mesh.portal._support import T0, PortalFixture, ResourceTestBase, makeDevice, makePerson


def request(tag: str, fields: dict) -> bytes:
    """
    A request body as the reference sends it: pretty-printed JSON.
    """
    return json.dumps({tag: fields}, indent=2).encode("utf-8")


def devicePayload(keys: DeviceKeys, updated=T0) -> dict:
    """
    A device profile's tagged JSON, in this project's own form.
    """
    return keys.profile(updated=updated, description="reference").toDict()


class ReferenceTestBase(ResourceTestBase):
    """
    Posting the reference's forms.
    """

    def publish(self, signedDevice: dict, status: int = 201, contains=None):
        """
        Publish a signed device profile given as JSON.
        """
        body = request("PublishRequest", {"Entry": {"SignedDeviceProfile": signedDevice}})
        return self.assertAnswer(body, status, "PublishResponse", contains)[1]

    def get(self, status: int = 201, tag: str = "GetRequest", **fields):
        """
        Get, answered with C{status}; return the response body.
        """
        answer = tag.replace("Request", "Response")
        return self.assertAnswer(request(tag, fields), status, answer)[1][answer]


class JWSFormTests(ReferenceTestBase):
    """
    Point 9: a JWS in the reference's form, in RFC 7515's flattened form and
    in the C{{header, payload, signature}} form is read beside the general
    form, base64url line breaks included; a mangled signature in each is
    refused.
    """

    def test_eachForm(self):
        """
        A device profile signed in each form is published, and what is
        stored and returned is the general form without line breaks, whose
        signed payload is the bytes the device signed.
        """
        for form in ("reference", "flattened", "header"):
            keys = DeviceKeys.generate()
            payload = devicePayload(keys)
            signed = ref.referenceSigned(payload, keys.signature, form)
            self.publish(signed)
            [item] = self.get(Identifier=keys.identifier)["DataItems"]
            stored = item["Entry"]["SignedDeviceProfile"]["SignedData"]
            self.assertEqual(set(stored) - {"unprotected"}, {"payload", "signatures"}, form)
            self.assertNotIn("\n", json.dumps(stored))
            sent = signed["SignedData"]["payload"].replace("\n", "")
            self.assertEqual(stored["payload"], sent, form)

    def test_referenceExtrasKept(self):
        """
        The reference's unprotected C{{"dig": "S512"}} and protected C{val}
        do not stop a signature from verifying.
        """
        keys = DeviceKeys.generate("P-256")
        signed = ref.referenceSigned(devicePayload(keys), keys.signature, "reference")
        self.assertEqual(signed["SignedData"]["unprotected"], {"dig": "S512"})
        self.publish(signed)

    def test_mangledSignatureRefused(self):
        """
        One bit flipped in the signature, in every form, is refused with
        401 and nothing is stored.
        """
        for form in ref.JWS_FORMS:
            keys = DeviceKeys.generate()
            signed = ref.referenceSigned(devicePayload(keys), keys.signature, form)
            self.publish(ref.mangled(signed), 401, "does not verify")

    def test_mangledPayloadRefused(self):
        """
        A payload changed after signing is refused in the reference's form.
        """
        keys = DeviceKeys.generate()
        signed = ref.referenceSigned(devicePayload(keys), keys.signature, "reference")
        other = devicePayload(keys, updated=T0.replace(year=2017))
        signed["SignedData"]["payload"] = ref.wrap(json.dumps(other, indent=2).encode())
        self.publish(signed, 401, "does not verify")

    def test_unprotectedHeaderIsOnlyAHint(self):
        """
        An unprotected C{kid} naming a key that is not the profile's, an
        unprotected C{alg} other than the key's own, or a parameter both
        protected and unprotected are refused.
        """
        keys, stranger = DeviceKeys.generate(), DeviceKeys.generate()
        payload = devicePayload(keys)
        notMine = ref.referenceSigned(payload, stranger.signature, "reference")
        notMine["SignedData"]["signatures"][0]["header"]["kid"] = keys.identifier
        self.publish(notMine, 401, "does not verify")
        renamed = ref.referenceSigned(payload, keys.signature, "reference")
        renamed["SignedData"]["signatures"][0]["header"]["kid"] = stranger.identifier
        self.publish(renamed, 401, "which is not")
        for alg in ("none", "HS256", "ES256"):
            signed = ref.referenceSigned(payload, keys.signature, "header")
            signed["SignedData"]["header"]["alg"] = alg
            self.publish(signed, 401, "not EdDSA")
        both = ref.referenceSigned(payload, keys.signature, "flattened")
        both["SignedData"]["header"] = {"kid": keys.identifier}
        self.publish(both, 401, "both protected and unprotected")

    def test_malformedForms(self):
        """
        A JWS with both C{signature} and C{signatures}, and base64url with
        anything but line breaks inside, are refused with 400.
        """
        keys = DeviceKeys.generate()
        payload = devicePayload(keys)
        general = ref.referenceSigned(payload, keys.signature, "general")
        flat = ref.referenceSigned(payload, keys.signature, "flattened")
        both = dict(general["SignedData"], signature=flat["SignedData"]["signature"])
        self.publish({"Identifier": keys.identifier, "SignedData": both}, 400, "signature")
        for junk in (" ", "\t", "=", "+"):
            spaced = ref.referenceSigned(payload, keys.signature, "reference")
            spaced["SignedData"]["payload"] = spaced["SignedData"]["payload"].replace(
                "\n", junk, 2)
            self.publish(spaced, 400, "base64url")


class TaggedProfileTests(ReferenceTestBase):
    """
    Point 10: C{CreateRequest.Profile} tagged, as the reference sends it.
    """

    def create(self, profile, status, account="alice", contains=None):
        body = request("CreateRequest", {"Account": account, "Profile": profile})
        return self.assertAnswer(body, status, "CreateResponse", contains)

    def test_taggedProfile(self):
        """
        C{{"SignedPersonalProfile": {...}}} creates the account; Get by
        account then finds the profile.
        """
        alice = makePerson("alice")
        self.create(alice.personal.toDict(), 201)
        [item] = self.get(Account="alice", KeyValues=[
            {"Key": "Type", "Value": "SignedPersonalProfile"}])["DataItems"]
        self.assertEqual(item["Entry"]["SignedPersonalProfile"]["Identifier"], alice.udf)

    def test_untaggedStillRead(self):
        """
        The untagged form this project writes is still read.
        """
        alice = makePerson("alice")
        self.create(alice.personal.toDict()["SignedPersonalProfile"], 201)

    def test_taggedMangled(self):
        """
        A tagged profile whose signature is mangled is refused (401), and so
        is one tagged with another type (400).
        """
        alice = makePerson("alice")
        body = alice.personal.toDict()["SignedPersonalProfile"]
        self.create({"SignedPersonalProfile": ref.mangled(body)}, 401, contains="does not verify")
        self.create({"SignedDeviceProfile": body}, 400, contains="SignedDeviceProfile")
        self.create({"SignedPersonalProfile": body, "Identifier": alice.udf}, 400)


class _LooseRSASigner:
    """
    An RSA signer outside what L{pz.mesh.keys.KeyPair} accepts, to show the
    portal refusing its key.
    """

    def __init__(self, bits: int) -> None:
        from pz.mesh.keys import meshKeyFingerprint

        self.privateKey = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.udf = meshKeyFingerprint(self.privateKey)
        self.signatureAlgorithm = "RS256"

    def toJWK(self):
        return jwk.JWK.from_pyca(self.privateKey)


class RSAKeyTests(ReferenceTestBase):
    """
    Point 11: RSA keys in the reference's C{PublicKeyRSA} form, signed
    RS256 or RS512.
    """

    def test_publishedKeysKeepTheirUDFs(self):
        """
        The nine RSA keys the reference's examples publish whole (the
        verbatim device profile's three and the master profiles' six) are
        read, and each UDF is the fingerprint of its key.
        """
        device = fromJSON(ref.EXAMPLE_DEVICE_PROFILE, DeviceProfile)
        keys = [device.DeviceSignatureKey, device.DeviceAuthenticationKey,
                device.DeviceEncryptiontionKey]
        for udf, n in ref.EXAMPLE_RSA_MODULI.items():
            keys.append(PublicKey.fromDict({"PublicKey": {
                "UDF": udf,
                "PublicParameters": {"PublicKeyRSA": {"kid": udf, "n": n, "e": "\nAQAB"}},
            }}))
        self.assertEqual(len(keys), 9)
        for key in keys:
            self.assertEqual(key.PublicParameters.kty, "RSA")
            self.assertEqual(udfOf(key), key.UDF)
        self.assertEqual(device.Identifier, udfOf(device.DeviceSignatureKey))

    def test_publishedKeyAlteredRefused(self):
        """
        A published key whose modulus is changed no longer matches its UDF.
        """
        udf, n = next(iter(ref.EXAMPLE_RSA_MODULI.items()))
        altered = n.replace(n[5], "A" if n[5] != "A" else "B", 1)
        key = PublicKey.fromDict({"PublicKey": {
            "UDF": udf, "PublicParameters": {"PublicKeyRSA": {"kid": udf, "n": altered, "e": "AQAB"}},
        }})
        self.assertRaises(Exception, udfOf, key)

    def test_rs256AndRs512(self):
        """
        Device profiles with RSA keys in the reference's form, signed RS512
        and RS256, are published, and read back with C{kty} "RSA".
        """
        for index, alg in ((0, "RS512"), (3, "RS256")):
            signer = ref.rsaKey(index)
            payload = ref.rsaDevicePayload(signer, ref.rsaKey(1), ref.rsaKey(2))
            self.publish(ref.referenceSigned(payload, signer, "general", alg=alg))
            [item] = self.get(Identifier=signer.udf)["DataItems"]
            self.assertEqual(item["Entry"]["SignedDeviceProfile"]["Identifier"], signer.udf)

    def test_rsaRefusals(self):
        """
        A mangled RSA signature, an algorithm an RSA key does not allow, a
        key weaker than 2048 bits, and a PublicKeyRSA carrying C{kty} are
        refused.
        """
        signer = ref.rsaKey(0)
        payload = ref.rsaDevicePayload(signer, ref.rsaKey(1), ref.rsaKey(2))
        for form in ref.JWS_FORMS:
            self.publish(ref.mangled(ref.referenceSigned(payload, signer, form)), 401,
                         "does not verify")
        for alg in ("PS256", "HS256", "none", "ES256"):
            signed = ref.referenceSigned(payload, signer, "header")
            signed["SignedData"]["header"]["alg"] = alg
            self.publish(signed, 401, "not RS512 or RS256")
        weak = _LooseRSASigner(1024)
        weakPayload = ref.rsaDevicePayload(weak, ref.rsaKey(1), ref.rsaKey(2))
        self.publish(ref.referenceSigned(weakPayload, weak, "general"), 401, "1024 bits")
        tagged = json.loads(json.dumps(payload))
        tagged["DeviceProfile"]["DeviceSignatureKey"]["PublicParameters"]["PublicKeyRSA"]["kty"] = "EC"
        self.publish(ref.referenceSigned(tagged, signer, "general"), 400, "PublicKeyRSA")


class ReferenceSessionTests(ReferenceTestBase):
    """
    Points 9 to 12 together: a whole session in the reference's forms, RSA
    keys throughout, as its examples show it.
    """

    def test_session(self):
        """
        CreateAccount (tagged profile, reference JWS, RSA, line breaks,
        lower-case dates), Get by account, ConnectStart, ConnectPending,
        ConnectComplete (RS256) and ConnectStatus all succeed, and a
        second portal replays what was stored.
        """
        master, online, escrow = ref.rsaKey(4), ref.rsaKey(5), ref.rsaKey(6)
        laptop = [ref.rsaKey(0), ref.rsaKey(1), ref.rsaKey(2)]
        signedMaster = ref.referenceSigned({"MasterProfile": {
            "Identifier": master.udf,
            "Updated": "2016-09-20t12:00:00.1234567z",
            "MasterSignatureKey": ref.referenceKey(master),
            "MasterEscrowKeys": [ref.referenceKey(escrow)],
            "OnlineSignatureKeys": [ref.referenceKey(online)],
        }}, master)
        signedLaptop = ref.referenceSigned(ref.rsaDevicePayload(*laptop), laptop[0])
        signedPersonal = ref.referenceSigned({"PersonalProfile": {
            "Identifier": master.udf,
            "Names": [accountNameFingerprint("test@prismproof.org")],
            "Updated": "2016-09-20T13:00:00.5+01:00",
            "SignedMasterProfile": signedMaster,
            "Devices": [signedLaptop],
            "Applications": [],
        }}, online)
        self.assertAnswer(request("CreateRequest", {
            "Account": "test@prismproof.org",
            "Profile": {"SignedPersonalProfile": signedPersonal},
        }), 201, "CreateResponse")
        found = self.get(Account="test@prismproof.org", Multiple=False)["DataItems"]
        self.assertEqual(found[0]["Entry"]["SignedPersonalProfile"]["Identifier"], master.udf)

        tablet = [ref.rsaKey(7), ref.rsaKey(1), ref.rsaKey(2)]
        signedTablet = ref.referenceSigned(ref.rsaDevicePayload(*tablet), tablet[0])
        connection = {"ParentUDF": master.udf, "Device": signedTablet}
        self.assertAnswer(request("ConnectStartRequest", {
            "SignedRequest": ref.referenceSigned(
                {"ConnectionRequest": connection}, tablet[0], identifier=tablet[0].udf),
            "AccountID": "test@prismproof.org",
        }), 201, "ConnectStartResponse")
        _, pending = self.assertAnswer(
            ref.EXAMPLE_CONNECT_PENDING_REQUEST.encode(), 201, "ConnectPendingResponse")
        [waiting] = pending["ConnectPendingResponse"]["Pending"]
        self.assertEqual(waiting["Identifier"], tablet[0].udf)
        result = ref.referenceSigned({"ConnectionResult": dict(connection, Result="Accepted")},
                                     online, identifier=tablet[0].udf, alg="RS256")
        self.assertAnswer(request("ConnectCompleteRequest", {
            "Result": ref.mangled(result), "AccountID": "test@prismproof.org",
        }), 401, "ConnectCompleteResponse")
        self.assertAnswer(request("ConnectCompleteRequest", {
            "Result": result, "AccountID": "test@prismproof.org",
        }), 201, "ConnectCompleteResponse")
        status = ref.EXAMPLE_CONNECT_STATUS_REQUEST.replace(
            "MAYJZ-GSL37-5BUII-PA37T-SRIX4-M7ICM", tablet[0].udf)
        _, answer = self.assertAnswer(status.encode(), 201, "ConnectStatusResponse")
        self.assertEqual(answer["ConnectStatusResponse"]["Result"]["Identifier"], tablet[0].udf)

        # What was stored is this project's form, which a second portal
        # replays record by record (every signature checked again) to the
        # same checkpoint.
        mirror = PortalFixture(self)
        transfer = self.portal.service.dispatch(TransferRequest())
        self.assertIsNone(transfer.PageKey)
        for item in transfer.DataItems:
            mirror.service.replicate(item)
        self.assertEqual(mirror.store.head(), self.portal.store.head())

    def test_verbatimRequests(self):
        """
        The reference's unsigned example requests, verbatim, are read: the
        account name is checked, and the account they ask about is not
        found (not a 400).
        """
        self.assertAnswer(ref.EXAMPLE_VALIDATE_REQUEST.encode(), 201, "ValidateResponse")
        self.assertAnswer(ref.EXAMPLE_GET_REQUEST.encode(), 404, "GetResponse")
        self.assertAnswer(ref.EXAMPLE_CONNECT_PENDING_REQUEST.encode(), 404,
                          "ConnectPendingResponse")
        self.assertAnswer(ref.EXAMPLE_CONNECT_STATUS_REQUEST.encode(), 404,
                          "ConnectStatusResponse")


_JWE = {"recipients": [{"header": {"kid": "x"}}], "ciphertext": "MQ"}


class EscrowAndRecordsTests(ReferenceTestBase):
    """
    Point 12: escrow entries found by their own Identifier, GetRecords, and
    RFC 3339 date-times in every form.
    """

    def escrow(self, identifier: str, status: int = 201):
        body = request("PublishRequest", {"Entry": {"OfflineEscrowEntry": {
            "Identifier": identifier, "EncryptedData": _JWE}}})
        self.assertAnswer(body, status, "PublishResponse")

    def test_escrowByItsOwnIdentifier(self):
        """
        The reference's recovery asks for the escrow entry by its
        Identifier (the UDF of the key that encrypts it): Get finds it, and
        still finds it as C{Escrow-<Identifier>}.
        """
        identifier = "MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM"
        self.escrow(identifier)
        for asked in (identifier, "Escrow-" + identifier):
            [item] = self.get(Identifier=asked)["DataItems"]
            self.assertEqual(item["Entry"]["OfflineEscrowEntry"]["Identifier"], identifier)
        self.get(404, Identifier="MAAAA-AAAAA-AAAAA-AAAAA-AAAAA-AAAAA")

    def test_escrowNeverHidesAnEntry(self):
        """
        An escrow entry named after a published device profile does not
        hide it: Get of that Identifier returns the profile.
        """
        device = makeDevice("tablet")
        self.assertAnswer(request("PublishRequest", {"Entry": device.profile.toDict()}), 201,
                          "PublishResponse")
        self.escrow(device.udf)
        [item] = self.get(Identifier=device.udf)["DataItems"]
        self.assertIn("SignedDeviceProfile", item["Entry"])

    def test_getRecords(self):
        """
        GetRecords selects as Get does and returns the log records with
        their chain fields; its refusals are Get's.
        """
        alice = makePerson("alice")
        self.assertAnswer(request("CreateRequest", {
            "Account": "alice", "Profile": alice.personal.toDict()}), 201, "CreateResponse")
        records = self.get(tag="GetRecordsRequest", Account="alice", Multiple=True)["DataItems"]
        self.assertEqual(len(records), 2)
        for item in records:
            stored = self.portal.store.record(item["Sequence"])
            self.assertEqual(item["Hash"], stored.hash.hex())
            self.assertEqual(item["Previous"], stored.previous.hex())
        [one] = self.get(tag="GetRecordsRequest", Identifier=alice.udf)["DataItems"]
        self.assertIn("Hash", one)
        self.get(400, tag="GetRecordsRequest")
        self.get(404, tag="GetRecordsRequest", Account="nobody")

    def test_dateTimeForms(self):
        """
        A profile whose signed C{Updated} uses lower-case C{t} and C{z} and
        nine fraction digits is published; a Get bounded with an offset
        date-time finds it; a date that is not RFC 3339 is 400.
        """
        keys = DeviceKeys.generate()
        payload = devicePayload(keys)
        payload["DeviceProfile"]["Updated"] = "2016-09-20t12:00:00.123456789z"
        self.publish(ref.referenceSigned(payload, keys.signature, "general"))
        [item] = self.get(Identifier=keys.identifier, SearchConstraints={
            "NotBefore": "2016-09-20t00:00:00-00:00", "Before": "2099-01-01T01:00:00.0+01:00",
        }, Multiple=True)["DataItems"]
        self.assertTrue(item["Published"].endswith("Z"))
        payload["DeviceProfile"]["Updated"] = "2016-09-20 12:00:00Z"
        self.publish(ref.referenceSigned(payload, keys.signature, "general"), 400, "RFC 3339")


class ReferenceFixtureTests(SynchronousTestCase):
    """
    The test helpers write what they claim to.
    """

    def test_wrap(self):
        """
        Lines of 64 characters after a leading line break.
        """
        text = ref.wrap(bytes(100))
        self.assertTrue(text.startswith("\n"))
        self.assertEqual([len(line) for line in text.split("\n")[1:]], [64, 64, 6])
