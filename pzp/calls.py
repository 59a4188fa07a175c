# -*- test-case-name: tests.pzp.test_calls -*-
"""
The device's call worker: it serves the C{JSONRPC} requests that reach this
device over any link and makes this device's own calls, each with an id
and a timeout.

It knows links only as something with a C{localId} and C{sendEnvelope}
(a L{pz.link.Link}), so the hub link and a direct peer link share it: the
link hands it every C{JSONRPC} envelope (L{CallWorker.envelopeReceived})
and tells it when it closes (L{CallWorker.linkLost}).  An answer is
accepted only from the device that was called and only once: a reply to a
call nobody made, a late one, or one from another device is logged and
dropped, harming nothing.
"""

from typing import Optional

from twisted.internet import defer
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from pz.calls import makeError, makeRequest, parseAnswer, parseRequest, requestId, serve
from pz.errors import ZoneError
from pz.wire import Envelope, newMessageId

__all__ = ["CallWorker", "DEFAULT_TIMEOUT", "MAX_PENDING"]

#: Seconds a call waits for its answer unless told otherwise.
DEFAULT_TIMEOUT = 30.0
#: Calls of this device waiting at once; more is C{RATE_LIMITED}, so a
#: caller that never waits cannot grow memory without bound.
MAX_PENDING = 1000


class _Pending:
    """
    One outgoing call waiting for its answer.
    """

    def __init__(self, to: str, link, where: str, deferred: Deferred, envelopeId: str) -> None:
        self.to = to
        self.link = link
        self.where = where
        self.deferred = deferred
        self.envelopeId = envelopeId
        self.timer = None


class CallWorker:
    """
    Serves incoming calls from a registry and tracks outgoing ones.

    @ivar registry: this device's L{pz.zoneservice.ServiceRegistry}.
    @ivar clock: an L{IReactorTime} for the timeouts.
    @ivar _pending: call id -> L{_Pending}.
    @ivar _byEnvelope: envelope id -> call id, so a hub's refusal of the
        envelope (C{DEVICE_OFFLINE}, C{UNKNOWN_DESTINATION}) fails the call.
    """

    _log = Logger()

    def __init__(self, registry, clock, timeout: float = DEFAULT_TIMEOUT, maxPending: int = MAX_PENDING,
                 policy=None) -> None:
        """
        @param policy: the enforcement point (L{pzp.policy.CallPolicy})
            every incoming call passes before its service runs; None serves
            every call (a worker outside a zone, in tests).
        """
        self.registry = registry
        self.policy = policy
        self.clock = clock
        self.timeout = timeout
        self.maxPending = maxPending
        self._pending = {}
        self._byEnvelope = {}
        #: The calls this device is serving, until answered.
        self._serving = set()

    # -- outgoing ---------------------------------------------------------

    def call(self, link, to: str, service: str, method: str, params=None, timeout: Optional[float] = None) -> Deferred:
        """
        Call C{service.method} on device C{to} over C{link}.

        @return: a L{Deferred} firing with the result, or failing with the
            L{ZoneError} the answer carries, C{TIMEOUT}, C{NOT_CONNECTED}
            if the link closes first, C{RATE_LIMITED} if too many calls
            wait already, or C{BAD_REQUEST}/C{BAD_ARGUMENTS} for a call the
            other end would refuse (nothing is sent then).
        """
        if len(self._pending) >= self.maxPending:
            return fail(ZoneError("RATE_LIMITED", f"{self.maxPending} calls are waiting already"))
        callId = newMessageId()
        try:
            payload = makeRequest(callId, service, method, params)
        except ZoneError as e:
            return fail(e)
        envelopeId = newMessageId()
        d = Deferred(lambda _: self._forget(callId))
        pending = _Pending(to, link, f"{service}.{method}", d, envelopeId)
        delay = self.timeout if timeout is None else timeout
        pending.timer = self.clock.callLater(delay, self._expire, callId, delay)
        self._pending[callId] = pending
        self._byEnvelope[envelopeId] = callId
        link.sendEnvelope(Envelope("JSONRPC", link.localId, to, envelopeId, payload, respTo=link.localId))
        return d

    def callLocal(self, service: str, method: str, params=None) -> Deferred:
        """
        Call one of this device's own services, checked and answered
        exactly as a call from another device would be, but without a
        policy decision: the device's owner asks it, through its admin
        socket or the embedding application.
        """
        try:
            payload = makeRequest(newMessageId(), service, method, params)
        except ZoneError as e:
            return fail(e)

        def result(answer: dict):
            answer = parseAnswer(answer)
            if answer.error is not None:
                raise answer.error
            return answer.result

        return serve(self.registry, payload).addCallback(result)

    def _forget(self, callId) -> Optional[_Pending]:
        pending = self._pending.pop(callId, None)
        if pending is not None:
            self._byEnvelope.pop(pending.envelopeId, None)
            if pending.timer.active():
                pending.timer.cancel()
        return pending

    def _expire(self, callId, delay: float) -> None:
        pending = self._forget(callId)
        if pending is not None:
            pending.deferred.errback(
                ZoneError("TIMEOUT", f"{pending.to} did not answer {pending.where} within {delay:g} s")
            )

    def refused(self, envelopeId: str, error: ZoneError) -> bool:
        """
        The link refused the envelope of a call (the hub's C{error} with
        C{ref}: C{DEVICE_OFFLINE}, C{UNKNOWN_DESTINATION}, ...): fail it.

        @return: whether a call was waiting on that envelope.
        """
        callId = self._byEnvelope.get(envelopeId)
        if callId is None:
            return False
        self._forget(callId).deferred.errback(error)
        return True

    def linkLost(self, link) -> None:
        """
        Fail the calls still waiting on C{link} with C{NOT_CONNECTED}.
        """
        for callId, pending in list(self._pending.items()):
            if pending.link is link:
                self._forget(callId)
                pending.deferred.errback(
                    ZoneError("NOT_CONNECTED", f"the link closed before {pending.to} answered {pending.where}")
                )

    # -- incoming ---------------------------------------------------------

    def envelopeReceived(self, link, envelope: Envelope) -> None:
        """
        A C{JSONRPC} envelope from C{link}: a request (it has a C{method})
        is served and answered; anything else is taken for an answer.
        """
        payload = envelope.payload
        if "method" in payload:
            self._serve(link, envelope)
        else:
            self._answer(envelope)

    def _serve(self, link, envelope: Envelope) -> None:
        replyTo = envelope.respTo or envelope.sender

        def reply(answer) -> None:
            if answer is None:
                return  # given up: this device stops
            transport = getattr(link, "transport", None)
            if transport is None or transport.disconnecting:
                self._log.info("answer to {sender} dropped: the link closed", sender=envelope.sender)
                return
            link.sendEnvelope(Envelope("JSONRPC", link.localId, replyTo, newMessageId(), answer))

        def crashed(failure):
            callId = requestId(envelope.payload)
            if failure.check(defer.CancelledError):
                return None
            if failure.check(ZoneError):
                return makeError(callId, failure.value)  # the policy refused it
            if failure.check(defer.TimeoutError):
                return makeError(callId, ZoneError(
                    "TIMEOUT", f"the service did not answer within {self.timeout:g} s"))
            # serve() answers every outcome; this is a defect, not a refusal.
            self._log.failure("serving a call failed", failure)
            return makeError(callId, ZoneError("INTERNAL"))

        # The caller gives up after its timeout; a service that never
        # answers is cancelled after this device's own, so that nothing of
        # the call is held for ever.
        serving = self._decide(envelope)
        serving.addCallback(lambda _: serve(self.registry, envelope.payload))
        serving.addTimeout(self.timeout, self.clock)
        self._serving.add(serving)
        serving.addBoth(lambda result: (self._serving.discard(serving), result)[1])
        serving.addErrback(crashed).addCallback(reply)

    def _decide(self, envelope: Envelope) -> Deferred:
        """
        The policy's decision on an incoming call, before anything of it
        runs: fires to go ahead (a request too malformed to decide on is
        answered by L{serve}'s own refusal), fails with C{DENIED}.  This is
        the one place calls are decided, whichever link brought them.
        """
        if self.policy is None:
            return defer.succeed(None)
        try:
            request = parseRequest(envelope.payload)
        except ZoneError:
            return defer.succeed(None)
        return self.policy.check(envelope.sender, request.service, request.method)

    def stop(self) -> None:
        """
        The device stops: give up the calls still being served.
        """
        for serving in list(self._serving):
            serving.cancel()

    def _answer(self, envelope: Envelope) -> None:
        try:
            answer = parseAnswer(envelope.payload)
        except ZoneError as e:
            self._log.info("bad call answer from {sender} dropped: {error}", sender=envelope.sender, error=str(e))
            return
        pending = self._pending.get(answer.id)
        if pending is None or pending.to != envelope.sender:
            self._log.info(
                "answer from {sender} to no call waiting for it (late, unknown or from another device) dropped",
                sender=envelope.sender,
            )
            return
        self._forget(answer.id)
        if answer.error is not None:
            pending.deferred.errback(answer.error)
        else:
            pending.deferred.callback(answer.result)
