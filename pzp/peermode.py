# -*- test-case-name: tests.pzp.test_peermode -*-
"""
Peer mode: two devices of a zone talk over a direct TLS link, without the
hub in between.

The Peer machine has the states and transitions of the PZP
specification's Peer diagram, one machine per remote device::

    NotConnected --> Connecting     : pzpUpdate (the peer is available)
    Connecting --> NotConnected     : connection failed (devices not available)
    Connecting --> Connected        : connected
    Connected --> Disconnecting     : lost (error / timeout / hang-up) or revoked
    Disconnecting --> NotConnected  : cleaned up (no valid connection)

What the diagram leaves out:

 - The peer may dial first: a link it opens to this device's peer server
   while this device is not dialling goes straight from C{NotConnected} to
   C{Connected}.
 - Both devices may dial at once.  Exactly one link per pair is kept: the
   one dialled by the device with the smaller device id.  Both ends know
   both ids, so both keep the same link and close the other, whichever
   order the links come up in.
 - A new CRL that lists the peer (C{revoked}) closes its link at once and
   gives up a dial in progress.

The machine acts through L{IPeerActions}.  L{PeerMode}, the worker, owns
one machine per remote device: the hub's device list makes it dial
(L{PeerMode.peerAvailable}), the peer server hands it accepted links
(L{PeerMode.buildIncoming}), a new CRL closes revoked peers' links
(L{PeerMode.crlReceived}), and L{PeerMode.linkFor} is the peer side of
routing: the link to a device while its machine is C{Connected}.  Given a
L{pzp.peersync.PeerSync}, it tells it of each link kept and gone and hands
it the link's C{Update_*} messages (peer-triggered synchronisation).
"""

from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol, wrapClientTLS,
)
from twisted.internet.interfaces import IDelayedCall, IOpenSSLServerConnectionCreator
from twisted.internet.protocol import Factory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz import pki
from pz.errors import ZoneError
from pz.tls import (
    exchangeClientOptions, peerCertificate, peerClientOptions, peerServerOptions,
)
from pz.servicecache import parseAnnounce
from pz.zoneservice import ServiceRegistry
from pzp.calls import CallWorker
from pzp.peerlink import IPeerLinkOwner, PeerLinkProtocol
from pzp.seams import asZoneError

__all__ = ["PeerMachine", "PeerInputs", "PeerCore", "IPeerActions", "CONNECT_TIMEOUT",
           "dialledByLower", "PeerMode", "tlsDialer", "exchangeDialer", "ONE_TIME"]

#: Seconds a dial may take, TLS handshake and verification included, before
#: it counts as failed.
CONNECT_TIMEOUT = 30.0

#: Seconds a link set up by a certificate exchange has for its token.
EXCHANGE_TIMEOUT = 10.0

#: How C{pzctl peers} shows a certificate exchange's link.
ONE_TIME = "Connected (one-time)"

#: Seconds before a lost or failed peer link is dialled again; doubled at
#: each failure up to L{MAX_REDIAL}, back to this once a link is up.
REDIAL = 2.0
MAX_REDIAL = 120.0


class IPeerActions(Interface):
    """
    What the Peer machine asks its worker to do.
    """

    def dial(endpoint) -> Deferred:
        """
        Open a link to the peer at C{endpoint} (the host and port
        C{pzpUpdate} gave).  Fires with the link once TLS is up and the
        peer's certificate is the expected one; cancelling it gives the
        attempt up.
        """

    def linkUp(link) -> None:
        """
        C{link} is now the peer link: route traffic for the peer over it.
        """

    def dropLink(link) -> None:
        """
        Close C{link} at once: it is a duplicate, or the peer is revoked.
        Its loss is not reported to the machine (it is no longer the
        machine's current link).
        """

    def cleanUp(reason) -> None:
        """
        The peer link is gone: route traffic for the peer through the hub
        again.
        """

    def connectFailed(reason) -> None:
        """
        A dial failed: the peer is not reachable (or not who it should be).
        """


class PeerInputs(Protocol):
    def pzpUpdate(self, endpoint: object) -> None:
        "The hub's pzpUpdate lists the peer as available at endpoint."

    def connectionFailed(self, reason: object) -> None:
        "The dial failed or timed out: the devices are not available."

    def connected(self, link: object, outgoing: bool) -> None:
        "A verified link to the peer is up; outgoing if this device dialled it."

    def kept(self, link: object, outgoing: bool) -> None:
        "The link the simultaneous-dial rule keeps while dialling."

    def lost(self, reason: object) -> None:
        "The kept link failed: error, timeout or hang-up."

    def revoked(self, evidence: object) -> None:
        "A new CRL lists the peer's certificate."

    def cleanedUp(self) -> None:
        "Clean-up after the link is gone is done: no valid connection."

    def stop(self) -> None:
        "The proxy stops or leaves the zone: close the link, give a dial up."

    def currentLink(self) -> object:
        "The link in use, or None when not connected."

    def state(self) -> str:
        "The name of the current state."


class PeerCore:
    """
    The Peer machine's dependencies: the two device ids (for the
    simultaneous-dial rule), the clock (for the dial timeout) and the
    worker.
    """

    def __init__(self, clock, localId: str, remoteId: str, actions,
                 timeout: float = CONNECT_TIMEOUT) -> None:
        self.clock = clock
        self.localId = localId
        self.remoteId = remoteId
        self.actions = IPeerActions(actions)
        self.timeout = timeout


def dialledByLower(localId: str, remoteId: str, outgoing: bool) -> bool:
    """
    Whether a link between C{localId} and C{remoteId} was dialled by the
    device with the smaller id: the link kept when both dial at once.
    Both ends compute the same answer for the same link.
    """
    return (localId < remoteId) == outgoing


class _Attempt:
    """
    A dial in progress: its Deferred and its timeout.  Once given up
    (timed out, beaten by the peer's own dial, revoked), whatever the dial
    still reports is ignored.
    """

    def __init__(self, dialling: Deferred, timer: IDelayedCall) -> None:
        self.live = True
        self.dialling = dialling
        self.timer = timer

    def giveUp(self) -> None:
        self.live = False
        if self.timer.active():
            self.timer.cancel()
        self.dialling.cancel()


class _Kept:
    """
    The link in use and which end dialled it.
    """

    def __init__(self, link: object, outgoing: bool) -> None:
        self.link = link
        self.outgoing = outgoing


def _dial(inputs: PeerInputs, core: PeerCore, endpoint: object) -> _Attempt:
    attempt = None

    def up(link):
        if attempt.live:
            attempt.live = False
            if attempt.timer.active():
                attempt.timer.cancel()
            inputs.connected(link, True)

    def failed(failure):
        if attempt.live:
            attempt.live = False
            if attempt.timer.active():
                attempt.timer.cancel()
            inputs.connectionFailed(asZoneError(failure))

    def timedOut():
        attempt.live = False
        attempt.dialling.cancel()
        inputs.connectionFailed(ZoneError("TIMEOUT", "the peer did not answer in time"))

    timer = core.clock.callLater(core.timeout, timedOut)
    attempt = _Attempt(core.actions.dial(endpoint), timer)
    attempt.dialling.addCallbacks(up, failed)
    return attempt


def _keep(inputs: PeerInputs, core: PeerCore, link: object, outgoing: bool) -> _Kept:
    return _Kept(link, outgoing)


def _buildPeer():
    builder = TypeMachineBuilder(PeerInputs, PeerCore)
    NotConnected = builder.state("NotConnected")
    Connecting = builder.state("Connecting", _dial)
    Connected = builder.state("Connected", _keep)
    Disconnecting = builder.state("Disconnecting")

    for state, name in ((NotConnected, "NotConnected"), (Disconnecting, "Disconnecting")):
        state.upon(PeerInputs.state).loop().returns(name)
        state.upon(PeerInputs.currentLink).loop().returns(None)
    Connecting.upon(PeerInputs.state, nodata=True).loop().returns("Connecting")
    Connecting.upon(PeerInputs.currentLink, nodata=True).loop().returns(None)
    Connected.upon(PeerInputs.state, nodata=True).loop().returns("Connected")

    @pep614(Connected.upon(PeerInputs.currentLink).loop())
    def currentLink(inputs: PeerInputs, core: PeerCore, kept: _Kept) -> object:
        return kept.link

    # pzpUpdate: dial when not connected; already dialling or connected,
    # a repeated update changes nothing.
    NotConnected.upon(PeerInputs.pzpUpdate).to(Connecting).returns(None)
    Connecting.upon(PeerInputs.pzpUpdate, nodata=True).loop().returns(None)
    Connected.upon(PeerInputs.pzpUpdate, nodata=True).loop().returns(None)
    Disconnecting.upon(PeerInputs.pzpUpdate).loop().returns(None)

    @pep614(Connecting.upon(PeerInputs.connectionFailed).to(NotConnected))
    def connectFailed(inputs: PeerInputs, core: PeerCore, attempt: _Attempt,
                      reason: object) -> None:
        core.actions.connectFailed(reason)

    @pep614(NotConnected.upon(PeerInputs.connected).to(Connected))
    def accepted(inputs: PeerInputs, core: PeerCore, link: object, outgoing: bool) -> None:
        core.actions.linkUp(link)

    @pep614(Connecting.upon(PeerInputs.connected).loop())
    def whileDialling(inputs: PeerInputs, core: PeerCore, attempt: _Attempt, link: object,
                      outgoing: bool) -> None:
        # This device's own dial is kept when nothing else came up first;
        # the peer's link beats the dial only if the peer has the smaller id.
        if outgoing or dialledByLower(core.localId, core.remoteId, outgoing):
            inputs.kept(link, outgoing)
        else:
            core.actions.dropLink(link)

    @pep614(Connecting.upon(PeerInputs.kept).to(Connected))
    def connected(inputs: PeerInputs, core: PeerCore, attempt: _Attempt, link: object,
                  outgoing: bool) -> None:
        if not outgoing:
            attempt.giveUp()
        core.actions.linkUp(link)

    @pep614(Connected.upon(PeerInputs.connected).loop())
    def secondLink(inputs: PeerInputs, core: PeerCore, kept: _Kept, link: object,
                   outgoing: bool) -> None:
        # Both dialled and both links came up: keep the one the smaller id
        # dialled, drop the other (on the other device the same rule drops
        # the same link).  A second link in the same direction is a stray.
        if outgoing != kept.outgoing and dialledByLower(core.localId, core.remoteId, outgoing):
            old, kept.link, kept.outgoing = kept.link, link, outgoing
            core.actions.dropLink(old)
            core.actions.linkUp(link)
        else:
            core.actions.dropLink(link)

    @pep614(Connected.upon(PeerInputs.lost).to(Disconnecting))
    def lost(inputs: PeerInputs, core: PeerCore, kept: _Kept, reason: object) -> None:
        core.actions.cleanUp(reason)
        inputs.cleanedUp()

    @pep614(Connected.upon(PeerInputs.revoked).to(Disconnecting))
    def revokedWhileConnected(inputs: PeerInputs, core: PeerCore, kept: _Kept,
                              evidence: object) -> None:
        core.actions.dropLink(kept.link)
        core.actions.cleanUp(evidence)
        inputs.cleanedUp()

    @pep614(Connecting.upon(PeerInputs.revoked).to(NotConnected))
    def revokedWhileDialling(inputs: PeerInputs, core: PeerCore, attempt: _Attempt,
                             evidence: object) -> None:
        attempt.giveUp()

    @pep614(Connected.upon(PeerInputs.stop).to(Disconnecting))
    def stopConnected(inputs: PeerInputs, core: PeerCore, kept: _Kept) -> None:
        core.actions.dropLink(kept.link)
        core.actions.cleanUp(ZoneError("NOT_CONNECTED", "the proxy stopped"))
        inputs.cleanedUp()

    @pep614(Connecting.upon(PeerInputs.stop).to(NotConnected))
    def stopDialling(inputs: PeerInputs, core: PeerCore, attempt: _Attempt) -> None:
        attempt.giveUp()

    NotConnected.upon(PeerInputs.stop).loop().returns(None)
    Disconnecting.upon(PeerInputs.stop).loop().returns(None)
    NotConnected.upon(PeerInputs.revoked).loop().returns(None)
    Disconnecting.upon(PeerInputs.cleanedUp).to(NotConnected).returns(None)
    return builder.build()


PeerMachine = _buildPeer()


@implementer(IPeerActions)
class _DeviceActions:
    """
    L{IPeerActions} for the machine of one remote device: what it asks goes
    to the L{PeerMode} worker, with the device named.
    """

    def __init__(self, mode, deviceId: str) -> None:
        self._mode = mode
        self._deviceId = deviceId

    def dial(self, endpoint) -> Deferred:
        return self._mode._dialer(self._deviceId, endpoint, self._mode)

    def linkUp(self, link) -> None:
        self._mode._log.info("peer link to {device} is up ({way})", device=self._deviceId,
                             way="dialled" if link.outgoing else "accepted")
        self._mode._linkUp(link)
        if self._mode.peerSync is not None:
            self._mode.peerSync.linkUp(link)

    def dropLink(self, link) -> None:
        if link.transport is not None:
            link.transport.abortConnection()

    def cleanUp(self, reason) -> None:
        self._mode._peerServices.pop(self._deviceId, None)
        self._mode._log.info("peer link to {device} is gone", device=self._deviceId)
        self._mode._redialLater(self._deviceId)
        if self._mode.peerSync is not None:
            self._mode.peerSync.linkDown(self._deviceId)

    def connectFailed(self, reason) -> None:
        self._mode._log.info("could not reach peer {device}: {code}: {message}",
                             device=self._deviceId, code=reason.code, message=reason.message)
        self._mode._redialLater(self._deviceId)


@implementer(IOpenSSLServerConnectionCreator)
class _CurrentServerOptions:
    """
    The peer server's TLS options for the device's current certificate:
    built again when a renewal replaced it, so a long-lived listening port
    never presents an expired certificate.
    """

    def __init__(self, identity, friends=lambda: {}, friendCRLs=lambda cas: [],
                 exchangeOpen=None) -> None:
        """
        @param friends: returns the friend zones' CA certificates by zone
            id, read again at each handshake: a friend added or untrusted
            counts from the next one.
        @param friendCRLs: returns the CRLs held of the friend zones it is
            given (their CAs by zone id), read again at each handshake too.
        @param exchangeOpen: returns whether a peer-exchange ticket is
            outstanding, asked at each handshake.
        """
        self._identity = identity
        self._friends = friends
        self._friendCRLs = friendCRLs
        self._exchangeOpen = exchangeOpen
        self._built = None
        self._options = None

    def serverConnectionForTLS(self, tlsProtocol):
        creds = self._identity.current
        friendCAs = self._friends()
        friendCRLs = self._friendCRLs(friendCAs)
        built = (creds.cert, tuple(sorted((zone, pki.caFingerprint(ca))
                                          for zone, ca in friendCAs.items())),
                 tuple(sorted((crl.issuer.rfc4514_string(), pki.crlNumber(crl))
                              for crl in friendCRLs)))
        if built != self._built:
            self._built = built
            self._options = peerServerOptions(creds.caCert, creds.key, creds.cert,
                                              lambda: self._identity.current.crl,
                                              friendCAs=list(friendCAs.values()),
                                              friendCRLs=friendCRLs,
                                              exchangeOpen=self._exchangeOpen)
        return self._options.serverConnectionForTLS(tlsProtocol)


@implementer(IPeerLinkOwner)
class PeerMode:
    """
    Peer mode's worker: one Peer machine per remote device, fed by the
    hub's device updates, the peer server's accepted links, the links'
    losses and new CRLs.

    @ivar clock: the links' and machines' clock.
    @ivar inbox: where texts received over peer links go.
    """

    _log = Logger()

    def __init__(self, clock, identity, inbox, dialer, calls=None, keepalive: float = 30.0,
                 announce=None, peerSync=None, friends=lambda: {},
                 friendCRLs=lambda cas: [], tickets=None, exchangeDialer=None,
                 exchangeTimeout: float = EXCHANGE_TIMEOUT) -> None:
        """
        @param identity: the device's credentials holder (C{current}).
        @param dialer: C{dialer(deviceId, endpoint, owner)} opens an
            outgoing peer link (a L{PeerLinkProtocol} owned by C{owner})
            and returns a Deferred that fires with it once C{ready};
            cancelling it gives the dial up.
        @param calls: the device's L{pzp.calls.CallWorker} (one serving
            nothing when C{None}).
        @param keepalive: seconds between pings on a peer link.
        @param announce: returns the C{servicesAnnounce} payload this
            device sends a peer when their link comes up (none when
            C{None}).
        @param peerSync: the L{pzp.peersync.PeerSync} told of each peer
            link kept and lost and given its C{Update_*} messages, or None.
        @param friends: returns the friend zones' CA certificates by zone
            id (L{pzp.friendtrust.friendCAs}): their devices may open peer
            links to this one, to call its services only.
        @param friendCRLs: returns the CRLs the friend zones whose CAs it
            is given shared (L{pzp.friendtrust.friendCRLs}): a revoked
            friend device is refused.
        @param tickets: the L{pzp.exchange.ExchangeTickets} that let a
            device of an unknown zone link once (none when C{None}).
        @param exchangeDialer: C{exchangeDialer(code, owner)} dials the
            device a L{pz.pairing.PeerCode} names and fires with the link
            once the exchange is done (L{exchangeDialer}).
        @param exchangeTimeout: seconds a certificate exchange's token has
            to come (or be answered) on a new link.
        """
        self._friends = friends
        self._friendCRLs = friendCRLs
        self._tickets = tickets
        self._exchangeDialer = exchangeDialer
        self.exchangeTimeout = exchangeTimeout
        #: device id -> the one-time link of a certificate exchange.
        self._guestLinks: dict = {}
        self._friendLinks: set = set()
        self.clock = clock
        self._identity = identity
        self.inbox = inbox
        self._dialer = dialer
        if calls is None:
            calls = CallWorker(ServiceRegistry(), clock)
        self.calls = calls
        self.keepalive = keepalive
        self._announce = announce
        self.peerSync = peerSync
        self._machines = {}
        #: device id -> the services it announced over its peer link.
        self._peerServices = {}
        #: device id -> where the hub last said it listens, while it does.
        self._endpoints = {}
        #: device id -> (the next redial's delay, its timer or None).
        self._redials = {}

    @property
    def credentials(self):
        return self._identity.current

    def _machine(self, deviceId: str):
        machine = self._machines.get(deviceId)
        if machine is None:
            core = PeerCore(self.clock, self.credentials.deviceId, deviceId,
                            _DeviceActions(self, deviceId))
            machine = self._machines[deviceId] = PeerMachine(core)
        return machine

    def peerAvailable(self, deviceId: str, host: str, port: int, fingerprint: str) -> None:
        """
        The hub says C{deviceId} listens for peer links at C{host}:C{port}
        with the key C{fingerprint}: try a link if there is none.
        """
        if deviceId != self.credentials.deviceId:
            endpoint = {"host": host, "port": port, "fingerprint": fingerprint}
            self._endpoints[deviceId] = endpoint
            self._machine(deviceId).pzpUpdate(endpoint)

    def peerGone(self, deviceId: str) -> None:
        """
        The hub says C{deviceId} left the zone's connected devices: it is
        not dialled again until the hub lists it once more.  A link up
        stays (it does not need the hub).
        """
        self._endpoints.pop(deviceId, None)
        self._cancelRedial(deviceId)

    def _redialLater(self, deviceId: str) -> None:
        """
        A peer link was lost or a dial failed: dial again after a delay
        that grows with each failure, while the hub still lists the device
        (or has not said otherwise).
        """
        if deviceId not in self._endpoints:
            return
        delay, timer = self._redials.get(deviceId, (REDIAL, None))
        if timer is not None and timer.active():
            return
        timer = self.clock.callLater(delay, self._redial, deviceId)
        self._redials[deviceId] = (min(delay * 2, MAX_REDIAL), timer)

    def _redial(self, deviceId: str) -> None:
        endpoint = self._endpoints.get(deviceId)
        if endpoint is not None:
            self._machine(deviceId).pzpUpdate(endpoint)

    def _cancelRedial(self, deviceId: str) -> None:
        _, timer = self._redials.pop(deviceId, (None, None))
        if timer is not None and timer.active():
            timer.cancel()

    def buildIncoming(self) -> PeerLinkProtocol:
        """
        The protocol for a link the peer server accepted: once its peer is
        known, it goes to that device's machine.
        """
        link = PeerLinkProtocol(self, False)
        link.ready.addCallbacks(self._accepted, lambda f: None)
        return link

    def serverFactory(self) -> TLSMemoryBIOFactory:
        """
        The factory of the device's peer server (the PZP's C{pzp_tlsServer}
        port): TLS with L{pz.tls.peerServerOptions} (the device's current
        certificate; the CRL it holds, read at each handshake) around
        L{buildIncoming}.  The options follow the certificate: after a
        renewal the next handshake presents the new one.
        """
        return TLSMemoryBIOFactory(_CurrentServerOptions(self._identity, self._friends,
                                                         self._friendCRLs,
                                                         self.exchangeOpen), False,
                                   Factory.forProtocol(self.buildIncoming), self.clock)

    def _accepted(self, link) -> None:
        if link.guest:
            self._guestUp(link)
            return
        if link.friendZone is not None:
            # A friend zone's device: it is no member of this zone, has no
            # Peer machine and syncs nothing; it may only call services.
            self._friendLinks.add(link)
            self._log.info("accepted a peer link from {device} of friend zone {zone}",
                           device=link.peerId, zone=link.friendZone)
            return
        self._machine(link.peerId).connected(link, False)

    # -- the peer-to-peer certificate exchange ------------------------------

    def exchangeOpen(self) -> bool:
        """
        Whether a peer-exchange ticket is outstanding: only then does the
        peer server let a device of an unknown zone through its handshake.
        """
        return self._tickets is not None and self._tickets.outstanding()

    def invite(self) -> tuple:
        """
        A new peer-exchange ticket: C{(token, expires)}.
        """
        if self._tickets is None:
            raise ZoneError("BAD_REQUEST", "this device offers no certificate exchange")
        return self._tickets.issue()

    def redeemExchange(self, token: str, source: str) -> None:
        if self._tickets is None:
            raise ZoneError("TOKEN_INVALID")
        self._tickets.redeem(token, source)

    def exchange(self, code) -> Deferred:
        """
        Dial the device the peer-exchange C{code} names, trusting only the
        certificate it pins, and present its token; fires with the other
        device's id once the one-time link is up.
        """
        if self._exchangeDialer is None:
            raise ZoneError("BAD_REQUEST", "this device cannot dial a certificate exchange")
        return self._exchangeDialer(code, self).addCallback(self._dialledGuest)

    def _dialledGuest(self, link) -> str:
        self._guestUp(link)
        return link.peerId

    def _guestUp(self, link) -> None:
        """
        A one-time link of a certificate exchange is up: it carries calls
        (decided by the policy with the caller a C{guest}), nothing else;
        no Peer machine, no sync, nothing kept.  A newer one from the same
        device replaces it.
        """
        old = self._guestLinks.get(link.peerId)
        self._guestLinks[link.peerId] = link
        if old is not None and old.transport is not None:
            old.transport.loseConnection()
        self._log.info("one-time peer link with {device} is up (certificate exchange, {way})",
                       device=link.peerId, way="dialled" if link.outgoing else "accepted")

    def guestIds(self) -> frozenset:
        """
        The devices on one-time links of a certificate exchange now.
        """
        return frozenset(self._guestLinks)

    def closeGuest(self, deviceId: str) -> None:
        """
        Close the one-time link with C{deviceId}: a new one needs a new
        code.
        """
        link = self._guestLinks.pop(deviceId, None)
        if link is None:
            raise ZoneError("NOT_CONNECTED", f"no one-time peer link with {deviceId}")
        if link.transport is not None:
            link.transport.loseConnection()
        self._log.info("one-time peer link with {device} closed", device=deviceId)

    def friendTrusted(self, zoneId: str) -> bool:
        """
        Whether zone C{zoneId} is still among the friend zones.
        """
        return zoneId in self._friends()

    def friendLinks(self) -> list:
        """
        The live peer links of friend zones' devices.
        """
        return list(self._friendLinks)

    def _linkUp(self, link) -> None:
        self._cancelRedial(link.peerId)
        if self._announce is not None:
            link.sendMessage(link.peerId, self._announce())

    def peerServices(self, link, payload: dict) -> None:
        """
        What a peer announced over its link: kept while that link is the
        peer's, so C{services} answers from the peer itself.
        """
        if self.linkFor(link.peerId) is not link:
            return
        try:
            self._peerServices[link.peerId] = parseAnnounce(payload)
        except ZoneError as e:
            self._log.info("ignored a bad services list from {device}: {message}",
                           device=link.peerId, message=e.message)

    def services(self) -> dict:
        """
        Device id -> the services each Connected peer announced over its
        link.
        """
        return {d: list(s) for d, s in self._peerServices.items() if self.linkFor(d) is not None}

    def peerLinkLost(self, link, reason) -> None:
        if link.guest:
            if self._guestLinks.get(link.peerId) is link:
                del self._guestLinks[link.peerId]
                self._log.info("one-time peer link with {device} is gone", device=link.peerId)
            return
        if link in self._friendLinks:
            self._friendLinks.discard(link)
            return
        machine = self._machines.get(link.peerId)
        if machine is not None and machine.currentLink() is link:
            machine.lost(reason)

    def peerSyncReceived(self, link, payload: dict) -> None:
        """
        A peer-sync message: for the peer-sync worker, if there is one and
        C{link} is the link kept to that peer (a duplicate about to close
        says nothing).
        """
        if self.peerSync is not None and self.linkFor(link.peerId) is link:
            self.peerSync.received(link, payload)

    def crlReceived(self, crl) -> None:
        """
        A new, verified CRL: close at once the link of every peer whose
        certificate it lists.
        """
        for machine in list(self._machines.values()):
            link = machine.currentLink()
            cert = peerCertificate(link.transport) if link is not None else None
            if cert is not None and pki.isRevoked(crl, cert.serial_number):
                self.peerGone(link.peerId)
                machine.revoked(crl)

    def stop(self) -> None:
        """
        The proxy stops or leaves the zone: close every peer link and give
        every dial up.
        """
        for deviceId in list(self._endpoints):
            self.peerGone(deviceId)
        for machine in list(self._machines.values()):
            machine.stop()
        for deviceId in list(self._guestLinks):
            self.closeGuest(deviceId)

    def linkFor(self, deviceId: str):
        """
        The peer link to C{deviceId} when it is Connected, else C{None}.
        """
        machine = self._machines.get(deviceId)
        link = machine.currentLink() if machine is not None else None
        return link if link is not None else self._guestLinks.get(deviceId)

    def status(self) -> dict:
        """
        Each remote device's Peer machine state, by device id, and
        C{Connected (one-time)} for each device on a certificate
        exchange's link.
        """
        states = {deviceId: machine.state() for deviceId, machine in self._machines.items()}
        states.update(dict.fromkeys(self._guestLinks, ONE_TIME))
        return dict(sorted(states.items()))


def _endpointFor(reactor, host: str, port: int):
    # The hub reports the address it saw: an IP address, dialled as such
    # (no name resolution); a name only if it gave one.
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)
    return HostnameEndpoint(reactor, host, port, timeout=CONNECT_TIMEOUT)


def tlsDialer(reactor, makeEndpoint=None):
    """
    The dialer L{PeerMode} uses for real links: TLS with
    L{pz.tls.peerClientOptions} (the zone CA, the device's current
    certificate and CRL, the fingerprint the hub gave pinned) over a TCP
    connection to the endpoint's host and port.

    @param makeEndpoint: C{makeEndpoint(host, port)}, the TCP endpoint to
        dial; a L{HostnameEndpoint} on C{reactor} by default.
    """
    if makeEndpoint is None:
        def makeEndpoint(host, port):
            return _endpointFor(reactor, host, port)

    def dial(deviceId: str, endpoint: dict, owner) -> Deferred:
        creds = owner.credentials
        options = peerClientOptions(creds.caCert, creds.key, creds.cert,
                                    endpoint["fingerprint"], crl=lambda: owner.credentials.crl)
        link = PeerLinkProtocol(owner, True, deviceId)
        connecting = connectProtocol(
            wrapClientTLS(options, makeEndpoint(endpoint["host"], endpoint["port"]), clock=reactor),
            link)
        return connecting.addCallback(lambda _: link.ready)

    return dial


def exchangeDialer(reactor, makeEndpoint=None):
    """
    The dialer of L{PeerMode.exchange}: TLS with
    L{pz.tls.exchangeClientOptions} (this device's certificate with its
    zone CA; only the certificate the code pins accepted) to the code's
    host and port, the code's token as the first message.  Fires with the
    link once the other device accepted the token.
    """
    if makeEndpoint is None:
        def makeEndpoint(host, port):
            return _endpointFor(reactor, host, port)

    def dial(code, owner) -> Deferred:
        creds = owner.credentials
        options = exchangeClientOptions(creds.caCert, creds.key, creds.cert, code.certDigest)
        link = PeerLinkProtocol(owner, True, None, exchangeToken=code.token)

        def failed(failure):
            refusals = options.verifier.refusals
            if refusals:
                raise ZoneError(refusals[-1].code, refusals[-1].message)
            if failure.check(ZoneError) and failure.value.code == "NOT_CONNECTED":
                # Its handshake refused this device: it has no code open.
                raise ZoneError("EXCHANGE_REFUSED", f"{code.host}:{code.port} refused the "
                                "link: it has no peer-exchange code open (used, expired, or "
                                "its proxy restarted)")
            if not failure.check(ZoneError):
                raise ZoneError("NOT_CONNECTED", f"cannot reach {code.host}:{code.port}: "
                                                 f"{failure.getErrorMessage()}")
            return failure

        connecting = connectProtocol(
            wrapClientTLS(options, makeEndpoint(code.host, code.port), clock=reactor), link)
        return connecting.addCallback(lambda _: link.ready).addErrback(failed)

    return dial
