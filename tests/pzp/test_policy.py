"""
The device's policy and its enforcement point: the policy read from the
items folder and read again when it changes, a broken one refused, and
each call permitted, denied with C{DENIED} naming the rule, or asked about.
"""

import os

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.policy import Request, Resource
from pz.policy.edit import addRule, showRules
from pz.sync.defaults import POLICY as DEFAULT
from pz.sync.items import ItemTree
from pz.sync.zoneitems import trustedHubPath
from pzp.interfaces import IPromptHandler
from pzp.policy import POLICY, CallPolicy, ItemPolicy, checkPolicy, subjectOf
from pzp.prompts import PromptAnswer, PromptQueue

ZONE = "me@example.org"
PHONE = f"{ZONE}/phone"


def withRule(effect, **where):
    return addRule(DEFAULT.encode("utf-8"), effect, **where)


class _Logged:
    """
    Collects the log lines of a test.
    """

    def __init__(self, testCase):
        self.lines = []
        globalLogPublisher.addObserver(self._observe)
        testCase.addCleanup(globalLogPublisher.removeObserver, self._observe)

    def _observe(self, event):
        from twisted.logger import formatEvent
        self.lines.append(formatEvent(event))


class ItemPolicyTests(SynchronousTestCase):
    def setUp(self):
        self.tree = ItemTree(self.mktemp())
        self.tree.create()
        self.policy = ItemPolicy(self.tree)

    def decide(self, service="get42"):
        return self.policy.decide(Request(subjectOf(PHONE, ZONE, self.tree),
                                          Resource(service, service, None), "call"))

    def write(self, data: bytes):
        self.tree.write(POLICY, data)

    def test_defaultPermits(self):
        """
        The zone's default policy permits its own devices.
        """
        self.assertEqual(self.decide().effect, "Permit")

    def test_changeInForce(self):
        """
        A changed item is in force at the next decision, and so is its
        undoing: no restart.
        """
        data, ruleId = withRule("deny", subject=PHONE, service="get42")
        self.write(data)
        decision = self.decide()
        self.assertEqual((decision.effect, decision.ruleId), ("Deny", ruleId))
        self.assertEqual(self.decide("files").effect, "Permit")
        self.write(DEFAULT.encode("utf-8"))
        self.assertEqual(self.decide().effect, "Permit")

    def test_brokenKeepsPrevious(self):
        """
        A policy that does not parse is logged, naming the problem, and the
        previous policy stays in force until a good one replaces it.
        """
        data, ruleId = withRule("deny", service="get42")
        self.write(data)
        self.assertEqual(self.decide().effect, "Deny")
        logged = _Logged(self)
        for broken in (b"<PolicySet", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
                       DEFAULT.encode().replace(b'Effect="Permit"', b'Effect="Maybe"')):
            self.write(broken)
            self.assertEqual(self.decide().ruleId, ruleId)
        self.assertEqual(len([line for line in logged.lines if "refused" in line]), 3)
        self.write(DEFAULT.encode("utf-8"))
        self.assertEqual(self.decide().effect, "Permit")

    def test_missingKeepsPrevious(self):
        """
        A policy item removed leaves the previous policy in force.
        """
        self.write(withRule("deny", service="get42")[0])
        self.assertEqual(self.decide().effect, "Deny")
        os.remove(self.tree.resolve(POLICY))
        self.assertEqual(self.decide().effect, "Deny")

    def test_validator(self):
        """
        The sync engine's validator refuses a policy that does not parse,
        naming the item, and accepts one that does.
        """
        checkPolicy(POLICY, DEFAULT.encode("utf-8"))
        e = self.assertRaises(ZoneError, checkPolicy, POLICY, b"<PolicySet>\n<Rule></PolicySet>")
        self.assertEqual(e.code, "SYNC_BAD_ITEM")
        self.assertIn(POLICY, e.message)
        self.assertIn("line 2", e.message)

    def test_subjects(self):
        """
        The subject is our own zone's device, a friend zone's (its CA among
        the trusted hubs) or unknown.
        """
        self.assertEqual(subjectOf(PHONE, ZONE, self.tree).relation, "own")
        self.assertEqual(subjectOf("you@example.net/tv", ZONE, self.tree).relation, "unknown")
        self.tree.write(trustedHubPath("you@example.net"), b"a CA")
        friend = subjectOf("you@example.net/tv", ZONE, self.tree)
        self.assertEqual((friend.zone, friend.device, friend.relation),
                         ("you@example.net", "you@example.net/tv", "friend"))


@implementer(IPromptHandler)
class RecordingPrompts:
    """
    A prompt handler that records what it is asked and answers as told.
    """

    def __init__(self):
        from twisted.internet.defer import Deferred
        self._deferred = Deferred
        self.asked = []

    def prompt(self, request, decision):
        d = self._deferred()
        self.asked.append((request, decision, d))
        return d


class CallPolicyTests(SynchronousTestCase):
    def setUp(self):
        self.tree = ItemTree(self.mktemp())
        self.tree.create()
        self.clock = Clock()
        self.prompts = PromptQueue(self.clock, timeout=20)
        self.gate = CallPolicy(ItemPolicy(self.tree), self.tree, lambda: ZONE, self.prompts)
        self.addCleanup(lambda: self.assertEqual(self.clock.getDelayedCalls(), []))

    def rule(self, effect, **where):
        data, ruleId = addRule(self.tree.read(POLICY), effect, **where)
        self.tree.write(POLICY, data)
        return ruleId

    def test_permit(self):
        """
        A permitted call goes ahead, with one log line naming the decision
        and the rule and nothing of the call's arguments.
        """
        logged = _Logged(self)
        self.assertIsNone(self.successResultOf(self.gate.check(PHONE, "get42", "get42")))
        self.assertEqual([line for line in logged.lines if line.startswith("policy ")],
                         [f"policy Permit {PHONE} get42.get42 rule=urn:pz:rule:permit-own-zone"])

    def test_deny(self):
        """
        A Deny rule refuses the call with C{DENIED} naming the rule.
        """
        ruleId = self.rule("deny", subject=PHONE, service="get42")
        e = self.failureResultOf(self.gate.check(PHONE, "get42", "get42"), ZoneError).value
        self.assertEqual(e.code, "DENIED")
        self.assertIn(ruleId, e.message)
        self.successResultOf(self.gate.check(PHONE, "files", "list"))

    def test_unknownDenied(self):
        """
        A device of a zone this zone does not trust is denied, whatever the
        policy permits.
        """
        e = self.failureResultOf(self.gate.check("you@example.net/tv", "get42", "get42"),
                                 ZoneError).value
        self.assertEqual(e.code, "DENIED")

    def test_guest(self):
        """
        A device on a one-time link of a certificate exchange is a
        C{guest}: the default policy denies it, a rule naming its zone (or
        the C{guest} relation) permits it; once its link is gone it is
        unknown again, denied whatever the rules say.
        """
        guests = {"you@example.net/tv"}
        gate = CallPolicy(ItemPolicy(self.tree), self.tree, lambda: ZONE, self.prompts,
                          lambda: frozenset(guests))
        self.assertEqual(subjectOf("you@example.net/tv", ZONE, self.tree, guests).relation,
                         "guest")
        e = self.failureResultOf(gate.check("you@example.net/tv", "get42", "get42"),
                                 ZoneError).value
        self.assertEqual(e.code, "DENIED")
        self.rule("permit", subject="you@example.net", service="get42")
        self.successResultOf(gate.check("you@example.net/tv", "get42", "get42"))
        self.failureResultOf(gate.check("you@example.net/tv", "files", "list"), ZoneError)
        self.rule("permit", subject="guest", service="files")
        self.successResultOf(gate.check("you@example.net/tv", "files", "list"))
        guests.clear()
        self.failureResultOf(gate.check("you@example.net/tv", "get42", "get42"), ZoneError)

    def test_promptPermit(self):
        """
        A prompt rule makes the call wait until the answer; permit lets it
        go ahead, and the next call asks again (one-shot).
        """
        self.rule("prompt-oneshot", service="get42")
        d = self.gate.check(PHONE, "get42", "get42")
        self.assertNoResult(d)
        [waiting] = self.prompts.waiting()
        self.prompts.answer(waiting["id"], True)
        self.assertIsNone(self.successResultOf(d))
        again = self.gate.check(PHONE, "get42", "get42")
        self.assertNoResult(again)
        self.prompts.answer(self.prompts.waiting()[0]["id"], False)
        self.assertEqual(self.failureResultOf(again, ZoneError).value.code, "DENIED")

    def test_promptTimeout(self):
        """
        An unanswered prompt is denied after the prompt timeout.
        """
        ruleId = self.rule("prompt-oneshot", service="get42")
        d = self.gate.check(PHONE, "get42", "get42")
        self.clock.advance(20)
        e = self.failureResultOf(d, ZoneError).value
        self.assertEqual(e.code, "DENIED")
        self.assertIn(ruleId, e.message)

    def test_otherCallsGoOn(self):
        """
        A call waiting on a prompt holds up no other call.
        """
        self.rule("prompt-oneshot", service="get42")
        waiting = self.gate.check(PHONE, "get42", "get42")
        self.successResultOf(self.gate.check(PHONE, "files", "list"))
        self.assertNoResult(waiting)
        self.prompts.stop()
        self.failureResultOf(waiting, ZoneError)

    def test_sessionRemembered(self):
        """
        A session answer holds for the same device, service and method
        without asking again; another method is asked about.
        """
        self.rule("prompt-session", service="get42")
        d = self.gate.check(PHONE, "get42", "get42")
        self.prompts.answer(self.prompts.waiting()[0]["id"], False)
        self.failureResultOf(d, ZoneError)
        self.failureResultOf(self.gate.check(PHONE, "get42", "get42"), ZoneError)
        self.assertEqual(self.prompts.waiting(), [])
        other = self.gate.check(PHONE, "get42", "other")
        self.assertEqual(len(self.prompts.waiting()), 1)
        self.prompts.stop()
        self.failureResultOf(other, ZoneError)

    def test_alwaysWritesRule(self):
        """
        An answer with C{--always} becomes a rule first in the policy item,
        naming the device, service and method, and holds from then on.
        """
        self.rule("prompt-oneshot", service="get42")
        d = self.gate.check(PHONE, "get42", "get42")
        self.prompts.answer(self.prompts.waiting()[0]["id"], True, "always")
        self.successResultOf(d)
        rules = showRules(self.tree.read(POLICY))
        self.assertEqual({k: rules[0][k] for k in ("effect", "subject", "service", "method")},
                         {"effect": "permit", "subject": PHONE, "service": "get42",
                          "method": "get42"})
        self.successResultOf(self.gate.check(PHONE, "get42", "get42"))
        self.assertEqual(self.prompts.waiting(), [])

    def test_handlerGiven(self):
        """
        An application's own prompt handler is asked with the request and
        the decision, and its answer holds.
        """
        prompts = RecordingPrompts()
        gate = CallPolicy(ItemPolicy(self.tree), self.tree, lambda: ZONE, prompts)
        ruleId = self.rule("prompt-blanket", service="get42")
        d = gate.check(PHONE, "get42", "get42")
        [(request, decision, answer)] = prompts.asked
        self.assertEqual((request.subject.device, request.resource.service, request.action,
                          decision.prompt, decision.ruleId),
                         (PHONE, "get42", "call", "blanket", ruleId))
        answer.callback(PromptAnswer(False, "once"))
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DENIED")

    def test_wrongHandler(self):
        """
        A prompt handler that is not an L{IPromptHandler} fails at once.
        """
        self.assertRaises(TypeError, CallPolicy, ItemPolicy(self.tree), self.tree,
                          lambda: ZONE, object())


class LinkedPolicyTests(SynchronousTestCase):
    def test_symbolicLinkRefused(self):
        """
        A policy item that is a symbolic link is not followed: the previous
        policy stays in force.
        """
        tree = ItemTree(self.mktemp())
        tree.create()
        policy = ItemPolicy(tree)
        tree.write(POLICY, withRule("deny", service="get42")[0])
        request = Request(subjectOf(PHONE, ZONE, tree), Resource("get42", "get42", None), "call")
        self.assertEqual(policy.decide(request).effect, "Deny")
        elsewhere = self.mktemp()
        with open(elsewhere, "wb") as f:
            f.write(DEFAULT.encode("utf-8"))
        os.remove(tree.resolve(POLICY))
        os.symlink(os.path.abspath(elsewhere), tree.resolve(POLICY))
        self.assertEqual(policy.decide(request).effect, "Deny")
