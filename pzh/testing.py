# -*- test-case-name: tests.pz.test_testing -*-
"""
The hub's end of L{pz.testing}: builds a real hub for the in-memory zone.

Registered in C{setup.cfg} under the entry-point group C{pz.testing} as
C{hub}, so the core finds it without importing this package.
"""

import attrs
from zope.interface import implementer, provider

from pz.testing.interfaces import IMemoryHub, IMemoryHubEnd
from pzh.hub import Hub, HubSettings
from pzh.protocol import HubFactory
from pzh.store import SQLiteHubStore
from pzh.zone import loadOrCreateZone

__all__ = ["hubEnd", "BuiltHub"]


@implementer(IMemoryHub)
@attrs.define
class BuiltHub:
    """
    A hub, its zone and its store, as L{IMemoryHub} describes them.
    """

    zone: object
    store: SQLiteHubStore
    storePath: object
    hub: Hub

    @property
    def coalesce(self) -> float:
        return self.hub.settings.coalesce

    def deviceFactory(self):
        return HubFactory(self.hub)

    def enrol(self, name: str, csrPEM: str, address: str):
        code = self.hub.enrolment.newCode(name)
        device, cert = self.hub.enrolment.enrol(code.token, csrPEM, address)
        self.hub.certificateIssued(device.id, cert)
        return cert

    def revoke(self, deviceId: str) -> None:
        self.hub.revoke(deviceId)

    def crl(self):
        return self.hub.authority.crl

    def linkCount(self) -> int:
        return len(self.hub.registry)

    def stop(self) -> None:
        if self.hub.sync is not None and self.hub.sync.running:
            self.hub.sync.stopService()

    def close(self) -> None:
        self.stop()
        self.store.close()


@provider(IMemoryHubEnd)
class hubEnd:
    """
    Builds hubs for L{pz.testing}.
    """

    @staticmethod
    def buildHub(directory, clock, user, host, hubPort, webPort, settings, onDisk) -> BuiltHub:
        zone = loadOrCreateZone(directory, user, host, host, hubPort, webPort)
        storePath = zone.path("hub.db") if onDisk else None
        store = SQLiteHubStore(storePath or ":memory:")
        hub = Hub(zone, store, clock, settings if settings is not None else HubSettings())
        if hub.sync is not None:
            hub.sync.startService()
        return BuiltHub(zone, store, storePath, hub)
