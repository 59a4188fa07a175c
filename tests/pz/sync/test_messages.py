"""
Tests for L{pz.sync.messages}: names and field checks.
"""

import base64

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.sync.chunkers import encodeHash
from pz.sync.messages import (
    FRAME_DATA, namesFor, parseChange, parseData, parseHash, parseHello, parsePlan,
)

H = encodeHash(b"\1" * 32)


class NamesTests(SynchronousTestCase):
    """
    The role picks the names: the hub sends Sync_Hash and answers
    Update_Change; the device the reverse.
    """

    def test_names(self):
        """
        Each side sends the names the other receives.
        """
        hub, device = namesFor("hub"), namesFor("device")
        self.assertEqual((hub.hash, hub.data, hub.change, hub.ack),
                         ("Sync_Hash", "Sync_Data", "Update_Change", "Update_Ack"))
        self.assertEqual((device.hash, device.data, device.change, device.ack),
                         ("Update_Hash", "Update_Data", "Sync_Change", "Sync_Ack"))
        self.assertEqual((hub.peerHash, device.peerHash), (device.hash, hub.hash))
        self.assertRaises(ValueError, namesFor, "other")


class ParseTests(SynchronousTestCase):
    """
    Each field is checked; anything else is SYNC_BAD_MESSAGE.
    """

    def _bad(self, parse, payload, *args):
        error = self.assertRaises(ZoneError, parse, payload, *args)
        self.assertEqual(error.code, "SYNC_BAD_MESSAGE")

    def test_hash(self):
        """
        A hash page and a deletion parse; missing or mistyped fields do not.
        """
        good = {"path": "userdata/x", "version": {"time": 5.5, "origin": "a"}, "hash": H, "size": 3,
                "base": None, "ops": [[0, 1], H], "part": 0, "more": False}
        msg = parseHash(good)
        self.assertEqual((msg.hash, msg.ops, msg.deleted), (b"\1" * 32, ([0, 1], H), False))
        gone = parseHash({"path": "userdata/x", "version": {"time": 5, "origin": "a"}, "base": H,
                          "deleted": True})
        self.assertEqual((gone.deleted, gone.base, gone.hash), (True, b"\1" * 32, None))
        for key, value in [("size", -1), ("size", True), ("part", "0"), ("more", 1), ("ops", {}),
                           ("hash", "short"), ("version", {"time": "now", "origin": "a"}),
                           ("version", {"time": 1, "origin": ""}), ("path", ""), ("path", 5)]:
            self._bad(parseHash, dict(good, **{key: value}))

    def test_change(self):
        """
        Need runs must be ascending, not overlapping and inside the chunk
        list.
        """
        base = {"path": "userdata/x", "hash": H}
        self.assertEqual(parseChange(dict(base, need=[[0, 2], [5, 1]]), 6).need, ((0, 2), (5, 1)))
        self.assertTrue(parseChange(dict(base, rebase=True), 6).rebase)
        refused = parseChange(dict(base, refused={"code": "SYNC_CONFLICT", "message": "lost"},
                                   winner={"hash": None, "version": {"time": 1, "origin": "z"}}), 6)
        self.assertEqual((refused.refused["code"], refused.winner["hash"]), ("SYNC_CONFLICT", None))
        for need in ([[0, 7]], [[2, 1], [1, 1]], [[0, 2], [1, 1]], [[0, 0]], [[-1, 1]], [[0]], "all"):
            self._bad(parseChange, dict(base, need=need), 6)

    def test_data(self):
        """
        Chunk entries are [index, base64] or [index, base64, true]; a frame
        holds at most FRAME_DATA bytes.
        """
        piece = base64.b64encode(b"x" * 10).decode()
        msg = parseData({"path": "userdata/x", "hash": H, "chunks": [[0, piece, True], [0, piece]],
                         "more": True})
        self.assertEqual(msg.chunks, ((0, b"x" * 10, True), (0, b"x" * 10, False)))
        big = base64.b64encode(b"x" * (FRAME_DATA // 2 + 1)).decode()
        self._bad(parseData, {"path": "userdata/x", "hash": H, "chunks": [[0, big], [1, big]]})
        for entry in ([0], [-1, piece], ["0", piece], [0, piece, False], [0, "!!"]):
            self._bad(parseData, {"path": "userdata/x", "hash": H, "chunks": [entry]})

    def test_helloAndPlan(self):
        """
        A hello lists categories; a plan counts items and bytes, or carries
        a refusal.
        """
        self.assertEqual(parseHello({"select": ["crl"], "constrained": True}).select, {"crl"})
        self._bad(parseHello, {"select": "crl"})
        self.assertEqual(parsePlan({"items": 2, "bytes": 10}).items, 2)
        self.assertEqual(parsePlan({"refused": {"code": "SYNC_ITEMS_MISSING", "message": "x"}})
                         .refused["code"], "SYNC_ITEMS_MISSING")
        self._bad(parsePlan, {"items": -1, "bytes": 0})
