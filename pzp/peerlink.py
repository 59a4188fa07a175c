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
from pz.wire import Envelope
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

    messages = MessageTable(DeviceMessaging.messages,
                            unknown=lambda name: ZoneError(
                                "UNKNOWN_MESSAGE", f"this device does not handle {name!r}"))

    def __init__(self, owner, outgoing: bool, expectedPeer: Optional[str] = None) -> None:
        """
        @param expectedPeer: the device id dialled (an outgoing link), or
            C{None} for a link the peer server accepted.
        """
        super().__init__(owner)
        self.localId = self.owner.credentials.deviceId
        self.outgoing = outgoing
        self._expected = expectedPeer
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
            if zone != self.owner.credentials.zoneId:
                # The TLS layer let it in as a friend zone's device.
                self.friendZone = zone
            self.peerId = identity
            self._pinger = LoopingCall(self.sendMessage, identity, {"status": "ping"})
            self._pinger.clock = self.clock
            self._pinger.start(self.owner.keepalive, now=False)
            self.ready.callback(self)

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
        if not self.ready.called or not self.peerId:
            raise ZoneError("UNKNOWN_MESSAGE", "nothing is accepted before the peer is known")
        if envelope.sender not in ("", self.peerId):
            raise ZoneError("NOT_AUTHORISED", f"{self.peerId} may not send as {envelope.sender}")
        if envelope.to not in ("", self.localId):
            raise ZoneError("UNKNOWN_DESTINATION", "a peer link relays nothing")
        if self.friendZone is not None:
            self._fromFriend(envelope)
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
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        super().connectionLost(reason)
        if not self.ready.called:
            self.ready.errback(ZoneError("NOT_CONNECTED", "the peer link closed during set-up"))
        elif self.peerId:
            self.owner.peerLinkLost(self, reason)
