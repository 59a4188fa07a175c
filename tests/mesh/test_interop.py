"""
Interoperability of our JWS with a second, independent JOSE implementation,
C{josepy}: a signature made by L{pz.mesh.signing} verifies there, and one made
there verifies here, including as a whole signed Mesh profile.

C{josepy} implements ES256 but not EdDSA, so these tests use P-256 keys,
which the Mesh code supports for signatures alongside Ed25519. C{josepy} is
a test dependency (C{setup.cfg}, extra C{test}); these tests fail rather
than skip without it, since skipping would silently drop the evidence.
"""

import json

import attrs
import josepy
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import DeviceKeys
from pz.mesh.errors import MeshSignatureError
from pz.mesh.keys import generateSignatureKey, toCryptography
from pz.mesh.model import JoseWebSignature, SignedDeviceProfile
from pz.mesh.schema import decode, encode
from pz.mesh.signing import sign, signData, signPayload, verifyDeviceProfile, verifyPayload

from .world import T0


def josepyKey(publicKey):
    """
    Our L{PublicKey} as a josepy EC JWK, built from the key material alone.
    """
    return josepy.JWKEC(key=toCryptography(publicKey))


def josepySign(payload, keyPair, **extra):
    """
    Sign C{payload} with josepy (ES256, C{alg} and C{kid} protected, C{kid}
    the key's UDF, as the Mesh requires) and return its General JSON
    Serialization as a dict.
    """
    token = josepy.JWS.sign(
        payload,
        key=josepy.JWKEC(key=keyPair.privateKey),
        alg=josepy.ES256,
        protect=frozenset(["alg", "kid"]),
        kid=keyPair.udf,
        **extra,
    )
    return json.loads(json.dumps(token.to_partial_json(flat=False), default=lambda o: o.to_json()))


class OursVerifiedByJosepyTests(SynchronousTestCase):
    """
    JWS made by L{pz.mesh.signing} verifies with josepy.
    """

    def setUp(self):
        self.key = generateSignatureKey("P-256")

    def test_generalJSON(self):
        """
        Our General JSON Serialization, as it appears inside a signed
        profile, parses and verifies in josepy with our public key, and
        josepy sees the same payload and the UDF as C{kid}.
        """
        signed = sign(DeviceKeys.generate("P-256").profile(updated=T0), self.key)
        wire = encode(signed.SignedData)["JoseWebSignature"]
        token = josepy.JWS.from_json(wire)
        self.assertTrue(token.verify(josepyKey(self.key.publicKey())))
        self.assertEqual(token.payload, signed.SignedData.payload)
        self.assertEqual(token.signature.combined.kid, self.key.udf)

    def test_compact(self):
        """
        Our compact serialization (the SignedData container) verifies in
        josepy.
        """
        compact = signData(b"compact payload", self.key).Data
        token = josepy.JWS.from_compact(compact)
        self.assertTrue(token.verify(josepyKey(self.key.publicKey())))
        self.assertEqual(token.payload, b"compact payload")

    def test_josepyRefusesTampering(self):
        """
        josepy also rejects our signature over a changed payload, and with
        another key: it is really checking.
        """
        wire = encode(signPayload(b"payload", self.key))["JoseWebSignature"]
        tampered = josepy.JWS.from_json({**wire, "payload": "cGF5bG9hZQ"})
        self.assertFalse(tampered.verify(josepyKey(self.key.publicKey())))
        other = generateSignatureKey("P-256")
        self.assertFalse(josepy.JWS.from_json(wire).verify(josepyKey(other.publicKey())))


class JosepyVerifiedByOursTests(SynchronousTestCase):
    """
    JWS made by josepy verifies with L{pz.mesh.signing}.
    """

    def setUp(self):
        self.key = generateSignatureKey("P-256")

    def test_payload(self):
        """
        A josepy JWS, decoded as our JoseWebSignature, verifies with our
        code against the signer's PublicKey.
        """
        wire = josepySign(b"from josepy", self.key, include_jwk=False)
        token = decode({"JoseWebSignature": wire})
        self.assertEqual(verifyPayload(token, [self.key.publicKey()])[0], b"from josepy")

    def test_unprotectedJWKHeader(self):
        """
        josepy's default puts the public JWK in the unprotected header; we
        accept the signature and do not use that key for anything.
        """
        wire = josepySign(b"with jwk", self.key)
        self.assertIn("jwk", wire["signatures"][0]["header"])
        token = decode({"JoseWebSignature": wire})
        self.assertEqual(verifyPayload(token, [self.key.publicKey()])[0], b"with jwk")
        self.assertRaises(
            MeshSignatureError, verifyPayload, token, [generateSignatureKey("P-256").publicKey()]
        )

    def test_deviceProfile(self):
        """
        A device profile signed by josepy with the device's own P-256 key is
        a SignedDeviceProfile that our rules accept, and refuse once tampered.
        """
        device = DeviceKeys.generate("P-256", "P-256")
        profile = device.profile(updated=T0, description="signed by josepy")
        wire = josepySign(profile.toJSON(), device.signature, include_jwk=False)
        signed = SignedDeviceProfile(
            Identifier=device.identifier, SignedData=decode({"JoseWebSignature": wire})
        )
        self.assertEqual(verifyDeviceProfile(signed), profile)
        tampered = attrs.evolve(
            signed,
            SignedData=attrs.evolve(
                signed.SignedData,
                payload=attrs.evolve(profile, Description="changed").toJSON(),
            ),
        )
        self.assertRaises(MeshSignatureError, verifyDeviceProfile, tampered)

    def test_josepyCompact(self):
        """
        A josepy compact JWS converts to our structure and verifies.
        """
        token = josepy.JWS.sign(
            b"compact",
            key=josepy.JWKEC(key=self.key.privateKey),
            alg=josepy.ES256,
            include_jwk=False,
            protect=frozenset(["alg", "kid"]),
            kid=self.key.udf,
        )
        protected, payload, signature = token.to_compact().decode().split(".")
        ours = decode(
            {
                "JoseWebSignature": {
                    "payload": payload,
                    "signatures": [{"protected": protected, "signature": signature}],
                }
            }
        )
        self.assertIsInstance(ours, JoseWebSignature)
        self.assertEqual(verifyPayload(ours, [self.key.publicKey()])[0], b"compact")
