"""
The decision table: requests against the policy files in
C{tests/pz/policy/policies/}, each with the decision it must get.  Every
combining algorithm (at rule and policy level), every effect, targets that
match and miss, conditions, callers of our zone and of a friend zone, and
an unknown caller.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz.policy import PolicyDecisionPoint, Request, Resource, Subject, parsePolicy
from pz.sync.defaults import POLICY

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")

A, B, C = "alice@hub-a", "bob@hub-b", "carol@hub-c"
LAPTOP, PHONE, BOBPHONE = A + "/laptop", A + "/phone", B + "/phone"
OWN, FRIEND, UNKNOWN = "own", "friend", "unknown"
P, D = "Permit", "Deny"

#: file, (zone, device, relation, user), (service, method, path), action,
#: expected (effect, prompt, ruleId).
TABLE = [
    # deny-overrides (rules): Deny, then the most restrictive prompt, then Permit.
    ("deny-overrides", (A, PHONE, OWN, None), ("get42", "get", None), "call",
     (P, None, "do-permit-get42")),
    ("deny-overrides", (A, LAPTOP, OWN, None), ("get42", "get", None), "call",
     (D, None, "do-deny-laptop")),
    ("deny-overrides", (A, PHONE, OWN, None), ("files", "read", None), "call",
     (D, "oneshot", "do-oneshot-files")),
    ("deny-overrides", (A, PHONE, OWN, None), ("files", "list", None), "call",
     (D, "oneshot", "do-oneshot-files")),
    ("deny-overrides", (A, PHONE, OWN, None), ("photos", "get", None), "call",
     (D, "blanket", "do-blanket-photos")),
    ("deny-overrides", (A, PHONE, OWN, None), ("camera", "get", None), "call",
     (D, None, None)),
    ("deny-overrides", (B, BOBPHONE, FRIEND, None), ("get42", "get", None), "call",
     (P, None, "do-permit-get42")),
    ("deny-overrides", (C, C + "/tv", UNKNOWN, None), ("get42", "get", None), "call",
     (D, None, None)),
    # permit-overrides (rules): Permit, then the most permissive prompt, then Deny.
    ("permit-overrides", (A, LAPTOP, OWN, None), ("get42", "get", None), "call",
     (P, None, "po-permit-get42")),
    ("permit-overrides", (A, PHONE, OWN, None), ("files", "read", None), "call",
     (D, "blanket", "po-blanket-read")),
    ("permit-overrides", (A, PHONE, OWN, None), ("files", "write", None), "call",
     (D, "session", "po-session-files")),
    ("permit-overrides", (A, PHONE, OWN, None), ("camera", "snap", None), "call",
     (D, None, "po-deny-camera")),
    ("permit-overrides", (A, PHONE, OWN, None), ("mic", "on", None), "call",
     (D, "oneshot", "po-oneshot-mic")),
    ("permit-overrides", (A, PHONE, OWN, None), ("radio", "on", None), "call",
     (D, None, None)),
    ("permit-overrides", (B, BOBPHONE, UNKNOWN, None), ("get42", "get", None), "call",
     (D, None, None)),
    # first-applicable (rules and policies): the first rule that applies.
    ("first-applicable", (A, LAPTOP, OWN, None), ("get42", "get", None), "call",
     (D, None, "fa-deny-laptop")),
    ("first-applicable", (A, PHONE, OWN, None), ("get42", "get", None), "call",
     (P, None, "fa-permit-own")),
    ("first-applicable", (B, BOBPHONE, FRIEND, None), ("get42", "get", None), "call",
     (P, None, "fa-permit-bob-get42")),
    ("first-applicable", (B, BOBPHONE, FRIEND, None), ("files", "read", None), "call",
     (D, "session", "fa-session-friends")),
    ("first-applicable", (C, C + "/tv", FRIEND, None), ("get42", "get", None), "call",
     (D, "session", "fa-session-friends")),
    ("first-applicable", (C, C + "/tv", UNKNOWN, None), ("get42", "get", None), "call",
     (D, None, None)),
    # first-matching-target (policies and rules): the first target that
    # matches decides, even when its rule's condition does not hold.
    ("first-matching-target", (B, BOBPHONE, FRIEND, None), ("files", "delete", None), "call",
     (D, None, "fmt-deny-delete")),
    ("first-matching-target", (B, BOBPHONE, FRIEND, None), ("files", "read", None), "call",
     (D, None, None)),
    ("first-matching-target", (B, BOBPHONE, FRIEND, None), ("get42", "get", None), "call",
     (D, "oneshot", "fmt-oneshot-get42")),
    ("first-matching-target", (B, BOBPHONE, FRIEND, None), ("camera", "snap", None), "call",
     (D, None, None)),
    ("first-matching-target", (A, PHONE, OWN, None), ("files", "read", None), "call",
     (P, None, "fmt-permit-rest")),
    ("first-matching-target", (A, PHONE, OWN, None), ("files", "delete", None), "call",
     (P, None, "fmt-permit-rest")),
    # conditions: and, or, not, string-starts-with, string-is-in, MustBePresent.
    ("conditions", (B, BOBPHONE, FRIEND, None), (None, None, "policies/policy.xml"), "sync",
     (D, None, "c-deny-policy-sync")),
    ("conditions", (B, BOBPHONE, FRIEND, None), (None, None, "userdata/notes.txt"), "sync",
     (P, None, "c-permit-friend-sync")),
    ("conditions", (A, PHONE, OWN, None), (None, None, "policies/policy.xml"), "sync",
     (D, None, "c-permit-vault")),
    ("conditions", (A, PHONE, OWN, None), ("files", "read", None), "call",
     (P, None, "c-permit-read-list")),
    ("conditions", (A, PHONE, OWN, None), ("files", "list", None), "call",
     (P, None, "c-permit-read-list")),
    ("conditions", (A, PHONE, OWN, None), ("files", "write", None), "call",
     (D, None, None)),
    ("conditions", (A, PHONE, OWN, "alice"), ("diary", "read", None), "call",
     (P, None, "c-permit-alice")),
    ("conditions", (A, PHONE, OWN, "mallory"), ("diary", "read", None), "call",
     (D, None, "c-deny-not-alice")),
    ("conditions", (A, PHONE, OWN, None), ("diary", "read", None), "call",
     (D, None, "c-deny-not-alice")),
    ("conditions", (A, LAPTOP, OWN, None), (None, None, None), "connect",
     (P, None, "c-permit-hub-a")),
    ("conditions", (B, BOBPHONE, FRIEND, None), (None, None, None), "connect",
     (D, None, "c-permit-vault")),
    ("conditions", (A, PHONE, OWN, None), ("vault", "open", None), "call",
     (P, None, "c-permit-vault")),
    # nested sets: a friend zone's set (permit-overrides) inside deny-overrides.
    ("nested", (B, BOBPHONE, FRIEND, None), ("get42", "get", None), "call",
     (P, None, "n-permit-bob-get42")),
    ("nested", (B, BOBPHONE, FRIEND, None), ("files", "read", None), "call",
     (D, None, "n-deny-friends")),
    ("nested", (C, C + "/tv", FRIEND, None), ("get42", "get", None), "call",
     (D, None, "n-deny-friends")),
    ("nested", (A, PHONE, OWN, None), ("get42", "get", None), "call",
     (P, None, "n-permit-own")),
    ("nested", (A, PHONE, OWN, None), ("get42", "shutdown", None), "call",
     (D, None, "n-deny-kill")),
    ("nested", (B, BOBPHONE, FRIEND, None), ("get42", "shutdown", None), "call",
     (D, None, "n-deny-kill")),
    ("nested", (B, BOBPHONE, UNKNOWN, None), ("get42", "get", None), "call",
     (D, None, None)),
    # the default policy: everything our zone asks is permitted, nothing of a
    # friend zone until a rule permits it.
    ("default", (A, PHONE, OWN, None), ("get42", "get", None), "call",
     (P, None, "urn:pz:rule:permit-own-zone")),
    ("default", (B, BOBPHONE, FRIEND, None), ("get42", "get", None), "call",
     (D, None, None)),
    ("default", (B, BOBPHONE, FRIEND, None), (None, None, "policies/policy.xml"), "sync",
     (D, None, None)),
    ("default", (B, None, FRIEND, None), (None, None, None), "connect",
     (D, None, None)),
    ("default", (C, None, UNKNOWN, None), (None, None, None), "connect",
     (D, None, None)),
]


def _load(name: str) -> PolicyDecisionPoint:
    if name == "default":
        return PolicyDecisionPoint(parsePolicy(POLICY.encode("utf-8")))
    with open(os.path.join(HERE, name + ".xml"), "rb") as f:
        return PolicyDecisionPoint(parsePolicy(f.read()))


class DecisionTableTests(SynchronousTestCase):
    def test_table(self):
        """
        Every request of L{TABLE} gets its decision: effect, prompt and
        the rule that made it.
        """
        points = {}
        failures = []
        for row, (name, (zone, device, relation, user), (service, method, path), action,
                  expected) in enumerate(TABLE):
            pdp = points.setdefault(name, _load(name))
            request = Request(Subject(zone, device, user, relation),
                              Resource(service, method, path), action)
            decision = pdp.decide(request)
            got = (decision.effect, decision.prompt, decision.ruleId)
            if got != expected:
                failures.append(f"row {row} ({name}): {request} -> {got} "
                                f"({decision.reason}), expected {expected}")
        self.assertEqual(failures, [])

    def test_coverage(self):
        """
        The table is as broad as it claims: at least 40 rows, every file,
        every effect and prompt, Deny with no rule (nothing applies), and
        callers of every relation.
        """
        self.assertGreaterEqual(len(TABLE), 40)
        files = {name for name, *_ in TABLE}
        self.assertEqual(files - {"default"},
                         {f[:-4] for f in os.listdir(HERE) if f.endswith(".xml")})
        outcomes = {(e, p) for *_, (e, p, _) in TABLE}
        self.assertEqual(outcomes, {(P, None), (D, None), (D, "oneshot"), (D, "session"),
                                    (D, "blanket")})
        self.assertIn((D, None, None), [row[-1] for row in TABLE])
        self.assertEqual({row[1][2] for row in TABLE}, {OWN, FRIEND, UNKNOWN})

    def test_unknownAlwaysDenied(self):
        """
        A caller whose zone is unknown is denied before the policy is
        read, even by the default permit-own-zone rule, and the reason says so.
        """
        pdp = _load("default")
        decision = pdp.decide(Request(Subject(C, None, None, UNKNOWN), Resource(), "connect"))
        self.assertEqual((decision.effect, decision.ruleId), (D, None))
        self.assertIn("not trusted", decision.reason)

    def test_reasons(self):
        """
        The reason names the rule and what it did, or says nothing
        applied.
        """
        pdp = _load("deny-overrides")
        ask = lambda service: pdp.decide(Request(Subject(A, PHONE), Resource(service), "call"))
        self.assertEqual(ask("get42").reason, "rule do-permit-get42 permits")
        self.assertEqual(ask("files").reason, "rule do-oneshot-files asks the user (oneshot)")
        self.assertEqual(ask("none").reason, "no rule of the policy applies to the request")
