# -*- test-case-name: tests.pz.sync.test_engine -*-
"""
Progress of a synchronisation round, for status and the log.

A round starts when the first transfer (or the hub's plan) of an idle engine
starts and ends when nothing is in flight or queued any more.  Counts are of
items and of their sizes; the bytes on the wire are usually far fewer, since
only the chunks the receiver lacks cross.  A first sync or a large item gets
log lines as it starts, at every quarter and when it is done, so a person
watching a new device fill up sees it move.
"""

from datetime import datetime, timezone
from typing import Optional

from twisted.logger import Logger

__all__ = ["Progress", "LARGE"]

#: An item at least this large gets its own progress lines.
LARGE = 1024 * 1024


class _Task:
    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self.done = 0
        self.quarter = 0


class Progress:
    """
    Counts items and bytes done out of those known so far in this round.
    """

    _log = Logger()

    def __init__(self, clock) -> None:
        self._clock = clock
        self.itemsTotal = self.itemsDone = self.bytesTotal = self.bytesDone = 0
        self.active = False
        self.lastSynced: Optional[float] = None
        self._loud = False
        self._quarter = 0
        self._open = 0

    def _start(self) -> None:
        if not self.active:
            self.active = True
            self.itemsTotal = self.itemsDone = self.bytesTotal = self.bytesDone = 0
            self._loud = False
            self._quarter = 0

    def expect(self, items: int, size: int, first: bool = False) -> None:
        """
        More work is known: C{items} items of C{size} bytes in all.

        @param first: this is a device's first sync: log its course.
        """
        self._start()
        self.itemsTotal += items
        self.bytesTotal += size
        if first and not self._loud:
            self._loud = True
            self._log.info("first synchronisation: {items} items, {bytes} bytes",
                           items=items, bytes=size)

    def begin(self, name: str, size: int, planned: bool = False) -> _Task:
        """
        A transfer starts.

        @param planned: already counted by L{expect} (the hub's plan).
        """
        if not planned:
            self.expect(1, size)
        else:
            self._start()
        self._open += 1
        task = _Task(name, size)
        if size >= LARGE:
            self._log.info("syncing {path}: {bytes} bytes", path=name, bytes=size)
        return task

    def step(self, task: _Task, count: int) -> None:
        """
        C{count} more bytes of C{task} crossed.
        """
        count = max(0, min(count, task.size - task.done))
        task.done += count
        self.bytesDone += count
        if task.size >= LARGE:
            quarter = 4 * task.done // task.size
            if quarter > task.quarter and quarter < 4:
                task.quarter = quarter
                self._log.info("syncing {path}: {percent}%", path=task.name, percent=25 * quarter)
        self._report()

    def end(self, task: _Task) -> None:
        """
        A transfer is over, whichever way.
        """
        self.step(task, task.size - task.done)
        self.itemsDone += 1
        self._open -= 1
        if task.size >= LARGE:
            self._log.info("synced {path}", path=task.name)

    def _report(self) -> None:
        if not (self._loud or self.bytesTotal >= LARGE) or not self.bytesTotal:
            return
        quarter = min(4 * self.bytesDone // self.bytesTotal, 3)
        if quarter > self._quarter:
            self._quarter = quarter
            self._log.info(
                "synchronisation {percent}%: {done}/{total} items, {bytesDone}/{bytesTotal} bytes",
                percent=25 * quarter, done=self.itemsDone, total=self.itemsTotal,
                bytesDone=self.bytesDone, bytesTotal=self.bytesTotal)

    def settle(self) -> bool:
        """
        Nothing is in flight or queued: the round is over.  Returns whether a
        round ended now.
        """
        if not self.active or self._open:
            return False
        self.active = False
        self.lastSynced = self._clock.seconds()
        self.itemsDone = max(self.itemsDone, self.itemsTotal)
        self.bytesDone = max(self.bytesDone, self.bytesTotal)
        if self._loud or self.bytesTotal >= LARGE:
            self._log.info("synchronisation done: {items} items, {bytes} bytes",
                           items=self.itemsDone, bytes=self.bytesDone)
        return True

    def lastSyncedText(self) -> Optional[str]:
        if self.lastSynced is None:
            return None
        return datetime.fromtimestamp(self.lastSynced, timezone.utc).isoformat()
