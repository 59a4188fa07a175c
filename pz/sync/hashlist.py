# -*- test-case-name: tests.pz.sync.test_hashlist -*-
"""
A chunk-hash list sent as its difference from one the receiver holds.

Listing every chunk hash of a large item would cost more than rsync sends
in all (32 bytes per 4 KiB chunk is 80 KB for 10 MB), so a sender names the
hash list the receiver last acknowledged and sends only runs kept from it
plus the hashes that are new, in the spirit of the hash exchange of the
"webinos Synchronisation specification".  An edit in the middle of a large
file is then a handful of ops: C{[0, 1249], "<hash>", [1250, 1250]}.

Ops are JSON values: a list C{[start, count]} keeps C{base[start:start +
count]}; a string is one new hash, base64url-encoded.
"""

import json
from typing import Sequence

from pz.errors import ZoneError
from pz.sync.chunkers import decodeHash, encodeHash

__all__ = ["diffOps", "fullOps", "applyOps", "pages"]


def diffOps(base: Sequence[bytes], new: Sequence[bytes]) -> list:
    """
    Ops that turn C{base} into C{new}.

    One pass over C{new}: where a hash is found in C{base}, the run kept is
    extended as far as both lists agree.  A hash that occurs more than once
    in C{base} (a chunk repeated in the file) is looked for first where the
    previous run ended, then one further (the chunk there was replaced),
    then at its first occurrence, so the runs follow the file's own order
    around an edit.  Linear in the lengths of both lists.
    """
    where = {}
    for index, digest in enumerate(base):
        where.setdefault(digest, index)
    ops = []
    i = 0
    following = 0  # the base index just after the last run kept
    n = len(new)
    m = len(base)
    while i < n:
        digest = new[i]
        if following < m and base[following] == digest:
            start = following
        elif following + 1 < m and base[following + 1] == digest:
            start = following + 1
        else:
            start = where.get(digest)
        if start is None:
            ops.append(encodeHash(digest))
            i += 1
            continue
        count = 1
        while i + count < n and start + count < m and base[start + count] == new[i + count]:
            count += 1
        ops.append([start, count])
        following = start + count
        i += count
    return ops


def fullOps(new: Sequence[bytes]) -> list:
    """
    Ops naming every hash of C{new}: what is sent when the receiver holds no
    common base.
    """
    return [encodeHash(digest) for digest in new]


def _isIndex(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def applyOps(base: Sequence[bytes], ops, maxChunks: int) -> list:
    """
    The hash list that C{ops} (from a peer) make of C{base}.

    @raise ZoneError: C{SYNC_BAD_MESSAGE} when C{ops} is not a list, an op is
        neither a run nor a hash, a run lies outside C{base} or keeps
        nothing, a hash is not 32 bytes of base64url, or the result would
        hold more than C{maxChunks} hashes (checked before it is built, so a
        peer cannot make this side allocate without bound).
    """
    if not isinstance(ops, (list, tuple)):
        raise ZoneError("SYNC_BAD_MESSAGE", "the hash-list ops are not a list")
    out = []
    for op in ops:
        if isinstance(op, str):
            if len(out) >= maxChunks:
                raise ZoneError("SYNC_BAD_MESSAGE", f"the hash list has more than {maxChunks} chunks")
            out.append(decodeHash(op))
            continue
        if not (isinstance(op, (list, tuple)) and len(op) == 2
                and _isIndex(op[0]) and _isIndex(op[1])):
            raise ZoneError("SYNC_BAD_MESSAGE", "a hash-list op is neither a run nor a hash")
        start, count = op
        if start < 0 or count < 1 or start + count > len(base):
            raise ZoneError("SYNC_BAD_MESSAGE", "a hash-list run lies outside the base list")
        if len(out) + count > maxChunks:
            raise ZoneError("SYNC_BAD_MESSAGE", f"the hash list has more than {maxChunks} chunks")
        out.extend(base[start:start + count])
    return out


def pages(ops: Sequence, maxBytes: int = 256 * 1024) -> list:
    """
    C{ops} cut into consecutive pages whose JSON (with C{json.dumps}'s
    default separators, the widest) is at most C{maxBytes} bytes each, so
    no frame carries an unbounded hash list.  Always at least one page:
    an empty item still needs its one C{*_Hash} message.

    @raise ValueError: if C{maxBytes} cannot hold even one op.
    """
    result = []
    page = []
    size = 2  # "[" and "]"
    for op in ops:
        cost = len(json.dumps(op))
        extra = cost + (2 if page else 0)  # ", " before every op but the first
        if page and size + extra > maxBytes:
            result.append(page)
            page = []
            size = 2
            extra = cost
        if size + extra > maxBytes:
            raise ValueError(f"a page of {maxBytes} bytes cannot hold one op")
        page.append(op)
        size += extra
    result.append(page)
    return result
