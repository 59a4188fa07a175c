"""
The stand-in policy core's contract, as the device's enforcement uses it.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy import PolicyDecisionPoint, PolicyError, Request, Resource, Subject, parsePolicy
from pz.policy.edit import addRule, removeRule, showRules
from pz.sync.defaults import POLICY


def _request(device="me@example.org/phone", service="get42", relation="own"):
    return Request(Subject(device.partition("/")[0], device, None, relation),
                   Resource(service, service, None), "call")


class StandInTests(SynchronousTestCase):
    def test_defaultPermits(self):
        """
        The zone's default policy permits its own devices, never an unknown one.
        """
        pdp = PolicyDecisionPoint(parsePolicy(POLICY.encode()))
        self.assertEqual(pdp.decide(_request()).effect, "Permit")
        self.assertEqual(pdp.decide(_request(relation="unknown")).effect, "Deny")

    def test_addRemove(self):
        """
        An added Deny or prompt rule applies; removing it restores the permit.
        """
        data, ruleId = addRule(POLICY.encode(), "deny", subject="me@example.org/phone",
                               service="get42")
        pdp = PolicyDecisionPoint(parsePolicy(data))
        self.assertEqual(pdp.decide(_request()).ruleId, ruleId)
        self.assertEqual(pdp.decide(_request()).effect, "Deny")
        self.assertEqual(pdp.decide(_request(service="files")).effect, "Permit")
        self.assertIn(ruleId, [r["id"] for r in showRules(data)])
        data2, prompt = addRule(data, "prompt-session", subject="me@example.org", first=True)
        decision = PolicyDecisionPoint(parsePolicy(data2)).decide(_request())
        self.assertEqual((decision.prompt, decision.ruleId), ("session", prompt))
        data3 = removeRule(removeRule(data2, ruleId), prompt)
        self.assertEqual(PolicyDecisionPoint(parsePolicy(data3)).decide(_request()).effect, "Permit")
        self.assertRaises(ZoneError, removeRule, data3, ruleId)

    def test_broken(self):
        """
        A broken policy is refused and the previous one kept.
        """
        pdp = PolicyDecisionPoint(parsePolicy(POLICY.encode()))
        self.assertRaises(PolicyError, pdp.load, b"<PolicySet")
        self.assertRaises(PolicyError, pdp.load, b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
        self.assertEqual(pdp.decide(_request()).effect, "Permit")
