# -*- test-case-name: tests.pzh.test_flow -*-
"""
Flow control for device links: what one device may cost the hub.

 - L{TokenBucket} (in L{pz.bucket}, which devices pace uploads by too):
   each device's fair share of the hub's reading.  A device
   that sends faster than its rate, once its burst is spent, gets
   C{RATE_LIMITED} and the hub stops reading from it until its bucket holds
   a token again: the excess waits in the device's own socket, not in the
   hub's memory.
 - L{Outbox}: each link's outgoing queue, in bytes.  It is the push
   producer registered on the link's TLS transport, so it learns when the
   socket below stops taking data (the peer does not read) and keeps what
   comes meanwhile.  Past its limit the link is I{congested}: the hub stops
   reading from the links that feed it until it drains to half; one that
   stays congested for C{slowTimeout} seconds, or holds twice its limit, is
   dropped with C{TOO_SLOW}.
 - L{QueueBudget}: all outboxes together stay within the hub's budget; past
   it the link holding the most is dropped.
 - L{CoolOff}: a device dropped for breaking the rules may not register
   again at once: each new link costs the hub a TLS handshake, a
   registration and a fresh turn at its reading, which a flooder that
   reconnects at once would otherwise get every few hundred milliseconds.
 - L{LinkTransport}: what the link protocol writes to.  Every write goes
   through the outbox; closing first hands over what is queued and
   unregisters the outbox, because a TLS transport with a producer
   registered waits for that producer before it closes.
"""

from collections import deque
from typing import Callable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from pz.bucket import TokenBucket, frameCost

__all__ = ["TokenBucket", "Outbox", "QueueBudget", "CoolOff", "LinkTransport", "frameCost"]


class CoolOff:
    """
    Devices recently dropped for breaking the rules, and when each may
    register again.

    The first drop costs C{first} seconds, each further one twice the one
    before, at most C{longest}: a device that keeps coming back to flood
    waits longer each time, one that broke a rule once barely notices.  A
    device refused while it waits is not penalised further (only drops
    are), so it can never be locked out for longer than C{longest}; and
    its count is forgotten C{forgetAfter} seconds after its wait ended.
    Only the device that was dropped waits: the entries are per device id.

    A link refused for cooling off is closed only when its wait ends
    (L{hold}): a client that reconnects once its link closes (a device
    proxy does) comes back when it may register, rather than spending a
    TLS handshake every few hundred milliseconds on refusals.  One link
    per device is held; a newer one closes the older at once.
    """

    def __init__(self, clock, first: float = 1.0, longest: float = 60.0,
                 forgetAfter: float = 600.0) -> None:
        if first <= 0 or longest < first or forgetAfter < 0:
            raise ValueError("first must be positive, longest at least first, "
                             "forgetAfter not negative")
        self._clock = clock
        self._seconds = clock.seconds
        # device id -> (the call that closes its held link, that link)
        self._held: dict = {}
        self.first = first
        self.longest = longest
        self.forgetAfter = forgetAfter
        # device id -> (drops so far, the time it may register again)
        self._entries: dict = {}

    def strike(self, deviceId: str) -> float:
        """
        C{deviceId} was dropped for breaking the rules.

        @return: the seconds it must now wait before registering again.
        """
        now = self._seconds()
        self._forget(now)
        drops, _ = self._entries.get(deviceId, (0, now))
        wait = min(self.longest, self.first * 2.0 ** min(drops, 64))
        self._entries[deviceId] = (drops + 1, now + wait)
        return wait

    def remaining(self, deviceId: str) -> float:
        """
        The seconds C{deviceId} must still wait before it may register; 0
        if it may now.
        """
        entry = self._entries.get(deviceId)
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self._seconds())

    def hold(self, deviceId: str, link) -> None:
        """
        Keep C{link}, refused for cooling off, open until C{deviceId}'s
        wait ends, then close it (C{link.transport.loseConnection()}).  A
        link held before for the same device is closed now.
        """
        self._close(deviceId)
        call = self._clock.callLater(self.remaining(deviceId), self._close, deviceId)
        self._held[deviceId] = (call, link)

    def unhold(self, deviceId: str, link) -> None:
        """
        C{link} closed by itself: nothing to close when the wait ends.
        """
        entry = self._held.get(deviceId)
        if entry is not None and entry[1] is link:
            del self._held[deviceId]
            if entry[0].active():
                entry[0].cancel()

    def _close(self, deviceId: str) -> None:
        entry = self._held.pop(deviceId, None)
        if entry is None:
            return
        call, link = entry
        if call.active():
            call.cancel()
        link.transport.loseConnection()

    def _forget(self, now: float) -> None:
        stale = [d for d, (_, until) in self._entries.items()
                 if now - until >= self.forgetAfter]
        for deviceId in stale:
            del self._entries[deviceId]


class QueueBudget:
    """
    Bytes queued in all outboxes together, and the bound on them.

    @ivar used: bytes queued now.
    @ivar peak: the most ever queued at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._outboxes: set = set()

    def track(self, outbox: "Outbox") -> None:
        """
        Count C{outbox}'s queue in this budget.
        """
        self._outboxes.add(outbox)

    def forget(self, outbox: "Outbox") -> None:
        """
        Stop counting C{outbox} (its queue is already released).
        """
        self._outboxes.discard(outbox)

    def add(self, count: int) -> None:
        """
        C{count} more bytes queued; past the limit the largest queue is
        dropped, until the rest fit.
        """
        self.used += count
        self.peak = max(self.peak, self.used)
        for _ in range(len(self._outboxes)):
            if self.used <= self.limit:
                return
            largest = max(self._outboxes, key=lambda o: o.queued)
            if not largest.queued:
                return
            largest.overflow("the hub's queue budget is spent")

    def release(self, count: int) -> None:
        """
        C{count} bytes left a queue.
        """
        self.used -= count


@implementer(IPushProducer)
class Outbox:
    """
    One link's outgoing bytes: written through at once while the transport
    takes them, queued while it is paused.

    @ivar queued: bytes waiting here.
    @ivar waiters: links whose reading is paused until this drains; each
        has C{release(outbox)}.
    """

    def __init__(self, transport, budget: QueueBudget, limit: int, slowTimeout: float,
                 clock, onSlow: Callable[[str], None]) -> None:
        self._transport = transport
        self._budget = budget
        self.limit = limit
        self._slowTimeout = slowTimeout
        self._clock = clock
        self._onSlow = onSlow
        self._queue: deque = deque()
        self.queued = 0
        self._paused = False
        self._closed = False
        self._slowTimer = None
        self.waiters: set = set()
        budget.track(self)

    @property
    def congested(self) -> bool:
        """
        Whether the queue is past its limit: who feeds this link must wait.
        """
        return self.queued > self.limit

    def write(self, data: bytes) -> None:
        """
        Send C{data}, or queue it behind what waits already.
        """
        if self._closed:
            return
        if not self._paused and not self._queue:
            self._transport.write(data)
            return
        self._queue.append(data)
        self.queued += len(data)
        self._budget.add(len(data))
        if self._closed:
            return  # the budget dropped this very link
        if self.queued > 2 * self.limit:
            self.overflow(f"{self.queued} bytes were waiting for it")
        elif self.congested and self._slowTimer is None:
            self._slowTimer = self._clock.callLater(
                self._slowTimeout, self.overflow,
                f"its queue stayed full for {self._slowTimeout:g} s")

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: queue from now on.
        """
        self._paused = True

    def resumeProducing(self) -> None:
        """
        The transport's buffer drained: write what waits, until it is full
        again; then let the links that waited on this one read again.
        """
        self._paused = False
        while self._queue and not self._paused and not self._closed:
            data = self._queue.popleft()
            self.queued -= len(data)
            self._budget.release(len(data))
            self._transport.write(data)
        if self.queued <= self.limit // 2:
            self._drained()

    def stopProducing(self) -> None:
        """
        The connection is gone: drop what waits.
        """
        self.close()

    def _drained(self) -> None:
        if self._slowTimer is not None:
            if self._slowTimer.active():
                self._slowTimer.cancel()
            self._slowTimer = None
        waiters, self.waiters = self.waiters, set()
        for link in waiters:
            link.release(self)

    def overflow(self, why: str) -> None:
        """
        This link cannot keep up: drop its queue and tell the owner, who
        drops the link.
        """
        if self._closed:
            return
        self.close()
        self._onSlow(why)

    def finish(self) -> None:
        """
        Hand what is queued to the transport and stop being its producer, so
        that it can close.
        """
        if self._closed:
            return
        queue, self._queue = self._queue, deque()
        self._budget.release(self.queued)
        self.queued = 0
        self._closed = True
        for data in queue:
            self._transport.write(data)
        self._transport.unregisterProducer()
        self._drained()
        self._budget.forget(self)

    def close(self) -> None:
        """
        Drop what is queued; let the links waiting on this one read again.
        """
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._budget.release(self.queued)
        self.queued = 0
        self._drained()
        self._budget.forget(self)


class LinkTransport:
    """
    The transport a link protocol sees: its own TLS transport, with every
    write going through the link's L{Outbox}.

    A TLS close waits for the peer's answer, which a peer that floods, or
    whose reading the hub has paused, may never let through: a link still
    open C{closeGrace} seconds after C{loseConnection} is aborted.
    """

    def __init__(self, transport, outbox: Outbox, clock, closeGrace: float) -> None:
        self._transport = transport
        self._outbox = outbox
        self._clock = clock
        self._closeGrace = closeGrace
        self._abortCall = None

    def write(self, data: bytes) -> None:
        """
        Send C{data} through the outbox.
        """
        self._outbox.write(data)

    def writeSequence(self, data) -> None:
        """
        Send the joined C{data} through the outbox.
        """
        self._outbox.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Hand the queue over, unregister the outbox, close (and abort if
        the close does not finish within the grace).
        """
        self._outbox.finish()
        if self._abortCall is None:
            self._abortCall = self._clock.callLater(self._closeGrace, self.abortConnection)
        self._transport.loseConnection()

    def abortConnection(self) -> None:
        """
        Drop the queue and close at once.
        """
        self._outbox.close()
        self._transport.abortConnection()

    def connectionLost(self) -> None:
        """
        The connection is gone: nothing left to abort.
        """
        if self._abortCall is not None and self._abortCall.active():
            self._abortCall.cancel()

    def __getattr__(self, name: str):
        # everything else (peer, certificate, producer calls) is the TLS
        # transport's own
        return getattr(self._transport, name)
