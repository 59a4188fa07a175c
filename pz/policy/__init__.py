"""
The zone's policy decision point: XACML policies parsed from the synced
C{policies/policy.xml} and requests decided against them.

(A small stand-in for the device branch; the policy core replaces it.)
"""

from pz.policy.pdp import (
    MAX_DEPTH, MAX_POLICY_BYTES, MAX_RULES, Decision, PolicyDecisionPoint, PolicyError,
    PolicySet, Request, Resource, Subject, parsePolicy,
)

__all__ = [
    "MAX_DEPTH", "MAX_POLICY_BYTES", "MAX_RULES", "Decision", "PolicyDecisionPoint",
    "PolicyError", "PolicySet", "Request", "Resource", "Subject", "parsePolicy",
]
