# -*- test-case-name: tests.mesh.portal.test_replica -*-
"""
A read-only portal that follows another: it asks the primary for the log
records after its own head (Transfer), replays each one (the chain must
continue and every entry must pass the checks it passed on the primary) and
so reaches the same state and the same checkpoint. Its clients read from it;
what would change state it sends to the primary (307).

A record that does not chain or is refused stops the replay at that record
and is logged; the next round tries again from the same head, so a primary
that rewrote its history is never followed past the point where the two
diverge.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pz.mesh.messages import SearchConstraints
from pzh.portal.store import ChainError

__all__ = ["PortalReplica"]


class PortalReplica(service.Service):
    """
    Keeps a L{pzh.portal.service.PortalService} in step with a primary.

    @param portal: the local (read-only) portal service.
    @param client: a L{pz.mesh.client.MeshClient} for the primary.
    @param clock: schedules the rounds.
    @param interval: seconds between rounds.
    @param pageEntries: records asked for per Transfer.
    """

    log = Logger()

    def __init__(self, portal, client, clock, interval: float = 5.0, pageEntries: int = 100) -> None:
        self._portal = portal
        self._client = client
        self._clock = clock
        self._interval = interval
        self._pageEntries = pageEntries
        self._loop = None

    def startService(self) -> None:
        service.Service.startService(self)
        self._loop = LoopingCall(self.pull)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=True)

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return service.Service.stopService(self)

    @inlineCallbacks
    def pull(self):
        """
        One round: replay every record the primary has beyond this log's
        head. Fires with the number replayed; never fails (problems are
        logged, and the next round starts again from the head).
        """
        count = 0
        try:
            while True:
                head = self._portal.store.head()
                response = yield self._client.transfer(
                    SearchConstraints(PageKey=str(head.sequence), MaxEntries=self._pageEntries)
                )
                for item in response.DataItems or ():
                    self._portal.replicate(item)
                    count += 1
                if response.PageKey is None or not response.DataItems:
                    break
        except ChainError as error:
            self.log.error("cannot follow the primary: {error}", error=str(error))
        except Exception:
            self.log.failure("replaying the primary's log")
        if count:
            self.log.info("replayed {count} records; checkpoint {checkpoint}", count=count,
                          checkpoint=self._portal.store.head().hash.hex())
        return count
