"""
Editing a policy without writing XML: rules added and removed round-trip
through C{showRules}, decisions follow the added rules whatever the
sequence, hand-written XML around them is kept byte for byte, and bad
arguments are refused with C{BAD_REQUEST}.
"""

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy import PolicyDecisionPoint, PolicyError, Request, Resource, Subject, parsePolicy
from pz.policy.edit import EDITS_POLICY, EDITS_SET, EFFECTS, addRule, removeRule, showRules
from pz.sync.defaults import POLICY
from tests.pz.policy.test_parse import _mutated

DEFAULT = POLICY.encode("utf-8")
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")
NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"

#: Hand-written, with comments, a prefix and a second policy.
HAND = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Alice's policy, written by hand. -->
<x:PolicySet xmlns:x="{NS}" PolicySetId="mine"
    PolicyCombiningAlgId="urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:first-applicable">
  <!-- friends first -->
  <x:Policy PolicyId="friends" RuleCombiningAlgId="urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:first-applicable">
    <x:Rule RuleId="no-friends" Effect="Deny">
      <x:Target><x:AnyOf><x:AllOf><x:Match MatchId="urn:oasis:names:tc:xacml:1.0:function:string-equal">
        <x:AttributeValue>friend</x:AttributeValue>
        <x:AttributeDesignator AttributeId="urn:pz:subject:relation"/>
      </x:Match></x:AllOf></x:AnyOf></x:Target>
    </x:Rule>
  </x:Policy>
  <x:Policy PolicyId="rest" RuleCombiningAlgId="urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:first-applicable">
    <x:Rule RuleId="all" Effect="Permit"/><!-- keep me -->
  </x:Policy>
</x:PolicySet>
<!-- the end -->
""".encode()

ZONES = ["alice@hub-a", "bob@hub-b"]
DEVICES = [z + "/" + n for z in ZONES for n in ("phone", "tv")]
SERVICES = ["get42", "files"]
METHODS = ["get", "put"]


def _request(zone, name, relation, service, method):
    return Request(Subject(zone, f"{zone}/{name}", None, relation), Resource(service, method),
                   "call")


REQUESTS = [_request(z, n, "own" if z == ZONES[0] else "friend", s, m)
            for z in ZONES for n in ("phone", "tv") for s in SERVICES for m in METHODS]


class ShowTests(SynchronousTestCase):
    def test_default(self):
        """
        The default policy's one rule, as C{pzctl policy show} lists it.
        """
        self.assertEqual(showRules(DEFAULT), [{
            "id": "urn:pz:rule:permit-own-zone", "effect": "permit", "subject": "own",
            "service": None, "method": None, "item": None, "action": None,
            "policy": "urn:pz:policy:default",
            "description": "Permit every request of this zone's own devices.", "simple": True}])

    def test_handWritten(self):
        """
        A rule that matches on more than subject, service and method is
        not simple: its XML says the rest.
        """
        with open(os.path.join(HERE, "conditions.xml"), "rb") as f:
            rows = {row["id"]: row for row in showRules(f.read())}
        self.assertFalse(rows["c-deny-policy-sync"]["simple"])
        self.assertFalse(rows["c-permit-hub-a"]["simple"])
        self.assertEqual(rows["c-permit-vault"]["service"], "vault")

    def test_refused(self):
        """
        A file that does not parse is refused as the parser refuses it.
        """
        self.assertEqual(self.assertRaises(PolicyError, showRules, b"<x/>").code,
                         "POLICY_INVALID")


class AddRemoveTests(SynchronousTestCase):
    def test_roundTrip(self):
        """
        An added rule is listed with what it was given, in the edits
        policy; removing it gives back the file as it was, byte for byte.
        """
        data, ruleId = addRule(DEFAULT, "prompt-session", subject="bob@hub-b",
                               service="get42", method="get")
        [row] = [r for r in showRules(data) if r["id"] == ruleId]
        self.assertEqual(row, {"id": ruleId, "effect": "prompt-session", "subject": "bob@hub-b",
                               "service": "get42", "method": "get", "item": None,
                               "action": None, "policy": EDITS_POLICY,
                               "description": "", "simple": True})
        self.assertTrue(ruleId.startswith("urn:pz:rule:"))
        data2, ruleId2 = addRule(data, "deny", subject="alice@hub-a/tv")
        self.assertEqual(removeRule(removeRule(data2, ruleId2), ruleId), DEFAULT.replace(
            b"  <Policy PolicyId=\"urn:pz:policy:default\"",
            data[data.index(b"  <Policy PolicyId=\"urn:pz:policy:edits\""):
                 data.index(b"    <Rule RuleId=\"" + ruleId.encode())]
            + b"  </Policy>\n  <Policy PolicyId=\"urn:pz:policy:default\""))

    def test_takesEffect(self):
        """
        An added Deny decides before the default permit-own-zone rule; with C{first}
        an added Permit decides before it in turn.
        """
        pdp = PolicyDecisionPoint()
        data, deny = addRule(DEFAULT, "deny", subject="bob@hub-b", service="get42")
        pdp.load(data)
        decision = pdp.decide(REQUESTS[-4])
        self.assertEqual((decision.effect, decision.ruleId), ("Deny", deny))
        data, permit = addRule(data, "permit", subject="bob@hub-b/tv", first=True)
        pdp.load(data)
        decision = pdp.decide(REQUESTS[-4])
        self.assertEqual((decision.effect, decision.ruleId), ("Permit", permit))
        decision = pdp.decide(_request("bob@hub-b", "phone", "friend", "get42", "get"))
        self.assertEqual((decision.effect, decision.ruleId), ("Deny", deny))

    def test_handWrittenKept(self):
        """
        In a hand-written file the edits policy goes first, written with
        the file's namespace prefix, and every byte around it is kept;
        removing the rule leaves the rest as written.
        """
        data, ruleId = addRule(HAND, "permit", subject="bob@hub-b", service="get42")
        at = HAND.index(b"  <!-- friends first -->")
        self.assertEqual(data.index(b"<x:Policy PolicyId=\"urn:pz:policy:edits\""), at + 2)
        self.assertEqual(data[:at], HAND[:at])
        self.assertTrue(data.endswith(HAND[at:]))
        self.assertIn(b'<x:Policy PolicyId="urn:pz:policy:edits"', data)
        pdp = PolicyDecisionPoint(parsePolicy(data))
        self.assertEqual(pdp.decide(_request("bob@hub-b", "tv", "friend", "get42", "get")).effect,
                         "Permit")
        self.assertEqual(pdp.decide(_request("bob@hub-b", "tv", "friend", "files", "get")).ruleId,
                         "no-friends")
        self.assertNotIn(ruleId.encode(), removeRule(data, ruleId))
        removed = removeRule(HAND, "all")
        self.assertEqual(removed, HAND.replace(b'    <x:Rule RuleId="all" Effect="Permit"/>', b""))

    def test_wrapsOtherAlgorithms(self):
        """
        A file whose root set is not first-applicable is wrapped,
        unchanged, in a first-applicable set behind the edits policy, so
        the added rule decides first; the rest decides as before.
        """
        with open(os.path.join(HERE, "nested.xml"), "rb") as f:
            original = f.read()
        data, ruleId = addRule(original, "permit", subject="carol@hub-c", service="get42")
        self.assertIn(original[original.index(b"<PolicySet"):].rstrip(), data)
        policy = parsePolicy(data)
        self.assertEqual((policy.policySetId, policy.children[0].policyId),
                         (EDITS_SET, EDITS_POLICY))
        before, after = PolicyDecisionPoint(parsePolicy(original)), PolicyDecisionPoint(policy)
        carol = _request("carol@hub-c", "tv", "friend", "get42", "get")
        self.assertEqual(before.decide(carol).effect, "Deny")
        self.assertEqual(after.decide(carol).ruleId, ruleId)
        for request in REQUESTS:
            self.assertEqual(after.decide(request), before.decide(request))
        data2, ruleId2 = addRule(data, "deny", service="files")
        self.assertEqual(parsePolicy(data2).policySetId, EDITS_SET)
        self.assertEqual([r["id"] for r in showRules(data2)][:2], [ruleId, ruleId2])

    def test_relation(self):
        """
        C{own} and C{friend} name every device of our zone or of every
        friend zone: denying friends, then permitting one friend zone's
        call to one service with C{first}, lets only that call through.
        """
        data, deny = addRule(DEFAULT, "deny", subject="friend")
        data, permit = addRule(data, "permit", subject="bob@hub-b", service="get42", first=True)
        rows = {row["id"]: row for row in showRules(data)}
        self.assertEqual((rows[deny]["subject"], rows[permit]["subject"]), ("friend", "bob@hub-b"))
        pdp = PolicyDecisionPoint(parsePolicy(data))
        decide = lambda zone, relation, service: pdp.decide(
            _request(zone, "tv", relation, service, "get")).ruleId
        self.assertEqual(decide("bob@hub-b", "friend", "get42"), permit)
        self.assertEqual(decide("bob@hub-b", "friend", "files"), deny)
        self.assertEqual(decide("carol@hub-c", "friend", "get42"), deny)
        self.assertEqual(decide("alice@hub-a", "own", "files"), "urn:pz:rule:permit-own-zone")

    def test_editsPolicyAnywhere(self):
        """
        An edits policy that a person moved into a nested set is still
        the one added rules go to.
        """
        with open(os.path.join(HERE, "nested.xml"), "rb") as f:
            original = f.read()
        data, first = addRule(original, "deny", service="files")
        policy = data[data.index(b"  <Policy PolicyId=\"urn:pz:policy:edits\""):]
        policy = policy[:policy.index(b"</Policy>\n") + len(b"</Policy>\n")]
        moved = data.replace(policy, b"")
        at = moved.index(b"  <Policy PolicyId=\"urn:t:policy:own\"")
        moved = moved[:at] + policy + moved[at:]
        self.assertEqual([r["id"] for r in showRules(moved)].count(first), 1)
        data2, second = addRule(moved, "permit", service="get42")
        rows = [r for r in showRules(data2) if r["policy"] == EDITS_POLICY]
        self.assertEqual([r["id"] for r in rows], [first, second])

    def test_badArguments(self):
        """
        An unknown effect, a subject that is neither a device nor a zone
        id, an empty service name, a taken id and an unknown rule are
        refused with C{BAD_REQUEST}, naming the problem.
        """
        for kwargs, word in (
            ({"effect": "allow"}, "not an effect"),
            ({"effect": "deny", "subject": "bob"}, "neither a device id"),
            ({"effect": "deny", "subject": "bob@hub/"}, "not a device id"),
            ({"effect": "deny", "service": ""}, "service name"),
            ({"effect": "deny", "method": " get"}, "method name"),
            ({"effect": "deny", "ruleId": "urn:pz:rule:permit-own-zone"}, "taken"),
        ):
            e = self.assertRaises(ZoneError, addRule, DEFAULT, **kwargs)
            self.assertEqual(e.code, "BAD_REQUEST")
            self.assertIn(word, e.message)
        e = self.assertRaises(ZoneError, removeRule, DEFAULT, "urn:pz:rule:nope")
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn("no rule 'urn:pz:rule:nope'", e.message)
        self.assertEqual(self.assertRaises(ZoneError, addRule, b"<x/>", "deny").code,
                         "POLICY_INVALID")

    def test_escaped(self):
        """
        Names with XML's special characters are written escaped and read
        back as given.
        """
        data, ruleId = addRule(DEFAULT, "deny", service="a<b>&c", method='"q"')
        [row] = [r for r in showRules(data) if r["id"] == ruleId]
        self.assertEqual((row["service"], row["method"]), ("a<b>&c", '"q"'))


_ADD = st.tuples(st.just("add"), st.sampled_from(sorted(EFFECTS)),
                 st.sampled_from([None, "own", "friend", *ZONES, *DEVICES]),
                 st.sampled_from([None, *SERVICES]),
                 st.sampled_from([None, *METHODS]), st.booleans())
_REMOVE = st.tuples(st.just("remove"), st.integers(0, 50))


def _applies(rule, request) -> bool:
    _, subject, service, method = rule
    return ((subject is None or subject in (request.subject.zone, request.subject.device,
                                            request.subject.relation))
            and service in (None, request.resource.service)
            and method in (None, request.resource.method))


class SequenceTests(SynchronousTestCase):
    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(["default", "hand", "nested"]),
           st.lists(st.one_of(_ADD, _REMOVE), max_size=12))
    def test_anySequence(self, start, steps):
        """
        After any sequence of adds and removes the file parses, lists the
        added rules in the order they decide, and every request gets the
        effect of the first added rule that applies to it, or the
        decision the file gave before any edit.
        """
        original = {"default": DEFAULT, "hand": HAND}.get(start)
        if original is None:
            with open(os.path.join(HERE, start + ".xml"), "rb") as f:
                original = f.read()
        base = PolicyDecisionPoint(parsePolicy(original))
        data, model = original, []
        for step in steps:
            if step[0] == "add":
                _, effect, subject, service, method, first = step
                data, ruleId = addRule(data, effect, subject, service, method, first)
                entry = (ruleId, (EFFECTS[effect], subject, service, method))
                model.insert(0, entry) if first else model.append(entry)
            elif model:
                ruleId, _ = model.pop(step[1] % len(model))
                data = removeRule(data, ruleId)
        pdp = PolicyDecisionPoint(parsePolicy(data))
        self.assertEqual([r["id"] for r in showRules(data) if r["policy"] == EDITS_POLICY],
                         [ruleId for ruleId, _ in model])
        for request in REQUESTS:
            decision = pdp.decide(request)
            applying = [(ruleId, rule) for ruleId, rule in model if _applies(rule, request)]
            if applying:
                ruleId, (effect, *_) = applying[0]
                self.assertEqual(decision.ruleId, ruleId)
                self.assertEqual(decision.effect, "Permit" if effect == "Permit" else "Deny")
                self.assertEqual(decision.prompt, {"Prompt-oneshot": "oneshot",
                                                   "Prompt-session": "session",
                                                   "Prompt-blanket": "blanket"}.get(effect))
            else:
                self.assertEqual(decision, base.decide(request))


class SyncedTests(SynchronousTestCase):
    def test_canonicalCopy(self):
        """
        The copy another device writes after a sync (the xacml chunker's
        canonical document) parses and lists the same rules: an edited
        policy stays in force on every device.
        """
        from pz.sync.chunkers import chunkerFor

        chunker = chunkerFor("xacml")
        with open(os.path.join(HERE, "nested.xml"), "rb") as f:
            nested = f.read()
        for original in (DEFAULT, HAND, nested):
            data, _ = addRule(original, "prompt-oneshot", subject="friend", service="get42")
            synced = chunker.join(chunker.split(data))
            self.assertEqual(showRules(synced), showRules(data))
            self.assertEqual(showRules(removeRule(synced, showRules(data)[0]["id"])),
                             showRules(data)[1:])


def _varied():
    """
    The test policies and L{HAND} with comments, processing instructions
    and blank lines put after random tags.
    """
    files = [DEFAULT, HAND] + [open(os.path.join(HERE, name), "rb").read()
                               for name in sorted(os.listdir(HERE))]
    put = st.tuples(st.integers(0, 10 ** 6),
                    st.sampled_from([b"<!-- c -->", b"\n\n", b"<?pi x?>", b"\t",
                                     b" <!--<Rule/>-->"]))

    def apply(case):
        data, puts = case
        for at, text in puts:
            ends = [i + 1 for i in range(len(data)) if data[i:i + 1] == b">"]
            at = ends[at % len(ends)]
            data = data[:at] + text + data[at:]
        return data
    return st.tuples(st.sampled_from(files), st.lists(put, max_size=3)).map(apply)


class DamagedTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_anyParsingFile(self, data):
        """
        Whatever file parses (damaged, or with comments and blank lines
        anywhere), a rule is added to the edits policy and removing it
        again leaves the same rules; the file's own rules are untouched.
        """
        original = data.draw(st.one_of(_mutated(), _varied()))
        try:
            before = showRules(original)
        except PolicyError:
            return
        first = data.draw(st.booleans())
        edited, ruleId = addRule(original, "deny", subject="friend", service="get42",
                                 first=first)
        rows = showRules(edited)
        self.assertIn(ruleId, [r["id"] for r in rows if r["policy"] == EDITS_POLICY])
        self.assertEqual(showRules(removeRule(edited, ruleId)),
                         [r for r in rows if r["id"] != ruleId])
        self.assertEqual([r for r in rows if r["id"] != ruleId and r["policy"] != EDITS_POLICY],
                         [r for r in before if r["policy"] != EDITS_POLICY])
