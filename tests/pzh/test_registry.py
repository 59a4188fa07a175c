"""
Tests for L{pzh.registry}: who is connected, and the C{pzpUpdate} messages
that tell the devices about each other.
"""

from datetime import datetime, timezone

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki
from pz.udf import key_fingerprint
from pz.wire import decodeEnvelope
from pzh.interfaces import IZoneLink
from pzh.registry import Registry, linkFingerprint
from pzh.store import DeviceRecord, SQLiteHubStore

ZONE = "anna@127.0.0.1"


@implementer(IZoneLink)
class _Link:
    """
    What the registry needs of a link: an id, an address, a fingerprint, a
    transport and C{sendString}, recorded.
    """

    replaced = False
    peerPort = 0

    def __init__(self, name: str, port: int = 40000) -> None:
        self.deviceId = f"{ZONE}/{name}"
        self.address = f"127.0.0.1:{port}"
        self.fingerprint = f"FP-{name}"
        self.transport = StringTransport()
        self.sent = []

    def sendString(self, data: bytes) -> None:
        self.sent.append(data)

    def updates(self) -> list:
        """
        The payloads of the frames sent, each checked to be a valid
        envelope from the hub to this device; cleared.
        """
        out = []
        for data in self.sent:
            envelope = decodeEnvelope(data)
            assert envelope.sender == ZONE and envelope.to == self.deviceId, envelope
            assert envelope.type == "prop"
            out.append(envelope.payload)
        self.sent = []
        return out


class _TurnClock(Clock):
    """
    A L{Clock} whose L{turn} runs, as a reactor's turn does, only the calls
    due when it starts, not those they schedule for now.
    """

    def turn(self, amount: float = 0) -> None:
        self.rightNow += amount
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            self.calls.remove(call)
            call.called = 1
            call.func(*call.args, **call.kw)


class RegistryTests(SynchronousTestCase):
    """
    L{Registry} keeps live links by device id and sends coalesced updates.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = SQLiteHubStore(":memory:")
        self.addCleanup(self.store.close)
        for name in ("phone", "laptop", "tablet"):
            self.store.putDevice(DeviceRecord(f"{ZONE}/{name}", name, 1, 0.0, 1e10))
        self.registry = Registry(ZONE, self.store, self.clock, coalesce=0.05)
        self.addCleanup(self.assertNoDelayedCalls)

    def assertNoDelayedCalls(self):
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_largeZonePaged(self):
        """
        However large the zone, every pzpUpdate frame lists at most a page
        of devices: a joiner gets the whole list as numbered pages, the
        others get the joins in pages too, and together they name every
        device exactly once.
        """
        from pzh.registry import _PAGE

        first = _Link("first")
        self.registry.register(first)
        self.clock.advance(0.05)
        first.updates()
        burst = [_Link(f"d{i:03}", 41000 + i) for i in range(_PAGE * 2 + 5)]
        for link in burst:
            self.registry.register(link)
        self.clock.advance(0.05)
        pages = burst[0].updates()
        self.assertEqual([(p["page"], p["pages"]) for p in pages], [(1, 3), (2, 3), (3, 3)])
        listed = [d["id"] for p in pages for d in p["devices"]]
        self.assertEqual(sorted(listed), sorted([first.deviceId] + [l.deviceId for l in burst]))
        deltas = first.updates()
        self.assertTrue(all(len(d["joined"]) <= _PAGE for d in deltas))
        self.assertEqual(sorted(e["id"] for d in deltas for e in d["joined"]),
                         sorted(l.deviceId for l in burst))
        self.registry.cancel()

    def _turns(self, turn: int = 2**30):
        """
        A registry on a clock that, like a reactor, runs in one turn only
        the calls already due when the turn begins; it sends one frame per
        link per turn, and C{turn} bytes in all.
        """
        from pzh import registry

        self.patch(registry, "_BURST", 1)
        self.patch(registry, "_TURN", turn)
        clock = _TurnClock()
        self.addCleanup(lambda: self.assertEqual(clock.getDelayedCalls(), []))
        return Registry(ZONE, self.store, clock, coalesce=0.05), clock

    def test_largeListPaced(self):
        """
        A joiner's whole list goes out at most L{registry._BURST} bytes per
        reactor turn (a frame is never split), the pages in order; an update
        for that device while pages still wait is sent after them.
        """
        from pzh.registry import _PAGE

        def pages(link):
            return [p.get("page") for p in link.updates()]

        reg, clock = self._turns()
        first = _Link("first")
        reg.register(first)
        clock.turn(0.05)
        first.updates()
        burst = [_Link(f"d{i:03}", 41000 + i) for i in range(_PAGE * 4 + 5)]
        for link in burst:
            reg.register(link)
        clock.turn(0.05)
        joiner = burst[0]
        self.assertEqual(pages(joiner), [1])
        late = _Link("late", 42000)
        reg.register(late)
        clock.turn()
        self.assertEqual(pages(joiner), [2])
        clock.turn(0.05)  # page 3, and the news of late queued behind 4 and 5
        self.assertEqual(pages(joiner), [3])
        self.assertEqual(pages(late), [1])
        clock.turn()
        self.assertEqual(pages(joiner), [4])
        clock.turn()
        self.assertEqual(pages(joiner), [5])
        clock.turn()
        [delta] = joiner.updates()
        self.assertEqual([e["id"] for e in delta["joined"]], [late.deviceId])
        for _ in range(10):
            clock.turn()
        self.assertEqual(pages(late), [2, 3, 4, 5])
        self.assertEqual([e["id"] for d in first.updates() for e in d["joined"]],
                         [link.deviceId for link in burst] + [late.deviceId])
        reg.cancel()

    def test_turnBudget(self):
        """
        All links together get about L{registry._TURN} bytes per turn; the
        links waiting are served in turn, round-robin, so a long list does
        not hold up the others' updates.
        """
        from pzh.registry import _PAGE

        reg, clock = self._turns(turn=1)  # one frame per turn, in all
        links = [_Link(f"d{i:03}", 41000 + i) for i in range(_PAGE * 2 + 1)]
        for link in links:
            reg.register(link)
        clock.turn(0.05)  # three pages each; the first link gets page 1
        a, b, c = links[:3]
        self.assertEqual([p["page"] for p in a.updates()], [1])
        self.assertEqual(b.sent + c.sent, [])
        served = []
        for _ in range(len(links) * 3 - 1):
            clock.turn()
            served.append([link for link in links if link.sent])
            for link in links:
                link.updates()
        self.assertEqual([len(s) for s in served], [1] * (len(links) * 3 - 1))
        order = [s[0] for s in served]
        # Each link in turn, round after round; the first one is done first.
        self.assertEqual(order, links + links + links[1:])
        self.assertEqual(clock.getDelayedCalls(), [])
        reg.cancel()

    def test_pacedListDroppedWhenLinkGoes(self):
        """
        Pages still waiting for a device that leaves, or connects again on a
        new link, are not sent to the old link; C{cancel} drops them all.
        """
        from pzh.registry import _PAGE

        reg, clock = self._turns()
        links = [_Link(f"d{i:03}", 41000 + i) for i in range(_PAGE * 3)]
        for link in links:
            reg.register(link)
        clock.turn(0.05)
        gone, replaced, stays = links[0], links[1], links[2]
        for link in links:
            self.assertEqual([p["page"] for p in link.updates()], [1])
        reg.unregister(gone)
        again = _Link("d001", 43000)
        reg.register(again)
        clock.turn()
        self.assertEqual(gone.sent + replaced.sent, [])
        self.assertEqual([p["page"] for p in stays.updates()], [2])
        reg.cancel()
        clock.turn(1)
        self.assertEqual(gone.sent + replaced.sent + stays.sent + again.sent, [])

    def test_registerAndGet(self):
        """
        A registered link is found by its device id and counted.
        """
        phone = _Link("phone")
        self.registry.register(phone)
        self.assertIs(self.registry.get(phone.deviceId), phone)
        self.assertIsNone(self.registry.get(f"{ZONE}/laptop"))
        self.assertEqual(len(self.registry), 1)
        self.assertEqual(self.registry.links(), [phone])
        self.registry.cancel()

    def test_touchesStore(self):
        """
        Registering records time and address; unregistering records the
        time and keeps the address.  Both reach the store in batches: with
        the next pzpUpdate, or when the registry is stopped.
        """
        phone = _Link("phone", 40123)
        self.registry.register(phone)
        self.clock.advance(10)
        record = self.store.getDevice(phone.deviceId)
        self.assertEqual((record.lastSeen, record.address), (1000.0, "127.0.0.1:40123"))
        self.registry.unregister(phone)
        self.registry.cancel()
        record = self.store.getDevice(phone.deviceId)
        self.assertEqual((record.lastSeen, record.address), (1010.0, "127.0.0.1:40123"))

    def test_replace(self):
        """
        A second link for a device replaces the first, which is marked and
        closed; unregistering the replaced link changes nothing.
        """
        old, new = _Link("phone"), _Link("phone", 40001)
        self.registry.register(old)
        self.registry.register(new)
        self.assertTrue(old.replaced)
        self.assertTrue(old.transport.disconnecting)
        self.assertFalse(new.transport.disconnecting)
        self.registry.unregister(old)
        self.assertIs(self.registry.get(new.deviceId), new)
        self.clock.advance(0.05)
        self.assertEqual(old.sent, [])
        [update] = new.updates()
        self.assertEqual(update["devices"],
                         [{"id": new.deviceId, "address": new.address, "fingerprint": "FP-phone"}])

    def test_registerSameLinkTwice(self):
        """
        Registering the very same link again does not close it.
        """
        phone = _Link("phone")
        self.registry.register(phone)
        self.registry.register(phone)
        self.assertFalse(phone.transport.disconnecting)
        self.assertFalse(phone.replaced)
        self.registry.cancel()

    def test_unregisterUnknown(self):
        """
        Unregistering a link never registered does nothing and schedules
        nothing.
        """
        self.registry.unregister(_Link("phone"))
        self.assertEqual(len(self.registry), 0)

    def test_snapshot(self):
        """
        The snapshot lists id, address and fingerprint of every link.
        """
        phone, laptop = _Link("phone", 1), _Link("laptop", 2)
        self.registry.register(phone)
        self.registry.register(laptop)
        self.assertEqual(
            sorted(self.registry.snapshot(), key=lambda d: d["id"]),
            [{"id": laptop.deviceId, "address": "127.0.0.1:2", "fingerprint": "FP-laptop"},
             {"id": phone.deviceId, "address": "127.0.0.1:1", "fingerprint": "FP-phone"}],
        )
        self.registry.cancel()

    def test_coalesced(self):
        """
        Joins within the coalesce window make one update per device, sent
        when the window closes: the full list to each that joined.
        """
        phone, laptop = _Link("phone"), _Link("laptop")
        self.registry.register(phone)
        self.clock.advance(0.03)
        self.registry.register(laptop)
        self.assertEqual(phone.sent + laptop.sent, [])
        self.clock.advance(0.02)
        for link in (phone, laptop):
            [update] = link.updates()
            self.assertEqual(update["status"], "pzpUpdate")
            self.assertEqual(sorted(d["id"] for d in update["devices"]),
                             [laptop.deviceId, phone.deviceId])
        self.clock.advance(1)
        self.assertEqual(phone.sent + laptop.sent, [])

    def test_deltas(self):
        """
        Devices already connected hear only who joined and who left.
        """
        phone, laptop, tablet = _Link("phone"), _Link("laptop"), _Link("tablet")
        self.registry.register(phone)
        self.clock.advance(0.05)
        phone.updates()
        self.registry.register(laptop)
        self.registry.register(tablet)
        self.clock.advance(0.05)
        [toPhone] = phone.updates()
        self.assertEqual(sorted(d["id"] for d in toPhone["joined"]),
                         [laptop.deviceId, tablet.deviceId])
        self.assertEqual(toPhone["left"], [])
        self.assertNotIn("devices", toPhone)
        [toLaptop] = laptop.updates()
        self.assertEqual(len(toLaptop["devices"]), 3)
        tablet.updates()

        self.registry.unregister(tablet)
        self.registry.unregister(laptop)
        self.clock.advance(0.05)
        [left] = phone.updates()
        self.assertEqual(left, {"status": "pzpUpdate", "joined": [],
                                "left": [laptop.deviceId, tablet.deviceId]})
        self.assertEqual(laptop.sent + tablet.sent, [])

    def test_joinThenLeaveInWindow(self):
        """
        A device that joins and leaves within one window is reported as
        left, never as joined, and gets nothing itself.
        """
        phone, laptop = _Link("phone"), _Link("laptop")
        self.registry.register(phone)
        self.clock.advance(0.05)
        phone.updates()
        self.registry.register(laptop)
        self.registry.unregister(laptop)
        self.clock.advance(0.05)
        [update] = phone.updates()
        self.assertEqual((update["joined"], update["left"]), ([], [laptop.deviceId]))
        self.assertEqual(laptop.sent, [])

    def test_leaveThenRejoinInWindow(self):
        """
        A device that leaves and comes back within one window is reported as
        joined, not as left.
        """
        phone, laptop = _Link("phone"), _Link("laptop")
        self.registry.register(phone)
        self.registry.register(laptop)
        self.clock.advance(0.05)
        phone.updates()
        laptop.updates()
        self.registry.unregister(laptop)
        again = _Link("laptop", 40009)
        self.registry.register(again)
        self.clock.advance(0.05)
        [update] = phone.updates()
        self.assertEqual([d["address"] for d in update["joined"]], ["127.0.0.1:40009"])
        self.assertEqual(update["left"], [])
        self.assertEqual(len(again.updates()), 1)

    def test_lastLeaves(self):
        """
        When the last device leaves there is nobody to tell.
        """
        phone = _Link("phone")
        self.registry.register(phone)
        self.clock.advance(0.05)
        phone.updates()
        self.registry.unregister(phone)
        self.clock.advance(0.05)
        self.assertEqual(phone.sent, [])

    def test_cancel(self):
        """
        Cancelling drops the scheduled update.
        """
        phone = _Link("phone")
        self.registry.register(phone)
        self.registry.cancel()
        self.clock.advance(1)
        self.assertEqual(phone.sent, [])
        self.registry.cancel()

    def test_payloadIsJSON(self):
        """
        Ids that need escaping still make valid frames.
        """
        odd = _Link('qu"ote\\')
        self.registry.register(odd)
        self.clock.advance(0.05)
        [update] = odd.updates()
        self.assertEqual(update["devices"][0]["id"], odd.deviceId)

    def test_sendPaced(self):
        """
        L{Registry.sendPaced} sends the hub's messages, in order, to each
        of the links given that is still registered; more than a turn's
        budget waits for the next turns.
        """
        phone, laptop, gone = _Link("phone"), _Link("laptop"), _Link("gone")
        for link in (phone, laptop):
            self.registry.register(link)
        self.registry.cancel()
        big = [{"status": "crlUpdate", "crl": "x" * 60000, "part": n, "parts": 8}
               for n in range(1, 9)]
        self.registry.sendPaced([phone, laptop, gone], big)
        received = {link: link.updates() for link in (phone, laptop)}
        self.assertLess(len(received[phone]), len(big))
        for _ in range(len(big)):
            self.clock.advance(0)
            for link in (phone, laptop):
                received[link] += link.updates()
        for link in (phone, laptop):
            self.assertEqual(received[link], big)
        self.assertEqual(gone.updates(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
    def test_sendFrames(self):
        """
        L{Registry.sendFrames} writes frames made elsewhere, in order, to a
        link still registered, paced: more than a burst waits for the next
        turns, and each frame is made only when it is written.
        """
        phone, gone = _Link("phone"), _Link("gone")
        self.registry.register(phone)
        self.registry.cancel()
        made = []

        def maker(number):
            def make(link):
                made.append(number)
                return b"x" * 10000 + str(number).encode()
            return make

        self.registry.sendFrames(phone, [maker(n) for n in range(4)])
        self.registry.sendFrames(gone, [maker(9)])
        self.assertLess(len(made), 4)
        self.assertEqual(len(phone.sent), len(made))
        for _ in range(4):
            self.clock.advance(0)
        self.assertEqual(made, [0, 1, 2, 3])
        self.assertEqual([data[10000:] for data in phone.sent], [b"0", b"1", b"2", b"3"])
        self.assertEqual(gone.sent, [])


class PeerEndpointTests(SynchronousTestCase):
    """
    L{Registry.setPeerPort}: a device's entry carries its peer endpoint,
    and the other devices hear of it as a C{joined} delta.
    """

    def setUp(self):
        self.clock = Clock()
        store = SQLiteHubStore(":memory:")
        self.addCleanup(store.close)
        self.registry = Registry(ZONE, store, self.clock, coalesce=0.05)
        self.addCleanup(self.registry.cancel)
        self.phone, self.laptop = _Link("phone", 40001), _Link("laptop", 40002)
        self.registry.register(self.phone)
        self.registry.register(self.laptop)
        self.clock.advance(0.05)
        self.phone.updates()
        self.laptop.updates()

    def test_entryCarriesPeer(self):
        """
        The entry has C{peer}, the host the hub sees the device at and the
        port it gave, only once that port is above 0.
        """
        self.assertNotIn("peer", self.registry._entry(self.phone))
        self.registry.setPeerPort(self.phone, 0)
        self.assertNotIn("peer", self.registry._entry(self.phone))
        self.registry.setPeerPort(self.phone, 8040)
        self.assertEqual(self.registry._entry(self.phone)["peer"],
                         {"host": "127.0.0.1", "port": 8040})
        self.registry.setPeerPort(self.phone, 0)
        self.assertNotIn("peer", self.registry._entry(self.phone))

    def test_ipv6Host(self):
        """
        The host of an IPv6 address is all of it but the port.
        """
        self.phone.address = "::1:40001"
        self.registry.setPeerPort(self.phone, 8040)
        self.assertEqual(self.registry._entry(self.phone)["peer"]["host"], "::1")

    def test_othersInformed(self):
        """
        The others get the updated entry as a C{joined} delta with the next
        update; the device is not sent its own entry.
        """
        self.registry.setPeerPort(self.phone, 8040)
        self.assertEqual(self.laptop.updates(), [])
        self.clock.advance(0.05)
        [delta] = self.laptop.updates()
        self.assertEqual(delta, {"status": "pzpUpdate", "left": [], "joined": [{
            "id": self.phone.deviceId, "address": "127.0.0.1:40001",
            "fingerprint": "FP-phone", "peer": {"host": "127.0.0.1", "port": 8040}}]})
        self.assertEqual(self.phone.updates(), [])

    def test_bothUpdated(self):
        """
        Two devices giving their ports in one window: each hears of the
        other, not of itself; a third hears of both.
        """
        tablet = _Link("tablet", 40003)
        self.registry.register(tablet)
        self.clock.advance(0.05)
        for link in (self.phone, self.laptop, tablet):
            link.updates()
        self.registry.setPeerPort(self.phone, 8040)
        self.registry.setPeerPort(self.laptop, 8041)
        self.clock.advance(0.05)
        [toPhone] = self.phone.updates()
        self.assertEqual([(e["id"], e["peer"]["port"]) for e in toPhone["joined"]],
                         [(self.laptop.deviceId, 8041)])
        [toLaptop] = self.laptop.updates()
        self.assertEqual([(e["id"], e["peer"]["port"]) for e in toLaptop["joined"]],
                         [(self.phone.deviceId, 8040)])
        [toTablet] = tablet.updates()
        self.assertEqual(sorted((e["id"], e["peer"]["port"]) for e in toTablet["joined"]),
                         sorted([(self.phone.deviceId, 8040), (self.laptop.deviceId, 8041)]))

    def test_unchangedSendsNothing(self):
        """
        The port it already gave changes nothing and sends nothing.
        """
        self.registry.setPeerPort(self.phone, 8040)
        self.clock.advance(0.05)
        self.laptop.updates()
        self.registry.setPeerPort(self.phone, 8040)
        self.registry.setPeerPort(self.laptop, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(1)
        self.assertEqual(self.phone.updates() + self.laptop.updates(), [])

    def test_duringJoin(self):
        """
        A port given before the device's join went out is in the joined
        entry and the joiner's list; no second update follows.
        """
        tablet = _Link("tablet", 40003)
        self.registry.register(tablet)
        self.registry.setPeerPort(tablet, 8042)
        self.clock.advance(0.05)
        [toPhone] = self.phone.updates()
        self.assertEqual(toPhone["joined"][0]["peer"], {"host": "127.0.0.1", "port": 8042})
        [full] = tablet.updates()
        [own] = [e for e in full["devices"] if e["id"] == tablet.deviceId]
        self.assertEqual(own["peer"]["port"], 8042)
        self.clock.advance(1)
        self.assertEqual(self.phone.updates() + tablet.updates(), [])

    def test_staleLinkIgnored(self):
        """
        A link the device's newer link replaced, or one that left, changes
        nothing.
        """
        newer = _Link("phone", 40009)
        self.registry.register(newer)
        self.clock.advance(0.05)
        self.laptop.updates()
        self.registry.setPeerPort(self.phone, 8040)
        self.assertEqual(self.phone.peerPort, 0)
        self.assertNotIn("peer", self.registry._entry(newer))
        self.clock.advance(1)
        self.assertEqual(self.laptop.updates(), [])

    def test_reconnectWithoutPort(self):
        """
        A device that connects again and does not give its port has no
        peer entry: the port belonged to its old link.
        """
        self.registry.setPeerPort(self.phone, 8040)
        self.clock.advance(0.05)
        self.laptop.updates()
        again = _Link("phone", 40010)
        self.registry.register(again)
        self.clock.advance(0.05)
        [delta] = self.laptop.updates()
        self.assertEqual(delta["joined"][0]["id"], again.deviceId)
        self.assertNotIn("peer", delta["joined"][0])
        self.assertEqual([e for e in self.registry.snapshot() if "peer" in e], [])

    def test_leftAfterGivingPort(self):
        """
        A device that gives its port and leaves in the same window is
        announced as left, not as joined.
        """
        self.registry.setPeerPort(self.phone, 8040)
        self.registry.unregister(self.phone)
        self.clock.advance(0.05)
        [delta] = self.laptop.updates()
        self.assertEqual(delta, {"status": "pzpUpdate", "joined": [],
                                 "left": [self.phone.deviceId]})


class LinkFingerprintTests(SynchronousTestCase):
    """
    L{linkFingerprint} is the UDF of a certificate's key.
    """

    def test_fingerprint(self):
        """
        It is the key's UDF, and None without a certificate.
        """
        key = pki.newKey()
        now = datetime.now(timezone.utc)
        caKey, caCert = pki.createZoneCA(ZONE, now)
        cert = pki.issueDeviceCertificate(caKey, caCert, pki.makeCSR(key, "x"),
                                          f"{ZONE}/x", 2, now)
        self.assertEqual(linkFingerprint(cert), key_fingerprint(key.public_key()))
        self.assertIsNone(linkFingerprint(None))
