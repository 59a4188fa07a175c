"""
Tests for the fuzz harness itself: the log watch sees what it must, the
memory bounds fail when they must, the generated fields stay bounded, and
the summary adds up and refuses a run that generated too little.
"""

import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout

from hypothesis import given, settings, strategies as st
from twisted.logger import Logger
from twisted.trial.reporter import TestResult
from twisted.trial.unittest import SynchronousTestCase

from tests.fuzz._frames import mutatedObject, variants
from tests.fuzz._harness import FuzzRun, LogWatch
from tests.fuzz.report import main


class LogWatchTests(SynchronousTestCase):
    """
    L{LogWatch} keeps failures, errors and "Unhandled" text, nothing else.
    """

    def test_kinds(self):
        """
        A logged failure, an error and an unhandled-error message are kept,
        with the traceback; an informational line is not.
        """
        watch = LogWatch()
        log = Logger(observer=watch)
        log.info("refused a message from {peer}", peer="x")
        try:
            1 / 0
        except ZeroDivisionError:
            log.failure("dispatching")
        log.error("disk full")
        log.info("Unhandled Error in {where}", where="here")
        seen = watch.take()
        self.assertEqual(len(seen), 3)
        self.assertIn("ZeroDivisionError", seen[0])
        self.assertEqual(watch.take(), [])


class _Leaky(FuzzRun, SynchronousTestCase):
    """
    A fuzz target whose connections leave C{kept} bytes behind each, or
    hold C{held} bytes while they run.
    """

    target = "harness"
    reported = False

    def __init__(self, kept: int = 0, held: int = 0) -> None:
        super().__init__("runTest")
        self.kept, self.held, self.leaked = kept, held, []

    def runTest(self) -> None:
        self.startRun()
        for _ in range(50):
            during = bytearray(self.held)
            self.leaked.append(bytearray(self.kept))
            del during
            self.counted(1, 0)
        self.finishRun("leak")


class BoundTests(SynchronousTestCase):
    """
    L{FuzzRun.finishRun} fails a run that keeps memory or peaks high: the
    growth check of C{make fuzz} can fail.
    """

    def outcome(self, case: _Leaky) -> str:
        """
        Run C{case}; return why it failed, or C{""}.
        """
        result = TestResult()
        case.run(result)
        self.assertEqual(result.errors, [])
        return str(result.failures[0][1].value) if result.failures else ""

    def test_clean(self):
        """
        A run that keeps nothing passes.
        """
        self.assertEqual(self.outcome(_Leaky()), "")

    def test_leak(self):
        """
        A run whose connections each keep 200 KiB (10 MB in all) fails
        the growth bound.
        """
        self.assertIn("growthBytes", self.outcome(_Leaky(kept=200 * 1024)))

    def test_peak(self):
        """
        A run whose connections each hold more than the peak bound while
        they run fails, though they keep nothing.
        """
        case = _Leaky(held=2 * 1024 * 1024)
        case.peakBound = 1024 * 1024
        self.assertIn("peakBytes", self.outcome(case))


class GrowthTests(SynchronousTestCase):
    """
    L{mutatedObject} grows fields, but never past its C{largest} (or twice
    a field's own size): growth compounding over three mutations once made
    inputs of hundreds of megabytes.
    """

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(st.data())
    def test_bounded(self, data):
        """
        However the three mutations combine, the JSON stays small.
        """
        base = {"payload": {"csr": "M" * 900, "hashes": ["a", "b"], "n": 1}, "id": "x" * 70}
        obj = mutatedObject(data.draw, base, largest=20000)
        self.assertLessEqual(len(json.dumps(obj)), 8 * 20000)


class VariantTests(SynchronousTestCase):
    """
    L{variants} makes distinct mutants, the same for the same seed.
    """

    def test_seeded(self):
        """
        The same seed gives the same mutants; they differ from the input.
        """
        data = bytes(range(200))
        first = variants(7, data, 4)
        self.assertEqual(first, variants(7, data, 4))
        self.assertEqual(len(first), 4)
        self.assertNotIn(data, first)


class ReportTests(SynchronousTestCase):
    """
    C{python -m tests.fuzz.report} sums the targets' figures.
    """

    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)

    def write(self, **figures):
        """
        Write one target's figures, defaults overridden by C{figures}.
        """
        base = {"examples": 10, "inputs": 40, "bytes": 2048, "seconds": 1.5,
                "peakBytes": 1 << 20, "growthBytes": 1 << 10, "target": "t: a"}
        base.update(figures)
        path = self.dir + "/" + base["target"] + ".json"
        with open(path, "w") as f:
            json.dump(base, f)

    def report(self, *argv):
        """
        Run the report on C{argv}; return its exit code, output and errors.
        """
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_totals(self):
        """
        The totals add the targets' inputs; a minimum met exits 0.
        """
        self.write(target="t: a")
        self.write(target="t: b", inputs=60)
        code, out, _ = self.report(self.dir, "100")
        self.assertEqual(code, 0)
        self.assertIn("t: b", out)
        self.assertRegex(out.splitlines()[-1], r"^total\s+20\s+100\s")

    def test_tooFew(self):
        """
        Fewer inputs than the minimum asked for fail, saying so.
        """
        self.write()
        code, _, err = self.report(self.dir, "100000")
        self.assertEqual(code, 1)
        self.assertIn("only 40", err)

    def test_nothing(self):
        """
        A directory without figures fails.
        """
        code, _, err = self.report(self.dir)
        self.assertEqual(code, 1)
        self.assertIn("no fuzz target", err)
