# -*- test-case-name: tests.mesh.portal.test_service -*-
"""
What each Mesh portal transaction does, without HTTP.

L{PortalService.dispatch} takes a decoded request (a L{MeshRequest}
subclass) and returns the transaction's response, its C{Status} one of the
draft's codes (section 7.2): 201 done, 202 an existing item updated, 303 or
307 go elsewhere, 401 a signature rule broken, 404 not found, 409 already
exists, 500 an internal error, 503 overloaded; plus 400 for a request that
breaks the protocol's rules. Nothing is stored unless the answer is 201 or
202, and nothing a failed transaction did is left behind.

Who may change what (the zone's rule: no unauthenticated input changes
state). Every record the portal accepts is checked by
L{PortalService._admit}, the same way when a client sends it and when a
replica replays it:

    - an account (CreateAccount) is bound to a personal profile that
      verifies and whose C{Names} lists the account name's fingerprint
      (L{pz.mesh.messages.accountNameFingerprint}), so the profile's online key signed the
      binding of that name;
    - a personal profile is signed by one of its master's online keys and
      newer than the one held; master and device profiles by their own keys;
      an application profile by a device its entry in the account's personal
      profile names in C{SignID};
    - a connection request is signed by the device asking; its result by an
      administration key (online key) of the account's profile, and it must
      answer the request that is pending, exactly;
    - unsigned escrow and encrypted entries can be written once and never
      replaced.

Entries are found by Get under their C{Identifier}, except that a master
profile, whose Identifier is its personal profile's, is filed as
C{Master-<UDF>} (the draft's section 3.3 name, "Master" + UDF), an account
as C{Account-<name>}, and escrow and encrypted entries, which anyone could
name anything, as C{Escrow-<Identifier>} and C{Encrypted-<Identifier>}. An
identifier already used by another kind of entry, or by another account's,
is refused (409): first come, first served. An escrow entry is also found
by its own C{Identifier}, as the Mesh reference implementation's recovery
asks for it (the UDF of the key that encrypts it), when no other entry has
that identifier: a real entry is never hidden by an escrow entry named
after it.

GetRecords (of the Client-Service Protocol draft) selects as Get does and
returns the log records, always with their chain fields.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from datetime import datetime, timezone
from typing import Callable, Optional

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from pz.dispatch import MessageTable
from pz.errors import ZoneError
from pz.mesh.errors import MeshError, MeshFormatError, MeshSignatureError, MeshStaleProfileError
from pz.mesh.keys import toCryptography
from pz.mesh.messages import (
    ACCOUNT_MAXIMUM,
    ACCOUNT_MINIMUM,
    ALREADY_EXISTS,
    BAD_REQUEST,
    CLIENT_UNAUTHORIZED,
    NOT_FOUND,
    REDIRECT_PERMANENT,
    REDIRECT_TEMPORARY,
    SERVER_INTERNAL,
    SERVER_OVERLOAD,
    SUCCESS_CREATED,
    SUCCESS_OK,
    SUCCESS_UPDATED,
    ConnectCompleteRequest,
    ConnectCompleteResponse,
    ConnectPendingRequest,
    ConnectPendingResponse,
    ConnectStartRequest,
    ConnectStartResponse,
    ConnectStatusRequest,
    ConnectStatusResponse,
    CreateRequest,
    CreateResponse,
    DataItem,
    Encoding,
    GetRecordsRequest,
    GetRecordsResponse,
    GetRequest,
    GetResponse,
    HelloRequest,
    HelloResponse,
    MeshResponse,
    PublishRequest,
    PublishResponse,
    SearchConstraints,
    StatusRequest,
    StatusResponse,
    TransferRequest,
    TransferResponse,
    ValidateRequest,
    ValidateResponse,
    Version,
    ZoneCredentials,
    accountNameFingerprint,
    accountProblems,
    normaliseAccount,
    responseTypeFor,
)
from pz.mesh.model import (
    Account,
    DeviceProfile,
    EncryptedProfile,
    EscrowEntry,
    Profile,
    SignedApplicationProfile,
    SignedConnectionRequest,
    SignedConnectionResult,
    SignedDeviceProfile,
    SignedMasterProfile,
    SignedPersonalProfile,
)
from pz.mesh.schema import DateTime, Structure, encodeDateTime, fromJSON
from pz.mesh.signing import (
    checkFresh,
    unverifiedPayload,
    verifyApplicationProfile,
    verifyConnectionRequest,
    verifyConnectionResult,
    verifyDeviceProfile,
    verifyMasterProfile,
    verifyPersonalProfile,
)
from pzh.enrolment import validDeviceName
from pzh.portal.commit import GroupCommit, commitHere
from pzh.portal.interfaces import IZoneEnroller
from pzh.portal.store import (
    AccountRecord,
    ChainError,
    Effects,
    IndexEntry,
    IPortalStore,
    LogRecord,
    Query,
    StoredEntry,
    timeMicros,
)

__all__ = [
    "PortalService",
    "PortalSettings",
    "PortalError",
    "PROTOCOL_VERSION",
    "LOG_TYPES",
    "indexKeyOf",
    "zoneRequestOf",
]

#: The protocol version Hello reports: this draft, -03.
PROTOCOL_VERSION = Version(
    Major=3, Minor=0, Encodings=(Encoding(ID=("application/json",)),)
)

#: The entry types that may appear in the log.
LOG_TYPES = (
    Account,
    SignedPersonalProfile,
    SignedMasterProfile,
    SignedDeviceProfile,
    SignedApplicationProfile,
    EscrowEntry,
    EncryptedProfile,
    SignedConnectionRequest,
    SignedConnectionResult,
)

#: The requests that change state, which a read-only replica redirects.
_WRITES = (CreateRequest, PublishRequest, ConnectStartRequest, ConnectCompleteRequest)


class PortalError(MeshError):
    """
    A transaction refused with one of the draft's status codes.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


#: An entry not read yet (L{PortalService._held}'s C{stored}).
_UNREAD = object()


def indexKeyOf(entry: Structure) -> Optional[str]:
    """
    The identifier Get finds C{entry} under (see the module docstring), or
    None for what is not searchable (connection requests and results).
    """
    if isinstance(entry, Account):
        return None if entry.AccountID is None else "Account-" + entry.AccountID
    identifier = getattr(entry, "Identifier", None)
    if identifier is None or isinstance(entry, (SignedConnectionRequest, SignedConnectionResult)):
        return None
    if isinstance(entry, SignedMasterProfile):
        return "Master-" + identifier
    if isinstance(entry, EscrowEntry):
        return "Escrow-" + identifier
    if isinstance(entry, EncryptedProfile):
        return "Encrypted-" + identifier
    return identifier


def zoneRequestOf(device: DeviceProfile) -> Optional[x509.CertificateSigningRequest]:
    """
    The zone certificate request a device put in its signed profile, as the
    C{X509CSR} of its C{DeviceAuthenticationKey} (the draft's own field, so
    the device's signature covers it), or None if it put none.

    @raise PortalError: 400 if it is not a DER request with a valid
        signature, 401 if it is not for the authentication key itself.
    """
    key = device.DeviceAuthenticationKey
    if key is None or key.X509CSR is None:
        return None
    try:
        csr = x509.load_der_x509_csr(key.X509CSR)
        valid = csr.is_signature_valid
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise PortalError(
            BAD_REQUEST, "DeviceAuthenticationKey.X509CSR is not a signed DER certificate request"
        )
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        expected = toCryptography(key).public_bytes(*spki)
    except MeshError as error:
        raise PortalError(BAD_REQUEST, f"DeviceAuthenticationKey: {error.message}") from None
    if csr.public_key().public_bytes(*spki) != expected:
        raise PortalError(
            CLIENT_UNAUTHORIZED,
            "the zone certificate request is not for the device's authentication key",
        )
    return csr


@attrs.frozen
class PortalSettings:
    """
    A portal's tunables.

    @ivar uri: where clients reach this portal, reported by Hello.
    @ivar maxPending: requests that may wait on one account; beyond, 503.
    @ivar maxPageEntries: the most entries one Get, ConnectPending or
        Transfer answer holds, whatever the client asks.
    @ivar maxPageBytes: the most entry bytes one answer holds (at least one
        entry is always returned).
    @ivar primary: for a read-only replica, the primary's URI: requests that
        change state are answered 307 RedirectTemporary with it.
    @ivar movedTo: for a portal that has moved: every request is answered
        303 RedirectPermanent with this URI.
    @ivar commitDelay: seconds a batch of writes stays open for more before
        it is committed (L{pzh.portal.commit}); 0 commits what arrived in
        the same turn of the reactor.
    """

    uri: Optional[str] = None
    maxPending: int = 32
    maxPageEntries: int = 100
    maxPageBytes: int = 512 * 1024
    primary: Optional[str] = None
    movedTo: Optional[str] = None
    commitDelay: float = 0.0


#: The most of a refusal's reason that goes into the log: a reason may
#: quote what the client sent, and a client must not write the log.
_LOG_REASON = 300


def _forLog(text: str) -> str:
    """
    C{text} cut to L{_LOG_REASON} characters, saying how long it was.
    """
    if len(text) <= _LOG_REASON:
        return text
    return f"{text[:_LOG_REASON]}... ({len(text)} characters)"


def _success(kind: type, status: int = SUCCESS_OK, description: Optional[str] = None, **fields):
    if description is None:
        description = {201: "SuccessOK", 202: "SuccessUpdated"}[status]
    return kind(Status=status, StatusDescription=description, **fields)


def _encodePageKey(fields: dict) -> str:
    text = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode("ascii")


def _decodePageKey(text: str, kind: str) -> dict:
    refused = PortalError(BAD_REQUEST, "SearchConstraints.PageKey is not one this portal issued")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise refused from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise refused
    return data


def _optionalInt(data: dict, name: str, refused: Exception) -> Optional[int]:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise refused
    return value


def _optionalStr(data: dict, name: str, refused: Exception) -> Optional[str]:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise refused
    return value


class PortalService:
    """
    A Mesh portal: the transactions of draft section 7 over an
    L{IPortalStore}.

    @param clock: gives the time records are accepted at (C{seconds()}),
        and schedules group commits (C{callLater}, for L{submit}).
    @param enroller: if given, accepted devices get zone certificates.
    @param commit: runs a group commit (L{pzh.portal.commit.commitHere},
        or a L{pzh.portal.commit.ThreadedCommit}).
    @param connections: if given, called C{(account, deviceUDF, state)}
        once a connection request is stored (C{state} C{pending}) or
        answered (C{Accepted} or C{Refused}), after the commit that keeps
        it: the hub tells its admin page.
    """

    log = Logger()

    #: The portal's transactions, by request type.
    requests = MessageTable()

    def __init__(self, store: IPortalStore, clock, settings: PortalSettings = PortalSettings(),
                 enroller: Optional[IZoneEnroller] = None, commit=commitHere,
                 connections: Optional[Callable[[str, str, str], None]] = None) -> None:
        self.store = IPortalStore(store)
        self._connections = connections
        self.settings = settings
        self._clock = clock
        self._enroller = None if enroller is None else IZoneEnroller(enroller)
        self._batches = GroupCommit(
            self.store, self.dispatch, self._opensBatch, self._commitFailed, clock,
            settings.commitDelay, commit, self._batchSettled,
        )
        # What the open batch appended, for its log line (see _accept).
        self._batchRecords: list = []

    # -- group commit ---------------------------------------------------------

    def submit(self, request: Structure) -> Deferred:
        """
        L{dispatch}, with the writes that arrive together committed together
        (L{pzh.portal.commit}); fires with the response once what the
        transaction did or saw is durable. What the HTTP binding calls.
        """
        return self._batches.submit(request)

    def drain(self) -> Deferred:
        """
        Commit and answer what is waiting; fires when nothing is left (call
        it before closing the store).
        """
        return self._batches.drain()

    def _opensBatch(self, request: Structure) -> bool:
        return (
            isinstance(request, _WRITES)
            and self.settings.primary is None
            and self.settings.movedTo is None
        )

    def _commitFailed(self, request: Structure, error: Exception) -> MeshResponse:
        responseType = responseTypeFor(type(request))
        if isinstance(error, sqlite3.OperationalError) and (
            "locked" in str(error) or "busy" in str(error)
        ):
            return responseType(Status=SERVER_OVERLOAD, StatusDescription="the portal is busy; try again")
        return responseType(
            Status=SERVER_INTERNAL,
            StatusDescription="the portal could not store this transaction, nothing of it was "
            "kept; see the portal's log",
        )

    # -- entry point ----------------------------------------------------------

    def dispatch(self, request: Structure) -> MeshResponse:
        """
        Carry out one transaction and return its response; never raises.
        """
        responseType = responseTypeFor(type(request))
        if not self.requests.handles(type(request)):
            return MeshResponse(
                Status=BAD_REQUEST,
                StatusDescription=f"{type(request).__name__} is not a request of the Mesh portal protocol",
            )
        if self.settings.movedTo is not None:
            return responseType(Status=REDIRECT_PERMANENT, StatusDescription=self.settings.movedTo)
        if self.settings.primary is not None and isinstance(request, _WRITES):
            return responseType(Status=REDIRECT_TEMPORARY, StatusDescription=self.settings.primary)
        try:
            return self.requests.dispatch(type(request), {}, request)
        except MeshError as error:
            self.log.info(
                "{transaction} refused with {status}: {reason}",
                transaction=type(request).__name__, status=error.status,
                reason=_forLog(error.message),
            )
            return responseType(Status=error.status, StatusDescription=error.message)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                self.log.warn("portal store busy: {error}", error=str(error))
                return responseType(
                    Status=SERVER_OVERLOAD, StatusDescription="the portal is busy; try again"
                )
            self.log.failure("portal store failed on {transaction}",
                             transaction=type(request).__name__)
        except Exception:
            self.log.failure("{transaction} failed", transaction=type(request).__name__)
        return responseType(
            Status=SERVER_INTERNAL, StatusDescription="an internal error occurred; see the portal's log"
        )

    # -- helpers --------------------------------------------------------------

    def _now(self) -> tuple:
        """
        The time to stamp a record with, never earlier than the head's (the
        draft's transaction identifiers are monotonic in time).
        """
        when = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        head = self.store.head()
        if head.time is not None:
            last = DateTime.decode(head.time, "time")
            if when < last:
                when = last
        return when, encodeDateTime(when)

    def _accountName(self, name: Optional[str], what: str) -> str:
        if name is None:
            raise PortalError(BAD_REQUEST, f"{what} names no account")
        _, reason = accountProblems(name)
        if reason is not None:
            raise PortalError(BAD_REQUEST, f"{name!r} cannot be an account name: {reason}")
        return normaliseAccount(name)

    def _account(self, name: Optional[str], what: str) -> AccountRecord:
        if name is None:
            raise PortalError(BAD_REQUEST, f"{what} names no account")
        account = self.store.account(normaliseAccount(name))
        if account is None:
            raise PortalError(NOT_FOUND, f"there is no account {name!r} here")
        return account

    def _personalOf(self, account: AccountRecord):
        stored = self.store.entry(account.profile)
        if stored is None:
            raise PortalError(NOT_FOUND, f"account {account.account} has no personal profile yet")
        return unverifiedPayload(SignedPersonalProfile.fromJSON(stored.data))

    def _held(self, key: str, kind: type, account: Optional[str],
              stored=_UNREAD) -> Optional[Structure]:
        """
        The version of C{key} held now, if any, after checking that it is of
        the same kind and account as the one offered.

        @param stored: the store's entry under C{key}, if the caller has
            just read it in this transaction (L{_publish} has).
        """
        if stored is _UNREAD:
            stored = self.store.entry(key)
        if stored is None:
            return None
        if stored.type != kind.__name__ or stored.account != account:
            raise PortalError(
                ALREADY_EXISTS, f"the identifier {key} is already used by another entry"
            )
        return kind.fromJSON(stored.data)

    def _limits(self, constraints: SearchConstraints) -> tuple:
        entries = self.settings.maxPageEntries
        size = self.settings.maxPageBytes
        if constraints.MaxEntries is not None:
            if constraints.MaxEntries < 1:
                raise PortalError(BAD_REQUEST, "SearchConstraints.MaxEntries must be at least 1")
            entries = min(entries, constraints.MaxEntries)
        if constraints.MaxBytes is not None:
            if constraints.MaxBytes < 1:
                raise PortalError(BAD_REQUEST, "SearchConstraints.MaxBytes must be at least 1")
            size = min(size, constraints.MaxBytes)
        return entries, size

    @staticmethod
    def _window(constraints: SearchConstraints) -> tuple:
        notBefore = None if constraints.NotBefore is None else timeMicros(constraints.NotBefore)
        before = None if constraints.Before is None else timeMicros(constraints.Before)
        return notBefore, before

    @staticmethod
    def _page(rows: list, limit: int, budget: int, size) -> tuple:
        """
        The rows that fit in one answer, and whether more remain.
        """
        taken, used = [], 0
        for row in rows[:limit]:
            if taken and used + size(row) > budget:
                break
            taken.append(row)
            used += size(row)
        return taken, len(taken) < len(rows)

    def _accept(self, entry: Structure, time: str, effects: Optional[Effects] = None,
                held=_UNREAD) -> LogRecord:
        """
        Admit C{entry} (unless its C{effects} are given) and append it.

        @param held: the store's entry under C{indexKeyOf(entry)}, if the
            caller has just read it in this transaction, so that admission
            does not read it again.
        """
        if effects is None:
            effects = self._admit(entry, time, held=held)
        record = self.store.append(time, entry.toJSON(), effects)
        identifier = indexKeyOf(entry) or getattr(entry, "Identifier", None)
        change = self._connectionChange(entry, effects)
        if self.store.batchIntact():
            # Logged once the batch is committed, in one line for all.
            self._batchRecords.append((record.sequence, type(entry).__name__, identifier, change))
        else:
            self.log.info(
                "log record {sequence}: {type} {identifier}",
                sequence=record.sequence, type=type(entry).__name__, identifier=identifier,
            )
            self._tell([change])
        return record

    @staticmethod
    def _connectionChange(entry: Structure, effects: Effects) -> Optional[tuple]:
        """
        C{(account, device, state)} for a record that stores or answers a
        connection request, else None.
        """
        if effects.pending is not None:
            return (*effects.pending, "pending")
        if effects.completes is not None and isinstance(entry, SignedConnectionResult):
            return (*effects.completes, unverifiedPayload(entry).Result)
        return None

    def _tell(self, changes: list) -> None:
        """
        Tell the C{connections} observer of the committed C{changes}; one
        that fails is logged, and the portal's work goes on.
        """
        if self._connections is None:
            return
        for change in changes:
            if change is None:
                continue
            try:
                self._connections(*change)
            except Exception:
                self.log.failure("the portal's connections observer failed")

    def _batchSettled(self, committed: bool) -> None:
        """
        The open batch is committed (or given up): log, in one line, the
        records it appended, each with its sequence number, type and
        identifier, as one line per record did when each Publish was
        committed alone. Writing one log line per Publish cost the served
        portal more CPU than any check did but the signature's; a line per
        commit says the same, and only once it is true.

        A record that a refused transaction appended was undone with it:
        its sequence number was then either given to a later record of the
        batch (noted after it, so the later one is kept) or is past the
        head the commit left.
        """
        noted, self._batchRecords = self._batchRecords, []
        if not committed or not noted:
            return
        head = self.store.head().sequence
        kept: dict = {}
        for sequence, kind, identifier, change in noted:
            if sequence <= head:
                kept[sequence] = (kind, identifier, change)
        if not kept:
            return
        self.log.info(
            "committed log {span}: {records}",
            span=(f"record {min(kept)}" if len(kept) == 1
                  else f"records {min(kept)}-{max(kept)}"),
            records="; ".join(
                f"{sequence} {kind} {identifier}"
                for sequence, (kind, identifier, _) in sorted(kept.items())
            ),
        )
        self._tell([change for _, (_, _, change) in sorted(kept.items())])

    # -- admission: the rules every record obeys --------------------------------

    def _admit(self, entry: Structure, time: str, replaying: bool = False,
               held=_UNREAD) -> Effects:
        """
        Check that C{entry} may be appended to the log now, and work out
        what it changes. Used for records clients send and for records a
        replica replays, so both end in the same state.

        @param held: the store's entry under C{indexKeyOf(entry)}, if the
            caller has just read it in this transaction (see L{_held}).
        @raise MeshError: with the status to answer if it may not.
        """
        if isinstance(entry, Account):
            return self._admitAccount(entry)
        if isinstance(entry, SignedPersonalProfile):
            return self._admitPersonal(entry, time, held)
        if isinstance(entry, SignedMasterProfile):
            return self._admitMaster(entry, held)
        if isinstance(entry, SignedDeviceProfile):
            return self._admitDevice(entry, held)
        if isinstance(entry, SignedApplicationProfile):
            return self._admitApplication(entry)
        if isinstance(entry, (EscrowEntry, EncryptedProfile)):
            return self._admitSealed(entry, held)
        if isinstance(entry, SignedConnectionRequest):
            return self._admitRequest(entry, replaying)
        if isinstance(entry, SignedConnectionResult):
            return self._admitResult(entry)
        raise PortalError(BAD_REQUEST, f"{type(entry).__name__} cannot be published")

    @staticmethod
    def _keyValues(kind: str, payload: Optional[Structure], *extra) -> tuple:
        pairs = [("Type", kind)]
        if isinstance(payload, Profile):
            pairs += [("Name", name) for name in payload.Names or ()]
        pairs += extra
        return tuple(dict.fromkeys(pairs))

    def _admitAccount(self, account: Account) -> Effects:
        name = self._accountName(account.AccountID, "the Account entry")
        if name != account.AccountID:
            raise PortalError(BAD_REQUEST, "an Account entry holds the name in lower case")
        if self.store.account(name) is not None:
            raise PortalError(ALREADY_EXISTS, f"the account {name} already exists")
        if not account.UserProfileUDF or account.Created is None or account.Modified is None:
            raise PortalError(BAD_REQUEST, "an Account entry needs UserProfileUDF, Created, Modified")
        if account.Status != "Open":
            raise PortalError(BAD_REQUEST, "a new account is Open")
        other = self.store.accountByProfile(account.UserProfileUDF)
        if other is not None:
            raise PortalError(
                ALREADY_EXISTS,
                f"profile {account.UserProfileUDF} already has an account here ({other.account})",
            )
        return Effects(
            account=AccountRecord(
                name, account.UserProfileUDF, account.Status,
                encodeDateTime(account.Created), encodeDateTime(account.Modified),
            ),
            index=IndexEntry(
                "Account-" + name, name, "Account",
                self._keyValues("Account", None, ("Profile", account.UserProfileUDF)),
            ),
        )

    def _admitPersonal(self, signed: SignedPersonalProfile, time: str, held=_UNREAD) -> Effects:
        udf = signed.Identifier
        if udf is None:
            raise PortalError(BAD_REQUEST, "the SignedPersonalProfile has no Identifier")
        account = self.store.accountByProfile(udf)
        if account is None:
            raise PortalError(
                NOT_FOUND, f"no account here is bound to profile {udf}; create one first"
            )
        previous = self._held(udf, SignedPersonalProfile, account.account, held)
        personal = verifyPersonalProfile(signed, previous)
        if previous is None and accountNameFingerprint(account.account) not in (personal.Names or ()):
            raise PortalError(
                CLIENT_UNAUTHORIZED,
                f"the profile does not authorise the account {account.account}: its Names must "
                f"list {accountNameFingerprint(account.account)}",
            )
        extra = [("Profile", udf)]
        extra += [("Device", device.Identifier) for device in personal.Devices or ()]
        extra += [("Application", app.Identifier) for app in personal.Applications or ()]
        return Effects(
            index=IndexEntry(
                udf, account.account, "SignedPersonalProfile",
                self._keyValues("SignedPersonalProfile", personal, *extra),
            ),
            accountModified=None if previous is None else (account.account, time),
        )

    def _admitMaster(self, signed: SignedMasterProfile, held=_UNREAD) -> Effects:
        udf = signed.Identifier
        account = None if udf is None else self.store.accountByProfile(udf)
        if account is None:
            raise PortalError(NOT_FOUND, f"no account here is bound to profile {udf}")
        key = indexKeyOf(signed)
        master = verifyMasterProfile(
            signed, self._held(key, SignedMasterProfile, account.account, held)
        )
        embedded = unverifiedPayload(self._personalOf(account).SignedMasterProfile)
        if embedded.Updated is not None and (master.Updated is None or master.Updated < embedded.Updated):
            raise MeshStaleProfileError(
                f"{key}: is older than the master profile the account's personal profile holds"
            )
        return Effects(
            index=IndexEntry(
                key, account.account, "SignedMasterProfile",
                self._keyValues("SignedMasterProfile", master, ("Profile", udf)),
            )
        )

    def _admitDevice(self, signed: SignedDeviceProfile, held=_UNREAD) -> Effects:
        if signed.Identifier is None:
            raise PortalError(BAD_REQUEST, "the SignedDeviceProfile has no Identifier")
        device = verifyDeviceProfile(
            signed, self._held(signed.Identifier, SignedDeviceProfile, None, held)
        )
        return Effects(
            index=IndexEntry(
                signed.Identifier, None, "SignedDeviceProfile",
                self._keyValues("SignedDeviceProfile", device),
            )
        )

    def _admitApplication(self, signed: SignedApplicationProfile) -> Effects:
        identifier = signed.Identifier
        if identifier is None:
            raise PortalError(BAD_REQUEST, "the SignedApplicationProfile has no Identifier")
        candidates = self.store.search(
            Query(keyValues=[("Type", "SignedPersonalProfile"), ("Application", identifier)]),
            self.store.head().sequence, (0, ""), 16,
        )
        if not candidates:
            raise PortalError(NOT_FOUND, f"no personal profile here lists application {identifier}")
        failure: Optional[MeshError] = None
        for candidate in candidates:
            personal = unverifiedPayload(SignedPersonalProfile.fromJSON(candidate.data))
            try:
                application = verifyApplicationProfile(signed, personal)
            except MeshSignatureError as error:
                failure = error
                continue
            previous = self._held(identifier, SignedApplicationProfile, candidate.account)
            if previous is not None:
                checkFresh(signed, previous)
            return Effects(
                index=IndexEntry(
                    identifier, candidate.account, "SignedApplicationProfile",
                    self._keyValues(
                        "SignedApplicationProfile", application,
                        ("Application", identifier), ("Profile", personal.Identifier),
                    ),
                )
            )
        raise failure

    def _admitSealed(self, entry: Structure, held=_UNREAD) -> Effects:
        key = indexKeyOf(entry)
        if key is None:
            raise PortalError(BAD_REQUEST, f"the {type(entry).__name__} has no Identifier")
        if (self.store.entry(key) if held is _UNREAD else held) is not None:
            raise PortalError(
                ALREADY_EXISTS, f"{key} already exists; unsigned entries are written once"
            )
        kind = type(entry).__name__
        return Effects(index=IndexEntry(key, None, kind, self._keyValues(kind, None)))

    def _admitRequest(self, signed: SignedConnectionRequest, replaying: bool) -> Effects:
        request = verifyConnectionRequest(signed)
        account = self.store.accountByProfile(request.ParentUDF)
        if account is None:
            raise PortalError(NOT_FOUND, f"no account here is bound to profile {request.ParentUDF}")
        device = signed.Identifier
        personal = self._personalOf(account)
        if device in {d.Identifier for d in personal.Devices or ()}:
            raise PortalError(
                ALREADY_EXISTS, f"device {device} is already connected to account {account.account}"
            )
        if (
            not replaying
            and self.store.pendingRequest(account.account, device) is None
            and self.store.countPending(account.account) >= self.settings.maxPending
        ):
            raise PortalError(
                SERVER_OVERLOAD,
                f"{self.settings.maxPending} requests are already waiting on account "
                f"{account.account}; try again once they are answered",
            )
        profile = unverifiedPayload(request.Device)
        if zoneRequestOf(profile) is not None and self._enroller is not None and not replaying:
            if not validDeviceName(profile.Description or ""):
                raise PortalError(
                    BAD_REQUEST,
                    "a device asking for a zone certificate needs a Description that can be its "
                    "name: 1-63 letters, digits, '.', '_' or '-'",
                )
        return Effects(pending=(account.account, device))

    def _admitResult(self, signed: SignedConnectionResult) -> Effects:
        result = unverifiedPayload(signed)
        account = self.store.accountByProfile(result.ParentUDF or "")
        if account is None:
            raise PortalError(NOT_FOUND, f"no account here is bound to profile {result.ParentUDF}")
        device = signed.Identifier
        pending = self.store.pendingRequest(account.account, device or "")
        verifyConnectionResult(signed, self._personalOf(account))
        if pending is None:
            raise PortalError(
                NOT_FOUND, f"no request from device {device} is pending on account {account.account}"
            )
        asked = unverifiedPayload(SignedConnectionRequest.fromJSON(pending.data))
        if asked.Device != result.Device:
            raise PortalError(
                NOT_FOUND,
                f"the result answers another request of device {device} than the one pending",
            )
        return Effects(completes=(account.account, device))

    # -- transactions ---------------------------------------------------------

    @requests.handler(HelloRequest)
    def _hello(self, request: HelloRequest) -> HelloResponse:
        version = PROTOCOL_VERSION
        if self.settings.uri is not None:
            version = attrs.evolve(version, URI=(self.settings.uri,))
        return _success(HelloResponse, Version=version)

    @requests.handler(ValidateRequest)
    def _validate(self, request: ValidateRequest) -> ValidateResponse:
        if request.Account is None:
            raise PortalError(BAD_REQUEST, "ValidateRequest names no Account")
        invalid, reason = accountProblems(request.Account)
        if reason is None and self.store.account(normaliseAccount(request.Account)) is not None:
            reason = f"the account {normaliseAccount(request.Account)} already exists"
        return _success(
            ValidateResponse,
            Valid=reason is None,
            Minimum=ACCOUNT_MINIMUM,
            Maximum=ACCOUNT_MAXIMUM,
            InvalidCharacters=invalid or None,
            Reason=reason,
        )

    @requests.handler(CreateRequest)
    def _create(self, request: CreateRequest) -> CreateResponse:
        name = self._accountName(request.Account, "CreateRequest")
        if request.Profile is None:
            raise PortalError(BAD_REQUEST, "CreateRequest carries no Profile to bind the account to")
        if self.store.account(name) is not None:
            raise PortalError(ALREADY_EXISTS, f"the account {name} already exists")
        personal = verifyPersonalProfile(request.Profile)
        other = self.store.accountByProfile(personal.Identifier)
        if other is not None:
            raise PortalError(
                ALREADY_EXISTS,
                f"profile {personal.Identifier} already has an account here ({other.account})",
            )
        with self.store.transaction():
            when, time = self._now()
            self._accept(
                Account(
                    AccountID=name, UserProfileUDF=personal.Identifier, Status="Open",
                    Created=when, Modified=when,
                ),
                time,
            )
            self._accept(request.Profile, time)
        return _success(CreateResponse, SUCCESS_CREATED, f"SuccessCreated: account {name}")

    @requests.handler(PublishRequest)
    def _publish(self, request: PublishRequest) -> PublishResponse:
        entry = request.Entry
        if entry is None:
            raise PortalError(BAD_REQUEST, "PublishRequest carries no Entry")
        if isinstance(entry, (SignedConnectionRequest, SignedConnectionResult)):
            raise PortalError(
                BAD_REQUEST, "connection requests and results go through ConnectStart and "
                "ConnectComplete, not Publish",
            )
        if not isinstance(entry, LOG_TYPES):
            raise PortalError(BAD_REQUEST, f"{type(entry).__name__} cannot be published")
        key = indexKeyOf(entry)
        if key is None:
            raise PortalError(BAD_REQUEST, f"the {type(entry).__name__} has no Identifier")
        # Read once: admission checks against this same entry (nothing else
        # writes between here and the transaction, see pzh.portal.commit).
        held = self.store.entry(key)
        if held is not None and held.data == entry.toJSON():
            return _success(PublishResponse, SUCCESS_OK, f"{key} is already published")
        with self.store.transaction():
            _, time = self._now()
            self._accept(entry, time, held=held)
        if held is None:
            return _success(PublishResponse, SUCCESS_CREATED, f"SuccessCreated: {key}")
        return _success(PublishResponse, SUCCESS_UPDATED, f"SuccessUpdated: {key}")

    def _item(self, stored: StoredEntry, full: bool) -> DataItem:
        fields = {}
        if full:
            record = self.store.record(stored.sequence)
            fields = {"Previous": record.previous.hex(), "Hash": record.hash.hex()}
        return DataItem(
            Sequence=stored.sequence,
            Published=DateTime.decode(stored.time, "time"),
            Entry=fromJSON(stored.data),
            **fields,
        )

    @requests.handler(GetRecordsRequest)
    def _getRecords(self, request: GetRecordsRequest) -> GetRecordsResponse:
        return self._get(request, GetRecordsResponse, alwaysFull=True)

    def _identifierFor(self, identifier: Optional[str]) -> Optional[str]:
        """
        Where Get looks for C{identifier}: there, or, when nothing is filed
        under it, the escrow entry of that Identifier (the reference's
        recovery flow asks for the escrow entry by its own Identifier).
        """
        if identifier is None or self.store.entry(identifier) is not None:
            return identifier
        escrow = "Escrow-" + identifier
        return escrow if self.store.entry(escrow) is not None else identifier

    @requests.handler(GetRequest)
    def _get(self, request: GetRequest, responseType: type = GetResponse,
             alwaysFull: bool = False) -> GetResponse:
        constraints = request.SearchConstraints or SearchConstraints()
        limit, budget = self._limits(constraints)
        if constraints.PageKey is not None:
            query, snapshot, after, full = self._getPage(constraints.PageKey)
            full = full or alwaysFull
            multiple = True
        else:
            pairs = []
            for pair in request.KeyValues or ():
                if pair.Key is None or pair.Value is None:
                    raise PortalError(BAD_REQUEST, "each KeyValue needs a Key and a Value")
                pairs.append((pair.Key, pair.Value))
            account = None
            if request.Account is not None:
                account = self._account(request.Account, "GetRequest").account
            if request.Identifier is None and account is None and not pairs:
                raise PortalError(BAD_REQUEST, "GetRequest needs an Identifier, an Account or KeyValues")
            notBefore, before = self._window(constraints)
            identifier = self._identifierFor(request.Identifier)
            query = Query(identifier, account, pairs, notBefore, before)
            snapshot, after = self.store.head().sequence, (0, "")
            full, multiple = bool(request.Full) or alwaysFull, bool(request.Multiple)
        if not multiple:
            rows = self.store.search(query, snapshot, after, 1, newestFirst=True)
            if not rows:
                raise PortalError(NOT_FOUND, "no entry matches")
            return _success(responseType, DataItems=(self._item(rows[0], full),))
        rows = self.store.search(query, snapshot, after, limit + 1)
        taken, more = self._page(rows, limit, budget, lambda row: len(row.data))
        if not taken and constraints.PageKey is None:
            raise PortalError(NOT_FOUND, "no entry matches")
        pageKey = None
        if more:
            last = taken[-1]
            pageKey = _encodePageKey({
                "kind": "Get", "identifier": query.identifier, "account": query.account,
                "keyValues": [list(pair) for pair in query.keyValues],
                "notBefore": query.notBefore, "before": query.before,
                "snapshot": snapshot, "after": [last.sequence, last.identifier], "full": full,
            })
        return _success(
            responseType, DataItems=tuple(self._item(row, full) for row in taken), PageKey=pageKey
        )

    def _getPage(self, pageKey: str) -> tuple:
        data = _decodePageKey(pageKey, "Get")
        refused = PortalError(BAD_REQUEST, "SearchConstraints.PageKey is not one this portal issued")
        pairs = data.get("keyValues")
        after = data.get("after")
        if (
            not isinstance(pairs, list)
            or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                for p in pairs
            )
            or not isinstance(after, list)
            or len(after) != 2
            or not isinstance(after[0], int)
            or not isinstance(after[1], str)
            or not isinstance(data.get("full"), bool)
        ):
            raise refused
        query = Query(
            _optionalStr(data, "identifier", refused),
            _optionalStr(data, "account", refused),
            [tuple(p) for p in pairs],
            _optionalInt(data, "notBefore", refused),
            _optionalInt(data, "before", refused),
        )
        snapshot = _optionalInt(data, "snapshot", refused)
        if snapshot is None:
            raise refused
        return query, snapshot, tuple(after), data["full"]

    @requests.handler(StatusRequest)
    def _status(self, request: StatusRequest) -> StatusResponse:
        head = self.store.head()
        when = None if head.time is None else DateTime.decode(head.time, "time")
        return _success(
            StatusResponse,
            LastWriteTime=when,
            LastCheckpointTime=when,
            CheckpointValue=head.hash.hex(),
        )

    @requests.handler(ConnectStartRequest)
    def _connectStart(self, request: ConnectStartRequest) -> ConnectStartResponse:
        account = self._account(request.AccountID, "ConnectStartRequest")
        signed = request.SignedRequest
        if signed is None:
            raise PortalError(BAD_REQUEST, "ConnectStartRequest carries no SignedRequest")
        asked = unverifiedPayload(signed)
        if asked.ParentUDF != account.profile:
            raise PortalError(
                BAD_REQUEST,
                f"the request is to join profile {asked.ParentUDF}, but account "
                f"{account.account} is profile {account.profile}",
            )
        existing = self.store.pendingRequest(account.account, signed.Identifier or "")
        if existing is not None and existing.data == signed.toJSON():
            return _success(ConnectStartResponse, SUCCESS_OK, "the request is already pending")
        with self.store.transaction():
            _, time = self._now()
            self._accept(signed, time)
        if existing is not None:
            return _success(ConnectStartResponse, SUCCESS_UPDATED, "the pending request was replaced")
        return _success(ConnectStartResponse, SUCCESS_CREATED, "the request is pending")

    @requests.handler(ConnectStatusRequest)
    def _connectStatus(self, request: ConnectStatusRequest) -> ConnectStatusResponse:
        account = self._account(request.AccountID, "ConnectStatusRequest")
        device = request.DeviceID
        if device is None:
            raise PortalError(BAD_REQUEST, "ConnectStatusRequest names no DeviceID")
        result = self.store.result(account.account, device)
        if result is not None:
            zone = self.store.zoneCredentials(account.account, device)
            return _success(
                ConnectStatusResponse,
                Result=SignedConnectionResult.fromJSON(result),
                Zone=None if zone is None else ZoneCredentials.fromJSON(zone),
            )
        if self.store.pendingRequest(account.account, device) is not None:
            return _success(
                ConnectStatusResponse, SUCCESS_OK, "pending: no administration device has answered yet"
            )
        raise PortalError(
            NOT_FOUND, f"there is no request from device {device} on account {account.account}"
        )

    @requests.handler(ConnectPendingRequest)
    def _connectPending(self, request: ConnectPendingRequest) -> ConnectPendingResponse:
        account = self._account(request.AccountID, "ConnectPendingRequest")
        constraints = request.SearchConstraints or SearchConstraints()
        limit, budget = self._limits(constraints)
        if constraints.PageKey is not None:
            data = _decodePageKey(constraints.PageKey, "ConnectPending")
            refused = PortalError(BAD_REQUEST, "SearchConstraints.PageKey is not one this portal issued")
            after = _optionalInt(data, "after", refused)
            if after is None or data.get("account") != account.account:
                raise refused
            notBefore = _optionalInt(data, "notBefore", refused)
            before = _optionalInt(data, "before", refused)
        else:
            after = 0
            notBefore, before = self._window(constraints)
        rows = self.store.pendingRequests(account.account, after, limit + 1, notBefore, before)
        taken, more = self._page(rows, limit, budget, lambda row: len(row.data))
        pageKey = None
        if more:
            pageKey = _encodePageKey({
                "kind": "ConnectPending", "account": account.account,
                "after": taken[-1].sequence, "notBefore": notBefore, "before": before,
            })
        return _success(
            ConnectPendingResponse,
            Pending=tuple(SignedConnectionRequest.fromJSON(row.data) for row in taken),
            PageKey=pageKey,
        )

    @requests.handler(ConnectCompleteRequest)
    def _connectComplete(self, request: ConnectCompleteRequest) -> ConnectCompleteResponse:
        account = self._account(request.AccountID, "ConnectCompleteRequest")
        signed = request.Result
        if signed is None:
            raise PortalError(BAD_REQUEST, "ConnectCompleteRequest carries no Result")
        result = unverifiedPayload(signed)
        if result.ParentUDF != account.profile:
            raise PortalError(
                BAD_REQUEST,
                f"the result is for profile {result.ParentUDF}, but account "
                f"{account.account} is profile {account.profile}",
            )
        effects = self._admit(signed, "")
        if result.Result == "Accepted" and self._enroller is not None:
            zone = self._enrol(unverifiedPayload(result.Device))
            if zone is not None:
                effects = attrs.evolve(
                    effects, zone=(account.account, signed.Identifier, zone.toJSON())
                )
        with self.store.transaction():
            _, time = self._now()
            self._accept(signed, time, effects)
        return _success(
            ConnectCompleteResponse, SUCCESS_CREATED, f"SuccessCreated: {result.Result}"
        )

    def _enrol(self, device: DeviceProfile) -> Optional[ZoneCredentials]:
        """
        Ask the hub for the accepted device's zone certificate, if the device
        asked for one.
        """
        csr = zoneRequestOf(device)
        if csr is None:
            return None
        pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        try:
            issued = self._enroller.enrolFromMesh(device.Description or "", pem, device.Identifier)
        except ZoneError as error:
            status = {
                "NAME_TAKEN": ALREADY_EXISTS, "BAD_REQUEST": BAD_REQUEST, "CERT_INVALID": BAD_REQUEST,
            }.get(error.code, SERVER_INTERNAL)
            raise PortalError(status, f"the zone refused the device: {error.code}: {error.message}")
        return ZoneCredentials(
            Zone=issued["zone"], Device=issued["device"], Hub=issued["hub"],
            Certificate=issued["certificate"], CA=issued["ca"], CRL=issued["crl"],
        )

    @requests.handler(TransferRequest)
    def _transfer(self, request: TransferRequest) -> TransferResponse:
        constraints = request.SearchConstraints or SearchConstraints()
        limit, budget = self._limits(constraints)
        notBefore, before = self._window(constraints)
        after = 0
        if constraints.PageKey is not None:
            if not constraints.PageKey.isdigit() or not constraints.PageKey.isascii():
                raise PortalError(
                    BAD_REQUEST,
                    "a Transfer PageKey is the decimal sequence number of the last record held",
                )
            after, notBefore, before = int(constraints.PageKey), None, None
        rows = self.store.records(after, limit + 1, notBefore, before)
        taken, more = self._page(rows, limit, budget, lambda row: len(row.entry))
        items = tuple(
            DataItem(
                Sequence=row.sequence,
                Published=DateTime.decode(row.time, "time"),
                Entry=fromJSON(row.entry),
                Previous=row.previous.hex(),
                Hash=row.hash.hex(),
            )
            for row in taken
        )
        pageKey = str(taken[-1].sequence) if more else None
        return _success(TransferResponse, DataItems=items, PageKey=pageKey)

    # -- replication ------------------------------------------------------------

    def replicate(self, item: DataItem) -> LogRecord:
        """
        Replay one record another portal's Transfer returned: it must follow
        this log's head and its hash must recompute (the chain), and its
        entry must pass the same checks it passed there (the signatures).

        @raise ChainError: if it does not chain.
        @raise MeshError: if its entry is refused.
        """
        if None in (item.Sequence, item.Published, item.Entry, item.Previous, item.Hash):
            raise MeshFormatError("a transferred DataItem needs Sequence, Published, Entry, "
                                  "Previous and Hash")
        if not isinstance(item.Entry, LOG_TYPES):
            raise MeshFormatError(f"{type(item.Entry).__name__} is not a log entry")
        try:
            previous, digest = bytes.fromhex(item.Previous), bytes.fromhex(item.Hash)
        except ValueError:
            raise MeshFormatError("Previous and Hash are hex SHA-256 values") from None
        time = encodeDateTime(item.Published)
        record = LogRecord(item.Sequence, time, item.Entry.toJSON(), previous, digest)
        with self.store.transaction():
            head = self.store.head()
            if record.sequence != head.sequence + 1 or record.previous != head.hash:
                raise ChainError(record.sequence, f"does not follow this log's head ({head.sequence})")
            effects = self._admit(item.Entry, time, replaying=True)
            self.store.replicate(record, effects)
        return record
