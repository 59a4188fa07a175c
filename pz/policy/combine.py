# -*- test-case-name: tests.pz.policy.test_table -*-
"""
The combining algorithms, shared by rules in a policy and by policies in
a set.

Each takes the children in document order and two callables: one that
evaluates a child to an L{Outcome}, one that says whether a child's target
matches (for webinos' first-matching-target).  The prompt effects rank as
in webinos' policy manager: under deny-overrides the more restrictive
prompt wins (one-time before session before blanket) and any prompt beats
Permit; under permit-overrides the more permissive one wins and any
prompt beats Deny.
"""

from typing import Callable, NamedTuple, Optional, Sequence

__all__ = ["Outcome", "NOT_APPLICABLE", "combine"]


class Outcome(NamedTuple):
    """
    What a rule, policy or set comes to: C{kind} is an effect of
    L{pz.policy.model.EFFECTS}, C{NotApplicable} or C{Indeterminate};
    C{ruleId} the rule that made it; C{reason} why, for the log.
    """

    kind: str
    ruleId: Optional[str]
    reason: str


NOT_APPLICABLE = Outcome("NotApplicable", None, "no rule applies")

#: The order in which outcomes win, first first.
_DENY_OVERRIDES = ("Deny", "Indeterminate", "Prompt-oneshot", "Prompt-session",
                   "Prompt-blanket", "Permit")
_PERMIT_OVERRIDES = ("Permit", "Indeterminate", "Prompt-blanket", "Prompt-session",
                     "Prompt-oneshot", "Deny")


def _overrides(order, children, evaluate):
    best, rank = NOT_APPLICABLE, len(order)
    first = order[0]
    for child in children:
        outcome = evaluate(child)
        if outcome.kind == first:
            return outcome
        if outcome.kind != "NotApplicable":
            position = order.index(outcome.kind)
            if position < rank:
                best, rank = outcome, position
    return best


def _firstApplicable(children, evaluate, matches):
    for child in children:
        outcome = evaluate(child)
        if outcome.kind != "NotApplicable":
            return outcome
    return NOT_APPLICABLE


def _firstMatchingTarget(children, evaluate, matches):
    for child in children:
        matched = matches(child)
        if matched is None:
            return Outcome("Indeterminate", None, "a target could not be evaluated")
        if matched:
            return evaluate(child)
    return NOT_APPLICABLE


def combine(algorithm: str, children: Sequence, evaluate: Callable,
            matches: Callable) -> Outcome:
    """
    Combine C{children} with C{algorithm} (C{deny-overrides},
    C{permit-overrides}, C{first-applicable}, C{first-matching-target}).

    @param matches: child -> C{True}, C{False} or C{None} (Indeterminate)
        for whether the child's target matches.
    """
    if algorithm == "deny-overrides":
        return _overrides(_DENY_OVERRIDES, children, evaluate)
    if algorithm == "permit-overrides":
        return _overrides(_PERMIT_OVERRIDES, children, evaluate)
    if algorithm == "first-applicable":
        return _firstApplicable(children, evaluate, matches)
    if algorithm == "first-matching-target":
        return _firstMatchingTarget(children, evaluate, matches)
    raise ValueError(f"unknown combining algorithm {algorithm!r}")
