"""
C{pzctl}'s errors against real processes, where they used to be
confusing: a device command sent to a hub, a message to no device, an
https portal without C{--ca}.  Each is one line, C{pzctl: CODE: sentence},
and exit status 1.
"""

import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Zone, pzctl


class ConfusingErrorTests(TestCase):
    """
    What a person who mixes things up is told.
    """

    timeout = 120

    def assertOneLine(self, result, code: str, *phrases) -> None:
        """
        C{pzctl} failed with status 1 and one line naming C{code} and each
        of C{phrases}.
        """
        out, err, status = result
        self.assertEqual((status, out), (1, ""), err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith(f"pzctl: {code}: "), err)
        for phrase in phrases:
            self.assertIn(phrase, err)

    @defer.inlineCallbacks
    def test_mixUps(self):
        """
        A running hub's directory given as C{--pzp-dir}, a running device's
        as C{--hub-dir}, C{send} to the empty id or the zone id, and the
        hub's https portal without C{--ca}.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("phone")
        phone = zone.deviceDir("phone")
        result = yield pzctl("--pzp-dir", zone.hubDir, "status", check=False)
        self.assertOneLine(result, "BAD_REQUEST", "is a hub's data directory", "--hub-dir")
        result = yield pzctl("devices", "--hub-dir", phone, check=False)
        self.assertOneLine(result, "BAD_REQUEST", "is a device's data directory", "--pzp-dir")
        for to in ("", zone.zoneId):
            result = yield pzctl("--pzp-dir", phone, "send", to, "hi", check=False)
            self.assertOneLine(result, "BAD_REQUEST", "is not a device id: give ZONE/NAME")
        status = yield zone.status("phone")
        self.assertEqual((status["state"], status.get("error")), ("Connected", None))
        portal = f"https://127.0.0.1:{zone.webPort}/"
        result = yield pzctl("--pzp-dir", os.path.join(zone.root, "tablet"),
                             "mesh", "connect", "alice", "--portal", portal, check=False)
        self.assertOneLine(result, "CERT_UNTRUSTED", portal, "pass --ca FILE")
        out = yield pzctl("mesh", "status", "--portal", portal,
                          "--ca", os.path.join(zone.hubDir, "ca.pem"), "--json")
        self.assertIn('"checkpoint"', out)
