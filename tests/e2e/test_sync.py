"""
End to end: the zone's items kept in step between a real hub and real
devices on 127.0.0.1, as a person sees them in C{DIR/zone/items/}.
"""

import json
import os
import time

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from pz import pki
from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor

#: Scans every 0.3 s instead of 2 s: the tests wait less, nothing else changes.
FAST = ("--sync-interval", "0.3")


def items(base: str, *path: str) -> str:
    return os.path.join(base, "zone", "items", *path)


def read(path: str):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = path + ".editing"
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def editPreferences(base: str, **changes) -> bytes:
    path = items(base, "preferences.json")
    with open(path, encoding="utf-8") as f:
        preferences = json.load(f)
    preferences.update(changes)
    data = (json.dumps(preferences, indent=2) + "\n").encode("utf-8")
    write(path, data)
    return data


def preference(base: str, key: str):
    data = read(items(base, "preferences.json"))
    return None if data is None else json.loads(data).get(key)


def tree(base: str) -> dict:
    """
    Every item file under C{base}'s items folder, by relative path.
    """
    root = items(base)
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            full = os.path.join(folder, name)
            found[os.path.relpath(full, root)] = read(full)
    return found


def pause(seconds: float):
    return task.deferLater(reactor, seconds, lambda: None)


class SyncTests(TestCase):
    """
    What a person sees synchronise.
    """

    timeout = 180

    @defer.inlineCallbacks
    def _zone(self, *names):
        zone = Zone(self)
        yield zone.startHub(*FAST)
        for name in names:
            code = yield zone.pairCode(name)
            zone.startDevice(name, code, *FAST)
            yield zone.waitState(name, "Hub", "Connected")
        return zone

    def _waitSynced(self, zone, name):
        """
        Wait until C{name}'s status says its sync is idle and has
        synchronised at least once.
        """
        @defer.inlineCallbacks
        def check():
            status = yield zone.status(name)
            sync = status.get("sync") or {}
            return sync if sync.get("state") == "idle" and sync.get("last_synced") else None

        return waitFor(check, 30, what=f"{name} to finish synchronising")

    @defer.inlineCallbacks
    def test_preferenceReachesOtherDevices(self):
        """
        A preference edited on A is on the hub and on B within seconds,
        and C{pzctl status} on B shows when it last synchronised.
        """
        zone = yield self._zone("a", "b")
        yield self._waitSynced(zone, "b")
        edited = editPreferences(zone.deviceDir("a"), peer_connection="no")
        for base in (zone.hubDir, zone.deviceDir("b")):
            yield waitFor(lambda: read(items(base, "preferences.json")) == edited, 20,
                          what=f"the preference to reach {base}")
        out = yield pzctl("--pzp-dir", zone.deviceDir("b"), "status")
        self.assertIn("last synchronised", out)

    @defer.inlineCallbacks
    def test_largeUserFile(self):
        """
        A 4 MB user file written on A reaches the hub and B whole, and
        C{pzctl sync} on A answers once it is done.
        """
        zone = yield self._zone("a", "b")
        data = os.urandom(4 * 1024 * 1024)
        write(items(zone.deviceDir("a"), "userdata", "photos", "beach.jpg"), data)
        out = yield pzctl("--pzp-dir", zone.deviceDir("a"), "sync")
        self.assertIn("synchronised:", out)
        self.assertEqual(read(items(zone.hubDir, "userdata", "photos", "beach.jpg")), data)
        yield waitFor(lambda: read(items(zone.deviceDir("b"), "userdata", "photos",
                                         "beach.jpg")) == data, 30, what="the file on B")

    @defer.inlineCallbacks
    def test_newDeviceGetsEverything(self):
        """
        A device paired after the zone has items (a context object, a user
        file, a changed policy, another device's certificate) holds every
        one of them, byte for byte, after its first connection.
        """
        zone = yield self._zone("a")
        write(items(zone.deviceDir("a"), "context", "location.json"), b'{"city": "London"}\n')
        write(items(zone.deviceDir("a"), "userdata", "notes", "todo.txt"), b"milk\n" * 1000)
        yield pzctl("--pzp-dir", zone.deviceDir("a"), "sync")
        code = yield zone.pairCode("c")
        zone.startDevice("c", code, *FAST)
        yield zone.waitState("c", "Hub", "Connected")
        yield self._waitSynced(zone, "c")
        hub = tree(zone.hubDir)
        self.assertIn("context/location.json", hub)
        self.assertIn("certificates/trusted-pzp/a.pem", hub)
        self.assertIn("certificates/trusted-pzp/c.pem", hub)
        yield waitFor(lambda: tree(zone.deviceDir("c")) == tree(zone.hubDir), 20,
                      what="c's items to equal the hub's")

    @defer.inlineCallbacks
    def test_conflictWhileHubDown(self):
        """
        With the hub down, A and then B change the same preference.  A
        comes back first and its version goes through; B's version, more
        than 5 s older than the hub's clock when it arrives, loses to the
        hub's by the rule, and B lists it with C{pzctl conflicts}, kept
        whole outside the items folder.
        """
        zone = yield self._zone("a", "b")
        yield self._waitSynced(zone, "b")
        yield zone.hub.stop()
        yield zone.waitState("b", "Hub", "NotConnected", timeout=30)
        fromA = editPreferences(zone.deviceDir("a"), slave="from-a")
        yield pause(0.5)
        fromB = editPreferences(zone.deviceDir("b"), slave="from-b")
        yield zone.devices["b"].stop()
        yield pause(6)
        yield zone.startHub(*FAST)
        yield zone.waitState("a", "Hub", "Connected", timeout=30)
        yield waitFor(lambda: read(items(zone.hubDir, "preferences.json")) == fromA, 20,
                      what="A's version on the hub")
        zone.startDevice("b", None, *FAST)
        yield zone.waitState("b", "Hub", "Connected", timeout=30)
        yield waitFor(lambda: read(items(zone.deviceDir("b"), "preferences.json")) == fromA, 20,
                      what="the winner on B")
        conflicts = yield pzctlJSON("--pzp-dir", zone.deviceDir("b"), "conflicts", "--json")
        self.assertEqual([c["path"] for c in conflicts], ["preferences.json"])
        self.assertEqual(conflicts[0]["origin"], zone.deviceId("b"))
        kept = os.path.join(zone.deviceDir("b"), "zone", conflicts[0]["kept_as"])
        self.assertFalse(os.path.abspath(kept).startswith(items(zone.deviceDir("b"))))
        self.assertEqual(read(kept), fromB)
        out = yield pzctl("--pzp-dir", zone.deviceDir("b"), "conflicts")
        self.assertIn("preferences.json", out)
        self.assertEqual(read(items(zone.deviceDir("a"), "preferences.json")), fromA)

    @defer.inlineCallbacks
    def test_offlineDeviceGetsCRL(self):
        """
        B is off while C is revoked; when B comes back it holds the new
        CRL among its items, the same bytes as the hub's.
        """
        zone = yield self._zone("a", "b", "c")
        yield zone.devices["b"].stop()
        yield pzctl("--hub-dir", zone.hubDir, "revoke", zone.deviceId("c"))
        crl = read(items(zone.hubDir, "crl.pem"))
        self.assertIn(pki.crlNumber(pki.loadCRL(crl)), (2, 3))
        self.assertFalse(os.path.exists(items(zone.hubDir, "certificates", "trusted-pzp", "c.pem")))
        zone.startDevice("b", None, *FAST)
        yield zone.waitState("b", "Hub", "Connected")
        yield waitFor(lambda: read(items(zone.deviceDir("b"), "crl.pem")) == crl, 20,
                      what="the new CRL on B")
        yield waitFor(lambda: not os.path.exists(items(zone.deviceDir("b"), "certificates",
                                                       "trusted-pzp", "c.pem")), 20,
                      what="C's certificate to leave B's trusted list")

    @defer.inlineCallbacks
    def test_hubKilledMidSync(self):
        """
        The hub is killed with SIGKILL while a large file streams to it:
        its copy is absent or whole, never partial; once it is back the
        file converges on the hub and on B.
        """
        zone = yield self._zone("a", "b")
        data = os.urandom(24 * 1024 * 1024)
        spool = os.path.join(zone.hubDir, "zone", "sync", "tmp")
        write(items(zone.deviceDir("a"), "userdata", "video.bin"), data)

        def streaming():
            try:
                return any(os.path.getsize(os.path.join(spool, n)) > 0 for n in os.listdir(spool))
            except OSError:
                return False

        yield waitFor(streaming, 20, interval=0.02, what="the upload to start")
        yield zone.hub.kill()
        self.assertIn(read(items(zone.hubDir, "userdata", "video.bin")), (None, data))
        started = time.monotonic()
        yield zone.startHub(*FAST)
        for base in (zone.hubDir, zone.deviceDir("b")):
            yield waitFor(lambda: read(items(base, "userdata", "video.bin")) == data, 60,
                          what=f"the whole file on {base}")
        self.assertLess(time.monotonic() - started, 60)
