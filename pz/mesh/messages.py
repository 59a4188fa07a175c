# -*- test-case-name: tests.mesh.portal.test_messages -*-
"""
The Mesh portal protocol's messages (draft-hallambaker-mesh-reference-03,
section 7): one request and one response structure per transaction, and the
common structures they use, declared with L{pz.mesh.schema} so that they are
checked, tagged and round-tripped exactly like the profiles they carry.

Every transaction is one request answered by one response. Over HTTP the
request is the tagged JSON of a L{MeshRequest} subclass
(C{{"HelloRequest": {}}}) and the answer the tagged JSON of the matching
L{MeshResponse} subclass (C{{"HelloResponse": {"Status": 201}}}), or of
L{MeshResponse} itself when the request could not be read at all (section
7.2.1 allows any parent of the specified response).

It also holds the account name rules (ValidateAccount, CreateAccount),
which the portal and its clients share.

Names are the draft's. Where the draft is silent or wrong, this module says
so where the structure is declared; in short:

    - L{DataItem} (used by GetResponse and TransferResponse) is named by the
      draft but never defined; here it is one record of the portal's log.
    - L{CreateRequest.Profile}, L{PublishRequest.Entry} and
      L{ConnectStatusResponse.Zone} are extensions: the draft's CreateRequest
      says it associates a profile with the account but has no field for
      it, its PublishRequest has no field for what is published, and a zone
      certificate is this project's addition.
    - The draft has ConnectStartResponse, ConnectStatusResponse,
      ConnectPendingResponse and ConnectCompleteResponse inherit from
      MeshRequest; they are responses, so here they inherit from
      L{MeshResponse}.
"""

from __future__ import annotations

import string
from datetime import datetime

from pz.mesh.model import Entry, SignedConnectionRequest, SignedConnectionResult, SignedPersonalProfile
from pz.mesh.schema import (
    Boolean,
    DateTime,
    Integer,
    List,
    String,
    Struct,
    Structure,
    Tagged,
    meshField,
    meshStructure,
)
from pz.udf import fingerprint

__all__ = [
    # 7.1 / 7.2 base messages
    "MeshRequest",
    "MeshResponse",
    # 7.2.2 - 7.2.5 status codes, and the HTTP binding's own
    "SUCCESS_OK",
    "SUCCESS_CREATED",
    "SUCCESS_UPDATED",
    "REDIRECT_PERMANENT",
    "REDIRECT_TEMPORARY",
    "BAD_REQUEST",
    "CLIENT_UNAUTHORIZED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "ALREADY_EXISTS",
    "TOO_LARGE",
    "SERVER_INTERNAL",
    "SERVER_OVERLOAD",
    "STATUS_NAMES",
    # 7.4 common structures
    "Version",
    "Encoding",
    "KeyValue",
    "SearchConstraints",
    "DataItem",
    "ZoneCredentials",
    # 7.5 - 7.15 transactions
    "HelloRequest",
    "HelloResponse",
    "ValidateRequest",
    "ValidateResponse",
    "CreateRequest",
    "CreateResponse",
    "GetRequest",
    "GetResponse",
    "PublishRequest",
    "PublishResponse",
    "StatusRequest",
    "StatusResponse",
    "ConnectStartRequest",
    "ConnectStartResponse",
    "ConnectStatusRequest",
    "ConnectStatusResponse",
    "ConnectPendingRequest",
    "ConnectPendingResponse",
    "ConnectCompleteRequest",
    "ConnectCompleteResponse",
    "TransferRequest",
    "TransferResponse",
    "GetRecordsRequest",
    "GetRecordsResponse",
    # the transaction table
    "TRANSACTIONS",
    "responseTypeFor",
    # account names
    "ACCOUNT_MINIMUM",
    "ACCOUNT_MAXIMUM",
    "ACCOUNT_NAME_TYPE",
    "normaliseAccount",
    "accountProblems",
    "accountNameFingerprint",
]


# ---------------------------------------------------------------------------
# 7.2 Status codes
# ---------------------------------------------------------------------------

#: 7.2.2 SuccessOK: the draft gives it the same code as SuccessCreated.
SUCCESS_OK = 201
#: 7.2.2 SuccessCreated: completed, a new data item was created.
SUCCESS_CREATED = 201
#: 7.2.2 SuccessUpdated: completed, an existing data item was updated.
SUCCESS_UPDATED = 202
#: 7.2.3 RedirectPermanent: the service has moved; StatusDescription is its URI.
REDIRECT_PERMANENT = 303
#: 7.2.3 RedirectTemporary: the service is elsewhere for now (here: a
#: read-only replica sends writes to its primary).
REDIRECT_TEMPORARY = 307
#: Not in the draft (section 7.2 only says 4xx is failure): the request
#: could not be read, or breaks the protocol's rules.
BAD_REQUEST = 400
#: 7.2.4 ClientUnauthorized: a signature rule is broken.
CLIENT_UNAUTHORIZED = 401
#: 7.2.4 NotFound.
NOT_FOUND = 404
#: HTTP binding: a method other than POST.
METHOD_NOT_ALLOWED = 405
#: 7.2.4 AlreadyExists.
ALREADY_EXISTS = 409
#: HTTP binding: the body is larger than the portal accepts.
TOO_LARGE = 413
#: 7.2.5 ServerInternal.
SERVER_INTERNAL = 500
#: 7.2.5 ServerOverload.
SERVER_OVERLOAD = 503

#: The draft's name for each code (and the binding's, for 400, 405, 413).
STATUS_NAMES = {
    201: "SuccessOK",
    202: "SuccessUpdated",
    303: "RedirectPermanent",
    307: "RedirectTemporary",
    400: "BadRequest",
    401: "ClientUnauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    413: "RequestTooLarge",
    500: "ServerInternal",
    503: "ServerOverload",
}


# ---------------------------------------------------------------------------
# 7.1, 7.2 Base messages
# ---------------------------------------------------------------------------


@meshStructure
class MeshRequest(Structure):
    """
    7.1.1 Base class for all request messages. C{Portal} names the portal
    the request is for; this portal does not require it.
    """

    Portal: str | None = meshField(String)


@meshStructure
class MeshResponse(Structure):
    """
    7.2.1 Base class for all response messages: the status code (authoritative,
    whatever the HTTP status says) and a description for people and logs.
    For a redirect (303, 307) the description is the URI of the service to
    use instead.
    """

    Status: int | None = meshField(Integer)
    StatusDescription: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 7.4 Common structures
# ---------------------------------------------------------------------------


@meshStructure
class Encoding(Structure):
    """
    7.4.2 A message content encoding: its IANA name and, for encodings with
    a named dictionary, the dictionary's name.
    """

    ID: tuple[str, ...] | None = meshField(List(String))
    Dictionary: tuple[str, ...] | None = meshField(List(String))


@meshStructure
class Version(Structure):
    """
    7.4.1 A protocol version the service speaks, the encodings it accepts
    (JSON when none are listed) and the URIs it prefers to be reached at.
    """

    Major: int | None = meshField(Integer)
    Minor: int | None = meshField(Integer)
    Encodings: tuple[Encoding, ...] | None = meshField(List(Struct(Encoding)))
    URI: tuple[str, ...] | None = meshField(List(String))


@meshStructure
class KeyValue(Structure):
    """
    7.4.3 One selection criterion of a Get: entries indexed under C{Key} with
    the value C{Value}. The keys this portal indexes are listed in
    C{docs/mesh-portal.md} (C{Type}, C{Name}, C{Device}, C{Application},
    C{Profile}).
    """

    Key: str | None = meshField(String)
    Value: str | None = meshField(String)


@meshStructure
class SearchConstraints(Structure):
    """
    7.4.4 Limits on a search: a publication time window (C{NotBefore}
    inclusive, C{Before} exclusive), the most entries and bytes one answer
    may hold, and C{PageKey}, which continues an earlier search: with it,
    every other constraint but C{MaxEntries} and C{MaxBytes} is ignored.
    """

    NotBefore: datetime | None = meshField(DateTime)
    Before: datetime | None = meshField(DateTime)
    MaxEntries: int | None = meshField(Integer)
    MaxBytes: int | None = meshField(Integer)
    PageKey: str | None = meshField(String)


@meshStructure
class DataItem(Structure):
    """
    One record of the portal's append-only log, as Get and Transfer return it.

    The draft names C{DataItem} ("mesh data records") without defining it;
    this definition is ours. C{Sequence} is the record's transaction
    identifier (1, 2, 3, ... in the order the portal accepted them) and
    C{Published} when it was accepted; C{Entry} is the tagged entry itself
    (a signed profile, an escrow entry, an L{Account}, a connection request
    or result). C{Previous} and C{Hash} are the chain: C{Hash} is the hex
    SHA-256 of C{Previous} (as bytes) followed by the record's canonical form
    (see L{pzh.portal.store.recordHash}); Get fills them in when asked for
    C{Full} records, Transfer always.
    """

    Sequence: int | None = meshField(Integer)
    Published: datetime | None = meshField(DateTime)
    Entry: Structure | None = meshField(Tagged(Structure))
    Previous: str | None = meshField(String)
    Hash: str | None = meshField(String)


@meshStructure
class ZoneCredentials(Structure):
    """
    Extension: what a personal zone hub hosting the portal gives a device
    whose connection was accepted, so that it can join the zone (the Mesh
    route of enrolment, beside pairing codes): its zone certificate, issued
    for the key whose request the device put in its signed profile
    (C{DeviceAuthenticationKey.X509CSR}), the zone CA and revocation list
    (PEM text), the hub's address (C{host:port}), the device's id in the
    zone and the zone's id.
    """

    Zone: str | None = meshField(String)
    Device: str | None = meshField(String)
    Hub: str | None = meshField(String)
    Certificate: str | None = meshField(String)
    CA: str | None = meshField(String)
    CRL: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 7.5 Hello
# ---------------------------------------------------------------------------


@meshStructure
class HelloRequest(MeshRequest):
    """
    7.5.1 Asks which protocol versions and encodings the service supports.
    """


@meshStructure
class HelloResponse(MeshResponse):
    """
    7.5.2 Always reports success, with the version the service speaks and
    any alternates.
    """

    Version: Version | None = meshField(Struct(Version))
    # By name: inside this class body "Version" is now the field above.
    Alternates: tuple[Version, ...] | None = meshField(List(Struct("Version")))


# ---------------------------------------------------------------------------
# 7.6 ValidateAccount
# ---------------------------------------------------------------------------


@meshStructure
class ValidateRequest(MeshRequest):
    """
    7.6.1 A proposed account name. C{Reserve} asks the service to hold the
    name (this portal does not: the draft lets it decline); C{Language}
    lists the languages the client prefers for C{Reason}.
    """

    Account: str | None = meshField(String)
    Reserve: bool | None = meshField(Boolean)
    Language: tuple[str, ...] | None = meshField(List(String))


@meshStructure
class ValidateResponse(MeshResponse):
    """
    7.6.2 Whether the proposed name is acceptable and, either way, the rules:
    the shortest and longest names accepted, the characters of the proposal
    that are not, and a reason when it is refused. A valid answer does not
    promise that CreateAccount will succeed.
    """

    Valid: bool | None = meshField(Boolean)
    Minimum: int | None = meshField(Integer)
    Maximum: int | None = meshField(Integer)
    InvalidCharacters: str | None = meshField(String)
    Reason: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 7.7 CreateAccount
# ---------------------------------------------------------------------------


@meshStructure
class CreateRequest(MeshRequest):
    """
    7.7.1 Asks for a new account bound to a personal profile.

    C{Profile} is an extension: the draft says the request specifies "the
    Mesh profile to be associated with the account" but gives no field for
    it (later drafts add one of this name). The profile is what authorises
    the request: it must verify, and its C{Names} must list the account
    name's fingerprint (L{accountNameFingerprint}), so
    its signature covers the binding of this name to this profile.
    """

    Account: str | None = meshField(String)
    Profile: SignedPersonalProfile | None = meshField(Struct(SignedPersonalProfile))


@meshStructure
class CreateResponse(MeshResponse):
    """
    7.7.2 Reports the success or failure of a Create transaction.
    """


# ---------------------------------------------------------------------------
# 7.8 Get
# ---------------------------------------------------------------------------


@meshStructure
class GetRequest(MeshRequest):
    """
    7.8.1 What to retrieve: the entry with C{Identifier}, the entries of
    C{Account}, the entries indexed under every one of C{KeyValues}, or any
    combination (all must hold). Without C{Multiple} only the most recently
    published match is returned; with it, every match, in pages bounded by
    C{SearchConstraints}. C{Full} adds the log chain fields to each item.
    """

    Identifier: str | None = meshField(String)
    Account: str | None = meshField(String)
    KeyValues: tuple[KeyValue, ...] | None = meshField(List(Struct(KeyValue)))
    SearchConstraints: SearchConstraints | None = meshField(Struct(SearchConstraints))
    Multiple: bool | None = meshField(Boolean)
    Full: bool | None = meshField(Boolean)


@meshStructure
class GetResponse(MeshResponse):
    """
    7.8.2 The matching entries, and C{PageKey} when more remain.
    """

    DataItems: tuple[DataItem, ...] | None = meshField(List(Struct(DataItem)))
    PageKey: str | None = meshField(String)


@meshStructure
class GetRecordsRequest(GetRequest):
    """
    The GetRecords transaction of the Client-Service Protocol draft
    (draft-hallambaker-mathematical-mesh-protocols-00, an earlier text of
    the same transactions), which names it and its response but gives the
    request no fields: here it selects as L{GetRequest} does.
    """


@meshStructure
class GetRecordsResponse(GetResponse):
    """
    "List of mesh data records matching the request": each item is the log
    record, always with its chain fields (C{Previous}, C{Hash}), as a
    L{GetRequest} with C{Full} gives them.
    """


# ---------------------------------------------------------------------------
# 7.9 Publish
# ---------------------------------------------------------------------------


@meshStructure
class PublishRequest(MeshRequest):
    """
    7.9.1 Requests publication of a Mesh entry.

    C{Entry} is an extension (the draft lists no field; later drafts add this
    one): a signed master, personal, device or application profile, or an
    escrow or encrypted entry, tagged with its type.
    """

    Entry: Entry | None = meshField(Tagged(Entry))


@meshStructure
class PublishResponse(MeshResponse):
    """
    7.9.2 201 for a new entry, 202 for a new version of one already held.
    """


# ---------------------------------------------------------------------------
# 7.10 Status
# ---------------------------------------------------------------------------


@meshStructure
class StatusRequest(MeshRequest):
    """
    7.10.1 Asks for the portal's view of its log.
    """


@meshStructure
class StatusResponse(MeshResponse):
    """
    7.10.2 When the log was last written and its checkpoint: this portal
    recomputes the checkpoint on every write, so C{LastCheckpointTime} is
    C{LastWriteTime}, C{NextCheckpointTime} is absent, and C{CheckpointValue}
    is the hex hash at the head of the chain (64 zeros for an empty log).
    """

    LastWriteTime: datetime | None = meshField(DateTime)
    LastCheckpointTime: datetime | None = meshField(DateTime)
    NextCheckpointTime: datetime | None = meshField(DateTime)
    CheckpointValue: str | None = meshField(String)


# ---------------------------------------------------------------------------
# 7.11 - 7.14 Device connection
# ---------------------------------------------------------------------------


@meshStructure
class ConnectStartRequest(MeshRequest):
    """
    7.11.1 A new device's request to join the profile of account
    C{AccountID}, signed by the device.
    """

    SignedRequest: SignedConnectionRequest | None = meshField(Struct(SignedConnectionRequest))
    AccountID: str | None = meshField(String)


@meshStructure
class ConnectStartResponse(MeshResponse):
    """
    7.11.2 Reports the success or failure of a ConnectStart transaction (the
    draft says it inherits MeshRequest; it is a response).
    """


@meshStructure
class ConnectStatusRequest(MeshRequest):
    """
    7.12.1 A device asks what became of its request to join C{AccountID}.
    """

    AccountID: str | None = meshField(String)
    DeviceID: str | None = meshField(String)


@meshStructure
class ConnectStatusResponse(MeshResponse):
    """
    7.12.2 The signed result once an administration device has answered;
    absent while the request is pending.

    C{Zone} is an extension: when a personal zone hub hosts the portal and
    the request was accepted, the device's zone certificate and what goes
    with it (L{ZoneCredentials}).
    """

    Result: SignedConnectionResult | None = meshField(Struct(SignedConnectionResult))
    Zone: ZoneCredentials | None = meshField(Struct(ZoneCredentials))


@meshStructure
class ConnectPendingRequest(MeshRequest):
    """
    7.13.1 An administration device asks for the requests pending on
    C{AccountID}.
    """

    AccountID: str | None = meshField(String)
    SearchConstraints: SearchConstraints | None = meshField(Struct(SearchConstraints))


@meshStructure
class ConnectPendingResponse(MeshResponse):
    """
    7.13.2 The pending requests, oldest first, and C{PageKey} when more
    remain.
    """

    Pending: tuple[SignedConnectionRequest, ...] | None = meshField(
        List(Struct(SignedConnectionRequest))
    )
    PageKey: str | None = meshField(String)


@meshStructure
class ConnectCompleteRequest(MeshRequest):
    """
    7.14.1 Posts the answer to a pending request, signed by an administration
    key of the account's profile.
    """

    Result: SignedConnectionResult | None = meshField(Struct(SignedConnectionResult))
    AccountID: str | None = meshField(String)


@meshStructure
class ConnectCompleteResponse(MeshResponse):
    """
    7.14.2 Reports the success or failure of a ConnectComplete transaction.
    """


# ---------------------------------------------------------------------------
# 7.15 Transfer
# ---------------------------------------------------------------------------


@meshStructure
class TransferRequest(MeshRequest):
    """
    7.15.1 Asks for a range of the portal's log, for another portal to
    replay. C{SearchConstraints.PageKey} is the sequence number, in decimal,
    of the last record the caller already holds ("0" or absent: from the
    start).
    """

    SearchConstraints: SearchConstraints | None = meshField(Struct(SearchConstraints))


@meshStructure
class TransferResponse(MeshResponse):
    """
    7.15.2 The log records, in order, with their chain fields, and
    C{PageKey} when more remain.
    """

    DataItems: tuple[DataItem, ...] | None = meshField(List(Struct(DataItem)))
    PageKey: str | None = meshField(String)


#: Each transaction of section 7: its name, request type and response type.
TRANSACTIONS: tuple[tuple[str, type, type], ...] = (
    ("Hello", HelloRequest, HelloResponse),
    ("ValidateAccount", ValidateRequest, ValidateResponse),
    ("CreateAccount", CreateRequest, CreateResponse),
    ("Get", GetRequest, GetResponse),
    ("GetRecords", GetRecordsRequest, GetRecordsResponse),
    ("Publish", PublishRequest, PublishResponse),
    ("Status", StatusRequest, StatusResponse),
    ("ConnectStart", ConnectStartRequest, ConnectStartResponse),
    ("ConnectStatus", ConnectStatusRequest, ConnectStatusResponse),
    ("ConnectPending", ConnectPendingRequest, ConnectPendingResponse),
    ("ConnectComplete", ConnectCompleteRequest, ConnectCompleteResponse),
    ("Transfer", TransferRequest, TransferResponse),
)

_RESPONSES = {request: response for _, request, response in TRANSACTIONS}


def responseTypeFor(requestType: type) -> type:
    """
    Return the response type of a transaction's request type, or
    L{MeshResponse} for anything else.
    """
    return _RESPONSES.get(requestType, MeshResponse)


# ---------------------------------------------------------------------------
# Account names (ValidateAccount, CreateAccount)
# ---------------------------------------------------------------------------

#: The shortest and longest account names accepted (ValidateResponse
#: Minimum and Maximum).
ACCOUNT_MINIMUM = 3
ACCOUNT_MAXIMUM = 64

#: The characters an account name may hold once lower-cased; it must start
#: with a letter or a digit. Names compare without regard to case (draft
#: section 8.1.2), so they are kept in lower case.
_ACCOUNT_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "._-@")

#: The content type of an account name's fingerprint.
ACCOUNT_NAME_TYPE = "application/mmm-account"


def normaliseAccount(name: str) -> str:
    """
    The form an account name is stored and compared in: lower case.
    """
    return name.lower()


def accountProblems(name: str) -> tuple:
    """
    Check a proposed account name against this portal's rules: 3 to 64
    characters, ASCII letters (either case), digits, '.', '_', '-' and '@',
    starting with a letter or a digit.

    @return: C{(invalidCharacters, reason)}: the characters of C{name} that
        are not accepted (each once, in order of appearance; empty if none),
        and why the name is refused, or None if it is acceptable.
    """
    invalid = "".join(dict.fromkeys(c for c in name if c.lower() not in _ACCOUNT_CHARACTERS))
    if len(name) < ACCOUNT_MINIMUM:
        return invalid, f"an account name has at least {ACCOUNT_MINIMUM} characters"
    if len(name) > ACCOUNT_MAXIMUM:
        return invalid, f"an account name has at most {ACCOUNT_MAXIMUM} characters"
    if invalid:
        return invalid, (
            f"an account name may not contain {invalid!r}: only letters a-z, digits, "
            "'.', '_', '-' and '@'"
        )
    if not name[0].isalnum():
        return invalid, "an account name starts with a letter or a digit"
    return invalid, None


def accountNameFingerprint(name: str) -> str:
    """
    The fingerprint a personal profile lists in its C{Names} to authorise an
    account of that name on a portal (CreateAccount): the UDF of the
    normalised name with content type C{application/mmm-account}. The draft
    indexes profiles by fingerprints of names rather than the names, against
    enumeration; listing it puts the binding of name to profile under the
    profile's signature.
    """
    return fingerprint(ACCOUNT_NAME_TYPE, normaliseAccount(name).encode("utf-8"))
