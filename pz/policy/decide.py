# -*- test-case-name: tests.pz.policy.test_decide -*-
"""
The policy decision point: a request in, a L{Decision} out.

Evaluation follows XACML 3.0 for targets, conditions and the
combining algorithms, with webinos' prompt effects and first-matching-target
(L{pz.policy.combine}).  Whatever does not come to Permit, Deny or a prompt
(no rule applies, or the policy could not be evaluated) is Deny with a
reason, and a caller from a zone we do not know is denied before the
policy is read.
"""

from functools import partial
from typing import Optional

from zope.interface import implementer

from pz.policy.combine import NOT_APPLICABLE, Outcome, combine
from pz.policy.interfaces import IPolicyDecisionPoint
from pz.policy.model import EFFECTS, Apply, Decision, Policy, PolicySet, Request, Rule, Target
from pz.policy.parse import parsePolicy

__all__ = ["PolicyDecisionPoint", "evaluate"]


def _compare(function: str, value: str, actual: str) -> bool:
    if function == "equal":
        return actual == value
    return actual.startswith(value)


def targetMatches(target: Target, values: dict) -> Optional[bool]:
    """
    Whether C{target} matches the request's attribute C{values}: C{True},
    C{False}, or C{None} when a C{MustBePresent} attribute is missing
    (Indeterminate).
    """
    for allOfs in target.anyOf:
        indeterminate = False
        for matches in allOfs:
            for match in matches:
                actual = values[match.attribute]
                if actual is None:
                    if match.mustBePresent:
                        indeterminate = True
                    break
                if match.function == "equal":
                    if actual != match.value:
                        break
                elif not actual.startswith(match.value):
                    break
            else:
                break
        else:
            return None if indeterminate else False
    return True


class _Indeterminate(Exception):
    pass


def _condition(apply: Apply, values: dict) -> bool:
    function = apply.function
    if function == "and":
        return all(_condition(arg, values) for arg in apply.args)
    if function == "or":
        return any(_condition(arg, values) for arg in apply.args)
    if function == "not":
        return not _condition(apply.args[0], values)
    value, attribute = apply.args
    actual = values[attribute]
    if function == "is-in":
        return actual is not None and actual == value
    if actual is None:
        raise _Indeterminate(f"string-one-and-only of {attribute}, which the request lacks")
    return _compare(function, value, actual)


def _rule(values: dict, rule: Rule) -> Outcome:
    matched = targetMatches(rule.target, values)
    if matched is None:
        return Outcome("Indeterminate", rule.ruleId,
                       f"rule {rule.ruleId}: an attribute its target needs is missing")
    if not matched:
        return NOT_APPLICABLE
    if rule.condition is not None:
        try:
            if not _condition(rule.condition, values):
                return NOT_APPLICABLE
        except _Indeterminate as e:
            return Outcome("Indeterminate", rule.ruleId, f"rule {rule.ruleId}: {e}")
    return Outcome(rule.effect, rule.ruleId, f"rule {rule.ruleId}")


def evaluate(node, values: dict) -> Outcome:
    """
    Evaluate a L{PolicySet}, L{Policy} or L{Rule} for the request's
    attribute C{values} (L{Request.values}).
    """
    if isinstance(node, Rule):
        return _rule(values, node)
    matched = targetMatches(node.target, values)
    if matched is None:
        name = node.policyId if isinstance(node, Policy) else node.policySetId
        return Outcome("Indeterminate", None, f"{name}: an attribute its target needs is missing")
    if not matched:
        return NOT_APPLICABLE
    if isinstance(node, Policy):
        return combine(node.algorithm, node.rules, partial(_rule, values),
                       lambda rule: targetMatches(rule.target, values))
    return combine(node.algorithm, node.children, lambda child: evaluate(child, values),
                   lambda child: targetMatches(child.target, values))


def decisionOf(outcome: Outcome) -> Decision:
    """
    The decision an outcome gives: NotApplicable and Indeterminate are
    Deny; a prompt effect is Deny with its prompt, until someone permits.
    """
    kind = outcome.kind
    if kind == "Permit":
        return Decision("Permit", None, outcome.ruleId, f"{outcome.reason} permits")
    if kind == "Deny":
        return Decision("Deny", None, outcome.ruleId, f"{outcome.reason} denies")
    if kind in EFFECTS:
        prompt = EFFECTS[kind]
        return Decision("Deny", prompt, outcome.ruleId,
                        f"{outcome.reason} asks the user ({prompt})")
    if kind == "NotApplicable":
        return Decision("Deny", None, None, "no rule of the policy applies to the request")
    return Decision("Deny", None, outcome.ruleId,
                    f"the policy could not decide ({outcome.reason})")


@implementer(IPolicyDecisionPoint)
class PolicyDecisionPoint:
    """
    Decides requests against the policy in force.

    A new policy replaces the one in force only once it has parsed and
    checked, so a broken or hostile file that syncs in leaves the zone
    with the policy it had.

    @ivar policy: the L{PolicySet} in force, or C{None} (every request is
        then denied).
    """

    def __init__(self, policy: Optional[PolicySet] = None) -> None:
        if policy is not None and not isinstance(policy, PolicySet):
            raise TypeError(f"a PolicySet or None, not {policy!r}")
        self.policy = policy

    def load(self, data: bytes) -> PolicySet:
        """
        Parse C{data} and put it in force.

        @raise PolicyError: it does not parse or check; the previous policy
            stays in force.
        """
        policy = parsePolicy(data)
        self.policy = policy
        return policy

    def decide(self, request: Request) -> Decision:
        """
        The decision for C{request}: a caller from an unknown zone is
        denied before the policy is read; otherwise the policy decides.
        """
        if not isinstance(request, Request):
            raise TypeError(f"a Request, not {request!r}")
        if request.subject.relation == "unknown":
            return Decision("Deny", None, None,
                            f"zone {request.subject.zone or '(none)'} is not trusted by this zone")
        if self.policy is None:
            return Decision("Deny", None, None, "no policy is in force")
        return decisionOf(evaluate(self.policy, request.values()))
