# -*- test-case-name: tests.pzh.test_enrolment,tests.pzp.test_exchange -*-
"""
One-time tokens checked the same way wherever they are handed out
(pairing codes and zone invitations on the hub, peer-exchange codes on a
device): kept only as their SHA-256, compared in constant time, refused
once used or expired, and wrong guesses counted per source address and in
total, so that guessing is throttled while a valid token always gets
through.
"""

import hashlib
import hmac
from collections import deque
from typing import Optional

from twisted.logger import Logger

from pz.errors import ZoneError

__all__ = ["RateLimiter", "TokenGate", "tokenHash", "codeId", "ZONE_GUESSES"]

#: Wrong pairing codes the whole zone accepts per minute, from every address
#: together, before further wrong codes are answered only C{RATE_LIMITED}.
ZONE_GUESSES = 30

_ZONE = "zone"

def tokenHash(token: str) -> str:
    """
    What the store keeps of a token.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def codeId(tokenHash: str) -> str:
    """
    The name a pairing code is listed and cancelled by: the start of its
    token's hash, which tells nothing of the token itself.
    """
    return tokenHash[:16]


class RateLimiter:
    """
    Counts failures per source within a sliding window.

    A source with C{limit} failures in the last C{window} seconds is refused
    until the oldest of them leaves the window.  At most C{maxSources}
    sources are tracked, so a flood of addresses cannot exhaust memory.
    """

    def __init__(self, clock, limit: int = 5, window: float = 60.0,
                 maxSources: int = 10000) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._maxSources = maxSources
        self._failures: dict = {}

    def _recent(self, source: str) -> deque:
        times = self._failures.get(source)
        if times is None:
            return deque()
        cutoff = self._clock.seconds() - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[source]
        return times

    def blocked(self, source: str) -> bool:
        """
        Whether C{source} is refused now.
        """
        return len(self._recent(source)) >= self._limit

    def failed(self, source: str) -> None:
        """
        Count a failure for C{source}.
        """
        if source not in self._failures and len(self._failures) >= self._maxSources:
            self._failures.pop(next(iter(self._failures)))
        self._recent(source)
        self._failures.setdefault(source, deque()).append(self._clock.seconds())


class TokenGate:
    """
    Checks one-time tokens kept as their hashes (pairing codes, zone
    invitations): a valid token is looked up before any limit is
    consulted, so that the real user always gets through; a wrong one
    counts against its source and the zone, and once either is over its
    budget the answer is only C{RATE_LIMITED}.
    """

    _log = Logger()

    def __init__(self, clock, lookup, limiter: Optional[RateLimiter] = None,
                 zoneLimiter: Optional[RateLimiter] = None, what: str = "pairing codes") -> None:
        """
        @param lookup: looks a token record up by its hash.
        @param what: what the tokens are, for the log and the refusal.
        """
        self._clock = clock
        self._lookup = lookup
        self._limiter = limiter if limiter is not None else RateLimiter(clock)
        self._zoneLimiter = zoneLimiter if zoneLimiter is not None else RateLimiter(
            clock, limit=ZONE_GUESSES, maxSources=1)
        self._what = what

    def check(self, token: str, source: str):
        """
        The record of C{token} (anything with C{tokenHash}, C{used} and
        C{expires}), if it is known, unused and not expired.

        @raise ZoneError: C{TOKEN_INVALID}, C{TOKEN_USED}, C{TOKEN_EXPIRED}
            or C{RATE_LIMITED}.
        """
        wanted = tokenHash(token if isinstance(token, str) else "")
        record = self._lookup(wanted)
        if record is None or not hmac.compare_digest(record.tokenHash, wanted):
            refusal = "TOKEN_INVALID"
        elif record.used is not None:
            refusal = "TOKEN_USED"
        elif record.expires <= self._clock.seconds():
            refusal = "TOKEN_EXPIRED"
        else:
            return record
        if self._limiter.blocked(source) or self._zoneLimiter.blocked(_ZONE):
            # Not counted: a blocked guesser cannot push its block further,
            # and what is kept per source stays within the limit.
            raise ZoneError("RATE_LIMITED", f"too many wrong {self._what} from this "
                            "address or in this zone; wait a minute and try again")
        self._limiter.failed(source)
        self._zoneLimiter.failed(_ZONE)
        if self._zoneLimiter.blocked(_ZONE):
            self._log.warn("{count} wrong {what} within a minute: answering further "
                           "wrong ones RATE_LIMITED (valid ones still work)",
                           count=ZONE_GUESSES, what=self._what)
        raise ZoneError(refusal)
