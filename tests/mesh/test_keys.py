"""
Tests for L{pz.mesh.keys}: key generation, UDF naming and conversions.
"""

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.errors import MeshKeyError
from pz.mesh.keys import (
    KeyPair,
    curveOf,
    generateEncryptionKey,
    generateSignatureKey,
    meshKeyFingerprint,
    publicKeyFrom,
    signatureAlgorithmOf,
    signatureAlgorithmsOf,
    toCryptography,
    toJWK,
    udfOf,
)
from pz.mesh.model import Key, PublicKey
from pz.udf import KEYINFO_TYPE, fingerprint, key_fingerprint

from tests.mesh.reference import rsaKey

ALL_KEYS = [
    ("Ed25519", generateSignatureKey),
    ("P-256", generateSignatureKey),
    ("X25519", generateEncryptionKey),
    ("P-256", generateEncryptionKey),
]


class KeyPairTests(SynchronousTestCase):
    """
    L{KeyPair}: the keys this process holds.
    """

    def test_generate(self):
        """
        Each supported curve generates a key whose UDF is the zone's
        C{pz.udf.key_fingerprint} of its public key.
        """
        for curve, generate in ALL_KEYS:
            pair = generate(curve)
            self.assertEqual(pair.curve, curve)
            self.assertEqual(pair.udf, key_fingerprint(pair.privateKey.public_key()))
            self.assertRegex(pair.udf, r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")

    def test_unsupportedCurves(self):
        """
        Signature keys are Ed25519 or P-256; encryption keys X25519 or P-256.
        """
        self.assertRaises(MeshKeyError, generateSignatureKey, "X25519")
        self.assertRaises(MeshKeyError, generateEncryptionKey, "Ed25519")
        self.assertRaises(MeshKeyError, KeyPair, ec.generate_private_key(ec.SECP384R1()))
        self.assertRaises(MeshKeyError, KeyPair, "not a key")

    def test_signatureAlgorithm(self):
        """
        Ed25519 signs with EdDSA, P-256 with ES256, X25519 not at all.
        """
        self.assertEqual(generateSignatureKey().signatureAlgorithm, "EdDSA")
        self.assertEqual(generateSignatureKey("P-256").signatureAlgorithm, "ES256")
        self.assertRaises(MeshKeyError, lambda: generateEncryptionKey().signatureAlgorithm)

    def test_privateRoundTrip(self):
        """
        A key's private parameters load back into the same key, through JSON.
        """
        for curve, generate in ALL_KEYS:
            pair = generate(curve)
            private = Key.fromJSON(pair.privateParameters().toJSON())
            self.assertEqual(private.kid, pair.udf)
            self.assertEqual(KeyPair.fromKey(private).udf, pair.udf)

    def test_fromKeyRefusals(self):
        """
        Loading refuses a key without C{d}, a C{d} that does not belong to
        the public parameters or C{kid}, and unsupported types.
        """
        pair, other = generateSignatureKey(), generateSignatureKey()
        private = pair.privateParameters()
        self.assertRaises(MeshKeyError, KeyPair.fromKey, attrs.evolve(private, d=None))
        self.assertRaises(
            MeshKeyError,
            KeyPair.fromKey,
            attrs.evolve(private, x=other.publicKey().PublicParameters.x),
        )
        self.assertRaises(MeshKeyError, KeyPair.fromKey, attrs.evolve(private, kid=other.udf))
        self.assertRaises(MeshKeyError, KeyPair.fromKey, attrs.evolve(private, d=b"short"))
        self.assertRaises(MeshKeyError, KeyPair.fromKey, Key(kty="RSA", d=b"x"))
        self.assertRaises(
            MeshKeyError,
            KeyPair.fromKey,
            attrs.evolve(generateSignatureKey("P-256").privateParameters(), d=b"\x00" * 32),
        )
        self.assertRaises(MeshKeyError, KeyPair.fromKey, pair.publicKey())


class PublicKeyTests(SynchronousTestCase):
    """
    L{PublicKey} checks: a UDF is only believed when it is the key's own.
    """

    def test_publicKey(self):
        """
        A public key carries its UDF, names itself by it in the JWK, holds no
        private part, survives JSON, and converts to cryptography and
        jwcrypto keys with the same fingerprint.
        """
        for curve, generate in ALL_KEYS:
            pair = generate(curve)
            public = PublicKey.fromJSON(pair.publicKey().toJSON())
            self.assertEqual(public.UDF, pair.udf)
            self.assertEqual(public.PublicParameters.kid, pair.udf)
            self.assertIsNone(public.PublicParameters.d)
            self.assertEqual(udfOf(public), pair.udf)
            self.assertEqual(curveOf(public), curve)
            self.assertEqual(key_fingerprint(toCryptography(public)), pair.udf)
            self.assertFalse(toJWK(public).has_private)
            self.assertEqual(publicKeyFrom(pair.privateKey.public_key()), public)

    def test_wrongUDF(self):
        """
        A PublicKey whose UDF is not its parameters' fingerprint is refused:
        otherwise one key could be passed off under another's name.
        """
        pair, other = generateSignatureKey(), generateSignatureKey()
        forged = attrs.evolve(
            pair.publicKey(),
            UDF=other.udf,
            PublicParameters=attrs.evolve(pair.publicKey().PublicParameters, kid=None),
        )
        error = self.assertRaises(MeshKeyError, udfOf, forged)
        self.assertIn("not the fingerprint", error.message)
        mislabelled = attrs.evolve(
            pair.publicKey(),
            PublicParameters=attrs.evolve(pair.publicKey().PublicParameters, kid=other.udf),
        )
        self.assertRaises(MeshKeyError, udfOf, mislabelled)

    def test_missingParts(self):
        """
        A PublicKey without parameters or without a UDF cannot be used.
        """
        pair = generateSignatureKey()
        self.assertRaises(MeshKeyError, udfOf, PublicKey(UDF=pair.udf))
        self.assertRaises(MeshKeyError, udfOf, attrs.evolve(pair.publicKey(), UDF=None))
        self.assertRaises(MeshKeyError, udfOf, pair.privateParameters())

    def test_privatePartRefused(self):
        """
        A PublicKey whose JWK includes C{d} is refused, so a private key is
        never published by mistake as if it were public.
        """
        pair = generateSignatureKey()
        leaky = attrs.evolve(pair.publicKey(), PublicParameters=pair.privateParameters())
        error = self.assertRaises(MeshKeyError, udfOf, leaky)
        self.assertIn("private", error.message)

    def test_unsupportedParameters(self):
        """
        Unsupported key types, curves, lengths and off-curve points are
        refused.
        """
        good = generateSignatureKey("P-256").publicKey().PublicParameters
        okp = generateSignatureKey().publicKey().PublicParameters
        for parameters in [
            Key(kty="RSA"),
            Key(kty="OKP", crv="Ed448", x=b"\x00" * 57),
            Key(kty="EC", crv="P-384", x=b"\x00" * 48, y=b"\x00" * 48),
            attrs.evolve(okp, x=b"\x01" * 31),
            attrs.evolve(okp, y=b"\x01" * 32),
            attrs.evolve(good, y=None),
            attrs.evolve(good, y=b"\x01" * 31),
            attrs.evolve(good, y=bytes(32 - 1) + b"\x05"),
        ]:
            self.assertRaises(
                MeshKeyError,
                udfOf,
                PublicKey(UDF="x", PublicParameters=attrs.evolve(parameters, kid=None)),
            )

    def test_signatureAlgorithmOf(self):
        """
        The JWS algorithm follows from the public key's curve.
        """
        self.assertEqual(signatureAlgorithmOf(generateSignatureKey().publicKey()), "EdDSA")
        self.assertEqual(signatureAlgorithmOf(generateSignatureKey("P-256").publicKey()), "ES256")
        self.assertRaises(MeshKeyError, signatureAlgorithmOf, generateEncryptionKey().publicKey())

    def test_rsaPublicKeyFrom(self):
        """
        Describing an RSA key weaker than 2048 bits is refused.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        self.assertRaises(MeshKeyError, publicKeyFrom, key)


class RSAKeyTests(SynchronousTestCase):
    """
    RSA public keys, as the Mesh reference implementation uses them.
    """

    def test_rsaKeyPair(self):
        """
        An RSA key signs RS512 (RS256 also verifies), is described as a JWK
        with C{n} and C{e}, and is named by the reference's UDF: over its
        PKCS #1 encoding, not its SubjectPublicKeyInfo.
        """
        pair = rsaKey(0)
        self.assertEqual((pair.curve, pair.signatureAlgorithm), ("RSA", "RS512"))
        public = pair.publicKey()
        self.assertEqual(public.PublicParameters.kty, "RSA")
        self.assertEqual(public.PublicParameters.e, b"\x01\x00\x01")
        der = pair.privateKey.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        self.assertEqual(udfOf(public), fingerprint(KEYINFO_TYPE, der))
        self.assertEqual(pair.udf, meshKeyFingerprint(pair.privateKey))
        self.assertNotEqual(pair.udf, key_fingerprint(pair.privateKey))
        self.assertEqual(curveOf(public), "RSA")
        self.assertEqual(signatureAlgorithmsOf(public), ("RS512", "RS256"))
        self.assertRaises(MeshKeyError, pair.privateParameters)

    def test_rsaRefused(self):
        """
        RSA parameters mixed with elliptic-curve ones, missing, not a valid
        key, or too large are refused.
        """
        good = rsaKey(0).publicKey().PublicParameters
        for parameters, fragment in [
            (attrs.evolve(good, crv="P-256"), "no 'crv'"),
            (attrs.evolve(good, x=b"\x01" * 32), "no 'crv'"),
            (attrs.evolve(good, n=None), "needs 'n' and 'e'"),
            (attrs.evolve(good, e=b"\x02"), "not a valid RSA"),
            (attrs.evolve(good, n=b"\xff" * 1030), "too large"),
            (attrs.evolve(good, e=b"\x01" * 9), "too large"),
            (attrs.evolve(good, n=good.n[:128]), "1024 bits"),
        ]:
            error = self.assertRaises(
                MeshKeyError, udfOf,
                PublicKey(UDF="x", PublicParameters=attrs.evolve(parameters, kid=None)))
            self.assertIn(fragment, error.message)
