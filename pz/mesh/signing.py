# -*- test-case-name: tests.mesh.test_signing -*-
"""
Signing Mesh objects with JWS, and the Reference draft's rules for who may
sign what.

A signed form (L{SignedDeviceProfile}, ...) holds a L{JoseWebSignature}
whose payload is the tagged JSON of the object, kept as the exact bytes that
were signed; the protected header names the algorithm and, as C{kid}, the
UDF of the signing key. L{sign} makes one; the C{verify*} functions check one
and return the payload, or raise L{MeshSignatureError} (status 401).

The rules, one function each:

    ========================  =========================  ==========================================
    signed form               Identifier must be         signed by
    ========================  =========================  ==========================================
    SignedMasterProfile       UDF(MasterSignatureKey)    its own MasterSignatureKey
    SignedDeviceProfile       UDF(DeviceSignatureKey)    its own DeviceSignatureKey
    SignedPersonalProfile     its master's Identifier    one of the master's OnlineSignatureKeys
    SignedApplicationProfile  listed in Applications     a device named in its entry's SignID
    SignedConnectionRequest   the device's Identifier    the requesting device's DeviceSignatureKey
    SignedConnectionResult    the device's Identifier    one of the profile's OnlineSignatureKeys
    ========================  =========================  ==========================================

Every signed form must also carry exactly its payload type (a
SignedDeviceProfile carrying a MasterProfile is refused), and its envelope
C{Identifier} must equal the payload's. The nested signed objects a payload
carries (a personal profile's master and devices, a request's device) are
verified by their own rules.

Replays: each C{verify*} for a profile takes the profile already held as
C{previous} and then requires the new one to be strictly newer (its
C{Updated} later, L{checkFresh}); a personal profile may also not embed an
older master profile than the one held.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable, Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jws

from pz.mesh.errors import (
    MeshError,
    MeshFormatError,
    MeshSignatureError,
    MeshStaleProfileError,
    withArticle,
)
from pz.mesh.keys import KeyPair, udfOf, verificationKeyOf
from pz.mesh.model import (
    ApplicationProfile,
    ConnectionRequest,
    ConnectionResult,
    DeviceProfile,
    JoseSignature,
    JoseWebSignature,
    MasterProfile,
    PersonalProfile,
    Profile,
    PublicKey,
    SignedApplicationProfile,
    SignedConnectionRequest,
    SignedConnectionResult,
    SignedData,
    SignedDeviceProfile,
    SignedMasterProfile,
    SignedPersonalProfile,
    SignedProfile,
    payloadTypeOf,
    signedFormOf,
)
from pz.mesh.schema import (
    Structure,
    decodeBinary,
    encodeBinary,
    encodeDateTime,
    fromJSON,
    parseJSON,
)

__all__ = [
    "SIGNATURE_ALGORITHMS",
    "signPayload",
    "verifyPayload",
    "signData",
    "verifyData",
    "sign",
    "unverifiedPayload",
    "verify",
    "verifyMasterProfile",
    "verifyDeviceProfile",
    "verifyPersonalProfile",
    "verifyApplicationProfile",
    "verifyConnectionRequest",
    "verifyConnectionResult",
    "checkFresh",
]

#: The JWS algorithms accepted. Each elliptic-curve key type allows exactly
#: one of them; an RSA key (the Mesh reference implementation's) RS512 or
#: RS256.
SIGNATURE_ALGORITHMS = ("EdDSA", "ES256", "RS256", "RS512")


def _compactJSON(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------------------
# JWS over bytes
# ---------------------------------------------------------------------------


def signPayload(payload: bytes, signer: KeyPair) -> JoseWebSignature:
    """
    Sign C{payload} with C{signer}, giving a one-signature JWS whose
    protected header is C{{"alg": ..., "kid": signer.udf}}.
    """
    token = jws.JWS(payload)
    protected = _compactJSON({"alg": signer.signatureAlgorithm, "kid": signer.udf})
    token.add_signature(signer.toJWK(), alg=None, protected=protected.decode("utf-8"))
    flat = json.loads(token.serialize(compact=False))
    return JoseWebSignature(
        payload=payload,
        signatures=(
            JoseSignature(
                protected=decodeBinary(flat["protected"]),
                signature=decodeBinary(flat["signature"]),
            ),
        ),
    )


def verifyPayload(
    signature: JoseWebSignature,
    trusted: Iterable[PublicKey],
    what: str = "signed data",
    allowed: str = "a trusted key",
) -> tuple[bytes, PublicKey]:
    """
    Check that one of the signatures on C{signature} was made by one of the
    C{trusted} keys, and return the signed bytes and that key.

    The signer is named by the C{kid} of the signature's JOSE Header: the
    union of its protected header and its unprotected C{header}, which
    must not share a parameter (RFC 7515 section 7.2.1). This code writes
    C{kid} and C{alg} protected; the Mesh reference implementation puts
    C{kid} in the unprotected header, and a JWS in the
    C{{"header", "payload", "signature"}} form has only that. An
    unprotected C{kid} or C{alg} is no weaker: the key it names must be one
    of C{trusted}, the algorithm one that key's type allows (EdDSA, ES256;
    RS512 or RS256 for RSA), and the signature must verify under that key
    and algorithm, over the protected header (if any) and the payload
    (L{_checkSignature}). Changing either only makes it fail.

    @param what: names the signed object in error messages.
    @param allowed: describes the trusted keys in error messages.
    @raise MeshSignatureError: if no signature passes; the message gives the
        reason for each.
    """
    if not isinstance(signature, JoseWebSignature):
        raise MeshSignatureError(f"{what}: is not signed")
    byUDF = {}
    for key in trusted:
        try:
            udf, keyObject, algorithms = verificationKeyOf(key)
            byUDF[udf] = (key, keyObject, algorithms)
        except MeshError as error:
            raise MeshSignatureError(
                f"{what}: a key that may sign it is unusable: {error.message}"
            ) from None
    reasons = []
    for entry in signature.signatures:
        header = _joseHeader(entry)
        if isinstance(header, str):
            reasons.append(header)
            continue
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or kid not in byUDF:
            reasons.append(f"signed by {kid!r}, which is not {allowed}")
            continue
        key, keyObject, expected = byUDF[kid]
        if alg not in expected:
            reasons.append(f"signature by {kid} uses {alg!r}, not {' or '.join(expected)}")
            continue
        if not _headerAcceptable(entry) or not _checkSignature(
            keyObject, alg, _signingInput(entry.protected, signature.payload), entry.signature
        ):
            reasons.append(f"the signature by {kid} does not verify")
            continue
        return signature.payload, key
    if not reasons:
        reasons.append("it carries no signature")
    raise MeshSignatureError(f"{what}: " + "; ".join(reasons))


def _joseHeader(entry: JoseSignature) -> dict | str:
    """
    The JOSE Header of one signature: its protected and unprotected
    parameters together, or a reason why there is none.
    """
    protected: Any = {}
    if entry.protected is not None:
        try:
            protected = parseJSON(entry.protected)
        except MeshFormatError:
            return "a signature's protected header is not JSON"
        if not isinstance(protected, dict):
            return "a signature's protected header is not an object"
    unprotected = entry.header or {}
    shared = sorted(set(protected) & set(unprotected))
    if shared:
        return f"a signature's header has {', '.join(shared)} both protected and unprotected"
    if not protected and not unprotected:
        return "a signature has no header"
    return {**protected, **unprotected}


#: The JOSE Header parameters a signature may name in C{crit} (RFC 7515
#: section 4.1.11): those whose meaning this code knows, as C{jwcrypto}
#: accepted them. C{crit} and C{b64} must be protected.
_CRITICAL_UNDERSTOOD = frozenset({"alg", "kid", "typ", "cty", "crit", "b64"})
_MUST_PROTECT = frozenset({"crit", "b64"})

#: How each accepted JWS algorithm (RFC 7518 section 3, RFC 8037) checks a
#: signature with a C{cryptography} public key; each raises
#: C{InvalidSignature} or C{ValueError} if it does not verify.
_VERIFIERS: dict[str, Callable[[Any, bytes, bytes], None]] = {
    "EdDSA": lambda key, signature, data: key.verify(signature, data),
    "ES256": lambda key, signature, data: key.verify(
        _derFromRawECDSA(signature, 32), data, ECDSA(hashes.SHA256())
    ),
    "RS256": lambda key, signature, data: key.verify(
        signature, data, padding.PKCS1v15(), hashes.SHA256()
    ),
    "RS512": lambda key, signature, data: key.verify(
        signature, data, padding.PKCS1v15(), hashes.SHA512()
    ),
}


def _derFromRawECDSA(signature: bytes, size: int) -> bytes:
    """
    A JWS ECDSA signature is C{r || s}, each C{size} bytes big-endian (RFC
    7518 section 3.4); C{cryptography} takes the DER C{Ecdsa-Sig-Value}.

    @raise ValueError: if C{signature} is not exactly C{2 * size} bytes.
    """
    if len(signature) != 2 * size:
        raise ValueError("an ECDSA JWS signature has the wrong length")
    return encode_dss_signature(
        int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    )


def _signingInput(protected: bytes | None, payload: bytes) -> bytes:
    """
    The JWS Signing Input (RFC 7515 section 5.2): the base64url of the
    protected header (empty without one), a dot, the base64url of the
    payload. Both are re-encoded canonically from the bytes held, so a JWS
    read with the reference's line breaks is checked over what was signed.
    """
    head = "" if protected is None else encodeBinary(protected)
    return f"{head}.{encodeBinary(payload)}".encode("ascii")


def _checkSignature(key: Any, alg: str, signingInput: bytes, signature: bytes) -> bool:
    """
    Whether C{signature} is C{key}'s signature under JWS algorithm C{alg}
    over C{signingInput}.

    This calls C{cryptography} directly on the key already parsed (and
    cached, L{pz.mesh.keys.verificationKeyOf}) rather than going through
    C{jwcrypto}'s C{JWS} and C{JWK} objects, which cost a portal most of
    its CPU per Publish; the algorithm is one the key's type allows, chosen
    by L{verifyPayload} before.
    """
    try:
        _VERIFIERS[alg](key, signature, signingInput)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _headerAcceptable(entry: JoseSignature) -> bool:
    """
    The JOSE Header rules beyond C{kid} and C{alg}, as C{jwcrypto} applied
    them when it checked these signatures: the protected header is strict
    JSON (no raw control characters in its strings); C{crit} and C{b64}
    are protected; C{b64}, if present, is a boolean; C{crit} is a list of
    understood parameters, each present (RFC 7515 section 4.1.11). The
    signature covers the base64url of the payload either way (C{b64}
    false changes nothing here, as it did not with C{jwcrypto}).
    """
    protected: Any = {}
    if entry.protected is not None:
        try:
            protected = json.loads(entry.protected.decode("utf-8"))
        except ValueError:
            return False
        if not isinstance(protected, dict):
            return False
    unprotected = entry.header or {}
    if _MUST_PROTECT & set(unprotected):
        return False
    if "b64" in protected and not isinstance(protected["b64"], bool):
        return False
    if "crit" in protected:
        critical = protected["crit"]
        if not isinstance(critical, list):
            return False
        for name in critical:
            if not isinstance(name, str) or name not in _CRITICAL_UNDERSTOOD or (
                name not in protected and name not in unprotected
            ):
                return False
    return True


def signData(data: bytes, signer: KeyPair) -> SignedData:
    """
    Sign arbitrary bytes into the draft's L{SignedData} container, whose
    C{Data} is the JWS Compact Serialization.
    """
    [entry] = signPayload(data, signer).signatures
    compact = ".".join(encodeBinary(part) for part in (entry.protected, data, entry.signature))
    return SignedData(Data=compact.encode("ascii"))


def verifyData(signedData: SignedData, trusted: Iterable[PublicKey]) -> bytes:
    """
    Check a L{SignedData} made by one of the C{trusted} keys and return the
    signed bytes.

    @raise MeshSignatureError: if it is malformed or not signed by one of them.
    """
    if not isinstance(signedData, SignedData) or signedData.Data is None:
        raise MeshSignatureError("SignedData: there is no signed data")
    try:
        protected, payload, signature = (
            decodeBinary(part) for part in signedData.Data.decode("ascii").split(".")
        )
    except (ValueError, UnicodeDecodeError, MeshFormatError):
        raise MeshSignatureError("SignedData: Data is not a JWS Compact Serialization") from None
    token = JoseWebSignature(
        payload=payload, signatures=(JoseSignature(protected=protected, signature=signature),)
    )
    data, _ = verifyPayload(token, trusted, "SignedData")
    return data


# ---------------------------------------------------------------------------
# Signed Mesh objects
# ---------------------------------------------------------------------------


def sign(payload: Structure, signer: KeyPair) -> SignedProfile:
    """
    Sign a profile, connection request or connection result, giving its
    signed form (L{pz.mesh.model.signedFormOf}) with C{Identifier} set for
    indexing: the profile's own, or for a connection request or result, the
    requesting device's.

    This does not check that C{signer} is the key the rules require; the
    C{verify*} functions do.
    """
    signedType = signedFormOf(type(payload))
    if isinstance(payload, ConnectionRequest):
        identifier = payload.Device.Identifier if payload.Device is not None else None
    else:
        identifier = payload.Identifier
    return signedType(Identifier=identifier, SignedData=signPayload(payload.toJSON(), signer))


def _name(signed: SignedProfile) -> str:
    return f"{type(signed).__name__} {signed.Identifier}"


def unverifiedPayload(signed: SignedProfile) -> Structure:
    """
    Decode the payload of a signed form without checking the signature, and
    check only that it is the type that form must carry. For looking up what
    is needed to verify it (which account, which previous version); never
    trust the result.

    @raise MeshSignatureError: if the payload is of another type.
    @raise MeshFormatError: if it cannot be decoded.
    """
    signedType = type(signed)
    payloadType = payloadTypeOf(signedType)
    if signed.SignedData is None:
        raise MeshSignatureError(f"{_name(signed)}: has no SignedData")
    try:
        payload = fromJSON(signed.SignedData.payload)
    except MeshFormatError as error:
        raise MeshFormatError(f"{_name(signed)}: payload: {error.message}") from None
    exact = payloadType is not ApplicationProfile
    if (exact and type(payload) is not payloadType) or not isinstance(payload, payloadType):
        raise MeshSignatureError(
            f"{_name(signed)}: {withArticle(signedType.__name__)} must carry "
            f"{withArticle(payloadType.__name__)}, "
            f"this one carries {withArticle(type(payload).__name__)}"
        )
    return payload


def _open(signed: object, signedType: type) -> Structure:
    if type(signed) is not signedType:
        raise MeshSignatureError(
            f"expected {withArticle(signedType.__name__)}, got {type(signed).__name__}"
        )
    return unverifiedPayload(signed)  # type: ignore[arg-type]


def _checkEnvelope(signed: SignedProfile, identifier: str | None) -> None:
    if signed.Identifier != identifier:
        raise MeshSignatureError(
            f"{_name(signed)}: the envelope Identifier differs from the signed one ({identifier})"
        )


def _keyUDF(key: PublicKey | None, where: str, role: str) -> str:
    if key is None:
        raise MeshSignatureError(f"{where}: has no {role}")
    try:
        return udfOf(key)
    except MeshError as error:
        raise MeshSignatureError(f"{where}: {role}: {error.message}") from None


def _verifySelfSigned(signed, signedType, keyField: str, previous):
    """
    The rule master and device profiles share: the profile's C{Identifier}
    is the UDF of its own C{keyField}, and that key signed it; with
    C{previous}, it must also be newer.
    """
    profile = _open(signed, signedType)
    name = _name(signed)
    key = getattr(profile, keyField)
    udf = _keyUDF(key, name, keyField)
    if profile.Identifier != udf:
        raise MeshSignatureError(
            f"{name}: Identifier {profile.Identifier} is not the UDF of its {keyField} ({udf})"
        )
    _checkEnvelope(signed, profile.Identifier)
    verifyPayload(signed.SignedData, [key], name, f"its {keyField}")
    if previous is not None:
        checkFresh(signed, previous)
    return profile


def verifyMasterProfile(
    signed: SignedMasterProfile, previous: SignedMasterProfile | None = None
) -> MasterProfile:
    """
    Check a master profile: its C{Identifier} is the UDF of its
    C{MasterSignatureKey}, and that key signed it. With C{previous}, it must
    also be newer (L{checkFresh}).

    @return: the verified L{MasterProfile}.
    @raise MeshSignatureError: if a rule is broken.
    """
    return _verifySelfSigned(signed, SignedMasterProfile, "MasterSignatureKey", previous)


def verifyDeviceProfile(
    signed: SignedDeviceProfile, previous: SignedDeviceProfile | None = None
) -> DeviceProfile:
    """
    Check a device profile: its C{Identifier} is the UDF of its
    C{DeviceSignatureKey}, and that key signed it. With C{previous}, it must
    also be newer (L{checkFresh}).

    @return: the verified L{DeviceProfile}.
    @raise MeshSignatureError: if a rule is broken.
    """
    return _verifySelfSigned(signed, SignedDeviceProfile, "DeviceSignatureKey", previous)


def verifyPersonalProfile(
    signed: SignedPersonalProfile, previous: SignedPersonalProfile | None = None
) -> PersonalProfile:
    """
    Check a personal profile: its master profile and every device profile
    verify by their own rules; its C{Identifier} is its master's; it is signed
    by one of the master's C{OnlineSignatureKeys} (the master signature key
    itself is not one unless listed).

    With C{previous} (the profile held until now), it must also be newer
    (L{checkFresh}) and must not embed an older master profile than
    C{previous} did, so that a replayed old master cannot bring back an
    online key that has since been removed.

    @return: the verified L{PersonalProfile}.
    @raise MeshSignatureError: if a rule is broken.
    """
    profile = _open(signed, SignedPersonalProfile)
    name = _name(signed)
    if profile.SignedMasterProfile is None:
        raise MeshSignatureError(f"{name}: has no SignedMasterProfile")
    master = _nested(name, verifyMasterProfile, profile.SignedMasterProfile)
    if profile.Identifier != master.Identifier:
        raise MeshSignatureError(
            f"{name}: Identifier {profile.Identifier} is not its master's ({master.Identifier})"
        )
    _checkEnvelope(signed, profile.Identifier)
    verifyPayload(
        signed.SignedData,
        master.OnlineSignatureKeys or (),
        name,
        "one of its master's OnlineSignatureKeys",
    )
    for device in profile.Devices or ():
        _nested(name, verifyDeviceProfile, device)
    if previous is not None:
        checkFresh(signed, previous)
        held = unverifiedPayload(previous)
        if held.SignedMasterProfile is not None:
            _checkMasterNotOlder(name, profile.SignedMasterProfile, held.SignedMasterProfile)
    return profile


def _nested(name: str, verifier: Callable[[Any], Any], signed: SignedProfile) -> Any:
    """
    Verify a signed object nested in C{name}, saying where it was found if
    it fails.
    """
    try:
        return verifier(signed)
    except MeshSignatureError as error:
        raise type(error)(f"{name}: {error.message}") from None


def _checkMasterNotOlder(name: str, new: SignedMasterProfile, held: SignedMasterProfile) -> None:
    newMaster, heldMaster = unverifiedPayload(new), unverifiedPayload(held)
    if heldMaster.Updated is None or new == held:
        return
    if newMaster.Updated is None or newMaster.Updated <= heldMaster.Updated:
        raise MeshStaleProfileError(
            f"{name}: embeds a master profile that is not newer than the one held "
            f"(Updated {_when(newMaster.Updated)}, held {_when(heldMaster.Updated)})"
        )


def _personal(personal: PersonalProfile | SignedPersonalProfile) -> PersonalProfile:
    if isinstance(personal, SignedPersonalProfile):
        return verifyPersonalProfile(personal)
    if isinstance(personal, PersonalProfile):
        return personal
    raise TypeError(f"expected a PersonalProfile, got {type(personal).__name__}")


def _devicesOf(personal: PersonalProfile) -> dict[str, DeviceProfile]:
    devices = {}
    for signed in personal.Devices or ():
        device = verifyDeviceProfile(signed)
        devices[device.Identifier] = device
    return devices


def verifyApplicationProfile(
    signed: SignedApplicationProfile,
    personal: PersonalProfile | SignedPersonalProfile,
    previous: SignedApplicationProfile | None = None,
) -> ApplicationProfile:
    """
    Check an application profile against the personal profile it belongs
    to: its C{Identifier} is listed in the personal profile's
    C{Applications}, with a matching C{Type} if the entry gives one, and it
    is signed by the C{DeviceSignatureKey} of a device that the entry's
    C{SignID} names and the personal profile lists.

    @param personal: a verified L{PersonalProfile}, or a
        L{SignedPersonalProfile}, which is verified first.
    @param previous: the version held until now; if given, the new one must
        be newer (L{checkFresh}).
    @return: the verified application profile (a subclass of
        L{ApplicationProfile}). Its private part is still encrypted; see
        L{pz.mesh.encryption.decryptApplicationPrivate}.
    @raise MeshSignatureError: if a rule is broken.
    """
    personalProfile = _personal(personal)
    application = _open(signed, SignedApplicationProfile)
    name = _name(signed)
    entries = [
        entry
        for entry in personalProfile.Applications or ()
        if entry.Identifier == application.Identifier
    ]
    if len(entries) != 1:
        raise MeshSignatureError(
            f"{name}: is listed {len(entries)} times, not once, in the Applications of "
            f"personal profile {personalProfile.Identifier}"
        )
    [entry] = entries
    if entry.Type is not None and entry.Type != type(application).__name__:
        raise MeshSignatureError(
            f"{name}: is {withArticle(type(application).__name__)} but its entry says {entry.Type}"
        )
    _checkEnvelope(signed, application.Identifier)
    devices = _devicesOf(personalProfile)
    signers = [
        devices[identifier].DeviceSignatureKey
        for identifier in entry.SignID or ()
        if identifier in devices
    ]
    verifyPayload(signed.SignedData, signers, name, "a device its entry's SignID names")
    if previous is not None:
        checkFresh(signed, previous)
    return application


def verifyConnectionRequest(signed: SignedConnectionRequest) -> ConnectionRequest:
    """
    Check a device's connection request: it names the profile it wants to
    join (C{ParentUDF}), carries the device's profile, which verifies, and is
    signed by that device's C{DeviceSignatureKey}.

    @return: the verified L{ConnectionRequest}.
    @raise MeshSignatureError: if a rule is broken.
    """
    request = _open(signed, SignedConnectionRequest)
    name = _name(signed)
    if request.Device is None:
        raise MeshSignatureError(f"{name}: carries no Device")
    device = _nested(name, verifyDeviceProfile, request.Device)
    if not request.ParentUDF:
        raise MeshSignatureError(f"{name}: names no ParentUDF")
    _checkEnvelope(signed, device.Identifier)
    verifyPayload(
        signed.SignedData,
        [device.DeviceSignatureKey],
        name,
        "the requesting device's DeviceSignatureKey",
    )
    return request


def verifyConnectionResult(
    signed: SignedConnectionResult, personal: PersonalProfile | SignedPersonalProfile
) -> ConnectionResult:
    """
    Check the answer to a connection request against the personal profile
    it is for: its C{ParentUDF} is that profile's C{Identifier}, it carries
    the requesting device's verified profile and a C{Result}, and it is
    signed by an administration key of the profile, i.e. one of the master's
    C{OnlineSignatureKeys}.

    @param personal: a verified L{PersonalProfile}, or a
        L{SignedPersonalProfile}, which is verified first.
    @return: the verified L{ConnectionResult}.
    @raise MeshSignatureError: if a rule is broken.
    """
    personalProfile = _personal(personal)
    result = _open(signed, SignedConnectionResult)
    name = _name(signed)
    if result.ParentUDF != personalProfile.Identifier:
        raise MeshSignatureError(
            f"{name}: is for profile {result.ParentUDF}, not {personalProfile.Identifier}"
        )
    if result.Result is None:
        raise MeshSignatureError(f"{name}: has no Result")
    if result.Device is None:
        raise MeshSignatureError(f"{name}: carries no Device")
    device = _nested(name, verifyDeviceProfile, result.Device)
    _checkEnvelope(signed, device.Identifier)
    if personalProfile.SignedMasterProfile is None:
        raise MeshSignatureError(f"personal profile {personalProfile.Identifier} has no master")
    master = unverifiedPayload(personalProfile.SignedMasterProfile)
    verifyPayload(
        signed.SignedData,
        master.OnlineSignatureKeys or (),
        name,
        f"an administration key (OnlineSignatureKeys) of profile {personalProfile.Identifier}",
    )
    return result


def verify(
    signed: SignedProfile,
    *,
    personal: PersonalProfile | SignedPersonalProfile | None = None,
    previous: SignedProfile | None = None,
) -> Structure:
    """
    Check any signed form by its own rule (for a portal's Publish, which
    receives whichever kind the client sends).

    @param personal: the personal profile, needed for application profiles
        and connection results.
    @param previous: the version held until now, for the profile kinds.
    @return: the verified payload.
    @raise MeshSignatureError: if a rule is broken, or C{personal} is needed
        and missing.
    """
    kind = type(signed)
    if kind in (SignedApplicationProfile, SignedConnectionResult) and personal is None:
        raise MeshSignatureError(f"{_name(signed)}: cannot be checked without its personal profile")
    if kind is SignedMasterProfile:
        return verifyMasterProfile(signed, previous)
    if kind is SignedDeviceProfile:
        return verifyDeviceProfile(signed, previous)
    if kind is SignedPersonalProfile:
        return verifyPersonalProfile(signed, previous)
    if kind is SignedApplicationProfile:
        return verifyApplicationProfile(signed, personal, previous)
    if kind is SignedConnectionRequest:
        return verifyConnectionRequest(signed)
    if kind is SignedConnectionResult:
        return verifyConnectionResult(signed, personal)
    raise MeshSignatureError(f"{kind.__name__} is not a signed Mesh object")


def _when(value: datetime | None) -> str:
    return "absent" if value is None else encodeDateTime(value)


def checkFresh(new: SignedProfile, previous: SignedProfile) -> None:
    """
    Refuse C{new} unless it is a strictly newer version of C{previous}: the
    same kind and C{Identifier}, and a later C{Updated}. An equal C{Updated}
    is refused too, so re-sending the held profile (or a different one
    claiming the same time) does not count as an update.

    Call it after verifying C{new}; C{previous} is the version already held
    and trusted.

    @raise MeshStaleProfileError: if C{new} is older or not newer.
    @raise MeshSignatureError: if C{new} is not a version of C{previous}.
    """
    if type(new) is not type(previous):
        raise MeshSignatureError(
            f"{_name(new)}: cannot replace {withArticle(type(previous).__name__)}"
        )
    newPayload, heldPayload = unverifiedPayload(new), unverifiedPayload(previous)
    if not isinstance(newPayload, Profile) or not isinstance(heldPayload, Profile):
        raise MeshFormatError(f"{_name(new)}: only profiles have versions")
    if newPayload.Identifier != heldPayload.Identifier:
        raise MeshSignatureError(f"{_name(new)}: is not a version of {heldPayload.Identifier}")
    if heldPayload.Updated is None:
        return
    if newPayload.Updated is None or newPayload.Updated <= heldPayload.Updated:
        raise MeshStaleProfileError(
            f"{_name(new)}: Updated {_when(newPayload.Updated)} is not later than the "
            f"held profile's {_when(heldPayload.Updated)}; refusing a replayed or stale profile"
        )
