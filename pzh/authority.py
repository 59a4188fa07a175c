# -*- test-case-name: tests.pzh.test_authority -*-
"""
The zone's certificate authority at work: issuing device certificates and
keeping the revocation list.

The CRL is rebuilt from the store whenever a serial is revoked, its number
only grows (kept in the store), and it is written to C{crl.pem} before
anyone is told about it, so a restart never serves an older list.  A serial
leaves the CRL once its certificate has expired (RFC 5280, section 3.3):
nothing accepts an expired certificate anyway, and the list then holds only
what can still be presented.

Renewal is what could make the list grow without end, so it is bounded: a
device renews only in the last third of its newest certificate's life (or,
expired, within the grace period), holds at most L{MAX_LIVE_CERTIFICATES}
unexpired certificates, and a renewal revokes every live certificate of the
device but the new one, the one that was current and the one that asked
(the device holds one of those two, depending on whether it got the
answer; a lost answer must not lock it out).
"""

import os
from datetime import datetime, timedelta, timezone

import attrs
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pzh.store import IHubStore

__all__ = ["ZoneAuthority", "MAX_LIVE_CERTIFICATES"]

_CRL_NUMBER = "crl_number"

#: Unexpired certificates (revoked or not) a device may hold: the current
#: one, the one it renewed from, and one more for a renewal whose answer
#: was lost.  A renewal that would make more is refused until one expires.
MAX_LIVE_CERTIFICATES = 3


class ZoneAuthority:
    """
    Issues certificates and owns the CRL.

    @ivar crl: the current signed CRL.
    """

    _log = Logger()

    def __init__(self, zone, store: IHubStore, clock, certLifetime: timedelta,
                 crlLifetime: timedelta = timedelta(days=7),
                 gracePeriod: timedelta = timedelta(days=30)) -> None:
        self._zone = zone
        self._store = IHubStore(store)
        self._clock = clock
        self.certLifetime = certLifetime
        self.crlLifetime = crlLifetime
        self.gracePeriod = gracePeriod
        self.crl = self._loadCRL()

    def now(self) -> datetime:
        """
        The clock's time as an aware datetime.
        """
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def _loadCRL(self):
        path = self._zone.path("crl.pem")
        number = int(self._store.getSetting(_CRL_NUMBER) or 0)
        if os.path.exists(path):
            crl = pki.readCRL(path)
            if pki.crlNumber(crl) == number and number > 0 and self._listsAll(crl):
                return crl
            if pki.crlNumber(crl) > number:
                self._store.putSetting(_CRL_NUMBER, str(pki.crlNumber(crl)))
        return self.publishCRL()

    def publishCRL(self):
        """
        Sign a new CRL over every revoked serial, with the next number,
        persist it, and return it.
        """
        number = int(self._store.getSetting(_CRL_NUMBER) or 0) + 1
        revoked = [
            (serial, datetime.fromtimestamp(when, timezone.utc))
            for serial, when in self._store.activeRevocations(self._clock.seconds())
        ]
        crl = pki.buildCRL(
            self._zone.caKey, self._zone.caCert, revoked, number, self.now(),
            self.crlLifetime,
        )
        pki.writePEM(self._zone.path("crl.pem"), pki.crlPEM(crl))
        self._store.putSetting(_CRL_NUMBER, str(number))
        self.crl = crl
        self._log.info("published CRL number {number} listing {count} serials",
                       number=number, count=len(revoked))
        return crl

    def _listsAll(self, crl) -> bool:
        """
        Whether C{crl} lists every serial the store has revoked (it may not,
        if writing it failed after the store recorded a revocation).
        """
        return all(pki.isRevoked(crl, serial)
                   for serial, _ in self._store.activeRevocations(self._clock.seconds()))

    @property
    def crlPEM(self) -> bytes:
        """
        The current CRL in PEM.
        """
        return pki.crlPEM(self.crl)

    def issueDevice(self, csr, deviceId: str):
        """
        Sign a device certificate for C{deviceId} over the key in C{csr}.

        @raise pki.CertificateError: if the request is unacceptable.
        """
        serial = int.from_bytes(os.urandom(16), "big") >> 1
        cert = pki.issueDeviceCertificate(
            self._zone.caKey, self._zone.caCert, csr, deviceId, serial, self.now(),
            self.certLifetime,
        )
        self._store.addCertificate(deviceId, serial, cert.not_valid_after_utc.timestamp())
        return cert

    def crlDue(self) -> bool:
        """
        Whether the CRL has used half its life and should be re-signed
        before devices start to see it as stale.
        """
        remaining = self.crl.next_update_utc - self.now()
        return remaining < self.crlLifetime / 2

    def revoke(self, deviceId: str) -> list:
        """
        Revoke every still-valid certificate of C{deviceId} and publish the
        new CRL (persisted before this returns).

        @return: the serials newly revoked (empty if it already was).
        @raise ZoneError: C{UNKNOWN_DESTINATION} for a device never enrolled.
        """
        if self._store.getDevice(deviceId) is None:
            raise ZoneError("UNKNOWN_DESTINATION", f"no device {deviceId!r} in this zone")
        serials = self._store.revokeDevice(deviceId, self._clock.seconds())
        if serials or not self._listsAll(self.crl):
            self.publishCRL()
            self._log.info("revoked {device}: serials {serials}", device=deviceId,
                           serials=[format(s, "x") for s in serials])
        return serials

    def renewalIdentity(self, cert) -> str:
        """
        The device id an expired certificate may still renew for: one of
        this zone's, not revoked, expired less than the grace period ago.

        @raise pki.CertificateError: C{CERT_EXPIRED} telling the user to pair
            again once the grace period is over, or the code that refuses it.
        """
        notAfter = cert.not_valid_after_utc
        # Everything but the date is checked as of the last moment the
        # certificate was valid: CA signature, usage, and today's CRL.
        deviceId = pki.verifyPeerCertificate(
            cert, self._zone.caCert, self.crl, notAfter - timedelta(seconds=1))
        # An older certificate that expired before its device was revoked is
        # not on the CRL; the device record still says no.
        device = self._store.getDevice(deviceId)
        if device is not None and device.revoked is not None:
            raise pki.CertificateError("CERT_REVOKED", "This device has been revoked.")
        # A superseded certificate left the CRL when it expired; the store
        # still remembers it was revoked.
        if self._store.serialRevoked(cert.serial_number):
            raise pki.CertificateError("CERT_REVOKED", "this certificate has been revoked")
        if self.now() - notAfter > self.gracePeriod:
            raise pki.CertificateError(
                "CERT_EXPIRED",
                f"this device's certificate expired on {notAfter:%Y-%m-%d} and the "
                f"{self.gracePeriod.days}-day grace period is over: pair the device again",
            )
        return deviceId

    def renewalOpens(self, notBefore: datetime, notAfter: datetime) -> datetime:
        """
        When a certificate valid from C{notBefore} to C{notAfter} may first
        renew: once two thirds of its life have passed, less the clock
        skew allowed between hub and device (the device aims at the same
        moment, measured from its issue).
        """
        return notAfter - (notAfter - notBefore) / 3 - pki.CLOCK_SKEW

    def _renewalWindow(self, device, presented, grace: bool) -> datetime:
        """
        When C{device} may renew over a link that presented C{presented}.

        An expired certificate admitted within the grace period (C{grace})
        may renew at once.  Otherwise the window is the later of the presented
        certificate's and the device's current one's: a device that has
        renewed once cannot renew again over its old link, nor with its
        old certificate, until its newest certificate is due.  (A device
        that lost the answer keeps its old certificate until that expires,
        then renews within the grace period.)
        """
        if grace and presented is not None:
            return presented.not_valid_after_utc
        currentAfter = datetime.fromtimestamp(device.notAfter, timezone.utc)
        if presented is not None and presented.serial_number == device.serial:
            return self.renewalOpens(presented.not_valid_before_utc, currentAfter)
        # The store keeps the current certificate's end, not its start: it
        # was issued for this hub's lifetime, back-dated by the clock skew.
        opens = self.renewalOpens(currentAfter - self.certLifetime - pki.CLOCK_SKEW, currentAfter)
        if presented is not None:
            opens = max(opens, self.renewalOpens(presented.not_valid_before_utc,
                                                 presented.not_valid_after_utc))
        return opens

    def renew(self, deviceId: str, csr, presented=None, grace: bool = False):
        """
        Issue a new certificate to an enrolled, unrevoked device (over its
        authenticated link) and make it the device's current one; revoke
        every other live certificate of the device but C{presented} and the
        one that was current.

        @param presented: the certificate the device's link presented;
            without one, the device's current certificate is assumed.
        @param grace: whether the link was admitted only to renew an
            expired C{presented} certificate (see L{renewalIdentity}).
        @return: C{(certificate, superseded serials)}; when some were
            superseded, the new CRL is already published.
        @raise ZoneError: C{CERT_REVOKED} for a revoked device,
            C{RENEWAL_NOT_DUE} before the renewal window, C{RATE_LIMITED}
            when the device holds L{MAX_LIVE_CERTIFICATES} unexpired
            certificates, or C{CERT_INVALID} for a bad request.
        """
        device = self._store.getDevice(deviceId)
        if device is None or device.revoked is not None:
            raise ZoneError("CERT_REVOKED", f"{deviceId} has been revoked and cannot renew")
        now = self.now()
        opens = self._renewalWindow(device, presented, grace)
        if now < opens:
            raise ZoneError("RENEWAL_NOT_DUE", f"this certificate can be renewed from "
                            f"{opens:%Y-%m-%d %H:%M} UTC, in the last third of its life")
        live = self._store.liveCertificates(deviceId, self._clock.seconds())
        if len(live) >= MAX_LIVE_CERTIFICATES:
            until = datetime.fromtimestamp(live[0][1], timezone.utc)
            raise ZoneError("RATE_LIMITED", f"{deviceId} already holds {len(live)} unexpired "
                            f"certificates; it can renew again after {until:%Y-%m-%d %H:%M} UTC")
        try:
            cert = self.issueDevice(csr, deviceId)
        except pki.CertificateError as e:
            raise ZoneError("CERT_INVALID", e.message)
        self._store.putDevice(attrs.evolve(
            device, serial=cert.serial_number, notAfter=cert.not_valid_after_utc.timestamp()))
        # The device holds the certificate it asked with, or the current
        # one if it got that answer: both stay valid.
        keep = {cert.serial_number, device.serial}
        if presented is not None:
            keep.add(presented.serial_number)
        superseded = [serial for serial, _ in live if serial not in keep]
        for serial in superseded:
            self._store.addRevocation(deviceId, serial, self._clock.seconds())
        if superseded:
            self.publishCRL()
        self._log.info("renewed {device}: new serial {serial}, superseded {superseded}",
                       device=deviceId, serial=format(cert.serial_number, "x"),
                       superseded=[format(s, "x") for s in superseded])
        return cert, superseded

    @property
    def crl(self):
        """
        The current signed CRL.
        """
        return self._crl

    @crl.setter
    def crl(self, crl) -> None:
        # Verified once here, so that each connection only looks its serial
        # up instead of checking the CRL's signature again.
        pki.verifyCRL(crl, self._zone.caCert)
        self._crl = crl
        self._revoked = frozenset(entry.serial_number for entry in crl)

    def verifyDevice(self, cert) -> str:
        """
        Check a presented device certificate against the zone CA and the
        current CRL.

        @return: the device id it proves.
        @raise pki.CertificateError: with the refusal code.
        """
        deviceId = pki.verifyPeerCertificate(cert, self._zone.caCert, None, self.now())
        if cert.serial_number in self._revoked:
            raise pki.CertificateError("CERT_REVOKED", "this device's certificate has been revoked")
        return deviceId
