"""
The hub's synchronisation wired to the real hub and real device proxies
(L{pz.testing}: real TLS, one clock, no sockets): the one-way items follow
enrolment and revocation, and what one device changes reaches the others.
"""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import ZoneError
from pz.servicecache import decodeCache
from pz.testing import MemoryZone
from pz.wire import Envelope
from pzh.hub import Hub, HubSettings
from pzh.services import WRITE_DELAY
from pzp.builtins.get42 import Get42Service
from pzp.proxy import ProxySettings


def read(path: str):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class HubSyncTests(SynchronousTestCase):
    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone", "laptop"],
                               hubSettings=HubSettings(synchronise=True))

    def hubItem(self, *path: str) -> str:
        return self.zone.hub.zone.path(os.path.join("zone", "items", *path))

    def deviceItem(self, name: str, *path: str) -> str:
        return os.path.join(self.zone.dataDir(name), "zone", "items", *path)

    def test_trustedCertificates(self):
        """
        The hub lists the zone CA and each enrolled device's certificate
        among its items, and every device receives them.
        """
        hub = self.zone.hub
        zoneCA = read(self.hubItem("certificates", "trusted-pzh", f"{self.zone.zoneId}.pem"))
        self.assertEqual(zoneCA, hub.zone.caPEM)
        phoneCert = read(self.hubItem("certificates", "trusted-pzp", "phone.pem"))
        self.assertEqual(pki.identityOf(pki.loadCertificate(phoneCert)),
                         self.zone.deviceId("phone"))
        self.zone.advance(3)
        self.assertEqual(read(self.deviceItem("laptop", "certificates", "trusted-pzp",
                                              "phone.pem")), phoneCert)
        self.assertEqual(read(self.deviceItem("phone", "crl.pem")), hub.authority.crlPEM)

    def test_revocation(self):
        """
        A revoked device's certificate leaves the trusted list on the hub
        and on the other devices, which hold the new CRL among their items;
        the hub forgets what the revoked device had agreed.
        """
        self.zone.advance(3)
        laptop = self.zone.deviceId("laptop")
        state = self.zone.hub.sync.state
        self.assertTrue(state.agreedPaths(laptop))
        self.zone.revoke("laptop")
        self.assertEqual(state.agreedPaths(laptop), {})
        self.assertIsNone(read(self.hubItem("certificates", "trusted-pzp", "laptop.pem")))
        self.assertEqual(read(self.hubItem("crl.pem")), self.zone.hub.authority.crlPEM)
        self.zone.advance(3)
        self.assertIsNone(read(self.deviceItem("phone", "certificates", "trusted-pzp",
                                               "laptop.pem")))
        self.assertEqual(read(self.deviceItem("phone", "crl.pem")),
                         self.zone.hub.authority.crlPEM)

    def test_preferenceEdited(self):
        """
        A preference edited on the phone is on the hub and the laptop after
        the next scan; the phone's status says it synchronised and counts
        the bytes of its hub link.
        """
        self.zone.advance(3)
        path = self.deviceItem("phone", "preferences.json")
        prefs = json.loads(read(path))
        prefs["slave"] = "yes"
        data = (json.dumps(prefs, indent=2) + "\n").encode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        self.zone.advance(3)
        self.assertEqual(read(self.hubItem("preferences.json")), data)
        self.assertEqual(read(self.deviceItem("laptop", "preferences.json")), data)
        sync = self.zone.device("phone").status()["sync"]
        self.assertEqual(sync["state"], "idle")
        self.assertIsNotNone(sync["last_synced"])
        self.assertGreater(sync["link_bytes"]["sent"], len(data))

    def test_syncNow(self):
        """
        C{syncNow} (what C{pzctl sync} calls) fires once the device's
        change is acknowledged.
        """
        self.zone.advance(3)
        with open(self.deviceItem("phone", "context", "battery.json"), "wb") as f:
            f.write(b'{"level": 80}\n')
        d = self.zone.device("phone").syncNow()
        self.zone.flush()
        result = self.successResultOf(d)
        self.assertEqual(result["sent"], 1)
        self.assertIsNotNone(read(self.hubItem("context", "battery.json")))

    def test_brokenPolicyRefused(self):
        """
        A policy edited on the phone into well-formed XML that is no
        policy (an unknown combining algorithm) is refused by the hub:
        the hub's copy, and so the laptop's, stay the last good one.
        """
        self.zone.advance(3)
        good = read(self.hubItem("policies", "policy.xml"))
        broken = good.replace(b"first-applicable", b"no-such-algorithm")
        self.assertNotEqual(broken, good)
        with open(self.deviceItem("phone", "policies", "policy.xml"), "wb") as f:
            f.write(broken)
        self.zone.advance(3)
        self.assertEqual(read(self.hubItem("policies", "policy.xml")), good)
        self.assertEqual(read(self.deviceItem("laptop", "policies", "policy.xml")), good)


GET42 = [{"service": "get42", "version": "1.0", "methods": ["get42"]}]


class ServiceCacheTests(SynchronousTestCase):
    """
    The hub writes each device's C{servicesAnnounce} into the zone's
    C{servicecache.json}, which synchronisation carries to every device.
    """

    def setUp(self):
        # Devices running no service announce none, so the test's own
        # announces are the only entries.
        self.zone = MemoryZone(self, devices=["phone", "laptop"],
                               hubSettings=HubSettings(synchronise=True),
                               deviceSettings=ProxySettings(builtinServices=False))
        self.zone.advance(3)

    def announce(self, name: str, services) -> None:
        """
        C{servicesAnnounce} from the device called C{name}, as the hub's
        link to it hands it over.
        """
        hub = self.zone.hub
        link = hub.registry.get(self.zone.deviceId(name))
        hub.router.dispatch(link, Envelope("prop", "", self.zone.zoneId, "s1",
                                           {"status": "servicesAnnounce", "services": services}))

    def hubCache(self) -> str:
        return self.zone.hub.zone.path(os.path.join("zone", "items", "servicecache.json"))

    def deviceCache(self, name: str) -> dict:
        return decodeCache(read(os.path.join(self.zone.dataDir(name), "zone", "items",
                                             "servicecache.json")))

    def test_announceReachesTheOthers(self):
        """
        The phone's announce is in the hub's item after the write delay and
        in the laptop's after synchronisation.
        """
        phone = self.zone.deviceId("phone")
        self.announce("phone", GET42)
        self.assertEqual(self.deviceCache("laptop"), {})
        self.zone.advance(WRITE_DELAY)
        self.assertEqual(decodeCache(read(self.hubCache())), {phone: {"services": GET42}})
        self.zone.advance(3)
        self.assertEqual(self.deviceCache("laptop"), {phone: {"services": GET42}})
        self.assertEqual(self.deviceCache("phone"), {phone: {"services": GET42}})

    def test_badAnnounceRefused(self):
        """
        A bad announce is C{BAD_REQUEST} and the item is not touched.
        """
        self.announce("phone", GET42)
        self.zone.advance(3)
        before = os.stat(self.hubCache())
        for bad in ([{"service": "get42"}], "get42", GET42 * 2):
            e = self.assertRaises(ZoneError, self.announce, "phone", bad)
            self.assertEqual(e.code, "BAD_REQUEST")
        self.zone.advance(3)
        after = os.stat(self.hubCache())
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))
        self.assertEqual(self.deviceCache("laptop"),
                         {self.zone.deviceId("phone"): {"services": GET42}})

    def test_identicalAnnounceNotRewritten(self):
        """
        The same services announced again (as a device does each time it
        connects) do not rewrite the item.
        """
        self.zone.register("phone", Get42Service())
        self.zone.advance(3)
        self.assertEqual(decodeCache(read(self.hubCache())),
                         {self.zone.deviceId("phone"): {"services": GET42}})
        before = os.stat(self.hubCache())
        self.zone.disconnect("phone")
        self.zone.advance(60)
        self.assertEqual(self.zone.device("phone").status()["state"], "Connected")
        self.zone.advance(3)
        after = os.stat(self.hubCache())
        self.assertEqual((after.st_ino, after.st_mtime_ns), (before.st_ino, before.st_mtime_ns))

    def test_offlineKeepsEntry(self):
        """
        A device that goes offline keeps its entry.
        """
        self.announce("phone", GET42)
        self.zone.advance(3)
        self.zone.stopDevice("phone")
        self.zone.advance(3)
        self.assertIn(self.zone.deviceId("phone"), self.deviceCache("laptop"))

    def test_revocationRemovesEntry(self):
        """
        A revoked device's entry leaves the hub's item at once and the
        other devices' with synchronisation; the others' entries stay.
        """
        self.announce("phone", GET42)
        self.announce("laptop", GET42)
        self.zone.advance(3)
        self.zone.revoke("phone")
        laptop = self.zone.deviceId("laptop")
        self.assertEqual(decodeCache(read(self.hubCache())), {laptop: {"services": GET42}})
        self.zone.advance(3)
        self.assertEqual(self.deviceCache("laptop"), {laptop: {"services": GET42}})

    def test_revokedWhileHubDown(self):
        """
        A device revoked while the hub was not running (as C{pzctl revoke}
        does then, through the authority alone) leaves the service cache
        when the hub starts again.
        """
        self.announce("phone", GET42)
        self.announce("laptop", GET42)
        self.zone.advance(3)
        hub = self.zone.hub
        hub.authority.revoke(self.zone.deviceId("phone"))
        restarted = Hub(hub.zone, hub.store, self.zone.reactor, hub.settings)
        restarted.sync.state.close()
        self.assertEqual(decodeCache(read(self.hubCache())),
                         {self.zone.deviceId("laptop"): {"services": GET42}})

    def test_writtenWhenHubStops(self):
        """
        An announce still waiting for its write is written when the hub
        stops.
        """
        self.announce("phone", GET42)
        self.zone.hub.sync.stopService()
        self.assertEqual(decodeCache(read(self.hubCache())),
                         {self.zone.deviceId("phone"): {"services": GET42}})


class UnsynchronisedServiceCacheTests(SynchronousTestCase):
    def test_keptInMemory(self):
        """
        A hub that does not synchronise checks announces and keeps them in
        memory (C{Hub.services}); revocation removes the entry; no item is
        written.
        """
        zone = MemoryZone(self, devices=["phone"])
        hub = zone.hub
        phone = zone.deviceId("phone")
        link = hub.registry.get(phone)

        def announce(services):
            hub.router.dispatch(link, Envelope("prop", "", zone.zoneId, "s1", {
                "status": "servicesAnnounce", "services": services}))

        announce(GET42)
        self.assertEqual(hub.services.cache(), {phone: {"services": GET42}})
        e = self.assertRaises(ZoneError, announce, [{"service": "x"}])
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertEqual(hub.services.cache(), {phone: {"services": GET42}})
        zone.revoke("phone")
        self.assertEqual(hub.services.cache(), {})
        self.assertFalse(os.path.exists(hub.zone.path(os.path.join("zone", "items"))))


class SmallFrameTests(SynchronousTestCase):
    def test_uploadFitsTheHubsFrameLimit(self):
        """
        A hub run with a small C{--max-frame} names it when it registers a
        device, and the device cuts what it uploads to fit: a 300 KB file
        arrives whole, with no frame refused.
        """
        zone = MemoryZone(self, devices=["phone"],
                          hubSettings=HubSettings(synchronise=True, maxFrame=64 * 1024))
        zone.advance(3)
        data = os.urandom(300 * 1000)
        path = os.path.join(zone.dataDir("phone"), "zone", "items", "userdata", "photo.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        d = zone.device("phone").syncNow()
        zone.advance(3)
        self.successResultOf(d)
        self.assertEqual(read(zone.hub.zone.path(os.path.join("zone", "items", "userdata",
                                                              "photo.jpg"))), data)
        self.assertIsNone(zone.device("phone").lastError)
