# -*- test-case-name: tests.pzp.test_prompts -*-
"""
Prompts: the person asked whether a call may go ahead, when the policy's
rule says so (webinos' C{Prompt-oneshot}, C{Prompt-session} and
C{Prompt-blanket} effects).

L{PromptQueue} is the built-in L{IPromptHandler}: each question waits in
it under a short id until C{pzctl --pzp-dir DIR answer ID permit|deny}
answers it, or is denied after the prompt timeout (20 s by default, as
webinos did), so a headless device and the tests can answer.  An
embedding application passes its own handler to the proxy instead.
"""

from typing import Optional

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from pz.errors import ZoneError
from pzp.interfaces import IPromptHandler

__all__ = ["PromptAnswer", "PromptQueue", "DEFAULT_PROMPT_TIMEOUT", "SCOPES", "MAX_WAITING"]

#: Seconds a prompt waits for its answer before the call is denied.
DEFAULT_PROMPT_TIMEOUT = 20.0
#: How long an answer holds: this call only, until the device stops, or
#: for good (a rule in the policy).
SCOPES = ("once", "session", "always")
#: The scope an answer without C{--session} or C{--always} has, by the
#: rule's prompt kind.
_DEFAULT_SCOPE = {"oneshot": "once", "session": "session", "blanket": "always"}
#: Prompts waiting at once; more are denied at once, so a caller cannot
#: grow the queue without bound.
MAX_WAITING = 100


def _checkScope(instance, attribute, value) -> None:
    if value not in SCOPES:
        raise ValueError(f"a prompt answer's scope is one of {', '.join(SCOPES)}, not {value!r}")


@attrs.frozen
class PromptAnswer:
    """
    The person's answer to a prompt.

    @ivar permit: whether the call may go ahead.
    @ivar scope: C{once} (this call), C{session} (the same device, service
        and method until this device stops) or C{always} (a rule written
        into the policy, so it syncs).
    """

    permit: bool = attrs.field(validator=attrs.validators.instance_of(bool))
    scope: str = attrs.field(default="once", validator=_checkScope)


class _Waiting:
    def __init__(self, promptId: str, request, decision, deferred: Deferred, asked: float) -> None:
        self.promptId = promptId
        self.request = request
        self.decision = decision
        self.deferred = deferred
        self.asked = asked
        self.timer = None


@implementer(IPromptHandler)
class PromptQueue:
    """
    The prompts waiting for an answer on this device.
    """

    _log = Logger()

    def __init__(self, clock, timeout: float = DEFAULT_PROMPT_TIMEOUT,
                 maxWaiting: int = MAX_WAITING) -> None:
        self._clock = clock
        self.timeout = timeout
        self._maxWaiting = maxWaiting
        self._waiting: dict = {}
        self._next = 1

    def prompt(self, request, decision) -> Deferred:
        if len(self._waiting) >= self._maxWaiting:
            self._log.warn("prompt refused: {count} prompts wait already", count=len(self._waiting))
            return succeed(PromptAnswer(False))
        promptId = str(self._next)
        self._next += 1
        d = Deferred(lambda _: self._forget(promptId))
        waiting = _Waiting(promptId, request, decision, d, self._clock.seconds())
        waiting.timer = self._clock.callLater(self.timeout, self._expire, promptId)
        self._waiting[promptId] = waiting
        self._log.info("prompt {id}: may {device} call {service}.{method}? "
                       "(pzctl answer {id} permit|deny)", id=promptId,
                       device=request.subject.device, service=request.resource.service,
                       method=request.resource.method)
        return d

    def waiting(self) -> list:
        """
        The prompts waiting, oldest first, for C{pzctl prompts}.
        """
        return [self._describe(w) for w in self._waiting.values()]

    def answer(self, promptId: str, permit: bool, scope: Optional[str] = None) -> dict:
        """
        Answer prompt C{promptId}; without a C{scope}, the rule's prompt
        kind gives it (one-shot: this call; session: until the device
        stops; blanket: always).

        @raise ZoneError: C{BAD_REQUEST} for a prompt not waiting (never
            asked, answered already or timed out) or a bad answer.
        """
        if not isinstance(permit, bool) or (scope is not None and scope not in SCOPES):
            raise ZoneError("BAD_REQUEST", f"an answer is permit or deny, with a scope of "
                                           f"{', '.join(SCOPES)}")
        waiting = self._forget(promptId) if isinstance(promptId, str) else None
        if waiting is None:
            raise ZoneError("BAD_REQUEST", f"no prompt {str(promptId)[:40]!r} is waiting "
                                           "(answered, timed out or never asked)")
        scope = scope or _DEFAULT_SCOPE.get(waiting.decision.prompt, "once")
        described = self._describe(waiting)
        waiting.deferred.callback(PromptAnswer(permit, scope))
        return {**described, "permit": permit, "scope": scope}

    def stop(self) -> None:
        """
        The device stops: deny whatever still waits.
        """
        for promptId in list(self._waiting):
            self._expire(promptId)

    def _describe(self, waiting: _Waiting) -> dict:
        request, decision = waiting.request, waiting.decision
        return {
            "id": waiting.promptId,
            "subject": request.subject.device or request.subject.zone,
            "zone": request.subject.zone,
            "relation": request.subject.relation,
            "service": request.resource.service,
            "method": request.resource.method,
            "action": request.action,
            "prompt": decision.prompt,
            "rule": decision.ruleId,
            "waiting": round(self._clock.seconds() - waiting.asked, 1),
            "timeout": self.timeout,
        }

    def _forget(self, promptId: str) -> Optional[_Waiting]:
        waiting = self._waiting.pop(promptId, None)
        if waiting is not None and waiting.timer.active():
            waiting.timer.cancel()
        return waiting

    def _expire(self, promptId: str) -> None:
        waiting = self._forget(promptId)
        if waiting is not None:
            self._log.info("prompt {id} not answered within {timeout:g} s: denied",
                           id=promptId, timeout=self.timeout)
            waiting.deferred.callback(PromptAnswer(False))

