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

import os
import base64
from typing import Optional

from cryptography import x509
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.ids import validDeviceName
from pz.pairing import PairingCode
from pz.tokens import RateLimiter, TokenGate, codeId, tokenHash
from pzh.store import DeviceRecord, IHubStore, TokenRecord

__all__ = ["Enrolment", "validDeviceName"]


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
