"""
The cost of one policy decision: C{PolicyDecisionPoint.decide} on a
100-rule policy, in-process, next to a plain Python dict lookup of the same
answer.

In order (see C{bench/README.md}, item 9):

 1. L{policyXML} writes a policy of C{--policy-rules} rules in one policy,
    a mix like a zone's: rules naming a device, a zone or a relation, a
    service and often a method, about one in five a prompt, one in ten
    with a condition (C{string-starts-with} on the device id), none
    matching everything; it is parsed with L{pz.policy.parsePolicy}
    (the time is reported);
 2. for each case, one request is decided C{--policy-decisions} times,
    each decision timed alone with C{time.perf_counter_ns}; median and p99
    in microseconds: B{late} (only the last rule applies, first-applicable,
    so every rule before it is evaluated), B{none} (no rule applies: Deny
    with no rule), and B{late, deny-overrides} (the same rules combined
    deny-overrides, so all are evaluated whatever matches); the zone's
    default one-rule policy as the floor;
 3. B{the reference}: the same answer looked up in a dict keyed by
    (device, service, method), as a policy compiled to a table would give
    it, timed the same way.

Everything runs in this one process, in about ten seconds.  C{python -m
bench.policy [OPTIONS]} runs this part alone and writes
C{bench/out/policy.txt}, C{bench/out/policy.json} and the policy decided
against, C{bench/out/run-policy/policy.xml}.
"""

import gc
import os
import statistics
import sys
import time

from bench.report import fmt, ratio, runAlone, table

_NS = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
_EQUAL = "urn:oasis:names:tc:xacml:1.0:function:string-equal"
_STARTS = "urn:oasis:names:tc:xacml:3.0:function:string-starts-with"
_ONE = "urn:oasis:names:tc:xacml:1.0:function:string-one-and-only"
_ALGORITHMS = {
    "first-applicable": "urn:oasis:names:tc:xacml:1.0:rule-combining-algorithm:first-applicable",
    "deny-overrides": "urn:oasis:names:tc:xacml:3.0:rule-combining-algorithm:deny-overrides",
}
_EFFECTS = ("Permit", "Deny", "Permit", "Prompt-oneshot", "Deny", "Permit", "Prompt-session",
            "Permit", "Deny", "Prompt-blanket")
_SERVICES = ("get42", "files", "camera", "contacts", "events", "context", "media", "geo")
_METHODS = ("get", "list", "read", "write", "delete", "snap")

#: The request only the last rule applies to, and one no rule applies to.
LATE = ("zoe@hub-z", "zoe@hub-z/last", "friend", "vault", "open")
NONE = ("yan@hub-y", "yan@hub-y/tv", "friend", "radio", "tune")
#: A call of the zone's own device, which the default policy permits.
OWN = ("me@hub-a", "me@hub-a/phone", "own", "get42", "get42")


def _match(attribute: str, value: str, function: str = _EQUAL) -> str:
    return (f'<AnyOf><AllOf><Match MatchId="{function}"><AttributeValue>{value}</AttributeValue>'
            f'<AttributeDesignator AttributeId="{attribute}"/></Match></AllOf></AnyOf>')


def _rule(i: int, last: bool) -> str:
    if last:
        matches = [_match("urn:pz:subject:zone", LATE[0]), _match("urn:pz:resource:service",
                   LATE[3]), _match("urn:pz:resource:method", LATE[4])]
        return (f'<Rule RuleId="r{i}" Effect="Permit"><Target>{"".join(matches)}</Target>'
                f"</Rule>")
    zone = f"user{i % 17}@hub{i % 5}"
    kind = i % 3
    if kind == 0:
        subject = _match("urn:pz:subject:device", f"{zone}/dev{i}")
    elif kind == 1:
        subject = _match("urn:pz:subject:zone", zone)
    else:
        subject = _match("urn:pz:subject:relation", ("own", "friend")[i % 2])
    matches = [subject, _match("urn:pz:resource:service", _SERVICES[i % len(_SERVICES)])]
    if i % 4:
        matches.append(_match("urn:pz:resource:method", _METHODS[i % len(_METHODS)]))
    condition = ""
    if i % 10 == 7:
        condition = (f'<Condition><Apply FunctionId="{_STARTS}"><AttributeValue>{zone}/'
                     f'</AttributeValue><Apply FunctionId="{_ONE}"><AttributeDesignator '
                     f'AttributeId="urn:pz:subject:device"/></Apply></Apply></Condition>')
    return (f'<Rule RuleId="r{i}" Effect="{_EFFECTS[i % len(_EFFECTS)]}">'
            f'<Target>{"".join(matches)}</Target>{condition}</Rule>')


def policyXML(rules: int, algorithm: str = "first-applicable") -> bytes:
    """
    A policy of C{rules} rules in one policy combined with C{algorithm};
    only the last applies to L{LATE}, none to L{NONE}.
    """
    body = "\n".join("    " + _rule(i, i == rules) for i in range(1, rules + 1))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<PolicySet xmlns="{_NS}" '
            f'PolicySetId="bench" PolicyCombiningAlgId="urn:oasis:names:tc:xacml:1.0:'
            f'policy-combining-algorithm:first-applicable">\n  <Policy PolicyId="bench-rules" '
            f'RuleCombiningAlgId="{_ALGORITHMS[algorithm]}">\n{body}\n  </Policy>\n'
            f"</PolicySet>\n").encode()


def _request(zone, device, relation, service, method):
    from pz.policy import Request, Resource, Subject

    return Request(Subject(zone, device, None, relation), Resource(service, method), "call")


def timeCalls(call, count: int) -> dict:
    """
    Call C{call()} C{count} times, each timed alone; median, p99 and mean
    in microseconds (garbage collection off while timing).
    """
    clock = time.perf_counter_ns
    samples = []
    for _ in range(min(count // 10, 1000)):
        call()
    gc.collect()
    gc.disable()
    try:
        for _ in range(count):
            start = clock()
            call()
            samples.append(clock() - start)
    finally:
        gc.enable()
    samples.sort()
    return {"count": count, "p50_us": samples[len(samples) // 2] / 1000,
            "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000,
            "mean_us": statistics.fmean(samples) / 1000}


def measurePolicy(args) -> dict:
    """
    The part's figures: each case's timing and answer, the parse time.
    """
    from pz.policy import PolicyDecisionPoint, parsePolicy
    from pz.sync.defaults import POLICY

    count = args.policy_decisions
    data = policyXML(args.policy_rules)
    parses = []
    for _ in range(10):
        start = time.perf_counter()
        parsed = parsePolicy(data)
        parses.append(time.perf_counter() - start)
    pdp = PolicyDecisionPoint(parsed)
    denyOverrides = PolicyDecisionPoint(parsePolicy(policyXML(args.policy_rules,
                                                              "deny-overrides")))
    default = PolicyDecisionPoint(parsePolicy(POLICY.encode("utf-8")))
    late, none = _request(*LATE), _request(*NONE)
    lookup = {(LATE[1], LATE[3], LATE[4]): pdp.decide(late)}
    key = (late.subject.device, late.resource.service, late.resource.method)
    result = {"rules": args.policy_rules, "decisions": count, "bytes": len(data),
              "parse_ms": statistics.median(parses) * 1000, "cases": {}}
    for name, point, request in (("late", pdp, late), ("none", pdp, none),
                                 ("late-deny-overrides", denyOverrides, late),
                                 ("default", default, _request(*OWN))):
        decision = point.decide(request)
        result["cases"][name] = dict(timeCalls(lambda: point.decide(request), count),
                                     effect=decision.effect, ruleId=decision.ruleId)
    result["cases"]["dict"] = dict(timeCalls(lambda: lookup.get(key), count),
                                   effect=lookup[key].effect, ruleId=lookup[key].ruleId)
    return result


#: The rows of the table: key, label.
CASES = (
    ("late", "PDP, last of 100 rules applies (first-applicable)"),
    ("none", "PDP, no rule applies -> Deny"),
    ("late-deny-overrides", "PDP, last rule applies (deny-overrides)"),
    ("default", "PDP, the default one-rule policy"),
    ("dict", "reference: dict lookup of the answer"),
)


def policyReport(result: dict) -> list:
    """
    The policy decision section of the printed table.
    """
    if not result:
        return []
    lines = [
        "",
        f"Policy decision: PolicyDecisionPoint.decide in-process on a {result['rules']}-rule "
        f"policy ({result['bytes']:,} bytes, parsed in {result['parse_ms']:.1f} ms; rules "
        f"naming a device, zone or relation, a service and mostly a method, one in five a "
        f"prompt, one in ten a condition), {result['decisions']:,} decisions per case, each "
        f"timed alone (perf_counter_ns, gc off). Reference: the same answer from a dict "
        f"keyed by (device, service, method), as a policy compiled to a table would give it.",
    ]
    headers = ["case", "decision", "rule", "p50 us", "p99 us", "mean us", "p50 vs dict"]
    base = result["cases"]["dict"]["p50_us"]
    rows = []
    for key, label in CASES:
        c = result["cases"][key]
        rows.append([label, c["effect"], c["ruleId"] or "-", fmt(c["p50_us"], "{:.2f}"),
                     fmt(c["p99_us"], "{:.2f}"), fmt(c["mean_us"], "{:.2f}"),
                     fmt(ratio(c["p50_us"], base), "{:.0f}")])
    return lines + table(headers, rows)


def _measureAlone(args, run: str) -> dict:
    """
    The part alone also keeps the policy it measured in its run folder.
    """
    with open(os.path.join(run, "policy.xml"), "wb") as f:
        f.write(policyXML(args.policy_rules))
    return measurePolicy(args)


def main(argv=None) -> int:
    """
    C{python -m bench.policy}: only this part.
    """
    return runAlone("policy", _measureAlone, policyReport, argv)


if __name__ == "__main__":
    sys.exit(main())
