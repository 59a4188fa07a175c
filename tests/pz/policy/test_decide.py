"""
The decision point's parts: request and decision values checked on
construction, Indeterminate outcomes, and the combining algorithms alone.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz.policy import (
    Decision, IPolicyDecisionPoint, PolicyDecisionPoint, Request, Resource, Subject, parsePolicy,
)
from pz.policy.combine import NOT_APPLICABLE, Outcome, combine

NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
MUST = f"""<?xml version="1.0"?>
<PolicySet xmlns="{NS}" PolicySetId="s"
  PolicyCombiningAlgId="urn:webinos:policy-combining-algorithm:first-matching-target">
  <Policy PolicyId="p" RuleCombiningAlgId="urn:webinos:policy-combining-algorithm:first-matching-target">
    <Target><AnyOf><AllOf>
      <Match MatchId="urn:oasis:names:tc:xacml:1.0:function:string-equal">
        <AttributeValue>get42</AttributeValue>
        <AttributeDesignator AttributeId="urn:pz:resource:service" MustBePresent="true"/>
      </Match>
    </AllOf></AnyOf></Target>
    <Rule RuleId="r" Effect="Permit"/>
  </Policy>
  <Policy PolicyId="q" RuleCombiningAlgId="urn:webinos:policy-combining-algorithm:first-matching-target">
    <Rule RuleId="all" Effect="Permit"/>
  </Policy>
</PolicySet>
""".encode()


class ValueTests(SynchronousTestCase):
    def test_checked(self):
        """
        Wrong kinds of values are refused when the request is built, not
        silently denied later.
        """
        self.assertRaises(ValueError, Subject, "a@h", None, None, "stranger")
        self.assertRaises(TypeError, Subject, None)
        self.assertRaises(TypeError, Resource, 42)
        self.assertRaises(TypeError, Request, "a@h", Resource(), "call")
        self.assertRaises(TypeError, Request, Subject("a@h"), Resource(), None)
        self.assertRaises(ValueError, Decision, "Prompt-oneshot", None, None, "")
        self.assertRaises(ValueError, Decision, "Deny", "twice", None, "")

    def test_defaults(self):
        """
        A subject is of our own zone unless told otherwise; a resource's
        parts are absent.
        """
        self.assertEqual(Subject("a@h").relation, "own")
        self.assertEqual(Resource(), Resource(None, None, None))


class InterfaceTests(SynchronousTestCase):
    def test_provides(self):
        """
        The decision point provides the interface enforcement points are
        wired with.
        """
        self.assertTrue(verifyObject(IPolicyDecisionPoint, PolicyDecisionPoint()))


class IndeterminateTests(SynchronousTestCase):
    def test_mustBePresent(self):
        """
        A target needing an attribute the request lacks is Indeterminate,
        which first-matching-target does not pass over: Deny, with a
        reason naming the policy.
        """
        pdp = PolicyDecisionPoint(parsePolicy(MUST))
        decision = pdp.decide(Request(Subject("a@h", "a@h/x"), Resource(), "connect"))
        self.assertEqual((decision.effect, decision.prompt, decision.ruleId),
                         ("Deny", None, None))
        self.assertIn("could not decide", decision.reason)
        decision = pdp.decide(Request(Subject("a@h", "a@h/x"), Resource("get42"), "call"))
        self.assertEqual((decision.effect, decision.ruleId), ("Permit", "r"))
        decision = pdp.decide(Request(Subject("a@h", "a@h/x"), Resource("files"), "call"))
        self.assertEqual((decision.effect, decision.ruleId), ("Permit", "all"))


def _run(algorithm, kinds, targets=None):
    outcomes = [NOT_APPLICABLE if kind == "NotApplicable" else Outcome(kind, f"r{i}", f"rule r{i}")
                for i, kind in enumerate(kinds)]
    matches = (lambda i: targets[i]) if targets else (lambda i: True)
    seen = []

    def evaluate(i):
        seen.append(i)
        return outcomes[i]
    result = combine(algorithm, range(len(kinds)), evaluate, matches)
    return result.kind, result.ruleId, seen


class CombineTests(SynchronousTestCase):
    def test_denyOverrides(self):
        """
        Deny wins and stops the evaluation; then Indeterminate, then the
        prompts from one-time to blanket, then Permit.
        """
        self.assertEqual(_run("deny-overrides", ["Permit", "Deny", "Permit"]),
                         ("Deny", "r1", [0, 1]))
        self.assertEqual(_run("deny-overrides", ["Permit", "Indeterminate", "Prompt-oneshot"])[:2],
                         ("Indeterminate", "r1"))
        self.assertEqual(_run("deny-overrides", ["Prompt-blanket", "Prompt-session"])[:2],
                         ("Prompt-session", "r1"))
        self.assertEqual(_run("deny-overrides", ["NotApplicable"])[:2], ("NotApplicable", None))
        self.assertEqual(_run("deny-overrides", [])[:2], ("NotApplicable", None))

    def test_permitOverrides(self):
        """
        Permit wins and stops; then Indeterminate, then the prompts from
        blanket to one-time, then Deny.
        """
        self.assertEqual(_run("permit-overrides", ["Deny", "Permit", "Deny"]),
                         ("Permit", "r1", [0, 1]))
        self.assertEqual(_run("permit-overrides", ["Prompt-oneshot", "Prompt-blanket", "Deny"])[:2],
                         ("Prompt-blanket", "r1"))
        self.assertEqual(_run("permit-overrides", ["Deny", "Indeterminate"])[:2],
                         ("Indeterminate", "r1"))

    def test_firstApplicable(self):
        """
        The first outcome that is not NotApplicable, Indeterminate
        included.
        """
        self.assertEqual(_run("first-applicable", ["NotApplicable", "Deny", "Permit"]),
                         ("Deny", "r1", [0, 1]))
        self.assertEqual(_run("first-applicable", ["Indeterminate", "Permit"])[:2],
                         ("Indeterminate", "r0"))

    def test_firstMatchingTarget(self):
        """
        The first child whose target matches decides, NotApplicable
        included; children before it are not evaluated.
        """
        self.assertEqual(_run("first-matching-target", ["Permit", "NotApplicable", "Deny"],
                              [False, True, True]), ("NotApplicable", None, [1]))
        self.assertEqual(_run("first-matching-target", ["Permit", "Deny"], [None, True])[:2],
                         ("Indeterminate", None))
        self.assertEqual(_run("first-matching-target", ["Permit"], [False]),
                         (NOT_APPLICABLE.kind, None, []))

    def test_unknown(self):
        """
        An algorithm the parser would not have let through is a
        programming error.
        """
        self.assertRaises(ValueError, combine, "majority", [], None, None)
