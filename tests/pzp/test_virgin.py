"""
Tests for L{pzp.virgin}'s machine: the Virgin machine alone, driven through
its inputs against dummy actions that record what they are asked to do
(as magic-wormhole's C{test_machines.py} does).  The worker itself runs
in L{tests.pzp.test_proxy}.
"""

from automat import NoTransition
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pzp.virgin import IVirginActions, VirginCore, VirginMachine
from tests.pzp.machines import transitions


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
