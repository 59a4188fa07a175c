# -*- test-case-name: tests.pz.test_policystandin -*-
"""
Editing a policy without writing XML: list, add and remove rules.
"""

import uuid
from xml.etree import ElementTree as ET

from defusedxml.ElementTree import fromstring

from pz.errors import ZoneError
from pz.policy.pdp import XACML, _local, parsePolicy

__all__ = ["showRules", "addRule", "removeRule", "EDITS"]

EDITS = "urn:pz:policy:edits"
_EFFECTS = {"permit": "Permit", "deny": "Deny", "prompt-oneshot": "Prompt-oneshot",
            "prompt-session": "Prompt-session", "prompt-blanket": "Prompt-blanket"}
_EQUAL = "urn:oasis:names:tc:xacml:1.0:function:string-equal"
_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _q(name: str) -> str:
    return f"{{{XACML}}}{name}"


def _tree(data: bytes):
    parsePolicy(data)
    return fromstring(data, forbid_dtd=True)


def _dump(root) -> bytes:
    ET.register_namespace("", XACML)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def _parents(root):
    return {child: parent for parent in root.iter() for child in parent}


def showRules(data: bytes) -> list:
    root = _tree(data)
    parents = _parents(root)
    rules = []
    for rule in root.iter(_q("Rule")):
        found = {}
        for match in rule.iter(_q("Match")):
            attr = next(c.get("AttributeId") for c in match if _local(c.tag) == "AttributeDesignator")
            value = next(c.text for c in match if _local(c.tag) == "AttributeValue")
            found[attr] = value
        parent = parents[rule]
        rules.append({
            "id": rule.get("RuleId"), "effect": rule.get("Effect"),
            "subject": found.get("urn:pz:subject:device") or found.get("urn:pz:subject:zone"),
            "service": found.get("urn:pz:resource:service"),
            "method": found.get("urn:pz:resource:method"),
            "policy": parent.get("PolicyId") or parent.get("PolicySetId"),
        })
    return rules


def addRule(data: bytes, effect: str, subject=None, service=None, method=None, first=False):
    if effect not in _EFFECTS:
        raise ZoneError("BAD_REQUEST", f"unknown effect {effect!r}")
    root = _tree(data)
    if _local(root.tag) != "PolicySet":
        raise ZoneError("BAD_REQUEST", "the policy's root is not a PolicySet")
    edits = next((p for p in root if p.get("PolicyId") == EDITS), None)
    if edits is None:
        edits = ET.Element(_q("Policy"), {
            "PolicyId": EDITS, "Version": "1.0",
            "RuleCombiningAlgId": "urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:first-applicable"})
        ET.SubElement(edits, _q("Target"))
        at = next((i + 1 for i, c in enumerate(root) if _local(c.tag) == "Target"), 0)
        root.insert(at, edits)
    ruleId = f"urn:pz:rule:{uuid.uuid4().hex[:12]}"
    rule = ET.Element(_q("Rule"), {"RuleId": ruleId, "Effect": _EFFECTS[effect]})
    target = ET.SubElement(rule, _q("Target"))
    attrs = []
    if subject:
        attrs.append(("urn:pz:subject:device" if "/" in subject else "urn:pz:subject:zone", subject))
    if service:
        attrs.append(("urn:pz:resource:service", service))
    if method:
        attrs.append(("urn:pz:resource:method", method))
    for attr, value in attrs:
        allOf = ET.SubElement(ET.SubElement(target, _q("AnyOf")), _q("AllOf"))
        match = ET.SubElement(allOf, _q("Match"), {"MatchId": _EQUAL})
        ET.SubElement(match, _q("AttributeValue"), {"DataType": _STRING}).text = value
        ET.SubElement(match, _q("AttributeDesignator"), {
            "AttributeId": attr, "Category": "urn:pz", "DataType": _STRING,
            "MustBePresent": "false"})
    rules = [i for i, c in enumerate(edits) if _local(c.tag) == "Rule"]
    if first and rules:
        edits.insert(rules[0], rule)
    else:
        edits.append(rule)
    return _dump(root), ruleId


def removeRule(data: bytes, ruleId: str) -> bytes:
    root = _tree(data)
    parents = _parents(root)
    for rule in root.iter(_q("Rule")):
        if rule.get("RuleId") == ruleId:
            parents[rule].remove(rule)
            return _dump(root)
    raise ZoneError("BAD_REQUEST", f"the policy has no rule {ruleId!r}")
