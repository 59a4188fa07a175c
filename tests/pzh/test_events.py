"""
Tests for L{pzh.events}.
"""

from twisted.trial.unittest import SynchronousTestCase

from pzh.events import ZoneEvents


class ZoneEventsTests(SynchronousTestCase):
    """
    L{ZoneEvents} tells its listeners, drops a failing one, and lets one go.
    """

    def test_emit(self):
        """
        Every listener hears every event, in order, until it unsubscribes;
        unsubscribing twice is harmless.
        """
        events, heard = ZoneEvents(), []
        stop = events.subscribe(lambda kind, data: heard.append((kind, data)))
        events.emit("device", "z/a")
        stop()
        stop()
        events.emit("device", "z/b")
        self.assertEqual((heard, len(events)), ([("device", "z/a")], 0))

    def test_failingListener(self):
        """
        A listener that raises is logged and dropped; the others still
        hear the event.
        """
        events, heard = ZoneEvents(), []

        def broken(kind, data):
            raise RuntimeError("gone")

        events.subscribe(broken)
        events.subscribe(lambda kind, data: heard.append(data))
        events.emit("device", "z/a")
        events.emit("device", "z/b")
        self.assertEqual(heard, ["z/a", "z/b"])
        self.assertEqual(len(events), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
