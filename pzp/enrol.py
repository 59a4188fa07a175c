# -*- test-case-name: tests.pzp.test_enrol -*-
"""
The device side of enrolment (Virgin mode's connection).

The device does not know the zone CA yet, only its fingerprint from the
pairing code.  So TLS runs without chain verification, the hub's first
frame (C{hello}) carries the CA certificate, and the device sends its token
only after checking that this CA has the pinned fingerprint, that it issued
the certificate the hub just used in the handshake, and that the
certificate names the host in the code.  An impostor hub learns nothing.
"""

from datetime import datetime, timezone

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from pz import pki
from pz.crlparts import CRLAssembler
from pz.dispatch import MessageTable
from pz.errors import ZoneError
from pz.link import ClockOwner, Link
from pz.pairing import PairingCode
from pz.tls import peerCertificate, verifyHubCertificate
from pz.wire import Envelope

__all__ = ["EnrolmentProtocol", "EnrolmentResult"]


@attrs.frozen
class EnrolmentResult:
    """
    What a successful enrolment returns, checked.
    """

    zoneId: str
    deviceId: str
    hubHost: str
    hubPort: int
    cert: object
    caCert: object
    crl: object


def _unexpected(name: str) -> ZoneError:
    return ZoneError("UNKNOWN_MESSAGE", f"unexpected {name!r} during enrolment")


class EnrolmentProtocol(Link):
    """
    One enrolment attempt.  C{result} fires with an L{EnrolmentResult} or
    fails with a L{ZoneError}.

    The hub's certificate is checked once its C{hello} brought the CA, not
    when the handshake completes.
    """

    _log = Logger()
    messages = MessageTable(unknown=_unexpected)

    def __init__(self, code: PairingCode, key, deviceName: str, clock,
                 timeout: float = 30.0) -> None:
        super().__init__(ClockOwner(clock))
        self._code = code
        self._key = key
        self._deviceName = deviceName
        self._clock = clock
        self._timeout = timeout
        self._caCert = None
        self._zoneId = None
        self._requestId = None
        self._crlParts = CRLAssembler()
        self._crl = None
        self.result: Deferred = Deferred()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def connectionMade(self) -> None:
        self.setTimeout(self._timeout)

    def _finish(self, outcome) -> None:
        if not self.result.called:
            if isinstance(outcome, ZoneError):
                self.result.errback(outcome)
            else:
                self.result.callback(outcome)
        self.setTimeout(None)
        self.transport.loseConnection()

    @messages.handler("error")
    def _error(self, envelope: Envelope) -> None:
        payload = envelope.payload
        code = payload.get("code")
        try:
            error = ZoneError(code, str(payload.get("message", "")))
        except (ValueError, TypeError):
            error = ZoneError("INTERNAL", f"the hub answered with unknown code {code!r}")
        self._finish(error)

    @messages.handler("crlUpdate")
    def _crlUpdate(self, envelope: Envelope) -> None:
        # The zone's CRL, sent ahead of an answer it is too large for.
        if self._requestId is None:
            raise _unexpected(envelope.name)
        self._crl = self._crlParts.add(envelope.payload) or self._crl

    @messages.handler("hello")
    def _helloReceived(self, envelope: Envelope) -> None:
        if self._caCert is not None:
            raise _unexpected(envelope.name)
        self._hello(envelope.payload)

    @messages.handler("enrolled")
    def _enrolledReceived(self, envelope: Envelope) -> None:
        if self._requestId is None:
            raise _unexpected(envelope.name)
        self._enrolled(envelope.payload)

    def _hello(self, payload: dict) -> None:
        try:
            caCert = pki.loadCertificate(str(payload.get("ca", "")).encode("ascii"))
        except (pki.CertificateError, ValueError, UnicodeEncodeError):
            self._finish(ZoneError("HUB_UNTRUSTED", "the hub sent no valid CA certificate"))
            return
        if pki.caFingerprint(caCert) != self._code.caFingerprint:
            self._finish(ZoneError(
                "HUB_UNTRUSTED",
                "the hub's CA fingerprint does not match the pairing code; not sending the token",
            ))
            return
        zoneId = payload.get("zone")
        if not isinstance(zoneId, str) or not zoneId:
            self._finish(ZoneError("HUB_UNTRUSTED", "the hub's hello names no zone"))
            return
        try:
            verifyHubCertificate(peerCertificate(self.transport), caCert, self._code.host,
                                 self._now(), zoneId=zoneId)
        except pki.CertificateError as e:
            self._finish(ZoneError("HUB_UNTRUSTED", e.message))
            return
        self._caCert, self._zoneId = caCert, zoneId
        csr = pki.makeCSR(self._key, f"{zoneId}/{self._deviceName}")
        self._requestId = self.sendMessage(zoneId, {
            "status": "enrol",
            "token": self._code.token,
            "name": self._deviceName,
            "csr": pki.csrPEM(csr).decode("ascii"),
        })

    def _enrolled(self, payload: dict) -> None:
        try:
            cert = pki.loadCertificate(str(payload["certificate"]).encode("ascii"))
            if "crl" in payload or self._crl is None:
                crl = pki.loadCRL(str(payload["crl"]).encode("ascii"))
            else:
                crl = self._crl
            pki.verifyCRL(crl, self._caCert)
            deviceId = pki.verifyPeerCertificate(cert, self._caCert, crl, self._now())
            if cert.public_key() != self._key.public_key():
                raise pki.CertificateError("CERT_INVALID", "the certificate is not for this key")
            host, _, port = str(payload["hub"]).rpartition(":")
            result = EnrolmentResult(self._zoneId, deviceId, host.strip("[]"), int(port),
                                     cert, self._caCert, crl)
        except pki.CertificateError as e:
            self._finish(ZoneError("CERT_INVALID", e.message))
            return
        except (KeyError, ValueError, UnicodeEncodeError):
            self._finish(ZoneError("BAD_ENVELOPE", "the hub's enrolment answer is incomplete"))
            return
        self._finish(result)

    def timeoutConnection(self) -> None:
        self._finish(ZoneError("TIMEOUT", "the hub did not complete enrolment in time"))

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        if not self.result.called:
            self.result.errback(ZoneError(
                "NOT_CONNECTED", f"the connection to the hub closed: {reason.getErrorMessage()}"
            ))
