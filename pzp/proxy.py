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
    - L{pzp.sync.ZoneSync}: the zone's items kept in step with the hub's.

The top-level mode (Virgin, Hub, Left) is the L{pzp.mode.ModeMachine},
fed from here alone: by the service's start and stop, the admin side's
C{status} and C{send}, and the workers' L{IProxyEvents}.  The hub link
is given the proxy (its owner) and finds the Hub workers through it.
"""

import attrs
from twisted.application import service
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from pz.errors import ZoneError
from pz.ids import checkDeviceId
from pzp.hublink import HubLinkProtocol
from pzp.hubmode import HubMode
from pzp.identity import Identity
from pzp.inbox import MAX_BYTES, MAX_MESSAGES, MAX_TEXT, Inbox
from pzp.interfaces import IHubLinkOwner
from pzp.mode import HubWorkers, ModeCore, ModeMachine
from pzp.peerdir import PeerDirectory
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
    """

    keepalive: float = 30.0
    requestTimeout: float = 10.0
    enrolTimeout: float = 30.0
    initialBackoff: float = 0.5
    maxBackoff: float = 30.0
    inboxMessages: int = MAX_MESSAGES
    inboxBytes: int = MAX_BYTES
    sync: SyncSettings = SyncSettings()


@implementer(IProxyEvents, IHubLinkOwner)
class Proxy(service.MultiService):
    """
    One device's proxy.

    @ivar lastError: the last L{ZoneError} an attempt ended with, if any.
    """

    _log = Logger()

    def __init__(self, dataDir: str, reactor, deviceName: str, pairCode=None,
                 settings: ProxySettings = ProxySettings(), giveUp=None) -> None:
        """
        @param giveUp: called with a L{ZoneError} when the proxy cannot do
            its job whatever it retries (a refused pairing code, a hub that
            is not the zone's, no code and no zone): C{twistd pzp} exits.
        """
        super().__init__()
        self._giveUp = giveUp or (lambda error: None)
        self.zoneDir = ZoneDirectory(dataDir)
        self.clock = self._reactor = reactor
        self.deviceName = deviceName
        self.settings = settings
        self._pairCode = pairCode
        self.lastError = None
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
        inbox = Inbox(self.zoneDir.file("inbox.jsonl"), self.clock,
                      self.settings.inboxMessages, self.settings.inboxBytes)
        hubMode = HubMode(self._reactor, self.settings,
                          Factory.forProtocol(lambda: HubLinkProtocol(self)), self)
        renewal = Renewal(self.clock)
        revocation = Revocation(self.zoneDir)
        directory = PeerDirectory()
        sync = ZoneSync(self.clock, self.zoneDir, self.settings.sync)
        hubMode.wire(self, identity, renewal, revocation, directory, sync)
        renewal.wire(self, identity)
        revocation.wire(self, identity)
        sync.wire(identity, revocation)
        return HubWorkers(identity, inbox, hubMode, renewal, revocation, directory, sync)

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

    def peersUpdated(self, update: dict) -> None:
        """
        The hub's C{pzpUpdate}, for the peer directory.
        """
        self._mode.hub().directory.update(update)

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
