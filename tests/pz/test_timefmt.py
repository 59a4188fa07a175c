"""
Tests for L{pz.timefmt}.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.timefmt import isoTime


class IsoTimeTests(SynchronousTestCase):
    def test_utcToTheSecond(self):
        self.assertEqual(isoTime(1796038421.75), "2026-11-30T11:33:41+00:00")

    def test_none(self):
        self.assertIsNone(isoTime(None))
