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
announces.  What it sends a device waits while that link's outgoing queue
is not empty, so a large item never piles up in the hub's memory behind a
slow device.
"""

from collections import deque
from typing import Optional

from twisted.application import service
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.sync.engine import MAX_ITEM_SIZE, SyncEngine
from pz.sync.zoneitems import CRL, openItems, trustedDevicePath, trustedHubPath, zoneItems
from pzh.services import SERVICE_CACHE, ZoneServiceCache

__all__ = ["HubSync"]

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
        self.engine = SyncEngine(clock, self.tree, self.state, role="hub", localId=zone.zoneId,
                                 maxItemSize=maxItem, scanInterval=interval)
        self._senders: dict = {}
        self.services = ZoneServiceCache(lambda: self.tree.read(SERVICE_CACHE),
                                         lambda data: self._put(SERVICE_CACHE, data), clock)

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
        self._put(trustedHubPath(self._zone.zoneId), self._zone.caPEM)
        self._put(CRL, self._authority.crlPEM)

    def _put(self, path: str, data: Optional[bytes], now: bool = True) -> None:
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
        self._put(trustedDevicePath(deviceId), pki.certificatePEM(cert))

    def deviceRevoked(self, deviceId: str) -> None:
        """
        C{deviceId} is revoked: its certificate is no longer trusted.
        """
        self._put(trustedDevicePath(deviceId), None, now=False)
        # What it last agreed is of no use any more: it will never sync
        # again (a re-enrolled device is a new member and starts afresh).
        self.state.forgetPeer(deviceId)

    def crlChanged(self) -> None:
        """
        The authority signed a new CRL.  Connected devices get it at once
        from the revocation push (L{pzh.hub.Hub.pushCRL}), which must not
        wait behind synchronisation: the item goes out with the next scan,
        for the devices that missed the push and as the durable copy.
        """
        self._put(CRL, self._authority.crlPEM, now=False)

    def linkUp(self, link) -> None:
        sender = self._senders[link.deviceId] = _PacedSender(link)
        self.engine.attach(link.deviceId, sender)

    def linkDown(self, link) -> None:
        self._senders.pop(link.deviceId, None)
        self.engine.detach(link.deviceId)

    def received(self, link, payload: dict) -> None:
        self.engine.received(link.deviceId, payload)
