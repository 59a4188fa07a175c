# -*- test-case-name: tests.pzh.test_flow,tests.pzp.test_sync -*-
"""
The hub's reading rate, as a token bucket: the hub reads each device's link
at it, and a device uploading a large item paces itself by the same rule
(the rate the hub announces on registering), so neither side counts
differently from the other.
"""

from typing import Callable

__all__ = ["TokenBucket", "frameCost", "COST_UNIT"]

#: Reading a frame costs one token per started L{COST_UNIT} bytes: a rate in
#: messages a second bounds bytes a second too.
COST_UNIT = 64 * 1024


def frameCost(length: int) -> int:
    """
    The tokens a frame of C{length} bytes costs.
    """
    return max(1, -(-length // COST_UNIT))


class TokenBucket:
    """
    C{rate} tokens a second, at most C{burst} saved up.
    """

    def __init__(self, rate: float, burst: int, seconds: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._seconds = seconds
        self._tokens = float(burst)
        self._at = seconds()

    def _refill(self) -> None:
        now = self._seconds()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, cost: int = 1) -> float:
        """
        Take C{cost} tokens if the bucket holds them.

        @return: 0 if they were taken; otherwise the seconds until the
            bucket will hold them (nothing was taken).  A cost above the
            burst is taken once the bucket is full.
        """
        self._refill()
        need = min(float(cost), float(self.burst))
        if self._tokens >= need:
            self._tokens -= cost
            return 0.0
        return (need - self._tokens) / self.rate
