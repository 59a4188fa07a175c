"""
Tests for L{pzp.calls.CallWorker}: calls with ids and timeouts between two
devices, over links faked as lists of sent envelopes, with a L{Clock}.
"""

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pz.calls import makeRequest, makeResult
from pz.errors import ZoneError
from pz.wire import Envelope
from pz.zoneservice import ServiceRegistry, ZoneService, exposed
from pzp.builtins import Get42Service
from pzp.calls import CallWorker


class _Transport:
    disconnecting = False


class FakeLink:
    """
    A link that keeps what is sent on it.
    """

    def __init__(self, localId: str) -> None:
        self.localId = localId
        self.sent = []
        self.transport = _Transport()

    def sendEnvelope(self, envelope: Envelope) -> None:
        self.sent.append(envelope)


class Slow(ZoneService):
    name = "slow"

    def __init__(self) -> None:
        self.pending = Deferred()

    @exposed
    def wait(self):
        return self.pending


class CallWorkerTests(SynchronousTestCase):
    """
    Device A calls device B.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.registryB = ServiceRegistry()
        self.registryB.register(Get42Service())
        self.slow = Slow()
        self.registryB.register(self.slow)
        self.a = CallWorker(ServiceRegistry(), self.clock, timeout=5)
        self.b = CallWorker(self.registryB, self.clock)
        self.linkA, self.linkB = FakeLink("A"), FakeLink("B")

    def deliver(self) -> None:
        """
        Carry what each side sent to the other, as the hub would (setting
        C{from} to the sender's proven id).
        """
        while self.linkA.sent or self.linkB.sent:
            for source, worker, link in ((self.linkA, self.b, self.linkB), (self.linkB, self.a, self.linkA)):
                sent, source.sent = source.sent, []
                for envelope in sent:
                    worker.envelopeReceived(link, envelope)

    def test_get42(self) -> None:
        """
        A calls C{get42.get42} on B and gets 42; the request is a
        C{JSONRPC} envelope to B answering to A.
        """
        d = self.a.call(self.linkA, "B", "get42", "get42")
        (request,) = self.linkA.sent
        self.assertEqual((request.type, request.to, request.respTo), ("JSONRPC", "B", "A"))
        self.assertEqual(request.payload["method"], "get42.get42")
        self.deliver()
        self.assertEqual(self.successResultOf(d), 42)
        self.assertEqual(self.a._pending, {})

    def test_remoteError(self) -> None:
        """
        An error answer fails the call with its zone code.
        """
        d = self.a.call(self.linkA, "B", "get42", "nothing")
        self.deliver()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NO_SUCH_METHOD")
        d = self.a.call(self.linkA, "B", "nosuch", "get42")
        self.deliver()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NO_SUCH_SERVICE")

    def test_timeout(self) -> None:
        """
        No answer within the timeout is C{TIMEOUT}; the late answer is then
        dropped, harming nothing.
        """
        d = self.a.call(self.linkA, "B", "slow", "wait")
        self.deliver()
        self.clock.advance(4.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        e = self.failureResultOf(d, ZoneError).value
        self.assertEqual(e.code, "TIMEOUT")
        self.assertIn("slow.wait", e.message)
        self.slow.pending.callback("late")
        self.deliver()
        self.assertEqual(self.a._pending, {})

    def test_answerNobodyAskedFor(self) -> None:
        """
        A reply to a call nobody made, a malformed answer, and an answer
        from another device than the one called are dropped.
        """
        d = self.a.call(self.linkA, "B", "slow", "wait")
        callId = self.linkA.sent[0].payload["id"]
        for sender, payload in (
            ("B", makeResult("never-made", 1)),
            ("B", {"jsonrpc": "2.0", "id": callId}),
            ("C", makeResult(callId, "spoofed")),
            ("B", {"nonsense": True}),
        ):
            self.a.envelopeReceived(self.linkA, Envelope("JSONRPC", sender, "A", "e", payload))
        self.assertNoResult(d)
        self.a.envelopeReceived(self.linkA, Envelope("JSONRPC", "B", "A", "e", makeResult(callId, "real")))
        self.assertEqual(self.successResultOf(d), "real")

    def test_refusedByHub(self) -> None:
        """
        The hub's refusal of the call's envelope fails the call with its
        code; an unknown reference is not taken.
        """
        d = self.a.call(self.linkA, "B", "get42", "get42")
        envelopeId = self.linkA.sent[0].id
        self.assertFalse(self.a.refused("other", ZoneError("DEVICE_OFFLINE")))
        self.assertTrue(self.a.refused(envelopeId, ZoneError("DEVICE_OFFLINE", "B is offline")))
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DEVICE_OFFLINE")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_linkLost(self) -> None:
        """
        Calls waiting on a link that closes fail C{NOT_CONNECTED}; calls on
        other links wait on.
        """
        other = FakeLink("A")
        d1 = self.a.call(self.linkA, "B", "slow", "wait")
        d2 = self.a.call(other, "B", "slow", "wait")
        self.a.linkLost(self.linkA)
        self.assertEqual(self.failureResultOf(d1, ZoneError).value.code, "NOT_CONNECTED")
        self.assertNoResult(d2)

    def test_badCallNotSent(self) -> None:
        """
        A call the other end would refuse fails at once and sends nothing.
        """
        d = self.a.call(self.linkA, "B", "get.42", "get42")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "BAD_REQUEST")
        d = self.a.call(self.linkA, "B", "get42", "get42", [list(range(1_000_000))])
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "BAD_ARGUMENTS")
        self.assertEqual(self.linkA.sent, [])

    def test_bounded(self) -> None:
        """
        Beyond the bound of waiting calls, a call is C{RATE_LIMITED}.
        """
        self.a.maxPending = 2
        self.a.call(self.linkA, "B", "slow", "wait")
        self.a.call(self.linkA, "B", "slow", "wait")
        d = self.a.call(self.linkA, "B", "slow", "wait")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "RATE_LIMITED")
        self.assertEqual(len(self.linkA.sent), 2)

    def test_cancel(self) -> None:
        """
        A cancelled call is forgotten and its timer stopped.
        """
        d = self.a.call(self.linkA, "B", "slow", "wait")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertEqual((self.a._pending, self.clock.getDelayedCalls()), ({}, []))

    def test_answerAfterLinkClosed(self) -> None:
        """
        An answer ready after the caller's link closed is dropped, not
        written to a closed transport.
        """
        self.b.envelopeReceived(self.linkB, Envelope("JSONRPC", "A", "B", "e1", makeRequest("c", "slow", "wait")))
        self.linkB.transport.disconnecting = True
        self.slow.pending.callback(1)
        self.assertEqual(self.linkB.sent, [])

    def test_servingGivesUp(self) -> None:
        """
        A service that has not answered by the serving device's own call
        timeout is cancelled (so it can let go of what it holds) and the
        caller is answered C{TIMEOUT}; nothing of the call stays behind.
        """
        cancelled = []
        self.slow.pending = Deferred(lambda d: cancelled.append(True))
        self.b.envelopeReceived(self.linkB, Envelope("JSONRPC", "A", "B", "e1", makeRequest("c", "slow", "wait")))
        self.clock.advance(self.b.timeout - 1)
        self.assertEqual((cancelled, self.linkB.sent), ([], []))
        self.clock.advance(1)
        self.assertEqual(cancelled, [True])
        (answer,) = self.linkB.sent
        self.assertEqual(answer.payload["error"]["data"]["zone_code"], "TIMEOUT")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopGivesUpServing(self) -> None:
        """
        A device that stops cancels the calls it is still serving, answers
        nothing more and leaves no timer.
        """
        cancelled = []
        self.slow.pending = Deferred(lambda d: cancelled.append(True))
        self.b.envelopeReceived(self.linkB, Envelope("JSONRPC", "A", "B", "e1", makeRequest("c", "slow", "wait")))
        self.b.stop()
        self.assertEqual((cancelled, self.linkB.sent, self.clock.getDelayedCalls()), ([True], [], []))

    def test_answeredInTimeLeavesNoTimer(self) -> None:
        """
        A call answered in time leaves no timer behind.
        """
        self.b.envelopeReceived(self.linkB, Envelope("JSONRPC", "A", "B", "e1", makeRequest("c", "slow", "wait")))
        self.slow.pending.callback(1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.linkB.sent[0].payload["result"], 1)

    def test_badRequestAnswered(self) -> None:
        """
        A malformed request is answered C{BAD_REQUEST} to its sender.
        """
        self.b.envelopeReceived(
            self.linkB, Envelope("JSONRPC", "A", "B", "e1", {"jsonrpc": "2.0", "id": "x", "method": 3})
        )
        (answer,) = self.linkB.sent
        self.assertEqual(answer.to, "A")
        self.assertEqual(answer.payload["error"]["data"]["zone_code"], "BAD_REQUEST")
