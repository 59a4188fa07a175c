# -*- test-case-name: tests.pz.policy.test_edit -*-
"""
Changing a policy file without writing XML: list its rules, add one, remove
one.

The file stays the person's: a change splices the text of one rule (or of
the policy holding added rules) into the bytes as they are, so comments,
layout and every other policy are left exactly as written.  Added rules
live in one policy, C{urn:pz:policy:edits}, combined first-applicable and
placed first in the root set; when the root set does not combine
first-applicable (where an earlier policy that applies decides), the
file's set is wrapped, unchanged, in a first-applicable set behind that
policy, so an added rule decides before anything written by hand.
Every result is parsed again before it is returned.
"""

import re
import secrets
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

from pz.errors import ZoneError
from pz.ids import checkDeviceId
from pz.policy.model import NAMESPACE, Rule
from pz.policy.parse import POLICY_ALGORITHMS, parsePolicy
from pz.policy.scan import endOfStartTag, scan

__all__ = ["EDITS_POLICY", "EFFECTS", "showRules", "addRule", "removeRule"]

#: The policy added rules go in.
EDITS_POLICY = "urn:pz:policy:edits"
#: The set wrapping a file whose root set is not first-applicable.
EDITS_SET = "urn:pz:policyset:edits"
#: The effects as the command line spells them, and as the XML does.
EFFECTS = {
    "permit": "Permit",
    "deny": "Deny",
    "prompt-oneshot": "Prompt-oneshot",
    "prompt-session": "Prompt-session",
    "prompt-blanket": "Prompt-blanket",
}
_SPELLED = {xml: cli for cli, xml in EFFECTS.items()}
_EQUAL = "urn:oasis:names:tc:xacml:1.0:function:string-equal"
_FIRST_RULE = "urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:first-applicable"
_FIRST_POLICY = "urn:oasis:names:tc:xacml:1.0:policy-combining-algorithm:first-applicable"
_STRING = "http://www.w3.org/2001/XMLSchema#string"
_ZONE = re.compile(r"\A[^\s/@]+@[^\s/@]+\Z")
_STARTS = "urn:oasis:names:tc:xacml:3.0:function:string-starts-with"
_PATH = "urn:pz:resource:path"
_ACTION = "urn:pz:action"
_SHOWN = {
    "urn:pz:subject:device": "subject",
    "urn:pz:subject:zone": "subject",
    "urn:pz:subject:relation": "subject",
    "urn:pz:resource:service": "service",
    "urn:pz:resource:method": "method",
    _PATH: "item",
    _ACTION: "action",
}


def _bad(message: str) -> ZoneError:
    return ZoneError("BAD_REQUEST", message)


def _summary(policyId: str, rule: Rule) -> dict:
    row = {"id": rule.ruleId, "effect": _SPELLED[rule.effect], "subject": None,
           "service": None, "method": None, "item": None, "action": None, "policy": policyId,
           "description": rule.description, "simple": rule.condition is None}
    for allOfs in rule.target.anyOf:
        if len(allOfs) != 1 or len(allOfs[0]) != 1:
            row["simple"] = False
            continue
        [match] = allOfs[0]
        key = _SHOWN.get(match.attribute)
        # A folder of items is matched by its prefix, written with its "/".
        folder = key == "item" and match.function == "starts-with" and match.value.endswith("/")
        if key is None or (match.function != "equal" and not folder) or row[key] is not None:
            row["simple"] = False
            continue
        row[key] = match.value
    return row


def showRules(data: bytes) -> list:
    """
    The policy's rules in document order, each a dict: C{id}, C{effect}
    (as C{addRule} spells it), C{subject} (a device or zone id, C{own} or
    C{friend}), C{service},
    C{method} (C{None} when the rule does not name one), C{policy} (the id
    of the policy holding it), C{description}, and C{simple}: whether those
    fields say all the rule matches (false for a rule with a condition or
    other target matches: read its XML).

    @raise PolicyError: the file does not parse.
    """
    return [_summary(policyId, rule) for policyId, rule in parsePolicy(data).rules()]


def _checkName(value, what: str) -> Optional[str]:
    if value is None:
        return None
    if (not isinstance(value, str) or not value or value != value.strip()
            or not value.isprintable() or len(value) > 256):
        raise _bad(f"{value!r} is not a {what} name")
    return value


def _checkItem(item) -> Optional[str]:
    """
    An item path, or a folder of them ending in C{/}, as the items folder
    names them.
    """
    if item is None:
        return None
    from pz.sync.items import SHAREABLE, classify

    try:
        rule = classify(item[:-1] + "/x" if isinstance(item, str) and item.endswith("/") else item)
    except ZoneError as e:
        raise _bad(e.message) from None
    if rule.category not in SHAREABLE:
        raise _bad(f"{item!r} is not an item a zone may share (its {', '.join(SHAREABLE)})")
    return item


def _subjectAttribute(subject) -> Optional[str]:
    if subject is None:
        return None
    if subject in ("own", "friend", "guest"):
        return "urn:pz:subject:relation"
    if isinstance(subject, str) and "/" in subject:
        checkDeviceId(subject)
        return "urn:pz:subject:device"
    if isinstance(subject, str) and _ZONE.match(subject):
        return "urn:pz:subject:zone"
    raise _bad(f"{subject!r} is neither a device id (ZONE/NAME, such as "
               "alice@127.0.0.1/laptop), a zone id (user@host), own, friend nor guest")


def _match(p: str, attribute: str, value: str, indent: str) -> str:
    function = _STARTS if attribute == _PATH and value.endswith("/") else _EQUAL
    return (f"{indent}<{p}AnyOf><{p}AllOf><{p}Match MatchId=\"{function}\">"
            f"<{p}AttributeValue DataType=\"{_STRING}\">{escape(value)}</{p}AttributeValue>"
            f"<{p}AttributeDesignator AttributeId=\"{attribute}\" DataType=\"{_STRING}\" "
            f"MustBePresent=\"false\"/></{p}Match></{p}AllOf></{p}AnyOf>\n")


def _ruleText(p: str, ruleId: str, effect: str, matches, indent: str) -> str:
    head = f"{indent}<{p}Rule RuleId={quoteattr(ruleId)} Effect=\"{effect}\">\n"
    if not matches:
        return head + f"{indent}  <{p}Target/>\n{indent}</{p}Rule>\n"
    body = "".join(_match(p, a, v, indent + "    ") for a, v in matches)
    return head + f"{indent}  <{p}Target>\n{body}{indent}  </{p}Target>\n{indent}</{p}Rule>\n"


def _policyText(p: str, rule: str, indent: str) -> str:
    return (f"{indent}<{p}Policy PolicyId=\"{EDITS_POLICY}\" Version=\"1.0\" "
            f"RuleCombiningAlgId=\"{_FIRST_RULE}\">\n"
            f"{indent}  <{p}Description>Rules added with pzctl policy add; the first that "
            f"applies decides, before the policies below.</{p}Description>\n"
            f"{indent}  <{p}Target/>\n{rule}{indent}</{p}Policy>\n")


def _prefix(data: bytes, node) -> str:
    """
    The namespace prefix the element C{node} is written with (C{"x:"} or
    C{""}), so inserted elements are in the same namespace.
    """
    tag = re.match(rb"<([^\s/>]+)", data[node.start:]).group(1).decode("utf-8")
    return tag[: -len(node.name)]


def _lineStart(data: bytes, offset: int) -> int:
    start = data.rfind(b"\n", 0, offset) + 1
    return start if not data[start:offset].strip() else offset


def _indentOf(data: bytes, node, fallback: str) -> str:
    start = data.rfind(b"\n", 0, node.start) + 1
    text = data[start:node.start]
    return text.decode("utf-8") if not text.strip() else fallback


def _insert(data: bytes, node, text: str, p: str, before=None) -> bytes:
    """
    Put C{text} (whole lines) before the child C{before}, or at the end of
    C{node}'s content.
    """
    encoded = text.encode("utf-8")
    if before is not None:
        at = _lineStart(data, before.start)
        if at != before.start:
            return data[:at] + encoded + data[at:]
        return data[:at] + b"\n" + encoded + data[at:]
    if data[node.end - 2:node.end] == b"/>":
        close = f">\n{text}</{p}{node.name}>".encode("utf-8")
        return data[:node.end - 2] + close + data[node.end:]
    closing = data.rindex(b"</", node.start, node.end)
    at = _lineStart(data, closing)
    if at != closing:
        return data[:at] + encoded + data[at:]
    return data[:closing] + b"\n" + encoded + data[closing:]


def _insertAfterHead(data: bytes, root, text: str, p: str) -> bytes:
    """
    Put C{text} (whole lines) just after the root set's description and
    target, so comments before its first policy stay with that policy.
    """
    head = _children(root, "Description") + _children(root, "Target")
    if not head and data[root.end - 2:root.end] == b"/>":
        return _insert(data, root, text, p)
    after = max(c.end for c in head) if head else endOfStartTag(data, root.start)
    newline = data.find(b"\n", after)
    if newline != -1 and not data[after:newline].strip():
        return data[:newline + 1] + text.encode("utf-8") + data[newline + 1:]
    return data[:after] + b"\n" + text.encode("utf-8") + data[after:]


def _wrap(data: bytes, root, rule: str) -> bytes:
    inner = data[root.start:root.end]
    outer = (f"<PolicySet xmlns=\"{NAMESPACE}\" PolicySetId=\"{EDITS_SET}\" Version=\"1.0\" "
             f"PolicyCombiningAlgId=\"{_FIRST_POLICY}\">\n"
             f"  <Description>The rules added with pzctl policy add, then the zone's policy set "
             f"as it was written.</Description>\n  <Target/>\n"
             + _policyText("", rule, "  ")).encode("utf-8")
    return data[:root.start] + outer + inner + b"\n</PolicySet>" + data[root.end:]


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)


def _children(node, name: str):
    return [c for c in node.children if c.namespace == NAMESPACE and c.name == name]


def addRule(data: bytes, effect: str, subject: Optional[str] = None,
            service: Optional[str] = None, method: Optional[str] = None,
            first: bool = False, ruleId: Optional[str] = None,
            item: Optional[str] = None) -> tuple:
    """
    Add a rule to the policy C{urn:pz:policy:edits}: after the rules added
    before, or before them with C{first}.

    @param effect: a key of L{EFFECTS}.
    @param subject: a device id (C{ZONE/NAME}), a zone id (C{user@host}),
        C{own} (every device of our zone), C{friend} (every device of
        every friend zone) or C{guest} (every device on a one-time link of
        a certificate exchange) the rule is for, or C{None} for every
        caller.
    @param service: the service name, or C{None} for every service.
    @param method: the method name, or C{None} for every method.
    @param item: an item path (C{userdetails.json}), or a folder of items
        ending in C{/} (C{userdata/photos/}): the rule is then about
        sharing that item with another zone (action C{sync}).
    @param ruleId: the new rule's id; by default a fresh random one.
    @return: C{(newData, ruleId)}.
    @raise ZoneError: C{BAD_REQUEST} for a bad argument; C{POLICY_INVALID}
        when C{data} does not parse.
    """
    if not isinstance(effect, str) or effect not in EFFECTS:
        raise _bad(f"{effect!r} is not an effect; use one of " + ", ".join(EFFECTS))
    attribute = _subjectAttribute(subject)
    service = _checkName(service, "service")
    method = _checkName(method, "method")
    item = _checkItem(item)
    policy = parsePolicy(data)
    taken = {rule.ruleId for _, rule in policy.rules()}
    if ruleId is None:
        ruleId = "urn:pz:rule:" + secrets.token_hex(4)
        while ruleId in taken:
            ruleId = "urn:pz:rule:" + secrets.token_hex(4)
    elif _checkName(ruleId, "rule") in taken or any(c in ruleId for c in " <>&\"'"):
        raise _bad(f"rule id {ruleId!r} is taken or not a plain name")
    matches = [(a, v) for a, v in ((attribute, subject), ("urn:pz:resource:service", service),
                                   ("urn:pz:resource:method", method), (_PATH, item),
                                   (_ACTION, "sync" if item else None)) if v is not None]
    root = scan(data)
    p = _prefix(data, root)
    edits = [node for node in _walk(root) if node.namespace == NAMESPACE
             and node.name == "Policy" and node.attrs.get("PolicyId", "").strip() == EDITS_POLICY]
    if edits:
        [node] = edits
        rules = _children(node, "Rule")
        indent = _indentOf(data, rules[0], "    ") if rules else \
            _indentOf(data, node, "  ") + "  "
        text = _ruleText(p, ruleId, EFFECTS[effect], matches, indent)
        newData = _insert(data, node, text, p, before=rules[0] if first and rules else None)
    elif POLICY_ALGORITHMS[root.attrs["PolicyCombiningAlgId"]] == "first-applicable":
        children = _children(root, "Policy") + _children(root, "PolicySet")
        firstChild = min(children, key=lambda c: c.start) if children else None
        indent = _indentOf(data, firstChild, "  ") if firstChild else "  "
        rule = _ruleText(p, ruleId, EFFECTS[effect], matches, indent + "  ")
        newData = _insertAfterHead(data, root, _policyText(p, rule, indent), p)
    else:
        newData = _wrap(data, root, _ruleText("", ruleId, EFFECTS[effect], matches, "    "))
    parsePolicy(newData)
    return newData, ruleId


def removeRule(data: bytes, ruleId: str) -> bytes:
    """
    Remove the rule C{ruleId}, wherever it is, with the lines it stood on.

    @raise ZoneError: C{BAD_REQUEST} when the policy has no such rule;
        C{POLICY_INVALID} when C{data} does not parse.
    """
    parsePolicy(data)
    found = [node for node in _walk(scan(data)) if node.namespace == NAMESPACE
             and node.name == "Rule" and node.attrs.get("RuleId", "").strip() == ruleId]
    if not found:
        raise _bad(f"the policy has no rule {ruleId!r} (pzctl policy show lists them)")
    [node] = found
    start = _lineStart(data, node.start)
    end = node.end
    newline = data.find(b"\n", end)
    if start != node.start and newline != -1 and not data[end:newline].strip():
        end = newline + 1
    newData = data[:start] + data[end:]
    parsePolicy(newData)
    return newData
