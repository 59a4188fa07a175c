"""
The zone's policies: an XACML 3.0 subset with webinos' prompt effects and
first-matching-target, parsed safely, evaluated by a decision point, and
edited without writing XML.  See C{docs/policies.md}.
"""

from pz.policy.decide import PolicyDecisionPoint
from pz.policy.interfaces import IPolicyDecisionPoint
from pz.policy.model import (
    MAX_DEPTH, MAX_POLICY_BYTES, MAX_RULES, Decision, PolicyError, PolicySet, Request,
    Resource, Subject,
)
from pz.policy.parse import parsePolicy

__all__ = [
    "PolicyError", "MAX_POLICY_BYTES", "MAX_DEPTH", "MAX_RULES", "parsePolicy", "PolicySet",
    "Subject", "Resource", "Request", "Decision", "PolicyDecisionPoint", "IPolicyDecisionPoint",
]
