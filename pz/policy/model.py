# -*- test-case-name: tests.pz.policy.test_decide -*-
"""
What the policy decision point works on: the request it is asked about,
the decision it gives, and the parsed policy.

Requests and decisions cross into the enforcement points of both ends, so
they are frozen value objects checked on construction: a caller that mixes
up a device id and a relation fails at once, not with a silent Deny.  The
parsed policy is a tree of frozen objects too, built once by
L{pz.policy.parse.parsePolicy} and only read afterwards.
"""

from typing import Optional

import attrs

from pz.errors import ZoneError

__all__ = [
    "PolicyError", "MAX_POLICY_BYTES", "MAX_DEPTH", "MAX_RULES", "NAMESPACE",
    "ATTRIBUTES", "RELATIONS", "EFFECTS", "PROMPTS",
    "Subject", "Resource", "Request", "Decision",
    "Match", "Target", "Apply", "Rule", "Policy", "PolicySet",
]

#: The largest policy file accepted, in bytes.
MAX_POLICY_BYTES = 1024 * 1024
#: The deepest element nesting accepted.
MAX_DEPTH = 32
#: The most rules one policy file may hold.
MAX_RULES = 10000

#: The XACML 3.0 core schema namespace, as the default policy uses it.
NAMESPACE = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"

#: The relations of a caller's zone to ours.
RELATIONS = ("own", "friend", "guest", "unknown")

#: The effects a rule may carry, as written in C{Effect=}, and the prompt
#: each of webinos' prompt effects asks for.
EFFECTS = {
    "Permit": None,
    "Deny": None,
    "Prompt-oneshot": "oneshot",
    "Prompt-session": "session",
    "Prompt-blanket": "blanket",
}
PROMPTS = ("oneshot", "session", "blanket")


class PolicyError(ZoneError):
    """
    A policy that is refused: it does not parse, is hostile, or uses what
    this decision point does not know.  The previous policy stays in force.

    @ivar line: the line of the policy file the problem is on, or C{None}
        when it is the file as a whole (its size).
    """

    def __init__(self, line: Optional[int], problem: str) -> None:
        self.line = line
        where = f"policy line {line}" if line is not None else "policy"
        super().__init__("POLICY_INVALID", f"{where}: {problem}")


def _optionalText(instance, attribute, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a string or None, not {value!r}")


def _text(instance, attribute, value):
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a string, not {value!r}")


@attrs.frozen
class Subject:
    """
    Who asks: the caller's zone id (C{user@host}), its device id
    (C{ZONE/NAME}) when a device asks, the user when known, and how its
    zone relates to ours (C{own}, a C{friend} zone whose CA we trust, a
    C{guest}: a device of another zone on a one-time link of the
    peer-to-peer certificate exchange, or C{unknown}, which is always
    denied).
    """

    zone: str = attrs.field(validator=_text)
    device: Optional[str] = attrs.field(default=None, validator=_optionalText)
    user: Optional[str] = attrs.field(default=None, validator=_optionalText)
    relation: str = attrs.field(default="own", validator=attrs.validators.in_(RELATIONS))


@attrs.frozen
class Resource:
    """
    What is asked for: a service and method for a call, an item path for
    a sync; what does not apply is C{None}.
    """

    service: Optional[str] = attrs.field(default=None, validator=_optionalText)
    method: Optional[str] = attrs.field(default=None, validator=_optionalText)
    path: Optional[str] = attrs.field(default=None, validator=_optionalText)


@attrs.frozen
class Request:
    """
    One question to the decision point: may C{subject} do C{action}
    (C{call}, C{connect} or C{sync}) on C{resource}?
    """

    subject: Subject = attrs.field(validator=attrs.validators.instance_of(Subject))
    resource: Resource = attrs.field(validator=attrs.validators.instance_of(Resource))
    action: str = attrs.field(validator=_text)

    def values(self) -> dict:
        """
        The request's attributes by the ids policies name them with.
        """
        s, r = self.subject, self.resource
        return {
            "urn:pz:subject:zone": s.zone,
            "urn:pz:subject:device": s.device,
            "urn:pz:subject:user": s.user,
            "urn:pz:subject:relation": s.relation,
            "urn:pz:resource:service": r.service,
            "urn:pz:resource:method": r.method,
            "urn:pz:resource:path": r.path,
            "urn:pz:action": self.action,
        }


@attrs.frozen
class Decision:
    """
    The answer: C{effect} is C{Permit} or C{Deny}.  When a prompt rule
    decided, C{prompt} names its kind (C{oneshot}, C{session},
    C{blanket}) and C{effect} is C{Deny}, what stands until the user
    permits.  C{ruleId} is the rule that decided (C{None} when none did)
    and C{reason} says why, for the log line.
    """

    effect: str = attrs.field(validator=attrs.validators.in_(("Permit", "Deny")))
    prompt: Optional[str] = attrs.field(validator=attrs.validators.optional(
        attrs.validators.in_(PROMPTS)))
    ruleId: Optional[str] = attrs.field(validator=_optionalText)
    reason: str = attrs.field(validator=_text)


#: The attributes a policy may name, with the XACML category each belongs to.
ATTRIBUTES = {
    "urn:pz:subject:zone": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
    "urn:pz:subject:device": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
    "urn:pz:subject:user": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
    "urn:pz:subject:relation": "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject",
    "urn:pz:resource:service": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
    "urn:pz:resource:method": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
    "urn:pz:resource:path": "urn:oasis:names:tc:xacml:3.0:attribute-category:resource",
    "urn:pz:action": "urn:oasis:names:tc:xacml:3.0:attribute-category:action",
}


@attrs.frozen
class Match:
    """
    One C{Match}: C{function} (C{equal} or C{starts-with}) of C{value} and
    the request's C{attribute}.  A missing attribute does not match, or is
    Indeterminate when C{mustBePresent}.
    """

    function: str
    value: str
    attribute: str
    mustBePresent: bool = False


@attrs.frozen
class Target:
    """
    A C{Target}: a tuple of C{AnyOf}, each a tuple of C{AllOf}, each a
    tuple of L{Match}.  No C{AnyOf} matches every request.
    """

    anyOf: tuple = ()


@attrs.frozen
class Apply:
    """
    One C{Apply} of a C{Condition}: C{function} (C{and}, C{or}, C{not},
    C{equal}, C{starts-with}, C{is-in}) over C{args}, which are L{Apply}
    for the logical ones and C{(value, attribute)} for the others.
    """

    function: str
    args: tuple


@attrs.frozen
class Rule:
    """
    A C{Rule}: its id, effect (a key of L{EFFECTS}), target and optional
    condition, and the line it starts on.
    """

    ruleId: str
    effect: str
    target: Target = Target()
    condition: Optional[Apply] = None
    description: str = ""
    line: int = 0


@attrs.frozen
class Policy:
    """
    A C{Policy}: its rules combined by C{algorithm} (C{deny-overrides},
    C{permit-overrides}, C{first-applicable}, C{first-matching-target}).
    """

    policyId: str
    algorithm: str
    target: Target
    rules: tuple
    description: str = ""
    line: int = 0


@attrs.frozen
class PolicySet:
    """
    A C{PolicySet}: its L{Policy} and nested C{PolicySet} children, in
    document order, combined by C{algorithm}.
    """

    policySetId: str
    algorithm: str
    target: Target
    children: tuple
    description: str = ""
    line: int = 0

    def rules(self):
        """
        Every rule of the set, in document order, with the id of the
        policy holding it.
        """
        for child in self.children:
            if isinstance(child, PolicySet):
                yield from child.rules()
            else:
                for rule in child.rules:
                    yield child.policyId, rule
