# -*- test-case-name: tests.pz.test_services -*-
"""
Services every zone process shares in its C{twistd} service tree.
"""

from twisted.application import service
from twisted.internet.defer import maybeDeferred, succeed

__all__ = ["StoreService"]


class StoreService(service.Service):
    """
    Closes a store when its process stops, after the work that still uses
    it, so no database connection outlives the reactor (and none crosses
    twistd's fork: a store closed while the service tree is built reopens
    on first use).

    @ivar store: what is closed (anything with C{close()}).
    @ivar drain: called when stopping, before the store closes: it cancels
        or finishes the work still writing (a L{Deferred} is waited for);
        L{None} for none.
    @ivar workers: started with the service and stopped after the store
        closed (anything with C{start()} and C{stop()}, such as a commit
        thread).
    """

    def __init__(self, store, drain=None, workers=()) -> None:
        self.store = store
        self.drain = drain
        self.workers = tuple(workers)

    def startService(self):
        service.Service.startService(self)
        for worker in self.workers:
            worker.start()

    def stopService(self):
        service.Service.stopService(self)
        drained = succeed(None) if self.drain is None else maybeDeferred(self.drain)
        return drained.addBoth(lambda _: self._closed())

    def _closed(self) -> None:
        self.store.close()
        for worker in self.workers:
            worker.stop()
