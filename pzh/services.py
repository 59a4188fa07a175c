# -*- test-case-name: tests.pzh.test_services -*-
"""
The hub's side of the zone's service cache: what each device announced
(C{servicesAnnounce}), kept in the synced item C{items/servicecache.json}
(L{pz.servicecache}) so that every device holds it.

The hub is the item's writer: it applies each device's announce to the
item as it finds it (another side's edit, arrived by synchronisation, is
kept), and removes a revoked device's entry.  A device that goes offline
keeps its entry.  An announce that changes nothing writes nothing; the
announces of many devices that arrive close together (a hub restart, when
every device reconnects) make one write, after L{WRITE_DELAY} seconds, so
the item is not rewritten and re-hashed once per device.
"""

from typing import Callable, Optional

from twisted.logger import Logger

from pz.errors import ZoneError
from pz.servicecache import decodeCache, encodeCache, withDevice, withoutDevice

__all__ = ["ZoneServiceCache", "SERVICE_CACHE", "WRITE_DELAY"]

#: The item, under the zone's items folder.
SERVICE_CACHE = "servicecache.json"

#: Seconds the hub waits after a changed announce before writing the item.
WRITE_DELAY = 0.5


class ZoneServiceCache:
    """
    The service cache as the hub keeps it, read from and written to an
    item through C{read} and C{write}.

    Changes not written yet are kept as edits by device (its services, or
    None for a removed entry) and applied to what the item holds when they
    are written.
    """

    _log = Logger()

    def __init__(self, read: Callable[[], Optional[bytes]], write: Callable[[bytes], None],
                 clock=None, delay: float = WRITE_DELAY) -> None:
        """
        @param read: the item's bytes, or None if it does not exist; may
            raise L{OSError} or L{ZoneError} (the items folder is gone).
        @param write: replace the item's bytes (and tell synchronisation).
        @param clock: what the delayed write is scheduled on; without one,
            each change is written at once.
        """
        self._read = read
        self._write = write
        self._clock = clock
        self._delay = delay
        self._edits: dict = {}
        # The bytes last read or written and what they decode to, so that
        # an item nobody else changed is not decoded again.
        self._seen: tuple = (None, {})
        self._pending = None

    @classmethod
    def inMemory(cls) -> "ZoneServiceCache":
        """
        A cache kept in memory only, for a hub that does not synchronise:
        announces are checked and kept, and reach no device.
        """
        held = [None]
        return cls(lambda: held[0], lambda data: held.__setitem__(0, data))

    def _stored(self) -> dict:
        data = self._read()
        if data != self._seen[0]:
            self._seen = (data, decodeCache(data))
        return self._seen[1]

    def _current(self, deviceId: str) -> Optional[list]:
        """
        C{deviceId}'s services as the cache will hold them once written.
        """
        if deviceId in self._edits:
            return self._edits[deviceId]
        try:
            entry = self._stored().get(deviceId)
        except (OSError, ZoneError):
            return None
        return entry["services"] if entry is not None else None

    def announced(self, deviceId: str, services: list) -> bool:
        """
        C{deviceId} announced C{services} (checked by
        L{pz.servicecache.parseAnnounce}).

        @return: whether its entry changes.  A device that runs no
        service has no entry.
        """
        services = services or None
        if self._current(deviceId) == services:
            return False
        self._edits[deviceId] = services
        self._schedule()
        return True

    def forget(self, deviceId: str) -> bool:
        """
        Remove C{deviceId}'s entry (it was revoked), at once.

        @return: whether it had one.
        """
        if self._current(deviceId) is None:
            return False
        self._edits[deviceId] = None
        self.flush()
        return True

    def cache(self) -> dict:
        """
        The whole cache, as L{pz.servicecache.decodeCache} reads it, with
        the changes not written yet.
        """
        cache = dict(self._stored())
        for deviceId, services in self._edits.items():
            if services is None:
                cache = withoutDevice(cache, deviceId)
            else:
                cache.update(withDevice({}, deviceId, services))
        return cache

    def _schedule(self) -> None:
        if self._clock is None:
            self.flush()
        elif self._pending is None or not self._pending.active():
            self._pending = self._clock.callLater(self._delay, self.flush)

    def flush(self) -> None:
        """
        Write the changes not written yet (the hub is stopping, or their
        delay is over).  If the item cannot be read, they are kept for the
        next change or the next stop.
        """
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if not self._edits:
            return
        try:
            cache = self.cache()
        except (OSError, ZoneError) as e:
            self._log.warn("could not read the zone's service cache: {why}", why=e)
            return
        self._edits = {}
        if cache == self._seen[1]:
            return
        data = encodeCache(cache)
        self._write(data)
        self._seen = (data, cache)
