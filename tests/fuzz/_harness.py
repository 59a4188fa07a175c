"""
What every fuzz target shares: the Hypothesis settings profiles, a watch on
the log for unhandled errors, and the run's bookkeeping (examples, inputs,
time, memory) with its bounds.

Two profiles, chosen by C{PZ_FUZZ_PROFILE}:

 - C{pz-fuzz-short} (the default, part of C{make test}): derandomized, so
   every run tries the same examples and a failure always reproduces; no
   example database.
 - C{pz-fuzz-long} (C{make fuzz}): random, with its example database under
   the worktree's (ignored) C{.hypothesis/fuzz}, so a failure found once is
   tried first on the next run.

C{PZ_FUZZ_EXAMPLES} overrides the number of examples of the heaviest
target; the others run a fixed share of it.  With C{PZ_FUZZ_REPORT} set to
a directory, each target writes its figures there as JSON for
L{tests.fuzz.report} to sum up.
"""

import gc
import json
import os
import time
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

__all__ = ["fuzzSettings", "FuzzRun", "LogWatch", "PROFILE", "VARIANTS"]

_ROOT = Path(__file__).resolve().parents[2]

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
               HealthCheck.large_base_example]

settings.register_profile(
    "pz-fuzz-short",
    max_examples=int(os.environ.get("PZ_FUZZ_EXAMPLES", "60")),
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)
settings.register_profile(
    "pz-fuzz-long",
    max_examples=int(os.environ.get("PZ_FUZZ_EXAMPLES", "2000")),
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(_ROOT / ".hypothesis" / "fuzz")),
    deadline=None,
    print_blob=True,
    suppress_health_check=_SUPPRESSED,
)

PROFILE = "pz-fuzz-" + os.environ.get("PZ_FUZZ_PROFILE", "short")
_BASE = settings.get_profile(PROFILE)

#: How many byte-level mutants of each generated input a target also
#: sends.
VARIANTS = 4

#: The most the traced heap may grow over a whole target's run, measured
#: after the run once the examples are garbage: what the hub and the portal
#: keep for good.  A leak of even 1 KiB per example over a long run is far
#: above it.
GROWTH_BOUND = 6 * 1024 * 1024

#: The most the traced heap may rise while one connection is handled,
#: above where it stood when that connection began: the generated input,
#: its mutants and what the hub or the portal holds while handling them
#: (inputs are at most about a megabyte, see
#: L{tests.fuzz._frames.GROWN_BYTES}).
PEAK_BOUND = 512 * 1024 * 1024


def fuzzSettings(share: float = 1.0) -> settings:
    """
    The current profile's settings for a target that runs C{share} of the
    profile's examples (a costly target runs fewer).
    """
    return settings(_BASE, max_examples=max(10, int(_BASE.max_examples * share)))


class LogWatch:
    """
    Collects the log events that mean something went wrong unexpectedly:
    a logged failure (a traceback), an error or critical event, or text
    naming an unhandled error.
    """

    def __init__(self) -> None:
        self.events = []

    def __call__(self, event: dict) -> None:
        text = formatEvent(event) or ""
        if ("log_failure" in event
                or event.get("log_level") in (LogLevel.error, LogLevel.critical)
                or "Unhandled" in text or "Traceback" in text):
            self.events.append(event)

    def take(self) -> list:
        """
        The events seen since the last call, as text.
        """
        out = []
        for event in self.events:
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += "\n" + failure.getTraceback()
            out.append(text)
        self.events = []
        return out


def _keptOutsideHypothesis() -> int:
    """
    Bytes of the traced heap allocated anywhere but in Hypothesis's own
    code.  Hypothesis keeps a record of the examples a run tried (its
    data tree, and the last 10,000 examples' choices and small drawn
    values), so its share grows with the run's length by design; the
    growth bound is about what the hub and the portal keep.
    """
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, "*/hypothesis/*")])
    return sum(stat.size for stat in snapshot.statistics("filename"))


class FuzzRun:
    """
    A mixin for the fuzz L{TestCase}s: call L{startRun} once the fixtures
    exist, L{counted} in each example, and L{finishRun} after the
    Hypothesis run, which checks the memory bounds and reports.

    @ivar watch: the L{LogWatch}; L{checkLog} empties it.
    """

    #: Whether the run's figures go into C{make fuzz}'s report (the
    #: harness's own tests are not targets).
    reported = True

    target = "?"

    #: The bounds L{finishRun} checks (see L{GROWTH_BOUND} and
    #: L{PEAK_BOUND}).
    growthBound = GROWTH_BOUND
    peakBound = PEAK_BOUND

    def startRun(self) -> None:
        """
        Start watching the log and tracing memory.
        """
        self.watch = LogWatch()
        globalLogPublisher.addObserver(self.watch)
        self.addCleanup(globalLogPublisher.removeObserver, self.watch)
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self.addCleanup(tracemalloc.stop)
        gc.collect()
        self._baseline = tracemalloc.get_traced_memory()[0]
        self._kept = _keptOutsideHypothesis()
        tracemalloc.reset_peak()
        self._connectionStart = self._baseline
        self._connectionPeak = 0
        self._started = time.monotonic()
        self.figures = {"examples": 0, "inputs": 0, "bytes": 0}

    def counted(self, inputs: int, size: int) -> None:
        """
        Count one example of C{inputs} frames or requests, C{size} bytes.
        """
        self.figures["examples"] += 1
        self.figures["inputs"] += inputs
        self.figures["bytes"] += size
        current, peak = tracemalloc.get_traced_memory()
        self._connectionPeak = max(self._connectionPeak, peak - self._connectionStart)
        self._connectionStart = current
        tracemalloc.reset_peak()

    def checkLog(self) -> None:
        """
        Fail if anything was logged as unhandled or as a failure.
        """
        events = self.watch.take()
        self.assertEqual(events, [], "\n".join(events))

    def finishRun(self, name: str) -> None:
        """
        Check the memory bounds over the run of target C{name} and write
        its figures where C{PZ_FUZZ_REPORT} says.
        """
        elapsed = time.monotonic() - self._started
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
        growth = _keptOutsideHypothesis() - self._kept
        self.figures.update(
            target=f"{self.target}: {name}",
            seconds=round(elapsed, 2),
            peakBytes=self._connectionPeak,
            growthBytes=growth,
            hypothesisGrowthBytes=current - self._baseline - growth,
        )
        self.assertLess(growth, self.growthBound, self.figures)
        self.assertLess(self._connectionPeak, self.peakBound, self.figures)
        self.assertGreater(self.figures["examples"], 0)
        report = os.environ.get("PZ_FUZZ_REPORT")
        if report and self.reported:
            out = Path(report)
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{self.target}.{name}.json").write_text(json.dumps(self.figures))
