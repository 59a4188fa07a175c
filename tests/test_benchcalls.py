"""
The calls benchmark (L{bench.calls}): its load harness on a L{Clock}, the
bare relay's ends over in-memory transports, the echo service, the
verdicts of the printed table, and one short run of the whole part with
real processes on 127.0.0.1 (that it runs and prints its rows, not how
fast).
"""

import json
import os
import subprocess
import sys

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from bench import calls
from bench.callclient import frameSizes, valueOf
from bench.callload import ClosedLoop, OpenLoop, Sample, percentile, summarise
from bench.callrelay import READY, Caller, Echo, RelayFactory
from bench.callservice import Echo as EchoService
from pz.calls import makeRequest, serve
from pz.errors import ZoneError
from pz.wire import decodeEnvelope
from pz.zoneservice import ServiceRegistry

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Calls:
    """
    An C{issue} function whose calls are answered only when told.
    """

    def __init__(self) -> None:
        self.waiting = []
        self.cancelled = 0

    def __call__(self) -> Deferred:
        d = Deferred(lambda _: self._cancelled())
        self.waiting.append(d)
        return d

    def _cancelled(self) -> None:
        self.cancelled += 1

    def answerAll(self) -> None:
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback("ok")


class OpenLoopTests(TestCase):
    def setUp(self):
        self.clock = MemoryReactorClock()
        self.calls = Calls()

    def test_pacedByTheClock(self):
        """
        Call I goes out at I / rate after the start, and no sooner: the
        load is offered by the clock, not by the answers.
        """
        load = OpenLoop(self.clock, self.calls, rate=64, count=10, timeout=1.0)
        d = load.run()
        self.assertEqual(len(load.samples), 1)
        for step in range(1, 10):
            self.clock.advance(1 / 128)
            self.assertEqual(len(load.samples), step)
            self.clock.advance(1 / 128)
            self.assertEqual(len(load.samples), step + 1)
        self.assertEqual([s.sent for s in load.samples], [i / 64 for i in range(10)])
        self.assertEqual([s.sent - s.due for s in load.samples], [0.0] * 10)
        self.assertNoResult(d)
        self.calls.answerAll()
        samples = self.successResultOf(d)
        self.assertEqual(len(samples), 10)
        self.assertEqual({s.error for s in samples}, {None})

    def test_roundingNeverStalls(self):
        """
        At a rate whose period is not exact in binary, every call still
        goes out when its timer fires: C{(now - start) * rate} rounding
        just below a whole number neither holds a call back nor spins
        (a timer due now, rescheduled for now, would never let the clock
        move on).
        """
        self.clock.advance(1.7e9)  # what the reactor's clock says: a coarse float
        timers = []
        callLater = self.clock.callLater

        def counted(*args, **kwargs):
            timers.append(1)
            if len(timers) > 5000:
                raise AssertionError("the load keeps rescheduling itself for now")
            return callLater(*args, **kwargs)

        self.clock.callLater = counted
        load = OpenLoop(self.clock, self.calls, rate=1000, count=1000, timeout=1.0)
        load.run()
        for _ in range(999):
            self.clock.advance(0.001)
        self.clock.advance(0.001)  # the steps summed at this scale fall a little short
        self.assertEqual(len(load.samples), 1000)
        self.assertLess(max(s.sent - s.due for s in load.samples), 0.001)

    def test_lateReactorSendsWhatIsDue(self):
        """
        A reactor that comes back late sends every call due by then at
        once, each with its lateness kept.
        """
        load = OpenLoop(self.clock, self.calls, rate=1000, count=100, timeout=1.0)
        load.run()
        self.clock.advance(0.0505)
        self.assertEqual(len(load.samples), 51)
        self.assertAlmostEqual(load.samples[1].sent - load.samples[1].due, 0.0495)
        self.assertAlmostEqual(load.samples[50].sent - load.samples[50].due, 0.0005)

    def test_boundedInCountAndTime(self):
        """
        Calls that are never answered neither stop the sending nor keep
        the load going: exactly C{count} go out, and it ends C{timeout}
        after the last was due, the unanswered ones counted and cancelled.
        """
        load = OpenLoop(self.clock, self.calls, rate=10, count=5, timeout=2.0)
        d = load.run()
        self.clock.pump([0.1] * 24)
        self.assertEqual(len(load.samples), 5)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        samples = self.successResultOf(d)
        self.assertEqual([s.error for s in samples], ["NO_ANSWER"] * 5)
        self.assertEqual(self.calls.cancelled, 5)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failuresKeepTheirCode(self):
        """
        A failed call is kept with its zone error code (or its type).
        """
        outcomes = iter([fail(ZoneError("TIMEOUT", "late")), fail(ValueError("x")),
                         succeed(1)])
        d = OpenLoop(self.clock, lambda: next(outcomes), rate=1000, count=3, timeout=1.0).run()
        self.clock.advance(0.003)
        samples = self.successResultOf(d)
        self.assertEqual([s.error for s in samples], ["TIMEOUT", "ValueError", None])

    def test_badSettings(self):
        for rate, count, timeout in ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 0)):
            self.assertRaises(ValueError, OpenLoop, self.clock, self.calls, rate, count, timeout)


class ClosedLoopTests(TestCase):
    def setUp(self):
        self.clock = MemoryReactorClock()
        self.calls = Calls()

    def test_keepsCallsInFlight(self):
        """
        C{inFlight} calls wait at all times; each answer sends another
        until the time is up, then the load ends once the last is answered.
        """
        load = ClosedLoop(self.clock, self.calls, inFlight=4, seconds=1.0, maxCount=1000,
                          timeout=5.0)
        d = load.run()
        self.assertEqual(len(self.calls.waiting), 4)
        for _ in range(3):
            self.clock.advance(0.3)
            self.calls.answerAll()
            self.assertEqual(len(self.calls.waiting), 4)
        self.clock.advance(0.2)
        self.calls.answerAll()
        self.assertEqual(self.calls.waiting, [])
        samples = self.successResultOf(d)
        self.assertEqual(len(samples), 16)
        self.assertAlmostEqual(summarise(samples)["answer_rate"], 16 / 1.1)

    def test_boundedInCount(self):
        """
        No more than C{maxCount} calls, whatever the time left.
        """
        load = ClosedLoop(self.clock, self.calls, inFlight=4, seconds=10.0, maxCount=6,
                          timeout=5.0)
        d = load.run()
        self.calls.answerAll()
        self.calls.answerAll()
        self.assertEqual(len(self.successResultOf(d)), 6)

    def test_boundedInTime(self):
        """
        Calls never answered end the load C{seconds + timeout} after its
        start.
        """
        d = ClosedLoop(self.clock, self.calls, inFlight=3, seconds=1.0, maxCount=10,
                       timeout=2.0).run()
        self.clock.advance(2.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual([s.error for s in self.successResultOf(d)], ["NO_ANSWER"] * 3)

    def test_immediateFailuresDoNotRecurse(self):
        """
        Calls that fail at once (a full queue: C{RATE_LIMITED}) are
        replaced in a loop, not by recursion, and stay bounded by
        C{maxCount}.
        """
        issue = lambda: fail(ZoneError("RATE_LIMITED", "full"))
        d = ClosedLoop(self.clock, issue, inFlight=2, seconds=1.0,
                       maxCount=5 * sys.getrecursionlimit(), timeout=1.0).run()
        samples = self.successResultOf(d)
        self.assertEqual(len(samples), 5 * sys.getrecursionlimit())
        self.assertEqual(summarise(samples)["errors"], {"RATE_LIMITED": len(samples)})


class SummaryTests(TestCase):
    def test_percentile(self):
        values = list(range(1, 101))
        self.assertEqual(percentile(values, 50), 50)
        self.assertEqual(percentile(values, 99), 99)
        self.assertEqual(percentile(values, 100), 100)
        self.assertEqual(percentile([7], 99), 7)
        self.assertIsNone(percentile([], 50))

    def test_summarise(self):
        samples = [Sample(i / 10, i / 10 + 0.001, i / 10 + 0.003) for i in range(10)]
        samples.append(Sample(1.0, 1.0, None, "TIMEOUT"))
        figures = summarise(samples)
        self.assertEqual((figures["calls"], figures["answered"]), (11, 10))
        self.assertEqual(figures["errors"], {"TIMEOUT": 1})
        self.assertAlmostEqual(figures["p50_ms"], 2.0)
        self.assertAlmostEqual(figures["lag_p99_ms"], 1.0)
        self.assertAlmostEqual(figures["send_rate"], 10 / 0.999)

    def test_nothingAnswered(self):
        figures = summarise([Sample(0, 0, None, "NO_ANSWER")])
        self.assertIsNone(figures["p99_ms"])
        self.assertIsNone(figures["answer_rate"])


class EchoServiceTests(TestCase):
    def test_echo(self):
        """
        C{echo.echo} served from a registry answers with its argument.
        """
        registry = ServiceRegistry()
        registry.register(EchoService())
        value = valueOf(200)
        answer = self.successResultOf(serve(registry, makeRequest("1", "echo", "echo",
                                                                  {"value": value})))
        self.assertEqual(answer["result"], value)

    def test_valueSize(self):
        value = valueOf(200)
        self.assertEqual(len(value.encode("utf-8")), 200)
        self.assertEqual(json.dumps(value), f'"{value}"')
        sizes = frameSizes("z/a", "z/b", value)
        self.assertGreater(sizes["request"], 200)
        self.assertGreater(sizes["answer"], 200)


def framesOf(transport: StringTransport) -> list:
    """
    The length-prefixed frames written to C{transport}.
    """
    data, frames = transport.value(), []
    while data:
        size = int.from_bytes(data[:4], "big")
        frames.append(data[4:4 + size])
        data = data[4 + size:]
    return frames


def frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


class RelayTests(TestCase):
    def setUp(self):
        self.factory = RelayFactory()
        self.a, self.ta = self.connect()
        self.b, self.tb = self.connect()

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_relaysUnread(self):
        """
        A is told once B is there; then each frame goes to the other end
        as it came, whatever it holds.
        """
        self.a.dataReceived(frame(b"A"))
        self.assertEqual(framesOf(self.ta), [])
        self.b.dataReceived(frame(b"B"))
        self.assertEqual(framesOf(self.ta), [READY])
        self.a.dataReceived(frame(b"not even json") + frame(b"x" * 400))
        self.assertEqual(framesOf(self.tb), [b"not even json", b"x" * 400])
        self.b.dataReceived(frame(b"back"))
        self.assertEqual(framesOf(self.ta), [READY, b"back"])

    def test_badHelloClosed(self):
        """
        A first frame that names no end, or an end already taken, closes
        the link.
        """
        self.a.dataReceived(frame(b"C"))
        self.assertTrue(self.ta.disconnecting)
        self.b.dataReceived(frame(b"B"))
        third, transport = self.connect()
        third.dataReceived(frame(b"B"))
        self.assertTrue(transport.disconnecting)
        self.assertIs(self.factory.ends[b"B"], self.b)

    def test_endLeaves(self):
        self.a.dataReceived(frame(b"A"))
        self.a.connectionLost(None)
        self.assertEqual(self.factory.ends, {})


class EndsTests(TestCase):
    def test_echo(self):
        echo, transport = Echo(), StringTransport()
        echo.makeConnection(transport)
        echo.dataReceived(frame(b"abc"))
        self.assertEqual(framesOf(transport), [b"B", b"abc"])

    def test_caller(self):
        """
        The caller sends the frame a device's call worker sends and fires
        with the payload of the frame echoed back; a frame for no call is
        ignored; the link closing fails what still waits.
        """
        caller, transport = Caller("z/a", "z/b"), StringTransport()
        caller.makeConnection(transport)
        caller.dataReceived(frame(READY))
        self.assertIs(self.successResultOf(caller.ready), caller)
        first = caller.call("echo", "echo", {"value": "v"})
        second = caller.call("echo", "echo", {"value": "w"})
        hello, request, other = framesOf(transport)
        self.assertEqual(hello, b"A")
        envelope = decodeEnvelope(request)
        self.assertEqual((envelope.type, envelope.sender, envelope.to, envelope.respTo),
                         ("JSONRPC", "z/a", "z/b", "z/a"))
        self.assertEqual(envelope.payload["method"], "echo.echo")
        caller.dataReceived(frame(request))
        caller.dataReceived(frame(request))
        self.assertEqual(self.successResultOf(first)["params"], {"value": "v"})
        caller.connectionLost(Failure(ConnectionError()))
        self.failureResultOf(second, ZoneError)


class ReportTests(TestCase):
    def result(self, relay=2.0, hub=2.5, peer=1.5, hubVia="hub",
               peerVia="peer"):
        def path(p99, via):
            fixed = {"calls": 5000, "answered": 5000, "errors": {}, "p50_ms": p99 / 2,
                     "p99_ms": p99, "max_ms": p99 * 2, "lag_p99_ms": 0.5, "send_rate": 1000.0}
            if via:
                fixed["via"] = [via]
            return {"request": 448, "answer": 380, "fixed": fixed,
                    "peak": {"answer_rate": 3000.0, "p50_ms": 10.0, "errors": {}}}

        return {"rate": 1000.0, "seconds": 5.0, "warmup": 1.0, "size": 200, "in_flight": 64,
                "peak_seconds": 3.0, "hub_rate": 1, "hub_burst": 1, "load_before": 1.0,
                "load_after": 1.0, "relay": path(relay, None), "hub": path(hub, hubVia),
                "peer": path(peer, peerVia)}

    def targets(self, lines):
        return [line.rsplit(" ", 1)[1] for line in lines[lines.index("Targets") + 1:]]

    def test_rowsAndVerdicts(self):
        lines = calls.callsReport(self.result())
        for label in ("bare TLS echo relay", "hub path", "peer link"):
            self.assertEqual(len([line for line in lines if line.startswith(label)]), 1)
        self.assertEqual(self.targets(lines), ["PASS", "PASS"])
        self.assertIn("1.25 x  PASS", lines[-2])

    def test_slow(self):
        self.assertEqual(self.targets(calls.callsReport(self.result(hub=3.1, peer=3.2))),
                         ["FAIL", "FAIL"])

    def test_wrongLinkFails(self):
        """
        A load whose calls did not all take its own path's link proves
        nothing about that path.
        """
        result = self.result(peerVia="hub")
        self.assertEqual(self.targets(calls.callsReport(result)), ["PASS", "FAIL"])
        result["hub"]["fixed"]["via"] = ["hub", "peer"]
        self.assertEqual(self.targets(calls.callsReport(result)), ["FAIL", "FAIL"])

    def test_lostCallsFail(self):
        result = self.result()
        result["relay"]["fixed"]["errors"] = {"NO_ANSWER": 3}
        lines = calls.callsReport(result)
        self.assertEqual(self.targets(lines), ["FAIL", "PASS"])
        self.assertTrue(any("errors {'NO_ANSWER': 3}" in line for line in lines))

    def test_notMeasured(self):
        result = self.result()
        result["peer"] = {"error": "device A's peer link: not within 60 s"}
        lines = calls.callsReport(result)
        self.assertIn("  peer link: A -> B: not measured: device A's peer link: not within 60 s",
                      lines)
        self.assertEqual(self.targets(lines), ["PASS", "FAIL"])

    def test_nothing(self):
        self.assertEqual(calls.callsReport({}), [])

    def test_cpuCell(self):
        """
        A, the middle and B in that order; a process not measured is "-".
        """
        self.assertEqual(calls.cpuCell({"cpu_us_per_call": {"B": 3, "A": 1, "middle": 2}}),
                         "1/2/3")
        self.assertEqual(calls.cpuCell({"cpu_us_per_call": {"A": 1}}), "1/-/-")


class CallerOptionsTests(TestCase):
    def test_cpuSpec(self):
        from bench.callclient import cpuOf, cpuSpec

        self.assertEqual(cpuSpec("middle=123"), ("middle", 123))
        for bad in ("middle", "=1", "middle=x", "middle=-1"):
            self.assertRaises(Exception, cpuSpec, bad)
        ticks = cpuOf({"me": os.getpid(), "gone": 2 ** 22 + 12345})
        self.assertEqual(list(ticks), ["me"])


class SmokeTests(TestCase):
    """
    C{python -m bench.calls} with a short load: a hub, device B, the bare
    relay and the callers as real processes on 127.0.0.1.
    """

    timeout = 400

    def test_runsAndPrintsItsRows(self):
        """
        Each path's row has its calls, all answered, and the link its
        calls took; the targets follow.  (It writes C{bench/out/calls.txt}
        and C{calls.json}, as the part run alone does.)
        """
        done = subprocess.run(
            [sys.executable, "-m", "bench.calls", "--calls-rate", "100", "--calls-seconds",
             "0.5", "--calls-warmup", "0.2", "--calls-peak-seconds", "0.5",
             "--calls-in-flight", "4"],
            cwd=TOP, capture_output=True, text=True, timeout=360,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        lines = done.stdout.splitlines()
        for _, label, link in calls.PATHS:
            found = [line for line in lines if line.startswith(label)]
            self.assertEqual(len(found), 1, f"{label}: {found}\n{done.stdout}")
            cells = found[0][len(label):].split()
            self.assertEqual(cells[:2], ["50", "50"], done.stdout)
            self.assertEqual(cells[-1], link or "-", done.stdout)
        self.assertIn("Targets", lines)


class OptionsTests(TestCase):
    def test_defaults(self):
        """
        The issue's load: 1,000 calls/s of 200 characters, 5 s measured.
        """
        from bench.options import parseArgs

        args = parseArgs([])
        self.assertEqual((args.calls_rate, args.calls_seconds, args.calls_size),
                         (1000.0, 5.0, 200))
        self.assertFalse(args.skip_calls)

    def test_outOfRange(self):
        """
        A load that is not bounded, or is empty, is refused.
        """
        from bench.options import parseArgs

        devnull = open(os.devnull, "w")
        self.addCleanup(devnull.close)
        self.patch(sys, "stderr", devnull)
        for bad in (["--calls-rate", "0"], ["--calls-rate", "1e6"], ["--calls-seconds", "0"],
                    ["--calls-seconds", "3600"], ["--calls-in-flight", "0"],
                    ["--calls-size", "0"], ["--calls-peak-seconds", "-1"]):
            self.assertRaises(SystemExit, parseArgs, bad)


class PolicyPhaseTests(TestCase):
    """
    The policy phase: B's 100-rule policy, and its target.
    """

    def test_bigPolicy(self):
        """
        The policy has 100 rules and permits the benchmark's calls, past
        all the others.
        """
        from pz.policy import PolicyDecisionPoint, Request, Resource, Subject, parsePolicy
        from pz.policy.edit import showRules

        data = calls.bigPolicy()
        self.assertEqual(len(showRules(data)), calls.POLICY_RULES)
        decision = PolicyDecisionPoint(parsePolicy(data)).decide(Request(
            Subject("bench@127.0.0.1", "bench@127.0.0.1/apol", None, "own"),
            Resource("echo", "echo", None), "call"))
        self.assertEqual((decision.effect, decision.ruleId), ("Permit", "urn:pz:rule:permit-own-zone"))

    def result(self, policyRate):
        result = ReportTests.result(ReportTests())
        result["policy"] = {"request": 448, "answer": 380,
                            "fixed": dict(result["hub"]["fixed"]),
                            "peak": {"answer_rate": policyRate, "p50_ms": 10.0, "errors": {}}}
        return result

    def test_verdict(self):
        """
        The policy row is shown when the phase ran, and its target passes
        at 90% of the default policy's peak rate or more.
        """
        lines = calls.callsReport(self.result(2700.0))
        self.assertEqual(len([line for line in lines if line.startswith("hub path, 100-rule")]), 1)
        targets = ReportTests.targets(ReportTests(), lines)
        self.assertEqual(targets, ["PASS", "PASS", "PASS"])
        targets = ReportTests.targets(ReportTests(), calls.callsReport(self.result(2600.0)))
        self.assertEqual(targets, ["PASS", "PASS", "FAIL"])
        failed = self.result(3000.0)
        failed["policy"]["fixed"]["errors"] = {"DENIED": 1}
        targets = ReportTests.targets(ReportTests(), calls.callsReport(failed))
        self.assertEqual(targets[-1], "FAIL")
