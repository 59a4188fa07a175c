"""
The built-in prompt handler: prompts wait under an id until answered,
and are denied after the prompt timeout, on the clock.
"""

from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy import Decision, Request, Resource, Subject
from pzp.interfaces import IPromptHandler
from pzp.prompts import PromptAnswer, PromptQueue

REQUEST = Request(Subject("me@example.org", "me@example.org/phone", None, "own"),
                  Resource("get42", "get42", None), "call")


def decision(kind="oneshot"):
    return Decision("Deny", kind, "urn:pz:rule:ask", "rule urn:pz:rule:ask asks the user")


class PromptQueueTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.queue = PromptQueue(self.clock, timeout=20)
        self.addCleanup(lambda: self.assertEqual(self.clock.getDelayedCalls(), []))

    def test_provides(self):
        """
        The queue is an L{IPromptHandler}.
        """
        self.assertTrue(IPromptHandler.providedBy(self.queue))

    def test_waitsThenPermit(self):
        """
        A prompt waits, listed with who calls what under which rule, until
        it is answered; the answer fires it and it is no longer listed.
        """
        d = self.queue.prompt(REQUEST, decision())
        self.assertNoResult(d)
        [waiting] = self.queue.waiting()
        self.assertEqual((waiting["subject"], waiting["service"], waiting["method"],
                          waiting["rule"], waiting["prompt"], waiting["relation"]),
                         ("me@example.org/phone", "get42", "get42", "urn:pz:rule:ask",
                          "oneshot", "own"))
        answer = self.queue.answer(waiting["id"], True)
        self.assertEqual((answer["permit"], answer["scope"]), (True, "once"))
        self.assertEqual(self.successResultOf(d), PromptAnswer(True, "once"))
        self.assertEqual(self.queue.waiting(), [])

    def test_scopeFromRule(self):
        """
        Without a scope, the answer holds as the rule's prompt kind says;
        C{--session} and C{--always} choose it.
        """
        for kind, given, scope in (("session", None, "session"), ("blanket", None, "always"),
                                   ("oneshot", "session", "session"),
                                   ("oneshot", "always", "always")):
            d = self.queue.prompt(REQUEST, decision(kind))
            self.queue.answer(self.queue.waiting()[0]["id"], False, given)
            self.assertEqual(self.successResultOf(d), PromptAnswer(False, scope))

    def test_timeout(self):
        """
        A prompt nobody answers is denied after the timeout, not before.
        """
        d = self.queue.prompt(REQUEST, decision())
        self.clock.advance(19.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), PromptAnswer(False, "once"))
        self.assertEqual(self.queue.waiting(), [])

    def test_unknownId(self):
        """
        Answering a prompt that does not wait (never asked, answered
        already, or a bad answer) is C{BAD_REQUEST} and changes nothing.
        """
        d = self.queue.prompt(REQUEST, decision())
        promptId = self.queue.waiting()[0]["id"]
        for bad in (("nope", True, None), (promptId, "yes", None), (promptId, True, "ever")):
            e = self.assertRaises(ZoneError, self.queue.answer, *bad)
            self.assertEqual(e.code, "BAD_REQUEST")
        self.assertNoResult(d)
        self.queue.answer(promptId, True)
        self.assertEqual(self.assertRaises(ZoneError, self.queue.answer, promptId, True).code,
                         "BAD_REQUEST")

    def test_cancelWithdraws(self):
        """
        Cancelling the prompt (the call was given up) takes it off the
        list and stops its timer.
        """
        d = self.queue.prompt(REQUEST, decision())
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(self.queue.waiting(), [])

    def test_bounded(self):
        """
        Past the most prompts that may wait, a new one is denied at once.
        """
        queue = PromptQueue(self.clock, timeout=20, maxWaiting=1)
        first = queue.prompt(REQUEST, decision())
        self.assertEqual(self.successResultOf(queue.prompt(REQUEST, decision())),
                         PromptAnswer(False))
        queue.stop()
        self.assertEqual(self.successResultOf(first), PromptAnswer(False))

    def test_answerValidated(self):
        """
        An answer's scope is one of once, session, always.
        """
        self.assertRaises(ValueError, PromptAnswer, True, "forever")
        self.assertRaises(TypeError, PromptAnswer, "yes")
