# -*- test-case-name: tests.pz.test_policystandin -*-
"""
A small XACML subset: PolicySet, Policy and Rule; targets of string-equal
matches on the zone's attribute ids; the XACML combining algorithms and
webinos' first-matching-target; Permit, Deny and webinos' prompt effects.
"""

from typing import Optional

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from xml.etree.ElementTree import ParseError

from pz.errors import ZoneError

__all__ = [
    "MAX_DEPTH", "MAX_POLICY_BYTES", "MAX_RULES", "Decision", "PolicyDecisionPoint",
    "PolicyError", "PolicySet", "Request", "Resource", "Subject", "parsePolicy", "XACML",
]

MAX_POLICY_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_RULES = 10000

XACML = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
_EFFECTS = {"Permit", "Deny", "Prompt-oneshot", "Prompt-session", "Prompt-blanket"}
_ATTRIBUTES = {
    "urn:pz:subject:zone": lambda r: r.subject.zone,
    "urn:pz:subject:device": lambda r: r.subject.device,
    "urn:pz:subject:user": lambda r: r.subject.user,
    "urn:pz:subject:relation": lambda r: r.subject.relation,
    "urn:pz:resource:service": lambda r: r.resource.service,
    "urn:pz:resource:method": lambda r: r.resource.method,
    "urn:pz:resource:path": lambda r: r.resource.path,
    "urn:pz:action": lambda r: r.action,
}
_EQUAL = "urn:oasis:names:tc:xacml:1.0:function:string-equal"


class PolicyError(ZoneError):
    """
    A policy that does not parse or validate.
    """

    def __init__(self, problem: str, line: Optional[int] = None) -> None:
        self.line = line
        where = f"policy line {line}: " if line is not None else "policy: "
        super().__init__("POLICY_INVALID", where + problem)


@attrs.frozen
class Subject:
    zone: str
    device: Optional[str] = None
    user: Optional[str] = None
    relation: str = "unknown"


@attrs.frozen
class Resource:
    service: Optional[str] = None
    method: Optional[str] = None
    path: Optional[str] = None


@attrs.frozen
class Request:
    subject: Subject
    resource: Resource
    action: str


@attrs.frozen
class Decision:
    effect: str
    prompt: Optional[str] = None
    ruleId: Optional[str] = None
    reason: str = ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


@attrs.frozen
class _Rule:
    ruleId: str
    effect: str
    target: tuple


@attrs.frozen
class PolicySet:
    """
    A PolicySet or Policy: its target, combining algorithm and children.
    """

    ident: str
    algorithm: str
    target: tuple
    children: tuple


def _target(element) -> tuple:
    """
    A target as ((( (attributeId, value), ...) AllOf, ...) AnyOf, ...).
    """
    target = next((c for c in element if _local(c.tag) == "Target"), None)
    if target is None:
        return ()
    anyOfs = []
    for anyOf in target:
        allOfs = []
        for allOf in anyOf:
            matches = []
            for match in allOf:
                if match.get("MatchId") != _EQUAL:
                    raise PolicyError(f"unsupported MatchId {match.get('MatchId')!r}")
                value = next((c.text or "" for c in match if _local(c.tag) == "AttributeValue"), None)
                attr = next((c.get("AttributeId") for c in match
                             if _local(c.tag) == "AttributeDesignator"), None)
                if value is None or attr not in _ATTRIBUTES:
                    raise PolicyError(f"a Match needs an AttributeValue and a known AttributeId, "
                                      f"not {attr!r}")
                matches.append((attr, value))
            allOfs.append(tuple(matches))
        anyOfs.append(tuple(allOfs))
    return tuple(anyOfs)


def _build(element, depth: int, count: list):
    if depth > MAX_DEPTH:
        raise PolicyError(f"nested deeper than {MAX_DEPTH}")
    if element.tag.partition("}")[0][1:] != XACML:
        raise PolicyError(f"{_local(element.tag)} is not in the XACML 3.0 namespace")
    kind = _local(element.tag)
    if kind == "Rule":
        count[0] += 1
        if count[0] > MAX_RULES:
            raise PolicyError(f"more than {MAX_RULES} rules")
        effect = element.get("Effect")
        if effect not in _EFFECTS:
            raise PolicyError(f"unknown Effect {effect!r}")
        return _Rule(element.get("RuleId") or "", effect, _target(element))
    if kind not in ("PolicySet", "Policy"):
        raise PolicyError(f"unexpected element {kind}")
    algorithm = (element.get("PolicyCombiningAlgId") or element.get("RuleCombiningAlgId")
                 or "").rpartition(":")[2]
    if algorithm not in ("deny-overrides", "permit-overrides", "first-applicable",
                         "first-matching-target"):
        raise PolicyError(f"unknown combining algorithm {algorithm!r}")
    children = tuple(_build(c, depth + 1, count) for c in element
                     if _local(c.tag) in ("PolicySet", "Policy", "Rule"))
    return PolicySet(element.get("PolicySetId") or element.get("PolicyId") or "",
                     algorithm, _target(element), children)


def parsePolicy(data: bytes) -> PolicySet:
    """
    Parse a policy; raise L{PolicyError} for one that is not acceptable.
    """
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"larger than {MAX_POLICY_BYTES} bytes")
    try:
        root = fromstring(data, forbid_dtd=True)
    except ParseError as e:
        raise PolicyError(str(e), e.position[0]) from None
    except DefusedXmlException as e:
        raise PolicyError(f"forbidden XML: {e}") from None
    if _local(root.tag) not in ("PolicySet", "Policy"):
        raise PolicyError("the root is not a PolicySet or Policy")
    return _build(root, 1, [0])


def _matches(target: tuple, request: Request) -> bool:
    return all(any(all(_ATTRIBUTES[a](request) == v for a, v in allOf) for allOf in anyOf)
               for anyOf in target)


#: The order deny-overrides ranks effects in (the strongest first).
_DENY_FIRST = ("Deny", "Prompt-oneshot", "Prompt-session", "Prompt-blanket", "Permit")


def _evaluate(node, request: Request):
    """
    (effect, ruleId) or None (not applicable).
    """
    if not _matches(node.target, request):
        return None
    if isinstance(node, _Rule):
        return node.effect, node.ruleId
    results = []
    for child in node.children:
        result = _evaluate(child, request)
        if result is not None:
            if node.algorithm in ("first-applicable", "first-matching-target"):
                return result
            results.append(result)
    if not results:
        return None
    order = _DENY_FIRST if node.algorithm == "deny-overrides" else tuple(reversed(_DENY_FIRST))
    return min(results, key=lambda r: order.index(r[0]))


class PolicyDecisionPoint:
    """
    Decides requests against one policy.
    """

    def __init__(self, policy: Optional[PolicySet] = None) -> None:
        self.policy = policy

    def load(self, data: bytes) -> None:
        self.policy = parsePolicy(data)

    def decide(self, request: Request) -> Decision:
        if request.subject.relation == "unknown":
            return Decision("Deny", None, None, "the subject is unknown")
        result = _evaluate(self.policy, request) if self.policy is not None else None
        if result is None:
            return Decision("Deny", None, None, "no rule applies")
        effect, ruleId = result
        if effect.startswith("Prompt-"):
            return Decision("Deny", effect.partition("-")[2], ruleId, f"rule {ruleId} asks the user")
        return Decision(effect, None, ruleId, f"rule {ruleId}")
