# -*- test-case-name: tests.pz.policy.test_decide -*-
"""
The seam between the enforcement points (a device's calls, a hub's links
to other zones) and the decision point, so either side may be replaced by
a fake in tests and a wrong argument fails when wired.
"""

from zope.interface import Attribute, Interface

__all__ = ["IPolicyDecisionPoint"]


class IPolicyDecisionPoint(Interface):
    """
    Decides requests against the policy in force; a new policy replaces it
    only once it has parsed.
    """

    policy = Attribute("The pz.policy.PolicySet in force, or None (everything is denied).")

    def decide(request):
        """
        The L{pz.policy.Decision} for the L{pz.policy.Request}.
        """

    def load(data):
        """
        Parse C{data} (bytes) and put it in force; raise
        L{pz.policy.PolicyError} and keep the previous policy if it does
        not parse.
        """
