"""
The policy decision benchmark (L{bench.policy}): its policy, the requests
it times, the timing helper, the printed table, the options, and one short
run of the part as a process (that it runs and prints its rows, not how
fast).
"""

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase, TestCase

from bench import policy
from pz.policy import PolicyDecisionPoint, parsePolicy

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PolicyTests(SynchronousTestCase):
    def test_lateAndNone(self):
        """
        The policy has the rules asked for; only the last applies to the
        late request, none to the other, under both algorithms.
        """
        for algorithm in ("first-applicable", "deny-overrides"):
            parsed = parsePolicy(policy.policyXML(100, algorithm))
            rules = [rule for _, rule in parsed.rules()]
            self.assertEqual(len(rules), 100)
            self.assertEqual(sum(1 for r in rules if r.condition is not None), 10)
            self.assertGreaterEqual(sum(1 for r in rules if r.effect.startswith("Prompt")), 20)
            pdp = PolicyDecisionPoint(parsed)
            late = pdp.decide(policy._request(*policy.LATE))
            self.assertEqual((late.effect, late.ruleId), ("Permit", "r100"))
            none = pdp.decide(policy._request(*policy.NONE))
            self.assertEqual((none.effect, none.ruleId), ("Deny", None))

    def test_timeCalls(self):
        """
        Every call is made and timed; the figures are in microseconds.
        """
        calls = []
        figures = policy.timeCalls(lambda: calls.append(1), 200)
        self.assertEqual(len(calls), 200 + 20)
        self.assertEqual(figures["count"], 200)
        self.assertLessEqual(figures["p50_us"], figures["p99_us"])


def _case(p50, effect="Permit", ruleId="r100"):
    return {"count": 100, "p50_us": p50, "p99_us": p50 * 3, "mean_us": p50 * 1.5,
            "effect": effect, "ruleId": ruleId}


class ReportTests(SynchronousTestCase):
    def test_rows(self):
        """
        One row per case, with its decision, rule, times and its p50 as a
        multiple of the dict lookup's.
        """
        result = {"rules": 100, "decisions": 100, "bytes": 66000, "parse_ms": 20.0, "cases": {
            "late": _case(40.0), "none": _case(44.0, "Deny", None),
            "late-deny-overrides": _case(60.0), "default": _case(5.0, ruleId="all"),
            "dict": _case(0.5)}}
        lines = policy.policyReport(result)
        [late] = [line for line in lines if line.startswith(policy.CASES[0][1])]
        self.assertEqual(late[len(policy.CASES[0][1]):].split(),
                         ["Permit", "r100", "40.00", "120.00", "60.00", "80"])
        [none] = [line for line in lines if line.startswith(policy.CASES[1][1])]
        self.assertEqual(none[len(policy.CASES[1][1]):].split()[:2], ["Deny", "-"])
        self.assertIn("100-rule policy (66,000 bytes", "\n".join(lines))

    def test_nothing(self):
        """
        A full run that skipped this part prints nothing for it.
        """
        self.assertEqual(policy.policyReport({}), [])


class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        The issue's policy: 100 rules.
        """
        from bench.options import parseArgs

        args = parseArgs([])
        self.assertEqual((args.policy_rules, args.policy_decisions), (100, 20000))
        self.assertFalse(args.skip_policy)

    def test_outOfRange(self):
        """
        An unbounded or empty load is refused.
        """
        from bench.options import parseArgs

        devnull = open(os.devnull, "w")
        self.addCleanup(devnull.close)
        self.patch(sys, "stderr", devnull)
        for bad in (["--policy-rules", "1"], ["--policy-rules", "20000"],
                    ["--policy-decisions", "10"], ["--policy-decisions", "10000000"]):
            self.assertRaises(SystemExit, parseArgs, bad)


class SmokeTests(TestCase):
    """
    C{python -m bench.policy} with few decisions, as its own process.
    """

    timeout = 120

    def test_runsAndPrintsItsRows(self):
        """
        Each case has its row with the expected decision, and the policy
        decided against is kept.
        """
        done = subprocess.run([sys.executable, "-m", "bench.policy", "--policy-rules", "30",
                               "--policy-decisions", "300"],
                              cwd=TOP, capture_output=True, text=True, timeout=100)
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        lines = done.stdout.splitlines()
        expected = {"late": "r30", "none": "-", "late-deny-overrides": "r30",
                    "default": "urn:pz:rule:permit-own-zone", "dict": "r30"}
        for key, label in policy.CASES:
            [row] = [line for line in lines if line.startswith(label)]
            self.assertEqual(row[len(label):].split()[1], expected[key], done.stdout)
        self.assertTrue(os.path.exists(os.path.join(TOP, "bench", "out", "run-policy",
                                                    "policy.xml")))
