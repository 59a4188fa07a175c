# -*- test-case-name: tests.pz.policy.test_parse -*-
"""
From a policy file's bytes to a L{PolicySet}, refusing what is not the
XACML subset L{docs/policies.md} describes.

Anything unknown (an element, an attribute, a function, an attribute id,
a combining algorithm) is refused with the line it is on rather than
ignored: a rule whose obligation or condition were silently dropped would
decide differently from what its author wrote.
"""

from pz.policy.model import (
    ATTRIBUTES, EFFECTS, NAMESPACE, Apply, Match, Policy, PolicyError, PolicySet, Rule, Target,
)
from pz.policy.scan import scan

__all__ = ["parsePolicy", "RULE_ALGORITHMS", "POLICY_ALGORITHMS", "FUNCTIONS"]

_XACML1 = "urn:oasis:names:tc:xacml:1.0:"
_XACML3 = "urn:oasis:names:tc:xacml:3.0:"
FIRST_MATCHING_TARGET = "urn:webinos:policy-combining-algorithm:first-matching-target"

#: C{RuleCombiningAlgId} values and the algorithm each names.
RULE_ALGORITHMS = {
    _XACML3 + "rule-combining-algorithm:deny-overrides": "deny-overrides",
    _XACML3 + "rule-combining-algorithm:permit-overrides": "permit-overrides",
    _XACML1 + "rule-combining-algorithm:first-applicable": "first-applicable",
    FIRST_MATCHING_TARGET: "first-matching-target",
}
#: C{PolicyCombiningAlgId} values and the algorithm each names.
POLICY_ALGORITHMS = {
    _XACML3 + "policy-combining-algorithm:deny-overrides": "deny-overrides",
    _XACML3 + "policy-combining-algorithm:permit-overrides": "permit-overrides",
    _XACML1 + "policy-combining-algorithm:first-applicable": "first-applicable",
    FIRST_MATCHING_TARGET: "first-matching-target",
}
#: C{MatchId} / C{FunctionId} values and their short names.
FUNCTIONS = {
    _XACML1 + "function:string-equal": "equal",
    _XACML3 + "function:string-starts-with": "starts-with",
    _XACML1 + "function:string-is-in": "is-in",
    _XACML1 + "function:and": "and",
    _XACML1 + "function:or": "or",
    _XACML1 + "function:not": "not",
    _XACML1 + "function:string-one-and-only": "one-and-only",
}
_MATCH_FUNCTIONS = ("equal", "starts-with")
STRING = "http://www.w3.org/2001/XMLSchema#string"


def _refuse(node, problem: str):
    raise PolicyError(node.line, problem)


def _check(node, name: str, allowed=(), required=()):
    if node.namespace != NAMESPACE:
        where = f"namespace {node.namespace}" if node.namespace else "no namespace"
        _refuse(node, f"<{node.name}> is in {where}; a policy's elements are in the XACML 3.0 "
                      f"namespace {NAMESPACE}")
    if node.name != name:
        _refuse(node, f"<{node.name}> is not allowed here; expected <{name}>")
    for key in node.attrs:
        if key not in allowed:
            _refuse(node, f"attribute {key} is not supported on <{name}>")
    for key in required:
        if not node.attrs.get(key, "").strip():
            _refuse(node, f"<{name}> needs a {key} attribute")


def _text(node) -> str:
    for child in node.children:
        _refuse(child, f"<{child.name}> is not allowed inside <{node.name}>")
    return "".join(node.text).strip()


def _noText(node):
    if "".join(node.text).strip():
        _refuse(node, f"text is not allowed directly inside <{node.name}>")


def _parts(node, single=(), many=()):
    """
    Sort C{node}'s children by name: at most one of each of C{single}, a
    list for each of C{many}; anything else is refused.
    """
    _noText(node)
    found = {name: None for name in single}
    found.update({name: [] for name in many})
    for child in node.children:
        if child.namespace == NAMESPACE and child.name in single:
            if found[child.name] is not None:
                _refuse(child, f"<{node.name}> has more than one <{child.name}>")
            found[child.name] = child
        elif child.namespace == NAMESPACE and child.name in many:
            found[child.name].append(child)
        else:
            names = ", ".join(f"<{n}>" for n in (*single, *many))
            _check(child, child.name)
            _refuse(child, f"<{child.name}> is not supported inside <{node.name}> "
                           f"(allowed: {names})")
    return found


def _value(node) -> str:
    _check(node, "AttributeValue", allowed=("DataType",))
    if node.attrs.get("DataType", STRING) != STRING:
        _refuse(node, f"DataType {node.attrs['DataType']} is not supported; values are "
                      f"strings ({STRING})")
    return _text(node)


def _designator(node):
    _check(node, "AttributeDesignator",
           allowed=("AttributeId", "Category", "DataType", "MustBePresent"),
           required=("AttributeId",))
    _text(node)
    attribute = node.attrs["AttributeId"]
    if attribute not in ATTRIBUTES:
        _refuse(node, f"AttributeId {attribute} is not known; use one of "
                      + ", ".join(ATTRIBUTES))
    category = node.attrs.get("Category")
    if category is not None and category != ATTRIBUTES[attribute]:
        _refuse(node, f"{attribute} is in Category {ATTRIBUTES[attribute]}, not {category}")
    if node.attrs.get("DataType", STRING) != STRING:
        _refuse(node, f"DataType {node.attrs['DataType']} is not supported; attributes are "
                      f"strings ({STRING})")
    present = node.attrs.get("MustBePresent", "false")
    if present not in ("true", "false"):
        _refuse(node, f"MustBePresent is true or false, not {present!r}")
    return attribute, present == "true"


def _function(node, attribute: str, allowed) -> str:
    uri = node.attrs.get(attribute, "")
    name = FUNCTIONS.get(uri)
    if name not in allowed:
        known = [uri for uri, short in FUNCTIONS.items() if short in allowed]
        _refuse(node, f"{attribute} {uri!r} is not supported here; use one of "
                      + ", ".join(known))
    return name


def _match(node) -> Match:
    _check(node, "Match", allowed=("MatchId",), required=("MatchId",))
    function = _function(node, "MatchId", _MATCH_FUNCTIONS)
    _noText(node)
    if len(node.children) != 2:
        _refuse(node, "a <Match> holds an <AttributeValue> then an <AttributeDesignator>")
    value = _value(node.children[0])
    attribute, mustBePresent = _designator(node.children[1])
    return Match(function, value, attribute, mustBePresent)


def _target(node) -> Target:
    if node is None:
        return Target()
    _check(node, "Target")
    anyOf = []
    for anyNode in _parts(node, many=("AnyOf",))["AnyOf"]:
        _check(anyNode, "AnyOf")
        allOf = []
        for allNode in _parts(anyNode, many=("AllOf",))["AllOf"]:
            _check(allNode, "AllOf")
            matches = _parts(allNode, many=("Match",))["Match"]
            if not matches:
                _refuse(allNode, "an <AllOf> holds at least one <Match>")
            allOf.append(tuple(_match(m) for m in matches))
        if not allOf:
            _refuse(anyNode, "an <AnyOf> holds at least one <AllOf>")
        anyOf.append(tuple(allOf))
    return Target(tuple(anyOf))


def _apply(node) -> Apply:
    _check(node, "Apply", allowed=("FunctionId",), required=("FunctionId",))
    function = _function(node, "FunctionId", ("and", "or", "not", "equal", "starts-with",
                                              "is-in"))
    _noText(node)
    children = node.children
    if function in ("and", "or", "not"):
        if function == "not" and len(children) != 1:
            _refuse(node, "not takes exactly one <Apply>")
        return Apply(function, tuple(_apply(child) for child in children))
    if len(children) != 2:
        _refuse(node, f"{function} takes an <AttributeValue> then "
                      + ("an <AttributeDesignator>" if function == "is-in" else
                         "an <Apply> of string-one-and-only over an <AttributeDesignator>"))
    value = _value(children[0])
    second = children[1]
    if function == "is-in":
        attribute, _ = _designator(second)
    else:
        _check(second, "Apply", allowed=("FunctionId",), required=("FunctionId",))
        _function(second, "FunctionId", ("one-and-only",))
        _noText(second)
        if len(second.children) != 1:
            _refuse(second, "string-one-and-only takes one <AttributeDesignator>")
        attribute, _ = _designator(second.children[0])
    return Apply(function, (value, attribute))


def _condition(node):
    if node is None:
        return None
    _check(node, "Condition")
    _noText(node)
    if len(node.children) != 1:
        _refuse(node, "a <Condition> holds exactly one <Apply>")
    return _apply(node.children[0])


class _Ids:
    def __init__(self):
        self.seen = {}

    def add(self, node, key: str) -> str:
        value = node.attrs[key].strip()
        if value in self.seen:
            _refuse(node, f"{key} {value} is used twice (also on line {self.seen[value]})")
        self.seen[value] = node.line
        return value


def _description(node) -> str:
    if node is None:
        return ""
    _check(node, "Description")
    return _text(node)


def _rule(node, ids) -> Rule:
    _check(node, "Rule", allowed=("RuleId", "Effect"), required=("RuleId", "Effect"))
    ruleId = ids.add(node, "RuleId")
    effect = node.attrs["Effect"]
    if effect not in EFFECTS:
        _refuse(node, f"Effect {effect!r} is not one of " + ", ".join(EFFECTS))
    parts = _parts(node, single=("Description", "Target", "Condition"))
    return Rule(ruleId, effect, _target(parts["Target"]), _condition(parts["Condition"]),
                _description(parts["Description"]), node.line)


def _algorithm(node, key: str, table: dict) -> str:
    value = node.attrs[key]
    if value not in table:
        _refuse(node, f"{key} {value!r} is not supported; use one of " + ", ".join(table))
    return table[value]


def _policy(node, ids) -> Policy:
    _check(node, "Policy", allowed=("PolicyId", "Version", "RuleCombiningAlgId"),
           required=("PolicyId", "RuleCombiningAlgId"))
    policyId = ids.add(node, "PolicyId")
    algorithm = _algorithm(node, "RuleCombiningAlgId", RULE_ALGORITHMS)
    parts = _parts(node, single=("Description", "Target"), many=("Rule",))
    return Policy(policyId, algorithm, _target(parts["Target"]),
                  tuple(_rule(r, ids) for r in parts["Rule"]),
                  _description(parts["Description"]), node.line)


def _policySet(node, ids) -> PolicySet:
    _check(node, "PolicySet", allowed=("PolicySetId", "Version", "PolicyCombiningAlgId"),
           required=("PolicySetId", "PolicyCombiningAlgId"))
    policySetId = ids.add(node, "PolicySetId")
    algorithm = _algorithm(node, "PolicyCombiningAlgId", POLICY_ALGORITHMS)
    _noText(node)
    description = target = None
    children = []
    for child in node.children:
        if child.namespace == NAMESPACE and child.name == "Policy":
            children.append(_policy(child, ids))
        elif child.namespace == NAMESPACE and child.name == "PolicySet":
            children.append(_policySet(child, ids))
        elif child.namespace == NAMESPACE and child.name in ("Description", "Target"):
            if (description if child.name == "Description" else target) is not None:
                _refuse(child, f"<PolicySet> has more than one <{child.name}>")
            if child.name == "Description":
                description = child
            else:
                target = child
        else:
            _check(child, child.name)
            _refuse(child, f"<{child.name}> is not supported inside <PolicySet> (allowed: "
                           "<Description>, <Target>, <Policy>, <PolicySet>)")
    return PolicySet(policySetId, algorithm, _target(target), tuple(children),
                     _description(description), node.line)


def parsePolicy(data: bytes) -> PolicySet:
    """
    Parse and check a policy file.

    @param data: the file's bytes (at most L{pz.policy.MAX_POLICY_BYTES}).
    @return: its root L{PolicySet}.
    @raise PolicyError: naming the line and the problem when the file is
        not well-formed, is hostile (DTD, entities, external references,
        too large, too deep, too many rules) or is not the supported subset.
    """
    root = scan(data)
    if root.namespace != NAMESPACE or root.name != "PolicySet":
        where = f"{{{root.namespace}}}" if root.namespace else "no namespace "
        raise PolicyError(root.line, f"the root element is {where}{root.name}; a policy's root "
                                     f"is <PolicySet> in the XACML 3.0 namespace {NAMESPACE}")
    return _policySet(root, _Ids())
