# -*- test-case-name: tests.mesh.test_encryption -*-
"""
Encrypting Mesh data with JWE so that exactly the intended devices can read
it.

An application profile's private part (a L{PasswordProfilePrivate}, ...)
is encrypted once, with a fresh content key, and that key is wrapped for the
C{DeviceEncryptiontionKey} of each device that the application's entry in
the personal profile lists in C{DecryptID}: JWE General JSON Serialization,
C{ECDH-ES+A256KW} per recipient, C{A256GCM} content encryption, each
recipient named by its key's UDF in C{kid}. A device not listed has no
wrapped key and cannot read it.

Escrow entries (L{EscrowedKeySet} to the master's C{MasterEscrowKeys}) and
L{EncryptedProfile}s use the same L{encryptTo} / L{decryptStructure}; the
draft's single-recipient L{EncryptedData} container uses L{encryptData}.

Encryption gives confidentiality only: who wrote the data is established by
the signature on the object that carries it (a L{SignedApplicationProfile}
covers its C{EncryptedData}), so verify that first.
"""

from __future__ import annotations

import json
from typing import Iterable

import attrs
from jwcrypto import jwe
from jwcrypto.common import JWException

from pz.mesh.errors import (
    MeshEncryptionError,
    MeshError,
    MeshFormatError,
    MeshKeyError,
    withArticle,
)
from pz.mesh.keys import ENCRYPTION_CURVES, KeyPair, curveOf, toJWK, udfOf
from pz.mesh.model import (
    APPLICATION_PRIVATE_TYPES,
    ApplicationProfile,
    DevicePrivateProfile,
    EncryptedData,
    JoseRecipient,
    JoseWebEncryption,
    PersonalProfile,
    PublicKey,
    SignedPersonalProfile,
)
from pz.mesh.schema import Structure, decodeBinary, encodeBinary, fromJSON, parseJSON
from pz.mesh.signing import verifyDeviceProfile, verifyPersonalProfile

__all__ = [
    "KEY_MANAGEMENT_ALGORITHM",
    "CONTENT_ENCRYPTION_ALGORITHM",
    "encryptTo",
    "recipientsOf",
    "decryptWith",
    "decryptStructure",
    "encryptData",
    "decryptData",
    "encryptApplicationPrivate",
    "decryptApplicationPrivate",
]

#: How the content key is wrapped for each recipient.
KEY_MANAGEMENT_ALGORITHM = "ECDH-ES+A256KW"

#: How the content is encrypted.
CONTENT_ENCRYPTION_ALGORITHM = "A256GCM"

_ALGORITHMS = [KEY_MANAGEMENT_ALGORITHM, CONTENT_ENCRYPTION_ALGORITHM]


def _compactJSON(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _recipientKey(key: PublicKey) -> str:
    udf = udfOf(key)
    curve = curveOf(key)
    if curve not in ENCRYPTION_CURVES:
        raise MeshKeyError(f"cannot encrypt to {udf}: {withArticle(curve)} key is for signatures")
    return udf


def encryptTo(payload: Structure | bytes, recipients: Iterable[PublicKey]) -> JoseWebEncryption:
    """
    Encrypt a structure (its tagged JSON) or bytes so that the holder of any
    one of the C{recipients}' private keys, and no one else, can read it.

    @raise MeshEncryptionError: if there are no recipients.
    @raise MeshKeyError: if a recipient key is unusable or cannot encrypt.
    """
    plaintext = payload.toJSON() if isinstance(payload, Structure) else bytes(payload)
    token = jwe.JWE(
        plaintext, protected=_compactJSON({"enc": CONTENT_ENCRYPTION_ALGORITHM}), algs=_ALGORITHMS
    )
    seen = set()
    for key in recipients:
        udf = _recipientKey(key)
        if udf in seen:
            continue
        seen.add(udf)
        token.add_recipient(
            toJWK(key), header=_compactJSON({"alg": KEY_MANAGEMENT_ALGORITHM, "kid": udf})
        )
    if not seen:
        raise MeshEncryptionError("cannot encrypt to nobody: no recipient keys were given")
    flat = json.loads(token.serialize(compact=False))
    wrapped = flat.get("recipients") or [
        {"header": flat.get("header"), "encrypted_key": flat.get("encrypted_key")}
    ]
    return JoseWebEncryption(
        protected=decodeBinary(flat["protected"]),
        recipients=tuple(
            JoseRecipient(
                header=recipient.get("header"),
                encrypted_key=decodeBinary(recipient["encrypted_key"]),
            )
            for recipient in wrapped
        ),
        iv=decodeBinary(flat["iv"]),
        ciphertext=decodeBinary(flat["ciphertext"]),
        tag=decodeBinary(flat["tag"]),
    )


def recipientsOf(encrypted: JoseWebEncryption) -> tuple[str, ...]:
    """
    Return the UDFs of the keys an encryption is addressed to, as its
    recipient headers claim them (not authenticated; for display and for
    choosing a key).
    """
    return tuple(
        recipient.header["kid"]
        for recipient in encrypted.recipients
        if recipient.header is not None and isinstance(recipient.header.get("kid"), str)
    )


def _keyPairOf(key: KeyPair | DevicePrivateProfile) -> KeyPair:
    if isinstance(key, DevicePrivateProfile):
        if key.DeviceEncryptiontionKey is None:
            raise MeshKeyError("DevicePrivateProfile has no DeviceEncryptiontionKey")
        return KeyPair.fromKey(key.DeviceEncryptiontionKey)
    if isinstance(key, KeyPair):
        return key
    raise TypeError(f"expected a KeyPair or DevicePrivateProfile, got {type(key).__name__}")


def decryptWith(encrypted: JoseWebEncryption, key: KeyPair | DevicePrivateProfile) -> bytes:
    """
    Decrypt with the private key C{key} (or a device's
    C{DeviceEncryptiontionKey}) and return the plaintext bytes.

    @raise MeshEncryptionError: if C{key} is not a recipient, or the data
        does not decrypt (tampered, or wrapped for another key).
    """
    keyPair = _keyPairOf(key)
    if not isinstance(encrypted, JoseWebEncryption):
        raise MeshEncryptionError("there is no encrypted data")
    mine = [
        recipient
        for recipient in encrypted.recipients
        if recipient.header is not None and recipient.header.get("kid") == keyPair.udf
    ]
    if not mine:
        named = ", ".join(recipientsOf(encrypted)) or "none"
        raise MeshEncryptionError(
            f"key {keyPair.udf} is not a recipient of this data (recipients: {named})"
        )
    for recipient in mine:
        flattened: dict = {
            "header": recipient.header,
            "ciphertext": encodeBinary(encrypted.ciphertext),
        }
        for member in ("protected", "aad", "iv", "tag"):
            value = getattr(encrypted, member)
            if value is not None:
                flattened[member] = encodeBinary(value)
        if encrypted.unprotected is not None:
            flattened["unprotected"] = encrypted.unprotected
        if recipient.encrypted_key is not None:
            flattened["encrypted_key"] = encodeBinary(recipient.encrypted_key)
        try:
            token = jwe.JWE(algs=_ALGORITHMS)
            token.deserialize(json.dumps(flattened), keyPair.toJWK())
            return token.payload
        except (JWException, ValueError, TypeError, KeyError):
            continue
    raise MeshEncryptionError(
        f"the data addressed to key {keyPair.udf} does not decrypt with it "
        "(tampered, or wrapped for another key)"
    )


def decryptStructure(
    encrypted: JoseWebEncryption,
    key: KeyPair | DevicePrivateProfile,
    expected: type | None = None,
) -> Structure:
    """
    Decrypt (L{decryptWith}) and decode a structure, which must be of type
    C{expected} (or a subclass) if given.

    @raise MeshFormatError: if the plaintext is not such a structure.
    """
    return fromJSON(decryptWith(encrypted, key), expected)


def encryptData(data: bytes, recipient: PublicKey) -> EncryptedData:
    """
    Encrypt bytes to one key into the draft's L{EncryptedData} container,
    whose C{Data} is the JWE Compact Serialization.
    """
    udf = _recipientKey(recipient)
    token = jwe.JWE(
        bytes(data),
        protected=_compactJSON(
            {"alg": KEY_MANAGEMENT_ALGORITHM, "enc": CONTENT_ENCRYPTION_ALGORITHM, "kid": udf}
        ),
        algs=_ALGORITHMS,
    )
    token.add_recipient(toJWK(recipient))
    return EncryptedData(Data=token.serialize(compact=True).encode("ascii"))


def decryptData(encrypted: EncryptedData, key: KeyPair | DevicePrivateProfile) -> bytes:
    """
    Decrypt an L{EncryptedData} made by L{encryptData}.

    @raise MeshEncryptionError: if it is not addressed to C{key} or does not
        decrypt.
    """
    keyPair = _keyPairOf(key)
    if not isinstance(encrypted, EncryptedData) or encrypted.Data is None:
        raise MeshEncryptionError("there is no encrypted data")
    try:
        text = encrypted.Data.decode("ascii")
        header = parseJSON(decodeBinary(text.split(".")[0]))
    except (UnicodeDecodeError, MeshFormatError):
        raise MeshEncryptionError("EncryptedData is not a JWE Compact Serialization") from None
    if not isinstance(header, dict) or header.get("kid") != keyPair.udf:
        kid = header.get("kid") if isinstance(header, dict) else None
        raise MeshEncryptionError(f"key {keyPair.udf} is not the recipient ({kid})")
    try:
        token = jwe.JWE(algs=_ALGORITHMS)
        token.deserialize(text, keyPair.toJWK())
        return token.payload
    except (JWException, ValueError, TypeError, KeyError):
        raise MeshEncryptionError(
            f"the data addressed to key {keyPair.udf} does not decrypt with it"
        ) from None


def _personalProfile(personal: PersonalProfile | SignedPersonalProfile) -> PersonalProfile:
    if isinstance(personal, SignedPersonalProfile):
        return verifyPersonalProfile(personal)
    if isinstance(personal, PersonalProfile):
        return personal
    raise TypeError(f"expected a PersonalProfile, got {type(personal).__name__}")


def _privateTypeOf(application: ApplicationProfile) -> type | None:
    if not isinstance(application, ApplicationProfile):
        raise TypeError(f"expected an ApplicationProfile, got {type(application).__name__}")
    return APPLICATION_PRIVATE_TYPES.get(type(application))


def encryptApplicationPrivate(
    application: ApplicationProfile,
    private: Structure,
    personal: PersonalProfile | SignedPersonalProfile,
) -> ApplicationProfile:
    """
    Return C{application} with its C{EncryptedData} set to C{private}
    encrypted to the devices that its entry in C{personal} lists in
    C{DecryptID}, each through its C{DeviceEncryptiontionKey}.

    Sign the result afterwards (L{pz.mesh.signing.sign}) with the key of a
    device in the entry's C{SignID}.

    @param private: the private part; its type must be the one for the
        application's (e.g. L{PasswordProfilePrivate} for a
        L{PasswordProfile}).
    @param personal: the personal profile listing the application and the
        devices; a L{SignedPersonalProfile} is verified first.
    @raise MeshEncryptionError: if the application is not listed, the entry
        names no device, or names one that the profile does not contain or
        that has no encryption key.
    """
    expected = _privateTypeOf(application)
    if expected is not None and type(private) is not expected:
        raise MeshFormatError(
            f"the private part of {withArticle(type(application).__name__)} is "
            f"{withArticle(expected.__name__)}, not {withArticle(type(private).__name__)}"
        )
    personalProfile = _personalProfile(personal)
    entries = [
        entry
        for entry in personalProfile.Applications or ()
        if entry.Identifier == application.Identifier
    ]
    if len(entries) != 1:
        raise MeshEncryptionError(
            f"application {application.Identifier} is listed {len(entries)} times, not once, "
            f"in personal profile {personalProfile.Identifier}"
        )
    [entry] = entries
    if entry.Type is not None and entry.Type != type(application).__name__:
        raise MeshEncryptionError(
            f"application {application.Identifier} is "
            f"{withArticle(type(application).__name__)} but its entry says {entry.Type}"
        )
    if not entry.DecryptID:
        raise MeshEncryptionError(
            f"application {application.Identifier}: DecryptID names no device to encrypt to"
        )
    devices = {}
    for signed in personalProfile.Devices or ():
        device = verifyDeviceProfile(signed)
        devices[device.Identifier] = device
    keys = []
    for identifier in entry.DecryptID:
        device = devices.get(identifier)
        if device is None:
            raise MeshEncryptionError(
                f"application {application.Identifier}: DecryptID names device {identifier}, "
                f"which personal profile {personalProfile.Identifier} does not contain"
            )
        if device.DeviceEncryptiontionKey is None:
            raise MeshEncryptionError(f"device {identifier} has no DeviceEncryptiontionKey")
        try:
            _recipientKey(device.DeviceEncryptiontionKey)
        except MeshError as error:
            raise MeshEncryptionError(
                f"device {identifier}: DeviceEncryptiontionKey: {error.message}"
            ) from None
        keys.append(device.DeviceEncryptiontionKey)
    return attrs.evolve(application, EncryptedData=encryptTo(private, keys))


def decryptApplicationPrivate(
    application: ApplicationProfile, key: KeyPair | DevicePrivateProfile
) -> Structure:
    """
    Read the private part of an application profile with a device's
    encryption key (a L{KeyPair}, or the device's L{DevicePrivateProfile}).

    Verify the L{SignedApplicationProfile} first
    (L{pz.mesh.signing.verifyApplicationProfile}): this only decrypts.

    @return: the private part, of the type for the application's (e.g. a
        L{PasswordProfilePrivate}).
    @raise MeshEncryptionError: if the device is not one the data was
        encrypted to, or the data does not decrypt.
    @raise MeshFormatError: if the plaintext is not the expected type.
    """
    expected = _privateTypeOf(application)
    if application.EncryptedData is None:
        raise MeshEncryptionError(
            f"application {application.Identifier} has no encrypted private part"
        )
    return decryptStructure(application.EncryptedData, key, expected)
