# -*- test-case-name: tests.pzh.test_registry -*-
"""
Which devices of the zone are connected now, and telling them about each
other.

Every join and leave schedules one C{pzpUpdate} to every connected device,
and so does a device's peer endpoint (L{Registry.setPeerPort}) changing
its entry: the others hear it as a C{joined} delta, which replaces what
they knew of it.  Changes that arrive within C{coalesce} seconds share one
update.  A device that just joined gets the whole list; the others get
only what changed, so a zone's traffic grows with the changes rather than
with the zone's size times the changes.  Lists are split into frames of at
most L{_PAGE} devices, and each payload is encoded once and spliced into
every recipient's envelope.

Updates are paced: a link is sent at most L{_BURST} bytes of them per
reactor turn, and all links together about L{_TURN} bytes; what is left
waits, in order, for the next turns (taken round-robin), and any later
update for a link waits behind what it still has waiting, so every device
sees pages and changes in the order they were made.  Every frame written
is copied a few times on its way to the socket (spliced envelope, length
prefix, TLS records) and sits in the link's send buffers until the next
turn; written at once, a joiner's whole list (about 120 bytes a device)
and the change sent to every other link made tens of MB of short-lived
blocks of a few KB in one turn, among which the links connecting meanwhile
put their long-lived state, and the C allocator kept that fragmented heap
for good: about 16 KiB more per idle link at 5,000 links.
"""

import json
from collections import deque
from typing import Optional

from twisted.logger import Logger

from pz import udf
from pz.wire import newMessageId
from pzh.interfaces import IZoneLink
from pzh.store import IHubStore

__all__ = ["Registry"]


class Registry:
    """
    Connected devices by id.

    A device that connects again replaces its older link, which is closed.
    """

    _log = Logger()

    def __init__(self, zoneId: str, store: IHubStore, clock, coalesce: float = 0.05,
                 observer=None) -> None:
        """
        @param observer: told C{linkUp(link)} and C{linkDown(link)} as
            device links register and go (synchronisation follows them).
        """
        self._zoneId = zoneId
        self._store = IHubStore(store)
        self._clock = clock
        self._coalesce = coalesce
        self._observer = observer
        self._links: dict = {}
        self._joined: dict = {}
        # deviceId -> link whose entry changed after it joined
        self._updated: dict = {}
        self._left: set = set()
        self._pending = None
        self._touches: dict = {}
        # deviceId -> (link, deque of frame makers) not sent yet; and the
        # device ids in the order they are to be served
        self._backlog: dict = {}
        self._line: deque = deque()
        self._pumping = None
        self._budget = _TURN

    def __len__(self) -> int:
        return len(self._links)

    def get(self, deviceId: str):
        """
        The live link of C{deviceId}, or None.
        """
        return self._links.get(deviceId)

    def links(self) -> list:
        """
        Every live link.
        """
        return list(self._links.values())

    def register(self, link) -> None:
        """
        Add an authenticated link.

        @raise TypeError: if C{link} does not provide L{IZoneLink}.
        """
        link = IZoneLink(link)
        old = self._links.get(link.deviceId)
        if old is not None and old is not link:
            self._log.info("{device} connected again; closing its older link",
                           device=link.deviceId)
            old.replaced = True
            self._backlog.pop(old.deviceId, None)
            old.transport.loseConnection()
        self._links[link.deviceId] = link
        self._joined[link.deviceId] = link
        self._updated.pop(link.deviceId, None)
        self._left.discard(link.deviceId)
        self._touch(link.deviceId, link.address)
        self._log.info("{device} connected from {address}", device=link.deviceId,
                       address=link.address)
        self._changed()
        if self._observer is not None:
            self._observer.linkUp(link)

    def unregister(self, link) -> None:
        """
        Remove a link that has closed; a link already replaced is ignored.
        """
        if self._links.get(link.deviceId) is not link:
            return
        del self._links[link.deviceId]
        self._joined.pop(link.deviceId, None)
        self._updated.pop(link.deviceId, None)
        self._backlog.pop(link.deviceId, None)
        self._left.add(link.deviceId)
        self._touch(link.deviceId, None)
        self._log.info("{device} disconnected", device=link.deviceId)
        self._changed()
        if self._observer is not None:
            self._observer.linkDown(link)

    def _touch(self, deviceId: str, address) -> None:
        # Last-seen times are bookkeeping, not security state: they are
        # written with the next pzpUpdate, in one transaction, so that a
        # connect or disconnect does not wait for the disk.
        previous = self._touches.get(deviceId)
        if address is None and previous is not None:
            address = previous[1]
        self._touches[deviceId] = (self._clock.seconds(), address)

    def flushTouches(self) -> None:
        """
        Write the pending last-seen times to the store.
        """
        touches, self._touches = self._touches, {}
        if touches:
            self._store.touchDevices([(d, t, a) for d, (t, a) in touches.items()])

    def _changed(self) -> None:
        if self._pending is None or not self._pending.active():
            self._pending = self._clock.callLater(self._coalesce, self.sendUpdates)

    def cancel(self) -> None:
        """
        Drop a scheduled update and write pending last-seen times (the hub
        is stopping).
        """
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._pumping is not None and self._pumping.active():
            self._pumping.cancel()
        self._pumping = None
        self._backlog.clear()
        self._line.clear()
        self.flushTouches()

    def setPeerPort(self, link, port: int) -> None:
        """
        C{link}'s device says its peer server listens on C{port} (0: it
        runs none).  Its entry changes, and the other devices are told with
        the next update; a port it already gave, or a link that is not the
        device's live one, changes nothing.
        """
        if self._links.get(link.deviceId) is not link or link.peerPort == port:
            return
        link.peerPort = port
        if link.deviceId not in self._joined:
            self._updated[link.deviceId] = link
            self._changed()

    @staticmethod
    def _entry(link) -> dict:
        entry = {"id": link.deviceId, "address": link.address, "fingerprint": link.fingerprint}
        if link.peerPort > 0:
            # The host the hub sees the device at: the one the others can
            # best hope to reach it at (the device may not know its own).
            entry["peer"] = {"host": link.address.rpartition(":")[0], "port": link.peerPort}
        return entry

    def snapshot(self) -> list:
        """
        What C{pzpUpdate} says about each connected device.
        """
        return [self._entry(link) for link in self._links.values()]

    def _frames(self, payload: dict):
        # Encode the payload once; only "to" differs between recipients.
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        head = b'{"type":"prop","from":' + json.dumps(self._zoneId).encode("utf-8") + b',"to":'
        tail = b',"id":"' + newMessageId().encode("ascii") + b'","payload":' + body + b"}"
        return lambda link: head + json.dumps(link.deviceId).encode("utf-8") + tail

    def sendPaced(self, links: list, payloads: list) -> None:
        """
        Send the hub's messages C{payloads}, in order, to each of C{links},
        paced like the updates and after whatever each link has waiting.
        """
        frames = [self._frames(payload) for payload in payloads]
        for link in links:
            if self._links.get(link.deviceId) is link:
                self._queue(link, frames)

    def sendFrames(self, link, frames: list) -> None:
        """
        Send C{link} frames made elsewhere (callables that take the link
        and return the frame), in order, paced like the updates and after
        whatever it has waiting.
        """
        if self._links.get(link.deviceId) is link:
            self._queue(link, list(frames))

    def sendUpdates(self) -> None:
        """
        Send the C{pzpUpdate} for the changes since the last one: devices
        that just joined get the whole list (C{devices}), the others get
        what changed (C{joined}, C{left}); a device whose entry changed is
        not sent its own.
        """
        self._pending = None
        self._budget = _TURN
        self.flushTouches()
        joined, self._joined = self._joined, {}
        updated, self._updated = self._updated, {}
        left, self._left = sorted(self._left), set()
        if not self._links or not (joined or left or updated):
            return
        if joined:
            snapshot = _pages(self.snapshot())
            full = [self._frames({"status": "pzpUpdate", "devices": page, "page": number,
                                  "pages": len(snapshot)})
                    for number, page in enumerate(snapshot, 1)]
            for link in joined.values():
                self._queue(link, full)
        entries = [self._entry(link) for link in [*joined.values(), *updated.values()]]
        pages = [page for page in _pages(entries) if page]
        shared = [self._frames({"status": "pzpUpdate", "joined": page, "left": []})
                  for page in pages]
        leaves = [self._frames({"status": "pzpUpdate", "joined": [], "left": page})
                  for page in _pages(left, _PAGE * 4) if page]
        pageOf = {entry["id"]: number for number, page in enumerate(pages) for entry in page}
        for deviceId, link in list(self._links.items()):
            if deviceId in joined:
                continue
            frames = shared
            if deviceId in updated:
                # Its own page without its own entry, made for it alone.
                number = pageOf[deviceId]
                rest = [entry for entry in pages[number] if entry["id"] != deviceId]
                own = ([self._frames({"status": "pzpUpdate", "joined": rest, "left": []})]
                       if rest else [])
                frames = shared[:number] + own + shared[number + 1:]
            self._queue(link, frames + leaves)

    def _queue(self, link, frames: list) -> None:
        """
        Send C{frames} (frame makers) to C{link} after whatever it still
        has waiting: what this turn's budget allows now, the rest on later
        turns.
        """
        entry = self._backlog.get(link.deviceId)
        if entry is not None and entry[0] is link:
            entry[1].extend(frames)
            return
        waiting = deque(frames)
        if self._budget > 0:
            self._send(link, waiting)
        if waiting:
            if link.deviceId not in self._backlog:
                self._line.append(link.deviceId)
            self._backlog[link.deviceId] = (link, waiting)
            self._schedulePump()

    def _send(self, link, waiting: deque) -> None:
        """
        Send C{link} its next L{_BURST} bytes (whole frames, at least one)
        from C{waiting}, out of this turn's budget.
        """
        burst = _BURST
        while waiting and burst > 0:
            data = waiting.popleft()(link)
            burst -= len(data)
            self._budget -= len(data)
            link.sendString(data)

    def _schedulePump(self) -> None:
        if self._pumping is None or not self._pumping.active():
            self._pumping = self._clock.callLater(0, self._pump)

    def _pump(self) -> None:
        """
        One turn's sending: links with frames waiting get their next
        L{_BURST} bytes in turn until the turn's budget is spent; a link
        served goes to the back of the line.
        """
        self._pumping = None
        self._budget = _TURN
        for _ in range(len(self._line)):
            if self._budget <= 0:
                break
            deviceId = self._line.popleft()
            link, waiting = self._backlog.get(deviceId, (None, None))
            if link is None or self._links.get(deviceId) is not link:
                self._backlog.pop(deviceId, None)
                continue
            self._send(link, waiting)
            if self._backlog.get(deviceId, (None,))[0] is not link:
                continue  # the link went while it was written to
            if waiting:
                self._line.append(deviceId)
            else:
                del self._backlog[deviceId]
        if self._line:
            self._schedulePump()


#: Devices per pzpUpdate frame.  Large zones get several small frames rather
#: than one large one, which no frame limit refuses and which can be paced.
_PAGE = 32

#: Bytes of pzpUpdate frames a link is sent per reactor turn (a page is
#: about 4 KB); a frame is never split.
_BURST = 16 * 1024

#: Bytes of pzpUpdate frames all links together are sent per reactor turn,
#: give or take a burst.
_TURN = 256 * 1024


def _pages(items: list, size: int = _PAGE) -> list:
    """
    C{items} in runs of at most C{size}; one empty run for no items.
    """
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def linkFingerprint(cert) -> Optional[str]:
    """
    The UDF a device's certificate key shows in C{pzpUpdate}.
    """
    return udf.key_fingerprint(cert.public_key()) if cert is not None else None
