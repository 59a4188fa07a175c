"""
docs/policies.md runs: every example policy on the page parses, and makes
every decision the table after it states.
"""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from pz.policy import PolicyDecisionPoint, Request, Resource, Subject, parsePolicy
from pz.policy.edit import addRule
from pz.sync.defaults import POLICY

_PAGE = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "policies.md")
_XML = re.compile(r"^```xml\n(.*?)^```\n", re.M | re.S)
_ROW = re.compile(r"^\| (`[^`]+`) \| (\w+) \| (\w+) \| `?([^|`]*?)`? \| ([^|]+?) \| ([^|]+?) \|$",
                  re.M)


def examples():
    """
    Each C{```xml} block of the page with the decision rows of the table
    that follows it (before the next block).
    """
    with open(_PAGE, encoding="utf-8") as f:
        text = f.read()
    blocks = list(_XML.finditer(text))
    for i, block in enumerate(blocks):
        end = blocks[i + 1].start() if i + 1 < len(blocks) else len(text)
        yield block.group(1), _ROW.findall(text, block.end(), end)


def request(caller: str, relation: str, action: str, resource: str) -> Request:
    caller = caller.strip("`")
    zone, device = (caller.rpartition("/")[0], caller) if "/" in caller else (caller, None)
    if resource.startswith("path:"):
        target = Resource(path=resource[len("path:"):])
    elif resource == "-":
        target = Resource()
    else:
        service, _, method = resource.partition(".")
        target = Resource(service, method or None)
    return Request(Subject(zone, device, None, relation), target, action)


def expected(decision: str, rule: str):
    effect, _, prompt = decision.partition(", prompt ")
    return effect, prompt or None, None if rule == "none" else rule.strip("`")


class PolicyDocsTests(SynchronousTestCase):
    def check(self, data: bytes, rows) -> list:
        pdp = PolicyDecisionPoint(parsePolicy(data))
        failures = []
        for caller, relation, action, resource, decision, rule in rows:
            got = pdp.decide(request(caller, relation, action, resource))
            if (got.effect, got.prompt, got.ruleId) != expected(decision, rule):
                failures.append(f"{caller} {action} {resource}: {got}")
        return failures

    def test_examples(self):
        """
        Every example parses and gives each decision its table states;
        every example has a table, and the page has one per effect and
        combining algorithm and the friend zone's.
        """
        found = list(examples())
        self.assertGreaterEqual(len(found), 8)
        failures = []
        for xml, rows in found:
            self.assertTrue(rows, xml[:200])
            failures += self.check(xml.encode("utf-8"), rows)
        self.assertEqual(failures, [])
        effects = {e for xml, _ in found for e in re.findall(r'Effect="([\w-]+)"', xml)}
        self.assertEqual(effects, {"Permit", "Deny", "Prompt-oneshot", "Prompt-session",
                                   "Prompt-blanket"})
        algorithms = {a.rsplit(":", 1)[1] for xml, _ in found
                      for a in re.findall(r'CombiningAlgId="([^"]+)"', xml)}
        self.assertEqual(algorithms, {"deny-overrides", "permit-overrides", "first-applicable",
                                      "first-matching-target"})

    def test_friendCommands(self):
        """
        The command the page gives for letting a friend zone call one
        service leaves the default policy deciding as the page's table
        says.
        """
        [(xml, rows)] = [(x, r) for x, r in examples() if "urn:pz:policy:edits" in x]
        data, _ = addRule(POLICY.encode("utf-8"), "permit", subject="bob@hub-b",
                          service="get42", ruleId="urn:pz:rule:0b1c2d3e")
        self.assertEqual(self.check(data, rows), [])

    def test_rowsRead(self):
        """
        The table reader sees prompts, paths and absent rules as written.
        """
        self.assertEqual(expected("Deny, prompt session", "`r`"), ("Deny", "session", "r"))
        self.assertEqual(expected("Deny", "none"), ("Deny", None, None))
        r = request("`bob@hub-b/tv`", "friend", "sync", "path:userdata/a")
        self.assertEqual((r.subject.zone, r.resource.path), ("bob@hub-b", "userdata/a"))
