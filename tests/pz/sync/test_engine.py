"""
Tests for L{pz.sync.engine}: a hub and devices joined in memory.
"""

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.pz.sync.support import HUB, Zone


def _prefs(side) -> dict:
    return json.loads(side.read("preferences.json"))


class FirstConnectionTests(SynchronousTestCase):
    """
    A new device gets every item on its first connection.
    """

    def test_everyItemCopied(self):
        """
        Every item of the hub, defaults and extra files alike, reaches a
        device on its first connection, byte for byte, and both sides agree.
        """
        zone = Zone(self, devices=("a",))
        hub = zone.hub
        prefs = _prefs(hub)
        prefs["peer_connection"] = "no"
        hub.write("preferences.json", json.dumps(prefs).encode())
        hub.write("userdata/notes/today.txt", b"remember the milk\n" * 100)
        hub.write("context/location.json", b'{"city": "London"}')
        hub.write("crl.pem", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
        zone.hub.engine.syncNow()
        zone.connect("a")
        zone.pump()
        a = zone.devices["a"]
        self.assertEqual(a.contents(), hub.contents())
        self.assertEqual(_prefs(a)["peer_connection"], "no")
        self.assertEqual(a.engine.status()["state"], "idle")
        self.assertIsNotNone(a.engine.status()["last_synced"])
        for rec in hub.state.items():
            self.assertEqual(a.state.agreed(HUB, rec.path), rec.hash)
            self.assertEqual(hub.state.agreed("a", rec.path), rec.hash)


class EditTests(SynchronousTestCase):
    """
    A change on one device reaches the hub and every other device.
    """

    def test_preferenceEdited(self):
        """
        A preference edited on device A appears on B without B asking.
        """
        zone = Zone(self, devices=("a", "b", "c"))
        zone.connectAll()
        zone.pump()
        a = zone.devices["a"]
        prefs = _prefs(a)
        prefs["slave"] = "yes"
        a.write("preferences.json", json.dumps(prefs, indent=4).encode())
        a.engine.localChange("preferences.json")
        zone.pump()
        for name in ("b", "c"):
            self.assertEqual(_prefs(zone.devices[name])["slave"], "yes")
            self.assertIn(("preferences.json", a.state.item("preferences.json").hash),
                          zone.devices[name].applied)
        self.assertEqual(_prefs(zone.hub)["slave"], "yes")
