# -*- test-case-name: tests.pzh.test_enrolment -*-
"""
Enrolment of new devices with pairing codes (Virgin mode, hub side).

A pairing code's token is a one-time secret: the hub keeps only its SHA-256,
refuses it once used or expired, and counts failed attempts per source
address and for the whole zone so that guessing is throttled.  The token
names the device, so the person who asked for the code decides what the
device is called.

A valid token always gets through, whatever the counters say: it is 192
random bits, so the limits are not what keeps guessers out.  They bound
what wrong guesses cost the hub and how much any guesser learns per
minute, and they must never lock the real user out along with an attacker
who shares (or rotates through) addresses.  A wrong guess names no code,
so guesses cannot be counted per code: the zone-wide budget stands for it,
as it bounds the guesses against every live code together.
"""

import hashlib
import hmac
import os
import base64
from collections import deque
from typing import Optional

from cryptography import x509
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.ids import validDeviceName
from pz.pairing import PairingCode
from pzh.store import DeviceRecord, IHubStore, TokenRecord

__all__ = ["Enrolment", "RateLimiter", "TokenGate", "validDeviceName", "tokenHash", "codeId", "ZONE_GUESSES"]

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
        @param lookup: the store's lookup of a L{TokenRecord} by hash.
        @param what: what the tokens are, for the log and the refusal.
        """
        self._clock = clock
        self._lookup = lookup
        self._limiter = limiter if limiter is not None else RateLimiter(clock)
        self._zoneLimiter = zoneLimiter if zoneLimiter is not None else RateLimiter(
            clock, limit=ZONE_GUESSES, maxSources=1)
        self._what = what

    def check(self, token: str, source: str) -> TokenRecord:
        """
        The record of C{token}, if it is known, unused and not expired.

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


class Enrolment:
    """
    Hands out pairing codes and turns a valid code plus a CSR into a device
    certificate.
    """

    _log = Logger()

    def __init__(self, zone, store: IHubStore, authority, clock,
                 codeLifetime: float = 600.0, limiter: Optional[RateLimiter] = None,
                 zoneLimiter: Optional[RateLimiter] = None, events=None) -> None:
        """
        @param events: a L{pzh.events.ZoneEvents} told of codes made and
            used and of devices enrolled, or None.
        """
        self._zone = zone
        self._store = IHubStore(store)
        self._authority = authority
        self._clock = clock
        self.codeLifetime = codeLifetime
        self._gate = TokenGate(clock, self._store.getToken, limiter, zoneLimiter)
        self._events = events

    def deviceId(self, name: str) -> str:
        """
        The id a device of this zone called C{name} gets.
        """
        return f"{self._zone.zoneId}/{name}"

    def newCode(self, deviceName: str) -> PairingCode:
        """
        Make a fresh single-use pairing code for a device to be called
        C{deviceName}.

        @raise ZoneError: C{BAD_REQUEST} for a bad name, C{NAME_TAKEN} if an
            unrevoked device already has it.
        """
        if not validDeviceName(deviceName):
            raise ZoneError(
                "BAD_REQUEST",
                "device names are 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        self._checkNameFree(deviceName)
        token = base64.urlsafe_b64encode(os.urandom(24)).decode("ascii")
        record = TokenRecord(tokenHash(token), deviceName, self._clock.seconds() + self.codeLifetime)
        self._store.addToken(record)
        self._emit("code", {"id": codeId(record.tokenHash), "device": self.deviceId(deviceName),
                            "expires": record.expires, "event": "made"})
        return PairingCode(self._zone.host, self._zone.port, token, self._zone.caFingerprint)

    def _emit(self, kind: str, data) -> None:
        if self._events is not None:
            self._events.emit(kind, data)

    def _checkNameFree(self, deviceName: str) -> None:
        existing = self._store.getDevice(self.deviceId(deviceName))
        if existing is not None and existing.revoked is None:
            raise ZoneError(
                "NAME_TAKEN",
                f"device {existing.id} is already enrolled; revoke it or choose another name",
            )

    def _checkToken(self, token: str, source: str) -> TokenRecord:
        return self._gate.check(token, source)

    def enrol(self, token: str, csrPEM: str, source: str):
        """
        Enrol a device.

        Nothing is written unless every check passes; the token is consumed
        atomically, so two devices racing with one code get one certificate.

        @param source: the address the request came from (for rate limits).
        @return: C{(DeviceRecord, certificate)}.
        @raise ZoneError: with the refusal code.
        """
        record = self._checkToken(token, source)
        try:
            csr = x509.load_pem_x509_csr(csrPEM.encode("ascii") if isinstance(csrPEM, str) else b"")
        except (ValueError, UnicodeEncodeError):
            raise ZoneError("CERT_INVALID", "the certificate request is not a PEM CSR")
        self._checkNameFree(record.deviceName)
        deviceId = self.deviceId(record.deviceName)
        try:
            cert = self._authority.issueDevice(csr, deviceId)
        except pki.CertificateError as e:
            raise ZoneError("CERT_INVALID", e.message)
        if not self._store.useToken(record.tokenHash, self._clock.seconds()):
            raise ZoneError("TOKEN_USED")
        device = DeviceRecord(
            id=deviceId,
            name=record.deviceName,
            serial=cert.serial_number,
            enrolled=self._clock.seconds(),
            notAfter=cert.not_valid_after_utc.timestamp(),
            address=source,
        )
        self._store.putDevice(device)
        self._emit("code", {"id": codeId(record.tokenHash), "device": deviceId,
                            "expires": record.expires, "event": "used"})
        self._emit("device", deviceId)
        self._log.info("enrolled {device} from {source}", device=deviceId, source=source)
        return device, cert
