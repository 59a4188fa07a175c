# -*- test-case-name: tests.pzp.test_discovery -*-
"""
Service discovery on the device: what it tells the hub, and what it
answers when asked which services the zone has.

Once the hub registered the device, it is told where the device's peer
server listens (C{peerEndpoint}) and which services it runs
(C{servicesAnnounce}); a change to the device's services is announced
again.  The hub keeps every device's list in the zone's service cache, the
synced item C{servicecache.json}, so the list answers from the local copy
even while the hub is down.  A peer connected directly has told this
device its services over that link, which is fresher still.
"""

from twisted.logger import Logger

from pz.errors import ZoneError
from pz.servicecache import decodeCache

__all__ = ["Discovery"]


class Discovery:
    """
    Announces this device to the hub and lists the zone's services.

    @ivar registry: this device's L{pz.zoneservice.ServiceRegistry}.
    """

    _log = Logger()

    def __init__(self, registry, tree, zoneId: str, peerPort) -> None:
        """
        @param tree: the device's items (L{pz.sync.items.ItemTree}).
        @param peerPort: returns the port the peer server listens on (0
            for none).
        """
        self.registry = registry
        self._tree = tree
        self._zoneId = zoneId
        self._peerPort = peerPort
        self._link = None
        registry.watch(self._changed)

    def announcement(self) -> dict:
        """
        The C{servicesAnnounce} payload for this device's services.
        """
        return {"status": "servicesAnnounce", "services": self.registry.describe()}

    def linkUp(self, link) -> None:
        self._link = link
        link.sendMessage(self._zoneId, {"status": "peerEndpoint", "port": self._peerPort()})
        link.sendMessage(self._zoneId, self.announcement())

    def linkLost(self) -> None:
        self._link = None

    def _changed(self) -> None:
        if self._link is not None:
            self._link.sendMessage(self._zoneId, self.announcement())

    def cached(self) -> dict:
        """
        The zone's service cache as this device holds it: device id -> its
        services.
        """
        try:
            data = self._tree.read("servicecache.json")
        except (OSError, ZoneError) as e:
            self._log.warn("cannot read the service cache: {error}", error=str(e))
            return {}
        return {d: entry["services"] for d, entry in decodeCache(data).items()}

    def services(self, localId: str, peers: dict, online) -> list:
        """
        Every service this device can see, as C{device}, C{service},
        C{version}, C{methods} and C{via}: C{local} (this device), C{peer}
        (a Connected peer, as it announced itself over the link), C{hub}
        (a device the hub has connected now) or C{cache} (known from the
        service cache only: the device or the hub is offline).

        @param peers: device id -> services, for the Connected peers.
        @param online: whether the hub has a device connected now.
        """
        known = {d: (s, "peer" if d in peers else "hub" if online(d) else "cache")
                 for d, s in self.cached().items()}
        known.update((d, (s, "peer")) for d, s in peers.items())
        known[localId] = (self.registry.describe(), "local")
        return [dict(entry, device=deviceId, via=via)
                for deviceId, (services, via) in sorted(known.items())
                for entry in services]
