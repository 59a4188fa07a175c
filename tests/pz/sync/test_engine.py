"""
Tests for L{pz.sync.engine}: a hub and devices joined in memory.
"""

import base64
import json
import random

from twisted.trial.unittest import SynchronousTestCase

from tests.pz.sync.support import HUB, Zone


def _prefs(side) -> dict:
    return json.loads(side.read("preferences.json"))


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
