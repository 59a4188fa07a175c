"""
Tests for L{pz.sync.engine}: a hub and devices joined in memory.
"""

import base64
from datetime import datetime, timezone
import hashlib
import json
import os
import random
import shutil

from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz.errors import ZoneError
from pz.sync.chunkers import encodeHash
from pz.sync.engine import MESSAGE_NAMES_TO_DEVICE, MESSAGE_NAMES_TO_HUB, ISyncEngine, SyncEngine
from pz.sync.hashlist import fullOps
from tests.pz.sync.support import HUB, Zone


def _prefs(side) -> dict:
    return json.loads(side.read("preferences.json"))


class InterfaceTests(SynchronousTestCase):
    """
    The engine's face to the wiring.
    """

    def test_provides(self):
        """
        A SyncEngine provides ISyncEngine, and the message names each side
        receives are the seed's flows split by direction.
        """
        zone = Zone(self, devices=("a",))
        verifyObject(ISyncEngine, zone.hub.engine)
        verifyObject(ISyncEngine, zone.devices["a"].engine)
        self.assertEqual(MESSAGE_NAMES_TO_HUB,
                         ("Sync_Hello", "Sync_Change", "Sync_Ack", "Update_Hash", "Update_Data"))
        self.assertEqual(MESSAGE_NAMES_TO_DEVICE,
                         ("Sync_Plan", "Sync_Hash", "Sync_Data", "Update_Change", "Update_Ack"))

    def test_badRole(self):
        """
        A role other than hub or device is a programming error, caught at
        once.
        """
        zone = Zone(self, devices=())
        self.assertRaises(ValueError, SyncEngine, zone.clock, zone.hub.tree, zone.hub.state,
                          role="peer", localId="x")


class FirstConnectionTests(SynchronousTestCase):
    """
    A new device gets every item on its first connection.
    """

    def test_everyItemCopied(self):
        """
        Every item of the hub, defaults and extra files alike, reaches a
        device on its first connection, byte for byte, and both sides agree.
        """
        zone = Zone(self, devices=("a",))
        hub = zone.hub
        prefs = _prefs(hub)
        prefs["peer_connection"] = "no"
        hub.write("preferences.json", json.dumps(prefs).encode())
        hub.write("userdata/notes/today.txt", b"remember the milk\n" * 100)
        hub.write("context/location.json", b'{"city": "London"}')
        hub.write("crl.pem", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
        zone.hub.engine.syncNow()
        zone.connect("a")
        zone.pump()
        a = zone.devices["a"]
        self.assertEqual(a.contents(), hub.contents())
        self.assertEqual(_prefs(a)["peer_connection"], "no")
        self.assertEqual(a.engine.status()["state"], "idle")
        self.assertIsNotNone(a.engine.status()["last_synced"])
        for rec in hub.state.items():
            self.assertEqual(a.state.agreed(HUB, rec.path), rec.hash)
            self.assertEqual(hub.state.agreed("a", rec.path), rec.hash)


class EditTests(SynchronousTestCase):
    """
    A change on one device reaches the hub and every other device.
    """

    def test_preferenceEdited(self):
        """
        A preference edited on device A appears on B without B asking.
        """
        zone = Zone(self, devices=("a", "b", "c"))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        prefs = _prefs(a)
        prefs["slave"] = "yes"
        a.write("preferences.json", json.dumps(prefs, indent=4).encode())
        a.engine.localChange("preferences.json")
        zone.pump()
        for name in ("b", "c"):
            self.assertEqual(_prefs(zone.devices[name])["slave"], "yes")
            self.assertIn(("preferences.json", a.state.item("preferences.json").hash),
                          zone.devices[name].applied)
        self.assertEqual(_prefs(zone.hub)["slave"], "yes")


def _dataMessages(zone, status):
    return [m[2] for m in zone.names(status)]


class LargeItemTests(SynchronousTestCase):
    """
    A large user file crosses in bounded frames, and an edit in its middle
    re-sends a few chunks only.
    """

    def setUp(self):
        self.zone = Zone(self, devices=("a", "b"))
        self.zone.connectAll()
        self.zone.pump()
        self.big = random.Random(7).randbytes(4 * 1024 * 1024)
        a = self.zone.devices["a"]
        a.write("userdata/big.bin", self.big)
        a.engine.localChange("userdata/big.bin")
        self.zone.pump()

    def test_boundedFrames(self):
        """
        The first copy of a 4 MB file reaches the hub and B in frames of at
        most 256 KiB of data each, never in one frame.
        """
        for side in (self.zone.hub, self.zone.devices["b"]):
            self.assertEqual(side.read("userdata/big.bin"), self.big)
        frames = _dataMessages(self.zone, "Update_Data") + _dataMessages(self.zone, "Sync_Data")
        self.assertGreaterEqual(len(frames), 2 * 16)
        for frame in frames:
            raw = sum(len(base64.b64decode(c[1])) for c in frame["chunks"])
            self.assertLessEqual(raw, 256 * 1024)
            self.assertLess(len(json.dumps(frame)), 1024 * 1024)

    def test_smallFrameLimit(self):
        """
        Linked to peers that take frames of at most 64 KiB (a hub run with
        a small C{--max-frame}), the engines cut data frames and hash-list
        pages to fit: every message of a 1 MB file's first copy is under
        the limit, and the file arrives whole.
        """
        zone = Zone(self, devices=("a", "b"), frameLimit=64 * 1024)
        zone.connectAll()
        zone.pump()
        data = random.Random(9).randbytes(1024 * 1024)
        start = len(zone.messages)
        zone.devices["a"].write("userdata/mid.bin", data)
        zone.devices["a"].engine.localChange("userdata/mid.bin")
        zone.pump()
        for side in (zone.hub, zone.devices["b"]):
            self.assertEqual(side.read("userdata/mid.bin"), data)
        sizes = [len(json.dumps(m[2])) for m in zone.messages[start:]]
        self.assertGreater(len(sizes), 2 * 16)
        self.assertLess(max(sizes), 64 * 1024 - 1024)

    def test_chunkLargerThanFrame(self):
        """
        A CRL of 600 KB is one chunk (PEM is never cut by content); it still
        crosses in frames of at most 256 KiB, as pieces of that chunk.
        """
        body = base64.encodebytes(random.Random(8).randbytes(450000))
        crl = b"-----BEGIN X509 CRL-----\n" + body + b"-----END X509 CRL-----\n"
        self.zone.hub.write("crl.pem", crl)
        self.zone.hub.engine.localChange("crl.pem")
        start = len(self.zone.messages)
        self.zone.pump()
        frames = [m[2] for m in self.zone.messages[start:] if m[2]["status"] == "Sync_Data"
                  and m[2]["path"] == "crl.pem"]
        self.assertEqual(len(frames), 2 * 3)
        for frame in frames:
            self.assertLessEqual(sum(len(base64.b64decode(c[1])) for c in frame["chunks"]), 256 * 1024)
        for side in self.zone.devices.values():
            self.assertEqual(side.read("crl.pem"), crl)

    def test_middleEdit(self):
        """
        100 bytes inserted in the middle of the 4 MB file cost a few chunks
        and a short hash-list difference on each hop, not the file.
        """
        edited = self.big[:2000000] + b"x" * 100 + self.big[2000000:]
        a = self.zone.devices["a"]
        a.write("userdata/big.bin", edited)
        before = self.zone.sent
        a.engine.localChange("userdata/big.bin")
        self.zone.pump()
        cost = self.zone.sent - before
        for side in (self.zone.hub, self.zone.devices["b"]):
            self.assertEqual(side.read("userdata/big.bin"), edited)
        # Two hops (A to the hub, the hub to B), each at most two 16 KiB
        # chunks in base64 and a few short messages, against 4 MB.
        self.assertLess(cost, 2 * (2 * 16384 * 4 // 3 + 4000))
        hashes = [m for m in self.zone.messages[-20:] if m[2]["status"].endswith("_Hash")]
        for _, _, payload in hashes:
            self.assertLess(len(payload["ops"]), 10)


class ReconnectionTests(SynchronousTestCase):
    """
    A device that comes back gets only what changed since it last agreed,
    and sends only its own changes.
    """

    def test_onlyChangesSent(self):
        """
        After B was away while A changed one item and B changed another, B's
        reconnection carries those two items only.
        """
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        zone.hub.write("userdata/one.txt", b"one" * 1000)
        zone.hub.write("userdata/two.txt", b"two" * 1000)
        zone.sync()
        zone.disconnect("b")
        a, b = zone.devices["a"], zone.devices["b"]
        a.write("userdata/one.txt", b"ONE" * 1000)
        a.engine.localChange("userdata/one.txt")
        zone.pump()
        b.write("context/here.json", b'{"room": "kitchen"}')
        start = len(zone.messages)
        zone.connect("b")
        zone.pump()
        hashes = [(m[2]["status"], m[2]["path"]) for m in zone.messages[start:]
                  if m[2]["status"].endswith("_Hash") and "b" in m[:2]]
        self.assertEqual(sorted(hashes), [("Sync_Hash", "userdata/one.txt"),
                                          ("Update_Hash", "context/here.json")])
        self.assertEqual(b.read("userdata/one.txt"), b"ONE" * 1000)
        self.assertEqual(a.read("context/here.json"), zone.hub.read("context/here.json"))
        plan = [m[2] for m in zone.messages[start:] if m[2]["status"] == "Sync_Plan"]
        self.assertEqual(plan, [{"status": "Sync_Plan", "items": 1, "bytes": 3000}])


class ConflictTests(SynchronousTestCase):
    """
    Two devices changed one item while apart: the hub decides by the
    webinos rule and the loser is kept where it lives.
    """

    def _apart(self, aAgo, bAgo):
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        zone.hub.write("userdata/shared.txt", b"base\n")
        zone.sync()
        zone.disconnect("a")
        zone.disconnect("b")
        a, b = zone.devices["a"], zone.devices["b"]
        a.write("userdata/shared.txt", b"from a\n", ago=aAgo)
        b.write("userdata/shared.txt", b"from b\n", ago=bAgo)
        zone.connect("a")
        zone.pump()
        zone.connect("b")
        zone.pump()
        return zone, a, b

    def _kept(self, side, path):
        [entry] = side.engine.conflicts()
        self.assertEqual(entry["path"], path)
        with open(os.path.join(side.tree.zonePath, entry["kept_as"]), "rb") as f:
            return entry, f.read()

    def test_laterWinsWithinMargin(self):
        """
        B's change is later than A's and within 5 s of the hub's clock: B's
        version wins everywhere, and the hub keeps A's under conflicts/.
        """
        zone, a, b = self._apart(aAgo=4, bAgo=1)
        for side in (zone.hub, a, b):
            self.assertEqual(side.read("userdata/shared.txt"), b"from b\n")
        entry, kept = self._kept(zone.hub, "userdata/shared.txt")
        self.assertEqual((entry["origin"], kept), ("a", b"from a\n"))
        self.assertEqual(entry["hash"], encodeHash(hashlib.sha256(b"from a\n").digest()))
        json.dumps(zone.hub.engine.conflicts())
        self.assertEqual(entry["time"], datetime.fromtimestamp(
            zone.clock.seconds() - 4, timezone.utc).isoformat(timespec="seconds"))
        self.assertEqual(a.engine.conflicts(), [])
        self.assertEqual(b.engine.conflicts(), [])
        self.assertEqual(zone.hub.engine.status()["conflicts"], 1)

    def test_hubWinsBeyondMargin(self):
        """
        B's change is later than A's but 30 s from the hub's clock: the
        hub's version (A's) wins, B is told SYNC_CONFLICT with the winner,
        gets it, and keeps its own version under conflicts/.
        """
        zone, a, b = self._apart(aAgo=60, bAgo=30)
        for side in (zone.hub, a, b):
            self.assertEqual(side.read("userdata/shared.txt"), b"from a\n")
        entry, kept = self._kept(b, "userdata/shared.txt")
        self.assertEqual((entry["origin"], kept), ("b", b"from b\n"))
        self.assertEqual(zone.hub.engine.conflicts(), [])
        [refusal] = [m[2] for m in zone.names("Update_Change") if "refused" in m[2]]
        self.assertEqual(refusal["refused"]["code"], "SYNC_CONFLICT")
        self.assertEqual(refusal["winner"]["version"]["origin"], "a")

    def test_pendingWhenHubPushes(self):
        """
        A device holding an unacknowledged change answers the hub's version
        with SYNC_PENDING; its update then goes to the hub, which decides.
        """
        zone, a, b = self._apart(aAgo=4, bAgo=1)
        codes = [m[2]["refused"]["code"] for m in zone.names("Sync_Change") if "refused" in m[2]]
        self.assertEqual(codes, ["SYNC_PENDING"])

    def test_deletionConflict(self):
        """
        A deletion is a version too: deleted on A, changed later on B within
        the margin, B's content wins and nothing is lost.
        """
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        zone.hub.write("userdata/shared.txt", b"base\n")
        zone.sync()
        zone.disconnect("a")
        zone.disconnect("b")
        a, b = zone.devices["a"], zone.devices["b"]
        a.remove("userdata/shared.txt")
        a.engine.localChange("userdata/shared.txt")
        zone.clock.advance(1)
        b.write("userdata/shared.txt", b"from b\n", ago=0)
        zone.connect("a")
        zone.pump()
        self.assertIsNone(zone.hub.read("userdata/shared.txt"))
        zone.connect("b")
        zone.pump()
        for side in (zone.hub, a, b):
            self.assertEqual(side.read("userdata/shared.txt"), b"from b\n")


class TombstoneTests(SynchronousTestCase):
    """
    Deletions are tombstones that sync like changes.
    """

    def test_deletionReachesEveryone(self):
        """
        A file deleted on A disappears from the hub at once and from B when
        B comes back; each side records the tombstone with its origin.
        """
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        zone.hub.write("userdata/gone.txt", b"soon gone")
        zone.sync()
        zone.disconnect("b")
        a, b = zone.devices["a"], zone.devices["b"]
        self.assertEqual(b.read("userdata/gone.txt"), b"soon gone")
        a.remove("userdata/gone.txt")
        a.engine.localChange("userdata/gone.txt")
        zone.pump()
        self.assertIsNone(zone.hub.read("userdata/gone.txt"))
        rec = zone.hub.state.item("userdata/gone.txt")
        self.assertEqual((rec.hash, rec.version.origin), (None, "a"))
        zone.connect("b")
        zone.pump()
        self.assertIsNone(b.read("userdata/gone.txt"))
        self.assertIn(("userdata/gone.txt", None), b.applied)
        self.assertIsNone(b.state.item("userdata/gone.txt").hash)


class OneWayTests(SynchronousTestCase):
    """
    Trusted certificates and the CRL flow only from the hub.
    """

    PEM = b"-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"
    ALTERED = b"-----BEGIN CERTIFICATE-----\nWFla\n-----END CERTIFICATE-----\n"

    def test_refusedAndRestored(self):
        """
        A device whose copy of a trusted certificate was altered sends it,
        the hub refuses it with SYNC_ONE_WAY and sends its own copy back;
        the device keeps its altered copy under conflicts/ and nobody else
        sees it.
        """
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        path = "certificates/trusted-pzp/peer.pem"
        zone.hub.write(path, self.PEM)
        zone.sync()
        a = zone.devices["a"]
        a.write(path, self.ALTERED)
        a.engine.localChange(path)
        zone.pump()
        [refusal] = [m[2] for m in zone.names("Update_Change") if "refused" in m[2]]
        self.assertEqual(refusal["refused"]["code"], "SYNC_ONE_WAY")
        for side in (zone.hub, a, zone.devices["b"]):
            self.assertEqual(side.read(path), self.PEM)
        [entry] = a.engine.conflicts()
        self.assertEqual(entry["path"], path)

    def test_newOneWayItemFromDevice(self):
        """
        A certificate the hub does not have, put on a device, is refused
        and removed there (kept under conflicts/): the hub's "copy" is its
        absence.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        path = "certificates/trusted-pzh/other.pem"
        a.write(path, self.ALTERED)
        a.engine.localChange(path)
        zone.pump()
        self.assertIsNone(zone.hub.read(path))
        self.assertIsNone(a.read(path))
        [entry] = a.engine.conflicts()
        self.assertEqual((entry["path"], entry["origin"]), (path, "a"))
        self.assertEqual(zone.hub.engine.conflicts(), [])


class BadInputTests(SynchronousTestCase):
    """
    Every bad message is refused on the wire with its own code, and nothing
    is written.
    """

    def setUp(self):
        self.zone = Zone(self, devices=("a",), hubOptions={"maxItemSize": 1024 * 1024})
        self.zone.connectAll()
        self.zone.pump()
        self.hub = self.zone.hub
        self.before = self.hub.files()
        self.records = self.hub.state.items()

    def _send(self, payload):
        """
        Device A's link carries C{payload} to the hub; return the hub's
        answers to it.
        """
        start = len(self.zone.messages)
        self.zone.queue.append(("a", HUB, json.loads(json.dumps(payload))))
        self.zone.pump()
        return [m[2] for m in self.zone.messages[start:] if m[0] == HUB]

    def _offer(self, path, chunks, itemHash=None, size=None, more=False, base=None):
        itemHash = itemHash or hashlib.sha256(b"".join(chunks)).digest()
        return self._send({
            "status": "Update_Hash", "path": path,
            "version": {"time": self.zone.clock.seconds(), "origin": "a"},
            "hash": encodeHash(itemHash), "size": sum(map(len, chunks)) if size is None else size,
            "base": base and encodeHash(base), "ops": fullOps([hashlib.sha256(c).digest() for c in chunks]),
            "part": 0, "more": more,
        })

    def _data(self, path, itemHash, entries, more=False):
        return self._send({"status": "Update_Data", "path": path, "hash": encodeHash(itemHash),
                           "chunks": [[i, base64.b64encode(d).decode()] for i, d in entries],
                           "more": more})

    def _refused(self, answers, status, code):
        refusals = [m for m in answers if m["status"] == status and "refused" in m]
        self.assertEqual([m["refused"]["code"] for m in refusals], [code], answers)
        self.assertEqual(self.hub.files(), self.before)
        self.assertEqual([r for r in self.hub.state.items() if r.path != "crl.pem"], self.records)
        self.assertEqual(os.listdir(self.hub.tree.tmpPath), [])

    def test_dotDot(self):
        """
        A path with C{..}: SYNC_BAD_PATH.
        """
        self._refused(self._offer("userdata/../../escape.txt", [b"x"]), "Update_Change",
                      "SYNC_BAD_PATH")

    def test_absolute(self):
        """
        An absolute path: SYNC_BAD_PATH.
        """
        self._refused(self._offer("/etc/passwd", [b"x"]), "Update_Change", "SYNC_BAD_PATH")

    def test_symlink(self):
        """
        A path through a symbolic link in the items folder: SYNC_BAD_PATH,
        and nothing is written where the link points.
        """
        outside = self.mktemp()
        os.makedirs(outside)
        os.symlink(outside, os.path.join(self.hub.tree.root, "userdata", "link"))
        answers = self._offer("userdata/link/x.txt", [b"x"])
        refusals = [m for m in answers if "refused" in m]
        self.assertEqual([m["refused"]["code"] for m in refusals], ["SYNC_BAD_PATH"])
        self.assertEqual(os.listdir(outside), [])

    def test_chunkHashMismatch(self):
        """
        A chunk whose bytes do not match its hash: SYNC_HASH_MISMATCH.
        """
        chunk = b"the real chunk"
        [change] = self._offer("userdata/new.txt", [chunk])
        self.assertEqual(change["need"], [[0, 1]])
        answers = self._data("userdata/new.txt", hashlib.sha256(chunk).digest(), [(0, b"forged")])
        self._refused(answers, "Update_Ack", "SYNC_HASH_MISMATCH")

    def test_notAsked(self):
        """
        Data for a chunk that was not asked for: SYNC_NOT_ASKED; and data
        for an item nobody offered, too.
        """
        chunks = [b"a" * 2000, b"b" * 2000]
        self.hub.write("userdata/new.txt", chunks[0] + b"c" * 10)
        self.hub.engine.localChange("userdata/new.txt")
        self.zone.pump()
        self.before = self.hub.files()
        self.records = self.hub.state.items()
        itemHash = hashlib.sha256(b"".join(chunks)).digest()
        [change] = self._offer("userdata/other.txt", chunks)
        self.assertEqual(change["need"], [[0, 2]])
        answers = self._data("userdata/other.txt", itemHash, [(5, b"z")])
        self._refused(answers, "Update_Ack", "SYNC_NOT_ASKED")
        answers = self._data("userdata/never.txt", itemHash, [(0, chunks[0])])
        self._refused(answers, "Update_Ack", "SYNC_NOT_ASKED")

    def test_tooLarge(self):
        """
        An item over the size limit: SYNC_TOO_LARGE, before any data.
        """
        self._refused(self._offer("userdata/huge.bin", [b"x"], size=2 * 1024 * 1024),
                      "Update_Change", "SYNC_TOO_LARGE")

    def test_lyingSize(self):
        """
        An item that grows past the limit while its data arrives:
        SYNC_TOO_LARGE, nothing written.
        """
        chunks = [bytes([i]) * 200000 for i in range(6)]
        [change] = self._offer("userdata/grows.bin", chunks, size=100)
        self.assertEqual(change["need"], [[0, 6]])
        itemHash = hashlib.sha256(b"".join(chunks)).digest()
        answers = []
        for i in range(6):
            answers += self._data("userdata/grows.bin", itemHash, [(i, chunks[i])], more=i < 5)
        self._refused(answers, "Update_Ack", "SYNC_TOO_LARGE")

    def test_malformedJSON(self):
        """
        Chunks that do not make JSON for a JSON item: SYNC_BAD_ITEM.
        """
        chunk = b'{"broken'
        [change] = self._offer("context/broken.json", [chunk])
        answers = self._data("context/broken.json", hashlib.sha256(chunk).digest(), [(0, chunk)])
        self._refused(answers, "Update_Ack", "SYNC_BAD_ITEM")

    def test_malformedXML(self):
        """
        Chunks that do not make XACML for the policy: SYNC_BAD_ITEM.
        """
        chunk = b"<Policy <Rule"
        base = self.hub.state.item("policies/policy.xml").hash
        [change] = self._offer("policies/policy.xml", [chunk], base=base)
        answers = self._data("policies/policy.xml", hashlib.sha256(chunk).digest(), [(0, chunk)])
        self._refused(answers, "Update_Ack", "SYNC_BAD_ITEM")

    def test_oneWayFromDevice(self):
        """
        A CRL from a device: SYNC_ONE_WAY, and the hub sends its own.
        """
        answers = self._offer("crl.pem", [b"-----BEGIN X509 CRL-----\nAA\n-----END X509 CRL-----\n"])
        self.records = [r for r in self.hub.state.items() if r.path != "crl.pem"]
        self._refused(answers, "Update_Change", "SYNC_ONE_WAY")
        [restore] = [m for m in answers if m["status"] == "Sync_Hash"]
        self.assertEqual((restore["path"], restore["deleted"]), ("crl.pem", True))

    def test_malformedMessages(self):
        """
        Messages with missing or wrong fields: SYNC_BAD_MESSAGE, each.
        """
        for payload in [
            {"status": "Update_Hash", "path": "userdata/x.txt"},
            {"status": "Update_Hash", "path": "userdata/x.txt", "version": {"time": "now", "origin": "a"},
             "hash": "x", "size": 1, "base": None, "ops": [], "part": 0, "more": False},
            {"status": "Update_Data", "path": "userdata/x.txt", "hash": encodeHash(b"\0" * 32),
             "chunks": [[0, "not base64!"]], "more": False},
            {"status": "Update_Data", "path": "userdata/x.txt", "hash": "short", "chunks": []},
        ]:
            answers = self._send(payload)
            self.assertEqual([m["refused"]["code"] for m in answers], ["SYNC_BAD_MESSAGE"], payload)
        self.assertEqual(self.hub.files(), self.before)

    def test_validator(self):
        """
        The wiring's validator refuses an item (the CRL check): SYNC_BAD_ITEM
        on the device, and the device keeps its copy.
        """
        zone = Zone(self, devices=("v",), validators={"crl": self._noCRL})
        zone.hub.write("crl.pem", b"-----BEGIN X509 CRL-----\nAA\n-----END X509 CRL-----\n")
        zone.connectAll()
        zone.pump()
        refusals = [m[2] for m in zone.names("Sync_Ack") if "refused" in m[2]]
        self.assertEqual([(m["path"], m["refused"]["code"]) for m in refusals],
                         [("crl.pem", "SYNC_BAD_ITEM")])
        self.assertIsNone(zone.devices["v"].read("crl.pem"))

    def _noCRL(self, path, data):
        raise ZoneError("SYNC_BAD_ITEM", "the CRL is not signed by the zone CA")


class FaultTests(SynchronousTestCase):
    """
    A link that drops in the middle, or an items folder that vanished,
    never leaves a half-written item or deletes anything.
    """

    def test_dropDuringData(self):
        """
        The link drops after the first of many Sync_Data frames: the
        device's item is still the whole old version, no temporary file is
        left, and the next connection converges.
        """
        zone = Zone(self, devices=("a",))
        old = random.Random(1).randbytes(1024 * 1024)
        new = random.Random(2).randbytes(1024 * 1024)
        zone.hub.write("userdata/file.bin", old)
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        self.assertEqual(a.read("userdata/file.bin"), old)
        zone.hub.write("userdata/file.bin", new)
        frames = []

        def drop(source, target, payload):
            if payload["status"] == "Sync_Data":
                frames.append(payload)
                return len(frames) == 2
            return False

        zone.drop = drop
        zone.hub.engine.localChange("userdata/file.bin")
        zone.pump()
        self.assertEqual(len(frames), 2)
        self.assertEqual(a.read("userdata/file.bin"), old)
        self.assertEqual(os.listdir(a.tree.tmpPath), [])
        self.assertEqual(a.engine.status()["state"], "offline")
        zone.connect("a")
        zone.pump()
        self.assertEqual(a.read("userdata/file.bin"), new)
        self.assertEqual(a.state.agreed(HUB, "userdata/file.bin"),
                         zone.hub.state.item("userdata/file.bin").hash)

    def test_dropDuringUpdate(self):
        """
        The same from the device's side: the hub keeps its old version whole
        and takes the new one when the device is back.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        new = random.Random(3).randbytes(1024 * 1024)
        a.write("userdata/file.bin", b"old")
        a.engine.localChange("userdata/file.bin")
        zone.pump()
        a.write("userdata/file.bin", new)
        zone.drop = lambda source, target, payload: payload["status"] == "Update_Data"
        a.engine.localChange("userdata/file.bin")
        zone.pump()
        self.assertEqual(zone.hub.read("userdata/file.bin"), b"old")
        self.assertEqual(os.listdir(zone.hub.tree.tmpPath), [])
        zone.connect("a")
        zone.pump()
        self.assertEqual(zone.hub.read("userdata/file.bin"), new)

    def test_ackLostWithLink(self):
        """
        A device took an item but its acknowledgement was lost with the
        link, and the hub deleted the item meanwhile: when the device is
        back the deletion still reaches it (the hub does not take its
        silence for never having had the item).
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        zone.hub.write("userdata/brief.txt", b"here for a moment")
        zone.hub.engine.localChange("userdata/brief.txt")
        zone.drop = lambda source, target, payload: payload["status"] == "Sync_Ack"
        zone.pump()
        self.assertEqual(a.read("userdata/brief.txt"), b"here for a moment")
        zone.hub.remove("userdata/brief.txt")
        zone.hub.engine.localChange("userdata/brief.txt")
        zone.connect("a")
        zone.pump()
        self.assertIsNone(a.read("userdata/brief.txt"))

    def _itemsGone(self, how):
        zone = Zone(self, devices=("a", "b"))
        zone.connectAll()
        zone.hub.write("userdata/keep.txt", b"keep me")
        zone.sync()
        a = zone.devices["a"]
        how(a)
        results = zone.sync()
        for side in (zone.hub, zone.devices["b"]):
            self.assertEqual(side.read("userdata/keep.txt"), b"keep me")
            self.assertIsNotNone(side.read("preferences.json"))
        self.assertEqual([r for r in a.state.items() if r.hash is None], [])
        status = a.engine.status()
        self.assertEqual((status["state"], status["error"]["code"]), ("error", "SYNC_ITEMS_MISSING"))
        return zone, a, results

    def test_itemsMissing(self):
        """
        A device whose items folder is gone (an unmounted disk) deletes
        nothing anywhere and says why in its status; it refuses what the hub
        sends rather than write into a fresh folder.
        """
        zone, a, results = self._itemsGone(lambda a: shutil.rmtree(a.tree.root))
        zone.hub.write("userdata/new.txt", b"new")
        zone.hub.engine.localChange("userdata/new.txt")
        zone.pump()
        refusals = [m[2]["refused"]["code"] for m in zone.names("Sync_Change") if "refused" in m[2]]
        self.assertEqual(refusals, ["SYNC_ITEMS_MISSING"])
        self.assertFalse(os.path.exists(a.tree.root))
        d = a.engine.syncNow()
        zone.pump()
        self.assertEqual(self.successResultOf(d), {"sent": 0, "received": 0, "conflicts": 0})

    def test_itemsEmpty(self):
        """
        An items folder with no file at all is the same error, not a mass
        deletion.
        """
        def empty(a):
            for dirpath, _, names in os.walk(a.tree.root):
                for name in names:
                    os.unlink(os.path.join(dirpath, name))

        self._itemsGone(empty)

    def test_hubItemsMissing(self):
        """
        A hub whose items folder is gone answers a hello with a refused plan
        and deletes nothing on the devices.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        shutil.rmtree(zone.hub.tree.root)
        [result] = [r for r in zone.sync() if isinstance(r, Failure)]
        self.assertEqual(result.value.code, "SYNC_ITEMS_MISSING")
        self.assertIsNotNone(zone.devices["a"].read("preferences.json"))
        self.assertEqual(zone.hub.engine.status()["state"], "error")


class ProgressTests(SynchronousTestCase):
    """
    Status reports progress, and syncNow fires when its round is over.
    """

    def test_status(self):
        """
        During a first sync a device reports items and bytes done of the
        total; when it is over, idle with last_synced set.
        """
        zone = Zone(self, devices=("a",))
        zone.hub.write("userdata/big.bin", random.Random(5).randbytes(2 * 1024 * 1024))
        zone.connectAll()
        a = zone.devices["a"]
        seen = []

        def watch(source, target, payload):
            if target == "a":
                seen.append(a.engine.status())
            return False

        zone.drop = watch
        zone.pump()
        syncing = [s for s in seen if s["state"] == "syncing"]
        self.assertTrue(syncing)
        self.assertTrue(any(0 < s["bytes_done"] < s["bytes_total"] for s in syncing))
        final = a.engine.status()
        self.assertEqual(final["state"], "idle")
        self.assertEqual(final["items_done"], final["items_total"])
        self.assertEqual(final["bytes_done"], final["bytes_total"])
        self.assertGreaterEqual(final["bytes_total"], 2 * 1024 * 1024)
        self.assertEqual(final["conflicts"], 0)
        self.assertIsNone(final["error"])
        self.assertTrue(final["last_synced"].startswith("20"))

    def test_syncNow(self):
        """
        A device's syncNow fires with what it sent and received once the
        round is over.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        a.write("userdata/mine.txt", b"mine")
        zone.hub.write("userdata/hubs.txt", b"hub's")
        zone.hub.engine.localChange("userdata/hubs.txt")
        d = a.engine.syncNow()
        self.assertNoResult(d)
        zone.pump()
        self.assertEqual(self.successResultOf(d), {"sent": 1, "received": 1, "conflicts": 0})

    def test_syncNowOffline(self):
        """
        syncNow on a device with no hub link fails at once with
        NOT_CONNECTED.
        """
        zone = Zone(self, devices=("a",))
        failure = self.failureResultOf(zone.devices["a"].engine.syncNow(), ZoneError)
        self.assertEqual(failure.value.code, "NOT_CONNECTED")

    def test_syncNowDropped(self):
        """
        A round cut short by a lost link fails with NOT_CONNECTED.
        """
        zone = Zone(self, devices=("a",))
        zone.hub.write("userdata/big.bin", random.Random(5).randbytes(1024 * 1024))
        zone.connectAll()
        d = zone.devices["a"].engine.syncNow()
        zone.drop = lambda source, target, payload: payload["status"] == "Sync_Data"
        zone.pump()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")

    def test_scanLoop(self):
        """
        start() scans every scanInterval seconds on the clock it was given:
        a file written with no call to the engine reaches the hub at the
        next scan; stop() stops it.
        """
        zone = Zone(self, devices=("a",), scanInterval=3.0)
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        a.engine.start()
        self.addCleanup(a.engine.stop)
        zone.pump()
        a.write("userdata/quiet.txt", b"nobody told the engine")
        zone.clock.advance(2.9)
        zone.pump()
        self.assertIsNone(zone.hub.read("userdata/quiet.txt"))
        zone.clock.advance(0.2)
        zone.pump()
        self.assertEqual(zone.hub.read("userdata/quiet.txt"), b"nobody told the engine")
        a.engine.stop()
        self.assertEqual(zone.clock.getDelayedCalls(), [])

    def test_boundedInFlight(self):
        """
        The hub sends at most maxInFlight items to a device at once and
        queues the rest; all arrive.
        """
        zone = Zone(self, devices=("a",), hubOptions={"maxInFlight": 2})
        for i in range(10):
            zone.hub.write(f"userdata/f{i}.txt", b"x" * i)
        zone.connectAll()
        inFlight, most = set(), []
        zone.pump()
        for source, target, payload in zone.messages:
            if payload["status"] == "Sync_Hash":
                inFlight.add(payload["path"])
            elif payload["status"] == "Sync_Ack":
                inFlight.discard(payload["path"])
            most.append(len(inFlight))
        self.assertEqual(max(most), 2)
        for i in range(10):
            self.assertEqual(zone.devices["a"].read(f"userdata/f{i}.txt"), b"x" * i)


class SelectionTests(SynchronousTestCase):
    """
    A device gets the categories its preferences select; a constrained one
    only certificates and the CRL.
    """

    CRL = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"

    def _zone(self, **deviceOptions):
        zone = Zone(self, devices=("a",), **deviceOptions)
        zone.hub.write("crl.pem", self.CRL)
        zone.hub.write("userdata/notes.txt", b"notes")
        zone.hub.write("context/here.json", b'{"room": "hall"}')
        zone.hub.engine.syncNow()
        return zone

    def test_constrained(self):
        """
        A constrained device receives the CRL and certificates, and nothing
        else.
        """
        zone = self._zone(constrained=True)
        a = zone.devices["a"]
        a.write("userdata/mine.txt", b"stays here")
        zone.connectAll()
        zone.pump()
        self.assertEqual(a.read("crl.pem"), self.CRL)
        self.assertIsNone(a.read("userdata/notes.txt"))
        self.assertIsNone(a.read("context/here.json"))
        self.assertIsNone(zone.hub.read("userdata/mine.txt"))
        [hello] = [m[2] for m in zone.names("Sync_Hello")]
        self.assertEqual((sorted(hello["select"]), hello["constrained"]), (["certificates", "crl"], True))

    def test_optedOut(self):
        """
        A device whose preferences say no to user data gets none, and the
        hub refuses user data from it with SYNC_NOT_SELECTED.
        """
        zone = self._zone()
        a = zone.devices["a"]
        prefs = json.loads(a.read("preferences.json"))
        prefs["synchronise"]["user data"] = "no"
        a.write("preferences.json", json.dumps(prefs).encode())
        zone.hub.write("preferences.json", json.dumps(prefs).encode())
        zone.connectAll()
        zone.pump()
        self.assertIsNone(a.read("userdata/notes.txt"))
        self.assertEqual(a.read("crl.pem"), self.CRL)
        zone.queue.append(("a", HUB, {
            "status": "Update_Hash", "path": "userdata/x.txt",
            "version": {"time": zone.clock.seconds(), "origin": "a"}, "hash": encodeHash(b"\1" * 32),
            "size": 1, "base": None, "ops": [encodeHash(b"\2" * 32)], "part": 0, "more": False}))
        zone.pump()
        [refusal] = [m[2] for m in zone.names("Update_Change") if "refused" in m[2]]
        self.assertEqual(refusal["refused"]["code"], "SYNC_NOT_SELECTED")


class ProtocolTests(SynchronousTestCase):
    """
    Paging, rebasing, refusals for load, and the engine's robustness.
    """

    def test_pages(self):
        """
        A hash list too long for one frame crosses in pages, each far under
        the frame limit, and the item arrives whole.
        """
        zone = Zone(self, devices=("a",))
        many = {f"key{i:05}": i for i in range(7000)}
        zone.hub.write("context/many.json", json.dumps(many).encode())
        zone.connectAll()
        zone.pump()
        pages = [m[2] for m in zone.names("Sync_Hash") if m[2]["path"] == "context/many.json"]
        self.assertEqual([p["part"] for p in pages], [0, 1])
        self.assertEqual([p["more"] for p in pages], [True, False])
        for p in pages:
            self.assertLess(len(json.dumps(p)), 300 * 1024)
        self.assertEqual(json.loads(zone.devices["a"].read("context/many.json")), many)

    def test_rebase(self):
        """
        A hub asked to apply a difference from a base it does not hold
        answers rebase and writes nothing; a device told to rebase sends the
        full list (keeping its base for the conflict rule), which works.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        data = random.Random(9).randbytes(50000)
        a.write("userdata/r.bin", data)
        a.engine.localChange("userdata/r.bin")
        zone.pump()
        before = zone.hub.files()
        zone.queue.append(("a", HUB, {
            "status": "Update_Hash", "path": "userdata/r.bin",
            "version": {"time": zone.clock.seconds() + 1, "origin": "a"},
            "hash": encodeHash(b"\1" * 32), "size": 10, "base": encodeHash(b"\3" * 32),
            "ops": [[0, 1], encodeHash(b"\2" * 32)], "part": 0, "more": False}))
        zone.pump()
        [change] = [m[2] for m in zone.names("Update_Change") if m[2].get("rebase")]
        self.assertEqual(change["hash"], encodeHash(b"\1" * 32))
        self.assertEqual(zone.hub.files(), before)

        a.write("userdata/r.bin", data + b"more")
        a.engine.localChange("userdata/r.bin")
        [(_, _, offer)] = [m for m in zone.queue if m[2]["status"] == "Update_Hash"]
        self.assertTrue(any(isinstance(op, list) for op in offer["ops"]))
        zone.queue.clear()
        start = len(zone.messages)
        zone.queue.append((HUB, "a", {"status": "Update_Change", "path": "userdata/r.bin",
                                       "hash": offer["hash"], "rebase": True}))
        zone.pump()
        [again] = [m[2] for m in zone.messages[start:] if m[2]["status"] == "Update_Hash"]
        self.assertTrue(all(isinstance(op, str) for op in again["ops"]))
        self.assertEqual(again["base"], offer["base"])
        self.assertEqual(zone.hub.read("userdata/r.bin"), data + b"more")

    def test_busy(self):
        """
        A hub that takes one incoming transfer at a time refuses the rest
        with SYNC_BUSY; the device tries them again and all arrive.
        """
        zone = Zone(self, devices=("a",), hubOptions={"maxIncoming": 1})
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        for i in range(5):
            a.write(f"userdata/b{i}.txt", b"busy %d" % i)
        d = a.engine.syncNow()
        zone.pump()
        self.assertNoResult(d)
        for _ in range(10):
            zone.clock.advance(1)
            zone.pump()
        refusals = [m[2]["refused"]["code"] for m in zone.names("Update_Change") if "refused" in m[2]]
        self.assertIn("SYNC_BUSY", refusals)
        for i in range(5):
            self.assertEqual(zone.hub.read(f"userdata/b{i}.txt"), b"busy %d" % i)
        self.assertEqual(self.successResultOf(d)["sent"], 5)

    def test_junkNeverRaises(self):
        """
        Whatever a peer sends, received() does not raise and writes nothing.
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        before = zone.hub.files()
        for payload in [None, [], "x", {}, {"status": 5}, {"status": "Sync_Plan"},
                        {"status": "Update_Hash", "path": ["x"]},
                        {"status": "Update_Hash", "path": "userdata/x", "version": [], "ops": {}},
                        {"status": "Update_Data", "path": "userdata/x", "hash": None, "chunks": [[]]},
                        {"status": "Sync_Change", "path": "userdata/x", "need": "all"},
                        {"status": "Sync_Ack", "path": 7},
                        {"status": "Sync_Hello", "select": "everything"}]:
            zone.hub.engine.received("a", payload)
            zone.devices["a"].engine.received(HUB, payload)
            zone.pump()
        zone.hub.engine.received("stranger", {"status": "Update_Hash"})
        self.assertEqual(zone.hub.files(), before)
        self.assertEqual(zone.devices["a"].files(), before)

    def test_firstSyncLogged(self):
        """
        A first sync logs its start, each quarter and its end.
        """
        zone = Zone(self, devices=("a",))
        zone.hub.write("userdata/big.bin", random.Random(4).randbytes(2 * 1024 * 1024))
        zone.hub.engine.syncNow()
        with capturedLogs() as events:
            zone.connectAll()
            zone.pump()
        text = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("pz.sync")]
        self.assertTrue(any(t.startswith("first synchronisation") for t in text), text)
        for percent in (25, 50, 75):
            self.assertTrue(any(f"synchronisation {percent}%" in t for t in text), text)
        self.assertTrue(any(t.startswith("synchronisation done") for t in text), text)

    def test_sameContentNotPending(self):
        """
        A device holding, as its own unsent change, exactly the version the
        hub offers takes it as agreed rather than answering SYNC_PENDING
        (as after a hub that died between writing an item and recording it).
        """
        zone = Zone(self, devices=("a",))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        zone.disconnect("a")
        a.write("userdata/same.txt", b"the same")
        a.engine.localChange("userdata/same.txt")
        zone.hub.write("userdata/same.txt", b"the same")
        zone.hub.engine.localChange("userdata/same.txt")
        zone.connect("a")
        zone.pump()
        refusals = [m[2] for m in zone.messages if "refused" in m[2]]
        self.assertEqual(refusals, [])
        itemHash = hashlib.sha256(b"the same").digest()
        self.assertEqual(a.state.agreed(HUB, "userdata/same.txt"), itemHash)
        self.assertEqual(zone.hub.state.agreed("a", "userdata/same.txt"), itemHash)
        self.assertEqual(a.engine.conflicts() + zone.hub.engine.conflicts(), [])

    def test_leftoverTemporaryFiles(self):
        """
        Temporary files left by a process that died mid-transfer are removed
        when the engine is made; the items are untouched.
        """
        zone = Zone(self, devices=("a",))
        a = zone.devices["a"]
        with open(os.path.join(a.tree.tmpPath, "item-leftover"), "wb") as f:
            f.write(b"half an item")
        before = a.files()
        a.engine = a._makeEngine()
        self.assertEqual(os.listdir(a.tree.tmpPath), [])
        self.assertEqual(a.files(), before)
