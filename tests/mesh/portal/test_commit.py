"""
Tests for L{pzh.portal.commit}: the portal's group commit, driven with a
L{Clock}. Writes that arrive in one turn share one commit and none is
answered before it; a batch gives exactly the log, chain and checkpoint of
committing each write alone; a commit that fails answers every member with
an error and leaves nothing.
"""

import json
import sqlite3
from io import BytesIO

from twisted.internet.defer import Deferred
from twisted.logger import Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from pz.mesh.messages import GetRequest, PublishRequest, StatusRequest
from pz.mesh.model import JoseRecipient, JoseWebEncryption, OfflineEscrowEntry
from pzh.portal.commit import commitHere
from pzh.portal.resource import MeshPortalResource
from pzh.portal.service import PortalService, PortalSettings

from tests.mesh.portal._support import PortalFixture, makeDevice


def _escrow(identifier: str, ciphertext: bytes = b"1") -> OfflineEscrowEntry:
    jwe = JoseWebEncryption(recipients=[JoseRecipient(header={"kid": "x"})], ciphertext=ciphertext)
    return OfflineEscrowEntry(Identifier=identifier, EncryptedData=jwe)


class CountingCommit:
    """
    Runs commits at once, as the reactor thread would, and counts them.
    """

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, commit):
        self.count += 1
        return commitHere(commit)


class HeldCommit:
    """
    Holds each commit until the test lets it run: a commit in flight in the
    writer thread.
    """

    def __init__(self) -> None:
        self.waiting = []

    def __call__(self, commit):
        done = Deferred()
        self.waiting.append((commit, done))
        return done

    def release(self) -> None:
        commit, done = self.waiting.pop(0)
        try:
            commit()
        except Exception as error:
            done.errback(error)
        else:
            done.callback(None)


class GroupCommitTestBase(SynchronousTestCase):
    """
    A portal whose commits are counted.
    """

    def setUp(self):
        self.commits = CountingCommit()
        self.portal = self.makePortal(self.commits)

    def makePortal(self, commit, settings=PortalSettings()):
        fixture = PortalFixture(self, settings)
        fixture.service = PortalService(fixture.store, fixture.clock, settings, commit=commit)
        return fixture

    def submit(self, request, portal=None):
        """
        Submit C{request}; return a list that receives its response.
        """
        answers = []
        (portal or self.portal).service.submit(request).addCallback(answers.append)
        return answers

    def records(self, portal=None):
        store = (portal or self.portal).store
        return store.records(0, 1000)


class BatchTests(GroupCommitTestBase):
    """
    Writes in one turn: one commit, answers after it.
    """

    def test_oneCommitPerTurn(self):
        """
        Several Publishes submitted in one turn of the reactor are committed
        together, once, on the next turn; none is answered before that, all
        are answered 201 after it, and the log holds them in the order they
        were accepted.
        """
        devices = [makeDevice(f"d{n}") for n in range(5)]
        answers = [self.submit(PublishRequest(Entry=d.profile)) for d in devices]
        self.assertEqual(answers, [[]] * 5)
        self.assertEqual(self.commits.count, 0)
        self.portal.clock.advance(0)
        self.assertEqual(self.commits.count, 1)
        self.assertEqual([a[0].Status for a in answers], [201] * 5)
        entries = [json.loads(r.entry)["SignedDeviceProfile"]["Identifier"] for r in self.records()]
        self.assertEqual(entries, [d.udf for d in devices])

    def test_notDurableBeforeAnswer(self):
        """
        Until the batch commits, another connection to the database (what
        survives a crash) sees none of it; the answers come after the
        commit, and then it sees all of it.
        """
        other = sqlite3.connect(self.portal.path)
        self.addCleanup(other.close)
        count = lambda: other.execute("SELECT COUNT(*) FROM mesh_log").fetchone()[0]
        answers = [self.submit(PublishRequest(Entry=makeDevice().profile)) for _ in range(3)]
        self.assertEqual((count(), answers), (0, [[]] * 3))
        self.portal.clock.advance(0)
        self.assertEqual(count(), 3)
        self.assertEqual([len(a) for a in answers], [1] * 3)

    def test_delay(self):
        """
        With a commit delay, the batch stays open that long and takes what
        arrives meanwhile.
        """
        portal = self.makePortal(self.commits, PortalSettings(commitDelay=0.5))
        first = self.submit(PublishRequest(Entry=makeDevice().profile), portal)
        portal.clock.advance(0.25)
        second = self.submit(PublishRequest(Entry=makeDevice().profile), portal)
        self.assertEqual((first, second, self.commits.count), ([], [], 0))
        portal.clock.advance(0.25)
        self.assertEqual((first[0].Status, second[0].Status, self.commits.count), (201, 201, 1))

    def test_durableSettings(self):
        """
        The store commits in WAL mode with C{synchronous=FULL}: a commit is
        on the disk before it returns, and so before any answer. (A killed
        process cannot show a missing sync, only a lost machine could, so
        the setting itself is checked.)
        """
        db = self.portal.store._db
        self.assertEqual(db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        self.assertEqual(db.execute("PRAGMA synchronous").fetchone()[0], 2)

    def test_readsAlone(self):
        """
        A read with no batch open is answered at once, without a commit.
        """
        answer = self.submit(StatusRequest())
        self.assertEqual((answer[0].Status, self.commits.count), (201, 0))
        self.assertEqual(self.portal.clock.getDelayedCalls(), [])

    def test_readJoinsOpenBatch(self):
        """
        A read that arrives while a batch is open sees the batch's writes,
        and so is answered only once they are committed.
        """
        device = makeDevice()
        self.submit(PublishRequest(Entry=device.profile))
        got = self.submit(GetRequest(Identifier=device.udf))
        self.assertEqual(got, [])
        self.portal.clock.advance(0)
        self.assertEqual(got[0].Status, 201)
        self.assertEqual(got[0].DataItems[0].Entry.Identifier, device.udf)

    def test_redirectedWritesOpenNoBatch(self):
        """
        On a read-only replica, a write is redirected at once: nothing to
        commit.
        """
        portal = self.makePortal(self.commits, PortalSettings(primary="https://p.example/"))
        answer = self.submit(PublishRequest(Entry=makeDevice().profile), portal)
        self.assertEqual((answer[0].Status, self.commits.count), (307, 0))


class ConsistencyTests(GroupCommitTestBase):
    """
    Inside a batch each write sees the ones before it, as if each had been
    committed alone.
    """

    def test_sameChainAsSequential(self):
        """
        The same Publishes at the same times give the same records, hashes
        and checkpoint whether committed in one batch (open for a second)
        or one at a time.
        """
        devices = [makeDevice(f"d{n}") for n in range(4)]
        sequential = self.makePortal(CountingCommit())
        for device in devices:
            sequential.clock.advance(0.25)
            self.assertEqual(sequential.service.dispatch(PublishRequest(Entry=device.profile)).Status, 201)
        batched = self.makePortal(self.commits, PortalSettings(commitDelay=1.0))
        for device in devices:
            batched.clock.advance(0.25)
            self.submit(PublishRequest(Entry=device.profile), batched)
        batched.clock.advance(1)
        self.assertEqual(self.commits.count, 1)
        self.assertEqual(len(self.records(batched)), 4)
        self.assertEqual(self.records(batched), self.records(sequential))
        self.assertEqual(batched.store.verifyChain(), sequential.store.verifyChain())
        self.assertEqual(batched.service.dispatch(StatusRequest()).CheckpointValue,
                         sequential.service.dispatch(StatusRequest()).CheckpointValue)

    def test_duplicatesAndConflictsInOneBatch(self):
        """
        A Publish repeated in the same batch is "already published"; an
        escrow entry written twice with different content in one batch is
        refused the second time (409), and only the first is kept.
        """
        device = makeDevice()
        answers = [
            self.submit(PublishRequest(Entry=device.profile)),
            self.submit(PublishRequest(Entry=device.profile)),
            self.submit(PublishRequest(Entry=_escrow("E1"))),
            self.submit(PublishRequest(Entry=_escrow("E1", b"2"))),
        ]
        self.portal.clock.advance(0)
        self.assertEqual([a[0].Status for a in answers], [201, 201, 201, 409])
        self.assertIn("already published", answers[1][0].StatusDescription)
        self.assertEqual(len(self.records()), 2)
        self.assertEqual(self.portal.store.entry("Escrow-E1").data, _escrow("E1").toJSON())

    def test_refusedWriteUndoneAlone(self):
        """
        A write refused in the middle of a batch leaves nothing, and the
        writes before and after it are kept and chain.
        """
        self.submit(PublishRequest(Entry=_escrow("E1")))
        self.portal.clock.advance(0)
        before = self.portal.tables()
        first, second = makeDevice(), makeDevice()
        answers = [
            self.submit(PublishRequest(Entry=first.profile)),
            self.submit(PublishRequest(Entry=_escrow("E1", b"2"))),
            self.submit(PublishRequest(Entry=second.profile)),
        ]
        self.portal.clock.advance(0)
        self.assertEqual([a[0].Status for a in answers], [201, 409, 201])
        after = self.portal.tables()
        self.assertEqual(len(after["mesh_log"]), len(before["mesh_log"]) + 2)
        self.assertEqual(self.portal.store.verifyChain().sequence, 3)


class LogLineTests(GroupCommitTestBase):
    """
    A committed batch's records are logged in one line, each with its
    sequence number, type and identifier, once the commit is done; a write
    committed alone still gets its own line.
    """

    def setUp(self):
        super().setUp()
        self.events = []
        self.portal.service.log = Logger(observer=self.events.append)

    def lines(self):
        return [formatEvent(event) for event in self.events]

    def test_oneLinePerCommit(self):
        """
        Three Publishes of one batch, the middle one refused: after the
        commit, one line names the two records kept, in order; nothing is
        logged about them before the commit.
        """
        self.submit(PublishRequest(Entry=_escrow("E1")))
        self.portal.clock.advance(0)
        del self.events[:]
        first, second = makeDevice(), makeDevice()
        self.submit(PublishRequest(Entry=first.profile))
        self.submit(PublishRequest(Entry=_escrow("E1", b"2")))
        self.submit(PublishRequest(Entry=second.profile))
        self.assertEqual([line for line in self.lines() if "log record" in line], [])
        self.portal.clock.advance(0)
        committed = [line for line in self.lines() if "log record" in line]
        self.assertEqual(committed, [
            f"committed log records 2-3: 2 SignedDeviceProfile {first.udf}; "
            f"3 SignedDeviceProfile {second.udf}"
        ])

    def test_sequenceReused(self):
        """
        A record undone with its refused transaction is not named, even when
        a later record of the batch took its sequence number.
        """
        from pzh.portal.service import PortalService

        device, later = makeDevice(), makeDevice()
        accept = PortalService._accept

        def failingAccept(service, entry, time, *args, **kwargs):
            record = accept(service, entry, time, *args, **kwargs)
            if getattr(entry, "Identifier", None) == device.udf:
                raise RuntimeError("refused after the append")
            return record

        self.patch(PortalService, "_accept", failingAccept)
        answers = [
            self.submit(PublishRequest(Entry=device.profile)),
            self.submit(PublishRequest(Entry=_escrow("E2"))),
        ]
        self.patch(PortalService, "_accept", accept)
        answers.append(self.submit(PublishRequest(Entry=later.profile)))
        self.portal.clock.advance(0)
        self.assertEqual([a[0].Status for a in answers], [500, 201, 201])
        committed = [line for line in self.lines() if "log record" in line]
        self.assertEqual(committed, [
            f"committed log records 1-2: 1 OfflineEscrowEntry Escrow-E2; "
            f"2 SignedDeviceProfile {later.udf}"
        ])

    def test_failedCommitNamesNothing(self):
        """
        A batch whose commit fails names no record: none was kept.
        """
        FailureTests.prepareFailure(self)
        self.submit(PublishRequest(Entry=makeDevice().profile))
        FailureTests.failAtCommit(self)
        self.portal.clock.advance(0)
        self.assertEqual([line for line in self.lines() if "log record" in line], [])
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.IntegrityError)), 1)
        device = makeDevice()
        self.submit(PublishRequest(Entry=device.profile))
        self.portal.clock.advance(0)
        self.assertEqual([line for line in self.lines() if "log record" in line], [
            f"committed log record 1: 1 SignedDeviceProfile {device.udf}"
        ])

    def test_aloneOwnLine(self):
        """
        A write carried out outside a batch (L{PortalService.dispatch}
        called directly) is logged as it is appended, one line for its
        record.
        """
        device = makeDevice()
        self.assertEqual(self.portal.service.dispatch(PublishRequest(Entry=device.profile)).Status, 201)
        self.assertEqual(self.lines(), [f"log record 1: SignedDeviceProfile {device.udf}"])


class FailureTests(GroupCommitTestBase):
    """
    A batch that cannot be committed: every member answered with an error,
    nothing of it kept, the head where it was.
    """

    def prepareFailure(self):
        """
        Outside any batch: a table whose foreign key is checked only at
        COMMIT.
        """
        db = self.portal.store._db
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("CREATE TABLE t_parent (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE t_child (parent INTEGER REFERENCES t_parent(id)"
                   " DEFERRABLE INITIALLY DEFERRED)")

    def failAtCommit(self):
        """
        Make the open batch's COMMIT fail, as SQLite does for a deferred
        constraint: the transaction is still open when COMMIT refuses.
        """
        self.portal.store._db.execute("INSERT INTO t_child (parent) VALUES (42)")

    def test_commitFails(self):
        """
        When COMMIT fails, each Publish of the batch (and a read that joined
        it) is answered 500, the log and indexes are as before, the chain
        verifies, and the next batch commits normally after the head.
        """
        self.prepareFailure()
        self.submit(PublishRequest(Entry=makeDevice().profile))
        self.portal.clock.advance(0)
        before, head = self.portal.tables(), self.portal.store.head()
        answers = [self.submit(PublishRequest(Entry=makeDevice().profile)) for _ in range(3)]
        answers.append(self.submit(StatusRequest()))
        self.failAtCommit()
        self.portal.clock.advance(0)
        self.assertEqual([a[0].Status for a in answers], [500] * 4)
        self.assertIn("nothing of it was kept", answers[0][0].StatusDescription)
        self.assertEqual(self.portal.tables(), before)
        self.assertEqual(self.portal.store.verifyChain(), head)
        self.assertFalse(self.portal.store._db.in_transaction)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.IntegrityError)), 1)

        again = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.portal.clock.advance(0)
        self.assertEqual(again[0].Status, 201)
        self.assertEqual(self.portal.store.verifyChain().sequence, head.sequence + 1)

    def test_transactionLostMidBatch(self):
        """
        If the database rolls the batch's transaction back by itself (an I/O
        error, a full disk), the batch's members are answered with errors at
        once, nothing is left, and a write arriving next does not run
        outside a transaction: it opens a new batch.
        """
        before = self.portal.tables()
        first = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.portal.store._db.execute("ROLLBACK")
        second = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.assertEqual((first[0].Status, second[0].Status), (500, 500))
        self.assertEqual(self.portal.tables(), before)
        self.assertEqual(self.portal.clock.getDelayedCalls(), [])
        self.flushLoggedErrors(sqlite3.OperationalError)

        third = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.assertEqual(third, [])
        self.portal.clock.advance(0)
        self.assertEqual(third[0].Status, 201)
        self.assertEqual(self.portal.store.verifyChain().sequence, 1)

    def test_busy(self):
        """
        A batch that cannot even begin because another writer holds the
        database is answered 503, and stores nothing.
        """
        other = sqlite3.connect(self.portal.path, timeout=0, isolation_level=None)
        self.addCleanup(other.close)
        self.portal.store.close()
        other.execute("BEGIN IMMEDIATE")
        self.portal.store._db.execute("PRAGMA busy_timeout = 0")
        answer = self.submit(PublishRequest(Entry=makeDevice().profile))
        other.execute("ROLLBACK")
        self.assertEqual(answer[0].Status, 503)
        self.assertEqual(self.portal.store.head().sequence, 0)
        self.flushLoggedErrors(sqlite3.OperationalError)


class WriterThreadTests(GroupCommitTestBase):
    """
    With the commit in flight elsewhere (the writer thread), what arrives
    waits for it and forms the next batch.
    """

    def setUp(self):
        self.held = HeldCommit()
        self.portal = self.makePortal(self.held)

    def test_parkedDuringCommit(self):
        """
        A Publish that arrives while a commit is in flight is not even
        started until it ends; then it runs, in a new batch, after the
        committed head.
        """
        first = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.portal.clock.advance(0)
        self.assertEqual((first, len(self.held.waiting)), ([], 1))
        second = self.submit(PublishRequest(Entry=makeDevice().profile))
        read = self.submit(StatusRequest())
        self.assertEqual((second, read), ([], []))
        self.held.release()
        self.assertEqual(first[0].Status, 201)
        self.assertEqual((second, len(self.held.waiting)), ([], 0))
        self.portal.clock.advance(0)
        self.held.release()
        self.assertEqual((second[0].Status, read[0].Status), (201, 201))
        self.assertEqual(read[0].CheckpointValue, self.portal.store.verifyChain().hash.hex())
        self.assertEqual(self.portal.store.head().sequence, 2)

    def test_drain(self):
        """
        C{drain} commits the open batch without waiting for the clock, and
        fires once the commit in flight and what waited for it are done.
        """
        first = self.submit(PublishRequest(Entry=makeDevice().profile))
        drained = self.portal.service.drain()
        self.assertNoResult(drained)
        second = self.submit(PublishRequest(Entry=makeDevice().profile))
        self.held.release()
        self.assertNoResult(drained)
        self.held.release()
        self.successResultOf(drained)
        self.assertEqual((first[0].Status, second[0].Status), (201, 201))
        self.assertEqual(self.portal.clock.getDelayedCalls(), [])
        self.successResultOf(self.portal.service.drain())


class ResourceTests(GroupCommitTestBase):
    """
    Over HTTP: the answer is written once the batch is committed.
    """

    def render(self, body: bytes) -> DummyRequest:
        request = DummyRequest([])
        request.method = b"POST"
        request.content = BytesIO(body)
        self.assertIs(MeshPortalResource(self.portal.service).render(request), NOT_DONE_YET)
        return request

    def test_answeredAfterCommit(self):
        """
        A Publish is rendered later: nothing is written before the commit,
        then the 201 answer with its length.
        """
        request = self.render(PublishRequest(Entry=makeDevice().profile).toJSON())
        self.assertEqual((request.written, request.finished), ([], 0))
        self.portal.clock.advance(0)
        self.assertEqual((request.responseCode, request.finished), (201, 1))
        [body] = request.written
        self.assertEqual(json.loads(body)["PublishResponse"]["Status"], 201)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-length"),
                         [str(len(body)).encode()])

    def test_clientGone(self):
        """
        A client that went away before the commit gets nothing written, and
        its Publish is still committed.
        """
        request = self.render(PublishRequest(Entry=makeDevice().profile).toJSON())
        request.processingFailed(ConnectionError("gone"))
        self.portal.clock.advance(0)
        self.assertEqual((request.written, request.finished), ([], 0))
        self.assertEqual(self.portal.store.head().sequence, 1)
