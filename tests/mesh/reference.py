"""
The Mesh reference implementation's wire forms, for tests.

Its published examples (repository hallambaker/Mathematical-Mesh, file
Documentation/Specification/Examples/Examples.md, 2016) are kept here
verbatim where they are complete; their signed payloads and certificates
are elided there ("..."), so what is signed is made here the way the
reference makes it:

    - JSON pretty-printed, tagged objects nested where it tags them
      (C{CreateRequest.Profile} is C{{"SignedPersonalProfile": {...}}});
    - every long base64url value broken into lines of 64 characters, with a
      line break before the first (L{wrap});
    - RSA keys as C{"PublicParameters": {"PublicKeyRSA": {"kid", "n", "e"}}}
      (L{referenceKey}), named by the UDF of their PKCS #1 encoding;
    - a JWS as C{{"unprotected": {"dig": "S512"}, "payload", "signatures":
      [{"header": {"kid"}, "protected": {"alg", "val"}, "signature"}]}}
      (L{referenceJWS} form C{"reference"}), beside RFC 7515's flattened
      form and the C{{"header", "payload", "signature"}} form.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jws

from pz.mesh.keys import KeyPair

__all__ = [
    "EXAMPLES_SOURCE",
    "EXAMPLE_DEVICE_PROFILE",
    "EXAMPLE_VALIDATE_REQUEST",
    "EXAMPLE_GET_REQUEST",
    "EXAMPLE_CONNECT_PENDING_REQUEST",
    "EXAMPLE_CONNECT_STATUS_REQUEST",
    "EXAMPLE_RSA_MODULI",
    "JWS_FORMS",
    "wrap",
    "rsaKey",
    "referenceKey",
    "rsaDevicePayload",
    "referenceJWS",
    "referenceSigned",
    "mangled",
]

#: Where the examples below come from.
EXAMPLES_SOURCE = (
    "hallambaker/Mathematical-Mesh, Documentation/Specification/Examples/Examples.md"
)

#: "The first step in the process is for the client to generate a device
#: profile": the reference's unsigned device profile with its three RSA
#: keys, verbatim (raw line breaks inside the base64url strings included).
EXAMPLE_DEVICE_PROFILE = """{
  "DeviceProfile": {
    "Identifier": "MAYJZ-GSL37-5BUII-PA37T-SRIX4-M7ICM",
    "Names": ["Default"],
    "Description": "Unknown",
    "DeviceSignatureKey": {
      "UDF": "MAYJZ-GSL37-5BUII-PA37T-SRIX4-M7ICM",
      "PublicParameters": {
        "PublicKeyRSA": {
          "kid": "MAYJZ-GSL37-5BUII-PA37T-SRIX4-M7ICM",
          "n": "
u_voFu1H7wouV32aaoBUnfA2nPauZ8eVTAqOiMIt3bdiI9CWq-RZortKWEqVWBHn
cwZyUurI0EKkkGdZTrVqIcF4BpaKnL3xzGXN95EAXC9pFNtikE4Vlyallx0OrqNK
EUEyiDfsb8mA4Cmh0yqChKCoCAeqKwTcKxDgkfZKUUYrSCi2HZzD6Kr0xiP7XLUQ
U_FrIJcMD9nZijPVEllXOS12v6sikgpf8bqM24OEwIsCG8EHlhlFVq7yvnwa1TxM
ADQxr5fLE_TvN6A_TKYd2q53poR1pY4CnqsHWRIDDLARTieE-ie-fkPVWGoe6_iq
3bkdFhywx0GKdxXJRlq-8w"
,
          "e": "
AQAB"
}}},
    "DeviceAuthenticationKey": {
      "UDF": "MD22B-MMF4B-PUDPS-J6NMJ-4OC77-R4NRP",
      "PublicParameters": {
        "PublicKeyRSA": {
          "kid": "MD22B-MMF4B-PUDPS-J6NMJ-4OC77-R4NRP",
          "n": "
9vMh_8Pijob9sCq6REzxWfIqxfLygynZ5BYp45fN1TMjQkv694u7W3-EsQfMbjNh
O26ak-70Wad8MKpHO62wY0M9ReyK-R0b2O6XFOQYt1q_kXcKteZ4OMjQdaRIZvmV
1di_L5v-yA8lJCnW62FWPhSTWiFJuurHl0-KxZNjqUlU1BitK6NHkRNx3np0prXq
8ZfQoy_ENS3Wq0FTzFlIwP4feud2zIcEDMQe4aTYmS5lO3MoTg_CAXkgDiPOVhfP
eAWEG2zvK3Nm0I7B7Ep4qpg1OwwGm55aFKe3eXJP6MWAB-jFTZW7fiSLK6ZojSl9
UMftO0i_YMhMYlvVUpW_Ww"
,
          "e": "
AQAB"
}}},
    "DeviceEncryptiontionKey": {
      "UDF": "MCXNI-T57NZ-T7PLS-TOSTD-O24AQ-OMU3Y",
      "PublicParameters": {
        "PublicKeyRSA": {
          "kid": "MCXNI-T57NZ-T7PLS-TOSTD-O24AQ-OMU3Y",
          "n": "
2zWTNzsvne3fcCDoeNkaR5Zv7qmQvdTSnasyeQ5CN2JwkoHUZ5sbgDjedzuup7jY
NJx1EZpHBc0wOa3e25w5I0T--1pr6g6zUpE1s9bP7CD_-NmhnkPsnphmh9QJ-XkJ
OwGMeWjZJa2IxYLHmfJlN1BENf0Pf8B5uaSbaF4la9sy6J4F5j8UD5r3hHfHbKwC
6GMPmekUFsT40HsUvuKA2NZQLYavf9Ae8QvDdvcoqMvSoTB5aVdBKjFvZIL8LvA9
8q_0J_XMOPkIpTZ_alRQ23-H043plqWR6Kl8e5l7AfD5bknFc-BQzk7J5LNaf3t4
l03fA-mQ9qaqq8XOrZFjcQ"
,
          "e": "
AQAB"
}}}}}"""

#: The reference's account name check, verbatim.
EXAMPLE_VALIDATE_REQUEST = """{
  "ValidateRequest": {
    "Account": "test@prismproof.org",
    "Language": ["en-uk"]}}"""

#: "The client requests the profile for the requested account name".
EXAMPLE_GET_REQUEST = """{
  "GetRequest": {
    "Account": "test@prismproof.org",
    "Multiple": false}}"""

#: The administration device polling for requests.
EXAMPLE_CONNECT_PENDING_REQUEST = """{
  "ConnectPendingRequest": {
    "AccountID": "test@prismproof.org"}}"""

#: The connecting device polling for its result.
EXAMPLE_CONNECT_STATUS_REQUEST = """{
  "ConnectStatusRequest": {
    "AccountID": "test@prismproof.org",
    "DeviceID": "MAYJZ-GSL37-5BUII-PA37T-SRIX4-M7ICM"}}"""

#: The RSA moduli (C{n}, as published, line breaks included; C{e} is
#: C{AQAB} for every one) of the master profiles' keys in the two published
#: versions of the examples, by their published UDF; with the device
#: profile's three above, the nine RSA keys the examples publish whole.
EXAMPLE_RSA_MODULI = {
    # Master signature, escrow and online keys (the version with MC25D...).
    "MC25D-QFQE4-OU4VJ-QNPGT-S7V25-QB3JX": """
xAJasNJW9LOIUyGgHLISqXmT9dmEJKPSb-02SLh5IKoktEZeqvnB-5t31CHFDccX
e2_dGEbCaKxmR4um9jn4ja5VR9RnUApWeBONOPoUzUtObvWUBK_j-45z3zSjXNhL
ntWvLama6KOBZm5A5sUEZtBi35bsCNsUv4WeO128aoZzBkf1c-1pZYOaomxVbTab
VyvVQrkRUDpjGTkICTudP6GxlrNKHr_N0SuUZ0cq6a58nMMbIW4FeJ2ow_JIVo5f
hQkW3JwfFI5N2b4ijeu94UXHDKF0cvmEhYwrxhPv5uZt7nZ2JD6GwYN0349LvSML
lOhCnMkWWcNlDdbqDSpxyw""",
    "MCCPD-DXKNG-77UUB-32FPP-GSEPZ-RU7F7": """
szQyj1ehdQxt9Eeg1BGY-q2Z-FbYU0NFEJHi8SRSdQLb5Ncy1H7tbGK82WxS6hzZ
CoOK1sm7m_Ho51Ala1F28y3pWvUUq5n5oC89_EvQZshLX2MJipq499Ohbobwbmax
r9fEOh7FYth4RizGN5to48OCV_-wn1ZL0fJ50UUsmZwz6A-mUoi1tCTVsBlh5wI-
NAQeA0EKb7CeA0630D73yUveiPVSpgbOwowaAMXR0B2YaP4vHI1DEhlpmFh58rSK
HnWO9Lif86pk0k0f2aUYFa7kKnntVmhYqqQB8HMZcSt77fO9dgwHgK_LGx2IEa2K
RRQXcp6r2pjUWlc_WgzSzQ""",
    "MAT2T-OIVXQ-EYEJC-J5D27-J22FZ-5BODK": """
u-a-TfKgn9hdkcziDPWuUaAPp_eVMdKsx897c6dPdvAruFcH6d3eRglmaXRRMYoE
LHDfAqhdE4IB22Kgf2I5mUloYBAsaK8ELjyDPaj2OYq39msvsCgG1ZuwUO4KWeDH
7dg9MeZAw36U1kmp-jAmhFTaxZy_r4UbbiGSoYKgbFfYk4X9aHxuuzNVLRY18Xff
le_-vHL3xI_rMNHAotTfhkqQKPpVijR4z4pyK-1VJm4vIwQppjZaCyjG8EuE5zrq
gEjIJvXl6vaEGZEcFwwyY53kQ17VvFTQA7K4rTWHnnWGY6CuhGsgzVwNKxtp8FmB
LFO6ClBN1raFxVsSnLi98Q""",
    # The same keys in the other version (MD4GY...).
    "MD4GY-CPMOF-C7PO3-HPBDJ-4ZHHX-3MGVS": """
wVODdCKcVXCDPk7FVSauY9dI5cqvek8i1vyK__tlrGl3c_tBt8aCLDP5fhV3pAyn
o-pUkMIWpFgXAzoA-TGbUuvUqPzRRSweNYFRO6XL2SPxnY66E1Z0P5BFE9WEDe5y
Lq1dqO9ZkOE-ZcRYYNU1waETM8pLZraWpWIY8Alz3dGaYtRF7fd8Q843UlZ4Sx_D
ew3YVEoaU48MNtKls6tMyK9AUaYgxcClinIBAQAZaRx1ofOKEm0uObHmou1qPdzr
56tBytXTgXegzdBDYbPSlExA8gnfpMRPgNHrhJLgid5GaoMaGO5Qfxtpm512qoOW
VJR-S8O7xqs6Yqy35SmXtQ""",
    "MCK7O-YP3PL-FH66Z-SWLR4-HC6HD-QI2AI": """
oxQ1wX23ZthRJ5ce7MBS0CIzGaKsHPsWuTS2LXHWYoqtr2uXdPsres0hw6cKdg3t
OVogFMOB549QVCJA20K3xqjGlx8ooEF2GHlPwwZRx1HRmN9NTNdDxWwwZP-sInJw
gr_5hfLovQpDs-sb1KtP-vWr-2LHAEnRbQfkOGycI5CigPh1E8dVkAU0hlUEO3PD
Y31SsOMZtVjB9Vz2xshd8zh32H1YVgBnlLJRbddHWMyAZXCcsse4jVTYXEIcYcyy
QAaXN-Xlj_sYPiSFh5jW-fpECYRKyPWeuiQeHwkhHcAd7Gbv_nK0Wg4Ad-mao2bp
GkKdDtMAOak66mcipSBggQ""",
    "MDOBX-E24X2-NIXRQ-WSKBN-LXH46-VRGNF": """
_c4x7cfUJgBrha9vUdRUAVTeO0eAwRZnPW0E9HABWBdUavHPrhoby-qawnMmJUaH
3TTMf4pI6ngksxIxNyCVDyjYbNwIygjJ-fHb99zRh4pQNovxi-EHg0faOvihBxdU
JeDR_Ipuz_bfwUd47x3R7r3ETy0xRijMUR2kuKpsOuyUaWa99X6fOllT_TgCKFkd
5cJa0FVyKd-ElL6Hepe_u5S0XBxg3Fg93fGToprsaF8dEInyE715dJp0rtFkFlxU
fqzqA7GMu2uC5IQ38cMBDY--GtKhm8tFGkAhxvLP5iYzP7wfIfHnltS-ve54XaYj
mxp91TjIP-Wjpe5tJW6ayQ""",
}

#: The JWS forms L{referenceJWS} writes.
JWS_FORMS = ("reference", "flattened", "header", "general")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def wrap(data: bytes) -> str:
    """
    base64url as the reference writes it: a line break, then lines of 64
    characters.
    """
    text = _b64(data)
    return "\n" + "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


@lru_cache(maxsize=None)
def rsaKey(index: int = 0, bits: int = 2048) -> KeyPair:
    """
    An RSA signature key (the same one for the same C{index} within a test
    run: generating them is slow).
    """
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def referenceKey(pair: KeyPair) -> dict:
    """
    A public key as the reference describes it: C{UDF} and
    C{PublicParameters {"PublicKeyRSA": {kid, n, e}}} with line breaks.
    """
    numbers = pair.privateKey.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {
        "UDF": pair.udf,
        "PublicParameters": {"PublicKeyRSA": {"kid": pair.udf, "n": wrap(n), "e": wrap(e)}},
    }


def rsaDevicePayload(signature: KeyPair, authentication: KeyPair, encryption: KeyPair,
                     updated: str = "2016-09-20T12:00:00Z") -> dict:
    """
    A device profile with RSA keys, tagged, as the reference writes it.
    """
    return {"DeviceProfile": {
        "Identifier": signature.udf,
        "Names": ["Default"],
        "Updated": updated,
        "Description": "Unknown",
        "DeviceSignatureKey": referenceKey(signature),
        "DeviceAuthenticationKey": referenceKey(authentication),
        "DeviceEncryptiontionKey": referenceKey(encryption),
    }}


def _pretty(value: dict) -> bytes:
    return json.dumps(value, indent=2).encode("utf-8")


def referenceJWS(payload: bytes, signer: KeyPair, form: str = "reference", alg: str | None = None,
                 kid: str | None = None) -> dict:
    """
    Sign C{payload} with C{jwcrypto} and write the JWS in one of
    L{JWS_FORMS}:

        - C{"reference"}: the general form as the reference writes it, with
          C{unprotected} C{{"dig": "S512"}}, the signer's C{kid} in the
          unprotected C{header}, C{alg} and C{val} (the payload's SHA-512)
          protected, and line breaks in every base64url value;
        - C{"flattened"}: RFC 7515 section 7.2.2, C{alg} and C{kid}
          protected, with line breaks;
        - C{"header"}: C{{"header": {"alg", "kid"}, "payload", "signature"}},
          no protected header, with line breaks;
        - C{"general"}: RFC 7515 section 7.2.1 as this project writes it.
    """
    alg = alg or signer.signatureAlgorithm
    kid = kid or signer.udf
    if form == "reference":
        protected = {"alg": alg, "val": wrap(hashlib.sha512(payload).digest())}
        header = {"kid": kid}
    elif form in ("flattened", "general"):
        protected, header = {"alg": alg, "kid": kid}, None
    elif form == "header":
        protected, header = None, {"alg": alg, "kid": kid}
    else:
        raise ValueError(f"unknown JWS form {form!r}")
    token = jws.JWS(payload)
    token.add_signature(
        signer.toJWK(),
        alg=None,
        protected=None if protected is None else json.dumps(protected, indent=2),
        header=None if header is None else json.dumps(header),
    )
    made = json.loads(token.serialize(compact=False))
    raw = {key: base64.urlsafe_b64decode(made[key] + "=" * (-len(made[key]) % 4))
           for key in ("protected", "signature") if key in made}
    if form == "general":
        return {"payload": _b64(payload),
                "signatures": [{"protected": made["protected"], "signature": made["signature"]}]}
    signature = {}
    if header is not None:
        signature["header"] = header
    if "protected" in raw:
        signature["protected"] = wrap(raw["protected"])
    signature["signature"] = wrap(raw["signature"])
    if form == "reference":
        return {"unprotected": {"dig": "S512"}, "payload": wrap(payload), "signatures": [signature]}
    return {"payload": wrap(payload), **signature}


def referenceSigned(payload: dict, signer: KeyPair, form: str = "reference",
                    identifier: str | None = None, **options) -> dict:
    """
    A signed Mesh object (C{{"Identifier", "SignedData"}}, untagged) whose
    payload is C{payload} pretty-printed, signed by C{signer} in C{form}.

    @param identifier: the envelope's C{Identifier}; by default the
        payload's own.
    """
    if identifier is None:
        [body] = payload.values()
        identifier = body["Identifier"]
    return {"Identifier": identifier,
            "SignedData": referenceJWS(_pretty(payload), signer, form, **options)}


def mangled(signed: dict) -> dict:
    """
    The same signed object with one bit of its (first) signature flipped,
    whatever its JWS form.
    """
    copy = json.loads(json.dumps(signed))
    data = copy["SignedData"]
    holder = data["signatures"][0] if "signatures" in data else data
    text = holder["signature"].replace("\n", "")
    raw = bytearray(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    raw[len(raw) // 2] ^= 1
    holder["signature"] = wrap(bytes(raw)) if "\n" in holder["signature"] else _b64(bytes(raw))
    return copy
