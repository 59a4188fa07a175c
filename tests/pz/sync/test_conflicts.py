"""
Tests for L{pz.sync.conflicts}: the webinos conflict rule.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.sync.conflicts import MARGIN, updateWins
from pz.sync.state import Version

NOW = 1_800_000_000.0


class UpdateWinsTests(SynchronousTestCase):
    """
    The later version wins within 5 s of the hub's clock, else the hub's.
    """

    def _wins(self, current, update):
        return updateWins(Version(NOW + current, "hub") if current is not None else None,
                          Version(NOW + update, "dev"), NOW)

    def test_laterWithinMargin(self):
        """
        A later update 3 s before the hub's clock wins.
        """
        self.assertTrue(self._wins(-10, -3))

    def test_laterBeyondMargin(self):
        """
        A later update 30 s before the hub's clock loses: too old to trust.
        """
        self.assertFalse(self._wins(-60, -30))

    def test_edges(self):
        """
        Exactly 5 s away still counts; a hair beyond does not; a device
        clock a little ahead of the hub's is within the margin too.
        """
        self.assertEqual(MARGIN, 5.0)
        self.assertTrue(self._wins(-10, -5))
        self.assertFalse(self._wins(-10, -5.001))
        self.assertTrue(self._wins(-1, 4))
        self.assertFalse(self._wins(-1, 6))

    def test_earlierOrTie(self):
        """
        An update no later than the hub's version loses, ties included.
        """
        self.assertFalse(self._wins(-1, -2))
        self.assertFalse(self._wins(-1, -1))

    def test_nothingToConflictWith(self):
        """
        With no current version at the hub, the update is taken.
        """
        self.assertTrue(self._wins(None, -1000))
