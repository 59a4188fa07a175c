"""
Tests for L{pzp.inbox}.
"""

import json

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pzp.inbox import MAX_TEXT, Inbox


class InboxTests(SynchronousTestCase):
    """
    Tests for L{Inbox}.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1700000000.25)
        self.path = self.mktemp()
        self.inbox = Inbox(self.path, self.clock)

    def test_empty(self):
        """
        An inbox whose file does not exist yet has no messages.
        """
        self.assertEqual(self.inbox.messages(), [])

    def test_add(self):
        """
        C{add} returns the stored entry: sender, text and the clock's time
        in UTC with milliseconds.
        """
        entry = self.inbox.add("alice@127.0.0.1/tablet", "hello")
        self.assertEqual(entry, {
            "from": "alice@127.0.0.1/tablet",
            "text": "hello",
            "received": "2023-11-14T22:13:20.250+00:00",
        })
        self.assertEqual(self.inbox.messages(), [entry])

    def test_order(self):
        """
        Messages come back oldest first, each stored as one JSON line.
        """
        for i in range(3):
            self.inbox.add("a", f"m{i}")
            self.clock.advance(1)
        self.assertEqual([m["text"] for m in self.inbox.messages()], ["m0", "m1", "m2"])
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.assertEqual([json.loads(line)["text"] for line in lines], ["m0", "m1", "m2"])

    def test_shared(self):
        """
        Another reader of the same file (C{pzctl inbox}) sees what was
        added.
        """
        self.inbox.add("a", "visible")
        self.assertEqual([m["text"] for m in Inbox(self.path, Clock()).messages()],
                         ["visible"])

    def test_text(self):
        """
        Any text survives the round trip: newlines, quotes, non-ASCII and
        the longest text allowed.
        """
        texts = ["two\nlines", 'say "hi"', "gr\u00fc\u00df dich \U0001f600", "x" * MAX_TEXT]
        for text in texts:
            self.inbox.add("a", text)
        self.assertEqual([m["text"] for m in self.inbox.messages()], texts)

    def test_tornLine(self):
        """
        A last line torn by a crash is skipped; the messages before it are
        kept.
        """
        self.inbox.add("a", "whole")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write('{"from": "a", "te')
        self.assertEqual([m["text"] for m in self.inbox.messages()], ["whole"])
