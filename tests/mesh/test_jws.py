"""
Tests for the JWS check in L{pz.mesh.signing.verifyPayload}: each accepted
algorithm verifies a signature made outside this code (with C{cryptography}
alone, as another implementation would) and refuses it once mangled, and the
JOSE Header rules beyond C{kid} and C{alg} hold.
"""

import json

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.errors import MeshKeyError, MeshSignatureError
from pz.mesh.keys import KeyPair, generateSignatureKey, udfOf, verificationKeyOf
from pz.mesh.model import JoseSignature, JoseWebSignature
from pz.mesh.schema import encodeBinary
from pz.mesh.signing import signPayload, verifyPayload

from .reference import rsaKey
from .test_signing import RefusalMixin

PAYLOAD = b'{"DeviceProfile":{"Identifier":"MB"}}'


def rawSignature(pair: KeyPair, alg: str, data: bytes) -> bytes:
    """
    C{pair}'s JWS signature under C{alg} over C{data}, made with
    C{cryptography} directly (ECDSA as C{r || s}, RFC 7518 section 3.4).
    """
    private = pair.privateKey
    if alg == "EdDSA":
        return private.sign(data)
    if alg == "ES256":
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    digest = {"RS256": hashes.SHA256(), "RS512": hashes.SHA512()}[alg]
    return private.sign(data, padding.PKCS1v15(), digest)


def signedToken(pair: KeyPair, alg: str, protected: bytes | None, header: dict | None = None,
                payload: bytes = PAYLOAD) -> JoseWebSignature:
    """
    A one-signature JWS over C{payload} with these headers, signed over the
    JWS Signing Input (RFC 7515 section 5.2).
    """
    head = "" if protected is None else encodeBinary(protected)
    signature = rawSignature(pair, alg, f"{head}.{encodeBinary(payload)}".encode("ascii"))
    return JoseWebSignature(
        payload=payload,
        signatures=(JoseSignature(protected=protected, header=header, signature=signature),),
    )


def withSignature(token: JoseWebSignature, signature: bytes) -> JoseWebSignature:
    [entry] = token.signatures
    return JoseWebSignature(
        payload=token.payload,
        signatures=(JoseSignature(protected=entry.protected, header=entry.header,
                                  signature=signature),),
    )


def mangled(signature: bytes) -> list:
    """
    Ways of breaking a signature: a bit flipped at either end or in the
    middle, a byte cut off or added, all zero, empty.
    """
    middle = len(signature) // 2
    return [
        bytes([signature[0] ^ 1]) + signature[1:],
        signature[:middle] + bytes([signature[middle] ^ 0x80]) + signature[middle + 1:],
        signature[:-1] + bytes([signature[-1] ^ 1]),
        signature[:-1],
        signature + b"\x00",
        b"\x00" + signature,
        bytes(len(signature)),
        b"",
    ]


class AlgorithmTests(RefusalMixin, SynchronousTestCase):
    """
    Every JWS algorithm a Mesh key may sign with verifies with the key's
    type and refuses every mangled signature.
    """

    def keys(self):
        rsa = rsaKey(0)
        return [
            (generateSignatureKey("Ed25519"), "EdDSA"),
            (generateSignatureKey("P-256"), "ES256"),
            (rsa, "RS256"),
            (rsa, "RS512"),
        ]

    def test_madeElsewhereVerifies(self):
        """
        A signature made with C{cryptography} alone verifies, with C{kid}
        protected or unprotected; so does one C{signPayload} makes (with
        C{jwcrypto}).
        """
        for pair, alg in self.keys():
            protected = json.dumps({"alg": alg, "kid": pair.udf}).encode()
            for token in [
                signedToken(pair, alg, protected),
                signedToken(pair, alg, json.dumps({"alg": alg}).encode(), {"kid": pair.udf}),
                signedToken(pair, alg, None, {"alg": alg, "kid": pair.udf}),
            ]:
                self.assertEqual(verifyPayload(token, [pair.publicKey()])[0], PAYLOAD)
        for curve in ["Ed25519", "P-256"]:
            pair = generateSignatureKey(curve)
            self.assertEqual(
                verifyPayload(signPayload(PAYLOAD, pair), [pair.publicKey()])[0], PAYLOAD
            )

    def test_mangledSignatureRefused(self):
        """
        Each way of mangling the signature makes it fail, for each
        algorithm.
        """
        for pair, alg in self.keys():
            protected = json.dumps({"alg": alg, "kid": pair.udf}).encode()
            token = signedToken(pair, alg, protected)
            for bad in mangled(token.signatures[0].signature):
                self.assertRefused(
                    "does not verify", verifyPayload, withSignature(token, bad),
                    [pair.publicKey()],
                )

    def test_otherPayloadOrHeaderRefused(self):
        """
        The signature covers the payload and the protected header: a
        signature over another payload, or moved under another protected
        header, fails.
        """
        for pair, alg in self.keys():
            protected = json.dumps({"alg": alg, "kid": pair.udf}).encode()
            other = signedToken(pair, alg, protected, payload=PAYLOAD + b" ")
            token = signedToken(pair, alg, protected)
            self.assertRefused(
                "does not verify", verifyPayload,
                withSignature(token, other.signatures[0].signature), [pair.publicKey()],
            )
            moved = signedToken(pair, alg, None, {"alg": alg, "kid": pair.udf})
            self.assertRefused(
                "does not verify", verifyPayload,
                withSignature(token, moved.signatures[0].signature), [pair.publicKey()],
            )

    def test_ecdsaOnlyRawForm(self):
        """
        An ES256 signature is the 64 bytes C{r || s}: the same signature as
        DER, or with C{r} and C{s} padded to 33 bytes each, is refused.
        """
        pair = generateSignatureKey("P-256")
        protected = json.dumps({"alg": "ES256", "kid": pair.udf}).encode()
        data = f"{encodeBinary(protected)}.{encodeBinary(PAYLOAD)}".encode("ascii")
        der = pair.privateKey.sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        token = signedToken(pair, "ES256", protected)
        for bad in [der, r.to_bytes(33, "big") + s.to_bytes(33, "big")]:
            self.assertRefused(
                "does not verify", verifyPayload, withSignature(token, bad), [pair.publicKey()]
            )


class HeaderRuleTests(RefusalMixin, SynchronousTestCase):
    """
    The JOSE Header rules beyond C{kid} and C{alg}: C{crit} (RFC 7515
    section 4.1.11) and C{b64} (RFC 7797), each refused when broken even
    though the signature itself is good.
    """

    def setUp(self):
        self.pair = generateSignatureKey()

    def check(self, protected, header=None):
        token = signedToken(self.pair, "EdDSA", protected, header)
        return verifyPayload(token, [self.pair.publicKey()])

    def refused(self, protected, header=None):
        self.assertRefused("does not verify", self.check, protected, header)

    def header(self, **extra):
        return json.dumps({"alg": "EdDSA", "kid": self.pair.udf, **extra}).encode()

    def test_understoodCriticalAccepted(self):
        """
        C{crit} naming understood parameters that are present is accepted.
        """
        self.assertEqual(self.check(self.header(crit=["b64"], b64=True))[0], PAYLOAD)
        self.assertEqual(
            self.check(self.header(crit=["typ"]), {"typ": "JWS"})[0], PAYLOAD
        )

    def test_unknownCriticalRefused(self):
        """
        C{crit} naming a parameter this code does not understand, one that
        is absent, or not a list of names, is refused.
        """
        self.refused(self.header(crit=["exp"], exp=1))
        self.refused(self.header(crit=["jku"], jku="https://example.com/"))
        self.refused(self.header(crit=["typ"]))
        self.refused(self.header(crit="b64", b64=True))
        self.refused(self.header(crit=[{"b64": True}], b64=True))

    def test_mustBeProtected(self):
        """
        C{crit} and C{b64} in the unprotected header are refused.
        """
        self.refused(self.header(), {"crit": ["typ"], "typ": "JWS"})
        self.refused(self.header(), {"b64": True})

    def test_b64Boolean(self):
        """
        C{b64} must be a boolean.
        """
        self.refused(self.header(b64="false"))

    def test_protectedStrictJSON(self):
        """
        A protected header with a raw control character inside a string is
        not strict JSON, and is refused.
        """
        self.refused(b'{"alg":"EdDSA","kid":"' + self.pair.udf.encode() + b'","typ":"a\nb"}')


class ParsedKeyCacheTests(SynchronousTestCase):
    """
    Parsed keys are kept (L{pz.mesh.keys.verificationKeyOf}), but a kept
    key never lends its name: the UDF a L{PublicKey} claims is checked
    every time.
    """

    def test_claimedNameCheckedEveryTime(self):
        """
        Once a key has been used under its own UDF, the same parameters
        claiming another UDF, or another C{kid}, are still refused.
        """
        pair, other = generateSignatureKey(), generateSignatureKey()
        public = pair.publicKey()
        self.assertEqual(verificationKeyOf(public)[0], pair.udf)
        borrowed = attrs.evolve(public, UDF=other.udf)
        self.assertRaises(MeshKeyError, udfOf, borrowed)
        self.assertRaises(MeshKeyError, verificationKeyOf, borrowed)
        wrongKid = attrs.evolve(
            public, PublicParameters=attrs.evolve(public.PublicParameters, kid=other.udf)
        )
        self.assertRaises(MeshKeyError, udfOf, wrongKid)
        token = signPayload(PAYLOAD, pair)
        self.assertRaises(MeshSignatureError, verifyPayload, token, [borrowed])
