"""
Tests for L{pzp.revocation}: the Revocation machine alone against dummy
actions that record what they are asked (as magic-wormhole's
C{test_machines.py} does), and the worker's sorting of evidence.  Real
CRLs and a real hub are in L{tests.pzp.test_lifecycle}.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pzp.revocation import (
    IRevocationActions, Revocation, RevocationCore, RevocationMachine,
)
from tests.pzp.machines import transitions


@implementer(IRevocationActions)
class RevocationActions:
    """
    Records what the Revocation machine asks for.
    """

    def __init__(self) -> None:
        self.calls = []

    def keepIfNewer(self, crl):
        self.calls.append(("keepIfNewer", crl))

    def ignoreEvidence(self):
        self.calls.append(("ignoreEvidence",))

    def erase(self):
        self.calls.append(("erase",))


class RevocationMachineTests(SynchronousTestCase):
    """
    Tests for L{RevocationMachine}.
    """

    def setUp(self):
        self.actions = RevocationActions()
        self.machine = RevocationMachine(RevocationCore(self.actions))

    def test_diagram(self):
        """
        Member --proven--> Erased; everything else loops, and once erased
        is ignored.
        """
        expected = {("Member", "proven", "Erased")}
        expected |= {("Member", i, "Member") for i in ("crlPushed", "unproven", "state")}
        expected |= {("Erased", i, "Erased")
                     for i in ("crlPushed", "unproven", "proven", "state")}
        self.assertEqual(transitions(RevocationMachine), expected)

    def test_member(self):
        """
        A member keeps pushed CRLs (if newer) and reports unproven notices.
        """
        self.machine.crlPushed("crl")
        self.machine.unproven()
        self.assertEqual(self.machine.state(), "Member")
        self.assertEqual(self.actions.calls, [("keepIfNewer", "crl"), ("ignoreEvidence",)])

    def test_provenErasesOnce(self):
        """
        Proof erases the zone, once; after it nothing is stored or erased.
        """
        self.machine.proven()
        self.machine.proven()
        self.machine.crlPushed("crl")
        self.machine.unproven()
        self.assertEqual(self.machine.state(), "Erased")
        self.assertEqual(self.actions.calls, [("erase",)])

    def test_actionsAdapted(self):
        """
        The core refuses actions that are not L{IRevocationActions}, and
        the worker collaborators in the wrong places.
        """
        self.assertRaises(TypeError, RevocationCore, object())
        self.assertRaises(TypeError, Revocation(object()).wire, object(), object())
