# -*- test-case-name: tests.pzh.test_zonesync -*-
"""
The hub's part of synchronisation: the zone's items under C{DATA/zone/},
kept in step with every connected device.

L{HubSync} owns the hub's L{pz.sync.engine.SyncEngine} and feeds it what
only the hub knows: the trusted certificates and the CRL, which the hub
alone writes (one-way items), whenever enrolment, renewal or revocation
changes them; each device link as it registers and closes; and the
synchronisation messages the router hands over.  It also keeps the zone's
service cache (L{pzh.services}), which the hub writes from the devices'
announces, and what the admin page shows of each device's synchronisation
(L{HubSync.deviceStatus}): whether it is in step, and when it last was.
What it sends a device waits while that link's outgoing queue is not
empty, so a large item never piles up in the hub's memory behind a slow
device.
"""

from collections import deque
from typing import Callable, Optional

from twisted.application import service
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.policy.item import POLICY, checkPolicy
from pz.sync.engine import MAX_ITEM_SIZE, SyncEngine
from pz.sync.zoneitems import (
    CRL, friendFolder, openItems, trustedDevicePath, trustedHubPath, zoneItems,
)
from pzh.services import SERVICE_CACHE, ZoneServiceCache

__all__ = ["HubSync"]

#: Where the trusted PZH certificates are among the items.
_TRUSTED_PZH = trustedHubPath("x").rpartition("/")[0] + "/"

#: Where friend zones' shared items are among the items.
_FRIENDS = friendFolder("x").partition("/")[0] + "/"

#: The hub's items, conflicts and sync state, under its data directory.
ZONE_FOLDER = "zone"


class _PacedSender:
    """
    The engine's C{send} for one device link: written through while the
    link's outgoing queue is empty, held (in order) while it is not.
    """

    def __init__(self, link) -> None:
        self._link = link
        self._waiting: deque = deque()

    def __call__(self, payload: dict) -> None:
        self._waiting.append(payload)
        if len(self._waiting) == 1:
            self.release(None)

    def release(self, outbox) -> None:
        """
        The link's queue drained (L{pzh.flow.Outbox} calls its waiters).
        """
        link = self._link
        while self._waiting and not link.transport.disconnecting:
            if link.outgoingQueued():
                link.whenDrained(self)
                return
            link.sendMessage(link.deviceId, self._waiting.popleft())


class HubSync(service.Service):
    """
    Keeps C{DATA/zone/items/} in step with the zone's devices.
    """

    _log = Logger()

    def __init__(self, zone, authority, clock, *, interval: float = 2.0,
                 maxItem: int = MAX_ITEM_SIZE) -> None:
        self._zone = zone
        self._authority = authority
        self.tree, self.state, _ = openItems(
            zone.path(ZONE_FOLDER), lambda: zoneItems(zone.zoneId, zone.caPEM, authority.crlPEM))
        # A policy that does not parse is refused before it is installed,
        # as every device refuses one from the hub: the zone's copy stays
        # the last good one, and its devices never see the broken one.
        self.engine = SyncEngine(clock, self.tree, self.state, role="hub", localId=zone.zoneId,
                                 validators={POLICY: checkPolicy},
                                 maxItemSize=maxItem, scanInterval=interval,
                                 changed=lambda path, itemHash: self._itemChanged(path),
                                 recorded=self._itemChanged)
        self._senders: dict = {}
        self._clock = clock
        #: When each device last finished a round with this hub process
        #: (POSIX seconds): the hub had handled its sync message and had
        #: nothing in flight or queued with it.
        self.lastSync: dict = {}
        # Devices that finished a round on their current link, and the
        # state last told to the observer, by device.
        self._inStep: set = set()
        self._told: dict = {}
        self._observer: Optional[Callable[[str], None]] = None
        self._itemObserver: Optional[Callable[[str], None]] = None
        self.services = ZoneServiceCache(lambda: self.tree.read(SERVICE_CACHE),
                                         lambda data: self.putItem(SERVICE_CACHE, data), clock)

    def startService(self) -> None:
        super().startService()
        self._refreshOneWay()
        self.engine.start()

    def stopService(self):
        self.services.flush()
        self.engine.stop()
        self.state.close()
        return super().stopService()

    def _refreshOneWay(self) -> None:
        """
        Make the one-way items say what the hub knows now: its CA, its CRL
        (which the authority keeps beside them and may have renewed while
        the hub was down).
        """
        self.putItem(trustedHubPath(self._zone.zoneId), self._zone.caPEM)
        self.putItem(CRL, self._authority.crlPEM)

    def putItem(self, path: str, data: Optional[bytes], now: bool = True) -> None:
        """
        Write (or, for None, remove) a one-way item if it differs, and let
        the engine send it at once (C{now}) rather than at its next scan.
        """
        try:
            if self.tree.read(path) == data:
                return
            if data is None:
                self.tree.remove(path)
            else:
                self.tree.write(path, data)
        except (OSError, ZoneError) as e:
            # The items folder is missing or unwritable: the engine's
            # status reports it; the hub's own CRL is safe beside it.
            self._log.warn("could not update {path} among the zone's items: {why}",
                           path=path, why=e)
            return
        if now:
            self.engine.localChange(path)

    # --- what the hub tells it ---------------------------------------------------

    def certificateIssued(self, deviceId: str, cert) -> None:
        """
        Enrolment or renewal gave C{deviceId} a new certificate.
        """
        self.putItem(trustedDevicePath(deviceId), pki.certificatePEM(cert))

    def deviceRevoked(self, deviceId: str) -> None:
        """
        C{deviceId} is revoked: its certificate is no longer trusted.
        """
        self.putItem(trustedDevicePath(deviceId), None, now=False)
        # What it last agreed is of no use any more: it will never sync
        # again (a re-enrolled device is a new member and starts afresh).
        self.state.forgetPeer(deviceId)
        self.lastSync.pop(deviceId, None)
        self._told.pop(deviceId, None)

    def trustZones(self, friends: dict) -> None:
        """
        Make the trusted PZH certificates this zone's own CA and exactly
        the friend zones' CAs in C{friends} (zone id to PEM): a friend
        added is written, one no longer trusted is removed, and the
        devices get the change at once.
        """
        wanted = {trustedHubPath(zoneId): pem for zoneId, pem in friends.items()}
        wanted[trustedHubPath(self._zone.zoneId)] = self._zone.caPEM
        present = self.itemsUnder(_TRUSTED_PZH)
        for path in present:
            if path not in wanted:
                self.putItem(path, None)
        # What a zone no longer trusted had shared (pzh.friendshare) goes
        # too, whenever that zone was untrusted.
        kept = tuple(friendFolder(zoneId) for zoneId in friends)
        for path in self.itemsUnder(_FRIENDS):
            if not path.startswith(kept):
                self.putItem(path, None)
        for path, pem in wanted.items():
            self.putItem(path, pem)

    def itemsUnder(self, folder: str) -> list:
        """
        The items under C{folder} (a path ending in C{/}).
        """
        try:
            return [path for path in self.tree.scan() if path.startswith(folder)]
        except (OSError, ZoneError) as e:
            self._log.warn("could not list {folder} among the items: {why}", folder=folder, why=e)
            return []

    def crlChanged(self) -> None:
        """
        The authority signed a new CRL.  Connected devices get it at once
        from the revocation push (L{pzh.hub.Hub.pushCRL}), which must not
        wait behind synchronisation: the item goes out with the next scan,
        for the devices that missed the push and as the durable copy.
        """
        self.putItem(CRL, self._authority.crlPEM, now=False)

    def linkUp(self, link) -> None:
        sender = self._senders[link.deviceId] = _PacedSender(link)
        self._inStep.discard(link.deviceId)
        self.engine.attach(link.deviceId, sender)
        self._note(link.deviceId)

    def linkDown(self, link) -> None:
        self._senders.pop(link.deviceId, None)
        self._inStep.discard(link.deviceId)
        self.engine.detach(link.deviceId)
        self._note(link.deviceId)

    def received(self, link, payload: dict) -> None:
        self.engine.received(link.deviceId, payload)
        self._note(link.deviceId, handled=True)

    # --- each device's state, for the admin page ---------------------------------

    def observe(self, observer: Callable[[str], None]) -> None:
        """
        Tell C{observer} a device's id whenever its L{deviceStatus} state
        changes as the hub handles its link and its sync messages (a push
        started by another device's change shows in L{deviceStatus} at
        once, and is told when the device's answers arrive).
        """
        self._observer = observer

    def observeItems(self, observer: Callable[[str], None]) -> None:
        """
        Tell C{observer} an item's path whenever the hub's copy of it
        changes: a device's version arrived by sync, or a writer here (the
        admin page, C{pzctl --hub-dir}, an editor) changed it, found by the
        engine's scan.
        """
        self._itemObserver = observer

    def _itemChanged(self, path: str) -> None:
        if self._itemObserver is not None:
            self._itemObserver(path)

    def _note(self, deviceId: str, handled: bool = False) -> None:
        """
        After C{deviceId}'s link came or went, or the hub C{handled} one of
        its sync messages: a device with nothing in flight or queued then
        has just finished a round (its hello found nothing to send, or its
        last acknowledgement arrived).
        """
        if handled and self.engine.peerBusy(deviceId) is False:
            self.lastSync[deviceId] = self._clock.seconds()
            self._inStep.add(deviceId)
        state = self.deviceStatus(deviceId)["state"]
        if self._told.get(deviceId) != state:
            self._told[deviceId] = state
            if self._observer is not None:
                self._observer(deviceId)

    def deviceStatus(self, deviceId: str) -> dict:
        """
        C{{"state", "last_sync"}}: C{state} is C{syncing} while the hub has
        something in flight or queued with the device (or awaits its first
        round on a new link), C{in step} once a round is over and nothing
        is, and C{unknown} while it is not connected (what it changed
        offline cannot be known); C{last_sync} is L{lastSync}'s time, or
        None (not since this hub process started).
        """
        busy = self.engine.peerBusy(deviceId)
        if busy is None:
            state = "unknown"
        elif busy or deviceId not in self._inStep:
            state = "syncing"
        else:
            state = "in step"
        return {"state": state, "last_sync": self.lastSync.get(deviceId)}
