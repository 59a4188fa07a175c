"""
The load of the calls benchmark (L{bench.calls}): calls offered at a fixed
rate, or kept in flight, each timed from its send to its answer; and the
figures the table prints.

Both loads take C{issue}, a function of no arguments that makes one call
and returns a L{Deferred} firing when its answer came (or failing), so the
same code drives a device proxy's calls and the bare relay's frames.  Both
run on the reactor's clock (an L{IReactorTime}) and are bounded: in count,
and in time by the load's own length plus each call's timeout.

  - L{OpenLoop}: C{count} calls at C{rate} a second, paced by the clock:
    call I is due at I / RATE after the start, whether or not the earlier
    ones were answered (an open loop: a slow answer does not slow the
    offered load).  A call that could not go out on time (the reactor was
    busy) goes as soon as it can; its lateness is kept as the send lag.
  - L{ClosedLoop}: C{inFlight} calls waiting at all times, a new one sent
    when one is answered, for C{seconds} (and at most C{maxCount} calls):
    the answered calls over the time taken is the path's peak rate.
"""

import math
from typing import Callable, Optional

import attrs
from twisted.internet.defer import Deferred, maybeDeferred

__all__ = ["Sample", "OpenLoop", "ClosedLoop", "percentile", "summarise"]


@attrs.define
class Sample:
    """
    One call.

    @ivar due: when it should have been sent (open loop), else its send time.
    @ivar sent: when it was sent.
    @ivar answered: when its answer came, or None.
    @ivar error: what it failed with (an error code, C{"NO_ANSWER"} when
        the load ended first), or None.
    """

    due: float
    sent: float
    answered: Optional[float] = None
    error: Optional[str] = None


def _code(failure) -> str:
    """
    The error code a failed call carries (a L{pz.errors.ZoneError}'s), or
    the exception's type name.
    """
    return getattr(failure.value, "code", None) or type(failure.value).__name__


class _Load:
    """
    What both loads share: sending one call and recording its outcome, and
    ending once every call is settled or the time is up.
    """

    def __init__(self, clock, issue: Callable[[], Deferred], timeout: float) -> None:
        self.clock = clock
        self.issue = issue
        self.timeout = timeout
        self.samples = []
        self.waiting = {}
        self.done = Deferred()
        self.open = 0
        self._stopTimer = None
        self._finished = False

    def _send(self, due: float) -> None:
        sample = Sample(due, self.clock.seconds())
        self.samples.append(sample)
        self.open += 1
        d = maybeDeferred(self.issue)
        self.waiting[id(sample)] = d
        d.addCallbacks(self._answered, self._failed, callbackArgs=(sample,),
                       errbackArgs=(sample,))

    def _answered(self, result, sample: Sample) -> None:
        self.waiting.pop(id(sample), None)
        if not self._finished:
            sample.answered = self.clock.seconds()
            self.open -= 1
            self.settled()

    def _failed(self, failure, sample: Sample) -> None:
        self.waiting.pop(id(sample), None)
        if not self._finished:
            sample.error = _code(failure)
            self.open -= 1
            self.settled()

    def settled(self) -> None:
        """
        A call was answered or failed.
        """

    def _stopAfter(self, seconds: float) -> None:
        self._stopTimer = self.clock.callLater(seconds, self.finish)

    def finish(self) -> None:
        """
        End the load: every call still waiting counts as C{NO_ANSWER} and
        is cancelled; C{done} fires with the samples.
        """
        if self._finished:
            return
        self._finished = True
        if self._stopTimer is not None and self._stopTimer.active():
            self._stopTimer.cancel()
        self.stopSending()
        for sample in self.samples:
            if sample.answered is None and sample.error is None:
                sample.error = "NO_ANSWER"
        waiting, self.waiting = list(self.waiting.values()), {}
        for d in waiting:
            d.cancel()
        self.done.callback(self.samples)

    def stopSending(self) -> None:
        """
        Send nothing more.
        """


class OpenLoop(_Load):
    """
    C{count} calls at C{rate} a second, each due at its own time.
    """

    def __init__(self, clock, issue, rate: float, count: int, timeout: float) -> None:
        if rate <= 0 or count < 1 or timeout <= 0:
            raise ValueError("rate, count and timeout must be positive")
        super().__init__(clock, issue, timeout)
        self.rate = rate
        self.count = count
        self._tickTimer = None

    def run(self) -> Deferred:
        """
        Start; fires with the L{Sample}s once every call is settled, or
        C{count / rate + timeout} seconds after the start.
        """
        self.start = self.clock.seconds()
        self._stopAfter(self.count / self.rate + self.timeout)
        self._tick()
        return self.done

    def _tick(self, timed: bool = False) -> None:
        """
        Send every call due by now.  The timer fires when the next call is
        due, so a timed tick sends at least that one, whatever rounding
        makes of C{(now - start) * rate}.
        """
        self._tickTimer = None
        now = self.clock.seconds()
        due = int((now - self.start) * self.rate + 1e-6) + 1
        if timed:
            due = max(due, len(self.samples) + 1)
        due = min(self.count, due)
        while len(self.samples) < due and not self._finished:
            self._send(self.start + len(self.samples) / self.rate)
        if self._finished:
            return
        if len(self.samples) < self.count:
            nextDue = self.start + len(self.samples) / self.rate
            self._tickTimer = self.clock.callLater(max(0.0, nextDue - self.clock.seconds()),
                                                   self._tick, True)
        elif not self.open:
            self.finish()

    def settled(self) -> None:
        if len(self.samples) == self.count and not self.open:
            self.finish()

    def stopSending(self) -> None:
        if self._tickTimer is not None and self._tickTimer.active():
            self._tickTimer.cancel()
        self._tickTimer = None


class ClosedLoop(_Load):
    """
    C{inFlight} calls waiting at all times for C{seconds}.
    """

    def __init__(self, clock, issue, inFlight: int, seconds: float, maxCount: int,
                 timeout: float) -> None:
        if inFlight < 1 or seconds <= 0 or maxCount < 1 or timeout <= 0:
            raise ValueError("inFlight, seconds, maxCount and timeout must be positive")
        super().__init__(clock, issue, timeout)
        self.inFlight = inFlight
        self.seconds = seconds
        self.maxCount = maxCount
        self._owed = 0
        self._pumping = False

    def run(self) -> Deferred:
        """
        Start; fires with the L{Sample}s once the time is up and the calls
        in flight are settled, or C{seconds + timeout} after the start.
        """
        self.start = self.clock.seconds()
        self.deadline = self.start + self.seconds
        self._stopAfter(self.seconds + self.timeout)
        self._owed = self.inFlight
        self._pump()
        return self.done

    def settled(self) -> None:
        self._owed += 1
        self._pump()

    def _pump(self) -> None:
        """
        Send one call for each settled one while there is time and count
        left; a call that fails at once (a full queue of calls) settles
        inside L{_send}, and is replaced by this loop, not by recursion.
        """
        if self._pumping:
            return
        self._pumping = True
        try:
            while self._owed and not self._finished:
                self._owed -= 1
                if self.clock.seconds() < self.deadline and len(self.samples) < self.maxCount:
                    self._send(self.clock.seconds())
            if not self._finished and not self.open:
                self.finish()
        finally:
            self._pumping = False


def percentile(values: list, p: float) -> Optional[float]:
    """
    The nearest-rank C{p}th percentile of C{values}, None for none.
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100.0 * len(ordered)) - 1)]


def summarise(samples: list) -> dict:
    """
    The figures of one load: calls, answered, errors by code, round trip
    p50/p99/max in ms, the send lag p99/max in ms, the rate the calls went
    out at and the rate the answers came back at.
    """
    rtts = [1000.0 * (s.answered - s.sent) for s in samples if s.answered is not None]
    lags = [1000.0 * max(0.0, s.sent - s.due) for s in samples]
    errors = {}
    for s in samples:
        if s.error is not None:
            errors[s.error] = errors.get(s.error, 0) + 1
    sent = [s.sent for s in samples]
    answered = [s.answered for s in samples if s.answered is not None]
    sendRate = ((len(sent) - 1) / (max(sent) - min(sent))
                if len(sent) > 1 and max(sent) > min(sent) else None)
    answerRate = (len(answered) / (max(answered) - min(sent))
                  if answered and max(answered) > min(sent) else None)
    return {
        "calls": len(samples),
        "answered": len(rtts),
        "errors": errors,
        "p50_ms": percentile(rtts, 50),
        "p99_ms": percentile(rtts, 99),
        "max_ms": max(rtts) if rtts else None,
        "lag_p99_ms": percentile(lags, 99),
        "lag_max_ms": max(lags) if lags else None,
        "send_rate": sendRate,
        "answer_rate": answerRate,
    }
