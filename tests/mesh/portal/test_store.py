"""
Tests for L{pzh.portal.store}: the hash-chained log, its indexes, snapshot
searches, and that tampering is found.
"""

import hashlib
import sqlite3

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pzh.portal.store import (
    GENESIS,
    AccountRecord,
    ChainError,
    Effects,
    IndexEntry,
    IPortalStore,
    LogRecord,
    Query,
    SQLitePortalStore,
    recordHash,
    timeMicros,
)

T = "2016-09-20T12:00:00Z"


def _time(second: int) -> str:
    return f"2016-09-20T12:00:{second:02d}Z"


class StoreTestBase(SynchronousTestCase):
    """
    A fresh store in a temporary file.
    """

    def setUp(self):
        self.path = self.mktemp()
        self.store = SQLitePortalStore(self.path)
        self.addCleanup(self.store.close)

    def put(self, identifier, second=0, account=None, keyValues=(), data=None):
        """
        Append a record that is a new version of C{identifier}.
        """
        data = data or f'{{"Entry":{{"Identifier":"{identifier}","n":{second}}}}}'.encode()
        return self.store.append(
            _time(second), data, Effects(index=IndexEntry(identifier, account, "Entry", keyValues))
        )


class LogTests(StoreTestBase):
    """
    The log: sequence numbers, hashes, the head, verification.
    """

    def test_interface(self):
        """
        L{SQLitePortalStore} provides L{IPortalStore}.
        """
        self.assertTrue(verifyObject(IPortalStore, self.store))

    def test_emptyHead(self):
        """
        An empty log's head is sequence 0 with the all-zero hash and no time.
        """
        self.assertEqual((self.store.head().sequence, self.store.head().hash), (0, GENESIS))
        self.assertIsNone(self.store.head().time)
        self.assertEqual(self.store.verifyChain().hash, GENESIS)

    def test_recordHash(self):
        """
        A record's hash is SHA-256 over the previous hash and
        C{"seq\\ntime\\n" + entry}.
        """
        expected = hashlib.sha256(GENESIS + b"1\n" + T.encode() + b"\n" + b"{}").digest()
        self.assertEqual(recordHash(GENESIS, 1, T, b"{}"), expected)

    def test_appendChains(self):
        """
        Each appended record takes the next sequence number, names the
        previous record's hash and hashes over it; the head follows.
        """
        first = self.put("a", 0)
        second = self.put("b", 1)
        self.assertEqual((first.sequence, second.sequence), (1, 2))
        self.assertEqual(first.previous, GENESIS)
        self.assertEqual(second.previous, first.hash)
        self.assertEqual(second.hash, recordHash(first.hash, 2, _time(1), second.entry))
        self.assertEqual(self.store.head().hash, second.hash)
        self.assertEqual(self.store.verifyChain(), self.store.head())
        self.assertEqual(self.store.records(0, 10), [first, second])
        self.assertEqual(self.store.records(1, 10), [second])
        self.assertEqual(self.store.record(2), second)
        self.assertIsNone(self.store.record(3))

    def test_timeNeverGoesBack(self):
        """
        A record may not be earlier than the head.
        """
        self.put("a", 5)
        self.assertRaises(ValueError, self.put, "b", 4)
        self.assertEqual(self.store.head().sequence, 1)

    def test_recordsTimeWindow(self):
        """
        C{records} can be limited to a time window (microseconds), NotBefore
        inclusive and Before exclusive, and to a count.
        """
        for second in range(5):
            self.put(f"e{second}", second)
        from pz.mesh.schema import DateTime

        micros = lambda s: timeMicros(DateTime.decode(_time(s), "t"))
        window = self.store.records(0, 10, micros(1), micros(3))
        self.assertEqual([r.sequence for r in window], [2, 3])
        self.assertEqual([r.sequence for r in self.store.records(0, 2)], [1, 2])

    def tamper(self, sql, *args):
        """
        Change the file behind the store's back, as an attacker with the disk
        would.
        """
        db = sqlite3.connect(self.path)
        db.execute(sql, args)
        db.commit()
        db.close()

    def test_verifyFindsAlteredEntry(self):
        """
        Changing a record's entry is found at that record.
        """
        for second in range(4):
            self.put(f"e{second}", second)
        self.tamper("UPDATE mesh_log SET entry = ? WHERE seq = 2", b'{"Entry":{}}')
        error = self.assertRaises(ChainError, self.store.verifyChain)
        self.assertEqual(error.sequence, 2)

    def test_verifyFindsRehashedRecord(self):
        """
        Recomputing the altered record's own hash does not help: the next
        record no longer chains to it.
        """
        for second in range(4):
            self.put(f"e{second}", second)
        record = self.store.record(2)
        forged = recordHash(record.previous, 2, record.time, b'{"Entry":{}}')
        self.tamper("UPDATE mesh_log SET entry = ?, hash = ? WHERE seq = 2", b'{"Entry":{}}', forged)
        error = self.assertRaises(ChainError, self.store.verifyChain)
        self.assertEqual(error.sequence, 3)

    def test_verifyFindsDroppedRecord(self):
        """
        Deleting a record is found where the gap is.
        """
        for second in range(4):
            self.put(f"e{second}", second)
        self.tamper("DELETE FROM mesh_log WHERE seq = 3")
        error = self.assertRaises(ChainError, self.store.verifyChain)
        self.assertEqual(error.sequence, 3)
        self.assertIn("missing", str(error))

    def test_verifyFindsAlteredTime(self):
        """
        The time is part of what is hashed.
        """
        self.put("a", 0)
        self.tamper("UPDATE mesh_log SET time = ? WHERE seq = 1", _time(9))
        self.assertEqual(self.assertRaises(ChainError, self.store.verifyChain).sequence, 1)

    def test_replicate(self):
        """
        Records of another log replayed in order give the same head; one out
        of order, with a wrong previous hash or a wrong hash, is refused and
        changes nothing.
        """
        records = [self.put(f"e{s}", s) for s in range(3)]
        other = SQLitePortalStore(self.mktemp())
        self.addCleanup(other.close)
        self.assertRaises(ChainError, other.replicate, records[1], Effects())
        bad = LogRecord(1, records[0].time, records[0].entry, records[0].previous, b"\0" * 32)
        self.assertRaises(ChainError, other.replicate, bad, Effects())
        wrongPrevious = LogRecord(1, records[0].time, records[0].entry, b"\1" * 32, records[0].hash)
        self.assertRaises(ChainError, other.replicate, wrongPrevious, Effects())
        self.assertEqual(other.head().sequence, 0)
        for record in records:
            other.replicate(record, Effects(index=IndexEntry("x", None, "Entry")))
        self.assertEqual(other.head(), self.store.head())
        self.assertEqual(other.verifyChain(), self.store.verifyChain())

    def test_replicateDropsZone(self):
        """
        Zone credentials never come with a replayed record.
        """
        record = self.store.append(T, b"{}", Effects(pending=("alice", "D")))
        other = SQLitePortalStore(self.mktemp())
        self.addCleanup(other.close)
        completed = self.store.append(T, b"{}", Effects(completes=("alice", "D"),
                                                       zone=("alice", "D", b"zone")))
        self.assertEqual(self.store.zoneCredentials("alice", "D"), b"zone")
        other.replicate(record, Effects(pending=("alice", "D")))
        other.replicate(completed, Effects(completes=("alice", "D"), zone=("alice", "D", b"zone")))
        self.assertIsNone(other.zoneCredentials("alice", "D"))
        self.assertEqual(other.result("alice", "D"), b"{}")

    def test_transactionRollsBack(self):
        """
        Appends inside a transaction that raises are all undone.
        """
        self.put("a", 0)
        with self.assertRaises(RuntimeError):
            with self.store.transaction():
                self.put("b", 1)
                self.put("c", 2)
                raise RuntimeError("no")
        self.assertEqual(self.store.head().sequence, 1)
        self.assertIsNone(self.store.entry("b"))

    def test_transactionsDoNotNest(self):
        """
        A transaction inside a transaction is a programming error.
        """
        with self.store.transaction():
            with self.assertRaises(RuntimeError):
                with self.store.transaction():
                    pass

    def test_closeAndReopen(self):
        """
        C{close} drops the connection; the next call reopens it and finds
        everything.
        """
        self.put("a", 0)
        self.store.close()
        self.assertIsNone(self.store._connection)
        self.assertEqual(self.store.head().sequence, 1)
        self.assertIsNotNone(self.store.entry("a"))


class IndexTests(StoreTestBase):
    """
    Accounts, entry versions, searches, pending requests and results.
    """

    def test_accounts(self):
        """
        An account is found by name and by profile.
        """
        account = AccountRecord("alice", "MPROF", "Open", T, T)
        self.store.append(T, b"{}", Effects(account=account))
        self.assertEqual(self.store.account("alice"), account)
        self.assertEqual(self.store.accountByProfile("MPROF"), account)
        self.assertIsNone(self.store.account("bob"))
        self.store.append(_time(1), b"{}", Effects(accountModified=("alice", _time(1))))
        self.assertEqual(self.store.account("alice").modified, _time(1))

    def test_entryLatestVersion(self):
        """
        C{entry} is the latest version of an identifier.
        """
        self.put("a", 0)
        self.put("b", 1)
        self.put("a", 2)
        stored = self.store.entry("a")
        self.assertEqual((stored.sequence, stored.time), (3, _time(2)))
        self.assertIn(b'"n":2', stored.data)

    def test_searchSnapshot(self):
        """
        A search as of log position S sees each identifier's latest version
        up to S only: later versions neither add nor move entries.
        """
        self.put("a", 0)
        self.put("b", 1)
        snapshot = self.store.head().sequence
        self.put("a", 2)
        self.put("c", 3)
        rows = self.store.search(Query(), snapshot, (0, ""), 10)
        self.assertEqual([(r.identifier, r.sequence) for r in rows], [("a", 1), ("b", 2)])
        rows = self.store.search(Query(), self.store.head().sequence, (0, ""), 10)
        self.assertEqual([(r.identifier, r.sequence) for r in rows], [("b", 2), ("a", 3), ("c", 4)])

    def test_searchCriteria(self):
        """
        Identifier, account, time window and every key/value must match.
        """
        self.put("a", 0, "alice", [("Type", "X"), ("Name", "n1")])
        self.put("b", 1, "alice", [("Type", "Y"), ("Name", "n1")])
        self.put("c", 2, "bob", [("Type", "X")])
        head = self.store.head().sequence
        ids = lambda q: [r.identifier for r in self.store.search(q, head, (0, ""), 10)]
        self.assertEqual(ids(Query(account="alice")), ["a", "b"])
        self.assertEqual(ids(Query(keyValues=[("Type", "X")])), ["a", "c"])
        self.assertEqual(ids(Query(keyValues=[("Type", "X"), ("Name", "n1")])), ["a"])
        self.assertEqual(ids(Query(identifier="b")), ["b"])
        from pz.mesh.schema import DateTime

        micros = lambda s: timeMicros(DateTime.decode(_time(s), "t"))
        self.assertEqual(ids(Query(notBefore=micros(1))), ["b", "c"])
        self.assertEqual(ids(Query(before=micros(1))), ["a"])

    def test_searchKeyValuesOfTheVersion(self):
        """
        Key/values belong to a version: an entry whose newer version drops a
        key no longer matches it.
        """
        self.put("a", 0, None, [("Name", "old")])
        self.put("a", 1, None, [("Name", "new")])
        head = self.store.head().sequence
        self.assertEqual(self.store.search(Query(keyValues=[("Name", "old")]), head, (0, ""), 10), [])
        self.assertEqual(len(self.store.search(Query(keyValues=[("Name", "new")]), head, (0, ""), 10)), 1)

    def test_searchCursorAndNewest(self):
        """
        Results continue after a C{(sequence, identifier)} cursor, and
        C{newestFirst} gives the most recent first.
        """
        for n in range(5):
            self.put(f"e{n}", n)
        head = self.store.head().sequence
        rows = self.store.search(Query(), head, (2, "e1"), 2)
        self.assertEqual([r.identifier for r in rows], ["e2", "e3"])
        rows = self.store.search(Query(), head, (0, ""), 1, newestFirst=True)
        self.assertEqual([r.identifier for r in rows], ["e4"])

    def test_pendingAndResults(self):
        """
        A request is pending until its result completes it; a new request of
        the same device replaces the old one and clears its result and zone
        credentials.
        """
        request = self.store.append(T, b"req1", Effects(pending=("alice", "D1")))
        self.store.append(T, b"req2", Effects(pending=("alice", "D2")))
        self.assertEqual(self.store.countPending("alice"), 2)
        self.assertEqual(self.store.pendingRequest("alice", "D1").sequence, request.sequence)
        self.assertEqual(
            [p.device for p in self.store.pendingRequests("alice", 0, 10)], ["D1", "D2"]
        )
        self.assertEqual([p.device for p in self.store.pendingRequests("alice", 1, 10)], ["D2"])
        self.store.append(T, b"res1", Effects(completes=("alice", "D1"), zone=("alice", "D1", b"z")))
        self.assertIsNone(self.store.pendingRequest("alice", "D1"))
        self.assertEqual(self.store.result("alice", "D1"), b"res1")
        self.assertEqual(self.store.zoneCredentials("alice", "D1"), b"z")
        self.store.append(T, b"req1b", Effects(pending=("alice", "D1")))
        self.assertIsNone(self.store.result("alice", "D1"))
        self.assertIsNone(self.store.zoneCredentials("alice", "D1"))
        self.assertEqual(self.store.pendingRequest("alice", "D1").data, b"req1b")
        self.assertEqual(self.store.countPending("alice"), 2)
