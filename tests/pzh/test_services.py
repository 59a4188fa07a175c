"""
Tests for L{pzh.services}: the hub's service cache, written to its item
when devices announce and when one is revoked.
"""

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.servicecache import encodeCache
from pzh.services import WRITE_DELAY, ZoneServiceCache

GET42 = [{"service": "get42", "version": "1.0", "methods": ["get42"]}]
FILES = [{"service": "files", "version": "1.0", "methods": ["list", "read"]}]


class _Item:
    """
    An item in memory that counts its writes, and can be made unreadable.
    """

    def __init__(self, data=None) -> None:
        self.data = data
        self.writes = 0
        self.broken = None

    def read(self):
        if self.broken is not None:
            raise self.broken
        return self.data

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.data = data

    def decoded(self) -> dict:
        return json.loads(self.data)


class ZoneServiceCacheTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.item = _Item()
        self.cache = ZoneServiceCache(self.item.read, self.item.write, self.clock)
        self.addCleanup(lambda: self.assertEqual(self.clock.getDelayedCalls(), []))

    def test_announceWrittenAfterDelay(self):
        """
        Announces from several devices within the delay make one write,
        which holds each device's entry.
        """
        self.assertTrue(self.cache.announced("z/phone", GET42))
        self.assertTrue(self.cache.announced("z/laptop", FILES))
        self.assertEqual(self.item.writes, 0)
        self.assertEqual(self.cache.cache(), {"z/phone": {"services": GET42},
                                              "z/laptop": {"services": FILES}})
        self.clock.advance(WRITE_DELAY)
        self.assertEqual(self.item.writes, 1)
        self.assertEqual(self.item.decoded(), {"z/phone": {"services": GET42},
                                               "z/laptop": {"services": FILES}})

    def test_identicalAnnounceWritesNothing(self):
        """
        An announce equal to the device's entry, written or pending,
        changes nothing and schedules nothing.
        """
        self.cache.announced("z/phone", GET42)
        self.assertFalse(self.cache.announced("z/phone", GET42))
        self.clock.advance(WRITE_DELAY)
        self.assertFalse(self.cache.announced("z/phone", GET42))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.item.writes, 1)

    def test_changeBackWritesNothing(self):
        """
        A change undone before the write writes nothing.
        """
        self.cache.announced("z/phone", GET42)
        self.clock.advance(WRITE_DELAY)
        self.cache.announced("z/phone", FILES)
        self.cache.announced("z/phone", GET42)
        self.clock.advance(WRITE_DELAY)
        self.assertEqual(self.item.writes, 1)

    def test_otherEditsKept(self):
        """
        The item as synchronisation left it is what the changes apply to:
        an entry another side wrote is kept.
        """
        self.cache.announced("z/phone", GET42)
        self.clock.advance(WRITE_DELAY)
        self.item.data = encodeCache({"z/phone": {"services": GET42},
                                      "z/tablet": {"services": FILES}})
        self.assertFalse(self.cache.announced("z/tablet", FILES))
        self.cache.announced("z/laptop", FILES)
        self.clock.advance(WRITE_DELAY)
        self.assertEqual(sorted(self.item.decoded()), ["z/laptop", "z/phone", "z/tablet"])

    def test_damagedItem(self):
        """
        An item that is not JSON is read as empty and replaced by the
        announced entries.
        """
        self.item.data = b"{not json"
        self.cache.announced("z/phone", GET42)
        self.clock.advance(WRITE_DELAY)
        self.assertEqual(self.item.decoded(), {"z/phone": {"services": GET42}})

    def test_forget(self):
        """
        A revoked device's entry is removed at once, written or pending; a
        device with none writes nothing.
        """
        self.cache.announced("z/phone", GET42)
        self.cache.announced("z/laptop", FILES)
        self.clock.advance(WRITE_DELAY)
        self.assertTrue(self.cache.forget("z/phone"))
        self.assertEqual(self.item.decoded(), {"z/laptop": {"services": FILES}})
        self.cache.announced("z/tablet", GET42)
        self.assertTrue(self.cache.forget("z/tablet"))
        self.assertEqual(self.item.writes, 2)
        self.assertFalse(self.cache.forget("z/nobody"))
        self.assertEqual(self.item.writes, 2)
        self.assertEqual(self.item.decoded(), {"z/laptop": {"services": FILES}})

    def test_flush(self):
        """
        C{flush} (the hub stopping) writes what waits and cancels the
        delayed write.
        """
        self.cache.announced("z/phone", GET42)
        self.cache.flush()
        self.assertEqual(self.item.decoded(), {"z/phone": {"services": GET42}})
        self.cache.flush()
        self.assertEqual(self.item.writes, 1)

    def test_unreadableItem(self):
        """
        While the item cannot be read nothing is written (the other
        entries would be lost), and nothing raises; the change is written
        once it can be read again.
        """
        self.item.data = encodeCache({"z/laptop": {"services": FILES}})
        self.item.broken = ZoneError("SYNC_BAD_PATH", "gone")
        self.assertTrue(self.cache.announced("z/phone", GET42))
        self.clock.advance(WRITE_DELAY)
        self.assertEqual(self.item.writes, 0)
        self.item.broken = None
        self.cache.flush()
        self.assertEqual(self.item.decoded(), {"z/laptop": {"services": FILES},
                                               "z/phone": {"services": GET42}})

    def test_inMemory(self):
        """
        Without synchronisation the cache is kept in memory, each change
        at once.
        """
        cache = ZoneServiceCache.inMemory()
        self.assertEqual(cache.cache(), {})
        cache.announced("z/phone", GET42)
        self.assertEqual(cache.cache(), {"z/phone": {"services": GET42}})
        cache.forget("z/phone")
        self.assertEqual(cache.cache(), {})
