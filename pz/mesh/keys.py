# -*- test-case-name: tests.mesh.test_keys -*-
"""
Mesh keys: making them, naming them by UDF, and converting between the
draft's L{PublicKey}, C{cryptography} keys and C{jwcrypto} JWKs.

A key's name is its UDF: C{pz.udf.key_fingerprint} over its DER
SubjectPublicKeyInfo, the same fingerprint the rest of the zone shows people
(docs/zone-spine.md, "Identities"). Wherever a PublicKey is used to check a
signature or to encrypt, L{udfOf} first recomputes that fingerprint from the key's
parameters and refuses a PublicKey whose C{UDF} says otherwise: otherwise a
profile could list someone else's UDF beside its own key and borrow their
identity.

Supported keys:
    - signature keys: Ed25519 (the default, JWS C{EdDSA}) or P-256
      (JWS C{ES256});
    - encryption keys: X25519 (the default) or P-256, used with JWE
      C{ECDH-ES+A256KW};
    - RSA public keys of 2048 to 8192 bits, as the Mesh reference
      implementation makes them, read and checked to verify its signatures
      (JWS C{RS256} or C{RS512}). Their UDF is the reference's: the
      fingerprint of the PKCS #1 C{RSAPublicKey} DER under the same content
      type (the published examples' RSA key UDFs are computed so). This
      code signs with RSA only in tests and never encrypts to RSA keys.
"""

from __future__ import annotations

import functools
from typing import Union

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from jwcrypto import jwk

from pz.mesh.errors import MeshKeyError, withArticle
from pz.mesh.model import Key, PublicKey
from pz.udf import KEYINFO_TYPE, fingerprint, key_fingerprint

__all__ = [
    "SIGNATURE_CURVES",
    "ENCRYPTION_CURVES",
    "KeyPair",
    "generateSignatureKey",
    "generateEncryptionKey",
    "publicKeyFrom",
    "udfOf",
    "curveOf",
    "signatureAlgorithmOf",
    "signatureAlgorithmsOf",
    "verificationKeyOf",
    "meshKeyFingerprint",
    "toCryptography",
    "toJWK",
]

#: Curves a signature key may use, the default first.
SIGNATURE_CURVES = ("Ed25519", "P-256")

#: Curves an encryption key may use, the default first.
ENCRYPTION_CURVES = ("X25519", "P-256")

#: The JWS algorithms a signature by each key type may use, the one this
#: code signs with first.
_JWS_ALGORITHMS = {"Ed25519": ("EdDSA",), "P-256": ("ES256",), "RSA": ("RS512", "RS256")}
_P256_BYTES = 32

#: RSA moduli accepted, in bits: no weaker than 2048, no larger than
#: verifying can afford.
RSA_MINIMUM_BITS = 2048
RSA_MAXIMUM_BITS = 8192

#: How many parsed public keys L{_parsedPublic} keeps.
_PARSED_KEYS = 512

PublicKeyObject = Union[
    ed25519.Ed25519PublicKey, x25519.X25519PublicKey, ec.EllipticCurvePublicKey, rsa.RSAPublicKey
]
PrivateKeyObject = Union[
    ed25519.Ed25519PrivateKey, x25519.X25519PrivateKey, ec.EllipticCurvePrivateKey,
    rsa.RSAPrivateKey,
]


def meshKeyFingerprint(key: PublicKeyObject | PrivateKeyObject) -> str:
    """
    The UDF of a key as the Mesh names it: C{pz.udf.key_fingerprint} (over
    the DER SubjectPublicKeyInfo) for the elliptic-curve keys, and for an
    RSA key the reference implementation's, over the PKCS #1
    C{RSAPublicKey} DER, so that its published RSA keys keep their names.
    """
    if hasattr(key, "public_key"):
        key = key.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
        return fingerprint(KEYINFO_TYPE, der)
    return key_fingerprint(key)


def _unsignedBytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _curveOfObject(key: object) -> str:
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "Ed25519"
    if isinstance(key, (x25519.X25519PublicKey, x25519.X25519PrivateKey)):
        return "X25519"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if isinstance(key.curve, ec.SECP256R1):
            return "P-256"
        raise MeshKeyError(f"unsupported elliptic curve {key.curve.name}")
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        if not RSA_MINIMUM_BITS <= key.key_size <= RSA_MAXIMUM_BITS:
            raise MeshKeyError(
                f"an RSA key of {key.key_size} bits is refused "
                f"({RSA_MINIMUM_BITS} to {RSA_MAXIMUM_BITS} bits are accepted)"
            )
        return "RSA"
    raise MeshKeyError(f"unsupported key type {type(key).__name__}")


def _rawPublic(key: PublicKeyObject) -> dict:
    curve = _curveOfObject(key)
    if curve == "RSA":
        numbers = key.public_numbers()  # type: ignore[union-attr]
        return {"kty": "RSA", "n": _unsignedBytes(numbers.n), "e": _unsignedBytes(numbers.e)}
    if curve == "P-256":
        numbers = key.public_numbers()  # type: ignore[union-attr]
        return {
            "kty": "EC",
            "crv": curve,
            "x": numbers.x.to_bytes(_P256_BYTES, "big"),
            "y": numbers.y.to_bytes(_P256_BYTES, "big"),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": curve, "x": raw}


def _parametersToPublic(key: Key, where: str) -> PublicKeyObject:
    """
    Build the C{cryptography} public key a JWK describes, refusing types,
    curves and point encodings this code does not support.
    """
    try:
        if key.kty == "RSA":
            if key.crv is not None or key.x is not None or key.y is not None:
                raise MeshKeyError(f"{where}: an RSA key has no 'crv', 'x' or 'y'")
            if not key.n or not key.e:
                raise MeshKeyError(f"{where}: an RSA key needs 'n' and 'e'")
            if len(key.n) > RSA_MAXIMUM_BITS // 8 + 1 or len(key.e) > 8:
                raise MeshKeyError(f"{where}: the RSA key is too large")
            try:
                public = rsa.RSAPublicNumbers(
                    int.from_bytes(key.e, "big"), int.from_bytes(key.n, "big")
                ).public_key()
            except ValueError:
                raise MeshKeyError(f"{where}: not a valid RSA public key") from None
            try:
                _curveOfObject(public)
            except MeshKeyError as error:
                raise MeshKeyError(f"{where}: {error.message}") from None
            return public
        if key.kty == "OKP" and key.crv in ("Ed25519", "X25519"):
            if key.y is not None:
                raise MeshKeyError(f"{where}: an OKP key has no 'y'")
            if key.x is None or len(key.x) != 32:
                raise MeshKeyError(f"{where}: {key.crv} 'x' must be 32 bytes")
            if key.crv == "Ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(key.x)
            return x25519.X25519PublicKey.from_public_bytes(key.x)
        if key.kty == "EC" and key.crv == "P-256":
            if key.x is None or key.y is None:
                raise MeshKeyError(f"{where}: a P-256 key needs 'x' and 'y'")
            if len(key.x) != _P256_BYTES or len(key.y) != _P256_BYTES:
                raise MeshKeyError(f"{where}: P-256 coordinates must be 32 bytes")
            numbers = ec.EllipticCurvePublicNumbers(
                int.from_bytes(key.x, "big"), int.from_bytes(key.y, "big"), ec.SECP256R1()
            )
            return numbers.public_key()
    except MeshKeyError:
        raise
    except ValueError:
        raise MeshKeyError(f"{where}: the point is not on the curve") from None
    raise MeshKeyError(
        f"{where}: unsupported key kty={key.kty!r} crv={key.crv!r} "
        "(supported: OKP Ed25519, OKP X25519, EC P-256, RSA)"
    )


def toCryptography(publicKey: PublicKey) -> PublicKeyObject:
    """
    Return the C{cryptography} public key a L{PublicKey} describes, after
    checking its UDF (see L{udfOf}).

    @raise MeshKeyError: if the key is absent, unsupported, carries private
        parameters, or its UDF does not match.
    """
    udfOf(publicKey)
    public, _, _ = _parsedPublic(publicKey.PublicParameters)
    return public


@functools.lru_cache(maxsize=_PARSED_KEYS)
def _parsedPublic(parameters: Key) -> tuple[PublicKeyObject, str, str]:
    """
    The C{cryptography} key that public C{parameters} describe, its UDF
    (L{meshKeyFingerprint}) and its curve (L{_curveOfObject}).

    Checking one signature used to parse the same key and hash its DER four
    times (its profile's Identifier, the signer lookup, the algorithms, the
    JWK); a portal checks thousands. This is a pure function of an
    immutable L{Key}, so the last few hundred answers are kept: a bounded
    cache, keyed by the whole key (not by a name it claims), that never
    changes a result. A key that is refused raises every time (exceptions
    are not cached).

    @raise MeshKeyError: as L{_parametersToPublic}.
    """
    public = _parametersToPublic(parameters, "PublicKey.PublicParameters")
    return public, meshKeyFingerprint(public), _curveOfObject(public)


def udfOf(publicKey: PublicKey) -> str:
    """
    Return the UDF of a L{PublicKey}, having checked that it is the
    fingerprint of the key's own parameters (and that the JWK's C{kid}, if
    any, agrees).

    @raise MeshKeyError: if C{PublicParameters} or C{UDF} is absent, the
        parameters include the private C{d}, or a name does not match.
    """
    if not isinstance(publicKey, PublicKey):
        raise MeshKeyError(f"expected a PublicKey, got {type(publicKey).__name__}")
    parameters = publicKey.PublicParameters
    if parameters is None:
        raise MeshKeyError("PublicKey has no PublicParameters")
    if parameters.d is not None:
        raise MeshKeyError("PublicKey.PublicParameters contains a private key ('d')")
    _, actual, _ = _parsedPublic(parameters)
    if publicKey.UDF is None:
        raise MeshKeyError("PublicKey has no UDF")
    if publicKey.UDF != actual:
        raise MeshKeyError(
            f"PublicKey UDF {publicKey.UDF} is not the fingerprint of its parameters ({actual})"
        )
    if parameters.kid is not None and parameters.kid != actual:
        raise MeshKeyError(f"PublicKey kid {parameters.kid} does not match its UDF {actual}")
    return actual


def curveOf(publicKey: PublicKey) -> str:
    """
    Return the curve name of a checked L{PublicKey}: "Ed25519", "X25519" or
    "P-256"; "RSA" for an RSA key.
    """
    return _curveOfObject(toCryptography(publicKey))


def signatureAlgorithmOf(publicKey: PublicKey) -> str:
    """
    Return the JWS algorithm this code signs with for this key ("EdDSA",
    "ES256", or "RS512" for RSA).

    @raise MeshKeyError: for a key that cannot sign (X25519).
    """
    return signatureAlgorithmsOf(publicKey)[0]


def signatureAlgorithmsOf(publicKey: PublicKey) -> tuple[str, ...]:
    """
    Return the JWS algorithms a signature by this key may use: exactly one
    for an elliptic-curve key ("EdDSA" or "ES256"); "RS512" or "RS256" for
    an RSA key, as the Mesh reference implementation signs.

    @raise MeshKeyError: for a key that cannot sign (X25519).
    """
    _, _, algorithms = verificationKeyOf(publicKey)
    return algorithms


def verificationKeyOf(publicKey: PublicKey) -> tuple[str, PublicKeyObject, tuple[str, ...]]:
    """
    Everything checking a signature by C{publicKey} needs, from one parse
    of the key: its checked UDF (L{udfOf}), the C{cryptography} key, and
    the JWS algorithms it may sign with (L{signatureAlgorithmsOf}).

    @raise MeshKeyError: if the key fails L{udfOf}, or cannot sign (X25519).
    """
    udf = udfOf(publicKey)
    public, _, curve = _parsedPublic(publicKey.PublicParameters)
    if curve not in _JWS_ALGORITHMS:
        raise MeshKeyError(f"{withArticle(curve)} key cannot make signatures")
    return udf, public, _JWS_ALGORITHMS[curve]


def toJWK(publicKey: PublicKey) -> jwk.JWK:
    """
    Return a checked L{PublicKey} as a public C{jwcrypto} JWK.
    """
    return jwk.JWK.from_pyca(toCryptography(publicKey))


def publicKeyFrom(key: PublicKeyObject | PrivateKeyObject) -> PublicKey:
    """
    Describe a C{cryptography} key (a private key gives its public half) as a
    L{PublicKey} with its UDF, whose JWK names itself by that UDF too.
    """
    if hasattr(key, "public_key"):
        key = key.public_key()
    udf = meshKeyFingerprint(key)
    return PublicKey(UDF=udf, PublicParameters=Key(kid=udf, **_rawPublic(key)))


@attrs.frozen(repr=False)
class KeyPair:
    """
    A private key held by this process, with the ways the Mesh names and
    uses it. Build one with L{generateSignatureKey},
    L{generateEncryptionKey} or L{KeyPair.fromKey}.

    Two key pairs are equal when they have the same public key (the same
    UDF); the repr shows the UDF, never the private key.

    @ivar privateKey: the C{cryptography} private key.
    """

    privateKey: PrivateKeyObject = attrs.field(eq=False, repr=False)
    _udf: str = attrs.field(init=False)

    @privateKey.validator
    def _checkPrivateKey(self, attribute: attrs.Attribute, value: object) -> None:
        if not hasattr(value, "public_key"):
            raise MeshKeyError(f"expected a private key, got {type(value).__name__}")
        _curveOfObject(value)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_udf", meshKeyFingerprint(self.privateKey.public_key()))

    def __repr__(self) -> str:
        return f"<KeyPair {self.curve} {self.udf}>"

    @property
    def udf(self) -> str:
        """
        The UDF of the public key: the key's name in profiles and in the
        C{kid} of signatures and encryptions.
        """
        return self._udf

    @property
    def curve(self) -> str:
        """
        The curve: "Ed25519", "X25519" or "P-256"; "RSA" for an RSA key.
        """
        return _curveOfObject(self.privateKey)

    @property
    def signatureAlgorithm(self) -> str:
        """
        The JWS algorithm this key signs with ("EdDSA", "ES256", or "RS512"
        for RSA).

        @raise MeshKeyError: for an X25519 key, which cannot sign.
        """
        if self.curve not in _JWS_ALGORITHMS:
            raise MeshKeyError(f"{withArticle(self.curve)} key cannot make signatures")
        return _JWS_ALGORITHMS[self.curve][0]

    def publicKey(self) -> PublicKey:
        """
        Return the public half as a L{PublicKey}, ready to put in a profile.
        """
        return publicKeyFrom(self.privateKey)

    def privateParameters(self) -> Key:
        """
        Return the whole key, private part included, as a L{Key}, for a
        L{DevicePrivateProfile} or an L{EscrowedKeySet}.

        @raise MeshKeyError: for an RSA key, whose private form L{Key} does
            not carry (RSA keys are read to check the reference
            implementation's signatures, not kept).
        """
        if self.curve == "RSA":
            raise MeshKeyError("an RSA private key cannot be written as a Mesh Key")
        public = _rawPublic(self.privateKey.public_key())
        if self.curve == "P-256":
            d = self.privateKey.private_numbers().private_value.to_bytes(_P256_BYTES, "big")
        else:
            d = self.privateKey.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        return Key(kid=self.udf, d=d, **public)

    def toJWK(self) -> jwk.JWK:
        """
        Return the private key as a C{jwcrypto} JWK.
        """
        return jwk.JWK.from_pyca(self.privateKey)

    @classmethod
    def fromKey(cls, key: Key) -> KeyPair:
        """
        Load a private L{Key} (as made by L{privateParameters}), checking
        that its public parameters and C{kid}, if present, belong to it.

        @raise MeshKeyError: if it has no C{d}, is unsupported or
            inconsistent.
        """
        if not isinstance(key, Key):
            raise MeshKeyError(f"expected a Key, got {type(key).__name__}")
        if key.d is None:
            raise MeshKeyError("Key has no private part ('d')")
        try:
            if key.kty == "OKP" and key.crv == "Ed25519":
                private = ed25519.Ed25519PrivateKey.from_private_bytes(key.d)
            elif key.kty == "OKP" and key.crv == "X25519":
                private = x25519.X25519PrivateKey.from_private_bytes(key.d)
            elif key.kty == "EC" and key.crv == "P-256":
                if len(key.d) != _P256_BYTES:
                    raise MeshKeyError("P-256 'd' must be 32 bytes")
                private = ec.derive_private_key(int.from_bytes(key.d, "big"), ec.SECP256R1())
            else:
                raise MeshKeyError(
                    f"unsupported key kty={key.kty!r} crv={key.crv!r} "
                    "(supported: OKP Ed25519, OKP X25519, EC P-256)"
                )
        except ValueError:
            raise MeshKeyError("Key 'd' is not a valid private key") from None
        pair = cls(private)
        expected = pair.privateParameters()
        if key.x is not None and (key.x, key.y) != (expected.x, expected.y):
            raise MeshKeyError("Key public parameters do not match its private part")
        if key.kid is not None and key.kid != pair.udf:
            raise MeshKeyError(f"Key kid {key.kid} is not its UDF {pair.udf}")
        return pair


def generateSignatureKey(curve: str = "Ed25519") -> KeyPair:
    """
    Make a new signature key: Ed25519 (default) or P-256.
    """
    if curve == "Ed25519":
        return KeyPair(ed25519.Ed25519PrivateKey.generate())
    if curve == "P-256":
        return KeyPair(ec.generate_private_key(ec.SECP256R1()))
    raise MeshKeyError(f"a signature key must use one of {', '.join(SIGNATURE_CURVES)}")


def generateEncryptionKey(curve: str = "X25519") -> KeyPair:
    """
    Make a new encryption key: X25519 (default) or P-256.
    """
    if curve == "X25519":
        return KeyPair(x25519.X25519PrivateKey.generate())
    if curve == "P-256":
        return KeyPair(ec.generate_private_key(ec.SECP256R1()))
    raise MeshKeyError(f"an encryption key must use one of {', '.join(ENCRYPTION_CURVES)}")
