# -*- test-case-name: tests.mesh.portal.test_commit -*-
"""
Group commit: the portal's writes that arrive together share one durable
SQLite commit.

A commit with C{synchronous=FULL} waits for the disk (C{fdatasync}), and
that wait, not the work, set the rate of Publish when each transaction
committed on its own. L{GroupCommit} runs the transactions one by one, in
the order they arrive, as today, but inside one open batch
(L{pzh.portal.store.IPortalStore.beginBatch}): each is one savepoint, so a
refused one is undone alone, and each sees every earlier one of the batch
(validation, duplicates, conflicts, the time stamps and the hash chain are
exactly those of committing them one at a time). The batch is committed
C{delay} seconds after its first write (0: once the reactor has read what
else had arrived), and only then are its transactions answered:

    - no answer before its commit: a write answered is on the disk;
    - the log's order is the order of acceptance, and the chain and
      checkpoint are those of sequential commits;
    - a commit that fails answers every transaction of the batch with an
      error (500, or 503 when the database is busy) and leaves nothing of
      it: the head stays where the last good commit left it.

A read that arrives while a batch is open runs at once, and so may see the
batch's writes: it joins the batch, answered with it (or with an error if
it fails). A read with no batch open is answered at once. While a commit
is in flight (C{commit} may run it in another thread, L{ThreadedCommit}),
what arrives waits and forms the next batch.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

__all__ = ["GroupCommit", "ThreadedCommit", "commitHere"]


def commitHere(commit: Callable[[], None]) -> Deferred:
    """
    Run C{commit} now, on the calling (reactor) thread.
    """
    return maybeDeferred(commit)


class ThreadedCommit:
    """
    Run each commit in one dedicated writer thread, so that the reactor
    reads and parses the next requests while the disk syncs. Only one
    commit is ever in flight (L{GroupCommit} waits for it), and nothing
    else touches the store meanwhile.
    """

    def __init__(self, reactor) -> None:
        self._reactor = reactor
        self._pool = ThreadPool(1, 1, name="portal-commit")

    def start(self) -> None:
        self._pool.start()

    def stop(self) -> None:
        self._pool.stop()

    def __call__(self, commit: Callable[[], None]) -> Deferred:
        return deferToThreadPool(self._reactor, self._pool, commit)


class GroupCommit:
    """
    Runs a portal's transactions in batches committed together (see the
    module docstring).

    @param store: the L{pzh.portal.store.IPortalStore}.
    @param dispatch: carries out one transaction in the store and returns
        its response; never raises.
    @param opensBatch: whether a request may change state (a read does not
        open a batch).
    @param failed: the error response for a request whose batch could not
        be committed, given the exception.
    @param clock: schedules the commit (C{callLater}).
    @param delay: seconds from a batch's first write to its commit.
    @param commit: runs the store's commit and returns a Deferred:
        L{commitHere} or a L{ThreadedCommit}.
    @param settled: called with C{True} once a batch is committed, before
        its members are answered, or with C{False} once it is given up
        (nothing of it kept); the portal logs what a batch appended then.
    """

    log = Logger()

    def __init__(self, store, dispatch: Callable, opensBatch: Callable, failed: Callable,
                 clock, delay: float = 0.0, commit: Callable = commitHere,
                 settled: Callable[[bool], None] = lambda committed: None) -> None:
        self._store = store
        self._dispatch = dispatch
        self._opensBatch = opensBatch
        self._failed = failed
        self._clock = clock
        self._delay = delay
        self._commit = commit
        self._settled = settled
        self._members: Optional[list] = None
        self._call = None
        self._committing = False
        self._parked: list = []
        self._waiting: list = []

    def submit(self, request) -> Deferred:
        """
        Carry out C{request}; fires with its response once what it did (or
        saw) is committed.
        """
        if self._committing:
            parked = Deferred()
            self._parked.append((request, parked))
            return parked
        if self._members is None:
            if not self._opensBatch(request):
                return succeed(self._dispatch(request))
            try:
                self._store.beginBatch()
            except Exception as error:
                self.log.failure("cannot open a batch for {request}", request=type(request).__name__)
                return succeed(self._failed(request, error))
            self._members = []
            self._call = self._clock.callLater(self._delay, self._commitBatch)
        answer = Deferred()
        self._members.append((request, self._dispatch(request), answer))
        if not self._store.batchIntact():
            self._abandon(RuntimeError("the batch's transaction was rolled back"))
        return answer

    def drain(self) -> Deferred:
        """
        Commit the open batch now; fires once nothing is left to commit
        (before the store is closed).
        """
        if self._members is not None and not self._committing:
            self._call.cancel()
            self._commitBatch()
        if self._members is None and not self._committing:
            return succeed(None)
        waiter = Deferred()
        self._waiting.append(waiter)
        return waiter

    def _commitBatch(self) -> None:
        members, self._members, self._call = self._members, None, None
        self._committing = True
        done = self._commit(self._store.commitBatch)
        done.addCallbacks(self._answer, self._refuse, callbackArgs=(members,),
                          errbackArgs=(members,))
        done.addBoth(lambda _: self._next())

    def _answer(self, _, members: list) -> None:
        try:
            self._settled(True)
        except Exception:
            # It is committed: the answers must go out all the same.
            self.log.failure("after committing {count} transactions", count=len(members))
        for _, response, answer in members:
            answer.callback(response)

    def _refuse(self, failure, members: list) -> None:
        self.log.failure("committing {count} transactions failed; none was kept",
                         failure, count=len(members))
        self._settled(False)
        for request, _, answer in members:
            answer.callback(self._failed(request, failure.value))

    def _abandon(self, error: Exception) -> None:
        """
        The batch's transaction is gone (the database rolled it back after
        an error): answer everything in it with an error, now.
        """
        members, self._members = self._members, None
        self._call.cancel()
        self._call = None
        self._store.abortBatch()
        self.log.error("the batch of {count} transactions was rolled back; none was kept",
                       count=len(members))
        self._settled(False)
        for request, _, answer in members:
            answer.callback(self._failed(request, error))

    def _next(self) -> None:
        """
        The commit is over: what arrived meanwhile runs now, in order.
        """
        self._committing = False
        parked, self._parked = self._parked, []
        for request, answer in parked:
            self.submit(request).chainDeferred(answer)
        if self._waiting:
            if self._members is not None:
                self._call.cancel()
                self._commitBatch()
                return
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                waiter.callback(None)
