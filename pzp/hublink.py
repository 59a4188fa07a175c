# -*- test-case-name: tests.pzp.test_hublink -*-
"""
The proxy's authenticated link to its hub (Hub mode's connection).

TLS with the device certificate, trusting only the zone CA and checking the
hub's name with C{service_identity}; then the hub registers the device.
C{registered} fires once that happened, which is when the reconnecting
service hands the link to the Hub machine.  While registered, the link
pings the hub every C{keepalive} seconds and gives up on a hub that stays
silent for three of those.

The hub's C{registered} names its CRL's number; a device holding an older
list (it was away, or the hub restarted, during a revocation) asks for the
current one at once.  CRLs may come in pieces (L{pz.crlparts}), which are
joined before anything reads them.
"""

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pz import pki
from pz.crlparts import CRLAssembler, parseInline
from pz.dispatch import JSONList, MessageTable, Text
from pz.errors import ZoneError
from pz.link import zoneErrorFrom
from pz.lograte import RateLimitedLog
from pz.sync.messages import MESSAGE_NAMES_TO_DEVICE
from pz.wire import DEFAULT_MAX_FRAME, Envelope
from pzp.devicemessages import DeviceMessaging
from pzp.interfaces import IHubLinkOwner

__all__ = ["HubLinkProtocol", "RevokedError", "RenewedError", "zoneErrorFrom"]


class RevokedError(ZoneError):
    """
    The hub said C{CERT_REVOKED} over the authenticated link and sent a
    CRL as evidence.  Whether the evidence holds is for the proxy to check
    before it acts on it.

    @ivar crl: the parsed CRL, or None if what came was not a CRL.
    """

    def __init__(self, message: str, crl) -> None:
        super().__init__("CERT_REVOKED", message)
        self.crl = crl


class RenewedError(ZoneError):
    """
    The link was admitted only to renew an expired certificate; it did, and
    closes so the next connection uses the new certificate.
    """

    def __init__(self) -> None:
        super().__init__("CERT_EXPIRED", "the expired certificate was renewed; reconnecting")


def _asZoneError(failure) -> ZoneError:
    if isinstance(failure.value, ZoneError):
        return failure.value
    return ZoneError("INTERNAL", failure.getErrorMessage())


def _unexpected(name: str) -> ZoneError:
    return ZoneError("UNKNOWN_MESSAGE", f"unexpected {name!r} before registration")


class HubLinkProtocol(DeviceMessaging):
    """
    The device's end of its hub link.

    Until the hub registered the device, the link reads only what the hub
    says about the device's certificate (L{HubLinkProtocol.greeting}); then
    the zone's messages (L{HubLinkProtocol.messages}, the device-to-device
    ones included).

    @ivar registered: fires with this protocol once the hub registered the
        device, or fails with the L{ZoneError} the hub refused it with.
    """

    ownerInterface = IHubLinkOwner
    lostBeforeAnswer = "the hub link closed before an answer came"
    _log = Logger()

    greeting = MessageTable(unknown=_unexpected)
    messages = MessageTable(DeviceMessaging.messages,
                            unknown=lambda name: ZoneError(
                                "UNKNOWN_MESSAGE", f"this device does not handle {name!r}"))

    def __init__(self, proxy) -> None:
        super().__init__(proxy)
        creds = self.owner.credentials
        self.localId = creds.deviceId
        self.peerId = creds.zoneId
        self._zoneId = creds.zoneId
        self.refusals = RateLimitedLog(self._log, self.clock.seconds)
        self._pinger = None
        self._renewing = None
        self._crlParts = CRLAssembler()
        self._lastCRL = None
        self.registered: Deferred = Deferred()
        #: The hub's reading rate for this link: frames a second (one per
        #: started 64 KiB) and the burst; None if it did not say.
        self.readRate = None
        #: The largest frame the hub takes on this link (its C{--max-frame}).
        self.hubMaxFrame = DEFAULT_MAX_FRAME

    @property
    def requestTimeout(self) -> float:
        return self.owner.settings.requestTimeout

    def connectionMade(self) -> None:
        self.setTimeout(self.owner.settings.keepalive * 3)

    def certificateReceived(self, cert) -> None:
        if cert is None or pki.identityOf(cert) != self._zoneId:
            self._fail(ZoneError("HUB_UNTRUSTED", "the hub's certificate is not for this zone"))

    def _fail(self, error: ZoneError) -> None:
        if not self.registered.called:
            self.registered.errback(error)
        self.transport.loseConnection()

    def replyTarget(self, envelope: Envelope) -> str:
        return envelope.sender or self.peerId

    def currentMessages(self):
        return self.messages if self.registered.called else self.greeting

    def fromHub(self, envelope: Envelope) -> bool:
        """
        Whether C{envelope} comes from the hub itself: the hub names
        itself (the zone id) as the sender of its own messages and the
        device's id as the sender of any it forwards.
        """
        return envelope.sender == self._zoneId

    # -- before registration --------------------------------------------------

    @greeting.handler("registered")
    def _registered(self, envelope: Envelope) -> None:
        self._pinger = LoopingCall(self._ping)
        self._pinger.clock = self.clock
        self._pinger.start(self.owner.settings.keepalive, now=False)
        number = envelope.payload.get("crlNumber")
        if isinstance(number, int) and number > pki.crlNumber(self.owner.credentials.crl):
            self._log.info("the hub has CRL number {number}, newer than ours: asking for it",
                           number=number)
            self.sendMessage(self._zoneId, {"status": "crlRequest"})
        rate, burst = envelope.payload.get("rate"), envelope.payload.get("burst")
        if isinstance(rate, (int, float)) and isinstance(burst, int) and rate > 0 and burst > 0:
            self.readRate = (float(rate), burst)
        maxFrame = envelope.payload.get("maxFrame")
        if isinstance(maxFrame, int) and maxFrame >= 1024:
            self.hubMaxFrame = maxFrame
        self.registered.callback(self)

    @greeting.handler("crlUpdate")
    def _crlAhead(self, envelope: Envelope) -> None:
        # Sent ahead of a CERT_REVOKED whose CRL is too large to ride in it.
        self._lastCRL = self._crlParts.add(envelope.payload) or self._lastCRL

    @greeting.handler("renewRequired")
    def _renewRequired(self, envelope: Envelope) -> None:
        if self._renewing is not None:
            raise _unexpected(envelope.name)
        self._renewing = self.owner.renew(self)
        self._renewing.addCallbacks(lambda _: self._fail(RenewedError()),
                                    lambda f: self._fail(_asZoneError(f)))

    @greeting.handler("renewed")
    def _renewedEarly(self, envelope: Envelope) -> None:
        if self._renewing is None:
            raise _unexpected(envelope.name)
        self._answer(envelope)

    @greeting.handler("error")
    def _refused(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if self._renewing is not None:
            self._answer(envelope)
        elif payload.get("code") == "CERT_REVOKED":
            crl = parseInline(payload["crl"]) if "crl" in payload else self._lastCRL
            self._fail(RevokedError(str(payload.get("message", "")), crl))
        else:
            self._fail(zoneErrorFrom(payload))

    # -- registered -----------------------------------------------------------

    @messages.handler("pong")
    def _pong(self, envelope: Envelope) -> None:
        """
        The keepalive's answer: the frame itself reset the idle timer.
        """

    @messages.handler("pzpUpdate", needsOne=("devices", "joined", "left"),
                      devices=JSONList(optional=True), joined=JSONList(optional=True),
                      left=JSONList(optional=True))
    def _pzpUpdate(self, envelope: Envelope, devices, joined, left) -> None:
        self.owner.peersUpdated(envelope.payload)

    @messages.handler("renewed")
    @messages.handler("queued")
    @messages.handler("error")
    def _answer(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if self.answered(payload) or payload.get("status") != "error":
            return
        if isinstance(payload.get("ref"), str) and self.owner.calls.refused(
                payload["ref"], zoneErrorFrom(payload)):
            return
        self.refusals.info("the hub reported {code}: {message}",
                           code=payload.get("code"), message=payload.get("message"))

    @messages.handler("meshAnswer", account=Text(maxLength=64), request=Text(maxLength=128),
                      answer=Text(maxLength=16))
    def _meshAnswer(self, envelope: Envelope, account: str, request: str, answer: str) -> None:
        """
        The hub asks this device to answer a pending Mesh connection
        request (the admin page's approve or refuse, L{pzp.meshapprovals}).
        Only the hub itself may ask, never another device through it (the
        table's hook, L{DeviceMessaging.permitted}), and only a proxy run
        with C{--mesh-approvals} answers.  The answer (C{meshAnswered}, or
        an error) names the request's id.
        """
        approvals = self.owner.meshApprovals
        if approvals is None:
            raise ZoneError("NOT_AUTHORISED", "this device does not answer Mesh requests for "
                                              "the hub: its proxy runs without --mesh-approvals")

        def answered(data: dict) -> None:
            if self.connected:
                self.sendMessage(self._zoneId, {"status": "meshAnswered", "ref": envelope.id,
                                                **data})

        def failed(failure) -> None:
            if self.connected:
                self.sendError(_asZoneError(failure), envelope.id)

        approvals.answer(account, request, answer).addCallbacks(answered, failed)

    @messages.handler("crlUpdate")
    def _crlUpdate(self, envelope: Envelope) -> None:
        crl = self._crlParts.add(envelope.payload)
        if crl is not None:
            self.owner.crlReceived(crl)

    def _syncMessage(self, envelope: Envelope) -> None:
        """
        Synchronisation (L{pz.sync.engine}): the engine checks the fields
        and answers a bad message on the wire itself.
        """
        self.owner.syncReceived(envelope.payload)

    for _name in MESSAGE_NAMES_TO_DEVICE:
        messages.handler(_name)(_syncMessage)
    del _name

    def _ping(self) -> None:
        self.sendMessage(self._zoneId, {"status": "ping"})

    def timeoutConnection(self) -> None:
        self._log.info("the hub went silent; dropping the link")
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.connected = False
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        super().connectionLost(reason)
        if not self.registered.called:
            self.registered.errback(ZoneError(
                "NOT_CONNECTED", f"the hub closed the link: {reason.getErrorMessage()}"
            ))
        elif self._pinger is not None:
            # Only a link the hub registered was handed to the Hub machine.
            self.owner.hubInputs.lost(reason)
