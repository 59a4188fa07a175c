"""
End to end: the zone's policy enforced by real C{twistd} processes on
127.0.0.1 with real TLS.  A Deny rule written on device A with C{pzctl
policy add} stops B's next call to A's C{get42} with C{DENIED}, and
removing it restores the call, with no restart; the same from the hub's
items folder reaches A by synchronisation; a prompt rule holds B's call
until C{pzctl answer}, and an unanswered prompt is denied after A's
C{--prompt-timeout}.
"""

import os
import time

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class PolicyTests(TestCase):
    timeout = 180

    @defer.inlineCallbacks
    def zone(self, *aExtra):
        """
        A hub, device A (with C{aExtra}) and device B, both connected.
        """
        zone = Zone(self)
        yield zone.startHub()
        code = yield zone.pairCode("a")
        zone.startDevice("a", code, *aExtra)
        yield zone.waitState("a", "Hub", "Connected")
        yield zone.pairDevice("b")
        return zone

    def callFromB(self, zone, timeout: float = 30):
        """
        B calls A's get42; fires with (stdout, stderr, exit code).
        """
        return pzctl("--pzp-dir", zone.deviceDir("b"), "call", "--timeout", str(timeout),
                     zone.deviceId("a"), "get42", "get42", check=False)

    @defer.inlineCallbacks
    def assertDenied(self, zone, ruleId: str):
        out, err, code = yield self.callFromB(zone)
        self.assertEqual((out, code), ("", 1))
        self.assertIn("DENIED", err)
        self.assertIn(ruleId, err)
        self.assertEqual(err.count("\n"), 1)

    @defer.inlineCallbacks
    def test_denyOnDeviceThenRemove(self):
        """
        A Deny rule added on A stops B's next call with DENIED naming the
        rule, the rule syncs to the hub, and removing it restores the call;
        A never restarts.
        """
        zone = yield self.zone()
        a, b = zone.deviceDir("a"), zone.deviceId("b")
        out, _, code = yield self.callFromB(zone)
        self.assertEqual((out, code), ("42\n", 0))

        out = yield pzctl("--pzp-dir", a, "policy", "add", "--effect", "deny",
                          "--subject", b, "--service", "get42")
        ruleId = out.strip()
        self.assertTrue(ruleId.startswith("urn:"), ruleId)
        rules = yield pzctlJSON("--pzp-dir", a, "policy", "show", "--json")
        self.assertIn({"id": ruleId, "effect": "deny", "subject": b, "service": "get42",
                       "method": None}, [{k: r[k] for k in ("id", "effect", "subject", "service",
                                                           "method")} for r in rules])
        yield self.assertDenied(zone, ruleId)
        hubPolicy = os.path.join(zone.hubDir, "zone", "items", "policies", "policy.xml")
        yield waitFor(lambda: ruleId.encode() in _read(hubPolicy), what="the rule on the hub")

        out = yield pzctl("--pzp-dir", a, "policy", "remove", ruleId)
        self.assertEqual(out, f"removed {ruleId}\n")
        out, _, code = yield self.callFromB(zone)
        self.assertEqual((out, code), ("42\n", 0))
        self.assertTrue(zone.devices["a"].running)

    @defer.inlineCallbacks
    def test_denyFromHub(self):
        """
        A Deny rule added in the hub's items reaches A by synchronisation
        and then stops B's call; removed on the hub, the call works again.
        """
        zone = yield self.zone()
        hub = zone.hubDir
        aPolicy = os.path.join(zone.deviceDir("a"), "zone", "items", "policies", "policy.xml")
        out = yield pzctl("--hub-dir", hub, "policy", "add", "--effect", "deny",
                          "--subject", zone.zoneId, "--service", "get42")
        ruleId = out.strip()
        yield waitFor(lambda: ruleId.encode() in _read(aPolicy), what="the rule on A")
        yield self.assertDenied(zone, ruleId)
        yield pzctl("--hub-dir", hub, "policy", "remove", ruleId)
        yield waitFor(lambda: ruleId.encode() not in _read(aPolicy), what="the rule gone on A")
        out, _, code = yield self.callFromB(zone)
        self.assertEqual((out, code), ("42\n", 0))

    @defer.inlineCallbacks
    def test_prompt(self):
        """
        A prompt rule holds B's call until A's person answers permit; the
        next call, unanswered, is denied after A's prompt timeout.
        """
        zone = yield self.zone("--prompt-timeout", "10")
        a = zone.deviceDir("a")
        ruleId = (yield pzctl("--pzp-dir", a, "policy", "add", "--effect", "prompt-oneshot",
                              "--service", "get42")).strip()
        call = self.callFromB(zone)
        waiting = yield waitFor(lambda: pzctlJSON("--pzp-dir", a, "prompts", "--json"),
                                what="the prompt on A")
        [prompt] = waiting
        self.assertEqual((prompt["subject"], prompt["service"], prompt["rule"]),
                         (zone.deviceId("b"), "get42", ruleId))
        self.assertFalse(call.called)
        out = yield pzctl("--pzp-dir", a, "answer", prompt["id"], "permit")
        self.assertIn("permitted", out)
        out, _, code = yield call
        self.assertEqual((out, code), ("42\n", 0))

        start = time.monotonic()
        yield self.assertDenied(zone, ruleId)
        self.assertGreaterEqual(time.monotonic() - start, 9)
        out = yield pzctl("--pzp-dir", a, "prompts")
        self.assertEqual(out, "no prompts waiting\n")
