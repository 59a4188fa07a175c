"""
Tests for queued delivery at the hub: a message sent with C{"queue": true}
to a device that is offline is kept (L{pzh.store}), answered C{queued},
and sent to the device when it registers (L{pzh.router.Router}).
"""

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.testing import MemoryZone
from pz.wire import Envelope, decodeEnvelope
from pzh.hub import HubSettings
from pzh.router import QueueLimits, Router
from pzp.admin import ProxyAdmin
from pzh.store import DeviceRecord, SQLiteHubStore

ZONE = "anna@127.0.0.1"
PHONE = f"{ZONE}/phone"
LAPTOP = f"{ZONE}/laptop"


class _Link:
    """
    A link that records what it is sent.
    """

    def __init__(self, deviceId: str) -> None:
        self.deviceId = deviceId
        self.messages = []
        self.frames = []

    def deliver(self, data: bytes, sender) -> None:
        self.frames.append(data)

    def sendString(self, data: bytes) -> None:
        self.frames.append(data)

    def sendMessage(self, to, payload, msgId=None) -> str:
        self.messages.append((to, payload))
        return "sent"


class _Registry:
    """
    Connected links by id; frames sent through it are written when
    L{_Registry.pump} says so, as the hub's pacing writes them on a later
    turn.
    """

    def __init__(self, *links) -> None:
        self.links = {link.deviceId: link for link in links}
        self.waiting = []

    def get(self, deviceId):
        return self.links.get(deviceId)

    def sendFrames(self, link, frames) -> None:
        self.waiting.extend((link, frame) for frame in frames)

    def pump(self, count=None) -> None:
        count = len(self.waiting) if count is None else count
        for _ in range(count):
            link, frame = self.waiting.pop(0)
            link.sendString(frame(link))


class QueueTests(SynchronousTestCase):
    """
    L{Router} queues, answers and delivers.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = SQLiteHubStore(":memory:")
        self.addCleanup(self.store.close)
        for name, revoked in (("phone", None), ("laptop", None), ("old", 5.0)):
            self.store.putDevice(DeviceRecord(f"{ZONE}/{name}", name, 1, 0.0, 1e10,
                                              revoked=revoked))
        self.phone = _Link(PHONE)
        self.registry = _Registry(self.phone)
        self.router = Router(ZONE, self.registry, self.store, clock=self.clock,
                             queue=QueueLimits(expiry=100.0, maxMessages=3, maxBytes=4000))

    def send(self, text, to=LAPTOP, msgId="m1", **extra):
        payload = {"status": "message", "text": text, "queue": True}
        payload.update(extra)
        self.router.dispatch(self.phone, Envelope("prop", "", to, msgId, payload))

    def refused(self, code, text="x", **kw):
        e = self.assertRaises(ZoneError, self.send, text, **kw)
        self.assertEqual(e.code, code)
        return e

    def connectLaptop(self) -> _Link:
        laptop = _Link(LAPTOP)
        self.registry.links[LAPTOP] = laptop
        self.router.deliverQueued(laptop)
        return laptop

    def test_queuedAnswer(self):
        """
        The sender is answered C{queued} naming its message, and the frame
        is kept as it would have been forwarded: C{from} filled in.
        """
        self.send("hello", msgId="m7")
        self.assertEqual(self.phone.messages, [(PHONE, {"status": "queued", "ref": "m7"})])
        [kept] = self.store.queuedFor(LAPTOP)
        envelope = decodeEnvelope(kept.frame)
        self.assertEqual((envelope.sender, envelope.to, envelope.id, envelope.payload["text"]),
                         (PHONE, LAPTOP, "m7", "hello"))
        self.assertEqual((kept.sender, kept.queued), (PHONE, 1000.0))

    def test_deliveredOnConnect(self):
        """
        When the device registers it is sent what was queued, in order, and
        each message leaves the store as it is written.
        """
        for number in range(3):
            self.send(f"t{number}", msgId=f"m{number}")
        laptop = self.connectLaptop()
        self.assertEqual(laptop.frames, [])
        self.registry.pump(1)
        self.assertEqual(len(self.store.queuedFor(LAPTOP)), 2)
        self.registry.pump()
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames],
                         ["t0", "t1", "t2"])
        self.assertEqual(self.store.queuedFor(LAPTOP), [])

    def test_forwardWaitsBehindQueued(self):
        """
        A message forwarded to the device while its queued messages are
        still waiting to be written goes after them; once they are written
        forwarding goes straight through again.
        """
        self.send("old1", msgId="m1")
        self.send("old2", msgId="m2")
        laptop = self.connectLaptop()
        self.registry.pump(1)
        self.send("fresh", msgId="m3")
        self.assertEqual(len(laptop.frames), 1)
        self.registry.pump()
        self.send("later", msgId="m4")
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames],
                         ["old1", "old2", "fresh", "later"])
        self.assertEqual(self.registry.waiting, [])

    def test_staleDrainingIgnored(self):
        """
        A link lost while its queued messages waited does not hold back
        forwarding to the device's next link, which had nothing queued.
        """
        self.send("a", msgId="m1")
        self.connectLaptop()
        self.registry.waiting.clear()
        self.store.removeQueued(self.store.queuedFor(LAPTOP)[0].seq)
        laptop = self.connectLaptop()
        self.send("now", msgId="m2")
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames], ["now"])

    def test_lostBeforeWritten(self):
        """
        What a link lost before it was written stays queued for the next
        registration, and is not sent twice.
        """
        self.send("a", msgId="m1")
        self.send("b", msgId="m2")
        self.connectLaptop()
        self.registry.pump(1)
        self.registry.waiting.clear()
        laptop = self.connectLaptop()
        self.registry.pump()
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames], ["b"])

    def test_countBound(self):
        """
        Past the count bound the sender gets C{QUEUE_FULL} and nothing is
        kept.
        """
        for number in range(3):
            self.send("x", msgId=f"m{number}")
        self.phone.messages.clear()
        self.refused("QUEUE_FULL", msgId="m9")
        self.assertEqual(self.phone.messages, [])
        self.assertEqual(len(self.store.queuedFor(LAPTOP)), 3)

    def test_byteBound(self):
        """
        Past the byte bound the sender gets C{QUEUE_FULL}.
        """
        self.send("x" * 2000, msgId="m1")
        self.refused("QUEUE_FULL", text="y" * 2000, msgId="m2")
        self.assertEqual(len(self.store.queuedFor(LAPTOP)), 1)

    def test_expiredDropped(self):
        """
        Messages older than the expiry are dropped, not delivered, and a
        log line counts them.
        """
        self.send("old", msgId="m1")
        self.clock.advance(60)
        self.send("new", msgId="m2")
        self.clock.advance(50)
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        laptop = self.connectLaptop()
        self.registry.pump()
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames], ["new"])
        self.assertIn(1, [event.get("count") for event in logged
                          if "expired" in event.get("log_format", "")])

    def test_expiredFreesBound(self):
        """
        Expired messages do not count against the bound.
        """
        for number in range(3):
            self.send("x", msgId=f"m{number}")
        self.clock.advance(101)
        self.send("y", msgId="m9")
        self.assertEqual([m.messageId for m in self.store.queuedFor(LAPTOP)], ["m9"])

    def test_revokedRefused(self):
        """
        A revoked device is not queued for: C{UNKNOWN_DESTINATION}.
        """
        self.refused("UNKNOWN_DESTINATION", to=f"{ZONE}/old")
        self.assertEqual(self.store.queuedFor(f"{ZONE}/old"), [])

    def test_unknownRefused(self):
        """
        A device that is not enrolled is not queued for.
        """
        self.refused("UNKNOWN_DESTINATION", to=f"{ZONE}/nobody")

    def test_plainSendUnchanged(self):
        """
        Without C{queue}, or with it false, an offline device is still
        C{DEVICE_OFFLINE} and nothing is kept.
        """
        for queue in (False, None):
            payload = {"status": "message", "text": "x"}
            if queue is not None:
                payload["queue"] = queue
            e = self.assertRaises(ZoneError, self.router.dispatch, self.phone,
                                  Envelope("prop", "", LAPTOP, "m1", payload))
            self.assertEqual(e.code, "DEVICE_OFFLINE")
        self.assertEqual(self.store.queuedFor(LAPTOP), [])
        self.assertEqual(self.phone.messages, [])

    def test_onlineForwarded(self):
        """
        To a connected device a message with C{queue} is simply forwarded.
        """
        laptop = _Link(LAPTOP)
        self.registry.links[LAPTOP] = laptop
        self.send("now")
        self.assertEqual([decodeEnvelope(f).payload["text"] for f in laptop.frames], ["now"])
        self.assertEqual(self.phone.messages, [])
        self.assertEqual(self.store.queuedFor(LAPTOP), [])

    def test_badQueueField(self):
        """
        A C{queue} that is not true or false is refused, and nothing kept.
        """
        for bad in ("yes", 1, None, [True]):
            e = self.refused("BAD_REQUEST", queue=bad)
            self.assertIn("queue", e.message)
        self.assertEqual(self.store.queuedFor(LAPTOP), [])
        self.assertEqual(self.phone.messages, [])

    def test_tooLarge(self):
        """
        A message too large to forward is not kept either.
        """
        router = Router(ZONE, self.registry, self.store, clock=self.clock, maxFrame=200)
        e = self.assertRaises(ZoneError, router.dispatch, self.phone, Envelope(
            "prop", "", LAPTOP, "m1", {"status": "message", "text": "x" * 300, "queue": True}))
        self.assertEqual(e.code, "FRAME_TOO_LARGE")
        self.assertEqual(self.store.queuedFor(LAPTOP), [])


class QueuedZoneTests(SynchronousTestCase):
    """
    Queued delivery through the real hub and proxies of L{pz.testing}'s
    in-memory zone: TLS links, registration, pacing.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone", "laptop"])
        self.phone = self.zone.device("phone")
        self.laptop = self.zone.device("laptop")
        self.laptopId = self.zone.deviceId("laptop")

    def test_queuedThenDelivered(self):
        """
        Sent with C{queue} while the laptop is away, the messages are
        answered queued, and reach the laptop's inbox in order once it
        connects again; the store is then empty.
        """
        self.zone.disconnect("laptop")
        answers = [self.phone.send(self.laptopId, text, queue=True) for text in ("one", "two")]
        self.zone.flush()
        for d in answers:
            self.assertEqual(self.successResultOf(d)["status"], "queued")
        store = self.zone.hub.store
        self.assertEqual(len(store.queuedFor(self.laptopId)), 2)
        self.assertEqual(self.laptop.inbox.messages(), [])
        self.zone.advance(60)
        self.assertEqual(self.laptop.status()["state"], "Connected")
        self.assertEqual([(m["from"], m["text"]) for m in self.laptop.inbox.messages()],
                         [(self.zone.deviceId("phone"), "one"),
                          (self.zone.deviceId("phone"), "two")])
        self.assertEqual(store.queuedFor(self.laptopId), [])
        self.assertEqual(self.phone.status()["state"], "Connected")

    def test_plainSendOffline(self):
        """
        Without C{queue} a message to the absent laptop still fails with
        C{DEVICE_OFFLINE}, and nothing reaches it later.
        """
        self.zone.disconnect("laptop")
        d = self.phone.send(self.laptopId, "lost")
        self.zone.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DEVICE_OFFLINE")
        self.zone.advance(60)
        self.assertEqual(self.laptop.inbox.messages(), [])

    def test_connectedDelivered(self):
        """
        With C{queue} to a connected device the message is simply
        delivered and acknowledged.
        """
        d = self.phone.send(self.laptopId, "now", queue=True)
        self.zone.flush()
        self.assertEqual(self.successResultOf(d)["status"], "ack")
        self.assertEqual([m["text"] for m in self.laptop.inbox.messages()], ["now"])

    def test_adminSays(self):
        """
        The proxy's C{send} admin command (what C{pzctl send --queue} asks)
        says whether the message was delivered or queued.
        """
        admin = ProxyAdmin(self.phone)
        d = admin.command_send(self.laptopId, "now", True)
        self.zone.flush()
        self.assertEqual(self.successResultOf(d),
                         {"to": self.laptopId, "delivered": True, "queued": False})
        self.zone.disconnect("laptop")
        d = admin.command_send(self.laptopId, "later", True)
        self.zone.flush()
        self.assertEqual(self.successResultOf(d),
                         {"to": self.laptopId, "delivered": False, "queued": True})
        self.zone.advance(60)


class HubQueueTests(SynchronousTestCase):
    """
    What the L{pzh.hub.Hub} itself does with the queue.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone", "laptop", "tablet"],
                               hubSettings=HubSettings(queueExpiry=100.0))
        self.store = self.zone.hub.store
        for name in ("laptop", "tablet"):
            self.zone.stopDevice(name)

    def queue(self, name: str, text: str) -> None:
        d = self.zone.device("phone").send(self.zone.deviceId(name), text, queue=True)
        self.zone.flush()
        self.assertEqual(self.successResultOf(d)["status"], "queued")

    def test_revokeDropsQueue(self):
        """
        Revoking a device drops what was queued for it, and nothing more.
        """
        self.queue("laptop", "a")
        self.queue("tablet", "b")
        self.zone.revoke("laptop")
        self.assertEqual(self.store.queuedFor(self.zone.deviceId("laptop")), [])
        self.assertEqual(len(self.store.queuedFor(self.zone.deviceId("tablet"))), 1)

    def test_sweep(self):
        """
        L{Hub.expireQueued} drops what is older than C{queueExpiry} for
        every device, even one that never connects again.
        """
        self.queue("laptop", "old")
        self.zone.advance(60)
        self.queue("tablet", "new")
        self.zone.advance(50)
        self.assertEqual(self.zone.hub.expireQueued(), 1)
        self.assertEqual(self.store.queuedFor(self.zone.deviceId("laptop")), [])
        self.assertEqual(len(self.store.queuedFor(self.zone.deviceId("tablet"))), 1)
