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
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from pz import pki
from pz.crlparts import CRLAssembler, parseInline
from pz.errors import ZoneError
from pz.lograte import RateLimitedLog
from pz.tls import peerCertificate
from pz.wire import Envelope, FrameProtocol
from pzp.inbox import MAX_TEXT

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


def zoneErrorFrom(payload: dict) -> ZoneError:
    """
    The L{ZoneError} an error payload describes (C{INTERNAL} for a code
    this version does not know).
    """
    code = payload.get("code")
    message = str(payload.get("message", ""))
    try:
        return ZoneError(code, message)
    except (ValueError, TypeError):
        return ZoneError("INTERNAL", f"{code}: {message}")


def _asZoneError(failure) -> ZoneError:
    if isinstance(failure.value, ZoneError):
        return failure.value
    return ZoneError("INTERNAL", failure.getErrorMessage())


@implementer(IHandshakeListener)
class HubLinkProtocol(FrameProtocol, TimeoutMixin):
    """
    The device's end of its hub link.

    @ivar registered: fires with this protocol once the hub registered the
        device, or fails with the L{ZoneError} the hub refused it with.
    """

    _log = Logger()

    def __init__(self, proxy) -> None:
        self._proxy = proxy
        self._clock = proxy.clock
        self.callLater = proxy.clock.callLater
        creds = proxy.credentials
        self.localId = creds.deviceId
        self.peerId = creds.zoneId
        self._zoneId = creds.zoneId
        self._pending: dict = {}
        self.refusals = RateLimitedLog(self._log, proxy.clock.seconds)
        self._pinger = None
        self._renewing = None
        self._crlParts = CRLAssembler()
        self._lastCRL = None
        self.registered: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.setTimeout(self._proxy.settings.keepalive * 3)

    def handshakeCompleted(self) -> None:
        cert = peerCertificate(self.transport)
        if cert is None or pki.identityOf(cert) != self._zoneId:
            self._fail(ZoneError("HUB_UNTRUSTED", "the hub's certificate is not for this zone"))

    def _fail(self, error: ZoneError) -> None:
        if not self.registered.called:
            self.registered.errback(error)
        self.transport.loseConnection()

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        super().stringReceived(data)

    def replyTarget(self, envelope: Envelope) -> str:
        return envelope.sender or self.peerId

    def envelopeReceived(self, envelope: Envelope) -> None:
        name = envelope.name
        payload = envelope.payload
        if not self.registered.called:
            if name == "registered":
                self._registered(payload)
            elif name == "crlUpdate":
                # Sent ahead of a CERT_REVOKED whose CRL is too large to
                # ride in it.
                self._lastCRL = self._crlParts.add(payload) or self._lastCRL
            elif name == "renewRequired" and self._renewing is None:
                self._renewing = self._proxy.renew(self)
                self._renewing.addCallbacks(lambda _: self._fail(RenewedError()),
                                            lambda f: self._fail(_asZoneError(f)))
            elif name in ("renewed", "error") and self._renewing is not None:
                self._answer(payload)
            elif name == "error" and payload.get("code") == "CERT_REVOKED":
                crl = parseInline(payload["crl"]) if "crl" in payload else self._lastCRL
                self._fail(RevokedError(str(payload.get("message", "")), crl))
            elif name == "error":
                self._fail(zoneErrorFrom(payload))
            else:
                raise ZoneError("UNKNOWN_MESSAGE", f"unexpected {name!r} before registration")
            return
        if name == "pong":
            return
        if name == "pzpUpdate":
            lists = [payload.get(k) for k in ("devices", "joined", "left") if k in payload]
            if not lists or not all(isinstance(v, list) for v in lists):
                raise ZoneError("BAD_ENVELOPE", "pzpUpdate needs device lists")
            self._proxy.peersUpdated(payload)
        elif name == "message":
            text = payload.get("text")
            if not isinstance(text, str) or len(text) > MAX_TEXT:
                raise ZoneError("BAD_ENVELOPE", f"a message needs a text of at most {MAX_TEXT} characters")
            self._proxy.inbox.add(envelope.sender, text)
            self.sendMessage(envelope.sender, {"status": "ack", "ref": envelope.id})
        elif name in ("ack", "error", "renewed"):
            self._answer(payload)
        elif name == "crlUpdate":
            crl = self._crlParts.add(payload)
            if crl is not None:
                self._proxy.crlReceived(crl)
        else:
            raise ZoneError("UNKNOWN_MESSAGE", f"this device does not handle {name!r}")

    def _registered(self, payload: dict) -> None:
        self._pinger = LoopingCall(self._ping)
        self._pinger.clock = self._clock
        self._pinger.start(self._proxy.settings.keepalive, now=False)
        number = payload.get("crlNumber")
        if isinstance(number, int) and number > pki.crlNumber(self._proxy.credentials.crl):
            self._log.info("the hub has CRL number {number}, newer than ours: asking for it",
                           number=number)
            self.sendMessage(self._zoneId, {"status": "crlRequest"})
        self.registered.callback(self)

    def _ping(self) -> None:
        self.sendMessage(self._zoneId, {"status": "ping"})

    def _answer(self, payload: dict) -> None:
        ref = payload.get("ref")
        waiting = self._pending.pop(ref, None) if isinstance(ref, str) else None
        if waiting is None:
            if payload.get("status") == "error":
                self.refusals.info("the hub reported {code}: {message}",
                                   code=payload.get("code"), message=payload.get("message"))
            return
        d, timer = waiting
        timer.cancel()
        if payload.get("status") == "error":
            d.errback(zoneErrorFrom(payload))
        else:
            d.callback(payload)

    def request(self, to: str, payload: dict) -> Deferred:
        """
        Send C{payload} to device C{to}; the result fires with its C{ack}
        payload or fails with the error it or the hub answered.
        """
        msgId = self.sendMessage(to, payload)
        d: Deferred = Deferred()

        def expire() -> None:
            self._pending.pop(msgId, None)
            d.errback(ZoneError("TIMEOUT", f"{to} did not answer"))

        timer = self._clock.callLater(self._proxy.settings.requestTimeout, expire)
        self._pending[msgId] = (d, timer)
        return d

    def timeoutConnection(self) -> None:
        self._log.info("the hub went silent; dropping the link")
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.connected = False
        self.setTimeout(None)
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            timer.cancel()
            d.errback(ZoneError("NOT_CONNECTED", "the hub link closed before an answer came"))
        if not self.registered.called:
            self.registered.errback(ZoneError(
                "NOT_CONNECTED", f"the hub closed the link: {reason.getErrorMessage()}"
            ))
        elif self._pinger is not None:
            # Only a link the hub registered was handed to the Hub machine.
            self._proxy.hubInputs.lost(reason)
