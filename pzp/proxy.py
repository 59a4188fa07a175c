# -*- test-case-name: tests.pzp.test_proxy -*-
"""
The proxy: one device's object graph, built and wired in one place.

L{Proxy} does no work of its own.  It builds the workers, each owning its
state machine, and tells each who it talks to (L{Proxy._buildWorkers},
as magic-wormhole's C{Boss} does):

    - L{pzp.virgin.VirginMode}: enrolment with the pairing code;
    - L{pzp.hubmode.HubMode}: the reconnecting, authenticated hub link;
    - L{pzp.renewal.Renewal}: the certificate renewed in time;
    - L{pzp.revocation.Revocation}: the zone's CRL, and the erasure on
      proof of revocation;
    - L{pzp.peerdir.PeerDirectory}: who in the zone is connected;
    - L{pzp.sync.ZoneSync}: the zone's items kept in step with the hub's;
    - L{pzp.peermode.PeerMode} and L{pzp.peerserver.PeerServer}: direct
      links to the zone's other devices (Peer mode), over which
      L{pzp.peersync.PeerSync} passes on certificates, the CRL and policies;
    - L{pzp.discovery.Discovery}: this device announced to the hub, and
      the zone's services listed;
    - L{pzp.calls.CallWorker}: service calls served and made, over the
      route L{HubWorkers.route} picks (a Connected peer link, else the hub);
    - L{pzp.meshapprovals.MeshApprovals} (with C{--mesh-approvals}): the
      hub's Mesh requests answered for the accounts this device
      administers.

The top-level mode (Virgin, Hub, Left) is the L{pzp.mode.ModeMachine},
fed from here alone: by the service's start and stop, the admin side's
C{status} and C{send}, and the workers' L{IProxyEvents}.  The hub link
is given the proxy (its owner) and finds the Hub workers through it.
"""

from typing import Optional

import attrs
from twisted.application import service
from twisted.internet.defer import fail
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from pz import pki
from pz.errors import ZoneError
from pz.pairing import PeerCode
from pz.ids import checkDeviceId
from pz.sync.items import ItemTree
from pz.zoneservice import ServiceRegistry
from pzp.builtins.defaults import builtinServices
from pzp.calls import DEFAULT_TIMEOUT, CallWorker
from pzp.discovery import Discovery
from pzp.friendtrust import friendCAs, friendCRLs
from pzp.hublink import HubLinkProtocol
from pzp.hubmode import HubMode
from pzp.identity import Identity
from pzp.inbox import MAX_BYTES, MAX_MESSAGES, MAX_TEXT, Inbox
from pzp.meshapprovals import MeshApprovals
from pzp.interfaces import IHubLinkOwner, IPromptHandler
from pzp.mode import HubWorkers, ModeCore, ModeMachine
from pzp.peerdir import PeerDirectory
from pzp.exchange import ExchangeTickets
from pzp.peermode import PeerMode, exchangeDialer, tlsDialer
from pzp.peerserver import PeerServer
from pzp.peersync import PeerSync
from pzp.policy import CallPolicy, ItemPolicy
from pzp.prompts import DEFAULT_PROMPT_TIMEOUT, PromptQueue
from pzp.preferences import peerConnection, readPreferences
from pzp.renewal import Renewal
from pzp.revocation import Revocation
from pzp.seams import IProxyEvents
from pzp.sync import SyncSettings, ZoneSync
from pzp.virgin import VirginMode
from pzp.zonedir import ZoneDirectory

__all__ = ["Proxy", "ProxySettings"]


@attrs.frozen
class ProxySettings:
    """
    The proxy's tunables.

    @ivar keepalive: seconds between pings on the hub link; a hub silent
        for three of them is taken as gone.
    @ivar inboxMessages: the most messages the inbox keeps.
    @ivar inboxBytes: the largest the inbox file grows, in bytes.
    @ivar sync: how the zone's items are synchronised.
    @ivar peerPort: the peer server's port (0: any free port; None: no
        peer server).
    @ivar peerInterface: the address the peer server listens on (all).
    @ivar peerConnection: whether this device dials the zone's other
        devices (also only while the C{peer_connection} preference is on).
    @ivar builtinServices: whether the built-in services run.
    @ivar callTimeout: seconds a service call waits for its answer.
    @ivar meshApprovals: whether this device answers the hub's Mesh
        requests for the accounts it administers (L{pzp.meshapprovals}).
    @ivar promptTimeout: seconds a prompt of the built-in
        L{pzp.prompts.PromptQueue} waits for its answer before the call is
        denied.
    """

    keepalive: float = 30.0
    requestTimeout: float = 10.0
    enrolTimeout: float = 30.0
    initialBackoff: float = 0.5
    maxBackoff: float = 30.0
    inboxMessages: int = MAX_MESSAGES
    inboxBytes: int = MAX_BYTES
    sync: SyncSettings = SyncSettings()
    peerPort: Optional[int] = 0
    peerInterface: str = ""
    peerConnection: bool = True
    builtinServices: bool = True
    callTimeout: float = DEFAULT_TIMEOUT
    meshApprovals: bool = False
    promptTimeout: float = DEFAULT_PROMPT_TIMEOUT


@implementer(IProxyEvents, IHubLinkOwner)
class Proxy(service.MultiService):
    """
    One device's proxy.

    @ivar lastError: the last L{ZoneError} an attempt ended with, if any.
    """

    _log = Logger()

    def __init__(self, dataDir: str, reactor, deviceName: str, pairCode=None,
                 settings: ProxySettings = ProxySettings(), giveUp=None,
                 services=(), promptHandler=None) -> None:
        """
        @param giveUp: called with a L{ZoneError} when the proxy cannot do
            its job whatever it retries (a refused pairing code, a hub that
            is not the zone's, no code and no zone): C{twistd pzp} exits.
        @param services: zone services (L{pz.zoneservice.IZoneService})
            this device runs besides the built-in ones; more may be added
            to L{registry} at any time.
        @param promptHandler: the L{IPromptHandler} that asks the person
            when the policy says to prompt; by default the built-in
            L{PromptQueue}, answered with C{pzctl answer}.
        """
        super().__init__()
        self._giveUp = giveUp or (lambda error: None)
        self.zoneDir = ZoneDirectory(dataDir)
        self.clock = self._reactor = reactor
        self.deviceName = deviceName
        self.settings = settings
        self._pairCode = pairCode
        self.lastError = None
        #: The services this device runs, called by the zone's devices.
        self.registry = ServiceRegistry()
        for zoneService in services:
            self.registry.register(zoneService)
        #: Who asks the person when a rule says to prompt.
        self.prompts = IPromptHandler(promptHandler if promptHandler is not None
                                      else PromptQueue(reactor, settings.promptTimeout))
        self.calls = CallWorker(self.registry, reactor, settings.callTimeout)
        self._meshApprovals = None
        self._buildWorkers()

    def _buildWorkers(self) -> None:
        """
        Build what exists in every mode: the enrolment worker and the Mode
        machine, which builds the Hub workers when it enters Hub mode.
        """
        self._virgin = VirginMode(self._reactor, self.settings, self.zoneDir, self.deviceName,
                                  self._pairCode)
        self._virgin.wire(self)
        self._mode = ModeMachine(ModeCore(self._virgin, self._buildHubWorkers))

    def _buildHubWorkers(self) -> HubWorkers:
        """
        Build and wire the workers of one zone membership, from the stored
        credentials.
        """
        identity = Identity(self.zoneDir)
        creds = identity.current
        inbox = Inbox(self.zoneDir.file("inbox.jsonl"), self.clock,
                      self.settings.inboxMessages, self.settings.inboxBytes)
        hubMode = HubMode(self._reactor, self.settings,
                          Factory.forProtocol(lambda: HubLinkProtocol(self)), self)
        renewal = Renewal(self.clock)
        revocation = Revocation(self.zoneDir)
        directory = PeerDirectory()
        sync = ZoneSync(self.clock, self.zoneDir, self.settings.sync)
        items = ItemTree(self.zoneDir.path)
        # Every incoming call is decided by the zone's policy from now on.
        self.calls.policy = CallPolicy(ItemPolicy(items), items, lambda: identity.current.zoneId,
                                       self.prompts, lambda: peers.guestIds())
        if self.settings.builtinServices:
            for builtin in builtinServices(items):
                if builtin.name not in self.registry:
                    self.registry.register(builtin)
        peerServer = PeerServer(self._reactor, lambda: peers.serverFactory(),
                                self.settings.peerPort, self.settings.peerInterface)
        discovery = Discovery(self.registry, items, creds.zoneId, peerServer.port)
        peerSync = PeerSync(self.clock, items, lambda: identity.current, revocation.crlReceived,
                            versionTime=sync.versionTime,
                            constrained=self.settings.sync.constrained)
        peers = PeerMode(self.clock, identity, inbox, tlsDialer(self._reactor), self.calls,
                         self.settings.keepalive, discovery.announcement, peerSync,
                         friends=lambda: friendCAs(items.root, identity.current.zoneId),
                         friendCRLs=lambda cas: friendCRLs(items.root, cas),
                         # Peer-exchange tickets live in memory only: a
                         # restart leaves none, and nothing is written.
                         tickets=ExchangeTickets(self.clock),
                         exchangeDialer=exchangeDialer(self._reactor))
        approvals = (MeshApprovals(self.zoneDir.dataDir, self._reactor, creds.zoneId)
                     if self.settings.meshApprovals else None)
        hubMode.wire(self, identity, renewal, revocation, directory, sync, discovery, approvals)
        renewal.wire(self, identity)
        revocation.wire(self, identity)
        revocation.observeCRL(peers.crlReceived)
        # A new CRL is announced to the peers at once, not at the next look.
        revocation.observeCRL(lambda crl: peerSync.localChanged())
        sync.wire(identity, revocation)
        self._meshApprovals = approvals
        return HubWorkers(
            identity, inbox, hubMode, renewal, revocation, directory, sync, peers, peerServer,
            discovery, self.calls,
            lambda: self.settings.peerConnection and peerConnection(readPreferences(items)))

    def startService(self) -> None:
        super().startService()
        if self.zoneDir.enrolled():
            if self._pairCode is not None:
                self._log.info("already enrolled in {zone}; ignoring the pairing code",
                               zone=self.zoneDir.marker().get("zone"))
            self._mode.enterHub()
        else:
            self._mode.enrol()

    def stopService(self):
        self._mode.stop()
        if isinstance(self.prompts, PromptQueue):
            self.prompts.stop()
        return super().stopService()

    @property
    def mode(self) -> str:
        """
        C{"Virgin"} or C{"Hub"}, as the status says.
        """
        return self._mode.name()

    # --- IProxyEvents -----------------------------------------------------------

    def enrolled(self) -> None:
        self._mode.enterHub()

    def leftZone(self) -> None:
        self._mode.leave()

    def reportError(self, error) -> None:
        self.lastError = error

    def clearError(self) -> None:
        self.lastError = None

    def giveUp(self, error) -> None:
        self._giveUp(error)

    # --- what the hub link uses of its owner --------------------------------------

    @property
    def credentials(self):
        """
        The zone credentials in use (None outside Hub mode).
        """
        hub = self._mode.hub()
        return hub.identity.current if hub is not None else None

    @property
    def inbox(self):
        """
        Where received texts go (None outside Hub mode).
        """
        hub = self._mode.hub()
        return hub.inbox if hub is not None else None

    @property
    def hubInputs(self):
        """
        The Hub mode worker, told when the link is lost (None outside Hub
        mode).
        """
        hub = self._mode.hub()
        return hub.hubMode if hub is not None else None

    @property
    def meshApprovals(self):
        """
        What answers the hub's Mesh requests (None without
        C{--mesh-approvals}, or outside Hub mode).
        """
        return self._meshApprovals if self._mode.hub() is not None else None

    def peersUpdated(self, update: dict) -> None:
        """
        The hub's C{pzpUpdate}, for the peer directory and Peer mode.
        """
        self._mode.hub().peersUpdated(update)

    def crlReceived(self, crl) -> None:
        """
        A CRL pushed by the hub, for the revocation worker.
        """
        self._mode.hub().revocation.crlReceived(crl)

    def renew(self, link):
        """
        Renew over C{link} now (the hub asked before registering it).
        """
        return self._mode.hub().renewal.renew(link)

    def syncReceived(self, payload: dict) -> None:
        """
        A synchronisation message from the hub, for the sync worker.
        """
        self._mode.hub().sync.received(payload)

    # --- what the admin side asks for ---------------------------------------------

    def status(self) -> dict:
        """
        Where this device is, for C{pzctl status}.
        """
        marker = self.zoneDir.marker() or {}
        status = {"device": marker.get("device"), "zone": marker.get("zone"),
                  **self._mode.status()}
        if self.lastError is not None:
            status["error"] = {"code": self.lastError.code, "message": self.lastError.message}
        return status

    def syncNow(self):
        """
        Synchronise now (C{pzctl sync}); fires with what was exchanged.
        """
        return self._hubWorkers().sync.syncNow()

    def conflicts(self) -> list:
        """
        The losing versions kept under C{zone/conflicts/} (C{pzctl conflicts}).
        """
        return self._hubWorkers().sync.conflicts()

    def _hubWorkers(self):
        hub = self._mode.hub()
        if hub is None:
            raise ZoneError("NOT_CONNECTED", "this device has not enrolled in a zone yet")
        return hub

    def send(self, to: str, text: str, queue: bool = False):
        """
        Send a text message to another device of the zone; fires once it
        acknowledged receipt (C{ack}) or, with C{queue}, once the hub said
        it keeps the message for that offline device (C{queued}), with
        that answer's payload.
        """
        if not isinstance(to, str) or not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ZoneError("BAD_REQUEST", f"send needs a device id and a text of at most {MAX_TEXT} characters")
        if not isinstance(queue, bool):
            raise ZoneError("BAD_REQUEST", "send's 'queue' must be true or false")
        checkDeviceId(to)
        payload = {"status": "message", "text": text}
        if queue:
            payload["queue"] = True
        return self._mode.send(to, payload)

    def call(self, to: str, service: str, method: str, params=None,
             timeout: Optional[float] = None):
        """
        Call C{service.method} with C{params} (a JSON list or object) on
        device C{to} of the zone (this device's own id included); fires
        with the result, or fails with the L{ZoneError} that names what
        failed.
        """
        return self.callVia(to, service, method, params, timeout).addCallback(
            lambda answer: answer["result"])

    def callVia(self, to: str, service: str, method: str, params=None,
                timeout: Optional[float] = None):
        """
        L{call}, firing with C{{"result": ..., "via": ...}}: which path
        carried it (C{local}, C{peer} or C{hub}).
        """
        checkDeviceId(to)
        try:
            return self._hubWorkers().call(to, service, method, params, timeout)
        except ZoneError as e:
            return fail(e)

    def waitingPrompts(self) -> list:
        """
        The prompts waiting for an answer (C{pzctl prompts}).
        """
        return self._promptQueue().waiting()

    def answerPrompt(self, promptId: str, permit: bool, scope=None) -> dict:
        """
        Answer a waiting prompt (C{pzctl answer}).
        """
        return self._promptQueue().answer(promptId, permit, scope)

    def _promptQueue(self) -> PromptQueue:
        if not isinstance(self.prompts, PromptQueue):
            raise ZoneError("BAD_REQUEST", "this device's prompts are answered by the application "
                                           "that runs it, not by pzctl")
        return self.prompts

    def route(self, to: str):
        """
        The link traffic for device C{to} takes now: the peer link while
        it is Connected, else the hub link.

        @raise ZoneError: C{NOT_CONNECTED} when there is neither.
        """
        return self._hubWorkers().route(to)[0]

    def findServices(self) -> list:
        """
        Every service this device can see, and how (L{Discovery.services}).
        (Not C{services}: that is the L{service.MultiService}'s children.)
        """
        return self._hubWorkers().services()

    def peerInvite(self, host: Optional[str] = None) -> dict:
        """
        A one-time peer-exchange code for this device's peer port
        (C{pzctl peer-invite}): C{{"code": ..., "expires": seconds}}.
        """
        hub = self._hubWorkers()
        port = hub.peerServer.port()
        if not port:
            raise ZoneError("NOT_CONNECTED", "this device has no peer server to invite to")
        host = host or self.settings.peerInterface
        if not host or host in ("0.0.0.0", "::"):
            raise ZoneError("BAD_REQUEST", "the peer server listens on every address: "
                                           "say which one the other device dials (--host)")
        token, expires = hub.peers.invite()
        code = PeerCode(host, port, token, pki.certificateDigest(hub.identity.current.cert))
        return {"code": str(code), "expires": expires - self.clock.seconds()}

    def peerExchange(self, code: str):
        """
        Dial the device a peer-exchange C{code} names (C{pzctl
        peer-exchange}); fires with C{{"device": its id}} once the
        one-time link is up.
        """
        try:
            parsed = PeerCode.parse(code)
            return self._hubWorkers().peers.exchange(parsed).addCallback(
                lambda deviceId: {"device": deviceId})
        except ZoneError as e:
            return fail(e)

    def peerClose(self, deviceId: str) -> dict:
        """
        Close the one-time link with C{deviceId} (C{pzctl peer-close}).
        """
        checkDeviceId(deviceId)
        self._hubWorkers().peers.closeGuest(deviceId)
        return {"closed": deviceId}

    def peerStatus(self) -> dict:
        """
        Each known device's Peer machine state, by device id.
        """
        hub = self._mode.hub()
        return hub.peerStates() if hub is not None else {}
