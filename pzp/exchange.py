# -*- test-case-name: tests.pzp.test_exchange -*-
"""
The peer-to-peer certificate exchange's tickets: what lets a device of a
zone this device does not know onto its peer port, once.

The webinos PZP specification has devices of zones that are not friends
"go through the peer-to-peer certificate exchange process", and its
Synchronisation specification says that what such an offline exchange
brings "should not be exchanged as this is one time connection and
certificate from this session is not valid for the subsequent
connection".  So a ticket lives only in this proxy's memory: issued by
C{pzctl peer-invite}, it is a 128-bit random token of which only the
SHA-256 is kept, valid for a few minutes, checked in constant time by the
same L{pz.tokens.TokenGate} as pairing codes (wrong guesses rate-limited
per address and in total), and used up by the one link that presents it.
Nothing of it is written anywhere: a proxy that restarts has none.
"""

import secrets
from typing import Optional

import attrs

from pz.errors import ZoneError
from pz.tokens import RateLimiter, TokenGate, tokenHash

__all__ = ["ExchangeTickets", "TICKET_LIFETIME"]

_REFUSALS = {
    "TOKEN_INVALID": "no such peer-exchange code",
    "TOKEN_USED": "this peer-exchange code has been used already; ask for a new one",
    "TOKEN_EXPIRED": "this peer-exchange code has expired; ask for a new one",
}

#: Seconds a peer-exchange code stays valid.
TICKET_LIFETIME = 600.0


@attrs.define
class _Ticket:
    """
    One ticket, as the token gate reads it.
    """

    tokenHash: str
    expires: float
    used: Optional[float] = None


class ExchangeTickets:
    """
    The outstanding peer-exchange tickets of one proxy, in memory only.
    """

    def __init__(self, clock, lifetime: float = TICKET_LIFETIME,
                 limiter: Optional[RateLimiter] = None,
                 totalLimiter: Optional[RateLimiter] = None) -> None:
        """
        @param limiter: counts wrong tokens per source address.
        @param totalLimiter: counts wrong tokens from every address.
        """
        if lifetime <= 0:
            raise ValueError("a ticket's lifetime must be positive")
        self._clock = clock
        self._lifetime = lifetime
        self._tickets: dict = {}
        self._gate = TokenGate(clock, self._tickets.get, limiter, totalLimiter,
                               what="peer-exchange codes")

    def issue(self) -> tuple:
        """
        A new ticket.

        @return: C{(token, expires)}: the token to put in the code (it is
            not kept), and when it expires (seconds of the clock).
        """
        self._forgetOld()
        token = secrets.token_urlsafe(16)
        expires = self._clock.seconds() + self._lifetime
        self._tickets[tokenHash(token)] = _Ticket(tokenHash(token), expires)
        return token, expires

    def outstanding(self) -> bool:
        """
        Whether some ticket is unused and unexpired: only then does the
        peer server let a device of an unknown zone through its handshake.
        """
        now = self._clock.seconds()
        return any(t.used is None and t.expires > now for t in self._tickets.values())

    def redeem(self, token: str, source: str) -> None:
        """
        Use up the ticket of C{token}, presented from address C{source}.
        A wrong, used or expired token consumes nothing.

        @raise ZoneError: C{TOKEN_INVALID}, C{TOKEN_USED},
            C{TOKEN_EXPIRED} or C{RATE_LIMITED}.
        """
        try:
            ticket = self._gate.check(token, source)
        except ZoneError as e:
            raise ZoneError(e.code, _REFUSALS.get(e.code, e.message))
        ticket.used = self._clock.seconds()

    def _forgetOld(self) -> None:
        """
        Drop tickets expired for a lifetime: until then a used or expired
        token is still answered as such, not as unknown.
        """
        cutoff = self._clock.seconds() - self._lifetime
        for key in [k for k, t in self._tickets.items() if t.expires <= cutoff]:
            del self._tickets[key]
