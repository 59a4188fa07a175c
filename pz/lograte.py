# -*- test-case-name: tests.pz.test_lograte -*-
"""
Log lines that a peer can cause, rate-limited.

A device that sends garbage or floods the hub makes one refusal per
message; written one line each, 20,000 messages a second became 63 MB of
log.  L{RateLimitedLog} lets the first few lines of each kind through in
every interval and counts the rest; the next line of that kind after the
interval carries how many were left out ("N similar lines suppressed"), so
the log stays bounded yet still says that something kept happening.
"""

from typing import Callable, Dict, Tuple

from twisted.logger import Logger

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """
    At most C{burst} lines of each kind per C{interval} seconds.

    A kind is the format string, so "refused a message from {peer}" from
    every peer shares one allowance: what bounds the log is the number of
    lines, whoever causes them.

    @ivar suppressed: lines left out so far, in all (for tests and stats).
    """

    def __init__(self, log: Logger, seconds: Callable[[], float],
                 burst: int = 10, interval: float = 10.0) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("burst must be at least 1 and interval positive")
        self._log = log
        self._seconds = seconds
        self._burst = burst
        self._interval = interval
        # kind -> (start of its current interval, lines written in it,
        # lines left out since the last one written)
        self._kinds: Dict[str, Tuple[float, int, int]] = {}
        self.suppressed = 0

    def info(self, format: str, **kwargs) -> bool:
        """
        Log C{format} at info level unless this kind of line has used its
        allowance for the current interval.

        @return: whether the line was written.
        """
        now = self._seconds()
        start, written, skipped = self._kinds.get(format, (now, 0, 0))
        if now - start >= self._interval:
            start, written = now, 0
        if written >= self._burst:
            self._kinds[format] = (start, written, skipped + 1)
            self.suppressed += 1
            return False
        if skipped:
            self._log.info(format + " ({suppressed} similar lines suppressed)",
                           suppressed=skipped, **kwargs)
        else:
            self._log.info(format, **kwargs)
        if len(self._kinds) > 256:
            # Kinds are format strings from the code, a short list; this
            # only guards against a caller that builds them from input.
            self._kinds.clear()
        self._kinds[format] = (start, written + 1, 0)
        return True
