"""
Tests for L{pzp.hubmode}'s machine: the Hub machine alone, driven through
its inputs against dummy actions that record what they are asked to do
(as magic-wormhole's C{test_machines.py} does).  The worker itself runs
in L{tests.pzp.test_proxy} and L{tests.pzp.test_lifecycle}.
"""

from automat import NoTransition
from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pzp.hubmode import HubCore, HubMachine, IHubActions
from tests.pzp.machines import stateNamed, transitions


@implementer(IHubActions)
class HubActions:
    """
    Records what the Hub machine asks for.
    """

    def __init__(self) -> None:
        self.calls = []

    def linkUp(self, link) -> None:
        self.calls.append(("linkUp", link))

    def cleanUp(self, reason) -> None:
        self.calls.append(("cleanUp", reason))

    def connectFailed(self, reason) -> None:
        self.calls.append(("connectFailed", reason))

    def leaveZone(self, evidence) -> None:
        self.calls.append(("leaveZone", evidence))


class FakeLink:
    """
    Stands for a registered hub link: records requests and answers each
    with a fixed acknowledgement.
    """

    def __init__(self) -> None:
        self.requests = []

    def request(self, to, payload):
        self.requests.append((to, payload))
        return succeed({"status": "ack"})



class HubMachineTests(SynchronousTestCase):
    """
    Tests for L{HubMachine}, the diagram of an enrolled device and its hub
    link.
    """

    def setUp(self):
        self.actions = HubActions()
        self.machine = HubMachine(HubCore(self.actions))
        self.link = FakeLink()

    def toConnecting(self):
        self.machine.attempt()
        self.actions.calls.clear()

    def toConnected(self):
        self.toConnecting()
        self.machine.connected(self.link)
        self.actions.calls.clear()

    def test_diagram(self):
        """
        The machine has exactly the seed's Hub edges (an attempt refused as
        revoked being one more way back to NotConnected), plus C{state} in
        every state and C{send} looping in every state.
        """
        states = ("NotConnected", "Connecting", "Connected", "Disconnecting")
        expected = {
            ("NotConnected", "attempt", "Connecting"),
            ("Connecting", "failed", "NotConnected"),
            ("Connecting", "revoked", "NotConnected"),
            ("Connecting", "connected", "Connected"),
            ("Connected", "lost", "Disconnecting"),
            ("Disconnecting", "cleanedUp", "NotConnected"),
        }
        expected |= {(s, "state", s) for s in states}
        expected |= {(s, "send", s) for s in states}
        expected |= {(s, "currentLink", s) for s in states}
        self.assertEqual(transitions(HubMachine), expected)

    def test_initialState(self):
        """
        A new machine is NotConnected and has asked for nothing.
        """
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [])

    def test_attempt(self):
        """
        NotConnected --attempt--> Connecting, with nothing to do yet.
        """
        self.machine.attempt()
        self.assertEqual(self.machine.state(), "Connecting")
        self.assertEqual(self.actions.calls, [])

    def test_connected(self):
        """
        Connecting --connected--> Connected starts what runs while linked.
        """
        self.toConnecting()
        self.machine.connected(self.link)
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.actions.calls, [("linkUp", self.link)])

    def test_attemptFails(self):
        """
        Connecting --failed--> NotConnected reports the failure.
        """
        self.toConnecting()
        reason = ZoneError("CERT_REVOKED")
        self.machine.failed(reason)
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("connectFailed", reason)])

    def test_revoked(self):
        """
        Connecting --revoked--> NotConnected hands the evidence to the
        proxy to decide whether to leave the zone.
        """
        self.toConnecting()
        self.machine.revoked("the CRL")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("leaveZone", "the CRL")])

    def test_lost(self):
        """
        Connected --lost--> Disconnecting cleans up, and the clean-up
        finishing takes it on to NotConnected.
        """
        self.toConnected()
        self.machine.lost("hangup")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("cleanUp", "hangup")])

    def test_disconnecting(self):
        """
        In Disconnecting, C{state} says so, C{send} is refused, and
        C{cleanedUp} leads to NotConnected.
        """
        machine = HubMachine(HubCore(self.actions), stateNamed(HubMachine, "Disconnecting"))
        self.assertEqual(machine.state(), "Disconnecting")
        self.assertEqual(
            self.failureResultOf(machine.send("x", {}), ZoneError).value.code, "NOT_CONNECTED"
        )
        machine.cleanedUp()
        self.assertEqual(machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [])

    def test_sendWhileConnected(self):
        """
        In Connected, C{send} is a request on the link the machine was
        given, and returns its result.
        """
        self.toConnected()
        d = self.machine.send("alice@127.0.0.1/tablet", {"status": "message", "text": "hi"})
        self.assertEqual(self.successResultOf(d), {"status": "ack"})
        self.assertEqual(
            self.link.requests,
            [("alice@127.0.0.1/tablet", {"status": "message", "text": "hi"})],
        )

    def test_currentLink(self):
        """
        C{currentLink} is the link given while Connected, None before and
        after.
        """
        self.assertIsNone(self.machine.currentLink())
        self.toConnected()
        self.assertIs(self.machine.currentLink(), self.link)
        self.machine.lost(Exception("gone"))
        self.assertIsNone(self.machine.currentLink())

    def test_sendRefusedWhenNotConnected(self):
        """
        C{send} in NotConnected and Connecting fails with C{NOT_CONNECTED}
        and changes nothing.
        """
        for prepare, state in ((lambda: None, "NotConnected"),
                               (self.machine.attempt, "Connecting")):
            prepare()
            failure = self.failureResultOf(self.machine.send("x", {}), ZoneError)
            self.assertEqual(failure.value.code, "NOT_CONNECTED")
            self.assertEqual(self.machine.state(), state)
        self.assertEqual(self.link.requests, [])

    def test_sendRefusedAfterLoss(self):
        """
        Once the link is lost, C{send} no longer reaches it.
        """
        self.toConnected()
        self.machine.lost("hangup")
        self.failureResultOf(self.machine.send("x", {}), ZoneError)
        self.assertEqual(self.link.requests, [])

    def test_newLinkAfterReconnect(self):
        """
        After a reconnection C{send} uses the new link, not the old one.
        """
        self.toConnected()
        self.machine.lost("hangup")
        self.machine.attempt()
        second = FakeLink()
        self.machine.connected(second)
        self.machine.send("x", {"status": "message", "text": "t"})
        self.assertEqual(self.link.requests, [])
        self.assertEqual(len(second.requests), 1)

    def test_normalSequences(self):
        """
        What the reconnecting service and the link feed in normal
        operation (failed attempts, connections, sends, losses) never
        lacks a transition.
        """
        m = self.machine
        for _ in range(3):
            m.attempt()
            m.failed(ZoneError("NOT_CONNECTED"))
            m.send("x", {}).addErrback(lambda f: None)
            m.attempt()
            m.connected(self.link)
            m.state()
            m.send("x", {})
            m.lost("hangup")
            m.send("x", {}).addErrback(lambda f: None)
        self.assertEqual(m.state(), "NotConnected")
        self.assertEqual(
            [c[0] for c in self.actions.calls],
            ["connectFailed", "linkUp", "cleanUp"] * 3,
        )

    def test_undefinedInputs(self):
        """
        Inputs the diagram has no edge for raise L{NoTransition}; the
        proxy tests check they are never fed.
        """
        self.assertRaises(NoTransition, self.machine.lost, "r")
        self.assertRaises(NoTransition, self.machine.failed, "r")
        self.assertRaises(NoTransition, self.machine.connected, self.link)
        self.assertRaises(NoTransition, self.machine.cleanedUp)
        self.assertRaises(NoTransition, self.machine.revoked, "crl")
        self.toConnecting()
        self.assertRaises(NoTransition, self.machine.attempt)
        self.assertRaises(NoTransition, self.machine.lost, "r")
        self.machine.connected(self.link)
        self.assertRaises(NoTransition, self.machine.failed, "r")
        self.assertRaises(NoTransition, self.machine.revoked, "crl")
        self.assertRaises(NoTransition, self.machine.attempt)

    def test_actionsAdapted(self):
        """
        The core refuses an object that does not provide L{IHubActions}.
        """
        self.assertRaises(TypeError, HubCore, object())
