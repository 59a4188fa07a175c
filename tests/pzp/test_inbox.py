"""
Tests for L{pzp.inbox}.
"""

import json
import os

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


class BoundTests(SynchronousTestCase):
    """
    The inbox keeps within its bounds, dropping the oldest messages and
    counting them.
    """

    def setUp(self):
        self.clock = Clock()
        self.path = self.mktemp()

    def fill(self, inbox, count: int, text: str = "m") -> None:
        for i in range(count):
            inbox.add("a", f"{text}{i}")

    def test_count(self):
        """
        Past C{maxMessages}, the oldest are dropped, a tenth of the bound
        at once, and counted; the newest are always kept.
        """
        inbox = Inbox(self.path, self.clock, maxMessages=100)
        self.fill(inbox, 100)
        self.assertEqual(inbox.contents().dropped, 0)
        inbox.add("a", "m100")
        contents = inbox.contents()
        self.assertEqual(contents.dropped, 11)
        self.assertEqual([m["text"] for m in contents.messages],
                         [f"m{i}" for i in range(11, 101)])
        self.fill(inbox, 1000, "n")
        contents = inbox.contents()
        self.assertLessEqual(len(contents.messages), 100)
        self.assertEqual(contents.dropped + len(contents.messages), 1101)
        self.assertEqual(contents.messages[-1]["text"], "n999")

    def test_bytes(self):
        """
        Past C{maxBytes} the file is cut back by the oldest messages; it
        never grows past the bound.
        """
        inbox = Inbox(self.path, self.clock, maxBytes=10_000)
        for i in range(500):
            inbox.add("a", f"{i:04d}" + "x" * 96)
            self.assertLessEqual(os.path.getsize(self.path), 10_000)
        contents = inbox.contents()
        self.assertEqual(contents.dropped + len(contents.messages), 500)
        self.assertGreater(contents.dropped, 0)
        self.assertTrue(contents.messages[-1]["text"].startswith("0499"))

    def test_restart(self):
        """
        The count of dropped messages, and the bound, hold across a restart
        (a new L{Inbox} over the same file).
        """
        self.fill(Inbox(self.path, self.clock, maxMessages=10), 11)
        again = Inbox(self.path, self.clock, maxMessages=10)
        self.assertEqual(again.contents().dropped, 2)
        self.fill(again, 10, "n")
        contents = again.contents()
        self.assertLessEqual(len(contents.messages), 10)
        self.assertEqual(contents.dropped + len(contents.messages), 21)

    def test_tornLineThenAdd(self):
        """
        A message added after a crash tore the last line is kept whole.
        """
        inbox = Inbox(self.path, self.clock)
        inbox.add("a", "whole")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write('{"from": "a", "te')
        again = Inbox(self.path, self.clock)
        again.add("a", "after")
        self.assertEqual([m["text"] for m in again.messages()], ["whole", "after"])

    def test_atomicRewrite(self):
        """
        Dropping rewrites the inbox by renaming a complete file over it: a
        crash before the rename (simulated by a failing rename) leaves the
        old inbox whole.
        """
        inbox = Inbox(self.path, self.clock, maxMessages=10)
        self.fill(inbox, 10)
        with open(self.path, "rb") as f:
            before = f.read()

        def crash(src, dst):
            raise OSError("crashed")

        self.patch(os, "replace", crash)
        self.assertRaises(OSError, inbox.add, "a", "one too many")
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_mode(self):
        """
        The inbox file is 0600.
        """
        self.addCleanup(os.umask, os.umask(0o022))
        inbox = Inbox(self.path, self.clock, maxMessages=10)
        inbox.add("a", "x")
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        self.fill(inbox, 20)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_invalid(self):
        """
        An inbox that could hold nothing is refused.
        """
        self.assertRaises(ValueError, Inbox, self.path, self.clock, maxMessages=0)
        self.assertRaises(ValueError, Inbox, self.path, self.clock, maxBytes=0)
