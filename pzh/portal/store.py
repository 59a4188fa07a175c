# -*- test-case-name: tests.mesh.portal.test_store -*-
"""
The Mesh portal's durable state: an append-only, hash-chained log, and the
indexes derived from it (accounts, searchable entries, pending connection
requests and their results).

The log is the truth. Every change the portal accepts is one record in it:
a sequence number (1, 2, 3, ...: the draft's transaction identifier), the
time it was accepted, the tagged JSON of the entry, the hash of the previous
record, and its own hash, C{SHA-256(previous + canonical record)} (see
L{recordHash}). Changing or dropping any record changes every hash after it,
so the head hash, which Status reports as the checkpoint, commits to the
whole history, and L{IPortalStore.verifyChain} finds where it was altered.

The indexes are what the log means: the service works out, for each record,
an L{Effects} value saying which account, entry version or connection it
creates or replaces, and the store applies the record and its effects in one
transaction, so the log and the indexes never disagree. A second portal that
replays the log (Transfer) works out the same effects and gets the same
state and the same checkpoint.

Entries are kept as versions, not overwritten: a search reads "the latest
version of each entry as of log position S", so a client paging through a
long answer sees one consistent snapshot, every entry exactly once, however
much is published meanwhile.

Callers only see L{IPortalStore}; L{SQLitePortalStore} is the default
backend. Its tables are prefixed C{mesh_}, so it can share a file with the
hub's own store. Like L{pzh.store.SQLiteHubStore} it opens its connection on
first use and must be closed before C{twistd} forks.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from datetime import datetime, timezone
from typing import Iterator, Optional

import attrs
from zope.interface import Interface, implementer

from pz.mesh.schema import DateTime
from pz.sqlite import SQLiteFile

__all__ = [
    "IPortalStore",
    "SQLitePortalStore",
    "LogRecord",
    "LogHead",
    "AccountRecord",
    "IndexEntry",
    "StoredEntry",
    "PendingRecord",
    "Effects",
    "Query",
    "ChainError",
    "GENESIS",
    "recordHash",
    "timeMicros",
]

#: The "previous hash" of the first record, and the checkpoint of an empty log.
GENESIS = bytes(32)


class ChainError(Exception):
    """
    The log does not chain: a record was altered, dropped or inserted, or a
    replayed record does not follow the head.

    @ivar sequence: the first record at fault.
    @ivar message: what is wrong, in a sentence.
    """

    def __init__(self, sequence: int, message: str) -> None:
        super().__init__(sequence, message)
        self.sequence = sequence
        self.message = message

    def __str__(self) -> str:
        return f"log record {self.sequence}: {self.message}"


def recordHash(previous: bytes, sequence: int, time: str, entry: bytes) -> bytes:
    """
    The hash of a log record: SHA-256 over the previous record's hash (32
    bytes; L{GENESIS} for the first) followed by the canonical record,
    C{"<sequence>\\n<time>\\n"} in ASCII and then the entry's tagged JSON
    bytes exactly as stored.

    @param time: RFC 3339 UTC, as L{pz.mesh.schema.encodeDateTime} writes it.
    """
    canonical = f"{sequence}\n{time}\n".encode("ascii") + entry
    return hashlib.sha256(previous + canonical).digest()


def timeMicros(when: datetime) -> int:
    """
    Microseconds since the epoch of an aware datetime, for ordering and
    comparing times exactly (RFC 3339 strings with and without a fraction
    do not sort as text).
    """
    delta = when.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@attrs.frozen
class LogRecord:
    """
    One record of the log.

    @ivar time: RFC 3339 UTC text, as hashed.
    @ivar entry: the tagged JSON of the entry, as hashed.
    """

    sequence: int
    time: str
    entry: bytes
    previous: bytes
    hash: bytes


@attrs.frozen
class LogHead:
    """
    Where the log ends: the last sequence number (0 when empty), its hash
    (the checkpoint; L{GENESIS} when empty) and time (None when empty).
    """

    sequence: int
    hash: bytes
    time: Optional[str]


@attrs.frozen
class AccountRecord:
    """
    A portal account. C{account} is the normalised (lower case) name;
    C{profile} the UDF of its personal profile; times are RFC 3339 text.
    """

    account: str
    profile: str
    status: str
    created: str
    modified: str


@attrs.frozen
class IndexEntry:
    """
    How a log record is found by Get: under C{identifier} (unique among
    current entries), belonging to C{account} (or to none), and under each
    C{(key, value)} of C{keyValues}.
    """

    identifier: str
    account: Optional[str]
    type: str
    keyValues: tuple = attrs.field(default=(), converter=tuple)


@attrs.frozen
class StoredEntry:
    """
    One version of a searchable entry: the log record that made it, and how
    it is indexed.
    """

    identifier: str
    account: Optional[str]
    type: str
    sequence: int
    time: str
    data: bytes


@attrs.frozen
class PendingRecord:
    """
    A device's connection request waiting on an account, made by log record
    C{sequence}.
    """

    account: str
    device: str
    sequence: int
    time: str
    data: bytes


@attrs.frozen
class Effects:
    """
    What one log record changes besides the log itself. Worked out by the
    service (the same way when a record is first accepted and when it is
    replayed), applied by the store with the record, atomically.

    @ivar account: an account to create or replace.
    @ivar index: the record is a new version of a searchable entry.
    @ivar accountModified: C{(account, time)}: the account changed at that
        time (its profile was updated).
    @ivar pending: C{(account, device)}: the record is that device's
        connection request, replacing any earlier request or result of it.
    @ivar completes: C{(account, device)}: the record is the result of that
        device's pending request, which it removes.
    @ivar zone: C{(account, device, data)}: zone credentials issued with the
        result. Not part of the log: they belong to the hub hosting this
        portal, and a replica never has them.
    """

    account: Optional[AccountRecord] = None
    index: Optional[IndexEntry] = None
    accountModified: Optional[tuple] = None
    pending: Optional[tuple] = None
    completes: Optional[tuple] = None
    zone: Optional[tuple] = None


@attrs.frozen
class Query:
    """
    A Get's selection: all given criteria must hold. C{notBefore} and
    C{before} are microseconds since the epoch (see L{timeMicros}).
    """

    identifier: Optional[str] = None
    account: Optional[str] = None
    keyValues: tuple = attrs.field(default=(), converter=tuple)
    notBefore: Optional[int] = None
    before: Optional[int] = None


class IPortalStore(Interface):
    """
    Everything the Mesh portal keeps across restarts.
    """

    def transaction():
        """
        A context manager: the appends and reads inside it form one
        transaction, committed when it exits normally and rolled back if it
        raises. Transactions do not nest. Inside a batch (L{beginBatch}) it
        is one step of the batch: rolled back alone if it raises, committed
        with the batch.
        """

    def beginBatch() -> None:
        """
        Open a batch: the transactions until L{commitBatch} or L{abortBatch}
        share one commit (group commit). Reads inside the batch see its
        uncommitted steps.
        """

    def commitBatch() -> None:
        """
        Make the batch durable. If that fails, nothing of the batch remains
        and the exception is raised.
        """

    def abortBatch() -> None:
        """
        Drop everything the open batch did.
        """

    def batchIntact() -> bool:
        """
        Whether a batch is open and its transaction still held: the
        database may roll a transaction back by itself on some errors (a
        full disk, an I/O error), and then the batch cannot commit.
        """

    def append(time: str, entry: bytes, effects: Effects) -> LogRecord:
        """
        Append a record after the head, with its effects, and return it.
        C{time} must not be earlier than the head's.
        """

    def replicate(record: LogRecord, effects: Effects) -> None:
        """
        Append a record made by another portal, with its effects, after
        checking that it follows the head: the next sequence number, the
        head's hash as its previous hash, and a hash that recomputes.

        @raise ChainError: if it does not.
        """

    def head() -> LogHead:
        """
        The end of the log.
        """

    def records(after: int, limit: int, notBefore: Optional[int] = None,
                before: Optional[int] = None) -> list:
        """
        Up to C{limit} L{LogRecord}s with sequence numbers above C{after},
        in order, optionally within a time window (microseconds).
        """

    def record(sequence: int) -> Optional[LogRecord]:
        """
        One record, or None.
        """

    def verifyChain() -> LogHead:
        """
        Recompute every hash from the first record on and return the head.

        @raise ChainError: naming the first record that does not chain.
        """

    def account(name: str) -> Optional[AccountRecord]:
        """
        The account with that (normalised) name, or None.
        """

    def accountByProfile(profile: str) -> Optional[AccountRecord]:
        """
        The account bound to that personal profile UDF, or None.
        """

    def entry(identifier: str) -> Optional[StoredEntry]:
        """
        The current version of an entry, or None.
        """

    def search(query: Query, snapshot: int, after: tuple, limit: int,
               newestFirst: bool = False) -> list:
        """
        Entries matching C{query} as of log position C{snapshot}: for each
        identifier, its latest version with a sequence number not above
        C{snapshot}, kept if that version matches. Ordered by C{(sequence,
        identifier)}, starting after the pair C{after}, at most C{limit}; or,
        with C{newestFirst}, from the newest down (C{after} ignored).
        """

    def pendingRequests(account: str, after: int, limit: int,
                        notBefore: Optional[int] = None, before: Optional[int] = None) -> list:
        """
        Up to C{limit} L{PendingRecord}s of C{account} made after log record
        C{after}, oldest first.
        """

    def allPending(limit: int) -> list:
        """
        Up to C{limit} L{PendingRecord}s of every account, oldest first
        (what the hub's admin page shows).
        """

    def pendingRequest(account: str, device: str) -> Optional[PendingRecord]:
        """
        That device's pending request on that account, or None.
        """

    def countPending(account: str) -> int:
        """
        How many requests are pending on C{account}.
        """

    def result(account: str, device: str) -> Optional[bytes]:
        """
        The tagged JSON of the result posted for that device, or None.
        """

    def zoneCredentials(account: str, device: str) -> Optional[bytes]:
        """
        The zone credentials issued with that device's result, or None.
        """

    def close() -> None:
        """
        Release the backend; the next call opens it again.
        """


_SCHEMA = """
CREATE TABLE IF NOT EXISTS mesh_log (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    entry BLOB NOT NULL,
    previous BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS mesh_accounts (
    account TEXT PRIMARY KEY,
    profile TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mesh_versions (
    seq INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    account TEXT,
    type TEXT NOT NULL,
    PRIMARY KEY (seq, identifier)
);
CREATE INDEX IF NOT EXISTS mesh_versions_identifier ON mesh_versions(identifier, seq);
CREATE INDEX IF NOT EXISTS mesh_versions_account ON mesh_versions(account, seq);
CREATE TABLE IF NOT EXISTS mesh_keyvalues (
    seq INTEGER NOT NULL,
    identifier TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mesh_keyvalues_kv ON mesh_keyvalues(key, value, seq);
CREATE INDEX IF NOT EXISTS mesh_keyvalues_version ON mesh_keyvalues(seq, identifier);
CREATE TABLE IF NOT EXISTS mesh_pending (
    account TEXT NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE INDEX IF NOT EXISTS mesh_pending_seq ON mesh_pending(account, seq);
CREATE TABLE IF NOT EXISTS mesh_results (
    account TEXT NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (account, device)
);
CREATE TABLE IF NOT EXISTS mesh_zone (
    account TEXT NOT NULL,
    device TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (account, device)
);
"""

_LOG_COLUMNS = "seq, time, entry, previous, hash"


def _record(row) -> LogRecord:
    return LogRecord(row[0], row[1], bytes(row[2]), bytes(row[3]), bytes(row[4]))


def _parseTime(text: str) -> int:
    return timeMicros(DateTime.decode(text, "time"))


@implementer(IPortalStore)
class SQLitePortalStore(SQLiteFile):
    """
    L{IPortalStore} in one SQLite file (WAL mode, synchronous writes).

    Entry data is not copied into the index tables: each version points at
    the log record that holds it.
    """

    schema = _SCHEMA
    # A batch may be committed by a writer thread (pzh.portal.commit) while
    # the reactor thread waits: never both at once.
    checkSameThread = False

    def __init__(self, path: str) -> None:
        self._depth = 0
        self._batch = False
        super().__init__(path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self._depth:
            raise RuntimeError("portal store transactions do not nest")
        if self._batch:
            with self._step():
                yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def _step(self) -> Iterator[None]:
        """
        One transaction inside a batch: a savepoint, so that a step that
        fails is undone alone and the batch goes on.
        """
        if not self._db.in_transaction:
            # Rolled back by SQLite itself (I/O error, full disk): a step
            # now would run, and commit, on its own.
            raise sqlite3.OperationalError("the batch's transaction was rolled back")
        self._db.execute("SAVEPOINT step")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self._db.in_transaction:
                self._db.execute("ROLLBACK TO step")
                self._db.execute("RELEASE step")
            raise
        self._depth = 0
        self._db.execute("RELEASE step")

    def beginBatch(self) -> None:
        if self._batch or self._depth:
            raise RuntimeError("a portal store batch is already open")
        self._db.execute("BEGIN IMMEDIATE")
        self._batch = True

    def commitBatch(self) -> None:
        if not self._batch:
            raise RuntimeError("no portal store batch is open")
        self._batch = False
        db = self._db
        try:
            if not db.in_transaction:
                raise sqlite3.OperationalError("the batch's transaction was rolled back")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def abortBatch(self) -> None:
        self._batch = False
        if self._connection is not None and self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def batchIntact(self) -> bool:
        return self._batch and self._db.in_transaction

    def close(self) -> None:
        # Closing drops an open batch's transaction: nothing of it was
        # committed, so nothing of it may have been answered.
        self._batch = False
        self._depth = 0
        super().close()

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        if self._depth:
            yield
        else:
            with self.transaction():
                yield

    # -- the log --------------------------------------------------------------

    def head(self) -> LogHead:
        row = self._one("SELECT seq, hash, time FROM mesh_log ORDER BY seq DESC LIMIT 1")
        if row is None:
            return LogHead(0, GENESIS, None)
        return LogHead(row[0], bytes(row[1]), row[2])

    def append(self, time: str, entry: bytes, effects: Effects) -> LogRecord:
        with self._atomic():
            head = self.head()
            micros = _parseTime(time)
            if head.time is not None and micros < _parseTime(head.time):
                raise ValueError(f"log time {time} is earlier than the head's {head.time}")
            sequence = head.sequence + 1
            record = LogRecord(
                sequence, time, bytes(entry), head.hash,
                recordHash(head.hash, sequence, time, entry),
            )
            self._insert(record, micros, effects)
        return record

    def replicate(self, record: LogRecord, effects: Effects) -> None:
        with self._atomic():
            head = self.head()
            if record.sequence != head.sequence + 1:
                raise ChainError(
                    record.sequence, f"does not follow the head of this log ({head.sequence})"
                )
            if record.previous != head.hash:
                raise ChainError(record.sequence, "its previous hash is not this log's head")
            expected = recordHash(record.previous, record.sequence, record.time, record.entry)
            if record.hash != expected:
                raise ChainError(record.sequence, "its hash does not match its content")
            micros = _parseTime(record.time)
            if head.time is not None and micros < _parseTime(head.time):
                raise ChainError(record.sequence, "its time is earlier than the previous record's")
            self._insert(record, micros, attrs.evolve(effects, zone=None))

    def _insert(self, record: LogRecord, micros: int, effects: Effects) -> None:
        db = self._db
        db.execute(
            f"INSERT INTO mesh_log ({_LOG_COLUMNS}, time_us) VALUES (?, ?, ?, ?, ?, ?)",
            (record.sequence, record.time, record.entry, record.previous, record.hash, micros),
        )
        if effects.account is not None:
            a = effects.account
            db.execute(
                "INSERT OR REPLACE INTO mesh_accounts (account, profile, status, created, modified)"
                " VALUES (?, ?, ?, ?, ?)",
                (a.account, a.profile, a.status, a.created, a.modified),
            )
        if effects.accountModified is not None:
            name, when = effects.accountModified
            db.execute("UPDATE mesh_accounts SET modified = ? WHERE account = ?", (when, name))
        if effects.index is not None:
            i = effects.index
            db.execute(
                "INSERT INTO mesh_versions (seq, identifier, account, type) VALUES (?, ?, ?, ?)",
                (record.sequence, i.identifier, i.account, i.type),
            )
            db.executemany(
                "INSERT INTO mesh_keyvalues (seq, identifier, key, value) VALUES (?, ?, ?, ?)",
                [(record.sequence, i.identifier, k, v) for k, v in i.keyValues],
            )
        if effects.pending is not None:
            account, device = effects.pending
            db.execute("DELETE FROM mesh_results WHERE account = ? AND device = ?", (account, device))
            db.execute("DELETE FROM mesh_zone WHERE account = ? AND device = ?", (account, device))
            db.execute(
                "INSERT OR REPLACE INTO mesh_pending (account, device, seq) VALUES (?, ?, ?)",
                (account, device, record.sequence),
            )
        if effects.completes is not None:
            account, device = effects.completes
            db.execute("DELETE FROM mesh_pending WHERE account = ? AND device = ?", (account, device))
            db.execute(
                "INSERT OR REPLACE INTO mesh_results (account, device, seq) VALUES (?, ?, ?)",
                (account, device, record.sequence),
            )
        if effects.zone is not None:
            account, device, data = effects.zone
            db.execute(
                "INSERT OR REPLACE INTO mesh_zone (account, device, data) VALUES (?, ?, ?)",
                (account, device, data),
            )

    def records(self, after: int, limit: int, notBefore: Optional[int] = None,
                before: Optional[int] = None) -> list:
        rows = self._db.execute(
            f"SELECT {_LOG_COLUMNS} FROM mesh_log WHERE seq > ?"
            " AND (? IS NULL OR time_us >= ?) AND (? IS NULL OR time_us < ?)"
            " ORDER BY seq LIMIT ?",
            (after, notBefore, notBefore, before, before, limit),
        )
        return [_record(row) for row in rows]

    def record(self, sequence: int) -> Optional[LogRecord]:
        row = self._one(f"SELECT {_LOG_COLUMNS} FROM mesh_log WHERE seq = ?", [sequence])
        return _record(row) if row else None

    def verifyChain(self) -> LogHead:
        previous, expected, last = GENESIS, 1, None
        for row in self._db.execute(f"SELECT {_LOG_COLUMNS} FROM mesh_log ORDER BY seq"):
            record = _record(row)
            if record.sequence != expected:
                raise ChainError(expected, "is missing")
            if record.previous != previous:
                raise ChainError(record.sequence, "its previous hash is not the hash of the record before")
            if record.hash != recordHash(previous, record.sequence, record.time, record.entry):
                raise ChainError(record.sequence, "its hash does not match its content")
            previous, expected, last = record.hash, expected + 1, record.time
        return LogHead(expected - 1, previous, last)

    # -- accounts -------------------------------------------------------------

    _ACCOUNT = "SELECT account, profile, status, created, modified FROM mesh_accounts"

    def account(self, name: str) -> Optional[AccountRecord]:
        row = self._one(self._ACCOUNT + " WHERE account = ?", [name])
        return AccountRecord(*row) if row else None

    def accountByProfile(self, profile: str) -> Optional[AccountRecord]:
        row = self._one(self._ACCOUNT + " WHERE profile = ?", [profile])
        return AccountRecord(*row) if row else None

    # -- entries --------------------------------------------------------------

    _ENTRY = (
        "SELECT v.identifier, v.account, v.type, v.seq, l.time, l.entry"
        " FROM mesh_versions v JOIN mesh_log l ON l.seq = v.seq"
    )

    @staticmethod
    def _entry(row) -> StoredEntry:
        return StoredEntry(row[0], row[1], row[2], row[3], row[4], bytes(row[5]))

    def entry(self, identifier: str) -> Optional[StoredEntry]:
        row = self._one(
            self._ENTRY + " WHERE v.identifier = ? ORDER BY v.seq DESC LIMIT 1", [identifier]
        )
        return self._entry(row) if row else None

    def search(self, query: Query, snapshot: int, after: tuple, limit: int,
               newestFirst: bool = False) -> list:
        where = [
            "v.seq <= ?",
            "v.seq = (SELECT MAX(w.seq) FROM mesh_versions w"
            " WHERE w.identifier = v.identifier AND w.seq <= ?)",
        ]
        args: list = [snapshot, snapshot]
        if query.identifier is not None:
            where.append("v.identifier = ?")
            args.append(query.identifier)
        if query.account is not None:
            where.append("v.account = ?")
            args.append(query.account)
        if query.notBefore is not None:
            where.append("l.time_us >= ?")
            args.append(query.notBefore)
        if query.before is not None:
            where.append("l.time_us < ?")
            args.append(query.before)
        for key, value in query.keyValues:
            where.append(
                "EXISTS (SELECT 1 FROM mesh_keyvalues k WHERE k.seq = v.seq"
                " AND k.identifier = v.identifier AND k.key = ? AND k.value = ?)"
            )
            args += [key, value]
        if newestFirst:
            order = "v.seq DESC, v.identifier DESC"
        else:
            where.append("(v.seq > ? OR (v.seq = ? AND v.identifier > ?))")
            args += [after[0], after[0], after[1]]
            order = "v.seq, v.identifier"
        sql = f"{self._ENTRY} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
        return [self._entry(row) for row in self._db.execute(sql, (*args, limit))]

    # -- connections ----------------------------------------------------------

    _PENDING = (
        "SELECT p.account, p.device, p.seq, l.time, l.entry"
        " FROM mesh_pending p JOIN mesh_log l ON l.seq = p.seq"
    )

    def pendingRequests(self, account: str, after: int, limit: int,
                        notBefore: Optional[int] = None, before: Optional[int] = None) -> list:
        rows = self._db.execute(
            self._PENDING + " WHERE p.account = ? AND p.seq > ?"
            " AND (? IS NULL OR l.time_us >= ?) AND (? IS NULL OR l.time_us < ?)"
            " ORDER BY p.seq LIMIT ?",
            (account, after, notBefore, notBefore, before, before, limit),
        )
        return [PendingRecord(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def allPending(self, limit: int) -> list:
        rows = self._db.execute(self._PENDING + " ORDER BY p.seq LIMIT ?", (limit,))
        return [PendingRecord(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def pendingRequest(self, account: str, device: str) -> Optional[PendingRecord]:
        r = self._one(self._PENDING + " WHERE p.account = ? AND p.device = ?", [account, device])
        return PendingRecord(r[0], r[1], r[2], r[3], bytes(r[4])) if r else None

    def countPending(self, account: str) -> int:
        return self._one("SELECT COUNT(*) FROM mesh_pending WHERE account = ?", [account])[0]

    def result(self, account: str, device: str) -> Optional[bytes]:
        row = self._one(
            "SELECT l.entry FROM mesh_results r JOIN mesh_log l ON l.seq = r.seq"
            " WHERE r.account = ? AND r.device = ?",
            [account, device],
        )
        return bytes(row[0]) if row else None

    def zoneCredentials(self, account: str, device: str) -> Optional[bytes]:
        row = self._one(
            "SELECT data FROM mesh_zone WHERE account = ? AND device = ?", [account, device]
        )
        return bytes(row[0]) if row else None

