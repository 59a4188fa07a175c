# -*- test-case-name: tests.pzh.test_protocol -*-
"""
One TLS connection to the hub, from an enrolled device or from a device
that is enrolling.

The TLS layer asks every client for a certificate but lets the handshake
finish whatever it presents; this protocol then decides, in
C{handshakeCompleted}, with a stable error code the client can show:

 - a certificate of this zone, valid and not revoked: the device is
   registered and its messages are routed;
 - no certificate: only enrolment is possible (the hub first sends its CA
   certificate in a C{hello}, so the device can check it against the
   fingerprint in its pairing code before it sends the token);
 - anything else: an error (C{CERT_UNTRUSTED}, C{CERT_EXPIRED},
   C{CERT_REVOKED} with the signed CRL, ...) and the connection closes.
"""

from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from pz import pki
from pz.crlparts import crlUpdates, fitsInline
from pz.errors import ZoneError
from pz.tls import peerCertificate
from pz.wire import Envelope, FrameProtocol, errorPayload
from pzh.registry import linkFingerprint

__all__ = ["HubProtocol", "HubFactory"]


@implementer(IHandshakeListener)
class HubProtocol(FrameProtocol, TimeoutMixin):
    """
    The hub's end of one device link.

    @ivar deviceId: the id the client's certificate proves, once checked.
    @ivar enrolling: True for a client that presented no certificate.
    """

    _log = Logger()
    deviceId = None
    renewingId = None
    serial = None
    enrolling = False
    replaced = False
    address = None
    fingerprint = None
    lastSeen = None
    certificate = None
    crlSent = None

    def __init__(self, hub) -> None:
        self.hub = hub
        self.callLater = hub.clock.callLater
        self.localId = hub.zone.zoneId
        self.MAX_LENGTH = hub.maxFrame

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.address = f"{peer.host}:{peer.port}"
        self.setTimeout(self.hub.handshakeTimeout)

    def handshakeCompleted(self) -> None:
        cert = peerCertificate(self.transport)
        if cert is None:
            self.enrolling = True
            self.sendMessage("", {
                "status": "hello",
                "zone": self.hub.zone.zoneId,
                "ca": self.hub.zone.caPEM.decode("ascii"),
            })
            return
        try:
            deviceId = self.hub.authority.verifyDevice(cert)
            if not deviceId.startswith(self.hub.zone.zoneId + "/"):
                raise pki.CertificateError("CERT_INVALID", "the certificate is not a device's")
        except pki.CertificateError as e:
            if e.code == "CERT_EXPIRED":
                self._offerRenewal(cert)
            else:
                self._refuseCertificate(e)
            return
        self.serial = cert.serial_number
        self.certificate = cert
        self.deviceId = self.peerId = deviceId
        self.fingerprint = linkFingerprint(cert)
        self.lastSeen = self.hub.clock.seconds()
        self.setTimeout(self.hub.idleTimeout)
        # The CRL's number, so that a device that was away (or whose hub
        # restarted) during a revocation asks for the list it missed.
        self.sendMessage(deviceId, {"status": "registered", "device": deviceId,
                                    "zone": self.hub.zone.zoneId,
                                    "crlNumber": pki.crlNumber(self.hub.authority.crl)})
        self.hub.registry.register(self)

    def _offerRenewal(self, cert) -> None:
        """
        An expired certificate of this zone, not revoked, within the grace
        period may still renew over this link, and do nothing else.
        """
        try:
            deviceId = self.hub.authority.renewalIdentity(cert)
        except pki.CertificateError as e:
            self._refuseCertificate(e)
            return
        self.renewingId = self.peerId = deviceId
        self.certificate = cert
        self._log.info("{device} presented an expired certificate; offering renewal",
                       device=deviceId)
        self.sendMessage(deviceId, {"status": "renewRequired", "device": deviceId})

    def _refuseCertificate(self, error) -> None:
        self._log.info("refused a certificate from {address}: {code} {message}",
                       address=self.address, code=error.code, message=error.message)
        payload = errorPayload(ZoneError(error.code, error.message))
        if error.code == "CERT_REVOKED":
            self._attachCRL(payload)
        self.sendMessage("", payload)
        self.transport.loseConnection()

    def _attachCRL(self, payload: dict) -> None:
        """
        Put the CRL in C{payload} if it fits there; else send it first, in
        C{crlUpdate} pieces, which the device joins before it reads the
        message that needs it.
        """
        pem = self.hub.authority.crlPEM
        if fitsInline(pem):
            payload["crl"] = pem.decode("ascii")
            return
        for piece in crlUpdates(pem):
            self.sendMessage(self.peerId, piece)

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        if self.deviceId is not None:
            self.lastSeen = self.hub.clock.seconds()
        super().stringReceived(data)

    def envelopeReceived(self, envelope: Envelope) -> None:
        if self.deviceId is not None:
            self.hub.router.dispatch(self, envelope)
        elif self.enrolling and envelope.name == "enrol":
            self._enrol(envelope)
        elif self.renewingId is not None and envelope.name == "renew":
            try:
                self.hub.router.renew(self, envelope, self.renewingId)
            except ZoneError as e:
                self.sendError(e, envelope.id)
            self.transport.loseConnection()
        elif self.renewingId is not None:
            self.sendError(ZoneError(
                "CERT_EXPIRED", "this certificate has expired: renew it first"), envelope.id)
            self.transport.loseConnection()
        else:
            self.sendError(ZoneError(
                "CERT_REQUIRED", "connect with this zone's device certificate, or enrol first"
            ), envelope.id)
            self.transport.loseConnection()

    def _enrol(self, envelope: Envelope) -> None:
        payload = envelope.payload
        try:
            device, cert = self.hub.enrolment.enrol(
                payload.get("token"), payload.get("csr"), self.transport.getPeer().host
            )
        except ZoneError as e:
            if e.code != "RATE_LIMITED":
                # Refusals past the budget were announced once by the
                # enrolment; a line each would let guessers fill the log.
                self._log.info("enrolment from {address} refused: {code}",
                               address=self.address, code=e.code)
            self.sendError(e, envelope.id)
            self.transport.loseConnection()
            return
        answer = {
            "status": "enrolled",
            "ref": envelope.id,
            "device": device.id,
            "zone": self.hub.zone.zoneId,
            "certificate": pki.certificatePEM(cert).decode("ascii"),
            "ca": self.hub.zone.caPEM.decode("ascii"),
            "hub": f"{self.hub.zone.host}:{self.hub.zone.port}",
        }
        self._attachCRL(answer)
        self.sendMessage(device.id, answer)
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        self._log.info("link from {who} went silent; closing it",
                       who=self.deviceId or self.address)
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.setTimeout(None)
        if self.deviceId is not None:
            self.hub.registry.unregister(self)


class HubFactory(Factory):
    """
    Builds L{HubProtocol}s that share one hub.
    """

    def __init__(self, hub) -> None:
        self.hub = hub

    def buildProtocol(self, addr):
        return HubProtocol(self.hub)
