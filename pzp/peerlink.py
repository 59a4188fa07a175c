# -*- test-case-name: tests.pzp.test_peerlink -*-
"""
The direct link between two devices of a zone (Peer mode).

Both ends run L{PeerLinkProtocol}: the one that dialled and the one whose
peer server accepted.  The TLS layer has already refused anything but a
device certificate of this zone (L{pz.tls.peerServerOptions},
L{pz.tls.peerClientOptions}); the link then learns which device it reached
from that certificate, checks it is the one dialled, and carries the
device-to-device messages of L{DeviceMessaging}, exactly as the hub link
does, with the peer as the only possible sender.  Which link to keep when
both devices dial at once is the Peer machine's decision
(L{pzp.peermode}), not the link's.
"""

from typing import Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Attribute

from pz import pki
from pz.dispatch import MessageTable
from pz.dispatch import JSONList
from pz.errors import ZoneError
from pz.lograte import RateLimitedLog
from pz.wire import Envelope, errorPayload
from pzp.devicemessages import DeviceMessaging
from pzp.interfaces import IDeviceMessageOwner

__all__ = ["PeerLinkProtocol", "IPeerLinkOwner", "FRIEND_MESSAGES"]

#: What a device of a friend zone may send over a peer link besides
#: service calls (C{JSONRPC} envelopes).
FRIEND_MESSAGES = frozenset({"ping", "pong", "error"})


class IPeerLinkOwner(IDeviceMessageOwner):
    """
    What a peer link needs from the proxy's Peer mode worker.
    """

    credentials = Attribute("the device's zone credentials: C{deviceId} and C{zoneId}")
    keepalive = Attribute("seconds between pings; a peer silent for three of them is gone")

    def peerSyncReceived(link, payload):
        """
        A peer-sync message (C{Update_Hash}, C{Update_Change},
        C{Update_Data}) came over C{link}, for the peer-sync worker.
        """

    def peerLinkLost(link, reason):
        """
        C{link}, once C{ready}, has closed: the worker feeds the Peer
        machine C{lost} (unless it dropped that link itself).
        """

    def peerServices(link, services):
        """
        The peer said which services it runs (its C{servicesAnnounce}).
        """

    def friendTrusted(zoneId):
        """
        Whether zone C{zoneId} is (still) a friend zone of this device's.
        """

    exchangeTimeout = Attribute("seconds a link set up by a certificate exchange has to "
                                "present (or accept) the code's token")

    def redeemExchange(token, source):
        """
        Use up the peer-exchange ticket of C{token}, presented from
        address C{source}.

        @raise ZoneError: why not (nothing is used up then).
        """


class PeerLinkProtocol(DeviceMessaging):
    """
    One end of a peer link.

    @ivar outgoing: whether this device dialled the link.
    @ivar ready: fires with this protocol once the handshake proved which
        device is at the other end, or fails with a L{ZoneError} (the
        wrong device, or the link closed first).
    """

    ownerInterface = IPeerLinkOwner
    lostBeforeAnswer = "the peer link closed before an answer came"
    _log = Logger()
    #: The friend zone of the device at the other end, or None for a
    #: device of this zone.
    friendZone = None
    #: Whether the device at the other end came by the peer-to-peer
    #: certificate exchange (a one-time link, L{pzp.exchange}).
    guest = False
    #: While a certificate exchange is being set up: the device id its
    #: certificate names, not yet admitted.
    _exchanging = None
    _deadline = None

    messages = MessageTable(DeviceMessaging.messages,
                            unknown=lambda name: ZoneError(
                                "UNKNOWN_MESSAGE", f"this device does not handle {name!r}"))

    def __init__(self, owner, outgoing: bool, expectedPeer: Optional[str] = None,
                 exchangeToken: Optional[str] = None) -> None:
        """
        @param expectedPeer: the device id dialled (an outgoing link), or
            C{None} for a link the peer server accepted.
        @param exchangeToken: for a link dialled with a peer-exchange code,
            its token, sent as the first message.
        """
        super().__init__(owner)
        self.localId = self.owner.credentials.deviceId
        self.outgoing = outgoing
        self._expected = expectedPeer
        self._exchangeToken = exchangeToken
        self.refusals = RateLimitedLog(self._log, self.clock.seconds)
        # Cancelling a dial that waits for the handshake closes the link.
        self.ready: Deferred = Deferred(lambda d: self.transport and self.transport.abortConnection())
        self._pinger = None

    @property
    def requestTimeout(self) -> float:
        return self.owner.keepalive

    def connectionMade(self) -> None:
        self.setTimeout(self.owner.keepalive * 3)

    @messages.handler("error")
    def _error(self, envelope: Envelope) -> None:
        """
        An error fails the request it answers (by C{ref}), or is only
        logged: never answered, or two devices would send each other
        errors about errors for ever.
        """
        payload = envelope.payload
        if not self.answered(payload):
            self.refusals.info("{peer} reported {code}: {message}", peer=self.peerId,
                               code=payload.get("code"), message=payload.get("message"))

    @messages.handler("Update_Hash")
    @messages.handler("Update_Change")
    @messages.handler("Update_Data")
    def _peerSync(self, envelope: Envelope) -> None:
        """
        Peer-triggered synchronisation (L{pzp.peersync}), which checks the
        fields itself.
        """
        self.owner.peerSyncReceived(self, envelope.payload)

    def certificateReceived(self, cert) -> None:
        identity = pki.identityOf(cert) if cert is not None else None
        if identity is None or identity == self.localId:
            self._fail(ZoneError("CERT_INVALID", "the peer's certificate names no other device"))
        elif self._expected is not None and identity != self._expected:
            self._fail(ZoneError(
                "CERT_UNTRUSTED", f"dialled {self._expected} but reached {identity}"))
        else:
            zone = identity.rpartition("/")[0]
            if zone != self.owner.credentials.zoneId and self.owner.friendTrusted(zone):
                # The TLS layer let it in as a friend zone's device.
                self.friendZone = zone
            elif zone != self.owner.credentials.zoneId:
                self._startExchange(identity)
                return
            self._admit(identity)

    def _admit(self, identity: str) -> None:
        self.peerId = identity
        self._pinger = LoopingCall(self.sendMessage, identity, {"status": "ping"})
        self._pinger.clock = self.clock
        self._pinger.start(self.owner.keepalive, now=False)
        self.ready.callback(self)

    # -- the peer-to-peer certificate exchange ----------------------------------

    def _startExchange(self, identity: str) -> None:
        """
        A device of a zone neither ours nor a friend's: the TLS layer let
        it through only for a certificate exchange (L{pz.tls}), so the
        dialling side now sends the code's token, and the accepting side
        waits a short while for it.
        """
        if self.outgoing and self._exchangeToken is None:
            self._fail(ZoneError("CERT_UNTRUSTED", f"{identity} is of no zone known here"))
            return
        self._exchanging = identity
        self._deadline = self.clock.callLater(self.owner.exchangeTimeout, self._exchangeLate)
        if self.outgoing:
            self.sendMessage(identity, {"status": "peerExchange", "token": self._exchangeToken})

    def _exchangeLate(self) -> None:
        self._deadline = None
        self._refuseExchange(None, "no peer-exchange code came in time" if not self.outgoing
                             else "the other device did not answer the peer-exchange code")

    def _refuseExchange(self, ref, why: str) -> None:
        error = ZoneError("EXCHANGE_REFUSED", why)
        self._log.info("peer exchange with {device} refused: {why}", device=self._exchanging,
                       why=why)
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        if not self.outgoing and self.transport is not None:
            self.sendMessage(self._exchanging, errorPayload(error, ref))
        self._exchanging = None
        self._fail(error)

    def _exchangeReceived(self, envelope: Envelope) -> None:
        """
        The first message of a link being set up by a certificate
        exchange: from the dialling device, C{peerExchange} with a valid
        token, or the link closes C{EXCHANGE_REFUSED} and nothing is used
        up; to it, C{peerExchanged} or the other device's refusal.
        """
        payload = envelope.payload
        if self.outgoing:
            if envelope.name == "peerExchanged":
                self._exchanged()
            elif envelope.name == "error":
                self._refuseExchange(None, f"{payload.get('code')}: {payload.get('message')}")
            else:
                self._refuseExchange(None, f"the other device sent {envelope.name!r}")
            return
        token = payload.get("token")
        if envelope.type != "prop" or envelope.name != "peerExchange" or not isinstance(token, str):
            self._refuseExchange(envelope.id, "the first message must be peerExchange with "
                                              "the code's token")
            return
        try:
            self.owner.redeemExchange(token, self.transport.getPeer().host)
        except ZoneError as e:
            self._refuseExchange(envelope.id, f"{e.code}: {e.message}")
            return
        self.sendMessage(self._exchanging, {"status": "peerExchanged"})
        self._exchanged()

    def _exchanged(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        identity, self._exchanging = self._exchanging, None
        self.guest = True
        self._admit(identity)

    def _fail(self, error: ZoneError) -> None:
        if not self.ready.called:
            self.ready.errback(error)
        self.transport.loseConnection()

    def envelopeReceived(self, envelope: Envelope) -> None:
        """
        Dispatch an envelope once the peer is known; only the peer may be
        its sender and only this device its destination: a peer link
        relays nothing.
        """
        if self._exchanging is not None:
            self._exchangeReceived(envelope)
            return
        if not self.ready.called or not self.peerId:
            raise ZoneError("UNKNOWN_MESSAGE", "nothing is accepted before the peer is known")
        if envelope.sender not in ("", self.peerId):
            raise ZoneError("NOT_AUTHORISED", f"{self.peerId} may not send as {envelope.sender}")
        if envelope.to not in ("", self.localId):
            raise ZoneError("UNKNOWN_DESTINATION", "a peer link relays nothing")
        if self.friendZone is not None:
            self._fromFriend(envelope)
        elif self.guest:
            self._fromGuest(envelope)
        super().envelopeReceived(attrs.evolve(envelope, sender=self.peerId))

    def _fromFriend(self, envelope: Envelope) -> None:
        """
        A friend zone's device may call services and keep its link alive,
        nothing more, and only while its zone is still a friend: once it
        is untrusted, the link closes at its next frame (at the latest its
        next ping).
        """
        if not self.owner.friendTrusted(self.friendZone):
            self.sendError(ZoneError("ZONE_UNTRUSTED",
                                     f"zone {self.friendZone} is no longer trusted here"),
                           envelope.id)
            self.transport.loseConnection()
            raise ZoneError("ZONE_UNTRUSTED", f"zone {self.friendZone} is no longer trusted")
        if envelope.type != "JSONRPC" and envelope.name not in FRIEND_MESSAGES:
            raise ZoneError("NOT_AUTHORISED", f"a device of another zone may not send "
                                              f"{envelope.name!r} here")

    def _fromGuest(self, envelope: Envelope) -> None:
        """
        A device met by the certificate exchange may call services and
        keep its link alive, as a friend's may, nothing more.
        """
        if envelope.type != "JSONRPC" and envelope.name not in FRIEND_MESSAGES:
            raise ZoneError("NOT_AUTHORISED", f"a device of another zone may not send "
                                              f"{envelope.name!r} here")

    @messages.handler("ping")
    def _ping(self, envelope: Envelope) -> None:
        self.sendMessage(self.peerId, {"status": "pong"})

    @messages.handler("pong")
    def _pong(self, envelope: Envelope) -> None:
        """
        The keepalive's answer: the frame itself reset the idle timer.
        """

    @messages.handler("servicesAnnounce", services=JSONList())
    def _servicesAnnounce(self, envelope: Envelope, services) -> None:
        self.owner.peerServices(self, envelope.payload)

    def timeoutConnection(self) -> None:
        self._log.info("peer {peer} went silent; dropping the link", peer=self.peerId)
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        super().connectionLost(reason)
        if not self.ready.called:
            self.ready.errback(ZoneError("NOT_CONNECTED", "the peer link closed during set-up"))
        elif self.peerId:
            self.owner.peerLinkLost(self, reason)
