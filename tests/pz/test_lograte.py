"""
Tests for L{pz.lograte}: lines a peer can cause stay bounded.
"""

from twisted.internet.task import Clock
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from pz.lograte import RateLimitedLog


class _Events(list):
    """
    An observer that keeps the events it sees.
    """

    def __call__(self, event) -> None:
        self.append(event)


class RateLimitedLogTests(SynchronousTestCase):
    """
    L{RateLimitedLog} writes the first lines of each kind per interval and
    then says how many it left out.
    """

    def setUp(self):
        self.events = _Events()
        self.clock = Clock()
        self.log = RateLimitedLog(Logger(observer=self.events), self.clock.seconds,
                                  burst=3, interval=10)

    def test_burstThenSuppressed(self):
        """
        Of 1,000 lines of one kind in one interval, the first three are
        written.
        """
        written = [self.log.info("refused {n}", n=n) for n in range(1000)]
        self.assertEqual(written.count(True), 3)
        self.assertEqual([e["n"] for e in self.events], [0, 1, 2])
        self.assertEqual(self.log.suppressed, 997)

    def test_summaryWithNextLine(self):
        """
        The first line of the next interval carries the count of lines left
        out.
        """
        for n in range(10):
            self.log.info("refused {n}", n=n)
        self.clock.advance(10)
        self.log.info("refused {n}", n=10)
        last = self.events[-1]
        self.assertEqual((last["n"], last["suppressed"]), (10, 7))
        self.assertIn("7 similar lines suppressed", last["log_format"].format(**last))

    def test_kindsSeparate(self):
        """
        Each kind of line has its own allowance.
        """
        for n in range(5):
            self.log.info("a {n}", n=n)
            self.log.info("b {n}", n=n)
        self.assertEqual(len(self.events), 6)

    def test_badSettings(self):
        """
        A burst under one or an interval that is not positive is refused.
        """
        self.assertRaises(ValueError, RateLimitedLog, Logger(), self.clock.seconds, burst=0)
        self.assertRaises(ValueError, RateLimitedLog, Logger(), self.clock.seconds, interval=0)
