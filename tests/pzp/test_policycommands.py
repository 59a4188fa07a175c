"""
C{pzctl policy}, C{prompts} and C{answer}, run in-process: the policy
verbs edit a device's or a hub's items folder, bad input changes nothing
and says why in one line; the prompt verbs go through the device's admin
commands.
"""

import json
import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.policy import Decision, Request, Resource, Subject
from pz.sync.items import ItemTree
from pzp.admin import ProxyAdmin
from pzp.interfaces import IPromptHandler
from pzp.policy import POLICY
from pzp.prompts import PromptQueue
from pzp.proxy import Proxy
from tests.support import runPzctl

PHONE = "alice@127.0.0.1/phone"


class PolicyVerbTests(SynchronousTestCase):
    def setUp(self):
        self.dataDir = self.mktemp()
        self.tree = ItemTree(os.path.join(self.dataDir, "zone"))
        self.tree.create()

    def pzctl(self, *argv):
        """
        Run C{pzctl argv}: its exit status, standard output and error.
        """
        return runPzctl(self, *argv)

    def test_effectsAsTheCoreSpellsThem(self):
        """
        The effects C{policy add} offers are the policy core's.
        """
        from pz.policy.edit import EFFECTS
        from pzp.policycommands import _EFFECTS

        self.assertEqual(_EFFECTS, tuple(EFFECTS))

    def test_addShowRemove(self):
        """
        C{add} prints the new rule's id and writes it into the item;
        C{show} lists it; C{remove} takes it out again.
        """
        status, out, err = self.pzctl("--pzp-dir", self.dataDir, "policy", "add", "--effect",
                                      "deny", "--subject", PHONE, "--service", "get42", "--first")
        self.assertEqual((status, err), (0, ""))
        ruleId = out.strip()
        self.assertIn(ruleId.encode(), self.tree.read(POLICY))
        status, out, _ = self.pzctl("--pzp-dir", self.dataDir, "policy", "show", "--json")
        rules = json.loads(out)
        self.assertEqual(rules[0], {"id": ruleId, "effect": "deny", "subject": PHONE,
                                    "service": "get42", "method": None, "item": None,
                                    "action": None, "policy": "urn:pz:policy:edits",
                                    "description": "", "simple": True})
        status, out, _ = self.pzctl("--pzp-dir", self.dataDir, "policy", "show")
        self.assertIn(f"{ruleId}  deny  subject={PHONE}  service=get42  method=*", out)
        status, out, err = self.pzctl("--pzp-dir", self.dataDir, "policy", "add", "--effect",
                                      "permit", "--subject", "bob@h", "--item", "userdata/a/")
        self.assertEqual((status, err), (0, ""))
        shared = out.strip()
        status, out, _ = self.pzctl("--pzp-dir", self.dataDir, "policy", "show")
        self.assertIn(f"{shared}  permit  subject=bob@h  item=userdata/a/  (in ", out)
        self.pzctl("--pzp-dir", self.dataDir, "policy", "remove", shared)
        status, out, _ = self.pzctl("--pzp-dir", self.dataDir, "policy", "remove", ruleId)
        self.assertEqual((status, out), (0, f"removed {ruleId}\n"))
        self.assertNotIn(ruleId.encode(), self.tree.read(POLICY))

    def test_badInput(self):
        """
        A bad subject, an unknown rule, a folder without items or both
        folders at once is one line with its code, and the item is left as
        it was.
        """
        before = self.tree.read(POLICY)
        for argv, phrase in (
            (["--pzp-dir", self.dataDir, "policy", "add", "--effect", "deny", "--subject",
              "phone"], "neither a device id"),
            (["--pzp-dir", self.dataDir, "policy", "remove", "urn:pz:rule:nope"], "no rule"),
            (["--pzp-dir", self.dataDir, "policy", "add", "--effect", "permit", "--item",
              "policies/policy.xml"], "not an item a zone may share"),
            (["--pzp-dir", self.dataDir, "policy", "add", "--effect", "permit", "--item",
              "../x"], "not an item path"),
            (["--pzp-dir", self.mktemp(), "policy", "show"], "holds no zone items"),
            (["--pzp-dir", self.dataDir, "--hub-dir", self.dataDir, "policy", "show"],
             "data directory"),
        ):
            status, out, err = self.pzctl(*argv)
            self.assertEqual((status, out), (1, ""), argv)
            self.assertTrue(err.startswith("pzctl: BAD_REQUEST: "), err)
            self.assertIn(phrase, err)
            self.assertEqual(err.count("\n"), 1)
        status, _, err = self.pzctl("--pzp-dir", self.dataDir, "policy", "add", "--effect",
                                    "maybe")
        self.assertEqual(status, 1)
        self.assertIn("BAD_REQUEST", err)
        self.assertEqual(self.tree.read(POLICY), before)

    def test_brokenItem(self):
        """
        A policy item that does not parse is named, with its line, and not
        rewritten.
        """
        self.tree.write(POLICY, b"<PolicySet>\n<oops")
        status, out, err = self.pzctl("--pzp-dir", self.dataDir, "policy", "add", "--effect",
                                      "permit")
        self.assertEqual(status, 1)
        self.assertIn("POLICY_INVALID", err)
        self.assertEqual(self.tree.read(POLICY), b"<PolicySet>\n<oops")


@implementer(IPromptHandler)
class _OwnHandler:
    def prompt(self, request, decision):
        raise AssertionError("not asked in this test")


class PromptCommandTests(SynchronousTestCase):
    def test_adminCommands(self):
        """
        The admin side lists the waiting prompts and answers one.
        """
        clock = Clock()
        proxy = Proxy(self.mktemp(), clock, "phone")
        admin = ProxyAdmin(proxy)
        request = Request(Subject("alice@127.0.0.1", PHONE, None, "own"),
                          Resource("get42", "get42", None), "call")
        d = proxy.prompts.prompt(request, Decision("Deny", "oneshot", "urn:pz:rule:x", ""))
        [waiting] = admin.commands.dispatch("prompts", {})["prompts"]
        answer = admin.commands.dispatch("answer", {"id": waiting["id"], "permit": False,
                                                    "scope": "session"})
        self.assertEqual((answer["permit"], answer["scope"]), (False, "session"))
        self.assertFalse(self.successResultOf(d).permit)
        self.assertIsInstance(proxy.prompts, PromptQueue)

    def test_ownHandler(self):
        """
        A device whose application brings its own prompt handler answers
        C{prompts} and C{answer} with C{BAD_REQUEST}; a handler that is not
        an L{IPromptHandler} fails at once.
        """
        proxy = Proxy(self.mktemp(), Clock(), "phone", promptHandler=_OwnHandler())
        admin = ProxyAdmin(proxy)
        for name, args in (("prompts", {}), ("answer", {"id": "1", "permit": True})):
            e = self.assertRaises(ZoneError, admin.commands.dispatch, name, args)
            self.assertEqual(e.code, "BAD_REQUEST")
        self.assertRaises(TypeError, Proxy, self.mktemp(), Clock(), "phone",
                          promptHandler=object())
