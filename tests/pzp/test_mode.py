"""
Tests for L{pzp.mode}: the proxy's Mode machine alone, against a dummy
enrolment worker and dummy Hub workers that record what they are asked
(as magic-wormhole's C{test_machines.py} does).
"""

from automat import NoTransition
from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pzp.mode import IHubWorkers, ModeCore, ModeMachine
from pzp.seams import IVirginMode
from tests.pzp.machines import transitions


@implementer(IVirginMode)
class VirginWorker:
    """
    Records what the Mode machine asks of the enrolment worker.
    """

    def __init__(self, calls) -> None:
        self.calls = calls

    def start(self):
        self.calls.append("virgin.start")

    def stop(self):
        self.calls.append("virgin.stop")

    def status(self):
        return {"state": "Connecting", "hub": "127.0.0.1:1"}


@implementer(IHubWorkers)
class HubWorkers:
    """
    Records what the Mode machine asks of the Hub workers.
    """

    def __init__(self, calls) -> None:
        self.calls = calls
        self.sent = []

    def start(self):
        self.calls.append("hub.start")

    def stop(self):
        self.calls.append("hub.stop")

    def leave(self):
        self.calls.append("hub.leave")

    def status(self):
        return {"state": "Connected", "hub": "127.0.0.1:2", "peers": ["a"]}

    def send(self, to, payload):
        self.sent.append((to, payload))
        return succeed({"status": "ack"})


class ModeMachineTests(SynchronousTestCase):
    """
    Tests for L{ModeMachine}.
    """

    def setUp(self):
        self.calls = []
        self.built = []
        self.machine = ModeMachine(ModeCore(VirginWorker(self.calls), self.buildHub))

    def buildHub(self):
        self.calls.append("buildHub")
        workers = HubWorkers(self.calls)
        self.built.append(workers)
        return workers

    def test_diagram(self):
        """
        Virgin --enterHub--> Hub --leave--> Left, with C{enrol} only in
        Virgin and the queries and C{stop} answered in every mode.
        """
        expected = {("Virgin", "enterHub", "Hub"), ("Hub", "leave", "Left"),
                    ("Virgin", "enrol", "Virgin")}
        for state in ("Virgin", "Hub", "Left"):
            expected |= {(state, name, state) for name in ("stop", "status", "send", "hub",
                                                           "name")}
        self.assertEqual(transitions(ModeMachine), expected)

    def test_virgin(self):
        """
        A new machine is in Virgin mode: C{enrol} starts the enrolment
        worker, the status is the worker's, C{send} is refused and there
        are no Hub workers.
        """
        self.assertEqual(self.machine.name(), "Virgin")
        self.machine.enrol()
        self.assertEqual(self.calls, ["virgin.start"])
        self.assertEqual(self.machine.status(), {"mode": "Virgin", "state": "Connecting",
                                                 "hub": "127.0.0.1:1", "peers": {}})
        error = self.assertRaises(ZoneError, self.machine.send, "a/b", {})
        self.assertEqual(error.code, "NOT_CONNECTED")
        self.assertIsNone(self.machine.hub())

    def test_enterHub(self):
        """
        Entering Hub mode builds the Hub workers once and starts them; they
        answer the status and carry C{send}.
        """
        self.machine.enterHub()
        [workers] = self.built
        self.assertEqual(self.calls, ["buildHub", "hub.start"])
        self.assertEqual(self.machine.name(), "Hub")
        self.assertIs(self.machine.hub(), workers)
        self.assertEqual(self.machine.status(), {"mode": "Hub", "state": "Connected",
                                                 "hub": "127.0.0.1:2", "peers": ["a"]})
        self.assertEqual(self.successResultOf(self.machine.send("a/b", {"x": 1})),
                         {"status": "ack"})
        self.assertEqual(workers.sent, [("a/b", {"x": 1})])
        self.assertEqual(self.built, [workers])

    def test_leave(self):
        """
        Leaving the zone stops the Hub workers for good and drops them:
        the status is Virgin/NotConnected with no hub, C{send} is refused.
        """
        self.machine.enterHub()
        self.machine.leave()
        self.assertEqual(self.calls, ["buildHub", "hub.start", "hub.leave"])
        self.assertIsNone(self.machine.hub())
        self.assertEqual(self.machine.status(), {"mode": "Virgin", "state": "NotConnected",
                                                 "hub": None, "peers": {}})
        self.assertEqual(self.machine.name(), "Virgin")
        self.assertRaises(ZoneError, self.machine.send, "a/b", {})

    def test_stop(self):
        """
        C{stop} reaches the worker of the current mode, and nothing once
        the zone is left.
        """
        self.machine.stop()
        self.machine.enterHub()
        self.machine.stop()
        self.machine.leave()
        self.machine.stop()
        self.assertEqual(self.calls, ["virgin.stop", "buildHub", "hub.start", "hub.stop",
                                      "hub.leave"])

    def test_undefinedInputs(self):
        """
        What the proxy never feeds has no transition: leaving before
        joining, joining twice, enrolling once in a zone or after it.
        """
        self.assertRaises(NoTransition, self.machine.leave)
        self.machine.enterHub()
        self.assertRaises(NoTransition, self.machine.enterHub)
        self.assertRaises(NoTransition, self.machine.enrol)
        self.machine.leave()
        self.assertRaises(NoTransition, self.machine.enrol)
        self.assertRaises(NoTransition, self.machine.enterHub)
        self.assertRaises(NoTransition, self.machine.leave)

    def test_wiringChecked(self):
        """
        The core refuses an enrolment worker that is not one, and entering
        Hub mode refuses what is not a set of Hub workers.
        """
        self.assertRaises(TypeError, ModeCore, object(), self.buildHub)
        machine = ModeMachine(ModeCore(VirginWorker([]), object))
        self.assertRaises(TypeError, machine.enterHub)
