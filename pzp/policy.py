# -*- test-case-name: tests.pzp.test_policy -*-
"""
The zone's policy enforced on this device: every call another device
makes to one of this device's services is decided here before the
service runs.

L{DevicePolicy} holds the device's L{PolicyDecisionPoint}, loaded from the
synced item C{policies/policy.xml}.  It looks at the file before each
decision (one C{stat}) and reads it again when it changed, whoever changed
it: the hub's sync, a peer's (L{pzp.peersync}), C{pzctl policy} or a person
with an editor; a changed policy is so in force from the next call on,
without a restart.  A policy that does not parse is refused: the sync
engine does not install one that comes from the hub (L{checkPolicy} is its
validator), and one written any other way is logged while the previous
policy stays in force.

L{CallPolicy} is the enforcement point (L{pzp.calls.CallWorker} asks it
before serving any incoming call, over the hub link or a peer link alike):
it builds the request from the authenticated sender, asks the policy and,
where the rule says to prompt, the L{IPromptHandler}, remembering session
answers and writing blanket ones into the policy as rules.
"""

import os
from typing import Callable, Optional

from twisted.internet.defer import fail, succeed
from twisted.logger import Logger

from pz.errors import ZoneError
from pz.policy import PolicyDecisionPoint, PolicyError, Request, Resource, Subject, parsePolicy
from pz.policy.edit import addRule
from pz.sync.defaults import POLICY as DEFAULT_POLICY
from pz.sync.zoneitems import trustedHubPath
from pzp.interfaces import IPromptHandler

__all__ = ["POLICY", "DevicePolicy", "CallPolicy", "checkPolicy", "subjectOf"]

#: The policy among the zone's items.
POLICY = "policies/policy.xml"


def checkPolicy(path: str, data: bytes) -> None:
    """
    The sync engine's validator: a policy that does not parse is not
    installed.

    @raise ZoneError: C{SYNC_BAD_ITEM}, naming the line and the problem.
    """
    try:
        parsePolicy(data)
    except PolicyError as e:
        raise ZoneError("SYNC_BAD_ITEM", f"{path}: {e.message}") from None


class DevicePolicy:
    """
    The policy in force on this device, read again whenever its file
    changes.
    """

    _log = Logger()

    def __init__(self, tree) -> None:
        """
        @param tree: the device's L{pz.sync.items.ItemTree}.
        """
        self._tree = tree
        # Looked at before every call, so by name, without the tree's
        # checks for links on the way: those run when the file is read.
        self._file = os.path.join(tree.root, *POLICY.split("/"))
        # Until the item is read: the zone's default policy, what every
        # device starts with.
        self._pdp = PolicyDecisionPoint(parsePolicy(DEFAULT_POLICY.encode("utf-8")))
        self._signature = None

    def refresh(self) -> None:
        """
        Read the policy again if its file changed since it was last read;
        one that does not parse is logged and the previous stays in force.
        """
        try:
            st = os.lstat(self._file)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            signature = None
        if signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self._log.warn("policy {path} is missing: the previous policy stays in force",
                           path=POLICY)
            return
        try:
            data = self._tree.read(POLICY)
            self._pdp.load(data if data is not None else b"")
        except (PolicyError, ZoneError, OSError) as e:
            self._log.warn("{path} refused, the previous policy stays in force: {error}",
                           path=POLICY, error=getattr(e, "message", None) or str(e))
            return
        self._log.info("{path} loaded: in force from the next call", path=POLICY)

    def decide(self, request: Request):
        """
        The decision on C{request} under the policy in force now.
        """
        self.refresh()
        return self._pdp.decide(request)


def subjectOf(sender: str, zoneId: str, tree) -> Subject:
    """
    The subject of a request from C{sender}, the device id its link
    authenticated: our zone's own device (C{own}); a device of a zone whose
    CA this zone trusts, under C{certificates/trusted-pzh/} (C{friend}); or
    C{unknown}, which no policy permits.
    """
    zone = sender.partition("/")[0]
    if zone == zoneId:
        relation = "own"
    else:
        try:
            relation = "friend" if tree.read(trustedHubPath(zone)) is not None else "unknown"
        except (OSError, ZoneError):
            relation = "unknown"
    return Subject(zone, sender, None, relation)


class CallPolicy:
    """
    The enforcement point in front of this device's services.

    @ivar _session: C{(device, service, method)} -> permit, the session
        answers, kept until this device stops.
    """

    _log = Logger()

    def __init__(self, policy: DevicePolicy, tree, zoneId: Callable[[], str], prompts) -> None:
        """
        @param zoneId: this device's zone id, now.
        @param prompts: the L{IPromptHandler} that asks the person.
        """
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
        request = Request(subjectOf(sender, self._zoneId(), self._tree),
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
