# -*- test-case-name: tests.mesh.test_model -*-
"""
Every structure of the Mathematical Mesh Reference draft
(draft-hallambaker-mesh-reference-03), sections 4, 5, 6 and 8.

Type names and field names are spelled exactly as the draft spells them,
including its C{DeviceEncryptiontionKey}: they are the JSON wire names. The
classes are in the draft's order, under the draft's section numbers, and
inherit as the draft says (C{Entry} -> C{Profile} -> C{DeviceProfile} ...), so
a reader can go from a name in the draft to its class and back.

These are plain values: frozen, checked on construction, encoded and decoded
by L{pz.mesh.schema}. What the signatures and encryptions inside them mean,
and who may make them, is in L{pz.mesh.signing} and L{pz.mesh.encryption}.

Extensions to the draft (each marked "Extension" where it is declared):
    - C{PublicKey.PublicParameters}: the draft's PublicKey has no member
      for the key itself; the Mesh reference code carries it in a member of
      this name, here a standard RFC 7517 JWK (L{Key}).
    - L{Key}: the draft names the type (private key parts, escrowed keys) but
      does not define it; it is a JWK.
    - L{JoseWebSignature}, L{JoseSignature}, L{JoseWebEncryption},
      L{JoseRecipient}: the JOSE General JSON Serializations (RFC 7515 section
      7.2.1, RFC 7516 section 7.2.1) that the draft's C{JoseWebSignature} and
      C{JoseWebEncryption} field types import (section 7.3).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pz.mesh.errors import MeshFormatError
from pz.mesh.schema import (
    Binary,
    Boolean,
    Choice,
    DateTime,
    Integer,
    JSONObject,
    List,
    String,
    Struct,
    Structure,
    meshField,
    meshStructure,
)

__all__ = [
    # 4. Cryptographic data objects (and the JOSE objects they import)
    "Key",
    "PublicKey",
    "SignedData",
    "EncryptedData",
    "JoseSignature",
    "JoseWebSignature",
    "JoseRecipient",
    "JoseWebEncryption",
    # 5.1 Base profile objects
    "Entry",
    "SignedProfile",
    "Profile",
    # 5.2 Device profile objects
    "SignedDeviceProfile",
    "DeviceProfile",
    "DevicePrivateProfile",
    # 5.3 Master profile objects
    "SignedMasterProfile",
    "MasterProfile",
    # 5.4 Personal profile objects
    "SignedPersonalProfile",
    "PersonalProfile",
    # 5.5 Application profile objects
    "SignedApplicationProfile",
    "EncryptedProfile",
    "ApplicationProfile",
    "ApplicationProfileEntry",
    # 5.6 Common application objects
    "Connection",
    # 5.7 Password application profile objects
    "PasswordProfile",
    "PasswordProfilePrivate",
    "PasswordEntry",
    # 5.8 Mail application profile objects
    "MailProfile",
    "MailProfilePrivate",
    # 5.9 Network application profile objects
    "NetworkProfile",
    "NetworkProfilePrivate",
    # 5.10 Key escrow objects
    "EscrowEntry",
    "OfflineEscrowEntry",
    "OnlineEscrowEntry",
    "EscrowedKeySet",
    # 6. Portal connection
    "ConnectionRequest",
    "SignedConnectionRequest",
    "ConnectionResult",
    "SignedConnectionResult",
    # 8. Mesh portal objects
    "PortalEntry",
    "Account",
    "AccountProfile",
    "ConnectionsPending",
    # Relations between types
    "SIGNED_PAYLOAD_TYPES",
    "APPLICATION_PRIVATE_TYPES",
    "signedFormOf",
    "payloadTypeOf",
]


# ---------------------------------------------------------------------------
# 4. Cryptographic Data Objects
# ---------------------------------------------------------------------------


@meshStructure
class Key(Structure):
    """
    A JSON Web Key (RFC 7517) for the elliptic-curve keys the Mesh uses here:
    C{kty} "OKP" with C{crv} "Ed25519" or "X25519" (RFC 8037), or C{kty} "EC"
    with C{crv} "P-256". Public parameters are C{x} (and C{y} for EC); C{d} is
    the private part and is present only where the draft asks for a private
    key (L{DevicePrivateProfile}, L{EscrowedKeySet}). Public RSA keys, which
    the Mesh reference implementation uses, have C{kty} "RSA", C{n} and C{e}
    (RFC 7518 section 6.3.1).

    Extension: the draft uses the type C{Key} without defining it. Member
    names are JOSE's, lower case. The reference implementation sends an RSA
    key tagged, C{{"PublicKeyRSA": {"kid": ..., "n": ..., "e": ...}}};
    L{readForms} reads that as C{{"kty": "RSA", ...}}, which is what is
    written back.
    """

    kty: str | None = meshField(String, required=True)
    crv: str | None = meshField(String)
    x: bytes | None = meshField(Binary)
    y: bytes | None = meshField(Binary)
    n: bytes | None = meshField(Binary)
    e: bytes | None = meshField(Binary)
    d: bytes | None = meshField(Binary)
    kid: str | None = meshField(String)

    @classmethod
    def readForms(cls, data: Any, path: str) -> Any:
        """
        Read the reference implementation's tagged public RSA key as a JWK.
        """
        if isinstance(data, dict) and len(data) == 1 and "PublicKeyRSA" in data:
            body = data["PublicKeyRSA"]
            if not isinstance(body, dict):
                raise MeshFormatError(f"{path}.PublicKeyRSA: expected an object")
            if "kty" in body or "d" in body:
                raise MeshFormatError(
                    f"{path}.PublicKeyRSA: a public RSA key has no 'kty' or 'd' member"
                )
            return {"kty": "RSA", **body}
        return data


@meshStructure
class PublicKey(Structure):
    """
    4.1.1 Container for public key pair data.

    A key's C{UDF} is its identity: profiles name keys by it, signatures name
    their signer by it (the JWS C{kid}), and a device or master profile's
    C{Identifier} is the UDF of its signature key. L{pz.mesh.keys.udfOf}
    checks that the UDF really is the fingerprint of C{PublicParameters}.
    """

    UDF: str | None = meshField(String)
    X509Certificate: bytes | None = meshField(Binary)
    X509Chain: tuple[bytes, ...] | None = meshField(List(Binary))
    X509CSR: bytes | None = meshField(Binary)
    #: Extension: the public key itself, as a JWK without C{d}.
    PublicParameters: Key | None = meshField(Struct("Key"))


@meshStructure
class SignedData(Structure):
    """
    4.2.1 Container for JOSE signed data and related attributes.

    C{Data} holds the UTF-8 bytes of a JWS Compact Serialization (RFC 7515
    section 7.1); see L{pz.mesh.signing.signData}. Signed profiles use the
    richer L{JoseWebSignature} instead, as the draft's C{SignedProfile} does.
    """

    Data: bytes | None = meshField(Binary)


@meshStructure
class EncryptedData(Structure):
    """
    4.3.1 Container for JOSE encrypted data and related attributes.

    C{Data} holds the UTF-8 bytes of a JWE Compact Serialization (RFC 7516
    section 7.1) to a single recipient; see L{pz.mesh.encryption.encryptData}.
    """

    Data: bytes | None = meshField(Binary)


@meshStructure
class JoseSignature(Structure):
    """
    One signature of a L{JoseWebSignature} (RFC 7515 section 7.2.1).

    C{protected} is the JWS Protected Header, as the bytes whose base64url the
    signature covers; this code puts C{alg} and C{kid} (the signer's UDF)
    there. C{header} is the unprotected header (RFC 7515 section 7.2.1); the
    Mesh reference implementation puts C{kid} there. An unprotected C{kid}
    or C{alg} only says which trusted key and which of its algorithms to
    try: see L{pz.mesh.signing.verifyPayload}.
    """

    protected: bytes | None = meshField(Binary)
    header: dict | None = meshField(JSONObject)
    signature: bytes | None = meshField(Binary, required=True)


@meshStructure
class JoseWebSignature(Structure):
    """
    The draft's C{JoseWebSignature} type: a JWS in the General JSON
    Serialization, the form the Mesh reference examples show inside
    C{SignedData}. C{payload} is the tagged JSON of the signed object,
    kept as the exact bytes that were signed.

    Read liberally (L{readForms}): RFC 7515's flattened form
    (C{{"protected", "header", "payload", "signature"}}, section 7.2.2) and
    the same without C{protected} (C{{"header", "payload", "signature"}},
    as the reference implementation and C{jwcrypto} write a JWS with only an
    unprotected header) are read as a general form with one signature.
    C{unprotected} is the member the reference implementation adds beside
    C{payload} (C{{"dig": "S512"}}); RFC 7515 does not define it, no
    signature covers it, and nothing reads it. What is written is the
    general form.
    """

    unprotected: dict | None = meshField(JSONObject)
    payload: bytes | None = meshField(Binary, required=True)
    signatures: tuple[JoseSignature, ...] | None = meshField(
        List(Struct("JoseSignature")), required=True
    )

    @classmethod
    def readForms(cls, data: Any, path: str) -> Any:
        """
        Read a flattened JWS as the general form with one signature.
        """
        if isinstance(data, dict) and "signature" in data and "signatures" not in data:
            one = ("protected", "header", "signature")
            general = {key: value for key, value in data.items() if key not in one}
            general["signatures"] = [{key: data[key] for key in one if key in data}]
            return general
        return data


@meshStructure
class JoseRecipient(Structure):
    """
    One recipient of a L{JoseWebEncryption} (RFC 7516 section 7.2.1): its
    per-recipient header (C{alg}, C{kid} = the recipient key's UDF, C{epk})
    and the content key wrapped for it.
    """

    header: dict | None = meshField(JSONObject)
    encrypted_key: bytes | None = meshField(Binary)


@meshStructure
class JoseWebEncryption(Structure):
    """
    The draft's C{JoseWebEncryption} type: a JWE in the General JSON
    Serialization, so that one ciphertext can be read by several devices.
    """

    protected: bytes | None = meshField(Binary)
    unprotected: dict | None = meshField(JSONObject)
    recipients: tuple[JoseRecipient, ...] | None = meshField(
        List(Struct("JoseRecipient")), required=True
    )
    aad: bytes | None = meshField(Binary)
    iv: bytes | None = meshField(Binary)
    ciphertext: bytes | None = meshField(Binary, required=True)
    tag: bytes | None = meshField(Binary)


# ---------------------------------------------------------------------------
# 5. Mesh Profile Objects
# 5.1 Base Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class Entry(Structure):
    """
    5.1.1 Base class for all Mesh Profile objects.

    C{Identifier} is globally unique and constant for the lifetime of the
    entry; it is what a portal indexes entries by.
    """

    Identifier: str | None = meshField(String)


@meshStructure
class SignedProfile(Entry):
    """
    5.1.2 Contains a signed profile entry.

    Each subclass requires a payload of one specific type (a
    L{SignedDeviceProfile} carries a L{DeviceProfile}); see
    L{SIGNED_PAYLOAD_TYPES}. C{Identifier} repeats the payload's, so an entry
    can be indexed without opening the signature; verification checks that
    the two agree.
    """

    SignedData: JoseWebSignature | None = meshField(Struct("JoseWebSignature"))


@meshStructure
class Profile(Entry):
    """
    5.1.3 Parent class from which all profile types are derived.

    C{Names} are fingerprints of index terms (not the terms, against
    enumeration). C{Updated} is when the profile was last modified; this code
    uses it to refuse replays of older profiles
    (L{pz.mesh.signing.checkFresh}).
    """

    Names: tuple[str, ...] | None = meshField(List(String))
    Updated: datetime | None = meshField(DateTime)
    NotaryToken: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 5.2 Device Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class SignedDeviceProfile(SignedProfile):
    """
    5.2.1 Contains a signed device profile: a L{DeviceProfile} signed by its
    own C{DeviceSignatureKey}.
    """


@meshStructure
class DeviceProfile(Profile):
    """
    5.2.2 Describes a mesh device.

    The UDF of the C{DeviceSignatureKey} is the profile's C{Identifier}.
    C{DeviceEncryptiontionKey} (the draft's spelling, kept because it is the
    wire name) receives data encrypted to the device, such as the private
    parts of application profiles.
    """

    Description: str | None = meshField(String)
    DeviceSignatureKey: PublicKey | None = meshField(Struct(PublicKey))
    DeviceAuthenticationKey: PublicKey | None = meshField(Struct(PublicKey))
    DeviceEncryptiontionKey: PublicKey | None = meshField(Struct(PublicKey))


@meshStructure
class DevicePrivateProfile(Structure):
    """
    5.2.3 Private portion of a device profile: the private halves of its
    three keys. Stays on the device (or in escrow); never published.
    """

    DeviceSignatureKey: Key | None = meshField(Struct(Key))
    DeviceAuthenticationKey: Key | None = meshField(Struct(Key))
    DeviceEncryptiontionKey: Key | None = meshField(Struct(Key))


# ---------------------------------------------------------------------------
# 5.3 Master Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class SignedMasterProfile(SignedProfile):
    """
    5.3.1 Contains a signed master profile: a L{MasterProfile} signed by its
    own C{MasterSignatureKey}.
    """


@meshStructure
class MasterProfile(Profile):
    """
    5.3.2 The long term parameters of a personal profile: its axioms of trust.

    C{MasterSignatureKey} is the root of trust and its UDF is the profile's
    C{Identifier}; it signs only this profile. C{OnlineSignatureKeys} sign
    the personal profile and administer devices. C{MasterEscrowKeys} receive
    escrowed private keys.
    """

    MasterSignatureKey: PublicKey | None = meshField(Struct(PublicKey))
    MasterEscrowKeys: tuple[PublicKey, ...] | None = meshField(List(Struct(PublicKey)))
    OnlineSignatureKeys: tuple[PublicKey, ...] | None = meshField(List(Struct(PublicKey)))


# ---------------------------------------------------------------------------
# 5.4 Personal Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class SignedPersonalProfile(SignedProfile):
    """
    5.4.1 Contains a signed personal profile: a L{PersonalProfile} signed by
    one of its master's C{OnlineSignatureKeys}.
    """


@meshStructure
class PersonalProfile(Profile):
    """
    5.4.2 The current applications and devices connected to a master profile.

    Its C{Identifier} is the UDF of the master's C{MasterSignatureKey}; it is
    the profile a portal account points at (C{Account.UserProfileUDF}).
    """

    SignedMasterProfile: SignedMasterProfile | None = meshField(Struct("SignedMasterProfile"))
    Devices: tuple[SignedDeviceProfile, ...] | None = meshField(List(Struct("SignedDeviceProfile")))
    Applications: tuple[ApplicationProfileEntry, ...] | None = meshField(
        List(Struct("ApplicationProfileEntry"))
    )


# ---------------------------------------------------------------------------
# 5.5 Application Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class SignedApplicationProfile(SignedProfile):
    """
    5.5.1 Contains a signed application profile (any L{ApplicationProfile}
    subclass), signed by a device listed in its entry's C{SignID}.
    """


@meshStructure
class EncryptedProfile(Entry):
    """
    5.5.2 Contains an encrypted profile entry.
    """

    EncryptedData: JoseWebEncryption | None = meshField(Struct("JoseWebEncryption"))


@meshStructure
class ApplicationProfile(Profile):
    """
    5.5.3 Parent class from which all application profiles inherit.

    The public part is the profile's own fields; the private part (e.g. a
    L{PasswordProfilePrivate}) travels in C{EncryptedData}, encrypted to the
    devices listed in the entry's C{DecryptID}. The C{Identifier} is chosen
    at random (L{pz.mesh.builders.newApplicationIdentifier}).
    """

    EncryptedData: JoseWebEncryption | None = meshField(Struct("JoseWebEncryption"))


@meshStructure
class ApplicationProfileEntry(Structure):
    """
    5.5.4 How a personal profile refers to an application profile, and which
    devices may sign (C{SignID}) and read (C{DecryptID}) it. Both lists hold
    device profile identifiers. C{Type} is the application profile's type
    name, e.g. "PasswordProfile".
    """

    Identifier: str | None = meshField(String)
    Type: str | None = meshField(String)
    Friendly: str | None = meshField(String)
    SignID: tuple[str, ...] | None = meshField(List(String))
    DecryptID: tuple[str, ...] | None = meshField(List(String))


# ---------------------------------------------------------------------------
# 5.6 Common Application Objects
# ---------------------------------------------------------------------------


@meshStructure
class Connection(Structure):
    """
    5.6.1 Network connection parameters for an application (a mail server, a
    DNS resolver). C{Security} values are limited to the draft's
    Direct/Upgrade/None.
    """

    ServiceName: str | None = meshField(String)
    Port: int | None = meshField(Integer)
    Prefix: str | None = meshField(String)
    Security: tuple[str, ...] | None = meshField(List(Choice("Direct", "Upgrade", "None")))
    UserName: str | None = meshField(String)
    Password: str | None = meshField(String)
    URI: str | None = meshField(String)
    Authentication: str | None = meshField(String)
    TimeOut: int | None = meshField(Integer)
    Polling: bool | None = meshField(Boolean)


# ---------------------------------------------------------------------------
# 5.7 Password Application Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class PasswordProfile(ApplicationProfile):
    """
    5.7.1 Stores usernames and passwords; everything is in the private part,
    L{PasswordProfilePrivate}.
    """


@meshStructure
class PasswordProfilePrivate(Structure):
    """
    5.7.2 The private part of a password profile: the credentials, whether
    clients may generate passwords, and the sites never to ask about.
    """

    AutoGenerate: bool | None = meshField(Boolean)
    Entries: tuple[PasswordEntry, ...] | None = meshField(List(Struct("PasswordEntry")))
    NeverAsk: tuple[str, ...] | None = meshField(List(String))


@meshStructure
class PasswordEntry(Structure):
    """
    5.7.3 Username and password for the sites named (C{*.example.com}
    matches C{www.example.com}).
    """

    Sites: tuple[str, ...] | None = meshField(List(String))
    Username: str | None = meshField(String)
    Password: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 5.8 Mail Application Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class MailProfile(ApplicationProfile):
    """
    5.8.1 Public mail profile: the receipt policy, i.e. the keys a sender
    should encrypt to. The sending configuration is in L{MailProfilePrivate}.
    """

    EncryptionPGP: PublicKey | None = meshField(Struct(PublicKey))
    EncryptionSMIME: PublicKey | None = meshField(Struct(PublicKey))


@meshStructure
class MailProfilePrivate(Structure):
    """
    5.8.2 A mail account configuration: addresses, inbound and outbound
    connections in order of preference, and signing and encryption keys.
    """

    EmailAddress: str | None = meshField(String)
    ReplyToAddress: str | None = meshField(String)
    DisplayName: str | None = meshField(String)
    AccountName: str | None = meshField(String)
    Inbound: tuple[Connection, ...] | None = meshField(List(Struct(Connection)))
    Outbound: tuple[Connection, ...] | None = meshField(List(Struct(Connection)))
    Sign: tuple[PublicKey, ...] | None = meshField(List(Struct(PublicKey)))
    Encrypt: tuple[PublicKey, ...] | None = meshField(List(Struct(PublicKey)))


# ---------------------------------------------------------------------------
# 5.9 Network Application Profile Objects
# ---------------------------------------------------------------------------


@meshStructure
class NetworkProfile(ApplicationProfile):
    """
    5.9.1 Network profile; everything is in L{NetworkProfilePrivate}.
    """


@meshStructure
class NetworkProfilePrivate(Structure):
    """
    5.9.2 The network settings to follow: resolvers, search prefixes, and the
    Web PKI roots to trust (as a certificate trust list and as UDFs).
    """

    Sites: tuple[str, ...] | None = meshField(List(String))
    DNS: tuple[Connection, ...] | None = meshField(List(Struct(Connection)))
    Prefix: tuple[str, ...] | None = meshField(List(String))
    CTL: bytes | None = meshField(Binary)
    WebPKI: tuple[str, ...] | None = meshField(List(String))


# ---------------------------------------------------------------------------
# 5.10 Key Escrow Objects
# ---------------------------------------------------------------------------


@meshStructure
class EscrowEntry(Entry):
    """
    5.10.1 Contains escrowed data: an L{EscrowedKeySet} encrypted (see
    L{pz.mesh.encryption.encryptTo}) to the master's C{MasterEscrowKeys}.
    """

    EncryptedData: JoseWebEncryption | None = meshField(Struct("JoseWebEncryption"))


@meshStructure
class OfflineEscrowEntry(EscrowEntry):
    """
    5.10.2 Data escrowed using the offline escrow mechanism.
    """


@meshStructure
class OnlineEscrowEntry(EscrowEntry):
    """
    5.10.3 Data escrowed using the online escrow mechanism.
    """


@meshStructure
class EscrowedKeySet(Structure):
    """
    5.10.4 A set of escrowed private keys.
    """

    PrivateKeys: tuple[Key, ...] | None = meshField(List(Struct(Key)))


# ---------------------------------------------------------------------------
# 6. Portal Connection
# ---------------------------------------------------------------------------


@meshStructure
class ConnectionRequest(Structure):
    """
    6.1.1 A device's request to be connected to the profile C{ParentUDF}; it
    carries the device's own signed profile and is signed by that device's
    signature key (L{SignedConnectionRequest}).
    """

    ParentUDF: str | None = meshField(String)
    Device: SignedDeviceProfile | None = meshField(Struct(SignedDeviceProfile))


@meshStructure
class SignedConnectionRequest(SignedProfile):
    """
    6.1.2 A L{ConnectionRequest} signed by the corresponding device signature
    key. Its C{Identifier} is the requesting device's identifier.
    """


@meshStructure
class ConnectionResult(ConnectionRequest):
    """
    6.1.3 The answer to a connection request: C{Result} is one of Accepted,
    Refused, Query.
    """

    Result: str | None = meshField(Choice("Accepted", "Refused", "Query"))


@meshStructure
class SignedConnectionResult(SignedProfile):
    """
    6.1.4 A L{ConnectionResult} signed by an administration key (one of the
    master's C{OnlineSignatureKeys}) of the profile it connects to. Its
    C{Identifier} is the requesting device's identifier.
    """


# ---------------------------------------------------------------------------
# 8. Mesh Portal Objects
# ---------------------------------------------------------------------------


@meshStructure
class PortalEntry(Structure):
    """
    8.1.1 Base of the entries in the portal's append-only log.
    """

    Created: datetime | None = meshField(DateTime)
    Modified: datetime | None = meshField(DateTime)


@meshStructure
class Account(PortalEntry):
    """
    8.1.2 Binds a portal account (C{AccountID}, e.g. "alice@example.com",
    not case sensitive) to a personal profile (C{UserProfileUDF}). C{Status}
    is one of Open, Closed, Suspended.
    """

    AccountID: str | None = meshField(String)
    UserProfileUDF: str | None = meshField(String)
    Status: str | None = meshField(Choice("Open", "Closed", "Suspended"))


@meshStructure
class AccountProfile(Account):
    """
    8.1.3 An account together with its current signed personal profile.
    """

    Profile: SignedPersonalProfile | None = meshField(Struct(SignedPersonalProfile))


@meshStructure
class ConnectionsPending(Account):
    """
    8.1.4 The device connection requests pending for an account.
    """

    Requests: tuple[SignedConnectionRequest, ...] | None = meshField(
        List(Struct(SignedConnectionRequest))
    )


# ---------------------------------------------------------------------------
# Relations between types
# ---------------------------------------------------------------------------

#: Each signed form and the payload type it must carry. Application profiles
#: may be any subclass of ApplicationProfile; the others are exact (so that a
#: ConnectionResult cannot pass for the ConnectionRequest it inherits from).
SIGNED_PAYLOAD_TYPES: dict[type, type] = {
    SignedDeviceProfile: DeviceProfile,
    SignedMasterProfile: MasterProfile,
    SignedPersonalProfile: PersonalProfile,
    SignedApplicationProfile: ApplicationProfile,
    SignedConnectionRequest: ConnectionRequest,
    SignedConnectionResult: ConnectionResult,
}

#: Each application profile type and the type of its private part.
APPLICATION_PRIVATE_TYPES: dict[type, type] = {
    PasswordProfile: PasswordProfilePrivate,
    MailProfile: MailProfilePrivate,
    NetworkProfile: NetworkProfilePrivate,
}


def payloadTypeOf(signedType: type) -> type:
    """
    Return the payload type a signed form must carry, e.g.
    C{payloadTypeOf(SignedDeviceProfile) is DeviceProfile}.
    """
    try:
        return SIGNED_PAYLOAD_TYPES[signedType]
    except KeyError:
        raise TypeError(f"{signedType.__name__} is not a signed form") from None


def signedFormOf(payloadType: type) -> type:
    """
    Return the signed form for a payload type, e.g.
    C{signedFormOf(PasswordProfile) is SignedApplicationProfile}.
    """
    for signedType, carried in SIGNED_PAYLOAD_TYPES.items():
        if payloadType is carried or (
            carried is ApplicationProfile and issubclass(payloadType, ApplicationProfile)
        ):
            return signedType
    raise TypeError(f"there is no signed form of {payloadType.__name__}")
