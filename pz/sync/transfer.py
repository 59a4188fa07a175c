# -*- test-case-name: tests.pz.sync.test_transfer -*-
"""
One item crossing one link: what the sender and the receiver each hold
while it is in flight.

The sender (L{Outgoing}) offers the item's chunk list, reads just the chunks
the receiver asks for from the file and cuts them into bounded frames
(L{dataFrames}); it never holds the whole item.  The receiver
(L{Incoming}) keeps the new chunk list and an L{Assembler} that writes the
new item, in chunk order, into a temporary file next to the items: the
chunks it already had come from its own current file, the others from the
frames, each checked against its hash as it completes.  Only when every
chunk is there and the whole item's hash (and, for typed items, the
chunker's own parse) holds is the file handed to the items tree to be
renamed into place; anything else discards the temporary file, so the old
item stays whole.
"""

import hashlib
import os
from typing import Iterator, Optional, Protocol

from automat import TypeMachineBuilder, pep614
from zope.interface import Interface

from pz.errors import ZoneError
from pz.sync.chunkers import chunkerFor, chunkHash
from pz.sync.messages import FRAME_DATA

__all__ = ["Outgoing", "Incoming", "ChunkSource", "Assembler", "SourceChanged", "dataFrames",
           "needRuns", "OfferInputs", "IOfferActions", "OfferCore", "OfferMachine"]


class SourceChanged(Exception):
    """
    The file a chunk was to be read from no longer holds that chunk: it was
    changed while the transfer was in flight.
    """


class ChunkSource:
    """
    Reads the chunks of one version of an item from its file, by index or by
    hash, checking each against the manifest.

    A data or PEM item is the concatenation of its chunks, so a chunk is a
    byte range of the file, read on demand; a typed item (JSON, XACML) is
    small and its chunks are the chunker's canonical parts, so it is split
    once.
    """

    def __init__(self, kind: str, absPath: str, manifest) -> None:
        self._kind = kind
        self._path = absPath
        self._manifest = manifest
        self.index = {}
        for i, h in enumerate(manifest.chunks):
            self.index.setdefault(h, i)
        self._parts = None
        self._offsets = None

    def read(self, i: int) -> bytes:
        """
        Chunk C{i}; raises L{SourceChanged} if the file does not hold it any
        more.
        """
        expected = self._manifest.chunks[i]
        try:
            if self._kind == "data":
                if self._offsets is None:
                    offsets, at = [], 0
                    for size in self._manifest.sizes:
                        offsets.append(at)
                        at += size
                    self._offsets = offsets
                with open(self._path, "rb") as f:
                    f.seek(self._offsets[i])
                    data = f.read(self._manifest.sizes[i])
            else:
                if self._parts is None:
                    with open(self._path, "rb") as f:
                        self._parts = chunkerFor(self._kind).split(f.read())
                data = self._parts[i] if i < len(self._parts) else b""
        except (OSError, ZoneError) as e:
            raise SourceChanged(str(e)) from None
        if chunkHash(data) != expected:
            raise SourceChanged(f"chunk {i} changed")
        return data

    def readHash(self, h: bytes) -> bytes:
        return self.read(self.index[h])


def dataFrames(source: ChunkSource, need, limit: int = FRAME_DATA) -> Iterator[list]:
    """
    The C{*_Data} frames for the runs C{need}: lists of (index, bytes,
    continues) entries of at most C{limit} raw bytes together.  A chunk
    larger than the room left is cut into pieces that continue in the next
    entry.  Lazy: one frame's chunks are read at a time.
    """
    frame, size = [], 0
    for start, count in need:
        for i in range(start, start + count):
            data = source.read(i)
            pos = 0
            while True:
                piece = data[pos:pos + limit - size]
                pos += len(piece)
                continues = pos < len(data)
                frame.append((i, piece, continues))
                size += len(piece)
                if size >= limit:
                    yield frame
                    frame, size = [], 0
                if not continues:
                    break
    if frame:
        yield frame


def needRuns(indexes) -> list:
    """
    Ascending indexes as C{[start, count]} runs.
    """
    runs = []
    for i in indexes:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, 1])
    return runs


class Assembler:
    """
    Writes a new version of an item, chunk by chunk in order, into a
    temporary file of the items tree, checking as it goes.

    @ivar cursor: the index of the next chunk to be written.
    """

    def __init__(self, tree, kind: str, itemHash: bytes, size: int, chunks, need,
                 local: Optional[ChunkSource], maxSize: int) -> None:
        self._kind = kind
        self._hash = itemHash
        self._size = size
        self.chunks = chunks
        self.need = frozenset(need)
        self._local = local
        self._maxSize = maxSize
        self._file, self.tempPath = tree.tempFile()
        self._whole = hashlib.sha256()
        self._written = 0
        self._parts = []
        self._piece = None
        self._pieceSize = 0
        self.cursor = 0

    def _write(self, data: bytes) -> None:
        self._written += len(data)
        if self._written > self._maxSize:
            raise ZoneError("SYNC_TOO_LARGE", "the item is larger than the size limit")
        if self._kind == "data":
            self._whole.update(data)
            self._file.write(data)

    def advance(self) -> None:
        """
        Copy the chunks this side already holds, up to the next one it
        asked for.
        """
        while self.cursor < len(self.chunks) and self.cursor not in self.need:
            h = self.chunks[self.cursor]
            try:
                data = self._local.readHash(h)
            except (SourceChanged, KeyError, AttributeError):
                raise ZoneError("SYNC_PENDING", "this side's copy changed during the transfer") from None
            self._write(data)
            if self._kind != "data":
                self._parts.append(data)
            self.cursor += 1

    def feed(self, index: int, data: bytes, continues: bool) -> None:
        """
        A piece of chunk C{index} arrived.
        """
        if index not in self.need or index < self.cursor:
            raise ZoneError("SYNC_NOT_ASKED", f"chunk {index} was not asked for")
        if index != self.cursor:
            raise ZoneError("SYNC_BAD_MESSAGE", f"chunk {index} came before chunk {self.cursor}")
        if self._piece is None:
            self._piece = hashlib.sha256()
            self._pieceSize = 0
            self._pieceParts = []
        self._piece.update(data)
        self._pieceSize += len(data)
        self._write(data)
        if self._kind != "data":
            self._pieceParts.append(data)
        if continues:
            return
        if self._piece.digest() != self.chunks[index]:
            raise ZoneError("SYNC_HASH_MISMATCH", f"chunk {index} does not match its hash")
        if self._kind != "data":
            self._parts.append(b"".join(self._pieceParts))
        self._piece = None
        self.cursor += 1
        self.advance()

    @property
    def complete(self) -> bool:
        return self.cursor >= len(self.chunks) and self._piece is None

    def finish(self) -> Optional[bytes]:
        """
        Check the whole item and close the temporary file.  Returns the
        canonical bytes of a typed item (for the validators), C{None} for a
        data item.
        """
        canonical = None
        if self._kind != "data":
            chunker = chunkerFor(self._kind)
            try:
                canonical = chunker.join(list(self._parts))
            except ZoneError:
                raise
            except Exception:
                raise ZoneError("SYNC_BAD_ITEM", f"the chunks do not make a valid {self._kind} item") from None
            if not isinstance(canonical, bytes):
                raise ZoneError("SYNC_BAD_ITEM", f"the chunks do not make a valid {self._kind} item")
            if hashlib.sha256(canonical).digest() != self._hash:
                raise ZoneError("SYNC_HASH_MISMATCH", "the item does not match its hash")
            try:
                again = [chunkHash(c) for c in chunker.split(canonical)]
            except ZoneError:
                raise
            except Exception:
                raise ZoneError("SYNC_BAD_ITEM", f"not a valid {self._kind} item") from None
            if tuple(again) != tuple(self.chunks):
                raise ZoneError("SYNC_BAD_ITEM", f"not a canonical {self._kind} item")
            self._file.write(canonical)
            size = len(canonical)
        else:
            if self._whole.digest() != self._hash:
                raise ZoneError("SYNC_HASH_MISMATCH", "the item does not match its hash")
            size = self._written
        if size != self._size:
            raise ZoneError("SYNC_HASH_MISMATCH", "the item does not have the announced size")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return canonical

    def discard(self) -> None:
        """
        Drop the temporary file: nothing of this transfer is written.
        """
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.tempPath)
        except OSError:
            pass


class OfferInputs(Protocol):
    """
    What happens to an item this side offered: the receiver's answers and
    the end of the data.
    """

    def need(self, runs: tuple) -> None:
        "The receiver lacks the chunks in these runs (C{*_Change} with need)."

    def haveAll(self) -> None:
        "The receiver had every chunk; its acknowledgement follows."

    def rebase(self) -> None:
        "The receiver does not hold the base: offer the full hash list."

    def changeRefused(self, refused: dict, winner: object) -> None:
        "The receiver refused the offer (C{*_Change} with refused)."

    def framesSent(self) -> None:
        "The last data frame went out."

    def acked(self) -> None:
        "The receiver wrote the version (C{*_Ack})."

    def ackRefused(self, refused: dict, winner: object) -> None:
        "The receiver refused the version once it had it all (C{*_Ack} with refused)."

    def stage(self) -> str:
        "The name of the current state."


class IOfferActions(Interface):
    """
    What the offer machine asks the engine to do for one transfer.
    """

    def sendData(offer, runs) -> None:
        "Send the chunks in C{runs}, in bounded frames."

    def offerAgain(offer) -> None:
        "Send the hash list again, in full."

    def agreed(offer) -> None:
        "The receiver holds the version: the transfer is over."

    def refusedBy(offer, refused, winner) -> None:
        "The receiver refused the version: the transfer is over."

    def stale(offer, what) -> None:
        "An answer that does not fit where the transfer is: ignore it."


class OfferCore:
    """
    The offer machine's dependencies: the engine's actions and the transfer.
    """

    def __init__(self, actions, offer) -> None:
        self.actions = IOfferActions(actions)
        self.offer = offer


def _buildOffer():
    builder = TypeMachineBuilder(OfferInputs, OfferCore)
    Offered = builder.state("Offered")
    Sending = builder.state("Sending")
    Acking = builder.state("Acking")
    Done = builder.state("Done")

    @pep614(Offered.upon(OfferInputs.need).to(Sending))
    def sendData(inputs: OfferInputs, core: OfferCore, runs: tuple) -> None:
        core.actions.sendData(core.offer, runs)

    Offered.upon(OfferInputs.haveAll).to(Acking).returns(None)

    @pep614(Offered.upon(OfferInputs.rebase).loop())
    def offerAgain(inputs: OfferInputs, core: OfferCore) -> None:
        core.actions.offerAgain(core.offer)

    @pep614(Offered.upon(OfferInputs.changeRefused).to(Done))
    def changeRefused(inputs: OfferInputs, core: OfferCore, refused: dict, winner: object) -> None:
        core.actions.refusedBy(core.offer, refused, winner)

    Sending.upon(OfferInputs.framesSent).to(Acking).returns(None)

    for state in (Offered, Sending, Acking):
        @pep614(state.upon(OfferInputs.acked).to(Done))
        def agreed(inputs: OfferInputs, core: OfferCore) -> None:
            core.actions.agreed(core.offer)

        @pep614(state.upon(OfferInputs.ackRefused).to(Done))
        def ackRefused(inputs: OfferInputs, core: OfferCore, refused: dict, winner: object) -> None:
            core.actions.refusedBy(core.offer, refused, winner)

    # A second answer to one offer (a duplicate, or one that crossed a
    # newer offer of the same version) changes nothing.
    for state in (Sending, Acking, Done):
        @pep614(state.upon(OfferInputs.need).loop())
        def staleNeed(inputs: OfferInputs, core: OfferCore, runs: tuple) -> None:
            core.actions.stale(core.offer, "need")

        @pep614(state.upon(OfferInputs.haveAll).loop())
        def staleHaveAll(inputs: OfferInputs, core: OfferCore) -> None:
            core.actions.stale(core.offer, "have all")

        @pep614(state.upon(OfferInputs.rebase).loop())
        def staleRebase(inputs: OfferInputs, core: OfferCore) -> None:
            core.actions.stale(core.offer, "rebase")

        @pep614(state.upon(OfferInputs.changeRefused).loop())
        def staleRefusal(inputs: OfferInputs, core: OfferCore, refused: dict, winner: object) -> None:
            core.actions.stale(core.offer, "refusal")

    for state in (Offered, Acking, Done):
        state.upon(OfferInputs.framesSent).loop().returns(None)
    Done.upon(OfferInputs.acked).loop().returns(None)

    @pep614(Done.upon(OfferInputs.ackRefused).loop())
    def staleAckRefusal(inputs: OfferInputs, core: OfferCore, refused: dict, winner: object) -> None:
        core.actions.stale(core.offer, "refusal")

    for state, name in ((Offered, "Offered"), (Sending, "Sending"), (Acking, "Acking"), (Done, "Done")):
        state.upon(OfferInputs.stage).loop().returns(name)
    return builder.build()


#: One per item offered: decides what each answer of the receiver means
#: where the transfer stands, and asks the engine to act.
OfferMachine = _buildOffer()


class Outgoing:
    """
    An item this side offered to a peer: the version, the base it was
    described against, and how far it got.

    @ivar machine: the L{OfferMachine} of this transfer (C{Offered}: hash
        list sent, waiting for the change; C{Sending}: data frames going
        out; C{Acking}: waiting for the acknowledgement; C{Done}).
    """

    def __init__(self, path: str, rule, record, manifest, base: Optional[bytes],
                 full: bool, planned: bool, task, actions) -> None:
        self.path = path
        self.rule = rule
        self.record = record
        self.manifest = manifest
        self.base = base
        self.full = full
        self.planned = planned
        self.task = task
        self.machine = OfferMachine(OfferCore(actions, self))
        self.frames = None
        self.nextFrame = None
        self.resendOnPending = False

    @property
    def hash(self) -> Optional[bytes]:
        return self.record.hash

    @property
    def chunkCount(self) -> int:
        return len(self.manifest.chunks) if self.manifest is not None else 0


class Incoming:
    """
    An item a peer is offering this side: the pages of its hash list as they
    arrive, then the assembler while its chunks arrive.

    @ivar stage: C{"hashing"} (more pages to come), C{"data"} (chunks
        asked for), C{"done"}.
    @ivar expectCurrent: the hub's current hash when it decided for the
        update; checked again before writing.
    @ivar keepCurrent: the current copy loses and must be kept as a
        conflict copy when the new one is written.
    """

    def __init__(self, first, rule, task) -> None:
        self.path = first.path
        self.rule = rule
        self.version = first.version
        self.hash = first.hash
        self.size = first.size
        self.base = first.base
        self.deleted = first.deleted
        self.ops = list(first.ops)
        self.nextPart = 1
        self.more = first.more
        self.task = task
        self.stage = "hashing"
        self.assembler: Optional[Assembler] = None
        self.expectCurrent = None
        self.keepCurrent = False

    def discard(self) -> None:
        self.stage = "done"
        if self.assembler is not None:
            self.assembler.discard()
            self.assembler = None
