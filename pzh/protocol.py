# -*- test-case-name: tests.pzh.test_protocol -*-
"""
One TLS connection to the hub, from an enrolled device or from a device
that is enrolling.

The TLS layer asks every client for a certificate but lets the handshake
finish whatever it presents; this protocol then decides, once the
handshake completed (L{HubProtocol.certificateReceived}, called by the link
base L{pz.link.Link}), with a stable error code the client can show:

 - a certificate of this zone, valid and not revoked: the device is
   registered and its messages are routed;
 - no certificate: only enrolment is possible (the hub first sends its CA
   certificate in a C{hello}, so the device can check it against the
   fingerprint in its pairing code before it sends the token);
 - anything else: an error (C{CERT_UNTRUSTED}, C{CERT_EXPIRED},
   C{CERT_REVOKED} with the signed CRL, ...) and the connection closes.
"""

from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from pz import pki
from pz.crlparts import crlUpdates, fitsInline
from pz.dispatch import Anything, Integer, MessageTable, Text
from pz.errors import ZoneError
from pz.link import Link
from pz.wire import Envelope, decodeEnvelope, errorPayload
from pzh.flow import LinkTransport, Outbox, frameCost
from pzh.interfaces import IDeviceLinkOwner, IZoneLink
from pzh.registry import linkFingerprint

__all__ = ["HubProtocol", "HubFactory"]

#: Frames, and bytes, read from one link before it gives the other links a
#: turn: a burst is read over several reactor turns, not in one go.  Every
#: other device may wait one turn of a flooder's frames per hop; sixteen
#: made that 2.5 ms, four keeps it under a millisecond.
_TURN_FRAMES = 4
_TURN_BYTES = 256 * 1024
_TURN = "turn"

#: Seconds a link that is closing may take to finish its TLS close before
#: it is aborted.
_CLOSE_GRACE = 2.0


@implementer(IZoneLink)
class HubProtocol(Link):
    """
    The hub's end of one device link.

    A registered device's messages go to the hub's router (forwarded, or
    answered by the router's table); before that, a link may only enrol or
    renew, through L{HubProtocol.admission}.

    @ivar deviceId: the id the client's certificate proves, once checked.
    @ivar enrolling: True for a client that presented no certificate.
    """

    ownerInterface = IDeviceLinkOwner
    _log = Logger()
    admission = MessageTable()
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
    peerPort = 0
    #: The friend zone whose hub this link is (L{pzh.zonelink}), or None.
    friendZone = None

    _rateTimer = None
    _heldFor = None
    _resuming = None
    _turnFrames = 0
    _turnBytes = 0

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.hub = self.owner
        self.localId = hub.zone.zoneId
        self.MAX_LENGTH = hub.maxFrame
        self.refusals = hub.refusals
        self._holds: set = set()
        self._bucket = hub.newBucket()

    def makeConnection(self, transport) -> None:
        """
        Put this link's L{Outbox} between the protocol and its TLS
        transport, as the producer the transport pauses when the peer
        stops reading.
        """
        settings = self.hub.settings
        self._outbox = Outbox(transport, self.hub.queues, settings.linkQueue,
                              settings.slowTimeout, self.hub.clock, self._tooSlow)
        self._link = LinkTransport(transport, self._outbox, self.hub.clock, _CLOSE_GRACE)
        super().makeConnection(self._link)
        transport.registerProducer(self._outbox, True)

    def connectionMade(self) -> None:
        peer = self.transport.getPeer()
        self.address = f"{peer.host}:{peer.port}"
        self.setTimeout(self.hub.handshakeTimeout)

    def certificateReceived(self, cert) -> None:
        self._admit(cert)
        self.hub.metrics.handshake(
            "registered" if self.deviceId is not None else
            "zone" if self.friendZone is not None else
            "enrolling" if self.enrolling else
            "renewing" if self.renewingId is not None else "refused")

    def _admit(self, cert) -> None:
        """
        Decide what C{cert} admits: registration, enrolment, renewal, or a
        refusal.
        """
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
            elif e.code != "CERT_UNTRUSTED" or not self._admitFriendHub(cert):
                self._refuseCertificate(e)
            return
        wait = self.hub.coolOff.remaining(deviceId)
        if wait:
            self._coolingOff(deviceId, wait)
            return
        self.serial = cert.serial_number
        self.certificate = cert
        self.deviceId = self.peerId = deviceId
        self._bucket = self.hub.bucketFor(deviceId)
        self.fingerprint = linkFingerprint(cert)
        self.lastSeen = self.hub.clock.seconds()
        self.setTimeout(self.hub.idleTimeout)
        # The CRL's number, so that a device that was away (or whose hub
        # restarted) during a revocation asks for the list it missed.
        # And the rate this link is read at and its frame limit, so that a
        # device sending a large item paces and cuts it to fit instead of
        # having frames refused.
        self.sendMessage(deviceId, {"status": "registered", "device": deviceId,
                                    "zone": self.hub.zone.zoneId,
                                    "crlNumber": pki.crlNumber(self.hub.authority.crl),
                                    "rate": self._bucket.rate, "burst": self._bucket.burst,
                                    "maxFrame": self.MAX_LENGTH})
        self.hub.registry.register(self)
        self.hub.router.deliverQueued(self)

    def _admitFriendHub(self, cert) -> bool:
        """
        Whether C{cert}, not of this zone, is a friend zone's hub's: the
        link then becomes that friend's zone link (L{pzh.zonelink}).  A
        certificate of a friend's CA that is not its hub's is refused here.
        """
        try:
            return self.hub.zoneLinks.admit(self, cert)
        except pki.CertificateError as e:
            self._refuseCertificate(e)
            return True

    def _coolingOff(self, deviceId: str, wait: float) -> None:
        """
        A device dropped for breaking the rules came back before its wait
        ended: refuse it, saying when it may come back, before it costs a
        registration or gets a turn at the hub's reading; the link, unread,
        closes when the wait ends.
        """
        self.refusals.info("refused {device}: COOLING_OFF for {wait:.1f} s more",
                           device=deviceId, wait=wait)
        payload = errorPayload(ZoneError("COOLING_OFF", (
            f"this device was dropped for breaking the rules; "
            f"it may register again in {wait:.1f} s")))
        payload["retryAfter"] = round(wait, 3)
        self.sendMessage(deviceId, payload)
        self.stopReading()
        self.setTimeout(None)
        self._heldFor = deviceId
        self.hub.coolOff.hold(deviceId, self)

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

    def sendMessage(self, to: str, payload: dict, msgId=None) -> str:
        """
        Every error reply the hub sends a device goes through here, whoever
        decided it (the frame layer, the router, the enrolment, the
        certificate check): the hub's metrics count them by code.
        """
        if payload.get("status") == "error":
            self.hub.metrics.refused(payload["code"])
        return super().sendMessage(to, payload, msgId)

    def dataReceived(self, data: bytes) -> None:
        # A turn is what one read brought: a steady flow of single frames
        # is never paused, a burst is read four frames per reactor turn.
        self._turnFrames = self._turnBytes = 0
        super().dataReceived(data)

    def frameReceived(self, data: bytes) -> None:
        if self.deviceId is not None:
            self.lastSeen = self.hub.clock.seconds()
        wait = self._bucket.take(frameCost(len(data)))
        if wait:
            self._rateLimited(data, wait)
            return
        super().frameReceived(data)
        if self._outbox.congested:
            self.waitFor(self)  # its own answers are piling up
        self._turnFrames += 1
        self._turnBytes += len(data)
        if self._turnFrames >= _TURN_FRAMES or self._turnBytes >= _TURN_BYTES:
            self._turnFrames = self._turnBytes = 0
            self._yieldTurn()

    def _yieldTurn(self) -> None:
        """
        Let the other links be read before this one's next frames.
        """
        if self.transport.disconnecting:
            return
        self.hold(_TURN)
        self.release(_TURN)

    def _rateLimited(self, data: bytes, wait: float) -> None:
        """
        The device has spent its share: refuse this frame (the refusal
        counts towards the bad-frame limit) and read nothing more from it
        until its bucket holds a token again.
        """
        try:
            ref = decodeEnvelope(data).id
        except ZoneError:
            ref = None
        bucket = self._bucket
        self.refuse(ZoneError(
            "RATE_LIMITED", f"more than {bucket.rate:g} messages a second (burst {bucket.burst}); "
                            f"reading paused for {wait:.3f} s"), ref)
        if self.transport.disconnecting:
            return
        self.hold(bucket)
        self._rateTimer = self.callLater(wait, self.release, bucket)

    def hold(self, reason) -> None:
        """
        Stop reading from this link until C{reason} is released (reading
        resumes once no reason is left).
        """
        if not self._holds and not self.paused:
            self.pauseProducing()
        self._holds.add(reason)

    def release(self, reason) -> None:
        """
        Drop one reason to keep reading paused.  Reading resumes on the
        next reactor turn, never inside the write or frame that released
        it: this link may be in the middle of its own frames.
        """
        if reason not in self._holds:
            return
        self._holds.discard(reason)
        if not self._holds and (self._resuming is None or not self._resuming.active()):
            self._resuming = self.callLater(0, self._resume)

    def _resume(self) -> None:
        self._resuming = None
        if not self._holds and self.paused and not self.transport.disconnecting:
            self.resumeProducing()

    def outgoingQueued(self) -> int:
        """
        Bytes waiting in this link's outgoing queue (the socket below is
        not taking more).
        """
        return self._outbox.queued

    def whenDrained(self, waiter) -> None:
        """
        Call C{waiter.release(outbox)} once this link's queue drains.
        """
        self._outbox.waiters.add(waiter)

    def waitFor(self, target: "HubProtocol") -> None:
        """
        Read nothing more from this link until C{target}'s queue drains.
        """
        target._outbox.waiters.add(self)
        self.hold(target._outbox)

    def deliver(self, data: bytes, sender: "HubProtocol") -> None:
        """
        Forward one frame body from C{sender}; if this link's queue is now
        past its limit, C{sender} waits until it drains.

        @raise ZoneError: C{DEVICE_OFFLINE} if this link is closing.
        """
        if self.transport.disconnecting:
            raise ZoneError("DEVICE_OFFLINE", f"{self.deviceId} is disconnecting")
        self.sendString(data)
        if self._outbox.congested:
            sender.waitFor(self)

    def dropPeer(self) -> None:
        """
        Read nothing more from a peer that broke the rules: what it still
        sends is not even decrypted while the TLS close runs (which,
        unanswered, ends in an abort after the close grace).  A device
        must then wait before it may register again (L{pzh.flow.CoolOff}).
        """
        if not self.transport.disconnecting:
            if self.deviceId is not None:
                wait = self.hub.coolOff.strike(self.deviceId)
                self.refusals.info("dropped {device} for breaking the rules; "
                                   "it may not register for {wait:g} s",
                                   device=self.deviceId, wait=wait)
            self.stopReading()
            self.transport.loseConnection()

    def _tooSlow(self, why: str) -> None:
        """
        The peer does not read what is sent to it: drop it.  It would not
        read an error either, so the code goes to the log.
        """
        self.refusals.info("dropping {who}: TOO_SLOW {message} ({why})",
                           who=self.deviceId or self.address, message=ZoneError("TOO_SLOW").message,
                           why=why)
        self.transport.abortConnection()

    def replyTarget(self, envelope: Envelope) -> str:
        if self.friendZone is not None:
            return self.hub.zoneLinks.replyTarget(self, envelope)
        return super().replyTarget(envelope)

    def envelopeReceived(self, envelope: Envelope) -> None:
        if self.deviceId is not None:
            self.hub.router.dispatch(self, envelope)
            return
        if self.friendZone is not None:
            self.hub.zoneLinks.received(self, envelope)
            return
        try:
            self.admission.dispatchEnvelope(envelope)
        except ZoneError as e:
            self.sendError(e, envelope.id)
            self.transport.loseConnection()

    @admission.before
    def _admits(self, name: str, envelope: Envelope) -> None:
        """
        Before any message of a link that is not registered: a client with
        no certificate may only enrol, one with an expired certificate only
        renew; any other message closes the link.
        """
        if self.enrolling and name in ("enrol", "befriend"):
            return
        if self.renewingId is not None and name == "renew":
            return
        if self.renewingId is not None:
            raise ZoneError("CERT_EXPIRED", "this certificate has expired: renew it first")
        raise ZoneError(
            "CERT_REQUIRED", "connect with this zone's device certificate, or enrol first")

    @admission.handler("renew")
    def _renew(self, envelope: Envelope) -> None:
        self.hub.router.renew(self, envelope, self.renewingId)
        self.transport.loseConnection()

    @admission.handler("enrol", token=Anything(optional=True), csr=Anything(optional=True))
    def _enrol(self, envelope: Envelope, token, csr) -> None:
        """
        Enrol with a pairing code's token; what the token and the request
        must be is the enrolment's to check, with its own codes.
        """
        try:
            device, cert = self.hub.enrolment.enrol(token, csr, self.transport.getPeer().host)
        except ZoneError as e:
            if e.code != "RATE_LIMITED":
                # Refusals past the budget were announced once by the
                # enrolment; a line each would let guessers fill the log.
                self._log.info("enrolment from {address} refused: {code}",
                               address=self.address, code=e.code)
            raise
        self.hub.certificateIssued(device.id, cert)
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

    @admission.handler("befriend", token=Anything(optional=True), zone=Text(maxLength=512),
                       ca=Text(maxLength=16384), host=Text(maxLength=253), port=Integer())
    def _befriend(self, envelope: Envelope, token, zone, ca, host, port) -> None:
        """
        Another zone's hub accepts one of this zone's invitations
        (L{pzh.friends.Friends.befriend} checks it); it learnt this zone's
        CA from the C{hello} already.
        """
        try:
            self.hub.friends.befriend(token, zone, ca, host, port, self.transport.getPeer().host)
        except ZoneError as e:
            if e.code != "RATE_LIMITED":
                self._log.info("zone invitation from {address} refused: {code}",
                               address=self.address, code=e.code)
            raise
        self.sendMessage(zone, {"status": "befriended", "ref": envelope.id,
                                "zone": self.hub.zone.zoneId})
        self.transport.loseConnection()

    def timeoutConnection(self) -> None:
        self._log.info("link from {who} went silent; closing it",
                       who=self.deviceId or self.address)
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        for call in (self._rateTimer, self._resuming):
            if call is not None and call.active():
                call.cancel()
        self._outbox.close()
        self._link.connectionLost()
        if self._heldFor is not None:
            self.hub.coolOff.unhold(self._heldFor, self)
        if self.deviceId is not None:
            self.hub.registry.unregister(self)
        if self.friendZone is not None:
            self.hub.zoneLinks.detach(self)


class HubFactory(Factory):
    """
    Builds L{HubProtocol}s that share one hub.
    """

    def __init__(self, hub) -> None:
        self.hub = hub

    def buildProtocol(self, addr):
        return HubProtocol(self.hub)
