# -*- test-case-name: tests.pz.test_udf -*-
"""
Uniform Data Fingerprints (UDF), the 2016 form used by the Mathematical Mesh
Reference draft.

A UDF is what a person reads aloud or compares by eye when pairing a device
or approving a connection, so it is short (30 base32 characters in groups of
five) yet binds the content type as well as the bytes: the same bytes under
a different type give a different fingerprint.
"""

import base64
import hashlib

from cryptography.hazmat.primitives import serialization

__all__ = ["fingerprint", "key_fingerprint", "KEYINFO_TYPE", "VERSION_SHA2_512"]

#: Content type under which a public key's DER SubjectPublicKeyInfo is hashed.
KEYINFO_TYPE = "application/x509-keyinfo"

#: Version byte that says the fingerprint was made with SHA-2-512.
VERSION_SHA2_512 = 0x60

_CHARACTERS = 30
_GROUP = 5


def fingerprint(content_type: str, data: bytes) -> str:
    """
    Fingerprint C{data} of type C{content_type}.

    @return: 30 base32 characters with a dash after every five, e.g.
        C{MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM}.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("data must be bytes")
    inner = hashlib.sha512(bytes(data)).digest()
    outer = hashlib.sha512(content_type.encode("utf-8") + b":" + inner).digest()
    raw = bytes([VERSION_SHA2_512]) + outer[:17] + bytes([(outer[17] << 2) & 0xFF])
    text = base64.b32encode(raw).decode("ascii")[:_CHARACTERS]
    return "-".join(text[i : i + _GROUP] for i in range(0, _CHARACTERS, _GROUP))


def key_fingerprint(public_key) -> str:
    """
    Fingerprint a public key (any C{cryptography} public key, or a private
    key, whose public half is used) over its DER SubjectPublicKeyInfo.
    """
    if hasattr(public_key, "public_key"):
        public_key = public_key.public_key()
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return fingerprint(KEYINFO_TYPE, der)
