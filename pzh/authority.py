# -*- test-case-name: tests.pzh.test_authority -*-
"""
The zone's certificate authority at work: issuing device certificates and
keeping the revocation list.

The CRL is rebuilt from the store whenever a serial is revoked, its number
only grows (kept in the store), and it is written to C{crl.pem} before
anyone is told about it, so a restart never serves an older list.
"""

import os
from datetime import datetime, timedelta, timezone

from twisted.logger import Logger

from pz import pki
from pzh.store import IHubStore

__all__ = ["ZoneAuthority"]

_CRL_NUMBER = "crl_number"


class ZoneAuthority:
    """
    Issues certificates and owns the CRL.

    @ivar crl: the current signed CRL.
    """

    _log = Logger()

    def __init__(self, zone, store: IHubStore, clock, certLifetime: timedelta,
                 crlLifetime: timedelta = timedelta(days=7)) -> None:
        self._zone = zone
        self._store = IHubStore(store)
        self._clock = clock
        self.certLifetime = certLifetime
        self._crlLifetime = crlLifetime
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
            if pki.crlNumber(crl) == number and number > 0:
                return crl
        return self.publishCRL()

    def publishCRL(self):
        """
        Sign a new CRL over every revoked serial, with the next number,
        persist it, and return it.
        """
        number = int(self._store.getSetting(_CRL_NUMBER) or 0) + 1
        revoked = [
            (serial, datetime.fromtimestamp(when, timezone.utc))
            for serial, when in self._store.revocations()
        ]
        crl = pki.buildCRL(
            self._zone.caKey, self._zone.caCert, revoked, number, self.now(),
            self._crlLifetime,
        )
        pki.writePEM(self._zone.path("crl.pem"), pki.crlPEM(crl))
        self._store.putSetting(_CRL_NUMBER, str(number))
        self.crl = crl
        self._log.info("published CRL number {number} listing {count} serials",
                       number=number, count=len(revoked))
        return crl

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
        return pki.issueDeviceCertificate(
            self._zone.caKey, self._zone.caCert, csr, deviceId, serial, self.now(),
            self.certLifetime,
        )

    def verifyDevice(self, cert) -> str:
        """
        Check a presented device certificate against the zone CA and the
        current CRL.

        @return: the device id it proves.
        @raise pki.CertificateError: with the refusal code.
        """
        return pki.verifyPeerCertificate(cert, self._zone.caCert, self.crl, self.now())
