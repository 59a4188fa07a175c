"""
Parsing policies: the default policy and the test files parse; hostile and
malformed files are refused with a L{PolicyError} naming the line and the
problem, and a decision point that is given one keeps the policy it had.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy import (
    MAX_DEPTH, MAX_POLICY_BYTES, MAX_RULES, PolicyDecisionPoint, PolicyError, Request, Resource,
    Subject, parsePolicy,
)
from pz.sync.defaults import POLICY

NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
FIRST = "urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:first-applicable"
RULE_FIRST = "urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:first-applicable"
DENY_ALL = f"""<?xml version="1.0"?>
<PolicySet xmlns="{NS}" PolicySetId="s" PolicyCombiningAlgId="{FIRST}">
  <Policy PolicyId="p" RuleCombiningAlgId="{RULE_FIRST}">
    <Rule RuleId="deny-all" Effect="Deny"/>
  </Policy>
</PolicySet>
""".encode()


def wrap(rules: str, policyAttrs: str = f'RuleCombiningAlgId="{RULE_FIRST}"',
         namespace: str = NS) -> bytes:
    """
    A policy file with C{rules} in one policy; the policy starts on line
    3, its first rule on line 4.
    """
    return (f'<?xml version="1.0"?>\n<PolicySet xmlns="{namespace}" PolicySetId="s" '
            f'PolicyCombiningAlgId="{FIRST}">\n<Policy PolicyId="p" {policyAttrs}>\n'
            f"{rules}\n</Policy>\n</PolicySet>\n").encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE PolicySet [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<PolicySet>&lol3;</PolicySet>
"""

#: Hostile or malformed files, the line each is refused on (None for the
#: file as a whole) and a word of the message.
HOSTILE = [
    (BILLION_LAUGHS, 2, "DTD"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE PolicySet SYSTEM "http://127.0.0.1:1/p.dtd">\n'
     b"<PolicySet/>", 2, "DTD"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<x>&e;</x>',
     2, "DTD"),
    (wrap('<Rule RuleId="a" Effect="Permit"><Description>&xxe;</Description></Rule>'), 4,
     "undefined entity"),
    (b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1), 1, "nested deeper"),
    (wrap("", namespace="urn:oasis:names:tc:xacml:2.0:policy:schema:os"), 2, "namespace"),
    (b"<PolicySet/>", 1, "XACML 3.0 namespace"),
    (b" " * (MAX_POLICY_BYTES + 1), None, "bytes"),
    (b"", None, "empty"),
    (b"\x00\xff\xfe garbage", 1, "not well-formed"),
    # An encoding Python does not know (found by MutatedTests).
    (b'<?xml version="1.0" encoding="U"?>\n<PolicySet/>', 1, "unknown encoding"),
    (DENY_ALL[:-25], 5, "not well-formed"),
    (wrap('<Rule RuleId="a" Effect="Allow"/>'), 4, "Effect 'Allow'"),
    (wrap('<Rule RuleId="a" Effect="Permit"/>\n<Rule RuleId="a" Effect="Deny"/>'), 5,
     "used twice (also on line 4)"),
    (wrap('<Rule RuleId="a" Effect="Permit"><Obligation/></Rule>'), 4, "<Obligation>"),
    (wrap("", 'RuleCombiningAlgId="urn:x:only-one-applicable"'), 3, "RuleCombiningAlgId"),
    (wrap('<Rule RuleId="a" Effect="Permit"><Target><AnyOf><AllOf><Match MatchId="'
          'urn:oasis:names:tc:xacml:1.0:function:regexp-string-match"/></AllOf></AnyOf>'
          "</Target></Rule>"), 4, "MatchId"),
    (wrap('<Rule RuleId="a" Effect="Permit">\n<Target><AnyOf><AllOf><Match MatchId="'
          'urn:oasis:names:tc:xacml:1.0:function:string-equal"><AttributeValue>x'
          '</AttributeValue><AttributeDesignator AttributeId="urn:pz:subject:mood"/></Match>'
          "</AllOf></AnyOf></Target></Rule>"), 5, "urn:pz:subject:mood is not known"),
    (wrap('<Rule RuleId="a" Effect="Permit" Priority="9"/>'), 4, "Priority"),
    (wrap("<Rule/>"), 4, "RuleId"),
    (wrap('<Rule RuleId="a" Effect="Permit">text</Rule>'), 4, "text"),
]


class ParseTests(SynchronousTestCase):
    def test_default(self):
        """
        The zone's default policy parses: one set, one policy, one Permit
        rule.
        """
        policy = parsePolicy(POLICY.encode("utf-8"))
        self.assertEqual(policy.algorithm, "first-applicable")
        self.assertEqual([(p, r.ruleId, r.effect) for p, r in policy.rules()],
                         [("urn:pz:policy:default", "urn:pz:rule:permit-own-zone", "Permit")])

    def test_hostile(self):
        """
        Each hostile or malformed file is refused with C{POLICY_INVALID},
        the line it is on and what is wrong.
        """
        for data, line, word in HOSTILE:
            e = self.assertRaises(PolicyError, parsePolicy, data)
            self.assertIsInstance(e, ZoneError)
            self.assertEqual((e.code, e.line), ("POLICY_INVALID", line), e.message)
            self.assertIn(word, e.message)
            prefix = f"policy line {line}: " if line is not None else "policy: "
            self.assertTrue(e.message.startswith(prefix), e.message)

    def test_tooManyRules(self):
        """
        More than L{MAX_RULES} rules are refused, within the size limit.
        """
        data = wrap("\n".join(f'<Rule RuleId="r{i}" Effect="Deny"/>'
                              for i in range(MAX_RULES + 1)))
        self.assertLess(len(data), MAX_POLICY_BYTES)
        e = self.assertRaises(PolicyError, parsePolicy, data)
        self.assertEqual(e.line, 4 + MAX_RULES)
        self.assertIn("more than 10000 rules", e.message)

    def test_tenMegabytes(self):
        """
        A 10 MB file is refused by its size, before it is parsed.
        """
        data = wrap("<!-- " + "x" * (10 * 1024 * 1024) + " -->")
        e = self.assertRaises(PolicyError, parsePolicy, data)
        self.assertEqual(e.line, None)
        self.assertIn("more than the 1048576", e.message)

    def test_notBytes(self):
        """
        A policy is bytes, as read from its file.
        """
        self.assertRaises(TypeError, parsePolicy, POLICY)

    def test_prefixedAndCommented(self):
        """
        The namespace may be bound to a prefix, and comments and
        processing instructions are ignored.
        """
        data = (f'<?xml version="1.0"?>\n<!-- mine -->\n<x:PolicySet xmlns:x="{NS}" '
                f'PolicySetId="s" PolicyCombiningAlgId="{FIRST}"><?pi here?>'
                f'<x:Policy PolicyId="p" RuleCombiningAlgId="{RULE_FIRST}"><!-- c -->'
                f'<x:Rule RuleId="r" Effect="Prompt-session"/></x:Policy></x:PolicySet>')
        policy = parsePolicy(data.encode())
        self.assertEqual([r.effect for _, r in policy.rules()], ["Prompt-session"])


_REQUESTS = [
    Request(Subject("alice@hub-a", "alice@hub-a/phone"), Resource("get42", "get"), "call"),
    Request(Subject("bob@hub-b", None, None, "friend"), Resource(), "connect"),
]


def _hostile():
    """
    Generated hostile and malformed policy files, each with a word its
    refusal must say.
    """
    valid = POLICY.encode("utf-8")
    entity = st.from_regex(r"\A[a-z]{1,8}\Z").map(
        lambda name: (f'<?xml version="1.0"?>\n<!DOCTYPE PolicySet [<!ENTITY {name} '
                      f'"{name * 3}">]>\n<PolicySet xmlns="{NS}">&{name};</PolicySet>').encode())
    laughs = st.integers(2, 12).map(
        lambda n: b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a0 "lol">'
        + b"".join(f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">'.encode() for i in range(1, n))
        + f"]><l>&a{n - 1};</l>".encode())
    external = st.sampled_from(["file:///etc/passwd", "http://127.0.0.1:1/x.dtd",
                                "../../secret"]).map(
        lambda ref: f'<!DOCTYPE PolicySet SYSTEM "{ref}"><PolicySet/>'.encode())
    deep = st.integers(MAX_DEPTH + 1, 400).map(lambda n: (
        "".join(f'<PolicySet xmlns="{NS}" PolicySetId="s{i}" PolicyCombiningAlgId="{FIRST}">'
                for i in range(n)) + "</PolicySet>" * n).encode())
    namespace = st.sampled_from(["", "urn:oasis:names:tc:xacml:2.0:policy:schema:os",
                                 "urn:oasis:names:tc:xacml:3.0:core:schema:wd-16",
                                 "http://example.com/"]).map(
        lambda ns: valid.replace(NS.encode(), ns.encode()))
    large = st.integers(MAX_POLICY_BYTES + 1, 10 * 1024 * 1024).map(
        lambda n: valid.replace(b"</PolicySet>", b"<!--" + b"-" * n + b"--></PolicySet>"))
    truncated = st.integers(1, len(valid) - 14).map(lambda n: valid[:n])
    garbage = st.binary(max_size=300).filter(lambda b: not b.lstrip().startswith(b"<"))
    return st.one_of(
        entity.map(lambda d: (d, "DTD")), laughs.map(lambda d: (d, "DTD")),
        external.map(lambda d: (d, "DTD")), deep.map(lambda d: (d, "nested deeper")),
        namespace.map(lambda d: (d, "namespace")), large.map(lambda d: (d, "bytes")),
        truncated.map(lambda d: (d, "not well-formed")),
        garbage.map(lambda d: (d, "not well-formed" if d.strip() else "empty")))


class HostileTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(_hostile())
    def test_refusedAndPreviousKept(self, case):
        """
        A hostile or malformed file is refused with a L{PolicyError}
        saying where and what, and the decision point keeps the policy it
        had: its decisions do not change.
        """
        pdp = PolicyDecisionPoint(parsePolicy(DENY_ALL))
        before = [pdp.decide(r) for r in _REQUESTS]
        previous = pdp.policy
        data, word = case
        e = self.assertRaises(PolicyError, pdp.load, data)
        self.assertEqual(e.code, "POLICY_INVALID")
        self.assertIn(word, e.message)
        self.assertRegex(e.message, r"^policy( line \d+)?: \S")
        self.assertIs(pdp.policy, previous)
        self.assertEqual([pdp.decide(r) for r in _REQUESTS], before)

    def test_loadReplaces(self):
        """
        A good file replaces the policy in force at once.
        """
        pdp = PolicyDecisionPoint(parsePolicy(DENY_ALL))
        self.assertEqual(pdp.decide(_REQUESTS[0]).effect, "Deny")
        pdp.load(POLICY.encode("utf-8"))
        self.assertEqual(pdp.decide(_REQUESTS[0]).effect, "Permit")

    def test_noPolicy(self):
        """
        Without a policy every request is denied, with that reason.
        """
        decision = PolicyDecisionPoint().decide(_REQUESTS[0])
        self.assertEqual((decision.effect, decision.reason), ("Deny", "no policy is in force"))
        self.assertRaises(TypeError, PolicyDecisionPoint, POLICY)
        self.assertRaises(TypeError, PolicyDecisionPoint().decide, "call")


def _mutated():
    """
    The test policies with bytes replaced, removed or inserted.
    """
    import glob
    import os

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "policies")
    files = [POLICY.encode("utf-8")] + [open(p, "rb").read()
                                        for p in sorted(glob.glob(os.path.join(here, "*.xml")))]
    edit = st.tuples(st.integers(0, 10 ** 6), st.integers(0, 8),
                     st.sampled_from([b"", b"<", b">", b"/", b'"', b"&", b"x", b"\x00", b"\xff",
                                      b"<Rule/>", b"]]>", b"<!--", b"=", b"\n"]))

    def apply(case):
        data, edits = case
        for at, cut, put in edits:
            at %= len(data) + 1
            data = data[:at] + put + data[at + cut:]
        return data
    return st.tuples(st.sampled_from(files), st.lists(edit, min_size=1, max_size=4)).map(apply)


class MutatedTests(SynchronousTestCase):
    @settings(max_examples=400, deadline=None)
    @given(_mutated())
    def test_parsesOrRefused(self, data):
        """
        A damaged policy either parses or is refused with a L{PolicyError}
        naming a line: nothing else escapes.
        """
        try:
            parsePolicy(data)
        except PolicyError as e:
            self.assertRegex(e.message, r"^policy( line \d+)?: \S")
