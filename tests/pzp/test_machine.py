"""
Tests for L{pzp.machine}: the Virgin and Hub machines alone, driven through
their inputs against dummy actions that record what they are asked to do
(as magic-wormhole's C{test_machines.py} does).
"""

from automat import NoTransition
from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pzp.machine import (
    HubCore, HubMachine, IHubActions, IVirginActions, VirginCore, VirginMachine,
)


@implementer(IVirginActions)
class VirginActions:
    """
    Records what the Virgin machine asks for.
    """

    def __init__(self) -> None:
        self.calls = []

    def connect(self) -> None:
        self.calls.append(("connect",))

    def store(self, result) -> None:
        self.calls.append(("store", result))

    def enterHub(self) -> None:
        self.calls.append(("enterHub",))

    def enrolmentFailed(self, error) -> None:
        self.calls.append(("enrolmentFailed", error))


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


def transitions(machine) -> set:
    """
    The machine's transition table as C{(state, input, new state)} names:
    the edges its diagram in C{docs/} is drawn from.
    """
    return {
        (old.name, symbol, new.name)
        for old, symbol, new, outputs in machine.__automat_automaton__.allTransitions()
    }


def stateNamed(machine, name: str):
    """
    The state object of C{machine} called C{name}, to start a machine there.
    """
    [state] = [s for s in machine.__automat_automaton__.states() if s.name == name]
    return state


class VirginMachineTests(SynchronousTestCase):
    """
    Tests for L{VirginMachine}, the diagram of a device before enrolment.
    """

    def setUp(self):
        self.actions = VirginActions()
        self.machine = VirginMachine(VirginCore(self.actions))

    def toConnecting(self):
        self.machine.start()
        self.actions.calls.clear()

    def toConnected(self, result="result"):
        self.toConnecting()
        self.machine.connected(result)
        self.actions.calls.clear()

    def toHub(self):
        self.toConnected()
        self.machine.stored()
        self.actions.calls.clear()

    def test_diagram(self):
        """
        The machine has exactly the seed's Virgin edges, plus C{state} in
        every state and C{start} ignored wherever an attempt runs or is
        done.
        """
        expected = {
            ("NotConnected", "start", "Connecting"),
            ("Connecting", "failed", "NotConnected"),
            ("Connecting", "connected", "Connected"),
            ("Connected", "failed", "NotConnected"),
            ("Connected", "stored", "Hub"),
            ("Connecting", "start", "Connecting"),
            ("Connected", "start", "Connected"),
            ("Hub", "start", "Hub"),
        }
        expected |= {(s, "state", s) for s in ("NotConnected", "Connecting", "Connected", "Hub")}
        self.assertEqual(transitions(VirginMachine), expected)

    def test_initialState(self):
        """
        A new machine is NotConnected and has asked for nothing.
        """
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [])

    def test_startConnects(self):
        """
        NotConnected --start--> Connecting opens an enrolment connection.
        """
        self.machine.start()
        self.assertEqual(self.machine.state(), "Connecting")
        self.assertEqual(self.actions.calls, [("connect",)])

    def test_connectingFails(self):
        """
        Connecting --failed--> NotConnected reports the error.
        """
        self.toConnecting()
        error = ZoneError("TIMEOUT")
        self.machine.failed(error)
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("enrolmentFailed", error)])

    def test_connectedStores(self):
        """
        Connecting --connected--> Connected stores what the hub issued.
        """
        self.toConnecting()
        self.machine.connected("the result")
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.actions.calls, [("store", "the result")])

    def test_storingFails(self):
        """
        Connected --failed--> NotConnected reports the error (the
        credentials could not be stored).
        """
        self.toConnected()
        error = ZoneError("INTERNAL")
        self.machine.failed(error)
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("enrolmentFailed", error)])

    def test_storedEntersHub(self):
        """
        Connected --stored--> Hub hands over to Hub mode.
        """
        self.toConnected()
        self.machine.stored()
        self.assertEqual(self.machine.state(), "Hub")
        self.assertEqual(self.actions.calls, [("enterHub",)])

    def test_startIgnoredWhileConnecting(self):
        """
        A second C{start} while an attempt runs changes nothing.
        """
        self.toConnecting()
        self.assertIsNone(self.machine.start())
        self.assertEqual(self.machine.state(), "Connecting")
        self.assertEqual(self.actions.calls, [])

    def test_startIgnoredWhileConnected(self):
        """
        C{start} while the credentials are being stored changes nothing.
        """
        self.toConnected()
        self.assertIsNone(self.machine.start())
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.actions.calls, [])

    def test_startIgnoredInHub(self):
        """
        C{start} after enrolment changes nothing.
        """
        self.toHub()
        self.assertIsNone(self.machine.start())
        self.assertEqual(self.machine.state(), "Hub")
        self.assertEqual(self.actions.calls, [])

    def test_storeFailureFedDuringTransition(self):
        """
        An action may feed the outcome back while its transition runs (the
        proxy stores synchronously): the input is handled once the machine
        is in Connected.
        """
        machine = None

        @implementer(IVirginActions)
        class Storing(VirginActions):
            def store(self, result):
                super().store(result)
                machine.stored()

        actions = Storing()
        machine = VirginMachine(VirginCore(actions))
        machine.start()
        machine.connected("r")
        self.assertEqual(machine.state(), "Hub")
        self.assertEqual(actions.calls, [("connect",), ("store", "r"), ("enterHub",)])

    def test_normalSequences(self):
        """
        Retried attempts, a failed store and a final success run without
        any input lacking a transition.
        """
        m = self.machine
        m.start()
        m.failed(ZoneError("NOT_CONNECTED"))
        m.start()
        m.start()
        m.connected("r1")
        m.failed(ZoneError("INTERNAL"))
        m.start()
        m.connected("r2")
        m.start()
        m.stored()
        m.start()
        self.assertEqual(m.state(), "Hub")
        self.assertEqual(
            [c[0] for c in self.actions.calls],
            ["connect", "enrolmentFailed", "connect", "store", "enrolmentFailed",
             "connect", "store", "enterHub"],
        )

    def test_undefinedInputs(self):
        """
        Inputs the diagram has no edge for raise L{NoTransition}: the
        proxy must never feed them, which the sequences above and the proxy
        tests check.
        """
        self.assertRaises(NoTransition, self.machine.failed, ZoneError("TIMEOUT"))
        self.assertRaises(NoTransition, self.machine.connected, "r")
        self.assertRaises(NoTransition, self.machine.stored)
        self.toHub()
        self.assertRaises(NoTransition, self.machine.failed, ZoneError("TIMEOUT"))

    def test_actionsAdapted(self):
        """
        The core refuses an object that does not provide
        L{IVirginActions}, so wrong wiring fails at once.
        """
        self.assertRaises(TypeError, VirginCore, object())


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
