"""
The zone's policy enforced on real proxies in an in-memory zone
(L{pz.testing.MemoryZone}: real hub, real proxies, TLS in memory, one
clock): a Deny rule on the called device stops the call with C{DENIED}
over the hub path and over the peer path alike; a prompt rule holds the
call until C{answer}; a broken policy from the hub is not installed.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy.edit import addRule
from pz.testing import MemoryZone
from pz.sync.items import ItemTree
from pzh.hub import HubSettings
from pzp.policy import POLICY
from pzp.proxy import ProxySettings


class PolicyWiringTests(SynchronousTestCase):
    def zone(self, settings=None, hubSettings=None):
        zone = MemoryZone(self, ["phone", "laptop"], deviceSettings=settings,
                          hubSettings=hubSettings)
        zone.coalesce()
        return zone

    def items(self, zone, name):
        return ItemTree(os.path.join(zone.dataDir(name), "zone"))

    def rule(self, zone, name, effect, **where):
        tree = self.items(zone, name)
        data, ruleId = addRule(tree.read(POLICY), effect, **where)
        tree.write(POLICY, data)
        return ruleId

    def via(self, zone, caller="phone", device="laptop", method="get42"):
        d = zone.device(caller).callVia(zone.deviceId(device), "get42", method)
        zone.flush()
        return d

    def assertDenied(self, zone, ruleId):
        """
        The phone's call is refused with C{DENIED} naming C{ruleId}.
        """
        e = self.failureResultOf(self.via(zone), ZoneError).value
        self.assertEqual(e.code, "DENIED")
        self.assertIn(ruleId, e.message)

    def test_denyHubPath(self):
        """
        Over the hub: a Deny rule on the laptop stops the phone's call;
        removing it restores the call, with no restart.
        """
        zone = self.zone(ProxySettings(peerConnection=False))
        self.assertEqual(self.successResultOf(self.via(zone))["via"], "hub")
        tree = self.items(zone, "laptop")
        before = tree.read(POLICY)
        ruleId = self.rule(zone, "laptop", "deny", subject=zone.deviceId("phone"),
                           service="get42")
        self.assertDenied(zone, ruleId)
        tree.write(POLICY, before)
        self.assertEqual(self.successResultOf(self.via(zone)), {"result": 42, "via": "hub"})

    def test_denyPeerPath(self):
        """
        Over a direct peer link: the same rule stops the call the same way.
        """
        zone = self.zone()
        self.assertEqual(self.successResultOf(self.via(zone))["via"], "peer")
        ruleId = self.rule(zone, "laptop", "deny", subject=zone.zoneId, service="get42")
        self.assertDenied(zone, ruleId)

    def test_ownCallsNeedNoDecision(self):
        """
        A device's calls to its own services are its owner's: a Deny rule
        for everyone does not stop them.
        """
        zone = self.zone()
        self.rule(zone, "laptop", "deny")
        d = zone.device("laptop").callVia(zone.deviceId("laptop"), "get42", "get42")
        self.assertEqual(self.successResultOf(d), {"result": 42, "via": "local"})

    def test_prompt(self):
        """
        A prompt rule holds the call until the laptop's person answers:
        permit lets it through; with no answer it is denied after the
        prompt timeout.
        """
        zone = self.zone(ProxySettings(promptTimeout=5))
        self.rule(zone, "laptop", "prompt-oneshot", service="get42")
        laptop = zone.device("laptop")
        d = self.via(zone)
        self.assertNoResult(d)
        [waiting] = laptop.waitingPrompts()
        self.assertEqual(waiting["subject"], zone.deviceId("phone"))
        laptop.answerPrompt(waiting["id"], True)
        zone.flush()
        self.assertEqual(self.successResultOf(d), {"result": 42, "via": "peer"})
        d = self.via(zone)
        zone.advance(5)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DENIED")
        self.assertEqual(laptop.waitingPrompts(), [])

    def test_callerTimeoutStillApplies(self):
        """
        The caller's own timeout holds while the prompt waits; the prompt
        is then denied on its own timeout.
        """
        zone = self.zone(ProxySettings(promptTimeout=20))
        self.rule(zone, "laptop", "prompt-oneshot", service="get42")
        d = zone.device("phone").callVia(zone.deviceId("laptop"), "get42", "get42", None, 3)
        zone.flush()
        zone.advance(3, step=1)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "TIMEOUT")
        self.assertEqual(len(zone.device("laptop").waitingPrompts()), 1)
        zone.advance(20, step=5)
        self.assertEqual(zone.device("laptop").waitingPrompts(), [])

    def test_brokenFromHub(self):
        """
        A policy from the hub that does not parse is not installed on the
        devices: the one they hold stays, and so does its decision.
        """
        zone = self.zone(hubSettings=HubSettings(synchronise=True))
        zone.advance(3)
        ruleId = self.rule(zone, "laptop", "deny", service="get42")
        zone.advance(6)
        hubTree = zone.hub.sync.tree
        self.assertIn(ruleId.encode(), hubTree.read(POLICY))
        hubTree.write(POLICY, b"<PolicySet xmlns='urn:oasis:names:tc:xacml:3.0:core:schema:wd-17'>"
                              b"<Rule Effect='Permit'/></PolicySet>\n")
        zone.advance(6)
        self.assertIn(ruleId.encode(), self.items(zone, "laptop").read(POLICY))
        self.assertEqual(self.failureResultOf(self.via(zone), ZoneError).value.code, "DENIED")
