# -*- test-case-name: tests.pzh.test_protocol -*-
"""
The hub's object graph, built in one place.

L{Hub} owns the zone, its store and clock, and builds the parts that act on
them (authority, enrolment, registry, router); the protocols and the admin
socket only ever talk to this object.
"""

from datetime import timedelta

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from pz import pki
from pz.crlparts import crlUpdates
from pz.lograte import RateLimitedLog
from pz.policy.item import POLICY, ItemPolicy
from pz.sync.engine import MAX_ITEM_SIZE
from pz.wire import DEFAULT_MAX_FRAME
from pzh.authority import ZoneAuthority
from pzh.enrolment import Enrolment
from pzh.events import ZoneEvents
from pzh.flow import CoolOff, QueueBudget, TokenBucket
from pzh.friends import Friends
from pzh.friendshare import FriendShare
from pzh.interfaces import IDeviceLinkOwner
from pzh.meshanswerers import ANSWER_TIMEOUT, MeshAnswerers
from pzh.metrics import HubMetrics, IHubMetrics
from pzh.registry import Registry
from pzh.router import QueueLimits, Router
from pzh.services import ZoneServiceCache
from pzh.store import IHubStore
from pzh.zonelink import ZoneLinks
from pzh.zonesync import HubSync

__all__ = ["Hub", "HubSettings"]


@attrs.frozen
class HubSettings:
    """
    The hub's tunables, with their defaults.

    @ivar idleTimeout: seconds of silence after which a device link is
        considered dead (devices ping every third of it).
    @ivar rate: frames a second each device may send, once C{burst} is
        spent (a frame costs one per started 64 KiB).
    @ivar linkQueue: bytes that may wait to be sent on one link before the
        links feeding it stop being read.
    @ivar slowTimeout: seconds a link's queue may stay past C{linkQueue}
        before the link is dropped.
    @ivar queueBudget: bytes that may wait on all links together.
    @ivar coolOff: seconds a device dropped for breaking the rules must
        wait before it may register again; doubled for each further drop,
        up to C{maxCoolOff}.
    @ivar synchronise: keep the zone's items (L{pzh.zonesync}) in step
        with the devices; C{twistd pzh} does, a hub built for a test that
        is not about synchronisation need not.
    @ivar syncInterval: seconds between scans of the items folder.
    @ivar syncMaxItem: the largest item synchronised, in bytes.
    @ivar queueExpiry: seconds a message queued for an offline device
        (C{"queue": true}) is kept before it is dropped undelivered.
    @ivar queueMaxMessages: messages that may be queued for one device.
    @ivar queueMaxBytes: bytes of frames that may be queued for one device.
    @ivar meshAnswerTimeout: seconds the hub waits for an administration
        device to answer a Mesh request asked from the admin page.
    """

    certLifetime: timedelta = timedelta(days=90)
    gracePeriod: timedelta = timedelta(days=30)
    codeLifetime: float = 600.0
    idleTimeout: float = 90.0
    handshakeTimeout: float = 30.0
    maxFrame: int = DEFAULT_MAX_FRAME
    coalesce: float = 0.05
    rate: float = 200.0
    burst: int = 400
    linkQueue: int = 4 * 1024 * 1024
    slowTimeout: float = 30.0
    queueBudget: int = 64 * 1024 * 1024
    coolOff: float = 1.0
    maxCoolOff: float = 60.0
    synchronise: bool = False
    syncInterval: float = 2.0
    syncMaxItem: int = MAX_ITEM_SIZE
    queueExpiry: float = 7 * 24 * 3600.0
    queueMaxMessages: int = 1000
    queueMaxBytes: int = 16 * 1024 * 1024
    meshAnswerTimeout: float = ANSWER_TIMEOUT


@implementer(IDeviceLinkOwner)
class Hub:
    """
    One zone's hub.

    @ivar metrics: its L{pzh.metrics.IHubMetrics}, which its parts report to.
    """

    _log = Logger()

    def __init__(self, zone, store: IHubStore, clock, settings: HubSettings = HubSettings(),
                 metrics=None, connectZone=None, pdp=None) -> None:
        """
        @param metrics: an L{IHubMetrics}; by default a new L{HubMetrics},
            with a registry of its own.
        @param connectZone: gives the endpoint a friend zone's hub is
            dialled at (L{pzh.zonelink.tlsConnector}); None: this hub
            dials no friend.
        @param pdp: the policy decision point asked before a call from a
            friend zone is let in; by default the zone's policy in the hub's
            items (none without synchronisation).
        """
        self.metrics = HubMetrics() if metrics is None else IHubMetrics(metrics)
        self.zone = zone
        self.store = IHubStore(store)
        self.clock = clock
        #: When this hub started, for its uptime.
        self.started = clock.seconds()
        self.settings = settings
        self.idleTimeout = settings.idleTimeout
        self.handshakeTimeout = settings.handshakeTimeout
        self.maxFrame = settings.maxFrame
        self.authority = ZoneAuthority(zone, store, clock, settings.certLifetime,
                                       gracePeriod=settings.gracePeriod)
        self.sync = HubSync(zone, self.authority, clock, interval=settings.syncInterval,
                            maxItem=settings.syncMaxItem) if settings.synchronise else None
        # Without synchronisation the announces are checked and kept in
        # memory, and reach no device.
        self.services = (self.sync.services if self.sync is not None
                         else ZoneServiceCache.inMemory())
        # What changed, for the admin page's live stream (L{pzh.adminapi}).
        self.events = ZoneEvents()
        if self.sync is not None:
            self.sync.observe(lambda deviceId: self.events.emit("sync", deviceId))
            self.sync.observeItems(self._itemChanged)
        self.enrolment = Enrolment(zone, store, self.authority, clock, settings.codeLifetime,
                                   events=self.events)
        self.registry = Registry(zone.zoneId, store, clock, settings.coalesce, observer=self)
        #: The zones this one trusts, and the links with their hubs.
        self.friends = Friends(zone, store, clock, settings.codeLifetime, sync=self.sync,
                               events=self.events)
        if pdp is None and self.sync is not None:
            # The zone's own policy, as the hub's items hold it.
            pdp = ItemPolicy(self.sync.tree)
        #: What this zone shares with its friends, and keeps of theirs.
        self.share = (FriendShare(self.sync, self.authority, self.friends, pdp, clock,
                                  interval=settings.syncInterval)
                      if self.sync is not None and pdp is not None else None)
        self.zoneLinks = ZoneLinks(zone, self.friends, self.registry, store, clock,
                                   connector=connectZone, pdp=pdp, maxFrame=settings.maxFrame,
                                   keepalive=settings.idleTimeout / 3, share=self.share)
        #: The devices that answer Mesh requests for the admin page.
        self.mesh = MeshAnswerers(self.registry, settings.meshAnswerTimeout)
        self.router = Router(zone.zoneId, self.registry, store, self.authority,
                             maxFrame=settings.maxFrame, crlChanged=self.pushCRL,
                             issued=self.certificateIssued, sync=self.sync, clock=clock,
                             services=self.services, routed=self.metrics.routed,
                             mesh=self.mesh, zones=self.zoneLinks,
                             queue=QueueLimits(settings.queueExpiry, settings.queueMaxMessages,
                                               settings.queueMaxBytes))
        self.metrics.watchConnected(lambda: len(self.registry))
        self.queues = QueueBudget(settings.queueBudget)
        self.refusals = RateLimitedLog(Logger(namespace="pzh.protocol"), clock.seconds)
        self._buckets: dict = {}
        self.coolOff = CoolOff(clock, settings.coolOff, settings.maxCoolOff)
        self._forgetRevokedServices()

    def _forgetRevokedServices(self) -> None:
        """
        A device revoked while the hub was not running (C{pzctl revoke}
        signs the CRL itself then) leaves the service cache now.
        """
        for device in self.store.listDevices():
            if device.revoked is not None:
                self.services.forget(device.id)

    def _itemChanged(self, path: str) -> None:
        """
        The hub's copy of an item changed (an edit here, or a device's
        arriving by sync): the admin page hears when it is the policy.
        """
        if path == POLICY:
            self.events.emit("policy", {"path": path})

    def linkUp(self, link) -> None:
        """
        A device's link registered: synchronisation follows it, and the
        listeners hear the device changed.
        """
        if self.sync is not None:
            self.sync.linkUp(link)
        self.mesh.linkUp(link)
        self.events.emit("device", link.deviceId)

    def linkDown(self, link) -> None:
        """
        A device's link went: as L{linkUp}.
        """
        if self.sync is not None:
            self.sync.linkDown(link)
        self.mesh.linkDown(link)
        self.events.emit("device", link.deviceId)

    def newBucket(self) -> TokenBucket:
        """
        A fresh token bucket at the configured rate, for a link not yet
        known to be a device.
        """
        return TokenBucket(self.settings.rate, self.settings.burst, self.clock.seconds)

    def bucketFor(self, deviceId: str) -> TokenBucket:
        """
        The device's token bucket: one per device, kept across its
        connections, so that reconnecting does not refill it.
        """
        bucket = self._buckets.get(deviceId)
        if bucket is None:
            bucket = self._buckets[deviceId] = self.newBucket()
        return bucket

    def revoke(self, deviceId: str) -> dict:
        """
        Revoke a device: CRL first (signed and on disk), then its live link
        is dropped, then every connected device gets the new CRL; its
        services leave the zone's service cache.
        """
        before = self.authority.crl
        serials = self.authority.revoke(deviceId)
        if serials:
            self.metrics.revoked()
        # Nothing queued for it may reach it now.
        self.store.expireQueued(float("inf"), deviceId)
        if self.sync is not None:
            self.sync.deviceRevoked(deviceId)
        link = self.registry.get(deviceId)
        if link is not None:
            link.transport.abortConnection()
        if self.authority.crl is not before:
            self.pushCRL()
        # After the CRL, which must not wait behind synchronisation.
        self.services.forget(deviceId)
        self.events.emit("device", deviceId)
        return {
            "device": deviceId,
            "serials": [format(s, "x") for s in serials],
            "crl_number": pki.crlNumber(self.authority.crl),
        }

    def pushCRL(self) -> None:
        """
        Send the current CRL to every connected device, in pieces no frame
        limit refuses, paced among the other traffic.
        """
        if self.sync is not None:
            self.sync.crlChanged()
        links = self.registry.links()
        number = pki.crlNumber(self.authority.crl)
        for link in links:
            link.crlSent = number
        self.registry.sendPaced(links, crlUpdates(self.authority.crlPEM))

    def certificateIssued(self, deviceId: str, cert) -> None:
        """
        Enrolment or renewal gave C{deviceId} a certificate: the zone's
        trusted device certificates change.
        """
        if self.sync is not None:
            self.sync.certificateIssued(deviceId, cert)

    def expireQueued(self) -> int:
        """
        Drop the queued messages older than C{queueExpiry}, for every
        device: those of a device that never connects again would
        otherwise stay.

        @return: how many were dropped.
        """
        count = self.store.expireQueued(self.clock.seconds() - self.settings.queueExpiry)
        if count:
            self._log.info("dropped {count} expired queued message(s)", count=count)
        return count

    def refreshCRL(self) -> None:
        """
        Re-sign the CRL once it has used half its life, and push it.
        """
        if self.authority.crlDue():
            self.authority.publishCRL()
            self.pushCRL()

    def connectedDevices(self) -> dict:
        """
        What the admin side shows of each live link.
        """
        return {
            link.deviceId: {"address": link.address, "last_seen": link.lastSeen}
            for link in self.registry.links()
        }
