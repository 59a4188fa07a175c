"""
Tests for L{pz.sync.transfer}: framing, need runs, assembly.
"""

import hashlib
import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.sync.chunkers import manifestOf
from pz.sync.items import ItemTree
from pz.sync.transfer import (
    Assembler, ChunkSource, IOfferActions, OfferCore, OfferMachine, SourceChanged, dataFrames, needRuns,
)


class TransferTests(SynchronousTestCase):
    """
    Reading chunks, cutting frames, writing the new version.
    """

    def setUp(self):
        self.tree = ItemTree(os.path.join(self.mktemp(), "zone"))
        self.tree.create()

    def _file(self, kind, path, data):
        self.tree.write(path, data)
        return ChunkSource(kind, self.tree.resolve(path), manifestOf(kind, data))

    def test_needRuns(self):
        """
        Ascending indexes become [start, count] runs.
        """
        self.assertEqual(needRuns([0, 1, 2, 5, 7, 8]), [[0, 3], [5, 1], [7, 2]])
        self.assertEqual(needRuns([]), [])

    def test_framesCutLargeChunks(self):
        """
        A chunk larger than the frame's room is cut into pieces that
        continue; no frame holds more than the limit.
        """
        pem = b"-----BEGIN X509 CRL-----\n" + b"A" * 3000 + b"\n-----END X509 CRL-----\n"
        source = self._file("pem", "crl.pem", pem)
        frames = list(dataFrames(source, [[0, 1]], limit=1000))
        self.assertEqual([sum(len(d) for _, d, _ in f) for f in frames], [1000, 1000, 1000, len(pem) - 3000])
        self.assertEqual([e[2] for f in frames for e in f], [True, True, True, False])
        self.assertEqual(b"".join(d for f in frames for _, d, _ in f), pem)

    def test_sourceChanged(self):
        """
        Reading a chunk the file no longer holds raises SourceChanged.
        """
        source = self._file("data", "userdata/x.bin", b"a" * 5000)
        with open(self.tree.resolve("userdata/x.bin"), "wb") as f:
            f.write(b"b" * 5000)
        self.assertRaises(SourceChanged, source.read, 0)

    def test_assemblePieces(self):
        """
        Pieces of one chunk, then local chunks, make the item; its hash is
        checked at the end.
        """
        data = os.urandom(40000)
        manifest = manifestOf("data", data)
        local = self._file("data", "userdata/x.bin", data)
        need = [1]
        a = Assembler(self.tree, "data", manifest.hash, manifest.size, manifest.chunks, need, local,
                      10 ** 6)
        a.advance()
        self.assertEqual(a.cursor, 1)
        start = manifest.sizes[0]
        chunk = data[start:start + manifest.sizes[1]]
        a.feed(1, chunk[:100], True)
        a.feed(1, chunk[100:], False)
        self.assertTrue(a.complete)
        a.finish()
        with open(a.tempPath, "rb") as f:
            self.assertEqual(f.read(), data)
        a.discard()
        self.assertFalse(os.path.exists(a.tempPath))

    def test_assembleRefusals(self):
        """
        A chunk out of order, not asked for, or not matching its hash is
        refused with its own code.
        """
        chunks = [b"a" * 2000, b"b" * 2000, b"c" * 2000]
        hashes = [hashlib.sha256(c).digest() for c in chunks]
        whole = hashlib.sha256(b"".join(chunks)).digest()

        def make():
            return Assembler(self.tree, "data", whole, 6000, hashes, [0, 2], None, 10 ** 6)

        for index, data, code in [(1, chunks[1], "SYNC_NOT_ASKED"), (2, chunks[2], "SYNC_BAD_MESSAGE"),
                                  (0, b"forged", "SYNC_HASH_MISMATCH")]:
            a = make()
            self.assertEqual(self.assertRaises(ZoneError, a.feed, index, data, False).code, code)
            a.discard()
        a = Assembler(self.tree, "data", whole, 6000, hashes, [0, 1, 2], None, 5000)
        a.feed(0, chunks[0], False)
        a.feed(1, chunks[1], False)
        self.assertEqual(self.assertRaises(ZoneError, a.feed, 2, chunks[2], False).code, "SYNC_TOO_LARGE")
        a.discard()
        self.assertEqual(os.listdir(self.tree.tmpPath), [])


@implementer(IOfferActions)
class _Recorder:
    """
    Records what the offer machine asks for.
    """

    def __init__(self):
        self.calls = []

    def sendData(self, offer, runs):
        self.calls.append(("sendData", runs))

    def offerAgain(self, offer):
        self.calls.append(("offerAgain",))

    def agreed(self, offer):
        self.calls.append(("agreed",))

    def refusedBy(self, offer, refused, winner):
        self.calls.append(("refusedBy", refused["code"]))

    def stale(self, offer, what):
        self.calls.append(("stale", what))


class OfferMachineTests(SynchronousTestCase):
    """
    The offer machine alone, against a recorder of the actions it asks for.
    """

    def _machine(self):
        recorder = _Recorder()
        return OfferMachine(OfferCore(recorder, object())), recorder

    def test_flow(self):
        """
        need -> data; last frame -> waiting; ack -> agreed.
        """
        m, r = self._machine()
        m.need(((0, 2),))
        self.assertEqual(m.stage(), "Sending")
        m.framesSent()
        self.assertEqual(m.stage(), "Acking")
        m.acked()
        self.assertEqual((m.stage(), r.calls), ("Done", [("sendData", ((0, 2),)), ("agreed",)]))

    def test_rebaseAndRefusal(self):
        """
        rebase offers again and stays; a refusal ends the transfer.
        """
        m, r = self._machine()
        m.rebase()
        m.changeRefused({"code": "SYNC_PENDING", "message": ""}, None)
        self.assertEqual((m.stage(), r.calls), ("Done", [("offerAgain",), ("refusedBy", "SYNC_PENDING")]))

    def test_noInputRaises(self):
        """
        Every input in every state has a transition (late answers are
        ignored), so no NoTransition can reach the engine.
        """
        refused = {"code": "SYNC_BAD_ITEM", "message": ""}
        inputs = [lambda m: m.need(((0, 1),)), lambda m: m.haveAll(), lambda m: m.rebase(),
                  lambda m: m.changeRefused(refused, None), lambda m: m.framesSent(),
                  lambda m: m.acked(), lambda m: m.ackRefused(refused, None), lambda m: m.stage()]
        into = {"Offered": [], "Sending": [lambda m: m.need(((0, 1),))],
                "Acking": [lambda m: m.haveAll()], "Done": [lambda m: m.acked()]}
        for state, path in into.items():
            for poke in inputs:
                m, r = self._machine()
                for step in path:
                    step(m)
                self.assertEqual(m.stage(), state)
                poke(m)
