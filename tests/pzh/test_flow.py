"""
Tests for L{pzh.flow} and the hub's flow control: a device that does not
read, or sends too much, costs the hub bounded memory and does not get
other devices dropped.
"""

import struct

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pz.testing import ZONE, MemoryHub, SlowReaderTransport
from pzh.flow import CoolOff, Outbox, QueueBudget, TokenBucket, frameCost
from pzh.hub import HubSettings


_FRAME = 16 * 1024


def _framesIn(buffered: bytes) -> int:
    """
    How many whole frames C{buffered} holds.
    """
    count = 0
    while len(buffered) >= 4:
        (length,) = struct.unpack("!I", buffered[:4])
        if len(buffered) < 4 + length:
            break
        buffered = buffered[4 + length:]
        count += 1
    return count


class TokenBucketTests(SynchronousTestCase):
    """
    L{TokenBucket} grants a burst, then a rate.
    """

    def test_burstThenRate(self):
        """
        The first C{burst} tokens come at once; the next after 1/rate s.
        """
        clock = Clock()
        bucket = TokenBucket(10, 3, clock.seconds)
        self.assertEqual([bucket.take() for _ in range(3)], [0, 0, 0])
        self.assertAlmostEqual(bucket.take(), 0.1)
        clock.advance(0.1)
        self.assertEqual(bucket.take(), 0)
        clock.advance(100)
        self.assertEqual([bucket.take() for _ in range(3)], [0, 0, 0])
        self.assertGreater(bucket.take(), 0)

    def test_largeCost(self):
        """
        A cost above the burst is granted once the bucket is full.
        """
        clock = Clock()
        bucket = TokenBucket(10, 2, clock.seconds)
        self.assertEqual(bucket.take(5), 0)
        self.assertGreater(bucket.take(), 0)

    def test_frameCost(self):
        """
        A frame costs one token per started 64 KiB.
        """
        self.assertEqual([frameCost(n) for n in (0, 1, 65536, 65537, 1024 * 1024)],
                         [1, 1, 1, 2, 16])

    def test_badSettings(self):
        """
        A rate that is not positive or a burst under one is refused.
        """
        self.assertRaises(ValueError, TokenBucket, 0, 1, Clock().seconds)
        self.assertRaises(ValueError, TokenBucket, 1, 0, Clock().seconds)


class _HeldLink:
    """
    A link whose closes are counted.
    """

    def __init__(self) -> None:
        self.closed = 0
        self.transport = self

    def loseConnection(self) -> None:
        self.closed += 1


class CoolOffTests(SynchronousTestCase):
    """
    L{CoolOff}: a wait after each drop, doubling, bounded, per device, and
    forgotten in time.
    """

    def test_doublingUpToLongest(self):
        """
        The first drop costs C{first} seconds, each further one twice the
        one before, never more than C{longest}.
        """
        clock = Clock()
        coolOff = CoolOff(clock, first=1, longest=8, forgetAfter=100)
        self.assertEqual(coolOff.remaining("z/phone"), 0)
        waits = []
        for _ in range(6):
            waits.append(coolOff.strike("z/phone"))
            self.assertEqual(coolOff.remaining("z/phone"), waits[-1])
            clock.advance(waits[-1])
            self.assertEqual(coolOff.remaining("z/phone"), 0)
        self.assertEqual(waits, [1, 2, 4, 8, 8, 8])

    def test_perDevice(self):
        """
        Only the device that was dropped waits.
        """
        clock = Clock()
        coolOff = CoolOff(clock)
        coolOff.strike("z/phone")
        self.assertEqual(coolOff.remaining("z/laptop"), 0)
        self.assertEqual(coolOff.strike("z/laptop"), 1)

    def test_forgotten(self):
        """
        C{forgetAfter} seconds after its wait ended without a new drop, a
        device starts again from C{first}; asking does not prolong a wait.
        """
        clock = Clock()
        coolOff = CoolOff(clock, first=1, longest=60, forgetAfter=10)
        for _ in range(3):
            coolOff.strike("z/phone")
        clock.advance(3.5)
        self.assertEqual(coolOff.remaining("z/phone"), 0.5)
        self.assertEqual(coolOff.remaining("z/phone"), 0.5)
        clock.advance(0.5 + 9)
        self.assertEqual(coolOff.strike("z/phone"), 8)
        clock.advance(8 + 10)
        self.assertEqual(coolOff.strike("z/phone"), 1)

    def test_holdUntilDue(self):
        """
        A held link is closed when its device's wait ends; a newer link of
        the same device closes the older at once; a link that closed by
        itself is not closed again and leaves nothing scheduled.
        """
        clock = Clock()
        coolOff = CoolOff(clock, first=4)
        coolOff.strike("z/phone")
        first, second, third = _HeldLink(), _HeldLink(), _HeldLink()
        coolOff.hold("z/phone", first)
        clock.advance(1)
        self.assertEqual((first.closed, second.closed), (0, 0))
        coolOff.hold("z/phone", second)
        self.assertEqual((first.closed, second.closed), (1, 0))
        clock.advance(3)
        self.assertEqual((first.closed, second.closed), (1, 1))
        coolOff.strike("z/phone")
        coolOff.hold("z/phone", third)
        coolOff.unhold("z/phone", first)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        coolOff.unhold("z/phone", third)
        self.assertEqual(clock.getDelayedCalls(), [])
        clock.advance(60)
        self.assertEqual(third.closed, 0)

    def test_badSettings(self):
        """
        A wait that is not positive, or a longest below the first, is
        refused.
        """
        for first, longest, forget in [(0, 1, 1), (2, 1, 1), (1, 2, -1)]:
            self.assertRaises(ValueError, CoolOff, Clock(), first, longest, forget)


class _Transport:
    """
    Records writes and whether a producer is registered.
    """

    def __init__(self) -> None:
        self.written = []
        self.registered = True

    def write(self, data) -> None:
        self.written.append(data)

    def unregisterProducer(self) -> None:
        self.registered = False


class _Waiter:
    """
    A link waiting on an outbox.
    """

    def __init__(self) -> None:
        self.released = []

    def release(self, reason) -> None:
        self.released.append(reason)


class OutboxTests(SynchronousTestCase):
    """
    L{Outbox} writes through while the transport takes data and queues,
    within bounds, while it is paused.
    """

    def setUp(self):
        self.clock = Clock()
        self.transport = _Transport()
        self.budget = QueueBudget(1000)
        self.slow = []
        self.outbox = Outbox(self.transport, self.budget, 100, 30, self.clock, self.slow.append)

    def test_writeThrough(self):
        """
        While not paused, writes go straight to the transport.
        """
        self.outbox.write(b"a" * 500)
        self.assertEqual(self.transport.written, [b"a" * 500])
        self.assertEqual(self.outbox.queued, 0)

    def test_queuedWhilePaused(self):
        """
        While paused, writes are queued and counted in the budget; resumed,
        they go out in order and waiters are released.
        """
        waiter = _Waiter()
        self.outbox.pauseProducing()
        for chunk in (b"a" * 60, b"b" * 60):
            self.outbox.write(chunk)
        self.assertTrue(self.outbox.congested)
        self.outbox.waiters.add(waiter)
        self.assertEqual((self.outbox.queued, self.budget.used), (120, 120))
        self.outbox.resumeProducing()
        self.assertEqual(self.transport.written, [b"a" * 60, b"b" * 60])
        self.assertEqual((self.outbox.queued, self.budget.used), (0, 0))
        self.assertEqual(waiter.released, [self.outbox])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_slowDropped(self):
        """
        Congested for the slow timeout, the link is reported slow and its
        queue dropped.
        """
        self.outbox.pauseProducing()
        self.outbox.write(b"a" * 150)
        self.clock.advance(29)
        self.assertEqual(self.slow, [])
        self.clock.advance(1)
        self.assertEqual(len(self.slow), 1)
        self.assertEqual((self.outbox.queued, self.budget.used), (0, 0))
        self.outbox.write(b"late")
        self.assertEqual(self.outbox.queued, 0)

    def test_twiceTheLimitDropped(self):
        """
        A queue that reaches twice its limit is dropped at once.
        """
        self.outbox.pauseProducing()
        self.outbox.write(b"a" * 150)
        self.outbox.write(b"a" * 60)
        self.assertEqual(len(self.slow), 1)
        self.assertEqual(self.budget.used, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_budget(self):
        """
        Past the budget, the largest queue is dropped.
        """
        other = Outbox(_Transport(), self.budget, 800, 30, self.clock, self.slow.append)
        other.pauseProducing()
        self.outbox.pauseProducing()
        self.outbox.write(b"s" * 90)
        other.write(b"b" * 700)
        self.assertEqual(self.slow, [])
        other.write(b"b" * 300)
        self.assertEqual(len(self.slow), 1)
        self.assertEqual((other.queued, self.outbox.queued, self.budget.used), (0, 90, 90))
        self.assertEqual(self.budget.peak, 1090)
        self.outbox.close()

    def test_finish(self):
        """
        Finishing hands the queue to the transport and unregisters, so the
        transport can close.
        """
        self.outbox.pauseProducing()
        self.outbox.write(b"x")
        self.outbox.finish()
        self.assertEqual(self.transport.written, [b"x"])
        self.assertFalse(self.transport.registered)
        self.assertEqual(self.budget.used, 0)


class _FlowTestCase(SynchronousTestCase):
    """
    A hub with small frames and queues, and helpers for devices.
    """

    settings = HubSettings(maxFrame=_FRAME, linkQueue=4 * _FRAME, slowTimeout=10,
                           queueBudget=64 * _FRAME, rate=1e6, burst=10 ** 6)

    def setUp(self) -> None:
        self.fixture = MemoryHub(self, self.settings)
        self.hub = self.fixture.hub
        self.addCleanup(self.fixture.close)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def device(self, name: str, transport=SlowReaderTransport):
        """
        Enrol and connect C{name}; return its link with all it was sent so
        far taken.
        """
        key, cert = self.fixture.enrolDevice(name)
        link = self.fixture.connectDevice(key, cert, transport)
        self.fixture.coalesce()
        for other in self.fixture.links:
            other.client.take()
        return link

    def message(self, link, to: str, n: int, size: int = _FRAME - 300) -> None:
        """
        Send C{n} messages of about C{size} bytes from C{link} to C{to}, in
        one write.
        """
        for i in range(n):
            link.client.sendProp(f"{ZONE}/{to}", {"status": "message", "text": "x" * size},
                                 msgId=f"m{i}")

    def ping(self, link, n: int, prefix: str = "p") -> None:
        """
        Send C{n} pings from C{link}.
        """
        for i in range(n):
            link.client.sendProp(ZONE, {"status": "ping"}, msgId=f"{prefix}{i}")

    def logged(self, text: str) -> list:
        """
        The hub's log events whose format mentions C{text}.
        """
        return [e for e in self.events
                if text in (e.get("log_format") or "") or text in str(e.get("code", ""))]


class BackpressureTests(_FlowTestCase):
    """
    A device that does not read holds a bounded amount of the hub's memory;
    those who send to it are paused, not buffered; it is dropped with
    C{TOO_SLOW} if it never catches up; nobody else is dropped.
    """

    def test_boundedAndPaused(self):
        """
        Forty frames to a device that reads nothing: what the hub holds for
        it stays within its queue limit plus the socket buffer and a frame,
        the sender is paused with the rest unread; once the device reads,
        every frame arrives, in order, and the sender reads again.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        laptopIO = laptop.pump.serverIO
        laptopIO.stalled = True
        self.message(phone, "laptop", 40)
        self.fixture.flush()
        held = laptopIO.pending() + self.hub.queues.used
        # the queue, the socket's buffer, what the TLS layer gathers before
        # it writes (64,000 bytes), and a frame or two in flight
        bound = (self.settings.linkQueue + SlowReaderTransport.bufferSize + 64000
                 + 2 * self.settings.maxFrame)
        self.assertLessEqual(held, bound)
        self.assertTrue(phone.server.paused)
        self.assertEqual(phone.client.take(), [])
        laptopIO.stalled = False
        self.fixture.flush()
        self.assertEqual([f["id"] for f in laptop.client.take()], [f"m{i}" for i in range(40)])
        self.assertFalse(phone.server.paused)
        self.assertEqual(self.hub.queues.used, 0)
        self.assertEqual([f["payload"]["status"] for f in phone.client.take()], ["ack"] * 0)
        self.ping(phone, 1)
        self.fixture.flush()
        self.assertEqual(phone.client.statuses(), ["pong"])

    def test_slowDeviceDropped(self):
        """
        A device that stays behind for the slow timeout is dropped (C{TOO_SLOW}
        in the log); the sender is not, and reads again.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        laptop.pump.serverIO.stalled = True
        self.message(phone, "laptop", 40)
        self.fixture.flush()
        self.assertTrue(phone.server.paused)
        self.fixture.advance(self.settings.slowTimeout)
        self.assertTrue(laptop.server.transport.disconnecting)
        self.assertEqual(len(self.logged("TOO_SLOW")), 1)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/laptop"))
        self.assertIs(self.hub.registry.get(f"{ZONE}/phone"), phone.server)
        self.assertEqual(self.hub.queues.used, 0)
        # the sender's remaining frames are read again: the laptop is gone
        self.assertFalse(phone.server.paused)
        self.assertEqual(set(phone.client.codes()), {"DEVICE_OFFLINE"})
        self.assertIsNone(phone.client.lost)
        laptop.pump.serverIO.stalled = False
        self.fixture.flush()

    def test_ownRepliesPause(self):
        """
        A device that pings without reading the pongs is itself paused
        once its own queue is full, then dropped.
        """
        phone = self.device("phone")
        phone.pump.serverIO.stalled = True
        self.ping(phone, 4000)
        self.fixture.flush()
        self.assertTrue(phone.server.paused)
        self.assertLessEqual(self.hub.queues.used, 2 * self.settings.linkQueue)
        self.fixture.advance(self.settings.slowTimeout)
        self.assertTrue(phone.server.transport.disconnecting)
        phone.pump.serverIO.stalled = False
        self.fixture.flush()

    def test_budgetDropsLargest(self):
        """
        With a budget below two full queues, the hub drops the device with
        the largest queue rather than exceed it.
        """
        self.hub.queues.limit = 6 * _FRAME
        phone, laptop, tablet = self.device("phone"), self.device("laptop"), self.device("tablet")
        laptop.pump.serverIO.stalled = tablet.pump.serverIO.stalled = True
        self.message(phone, "laptop", 8)
        self.message(phone, "tablet", 8)
        self.fixture.flush()
        self.assertLessEqual(self.hub.queues.used, 6 * _FRAME)
        self.assertEqual(len(self.logged("TOO_SLOW")), 1)
        self.assertIsNone(phone.client.lost)
        laptop.pump.serverIO.stalled = tablet.pump.serverIO.stalled = False
        self.fixture.advance(self.settings.slowTimeout)


class RateLimitTests(_FlowTestCase):
    """
    Each device has a token bucket: beyond it, one C{RATE_LIMITED} and
    reading paused until a token is back.
    """

    settings = HubSettings(maxFrame=_FRAME, rate=10, burst=5)

    def test_pausedThenResumed(self):
        """
        Of eight pings in one write, five are answered, the sixth is
        refused with C{RATE_LIMITED} and the last two wait unread; once the
        bucket refills they are answered, and the link stays up.
        """
        phone = self.device("phone")
        self.ping(phone, 8)
        self.fixture.flush()
        frames = phone.client.take()
        self.assertEqual([f["payload"]["status"] for f in frames], ["pong"] * 5 + ["error"])
        self.assertEqual((frames[-1]["payload"]["code"], frames[-1]["payload"]["ref"]),
                         ("RATE_LIMITED", "p5"))
        self.assertTrue(phone.server.paused)
        self.fixture.advance(0.05)
        self.assertEqual(phone.client.take(), [])
        self.fixture.advance(1)
        self.assertEqual([f["payload"]["ref"] for f in phone.client.take()], ["p6", "p7"])
        self.assertFalse(phone.server.paused)
        self.assertIsNone(phone.client.lost)

    def test_countsTowardsDisconnect(self):
        """
        A device that keeps sending past its share gets five
        C{RATE_LIMITED}, then C{TOO_MANY_ERRORS}, and is dropped; another
        device is unaffected.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        for round in range(5):
            self.ping(phone, 7, prefix=f"r{round}-")
            self.fixture.advance(1)
        self.assertEqual(phone.client.codes(), ["RATE_LIMITED"] * 5 + ["TOO_MANY_ERRORS"])
        self.assertTrue(phone.closed)
        self.ping(laptop, 3)
        self.fixture.flush()
        self.assertEqual(laptop.client.statuses(), ["pzpUpdate"] * 0 + ["pong"] * 3)

    def test_bucketKeptAcrossReconnection(self):
        """
        Reconnecting does not refill a device's bucket.
        """
        key, cert = self.fixture.enrolDevice("phone")
        first = self.fixture.connectDevice(key, cert)
        self.ping(first, 5)
        self.fixture.flush()
        first.client.transport.loseConnection()
        self.fixture.flush()
        second = self.fixture.connectDevice(key, cert)
        second.client.take()
        self.ping(second, 1)
        self.fixture.flush()
        self.assertEqual(second.client.codes(), ["RATE_LIMITED"])
        self.fixture.advance(1)

    def test_burstReadOverTurns(self):
        """
        A burst within the device's share is read four frames at a time,
        the link pausing between them so that other links get their turn
        (a flooder's sixteen-frame turns showed as a 2.5 ms wait for every
        other device); every frame is still answered, in order.
        """
        self.hub.settings = HubSettings(rate=1e6, burst=10 ** 6)
        phone = self.device("phone")
        phone.server._bucket = self.hub.newBucket()
        self.ping(phone, 64)
        phone.pump.pump()
        self.assertTrue(phone.server.paused)
        self.assertEqual(_framesIn(phone.server._unprocessed), 64 - 4)
        self.assertTrue(phone.server._unprocessed)
        self.fixture.flush()
        self.assertEqual([f["payload"]["ref"] for f in phone.client.take()],
                         [f"p{i}" for i in range(64)])
        self.assertFalse(phone.server.paused)

    def test_steadyFramesNotPaused(self):
        """
        Frames that come one read at a time (a steady flow, not a burst)
        never pause the link: the four-frame turn counts the frames of one
        read, not all frames ever read (pausing and resuming reading every
        fourth frame cost the hub a fifth of its time at 1,000 calls a
        second).
        """
        self.hub.settings = HubSettings(rate=1e6, burst=10 ** 6)
        phone = self.device("phone")
        phone.server._bucket = self.hub.newBucket()
        paused = []
        self.patch(phone.server, "pauseProducing",
                   lambda: paused.append(True) or type(phone.server).pauseProducing(phone.server))
        for i in range(12):
            self.ping(phone, 1, prefix=f"q{i}-")
            self.fixture.flush()
        self.assertEqual(paused, [])
        self.assertEqual(len(phone.client.take()), 12)

    def test_droppedPeerNotParsed(self):
        """
        Once a device is dropped for breaking the rules, the frames that
        came in the same read are neither parsed nor charged to its bucket
        (a flooder's read holds hundreds): reading stops at the decision.
        """
        self.hub.settings = HubSettings(rate=10, burst=1000)
        phone = self.device("phone")
        bucket = phone.server._bucket = self.hub.newBucket()
        for _ in range(5):
            phone.client.sendString(b"nope")
        self.ping(phone, 100)
        self.fixture.flush()
        self.assertEqual(phone.client.codes(), ["BAD_FRAME"] * 5 + ["TOO_MANY_ERRORS"])
        self.assertEqual(phone.client.statuses().count("pong"), 0)
        # only the five bad frames were charged
        self.assertEqual(bucket.take(995), 0)
        self.assertGreater(bucket.take(1), 0)
        self.assertTrue(phone.closed)

    def test_coolOffAfterDrop(self):
        """
        A device dropped for breaking the rules that comes straight back
        is refused C{COOLING_OFF} with the seconds it must wait, before it
        is registered (the others hear nothing of it); once the wait is
        over it registers; dropped again, it waits twice as long.  Another
        device connects meanwhile as usual.
        """
        self.hub.settings = HubSettings(rate=1e6, burst=10 ** 6)
        key, cert = self.fixture.enrolDevice("phone")
        laptop = self.device("laptop")

        def dropped(link):
            for _ in range(5):
                link.client.sendString(b"nope")
            self.fixture.flush()
            self.assertEqual(link.client.codes()[-1], "TOO_MANY_ERRORS")
            self.assertTrue(link.closed)

        first = self.fixture.connectDevice(key, cert)
        self.assertEqual(first.client.statuses(), ["registered"])
        dropped(first)
        self.fixture.coalesce()
        laptop.client.take()

        again = self.fixture.connectDevice(key, cert)
        [refusal] = again.client.take()
        self.assertEqual(refusal["payload"]["code"], "COOLING_OFF")
        # one second from the drop, of which the coalescing delay passed
        wait = 1 - self.hub.settings.coalesce
        self.assertEqual(refusal["payload"]["retryAfter"], wait)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/phone"))
        self.fixture.coalesce()
        self.assertEqual(laptop.client.take(), [])
        self.assertEqual(self.device("tablet").client.lost, None)
        # the refused link, unread, closes when the wait ends: a client
        # that reconnects on close comes back when it may register
        self.assertIsNone(again.client.lost)
        self.fixture.advance(wait - 2 * self.hub.settings.coalesce)
        self.assertIsNone(again.client.lost)
        self.fixture.advance(self.hub.settings.coalesce)
        self.assertIsNotNone(again.client.lost)

        third = self.fixture.connectDevice(key, cert)
        self.assertEqual(third.client.statuses(), ["registered"])
        dropped(third)
        self.fixture.advance(1.5)
        fourth = self.fixture.connectDevice(key, cert)
        self.assertEqual(fourth.client.codes(), ["COOLING_OFF"])
        self.fixture.advance(0.5)
        self.assertEqual(self.fixture.connectDevice(key, cert).client.statuses(), ["registered"])

    def test_floodLogBounded(self):
        """
        A thousand undeliverable messages get a thousand answers but only a
        few log lines.
        """
        self.hub.settings = HubSettings(rate=1e6, burst=10 ** 6)
        phone = self.device("phone")
        phone.server._bucket = self.hub.newBucket()
        for i in range(1000):
            phone.client.sendProp(f"{ZONE}/nobody", {"status": "message"}, msgId=str(i))
        self.fixture.flush()
        self.assertEqual(phone.client.codes(), ["UNKNOWN_DESTINATION"] * 1000)
        self.assertLessEqual(len(self.logged("refused a message")), 10)
