"""
The synchronisation benchmark's own parts (L{bench.sync}): the edits, the
rsync side through a real inetd-mode C{rsync} daemon, the polling of a
copy, and the verdicts of the printed table.
"""

import os
import random
import shutil
import tempfile

from twisted.trial.unittest import TestCase

from bench import sync


class EditsTests(TestCase):
    def setUp(self):
        self.base = random.Random(1).randbytes(20000)
        self.edits = dict(sync.editsOf(random.Random(2)))

    def edit(self, prefix):
        return next(f for label, f in self.edits.items() if label.startswith(prefix))

    def test_insertMiddle(self):
        """
        (a) puts 100 new bytes in the middle and keeps every other byte.
        """
        edited = self.edit("(a)")(self.base)
        self.assertEqual(len(edited), len(self.base) + 100)
        self.assertEqual(edited[:10000], self.base[:10000])
        self.assertEqual(edited[10100:], self.base[10000:])

    def test_changeNearStart(self):
        """
        (b) changes 1 KiB at offset 4 KiB and keeps the size.
        """
        edited = self.edit("(b)")(self.base)
        self.assertEqual(len(edited), len(self.base))
        self.assertEqual(edited[:4096], self.base[:4096])
        self.assertEqual(edited[5120:], self.base[5120:])
        self.assertNotEqual(edited[4096:5120], self.base[4096:5120])

    def test_append(self):
        """
        (c) adds 1 KiB at the end.
        """
        edited = self.edit("(c)")(self.base)
        self.assertEqual(edited[:len(self.base)], self.base)
        self.assertEqual(len(edited), len(self.base) + 1024)

    def test_sameForBothSides(self):
        """
        The random bytes are drawn once: applying an edit twice gives the
        same result, so rsync and our side see identical files.
        """
        edit = self.edit("(a)")
        self.assertEqual(edit(self.base), edit(self.base))


class ParseStatsTests(TestCase):
    def test_commas(self):
        text = "Number of files: 1\nTotal bytes sent: 16,007\nTotal bytes received: 19,025\n"
        self.assertEqual(sync.parseStats(text), {"sent": 16007, "received": 19025})

    def test_dots(self):
        """
        Some locales group digits with dots.
        """
        text = "Total bytes sent: 1.016.007\nTotal bytes received: 35\n"
        self.assertEqual(sync.parseStats(text), {"sent": 1016007, "received": 35})

    def test_missing(self):
        """
        Output without both totals is an error, not a zero.
        """
        self.assertRaises(ValueError, sync.parseStats, "Total bytes sent: 12\n")
        self.assertRaises(ValueError, sync.parseStats, "")


class RsyncDaemonTests(TestCase):
    """
    A real C{rsync} client against a real C{rsync --daemon} started for
    its connection, on 127.0.0.1.
    """

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="pzrsync")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.daemon = sync.RsyncDaemon(self.work, os.path.join(self.work, "module"),
                                       timeout=30)
        self.addCleanup(self.daemon.close)

    def test_listensOnItsOwnSocket(self):
        """
        The port is the one the kernel gave the daemon's own socket; the
        configuration writes into the module's folder without a chroot.
        """
        self.assertNotEqual(self.daemon.port, 0)
        with open(self.daemon.config) as f:
            config = f.read()
        self.assertIn("use chroot = false", config)
        self.assertIn("read only = false", config)
        self.assertIn(f"path = {self.daemon.directory}", config)
        self.assertEqual("uid = " in config, os.geteuid() == 0)

    def test_transferAndDelta(self):
        """
        The base copy sends the whole file; an edit of a large file sends
        far less; the copy equals the source each time; every connection
        has its own daemon, which exits with it.
        """
        source = os.path.join(self.work, "file.bin")
        data = random.Random(3).randbytes(1000000)
        with open(source, "wb") as f:
            f.write(data)
        first = self.daemon.transfer(source)
        self.assertGreater(first["bytes"], len(data))
        edited = data[:500000] + b"x" * 100 + data[500000:]
        with open(source, "wb") as f:
            f.write(edited)
        second = self.daemon.transfer(source)
        self.assertLess(second["bytes"], len(data) // 10)
        self.assertEqual(second["bytes"], second["sent"] + second["received"])
        with open(os.path.join(self.daemon.directory, "file.bin"), "rb") as f:
            self.assertEqual(f.read(), edited)
        self.assertGreater(second["seconds"], 0)
        self.assertEqual([p for p in sync.started if "rsync" in p.benchName], [])

    def test_failure(self):
        """
        A transfer that fails says so; no process is left behind.
        """
        error = self.assertRaises(RuntimeError, self.daemon.transfer,
                                  os.path.join(self.work, "absent"))
        self.assertIn("rsync failed", str(error))
        self.assertEqual([p for p in sync.started if "rsync" in p.benchName], [])


class FileWatchTests(TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="pzwatch")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.path = os.path.join(self.work, "copy")

    def test_equalOnlyWhenIdentical(self):
        watch = sync.FileWatch(self.path, b"new content")
        self.assertFalse(watch())
        sync.replaceFile(self.path, b"old content", self.work)
        self.assertFalse(watch())
        sync.replaceFile(self.path, b"new content", self.work)
        self.assertTrue(watch())

    def test_unchangedFileNotReread(self):
        """
        A file whose size, inode and time did not change is not read again
        (the poll runs every 5 ms over 10 MB).
        """
        sync.replaceFile(self.path, b"old content", self.work)
        watch = sync.FileWatch(self.path, b"new content")
        self.assertFalse(watch())
        sync.replaceFile(self.path, b"new content", self.work)
        reads = []
        real = watch.read
        watch.read = lambda: (reads.append(1), real())[1]
        self.assertTrue(watch())
        self.assertTrue(watch())
        self.assertEqual(reads, [1])


class ReportTests(TestCase):
    def result(self, ours, theirs, rate=500.0):
        labels = ["(a) x", "(b) y", "(c) z"]
        return {
            "file_size": 10 ** 7,
            "ours": {"base": {"bytes": 1, "seconds": 1.0},
                     "edits": [{"edit": l, "bytes": b, "seconds": 0.5}
                               for l, b in zip(labels, ours)]},
            "rsync": {"base": {"bytes": 1, "seconds": 1.0},
                      "edits": [{"edit": l, "bytes": b, "seconds": 0.1}
                                for l, b in zip(labels, theirs)]},
            "throughput": {"mb_per_s": rate, "best_mb_per_s": rate, "size_mb": 64, "runs": 5,
                           "chunks": 1, "average_chunk": 1.0},
            "preference": {"devices": 10, "median_seconds": 0.5,
                           "runs": [{"seconds": 0.5, "hub_seconds": 0.4}]},
        }

    def targets(self, lines):
        return lines[lines.index("Targets") + 1:]

    def test_verdicts(self):
        """
        Each edit passes when ours is at most rsync's; the throughput
        passes from 300 MB/s.
        """
        lines = sync.syncReport(self.result([100, 35000, 40000], [35000, 35000, 35000], 299.0))
        targets = self.targets(lines)
        self.assertEqual([t.rsplit(" ", 1)[1] for t in targets],
                         ["PASS", "PASS", "FAIL", "FAIL"])
        self.assertTrue(any("0.00" in line for line in lines))

    def test_missingFigureFails(self):
        """
        An edit our side did not measure fails: a missing figure never
        passes.
        """
        result = self.result([100], [35000, 35000, 35000])
        result["throughput"] = {"error": "no module"}
        targets = self.targets(sync.syncReport(result))
        self.assertEqual([t.rsplit(" ", 1)[1] for t in targets],
                         ["PASS", "FAIL", "FAIL", "FAIL"])

    def test_nothing(self):
        self.assertEqual(sync.syncReport({}), [])

    def test_partNotMeasured(self):
        """
        A part that failed is named with its reason, and its targets fail.
        """
        result = self.result([], [35000, 35000, 35000])
        result["ours"] = {"error": "device dev01 did not connect within 60.0 s"}
        result["preference"] = {"error": "the hub exited"}
        lines = sync.syncReport(result)
        self.assertIn("  ours: not measured: device dev01 did not connect within 60.0 s", lines)
        self.assertTrue(any("not measured: the hub exited" in line for line in lines))
        self.assertEqual([t.rsplit(" ", 1)[1] for t in self.targets(lines)],
                         ["FAIL", "FAIL", "FAIL", "PASS"])


class MeasureSyncTests(TestCase):
    def test_onePartFails(self):
        """
        One part failing leaves the others measured, and says why.
        """
        run = tempfile.mkdtemp(prefix="pzsyncrun")
        self.addCleanup(shutil.rmtree, run, True)

        def fail(*args):
            raise RuntimeError("rsync is not installed")

        self.patch(sync, "measureRsync", fail)
        self.patch(sync, "measureOurs", lambda work, base, edits: {"edits": [], "n": len(edits)})
        self.patch(sync, "measureThroughput", lambda: {"mb_per_s": 1.0})
        self.patch(sync, "measurePreference", lambda work: {"runs": []})
        self.patch(sync, "log", lambda message: None)
        result = sync.measureSync(None, run)
        self.assertEqual(result["rsync"], {"error": "rsync is not installed"})
        self.assertEqual(result["ours"], {"edits": [], "n": 3})
        self.assertEqual(result["throughput"], {"mb_per_s": 1.0})
        self.assertEqual(result["preference"], {"runs": []})
