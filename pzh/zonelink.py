# -*- test-case-name: tests.pzh.test_zonelink -*-
"""
The PZH-PZH links between hubs of zones that trust each other, and the
calls routed over them.

B{Who dials.}  The zone that accepted the invitation dials the inviting
zone's hub, and only it: accepting proved it can reach that hub (it just
did), while the inviting hub was never shown to reach the other.  So each
pair of friends has one link, kept up by a
L{twisted.application.internet.ClientService} with backoff on the
accepting side; the inviting side only answers.

B{Who is on the other end.}  The dialling hub presents its own hub
certificate, and trusts only the friend's CA and the host it was invited
from (L{pz.tls.pzpClientOptions}); the hub's URI SAN must name the friend
zone.  The answering hub's TLS layer asks every client for a certificate
and decides after the handshake (L{pzh.protocol.HubProtocol}): a
certificate of its own zone is a device; failing that, one a friend
zone's CA issued opens a zone link only if it is that friend's hub
certificate (L{pzh.friends.Friends.hubIdentity}).  A friend's device
certificate, or a certificate of no friend, never does, and a friend's CA
is never a root for this zone's devices.

B{What crosses.}  Between devices, only service calls (C{JSONRPC} envelopes, requests and
answers) and the C{error} replies to them.  A call from a device of A to
C{ZONE_B/NAME} goes A's hub -> B's hub -> the device: A's router hands it
to L{ZoneLinks.forwardOut} with C{from} set to the id the device's
certificate proves; B's hub (L{ZoneLinks._forwardIn}) lets it in only if
C{from} (and C{resp_to}) is a device of the zone of that link, never one
of B's own, and C{to} is a device of B; with a policy decision point, the
call must also be permitted (action C{connect}).  The device of B sees the
caller as A's device.  Answers come back the same way.  Refusals go back
to the sender, addressed to the friend's device so that its hub hands
them on (C{UNKNOWN_DESTINATION}, C{DEVICE_OFFLINE}, C{NOT_AUTHORISED}).

B{Untrusting.}  L{pzh.friends.Friends.untrust} tells this object, which
sends the friend C{zoneClosed} (code C{ZONE_UNTRUSTED}) and closes the
link at once; the friend's later calls are refused C{ZONE_UNTRUSTED} at
its own hub, and its next dial is refused at the handshake.

B{What is shared.}  Besides calls, each hub tells the other what of its
zone it shares with it (its CRL, and the items its policy permits):
L{pzh.friendshare}.

The zone link's messages, addressed to the hub itself, are in one table
(L{ZoneLinks.messages}): C{zoneLinked} (the answering hub admitted the
dialling one), C{zoneClosed}, C{zoneShared}, C{zoneSharedNeed},
C{zoneItem}, C{ping}, C{pong} and C{error}.
"""

from datetime import datetime, timezone
from typing import Callable, Optional

from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Attribute, implementer

from pz import pki
from pz.dispatch import Anything, JSONList, MessageTable, Text
from pz.errors import ZoneError
from pz.link import ILinkOwner, Link
from pz.lograte import RateLimitedLog
from pz.tls import pzpClientOptions
from pz.wire import DEFAULT_MAX_FRAME, Envelope, encodeEnvelope
from pzh.friends import zoneOf

__all__ = ["ZoneLinks", "ZoneLinkClient", "IZoneLinkOwner", "tlsConnector"]


class IZoneLinkOwner(ILinkOwner):
    """
    What the dialling end of a zone link needs from its owner.
    """

    zoneId = Attribute("this zone's id: what the link sends as C{from}")
    maxFrame = Attribute("the largest frame, in bytes, read from the other hub")
    keepalive = Attribute("seconds between pings on a link this hub dialled")

    def received(link, envelope):
        """
        An envelope arrived on a zone link.
        """

    def detach(link):
        """
        A zone link closed.
        """

    def replyTarget(link, envelope):
        """
        Where a refusal of C{envelope} goes.
        """


def _policyRequest(friendZone: str, sender: str, service, method):
    """
    The policy request for a call from C{sender} of C{friendZone} coming
    into this zone (action C{connect}), in the policy core's terms.
    """
    from pz.policy import Request, Resource, Subject

    return Request(subject=Subject(zone=friendZone, device=sender, user=None, relation="friend"),
                   resource=Resource(service=service, method=method, path=None),
                   action="connect")


def _calledMethod(payload: dict) -> tuple:
    """
    C{(service, method)} of a JSON-RPC request's C{SERVICE.METHOD}, or
    C{(None, None)} when it names none the zone's way.
    """
    method = payload.get("method")
    if isinstance(method, str) and method.count(".") == 1:
        service, name = method.split(".")
        return service, name
    return None, None


class ZoneLinkClient(Link):
    """
    The dialling end of a zone link: this hub, presenting its hub
    certificate, to a friend zone's hub.

    @ivar ready: fires with this link once the other hub admitted it
        (C{zoneLinked}), or fails with the L{ZoneError} it was refused with.
    """

    ownerInterface = IZoneLinkOwner
    _log = Logger()

    def __init__(self, owner, friendZone: str) -> None:
        super().__init__(owner)
        self.friendZone = self.peerId = friendZone
        self.localId = self.owner.zoneId
        self.MAX_LENGTH = self.owner.maxFrame
        self.ready: Deferred = Deferred()
        self._pinger: Optional[LoopingCall] = None

    def connectionMade(self) -> None:
        self.setTimeout(self.owner.keepalive * 3)

    def certificateReceived(self, cert) -> None:
        # The TLS layer checked the chain up to the friend's CA and the
        # host name; the hub certificate must also name the friend zone.
        if cert is None or pki.identityOf(cert) != self.friendZone:
            self.linkRefused(ZoneError("CERT_UNTRUSTED",
                                       f"the hub is not zone {self.friendZone}'s hub"))
            self.transport.loseConnection()

    def linked(self) -> None:
        """
        The other hub admitted this link: ping it from now on.
        """
        self._pinger = LoopingCall(self.sendMessage, self.friendZone, {"status": "ping"})
        self._pinger.clock = self.clock
        self._pinger.start(self.owner.keepalive, now=False)
        if not self.ready.called:
            self.ready.callback(self)

    def linkRefused(self, error: ZoneError) -> None:
        """
        The other hub refused this link (or it was not the hub expected).
        """
        if not self.ready.called:
            self.ready.errback(error)

    def envelopeReceived(self, envelope: Envelope) -> None:
        self.owner.received(self, envelope)

    def replyTarget(self, envelope: Envelope) -> str:
        return self.owner.replyTarget(self, envelope)

    def deliver(self, data: bytes, sender) -> None:
        """
        Forward one frame body from a device link of this zone.

        @raise ZoneError: C{ZONE_UNREACHABLE} if this link is closing.
        """
        if self.transport is None or self.transport.disconnecting:
            raise ZoneError("ZONE_UNREACHABLE", f"the link to zone {self.friendZone} is closing")
        self.sendString(data)

    def waitFor(self, target) -> None:
        """
        A device link this link forwards to is congested.  The dialling
        end does not pause its reading for it: the device link's own
        limit drops a device that does not read.
        """

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self.linkRefused(ZoneError("NOT_CONNECTED",
                                   f"the link to zone {self.friendZone}'s hub closed"))
        self.owner.detach(self)


class _ClientFactory(Factory):
    def __init__(self, owner, friendZone: str) -> None:
        self._owner = owner
        self._friendZone = friendZone

    def buildProtocol(self, addr):
        return ZoneLinkClient(self._owner, self._friendZone)


def tlsConnector(reactor, zone) -> Callable:
    """
    The endpoint a hub of C{zone} dials a friend at: TLS presenting the
    hub's certificate, trusting only the friend's CA and checking its host.
    """
    def connect(record):
        options = pzpClientOptions(pki.loadCertificate(record.caPEM), zone.hubKey,
                                   zone.hubCert, record.host)
        return wrapClientTLS(options, HostnameEndpoint(reactor, record.host, record.port,
                                                       timeout=30))
    return connect


@implementer(IZoneLinkOwner)
class ZoneLinks(service.MultiService):
    """
    This hub's links with its friend zones' hubs, and the routing of calls
    over them.

    A link is either the hub's end of a connection the friend dialled (a
    L{pzh.protocol.HubProtocol} whose C{friendZone} is set) or a
    L{ZoneLinkClient} this hub dialled; both send with C{sendString} /
    C{sendMessage} and forward with C{deliver}.
    """

    _log = Logger()
    messages = MessageTable(unknown=lambda name: ZoneError(
        "UNKNOWN_MESSAGE", f"a zone link does not carry {name!r}"))

    def __init__(self, zone, friends, registry, store, clock,
                 connector: Optional[Callable] = None, pdp=None,
                 maxFrame: int = DEFAULT_MAX_FRAME, keepalive: float = 30.0,
                 retryPolicy=None, share=None) -> None:
        """
        @param friends: the L{pzh.friends.Friends}, observed here.
        @param registry: the L{pzh.registry.Registry} of this zone's
            connected devices, that calls coming in are delivered to.
        @param store: the hub's store, to tell an unknown device from an
            offline one.
        @param connector: C{connector(FriendRecord)} gives the endpoint to
            dial a friend at (L{tlsConnector}); None: this hub dials none.
        @param pdp: a policy decision point (C{decide(request)}) asked
            before a call from another zone is let in, or None.
        @param share: the L{pzh.friendshare.FriendShare} told of each link
            and handed the sharing messages, or None: nothing is shared.
        """
        super().__init__()
        self.zone = zone
        self.zoneId = zone.zoneId
        self.clock = clock
        self.maxFrame = maxFrame
        self.keepalive = keepalive
        self._friends = friends
        self._registry = registry
        self._store = store
        self._connector = connector
        self._pdp = pdp
        self._share = share
        self._retryPolicy = retryPolicy or backoffPolicy(initialDelay=1.0, maxDelay=60.0)
        self._links: dict = {}
        self._dialers: dict = {}
        self._refused: dict = {}
        self.refusals = RateLimitedLog(Logger(namespace="pzh.zonelink"), clock.seconds)
        friends.observe(self)

    # -- the links ------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._friends.publish()
        for record in self._friends.records():
            if record.dials:
                self._dial(record)
        if self._share is not None:
            self._share.start()

    def stopService(self):
        if self._share is not None:
            self._share.stop()
        return super().stopService()

    def _dial(self, record) -> None:
        if self._connector is None or record.zoneId in self._dialers:
            return
        dialer = ClientService(self._connector(record), _ClientFactory(self, record.zoneId),
                               retryPolicy=self._retryPolicy, clock=self.clock,
                               prepareConnection=self._prepare)
        self._dialers[record.zoneId] = dialer
        dialer.setServiceParent(self)

    def _prepare(self, link: ZoneLinkClient) -> Deferred:
        """
        The dialled link counts as connected once the other hub admitted
        it; a refusal is remembered, for the calls and C{zones}.
        """
        def refused(failure):
            failure.trap(ZoneError)
            if failure.value.code != "NOT_CONNECTED":
                self._refused[link.friendZone] = failure.value.code
                self.refusals.info("zone {zone}'s hub refused this hub's link: {code} {message}",
                                   zone=link.friendZone, code=failure.value.code,
                                   message=failure.value.message)
            return failure
        return link.ready.addErrback(refused)

    def friendAdded(self, record) -> None:
        """
        A zone became a friend: forget any refusal from before, and dial it
        if this side dials.
        """
        self._refused.pop(record.zoneId, None)
        if record.dials and self.running:
            self._dial(record)

    def friendRemoved(self, zoneId: str) -> None:
        """
        A zone is no longer a friend: stop dialling it, and close its link
        at once, telling it why.
        """
        self._refused.pop(zoneId, None)
        dialer = self._dialers.pop(zoneId, None)
        link = self._links.pop(zoneId, None)
        if link is not None and link.transport is not None:
            link.sendMessage(zoneId, {"status": "zoneClosed", "code": "ZONE_UNTRUSTED",
                                      "message": f"zone {self.zoneId} no longer trusts "
                                                 f"zone {zoneId}"})
            link.transport.loseConnection()
        if dialer is not None:
            dialer.disownServiceParent()

    def admit(self, link, cert) -> bool:
        """
        Whether the hub's end of a connection (L{pzh.protocol.HubProtocol})
        whose certificate is not of this zone is a friend's hub; if so it
        becomes that friend's zone link.

        @raise pki.CertificateError: for a certificate a friend's CA issued
            that is not its hub's (L{pzh.friends.Friends.hubIdentity}).
        """
        zoneId = self._friends.hubIdentity(cert)
        if zoneId is None:
            return False
        link.friendZone = link.peerId = zoneId
        link.setTimeout(self.keepalive * 3)
        link.sendMessage(zoneId, {"status": "zoneLinked", "zone": self.zoneId})
        self._attach(link)
        return True

    def _attach(self, link) -> None:
        old = self._links.get(link.friendZone)
        if old is not None and old is not link:
            self._log.info("zone {zone}'s hub linked again; closing its older link",
                           zone=link.friendZone)
            old.transport.loseConnection()
        self._links[link.friendZone] = link
        self._refused.pop(link.friendZone, None)
        self._log.info("zone link with {zone} up", zone=link.friendZone)
        if self._share is not None:
            self._share.linkUp(link)

    def detach(self, link) -> None:
        if self._links.get(link.friendZone) is link:
            del self._links[link.friendZone]
            self._log.info("zone link with {zone} down", zone=link.friendZone)
            if self._share is not None:
                self._share.linkDown(link.friendZone)

    def linkFor(self, zoneId: str):
        """
        The live link with zone C{zoneId}, or None.
        """
        return self._links.get(zoneId)

    def state(self, zoneId: str) -> str:
        """
        What C{pzctl zones} shows of the link with C{zoneId}: C{up},
        C{refused (CODE)}, C{connecting} (this hub dials it) or
        C{waiting} (for the friend to dial).
        """
        if zoneId in self._links:
            return "up"
        if zoneId in self._refused:
            return f"refused ({self._refused[zoneId]})"
        return "connecting" if zoneId in self._dialers else "waiting"

    # -- what arrives ---------------------------------------------------------

    def replyTarget(self, link, envelope: Envelope) -> str:
        """
        A refusal goes to the device of the friend zone that sent what is
        refused (its hub hands it on), else to the friend's hub.
        """
        if zoneOf(envelope.sender) == link.friendZone:
            return envelope.sender
        return link.friendZone

    def received(self, link, envelope: Envelope) -> None:
        """
        An envelope from a friend's hub: for this hub itself (the table),
        or to be let in to one of this zone's devices.

        @raise ZoneError: to refuse it.
        """
        if envelope.to in ("", self.zoneId):
            self.messages.dispatchEnvelope(envelope, link)
            return
        self._forwardIn(link, envelope)

    @messages.before
    def _fromFriendHub(self, name: str, link, envelope: Envelope) -> None:
        """
        Before every message to this hub: only the friend's hub itself
        speaks to it on the link.
        """
        if envelope.sender != link.friendZone:
            raise ZoneError("NOT_AUTHORISED",
                            f"only zone {link.friendZone}'s hub may send {name!r} here")

    @messages.handler("zoneLinked", zone=Text(maxLength=512))
    def _zoneLinked(self, link, envelope: Envelope, zone) -> None:
        """
        The hub this hub dialled admitted it.
        """
        if not isinstance(link, ZoneLinkClient) or link.ready.called:
            raise ZoneError("UNKNOWN_MESSAGE", "'zoneLinked' is the answering hub's to send")
        self._attach(link)
        link.linked()

    @messages.handler("zoneClosed", code=Text(maxLength=64), message=Text(optional=True))
    def _zoneClosed(self, link, envelope: Envelope, code, message) -> None:
        """
        The friend no longer trusts this zone: its calls will be refused
        at this hub from now on, with the code it gave.
        """
        self._refused[link.friendZone] = "ZONE_UNTRUSTED"
        self._log.info("zone {zone} no longer trusts this zone; its link closes",
                       zone=link.friendZone)
        link.transport.loseConnection()

    @messages.handler("zoneShared", items=Anything())
    def _zoneShared(self, link, envelope: Envelope, items) -> None:
        """
        The friend's list of what it shares with this zone.
        """
        self._sharing().offered(self._admitted(link), items)

    @messages.handler("zoneSharedNeed", paths=JSONList())
    def _zoneSharedNeed(self, link, envelope: Envelope, paths) -> None:
        """
        The friend asks for items this zone shares with it.
        """
        self._sharing().needed(self._admitted(link), paths)

    @messages.handler("zoneItem", path=Text(maxLength=1024), data=Text())
    def _zoneItem(self, link, envelope: Envelope, path, data) -> None:
        """
        One item the friend shares with this zone.
        """
        self._sharing().itemReceived(self._admitted(link), path, data)

    def _sharing(self):
        if self._share is None:
            raise ZoneError("UNKNOWN_MESSAGE", "this hub shares nothing with friend zones")
        return self._share

    def _admitted(self, link):
        if self._links.get(link.friendZone) is not link:
            raise ZoneError("NOT_AUTHORISED", "this zone link is not admitted yet")
        return link

    @messages.handler("ping")
    def _ping(self, link, envelope: Envelope) -> None:
        link.sendMessage(link.friendZone, {"status": "pong", "ref": envelope.id})

    @messages.handler("pong")
    def _pong(self, link, envelope: Envelope) -> None:
        """
        The other hub answered a ping: the link is alive (every frame
        already reset its idle timer).
        """

    @messages.handler("error")
    def _error(self, link, envelope: Envelope) -> None:
        """
        The other hub refused something of this hub's: before admission,
        the link itself; after, it is logged and never answered.
        """
        payload = envelope.payload
        if isinstance(link, ZoneLinkClient) and not link.ready.called:
            code = payload.get("code")
            try:
                error = ZoneError(code, str(payload.get("message", "")))
            except (TypeError, ValueError):
                error = ZoneError("INTERNAL", f"{code}: {payload.get('message', '')}")
            link.linkRefused(error)
            link.transport.loseConnection()
            return
        if link.answered(payload):
            return
        self.refusals.info("zone {zone}'s hub sent {code} answering no request",
                           zone=link.friendZone, code=payload.get("code", ""))

    def _forwardIn(self, link, envelope: Envelope) -> None:
        """
        Let a call (or an error reply) from the friend zone of C{link} in
        to one of this zone's devices.
        """
        friend = link.friendZone
        if link not in self._links.values():
            raise ZoneError("NOT_AUTHORISED", "this zone link is not admitted yet")
        isCall = envelope.type == "JSONRPC"
        if isCall and (zoneOf(envelope.sender) != friend or envelope.sender == friend):
            raise ZoneError("NOT_AUTHORISED", f"a call on zone {friend}'s link must come from "
                                              f"a device of zone {friend}")
        if not isCall and (envelope.name != "error" or zoneOf(envelope.sender) != friend):
            raise ZoneError("NOT_AUTHORISED", "only service calls and their errors cross zones")
        if envelope.respTo is not None and envelope.respTo != envelope.sender:
            raise ZoneError("NOT_AUTHORISED", "a call from another zone is answered to its sender")
        target = self._localDevice(envelope.to)
        if isCall and "method" in envelope.payload:
            self._decide(friend, envelope)
        data = encodeEnvelope(envelope)
        if len(data) > self.maxFrame:
            raise ZoneError("FRAME_TOO_LARGE", f"this message is {len(data)} bytes, over the "
                                               f"limit of {self.maxFrame}")
        target.deliver(data, link)

    def _localDevice(self, deviceId: str):
        """
        The live link of this zone's device C{deviceId}.

        @raise ZoneError: C{UNKNOWN_DESTINATION} or C{DEVICE_OFFLINE}.
        """
        zone, slash, _ = deviceId.rpartition("/")
        if not slash or zone != self.zoneId:
            raise ZoneError("UNKNOWN_DESTINATION", f"{deviceId!r} is not a device of zone "
                                                   f"{self.zoneId}")
        target = self._registry.get(deviceId)
        if target is not None:
            return target
        device = self._store.getDevice(deviceId)
        if device is None or device.revoked is not None:
            raise ZoneError("UNKNOWN_DESTINATION", f"no device {deviceId!r} in this zone")
        raise ZoneError("DEVICE_OFFLINE", f"{deviceId} is not connected")

    def _decide(self, friend: str, envelope: Envelope) -> None:
        """
        Ask the policy decision point, if there is one, whether the call
        may come in; the decision and its rule are logged in one line.
        """
        if self._pdp is None:
            return
        service, method = _calledMethod(envelope.payload)
        decision = self._pdp.decide(_policyRequest(friend, envelope.sender, service, method))
        self._log.info("policy {effect} {subject} {service}.{method} rule={rule}",
                       effect=decision.effect, subject=envelope.sender, service=service,
                       method=method, rule=decision.ruleId)
        # A prompt is the called device's to put to its owner.
        if decision.effect != "Permit" and decision.prompt is None:
            raise ZoneError("DENIED", f"this zone's policy does not let "
                                              f"{envelope.sender} call {service}.{method} "
                                              f"(rule {decision.ruleId}: {decision.reason})")

    # -- what leaves ----------------------------------------------------------

    def forwardOut(self, link, envelope: Envelope) -> None:
        """
        Send a message of this zone's device (on C{link}, C{from} already
        the id its certificate proves) to a device of a friend zone.

        @raise ZoneError: C{ZONE_UNTRUSTED} for a zone that is not a friend
            or that refused this zone's link; C{ZONE_UNREACHABLE} while the
            link is down; C{NOT_AUTHORISED} for what may not cross.
        """
        zone, slash, _ = envelope.to.rpartition("/")
        if not slash:
            raise ZoneError("UNKNOWN_DESTINATION", f"{envelope.to!r} is not a device id")
        if not self._friends.trusts(zone):
            raise ZoneError("ZONE_UNTRUSTED", f"zone {zone} is not a friend of this zone "
                                              "(pzctl --hub-dir DIR zones lists them)")
        if envelope.type != "JSONRPC" and envelope.name != "error":
            raise ZoneError("NOT_AUTHORISED", "only service calls and their errors cross zones")
        if envelope.respTo is not None and envelope.respTo != envelope.sender:
            raise ZoneError("NOT_AUTHORISED", "a call to another zone is answered to its sender")
        target = self._links.get(zone)
        if target is None:
            refused = self._refused.get(zone)
            if refused is not None:
                raise ZoneError("ZONE_UNTRUSTED", f"zone {zone}'s hub refuses this zone's "
                                                  f"link ({refused})")
            raise ZoneError("ZONE_UNREACHABLE", f"the link to zone {zone}'s hub is not up "
                                                f"({self.state(zone)})")
        data = encodeEnvelope(envelope)
        if len(data) > self.maxFrame:
            raise ZoneError("FRAME_TOO_LARGE", f"with its sender filled in this message is "
                                               f"{len(data)} bytes, over the limit of "
                                               f"{self.maxFrame}")
        target.deliver(data, link)

    def listing(self) -> list:
        """
        What C{pzctl zones} shows of every friend zone: with sharing, also
        the paths this zone shares with it (C{shares}) and those it shared
        here (C{shared}).
        """
        rows = []
        for r in self._friends.records():
            row = {"zone": r.zoneId, "fingerprint": r.fingerprint,
                   "since": datetime.fromtimestamp(r.since, timezone.utc).isoformat(
                       timespec="seconds").replace("+00:00", "Z"),
                   "hub": f"{r.host}:{r.port}", "dials": r.dials, "link": self.state(r.zoneId)}
            if self._share is not None:
                row["shares"] = sorted(self._share.sharedWith(r.zoneId))
                row["shared"] = self._share.heldFrom(r.zoneId)
            rows.append(row)
        return rows
