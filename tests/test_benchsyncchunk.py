"""
Tests for L{bench.syncchunk}, the synchronisation throughput benchmark.
"""

from twisted.trial.unittest import SynchronousTestCase

from bench.syncchunk import TARGET, lines, measure


class MeasureTests(SynchronousTestCase):
    """
    Tests for L{measure} and L{lines}.
    """

    def test_smallRun(self):
        """
        A 2 MiB run gives a positive rate, the chunk count of 2 MiB of random
        data at about 5 KiB a chunk, the target and a table of one row.
        """
        figures = measure(sizeMB=2, repeat=1)
        self.assertGreater(figures["mb_per_s"], 0)
        self.assertTrue(300 <= figures["chunks"] <= 600, figures["chunks"])
        self.assertEqual(figures["target_mb_per_s"], TARGET)
        self.assertEqual(figures["pass"], figures["mb_per_s"] >= TARGET)
        table = lines(figures)
        self.assertEqual(len(table), 3)
        self.assertIn("manifestOfFile (data)", table[2])
