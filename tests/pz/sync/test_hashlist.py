"""
Tests for L{pz.sync.hashlist}.
"""

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.sync.chunkers import encodeHash
from pz.sync.hashlist import applyOps, diffOps, fullOps, pages


def _h(n) -> bytes:
    return hashlib.sha256(str(n).encode()).digest()


#: Hash lists drawn from a small alphabet, so that they share runs and
#: repeat hashes, as real chunk lists do.
_lists = st.lists(st.integers(0, 30).map(_h), max_size=60)


class DiffTests(SynchronousTestCase):
    """
    Tests for L{diffOps} and L{applyOps} on well-formed input.
    """

    def test_sameList(self):
        """
        A list diffed against itself is one run.
        """
        base = [_h(i) for i in range(100)]
        self.assertEqual(diffOps(base, base), [[0, 100]])

    def test_insertionInTheMiddle(self):
        """
        One hash inserted in the middle of 2,500 gives two runs and one hash.
        """
        base = [_h(i) for i in range(2500)]
        new = base[:1250] + [_h("new")] + base[1250:]
        ops = diffOps(base, new)
        self.assertEqual(ops, [[0, 1250], encodeHash(_h("new")), [1250, 1250]])
        self.assertEqual(applyOps(base, ops, 10000), new)

    def test_changeNearStartAndAppend(self):
        """
        A hash replaced near the start and two appended give a handful of
        ops whose JSON is a few hundred bytes, not the whole list.
        """
        base = [_h(i) for i in range(2500)]
        new = base[:3] + [_h("x")] + base[4:] + [_h("y"), _h("z")]
        ops = diffOps(base, new)
        self.assertLessEqual(len(ops), 6)
        self.assertLess(len(json.dumps(ops)), 300)
        self.assertEqual(applyOps(base, ops, 10000), new)

    def test_repeatedHashes(self):
        """
        A list of one repeated hash (a file of zeros) diffed against a longer
        one is one run.
        """
        zero = _h(0)
        self.assertEqual(diffOps([zero] * 50, [zero] * 80), [[0, 50], [0, 30]])
        self.assertEqual(diffOps([zero] * 80, [zero] * 50), [[0, 50]])

    def test_runsFollowTheEdit(self):
        """
        A hash that occurs twice in the base is kept from where the edit
        left off, not from its first occurrence, so the runs stay long:
        after an insertion and after a replacement.
        """
        a, x, b, c, d, e, n = (_h(v) for v in "axbcden")
        base = [a, x, b, c, a, d, e]
        inserted = [a, x, b, c, n, a, d, e]
        self.assertEqual(diffOps(base, inserted), [[0, 4], encodeHash(n), [4, 3]])
        replaced = [a, x, b, c, n, d, e]
        self.assertEqual(diffOps(base, replaced), [[0, 4], encodeHash(n), [5, 2]])
        base = [a, x, a, b, c, d]
        replaced = [a, x, n, b, c, d]
        self.assertEqual(diffOps(base, replaced), [[0, 2], encodeHash(n), [3, 3]])
        base = [a, b, x, a, c, d]
        replaced = [a, b, n, a, c, d]
        self.assertEqual(diffOps(base, replaced), [[0, 2], encodeHash(n), [3, 3]])

    def test_emptyLists(self):
        """
        Empty lists give no ops, and no ops make an empty list.
        """
        self.assertEqual(diffOps([], []), [])
        self.assertEqual(diffOps([_h(1)], []), [])
        self.assertEqual(applyOps([_h(1)], [], 10), [])

    def test_fullOps(self):
        """
        L{fullOps} lists every hash encoded, and nothing else; applied to an
        empty base it gives the list back.
        """
        new = [_h(i) for i in range(5)]
        ops = fullOps(new)
        self.assertEqual(ops, [encodeHash(h) for h in new])
        self.assertEqual(applyOps([], ops, 5), new)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(_lists, _lists)
    def test_roundTrip(self, base, new):
        """
        For any two lists, C{applyOps(base, diffOps(base, new)) == new}, and
        through JSON too, as on the wire.
        """
        ops = json.loads(json.dumps(diffOps(base, new)))
        self.assertEqual(applyOps(base, ops, len(new)), list(new))

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(st.lists(st.integers(0, 10 ** 6), min_size=1, max_size=400, unique=True),
           st.data())
    def test_localEditsAreSmall(self, ids, data):
        """
        One local edit (an insertion, a replacement or a deletion at a random
        place) of a list of distinct hashes gives at most three ops.
        """
        base = [_h(i) for i in ids]
        at = data.draw(st.integers(0, len(base) - 1))
        edit = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        if edit == "insert":
            new = base[:at] + [_h("new")] + base[at:]
        elif edit == "replace":
            new = base[:at] + [_h("new")] + base[at + 1:]
        else:
            new = base[:at] + base[at + 1:]
        ops = diffOps(base, new)
        self.assertLessEqual(len(ops), 3)
        self.assertEqual(applyOps(base, ops, len(new)), new)


class BadOpsTests(SynchronousTestCase):
    """
    L{applyOps} refuses a peer's bad ops with C{SYNC_BAD_MESSAGE}.
    """

    base = [_h(i) for i in range(10)]

    def assertBad(self, ops, maxChunks=100):
        e = self.assertRaises(ZoneError, applyOps, self.base, ops, maxChunks)
        self.assertEqual(e.code, "SYNC_BAD_MESSAGE")
        return e

    def test_notAList(self):
        """
        Ops that are not a list are refused.
        """
        self.assertBad({"0": 1})
        self.assertBad("abc")
        self.assertBad(None)

    def test_runOutOfRange(self):
        """
        A run that starts before the base, ends after it or keeps nothing is
        refused.
        """
        self.assertBad([[-1, 2]])
        self.assertBad([[5, 6]])
        self.assertBad([[10, 1]])
        self.assertBad([[0, 0]])
        self.assertBad([[0, -1]])

    def test_malformedRun(self):
        """
        A run that is not two integers is refused (booleans, floats, strings
        and other lengths).
        """
        for op in ([0], [0, 1, 2], [True, 1], [0, 1.0], ["0", "1"], [None, 1], {}, 3):
            self.assertBad([op])

    def test_badHash(self):
        """
        A hash that is not 43 base64url characters naming 32 bytes is
        refused.
        """
        good = encodeHash(_h(1))
        for op in ("", good[:-1], good + "A", good[:-1] + "=", good[:-1] + "+",
                   encodeHash(b"\x00" * 31), "x" * 43):
            self.assertBad([op])

    def test_overMaxChunks(self):
        """
        More than C{maxChunks} hashes are refused, whether by runs or new
        hashes, before the list is built.
        """
        self.assertBad([[0, 10], [0, 10]], maxChunks=15)
        self.assertBad([encodeHash(_h(1))] * 4, maxChunks=3)
        self.assertEqual(len(applyOps(self.base, [[0, 10], [0, 5]], 15)), 15)


class PagesTests(SynchronousTestCase):
    """
    Tests for L{pages}.
    """

    def test_emptyOps(self):
        """
        No ops are one empty page: an empty item still has its message.
        """
        self.assertEqual(pages([]), [[]])

    def test_fullListOfTenMegabytes(self):
        """
        The full list of a 10 MB item (2,500 hashes) fits one default page.
        """
        ops = fullOps([_h(i) for i in range(2500)])
        self.assertEqual(pages(ops), [ops])

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(st.lists(st.one_of(st.integers(0, 10 ** 5).map(lambda i: encodeHash(_h(i))),
                              st.tuples(st.integers(0, 10 ** 9), st.integers(1, 10 ** 9))
                              .map(list)), max_size=80),
           st.integers(60, 2000))
    def test_pagesBoundedAndComplete(self, ops, maxBytes):
        """
        Every page's JSON (as sent, and with compact separators) is at most
        C{maxBytes}, no page is empty unless the ops are, and the pages put
        together are the ops.
        """
        result = pages(ops, maxBytes)
        for page in result:
            self.assertLessEqual(len(json.dumps(page)), maxBytes)
            self.assertLessEqual(len(json.dumps(page, separators=(",", ":"))), maxBytes)
            self.assertTrue(page or not ops)
        self.assertEqual([op for page in result for op in page], ops)

    def test_tooSmall(self):
        """
        A page size that cannot hold one op is a programming error.
        """
        self.assertRaises(ValueError, pages, [encodeHash(_h(1))], 40)
