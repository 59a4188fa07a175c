# -*- test-case-name: tests.pz.sync.test_chunkers -*-
"""
Items cut into chunks by their kind, and the manifest that names them.

Synchronisation sends only the chunks a peer lacks, so a chunk must change
only where the person changed something:

  - C{data} (any user file, text or binary): content-defined chunks, as in
    "FastCDC: a Fast and Efficient Content-Defined Chunking Approach for Data
    Deduplication", through the compiled C{pyfastcdc}; an insertion moves the
    cut points of one or two chunks only, never of the rest of the file.
  - C{json} (preferences, user details, service cache, context): one chunk
    per top-level key, so one changed preference is one chunk.
  - C{xacml} (the policy): one chunk per PolicySet, Policy and Rule in
    canonical XML ("Canonical XML Version 2.0"), so re-indenting the file or
    reordering attributes is no change and a changed Rule is one chunk.
  - C{pem} (certificates, the CRL): the whole file, which is small and only
    ever replaced.

A chunk and an item are named by SHA-256 (with the SHA extensions of current
processors it is about twice as fast as BLAKE2b), written on the wire as
unpadded base64url.
"""

import abc
import base64
import binascii
import hashlib
import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence
from xml.etree import ElementTree

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _parseXML
from pyfastcdc import FastCDC

from pz.errors import ZoneError

__all__ = [
    "Chunker", "DataChunker", "PEMChunker", "JSONChunker", "XACMLChunker", "CHUNKERS",
    "chunkerFor", "Manifest", "manifestOf", "manifestOfFile", "chunksOfFile", "chunkHash",
    "encodeHash", "decodeHash", "HASH_SIZE",
]

#: Bytes in a chunk or item hash (SHA-256).
HASH_SIZE = 32

#: Bytes read from a file at a time while cutting it: large enough that
#: system calls cost nothing, small enough that memory stays bounded.
READ_BLOCK = 1024 * 1024

#: From this size on, a file's whole-item hash is computed on a helper
#: thread beside its chunks: half again as fast on two cores, and not worth
#: a thread for less.
PARALLEL_SIZE = 4 * 1024 * 1024


def chunkHash(data) -> bytes:
    """
    The SHA-256 digest of C{data} (bytes or a memoryview): a chunk's name,
    and over the canonical bytes an item's.
    """
    return hashlib.sha256(data).digest()


def encodeHash(digest: bytes) -> str:
    """
    C{digest} as unpadded base64url (43 characters), the form every hash
    takes on the wire.
    """
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


_ENCODED = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def decodeHash(text) -> bytes:
    """
    The 32-byte digest that C{text} encodes.

    @raise ZoneError: C{SYNC_BAD_MESSAGE} for anything that is not exactly
        43 base64url characters naming 32 bytes, so a peer's garbage never
        reaches a lookup.
    """
    if not isinstance(text, str) or not _ENCODED.match(text):
        raise ZoneError("SYNC_BAD_MESSAGE", "a hash is not 43 base64url characters")
    try:
        digest = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        raise ZoneError("SYNC_BAD_MESSAGE", "a hash is not valid base64url")
    if len(digest) != HASH_SIZE or encodeHash(digest) != text:
        raise ZoneError("SYNC_BAD_MESSAGE", "a hash is not the encoding of 32 bytes")
    return digest


def _bad(reason: str) -> ZoneError:
    return ZoneError("SYNC_BAD_ITEM", reason)


class Chunker(abc.ABC):
    """
    Cuts one kind of item into chunks and puts them back together.

    Chunkers hold no state between calls (FastCDC's settings are read-only,
    each cut has its own iterator), so one instance serves every item and
    every thread.

    @ivar kind: the item kind this chunker serves.
    """

    kind = ""

    @abc.abstractmethod
    def split(self, data: bytes) -> list:
        """
        The chunks of C{data}, in order.

        @raise ZoneError: C{SYNC_BAD_ITEM} when C{data} is not a valid item of
            this kind; the reason never names a path.
        """

    def join(self, chunks: Sequence[bytes]) -> bytes:
        """
        The canonical bytes of the item made of C{chunks}: for every C{x}
        that L{split} accepts, C{split(join(split(x))) == split(x)}.

        @raise ZoneError: C{SYNC_BAD_ITEM} when the chunks do not make an item
            of this kind.
        """
        return b"".join(chunks)


class DataChunker(Chunker):
    """
    Content-defined chunks for any file: the cut points depend on the bytes
    around them, not on their offsets, so an edit changes the chunk or two
    it falls in.  C{join(split(x)) == x}.
    """

    kind = "data"

    #: The average chunk is near 4 KiB (the library adds C{minSize} to it),
    #: none is under 1 KiB or over 16 KiB: small enough that an edit resends
    #: little, large enough that the hash list stays a small fraction of the
    #: data.
    avgSize = 4096
    minSize = 1024
    maxSize = 16384

    def __init__(self):
        self._cdc = FastCDC(self.avgSize, min_size=self.minSize, max_size=self.maxSize)

    def split(self, data: bytes) -> list:
        return [bytes(chunk.data) for chunk in self._cdc.cut_buf(data)]

    def cutFile(self, f, whole=None, pool=None) -> Iterator[memoryview]:
        """
        The chunks of the open binary file C{f}, read in bounded blocks; each
        memoryview is valid only until the next one is asked for.

        The cuts are those L{split} makes over the whole content: FastCDC
        decides a cut from at most C{maxSize} bytes after the chunk's start,
        so a chunk is final once that many bytes past its start are in the
        block, and the rest is carried into the next block.

        @param whole: a C{hashlib} object fed every byte read, in order: the
            whole item's hash in the same pass as the chunks.
        @param pool: an executor with one worker on which C{whole} is fed,
            so that hash runs on another core while this thread cuts and
            hashes the chunks of the same block (C{hashlib} releases the GIL
            for large updates); the block is not touched again until it is
            done.
        """
        buf = bytearray(READ_BLOCK + self.maxSize)
        view = memoryview(buf)
        held = 0
        eof = False
        while not eof or held:
            fresh = held
            while not eof and held < len(buf):
                n = f.readinto(view[held:])
                if not n:
                    eof = True
                else:
                    held += n
            feeding = None
            if whole is not None and held > fresh:
                if pool is None:
                    whole.update(view[fresh:held])
                else:
                    feeding = pool.submit(whole.update, view[fresh:held])
            try:
                carried = 0
                for chunk in self._cdc.cut_buf(view[:held]):
                    if not eof and chunk.offset + self.maxSize > held:
                        carried = held - chunk.offset
                        break
                    yield chunk.data
            finally:
                if feeding is not None:
                    feeding.result()
            if carried:
                buf[:carried] = buf[held - carried:held]
            held = carried
            if eof:
                return


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n.*?-----END \1-----", re.S)


class PEMChunker(Chunker):
    """
    The whole file as one chunk: certificates and CRLs are small and are
    replaced, never edited in place.  C{join(split(x)) == x}.
    """

    kind = "pem"

    def split(self, data: bytes) -> list:
        if not _PEM_BLOCK.search(data):
            raise _bad("no PEM block in the item")
        return [bytes(data)]


def _noDuplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _bad(f"duplicate key {key[:64]!r} in the JSON item")
        seen[key] = value
    return seen


def _finiteFloat(text):
    value = float(text)
    if not math.isfinite(value):
        raise _bad("a JSON number is too large")
    return value


def _refuseConstant(name):
    raise _bad(f"{name} is not JSON")


def _loadJSON(data: bytes):
    try:
        text = bytes(data).decode("utf-8-sig")
        return json.loads(text, object_pairs_hook=_noDuplicates, parse_float=_finiteFloat,
                          parse_constant=_refuseConstant)
    except UnicodeDecodeError:
        raise _bad("the JSON item is not UTF-8")
    except RecursionError:
        raise _bad("the JSON item is nested too deeply")
    except ValueError as e:
        raise _bad(f"malformed JSON: {e}")


def _dumpCompact(value) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("the JSON item holds a lone surrogate")
    except RecursionError:
        raise _bad("the JSON item is nested too deeply")


class JSONChunker(Chunker):
    """
    One chunk per top-level key, in file order: C{[key, value]} as compact
    JSON.  A preference changed on one device is then one chunk on the
    wire, and reformatting the file is no change.  The canonical form is
    the object indented by two spaces.
    """

    kind = "json"

    def split(self, data: bytes) -> list:
        value = _loadJSON(data)
        if not isinstance(value, dict):
            raise _bad("the JSON item is not an object")
        return [_dumpCompact([key, item]) for key, item in value.items()]

    def join(self, chunks: Sequence[bytes]) -> bytes:
        whole = {}
        for chunk in chunks:
            pair = _loadJSON(chunk)
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise _bad("a JSON chunk is not a [key, value] pair")
            if pair[0] in whole:
                raise _bad("two JSON chunks have the same key")
            whole[pair[0]] = pair[1]
        try:
            return (json.dumps(whole, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        except (UnicodeEncodeError, RecursionError):
            raise _bad("the JSON item cannot be written as UTF-8")


#: The elements that are chunks of their own: XACML's, and the lower-case
#: ones of the webinos policy format.
_XACML_PARTS = frozenset({"PolicySet", "Policy", "Rule", "policy-set", "policy", "rule"})

#: Where a nested chunk sat inside its parent's chunk.  The namespace is
#: ours, so no policy can hold one (L{XACMLChunker.split} refuses it).
_SLOT = "{urn:x-pz:sync}slot"


def _localName(tag) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _isPart(element) -> bool:
    return _localName(element.tag) in _XACML_PARTS


def _parse(text) -> ElementTree.Element:
    try:
        return _parseXML(text, forbid_dtd=True)
    except DefusedXmlException:
        raise _bad("the XML item has a DTD or entities, which are refused")
    except ElementTree.ParseError as e:
        raise _bad(f"malformed XML: {e}")


def _soleNamespace(element):
    """
    The namespace every element of C{element} (slots aside) is in, so the
    serialised form declares it once as the default; L{None} when they
    differ or one has none.
    """
    spaces = set()
    for e in element.iter():
        if e.tag == _SLOT:
            continue
        if not e.tag.startswith("{"):
            return None
        spaces.add(e.tag[1:].partition("}")[0])
    return spaces.pop() if len(spaces) == 1 else None


def _unqualified(element, namespace: str):
    """
    A copy of C{element} with C{namespace} taken off every tag and declared
    once as the default on the copy's root, so the canonical form reads like
    the XACML a person writes rather than with generated prefixes.
    """
    strip = len(namespace) + 2

    def copy(e):
        tag = e.tag if e.tag == _SLOT else e.tag[strip:]
        c = ElementTree.Element(tag, dict(e.attrib))
        c.text, c.tail = e.text, e.tail
        c.extend(copy(child) for child in e)
        return c

    top = copy(element)
    top.set("xmlns", namespace)
    return top


def _serialise(element, stripText: bool) -> str:
    namespace = _soleNamespace(element)
    if namespace is not None:
        element = _unqualified(element, namespace)
    text = ElementTree.tostring(element, encoding="unicode")
    return ElementTree.canonicalize(text, strip_text=stripText)


def _cutOut(element):
    """
    A copy of C{element} with each nested PolicySet, Policy or Rule replaced
    by a slot, and those nested elements in document order.
    """
    nested = []

    def copy(e):
        c = ElementTree.Element(e.tag, dict(e.attrib))
        c.text = e.text
        for child in e:
            if _isPart(child):
                slot = ElementTree.SubElement(c, _SLOT)
                nested.append(child)
            else:
                slot = copy(child)
                c.append(slot)
            slot.tail = child.tail
        return c

    return copy(element), nested


class XACMLChunker(Chunker):
    """
    One chunk per PolicySet, Policy and Rule: the element in canonical XML
    with its nested PolicySets, Policies and Rules cut out (a slot marks
    where each sat), after a line giving its depth.  Whitespace-only text is
    dropped and attributes are in canonical order, so formatting noise is no
    change, and a changed Rule changes its own chunk only.

    The XML is parsed with C{defusedxml} with DTDs forbidden: an entity
    expansion bomb or an external entity is refused, never expanded.
    Comments are not kept.
    """

    kind = "xacml"

    def split(self, data: bytes) -> list:
        root = _parse(bytes(data))
        if not _isPart(root):
            raise _bad("the XML item's root is not a PolicySet or Policy")
        try:
            for e in root.iter():
                if not isinstance(e.tag, str) or e.tag.startswith("{urn:x-pz:sync}"):
                    raise _bad("the XML item uses a reserved element")
            chunks = []
            pending = [(root, 0)]
            while pending:
                element, depth = pending.pop()
                copy, nested = _cutOut(element)
                copy.tail = None
                body = _serialise(copy, stripText=True)
                chunks.append(f"{depth}\n{body}".encode("utf-8"))
                pending.extend((child, depth + 1) for child in reversed(nested))
            return chunks
        except RecursionError:
            raise _bad("the XML item is nested too deeply")

    def join(self, chunks: Sequence[bytes]) -> bytes:
        try:
            return self._join(chunks)
        except RecursionError:
            raise _bad("the XML item is nested too deeply")

    def _join(self, chunks):
        root = None
        open_ = []  # per depth: [slots still to fill] of the last chunk there
        for chunk in chunks:
            head, newline, body = bytes(chunk).partition(b"\n")
            if not newline or not re.fullmatch(rb"0|[1-9][0-9]{0,5}", head):
                raise _bad("an XML chunk has no depth line")
            depth = int(head)
            element = _parse(body)
            if not _isPart(element):
                raise _bad("an XML chunk is not a PolicySet, Policy or Rule")
            parents = {child: parent for parent in element.iter() for child in parent}
            slots = []
            for e in element.iter():
                if e is not element and _isPart(e):
                    raise _bad("an XML chunk holds a nested part")
                if e.tag == _SLOT:
                    slots.append((parents[e], e))
            if depth == 0:
                if root is not None:
                    raise _bad("two XML chunks are roots")
                root = element
            else:
                if root is None or depth > len(open_):
                    raise _bad("an XML chunk has no parent")
                waiting = open_[depth - 1]
                if not waiting:
                    raise _bad("an XML chunk has no place in its parent")
                parent, slot = waiting.pop(0)
                index = list(parent).index(slot)
                element.tail = slot.tail
                parent[index] = element
            del open_[depth:]
            open_.append(slots)
        if root is None:
            raise _bad("the XML item has no root chunk")
        if any(open_):
            raise _bad("XML chunks are missing")
        ElementTree.indent(root, space="  ")
        return (_serialise(root, stripText=False) + "\n").encode("utf-8")


#: One chunker per item kind.
CHUNKERS = {c.kind: c for c in (DataChunker(), PEMChunker(), JSONChunker(), XACMLChunker())}


def chunkerFor(kind: str) -> Chunker:
    """
    The chunker of C{kind}.

    @raise ZoneError: C{SYNC_BAD_MESSAGE} for a kind that does not exist.
    """
    try:
        return CHUNKERS[kind]
    except (KeyError, TypeError):
        raise ZoneError("SYNC_BAD_MESSAGE", f"no item kind {str(kind)[:32]!r}")


@attrs.frozen
class Manifest:
    """
    What names an item's content: the hash and size of its canonical bytes
    and the hash and length of each chunk, in order.
    """

    hash: bytes
    size: int
    chunks: tuple
    sizes: tuple


def manifestOf(kind: str, data: bytes) -> Manifest:
    """
    The manifest of C{data} as an item of C{kind}; for the typed kinds the
    item hash is over the canonical form, so a reformatted file has the same
    hash as the original.

    @raise ZoneError: C{SYNC_BAD_ITEM} for a malformed typed item.
    """
    chunker = chunkerFor(kind)
    chunks = chunker.split(data)
    canonical = data if kind in ("data", "pem") else chunker.join(chunks)
    return Manifest(chunkHash(canonical), len(canonical),
                    tuple(chunkHash(c) for c in chunks), tuple(len(c) for c in chunks))


def _tooLarge(maxSize: int) -> ZoneError:
    return ZoneError("SYNC_TOO_LARGE", f"the item is over the size limit of {maxSize} bytes")


def _readAll(f, maxSize: int) -> bytes:
    data = f.read(maxSize + 1)
    if len(data) > maxSize:
        raise _tooLarge(maxSize)
    return data


def manifestOfFile(kind: str, path: str, maxSize: int) -> Manifest:
    """
    The manifest of the file at C{path}.  A data item is read in bounded
    blocks, chunked and hashed in one pass (the whole-item hash is fed the
    same chunks), so memory stays small whatever the file's size; a typed
    item is small and read whole.

    @raise ZoneError: C{SYNC_TOO_LARGE} over C{maxSize} bytes (checked while
        reading too, for a file that grows meanwhile); C{SYNC_BAD_ITEM} for a
        malformed typed item.
    @raise OSError: when the file cannot be read.
    """
    chunker = chunkerFor(kind)
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size > maxSize:
            raise _tooLarge(maxSize)
        if kind != "data":
            return manifestOf(kind, _readAll(f, maxSize))
        whole = hashlib.sha256()
        sha256 = hashlib.sha256
        hashes = []
        sizes = []
        size = 0
        pool = ThreadPoolExecutor(1) if os.fstat(f.fileno()).st_size >= PARALLEL_SIZE else None
        try:
            for data in chunker.cutFile(f, whole, pool):
                n = len(data)
                size += n
                if size > maxSize:
                    raise _tooLarge(maxSize)
                hashes.append(sha256(data).digest())
                sizes.append(n)
        finally:
            if pool is not None:
                pool.shutdown()
    return Manifest(whole.digest(), size, tuple(hashes), tuple(sizes))


def chunksOfFile(kind: str, path: str) -> Iterator[tuple]:
    """
    C{(index, chunk bytes)} for each chunk of the file at C{path}, in order:
    streamed for a data item (the sender reads only the chunks it sends),
    read whole for a typed one.

    @raise ZoneError: C{SYNC_BAD_ITEM} for a malformed typed item.
    @raise OSError: when the file cannot be read.
    """
    chunker = chunkerFor(kind)
    with open(path, "rb", buffering=0) as f:
        if kind == "data":
            for index, data in enumerate(chunker.cutFile(f)):
                yield index, bytes(data)
            return
        data = f.read()
    yield from enumerate(chunker.split(data))
