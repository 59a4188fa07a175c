"""
Tests for L{pz.sync.state}: item records, agreed hashes per peer, chunk
lists and conflicts, kept across reopening, in a 0600 file.
"""

import hashlib
import os

from twisted.trial.unittest import SynchronousTestCase

from pz.sync.items import Signature
from pz.sync.state import TOMBSTONE, ItemRecord, SyncState, Version


def h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class _State(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(os.umask, os.umask(0o022))
        os.mkdir(self.mktemp())
        self.path = os.path.join(self.mktemp(), "state.db")
        os.makedirs(os.path.dirname(self.path))
        self.state = SyncState(self.path)
        self.addCleanup(self.state.close)

    def reopen(self):
        self.state.close()
        self.state = SyncState(self.path)
        return self.state


class RecordTests(_State):
    """
    Item records.
    """

    def test_roundTrip(self):
        """
        A record comes back as recorded, signature and all.
        """
        rec = ItemRecord("userdata/a", h("a"), 5, Version(1700000000.25, "z/laptop"),
                         Signature(5, 10**18 + 1, 10**18 + 2, 12345))
        self.state.record(rec)
        self.assertEqual(self.state.item("userdata/a"), rec)
        self.assertEqual(self.state.items(), [rec])

    def test_missing(self):
        """
        A path never recorded is None.
        """
        self.assertIsNone(self.state.item("crl.pem"))
        self.assertEqual(self.state.items(), [])

    def test_tombstone(self):
        """
        A deletion is a record with no hash and no signature.
        """
        rec = ItemRecord("context/a.json", None, 0, Version(2.0, "z"))
        self.state.record(rec)
        self.assertEqual(self.state.item("context/a.json"), rec)
        self.assertTrue(self.state.item("context/a.json").deleted)
        self.assertFalse(ItemRecord("x", h("x"), 1, Version(0, "z")).deleted)

    def test_replace(self):
        """
        Recording a path again replaces its record; items are by path.
        """
        self.state.record(ItemRecord("b", h("1"), 1, Version(1.0, "z")))
        self.state.record(ItemRecord("a", h("2"), 2, Version(2.0, "z")))
        self.state.record(ItemRecord("b", h("3"), 3, Version(3.0, "y")))
        self.assertEqual([(r.path, r.hash) for r in self.state.items()],
                         [("a", h("2")), ("b", h("3"))])


class AgreedTests(_State):
    """
    What each peer last agreed.
    """

    def test_nothing(self):
        """
        Nothing agreed is None, not a tombstone.
        """
        self.assertIsNone(self.state.agreed("z/a", "crl.pem"))
        self.assertEqual(self.state.agreedPaths("z/a"), {})

    def test_perPeer(self):
        """
        Each peer has its own agreed hashes.
        """
        self.state.setAgreed("z/a", "crl.pem", h("1"))
        self.state.setAgreed("z/b", "crl.pem", h("2"))
        self.state.setAgreed("z/a", "crl.pem", h("3"))
        self.assertEqual(self.state.agreed("z/a", "crl.pem"), h("3"))
        self.assertEqual(self.state.agreed("z/b", "crl.pem"), h("2"))

    def test_tombstone(self):
        """
        An agreed deletion is L{TOMBSTONE}, distinct from None.
        """
        self.state.setAgreed("z/a", "userdata/x", TOMBSTONE)
        self.assertIs(self.state.agreed("z/a", "userdata/x"), TOMBSTONE)
        self.assertEqual(self.state.agreedPaths("z/a"), {"userdata/x": TOMBSTONE})
        self.assertEqual(repr(TOMBSTONE), "TOMBSTONE")

    def test_unset(self):
        """
        Setting None forgets one path.
        """
        self.state.setAgreed("z/a", "x", h("1"))
        self.state.setAgreed("z/a", "y", h("2"))
        self.state.setAgreed("z/a", "x", None)
        self.assertEqual(self.state.agreedPaths("z/a"), {"y": h("2")})

    def test_forgetPeer(self):
        """
        Forgetting a peer drops all it agreed, and nothing of the others.
        """
        self.state.setAgreed("z/a", "x", h("1"))
        self.state.setAgreed("z/a", "y", TOMBSTONE)
        self.state.setAgreed("z/b", "x", h("1"))
        self.state.forgetPeer("z/a")
        self.assertEqual(self.state.agreedPaths("z/a"), {})
        self.assertEqual(self.state.agreedPaths("z/b"), {"x": h("1")})


class ChunkListTests(_State):
    """
    The chunk-list cache.
    """

    def test_roundTrip(self):
        """
        A chunk list comes back in order; an unknown hash is None.
        """
        chunks = tuple(h(str(i)) for i in range(1000))
        self.state.storeChunkList(h("item"), chunks)
        self.assertEqual(self.state.chunkList(h("item")), chunks)
        self.state.storeChunkList(h("empty"), [])
        self.assertEqual(self.state.chunkList(h("empty")), ())
        self.assertIsNone(self.state.chunkList(h("other")))

    def test_badHash(self):
        """
        Chunk hashes of the wrong length are refused.
        """
        self.assertRaises(ValueError, self.state.storeChunkList, h("item"), [b"short"])
        self.assertIsNone(self.state.chunkList(h("item")))

    def test_prune(self):
        """
        Pruning keeps the lists of current item hashes and agreed hashes,
        and drops the rest.
        """
        for name in ("current", "agreed", "old"):
            self.state.storeChunkList(h(name), [h(name + "0")])
        self.state.record(ItemRecord("x", h("current"), 1, Version(0, "z")))
        self.state.record(ItemRecord("gone", None, 0, Version(0, "z")))
        self.state.setAgreed("z/a", "y", h("agreed"))
        self.state.setAgreed("z/a", "gone", TOMBSTONE)
        self.state.pruneChunkLists()
        self.assertIsNotNone(self.state.chunkList(h("current")))
        self.assertIsNotNone(self.state.chunkList(h("agreed")))
        self.assertIsNone(self.state.chunkList(h("old")))


class ConflictTests(_State):
    """
    The list of kept conflicts.
    """

    def test_list(self):
        """
        Conflicts come back oldest first with their fields.
        """
        self.state.addConflict("preferences.json", "z/a", 10.5, "conflicts/p.json.z_a.x", h("p"))
        self.state.addConflict("userdata/f", "z", 5.0, "conflicts/userdata/f.z.y", None)
        self.assertEqual(self.state.conflicts(), [
            {"path": "preferences.json", "origin": "z/a", "time": 10.5,
             "kept_as": "conflicts/p.json.z_a.x", "hash": h("p")},
            {"path": "userdata/f", "origin": "z", "time": 5.0,
             "kept_as": "conflicts/userdata/f.z.y", "hash": None},
        ])


class FileTests(_State):
    """
    The state file itself.
    """

    def test_survivesReopening(self):
        """
        Everything is there after closing and opening the file again.
        """
        rec = ItemRecord("crl.pem", h("crl"), 3, Version(7.0, "z"), Signature(3, 4, 5, 6))
        self.state.record(rec)
        self.state.setAgreed("z/a", "crl.pem", h("crl"))
        self.state.setAgreed("z/a", "userdata/x", TOMBSTONE)
        self.state.storeChunkList(h("crl"), [h("c")])
        self.state.addConflict("crl.pem", "z", 1.0, "conflicts/crl.pem.z.t", h("c"))
        state = self.reopen()
        self.assertEqual(state.items(), [rec])
        self.assertEqual(state.agreedPaths("z/a"), {"crl.pem": h("crl"), "userdata/x": TOMBSTONE})
        self.assertEqual(state.chunkList(h("crl")), (h("c"),))
        self.assertEqual(len(state.conflicts()), 1)

    def test_private(self):
        """
        The state file and its journal files are 0600.
        """
        self.state.record(ItemRecord("crl.pem", h("crl"), 3, Version(7.0, "z")))
        for suffix in ("", "-wal", "-shm"):
            if suffix == "" or os.path.exists(self.path + suffix):
                self.assertEqual(os.stat(self.path + suffix).st_mode & 0o777, 0o600, suffix)
