"""
Tests for L{pz.policy.itemfile}: the policy item listed and edited the
one way C{pzctl policy} and the admin page share.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.policy.item import POLICY
from pz.policy.itemfile import PolicyFile
from pz.sync.defaults import POLICY as DEFAULT_POLICY
from pz.sync.items import ItemTree

PHONE = "alice@127.0.0.1/phone"


class PolicyFileTests(SynchronousTestCase):
    def setUp(self):
        self.tree = ItemTree(os.path.join(self.mktemp(), "zone"))
        self.tree.create({POLICY: DEFAULT_POLICY.encode("utf-8")})
        self.told = []
        self.policy = PolicyFile(self.tree, changed=self.told.append)

    def test_addListRemove(self):
        """
        A rule added is in the file and listed first with C{first}; its
        owner hears of each write; removing it leaves the file as before.
        """
        before = self.tree.read(POLICY)
        later = self.policy.add("permit", service="get42")
        ruleId = self.policy.add("deny", subject=PHONE, service="get42", method="get42",
                                 first=True)
        rows = self.policy.rules()
        self.assertEqual([r["id"] for r in rows[:2]], [ruleId, later])
        self.assertEqual((rows[0]["effect"], rows[0]["subject"], rows[0]["method"]),
                         ("deny", PHONE, "get42"))
        self.assertEqual(self.told, [POLICY, POLICY])
        self.policy.remove(ruleId)
        self.policy.remove(later)
        self.assertNotIn(b"get42", self.tree.read(POLICY))
        self.assertEqual([r["id"] for r in self.policy.rules()],
                         [r["id"] for r in rows[2:]])
        self.assertNotEqual(self.tree.read(POLICY), before)  # the edits policy stays, empty

    def test_badInput(self):
        """
        A bad effect, subject, service, method, C{first} or rule id is
        C{BAD_REQUEST}, whatever its type, and nothing is written or told.
        """
        before = self.tree.read(POLICY)
        for kwargs in ({"effect": "maybe"}, {"effect": ["deny"]}, {"effect": None},
                       {"effect": "deny", "subject": "phone"},
                       {"effect": "deny", "subject": ""}, {"effect": "deny", "subject": 7},
                       {"effect": "deny", "subject": "guest-of-honour"},
                       {"effect": "deny", "subject": "a@b/c d"},
                       {"effect": "deny", "service": ""}, {"effect": "deny", "service": 1},
                       {"effect": "deny", "method": " x"}, {"effect": "deny", "first": "yes"}):
            e = self.assertRaises(ZoneError, self.policy.add, **kwargs)
            self.assertEqual(e.code, "BAD_REQUEST", kwargs)
        for ruleId in ("urn:pz:rule:nope", "", None, 3):
            e = self.assertRaises(ZoneError, self.policy.remove, ruleId)
            self.assertEqual(e.code, "BAD_REQUEST", ruleId)
        self.assertEqual(self.tree.read(POLICY), before)
        self.assertEqual(self.told, [])

    def test_broken(self):
        """
        A policy that does not parse is C{POLICY_INVALID} with its line, for
        listing, adding and removing alike, and stays as it was.
        """
        self.tree.write(POLICY, b"<PolicySet>\n<oops")
        for call in (self.policy.rules, lambda: self.policy.add("deny"),
                     lambda: self.policy.remove("urn:pz:rule:permit-own-zone")):
            e = self.assertRaises(ZoneError, call)
            self.assertEqual(e.code, "POLICY_INVALID")
            self.assertIn("policy line", e.message)
        self.assertEqual(self.tree.read(POLICY), b"<PolicySet>\n<oops")
        self.assertEqual(self.told, [])

    def test_missing(self):
        """
        A missing policy item is C{BAD_REQUEST} naming the file.
        """
        os.remove(self.tree.resolve(POLICY))
        e = self.assertRaises(ZoneError, self.policy.rules)
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn("policy.xml is missing", e.message)

    def test_subjects(self):
        """
        A subject is a device id, a zone id, C{own} or C{friend}, as the
        policy docs say C{--subject} takes, each matched on its attribute.
        """
        for subject, attribute in ((PHONE, "urn:pz:subject:device"),
                                   ("bob@127.0.0.2", "urn:pz:subject:zone"),
                                   ("own", "urn:pz:subject:relation"),
                                   ("friend", "urn:pz:subject:relation")):
            ruleId = self.policy.add("permit", subject=subject, service="s")
            [row] = [r for r in self.policy.rules() if r["id"] == ruleId]
            self.assertEqual(row["subject"], subject)
            self.assertIn(attribute.encode(), self.tree.read(POLICY))
