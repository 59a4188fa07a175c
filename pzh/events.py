# -*- test-case-name: tests.pzh.test_events -*-
"""
What changed in the zone, told to whoever listens (the admin API's live
stream), as it happens rather than polled.

The hub calls L{ZoneEvents.emit} where it learns each change: a device
link up or down (L{pzh.registry}), a device enrolled (L{pzh.enrolment}),
revoked (L{pzh.hub.Hub.revoke}), a pairing code made, used or cancelled,
a device's synchronisation state changed (L{pzh.zonesync}).
A listener that fails is logged and dropped; it never stops the hub's own
work.
"""

from typing import Callable

from twisted.logger import Logger

__all__ = ["ZoneEvents"]


class ZoneEvents:
    """
    A small observer list.  Each listener is called with C{(kind, data)}:
    C{("device", DEVICE_ID)}, C{("code", {"id", "device", "event"})} or
    C{("sync", DEVICE_ID)} (its synchronisation state changed:
    L{pzh.zonesync.HubSync.observe}).
    """

    _log = Logger()

    def __init__(self) -> None:
        self._listeners: list = []

    def subscribe(self, listener: Callable[[str, object], None]) -> Callable[[], None]:
        """
        Call C{listener} for every later event.

        @return: a callable that stops it; calling it twice is harmless.
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __len__(self) -> int:
        return len(self._listeners)

    def emit(self, kind: str, data) -> None:
        """
        Tell every listener.
        """
        for listener in list(self._listeners):
            try:
                listener(kind, data)
            except Exception:
                self._log.failure("a zone event listener failed; it is dropped")
                if listener in self._listeners:
                    self._listeners.remove(listener)
