# -*- test-case-name: tests.pzp.test_policy -*-
"""
The zone's policy enforced on this device: every call another device
makes to one of this device's services is decided here before the
service runs.

The device's policy is a L{pz.policy.item.ItemPolicy} over its items
folder: a change from the hub's sync, a peer's (L{pzp.peersync}),
C{pzctl policy} or an editor is in force from the next call on, without a
restart; one that does not parse is refused and the previous one stays.

L{CallPolicy} is the enforcement point (L{pzp.calls.CallWorker} asks it
before serving any incoming call, over the hub link or a peer link alike):
it builds the request from the authenticated sender, asks the policy and,
where the rule says to prompt, the L{IPromptHandler}, remembering session
answers and writing blanket ones into the policy as rules.
"""

from typing import Callable, Optional

from twisted.internet.defer import fail, succeed
from twisted.logger import Logger

from pz.errors import ZoneError
from pz.policy import Request, Resource, Subject
from pz.policy.edit import addRule
from pz.policy.item import POLICY, ItemPolicy, checkPolicy
from pz.sync.defaults import POLICY as DEFAULT_POLICY
from pz.sync.zoneitems import trustedHubPath
from pzp.interfaces import IPromptHandler

__all__ = ["POLICY", "ItemPolicy", "CallPolicy", "checkPolicy", "subjectOf"]


def subjectOf(sender: str, zoneId: str, tree, guests=frozenset()) -> Subject:
    """
    The subject of a request from C{sender}, the device id its link
    authenticated: our zone's own device (C{own}); a device of a zone whose
    CA this zone trusts, under C{certificates/trusted-pzh/} (C{friend}); a
    device among C{guests}, on a one-time link of the peer-to-peer
    certificate exchange (C{guest}); or C{unknown}, which no policy
    permits.
    """
    zone = sender.partition("/")[0]
    if zone == zoneId:
        relation = "own"
    else:
        try:
            relation = "friend" if tree.read(trustedHubPath(zone)) is not None else "unknown"
        except (OSError, ZoneError):
            relation = "unknown"
        if relation == "unknown" and sender in guests:
            relation = "guest"
    return Subject(zone, sender, None, relation)


class CallPolicy:
    """
    The enforcement point in front of this device's services.

    @ivar _session: C{(device, service, method)} -> permit, the session
        answers, kept until this device stops.
    """

    _log = Logger()

    def __init__(self, policy: ItemPolicy, tree, zoneId: Callable[[], str], prompts,
                 guests: Callable[[], frozenset] = frozenset) -> None:
        """
        @param zoneId: this device's zone id, now.
        @param prompts: the L{IPromptHandler} that asks the person.
        @param guests: the devices on one-time links of a certificate
            exchange, now (L{pzp.peermode.PeerMode.guestIds}).
        """
        self._guests = guests
        self._policy = policy
        self._tree = tree
        self._zoneId = zoneId
        self._prompts = IPromptHandler(prompts)
        self._session: dict = {}

    def check(self, sender: str, service: str, method: str):
        """
        Whether device C{sender} may call C{service.method} here.

        @return: a L{Deferred} firing with None to go ahead, or failing
            with C{ZoneError("DENIED")} naming the rule; it waits while a
            prompt does (cancelling it withdraws the prompt).
        """
        request = Request(subjectOf(sender, self._zoneId(), self._tree, self._guests()),
                          Resource(service, method, None), "call")
        decision = self._policy.decide(request)
        if decision.prompt is None:
            return self._decided(request, decision, decision.effect == "Permit")
        key = (sender, service, method)
        if key in self._session:
            return self._decided(request, decision, self._session[key], "session answer")
        d = self._prompts.prompt(request, decision)
        return d.addCallback(self._answered, request, decision)

    def _answered(self, answer, request: Request, decision):
        resource = request.resource
        if answer.scope == "session":
            self._session[(request.subject.device, resource.service, resource.method)] = answer.permit
        elif answer.scope == "always":
            self._remember(request, answer.permit)
        return self._decided(request, decision, answer.permit,
                             f"prompt answered {'permit' if answer.permit else 'deny'} "
                             f"({answer.scope})")

    def _remember(self, request: Request, permit: bool) -> None:
        """
        A blanket answer becomes a rule first in the policy, written into
        the items folder like any edit, so it syncs to the zone.
        """
        resource = request.resource
        try:
            data, ruleId = addRule(self._tree.read(POLICY) or DEFAULT_POLICY.encode("utf-8"),
                                   "permit" if permit else "deny",
                                   subject=request.subject.device, service=resource.service,
                                   method=resource.method, first=True)
            self._tree.write(POLICY, data)
        except (OSError, ZoneError) as e:
            self._log.warn("the answer could not be kept as a rule: {error}", error=str(e))
            return
        self._log.info("the answer is kept as rule {rule}", rule=ruleId)

    def _decided(self, request: Request, decision, permit: bool, how: Optional[str] = None):
        resource = request.resource
        effect = "Permit" if permit else "Deny"
        self._log.info("policy {effect} {subject} {service}.{method} rule={rule}{how}",
                       effect=effect, subject=request.subject.device, service=resource.service,
                       method=resource.method, rule=decision.ruleId,
                       how=f" ({how})" if how else "")
        if permit:
            return succeed(None)
        # The rule names itself; without one, the decision point's reason
        # says why (no rule applies, an unknown subject).
        rule = f"rule {decision.ruleId}" if decision.ruleId else "the policy"
        if how:
            why = f" ({how})"
        else:
            why = f": {decision.reason}" if decision.reason and not decision.ruleId else ""
        return fail(ZoneError("DENIED", f"{resource.service}.{resource.method} is denied to "
                                        f"{request.subject.device} by {rule}{why}"))
