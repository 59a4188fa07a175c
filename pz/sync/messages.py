# -*- test-case-name: tests.pz.sync.test_messages -*-
"""
The synchronisation messages: their names, their fields, their checks.

The webinos Synchronisation specification names six messages: the hub
sends C{Sync_Hash} and C{Sync_Data} and answers with C{Update_Change}; the
device sends C{Update_Hash} and C{Update_Data} and answers with
C{Sync_Change}.  This module adds the acknowledgements (C{Sync_Ack},
C{Update_Ack}) that let a sender record what the receiver now holds, and
the device's C{Sync_Hello} / the hub's C{Sync_Plan} that open a round.

Every field of every message is declared once here and checked before the
engine looks at it; anything that does not fit is a
C{ZoneError("SYNC_BAD_MESSAGE")}.  Whether a path is acceptable is the
items tree's business (C{SYNC_BAD_PATH}), so here a path is only a short
string.

One extension of the chunk entries of C{*_Data}: an entry is
C{[index, base64]} for a whole chunk, or C{[index, base64, true]} for a
piece of a chunk that continues in the next entry.  A chunk larger than a
frame (a PEM revocation list with many entries, one huge JSON key) then
still crosses in bounded frames.
"""

import base64
import binascii
from typing import Optional

import attrs

from pz.errors import ZoneError
from pz.sync.chunkers import decodeHash, encodeHash
from pz.sync.state import Version

__all__ = [
    "MESSAGE_NAMES_TO_HUB", "MESSAGE_NAMES_TO_DEVICE", "FRAME_DATA", "frameBudget", "Names", "namesFor",
    "HashMessage", "ChangeMessage", "DataMessage", "AckMessage", "HelloMessage", "PlanMessage",
    "parseHash", "parseChange", "parseData", "parseAck", "parseHello", "parsePlan",
    "encodeOptionalHash", "encodeVersion", "refusal",
]

MESSAGE_NAMES_TO_HUB = ("Sync_Hello", "Sync_Change", "Sync_Ack", "Update_Hash", "Update_Data")
MESSAGE_NAMES_TO_DEVICE = ("Sync_Plan", "Sync_Hash", "Sync_Data", "Update_Change", "Update_Ack")

#: Raw chunk bytes in one C{*_Data} frame at most: its base64 and JSON stay
#: far under the wire's frame limit of 1 MiB.
FRAME_DATA = 256 * 1024


def frameBudget(frameLimit: int) -> tuple:
    """
    What one frame to a peer that refuses frames over C{frameLimit} bytes
    may carry: raw chunk bytes per C{*_Data} (base64 makes them a third
    larger, and each entry adds its index) and JSON bytes of hash-list
    operations per C{*_Hash} page, both leaving room for the envelope, the
    path and the hashes.  At most L{FRAME_DATA} either way.
    """
    room = max(1024, frameLimit - 4096)
    return min(FRAME_DATA, room * 7 // 10), min(FRAME_DATA, room)

_MAX_PATH = 1024
_MAX_ORIGIN = 512
_MAX_TEXT = 1024
_MAX_OPS_PER_PAGE = 200_000
_MAX_ENTRIES = 100_000


@attrs.frozen
class Names:
    """
    The message names one side uses: C{hash} and C{data} it sends as a
    sender, C{change} and C{ack} it sends as a receiver; C{peer*} are the
    names it receives.
    """

    hash: str
    data: str
    change: str
    ack: str
    peerHash: str
    peerData: str
    peerChange: str
    peerAck: str


_HUB = Names("Sync_Hash", "Sync_Data", "Update_Change", "Update_Ack",
             "Update_Hash", "Update_Data", "Sync_Change", "Sync_Ack")
_DEVICE = Names("Update_Hash", "Update_Data", "Sync_Change", "Sync_Ack",
                "Sync_Hash", "Sync_Data", "Update_Change", "Update_Ack")


def namesFor(role: str) -> Names:
    """
    The names a hub or a device uses: the same engine code serves both, the
    role picks the names.
    """
    if role == "hub":
        return _HUB
    if role == "device":
        return _DEVICE
    raise ValueError(f"role must be 'hub' or 'device', not {role!r}")


def _bad(message: str) -> ZoneError:
    return ZoneError("SYNC_BAD_MESSAGE", message)


def _string(payload: dict, key: str, limit: int) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _bad(f"field {key!r} must be a non-empty string of at most {limit} characters")
    return value


def _bool(payload: dict, key: str, default: bool = False) -> bool:
    value = payload.get(key, default)
    if not isinstance(value, bool):
        raise _bad(f"field {key!r} must be true or false")
    return value


def _int(payload: dict, key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(f"field {key!r} must be a non-negative integer")
    return value


def _hash(payload: dict, key: str) -> bytes:
    value = payload.get(key)
    if not isinstance(value, str):
        raise _bad(f"field {key!r} must be a hash")
    return decodeHash(value)


def _optionalHash(payload: dict, key: str) -> Optional[bytes]:
    if payload.get(key) is None:
        return None
    return _hash(payload, key)


def encodeOptionalHash(value) -> Optional[str]:
    """
    A hash for the wire, or C{None} for no hash (nothing agreed, a
    tombstone).
    """
    return encodeHash(value) if isinstance(value, bytes) else None


def _version(payload: dict) -> Version:
    value = payload.get("version")
    if not isinstance(value, dict):
        raise _bad("field 'version' must be an object with 'time' and 'origin'")
    time = value.get("time")
    if not isinstance(time, (int, float)) or isinstance(time, bool) or not (0 <= time < 1e11):
        raise _bad("the version's time must be seconds since the epoch")
    return Version(time=float(time), origin=_string(value, "origin", _MAX_ORIGIN))


def encodeVersion(version) -> dict:
    """
    A version for the wire.
    """
    return {"time": version.time, "origin": version.origin}


def refusal(error: ZoneError) -> dict:
    """
    The C{refused} field for a refusal.
    """
    return {"code": error.code, "message": error.message}


def _refused(payload: dict) -> Optional[dict]:
    value = payload.get("refused")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("field 'refused' must be an object with 'code' and 'message'")
    code = _string(value, "code", 64)
    message = value.get("message", "")
    if not isinstance(message, str):
        raise _bad("a refusal's message must be a string")
    return {"code": code, "message": message[:_MAX_TEXT]}


@attrs.frozen
class HashMessage:
    """
    One page of C{*_Hash}: the sender's new version of an item, as hash-list
    operations relative to C{base}; or a deletion.
    """

    path: str
    version: object
    base: Optional[bytes]
    deleted: bool
    hash: Optional[bytes] = None
    size: int = 0
    ops: tuple = ()
    part: int = 0
    more: bool = False


def parseHash(payload: dict) -> HashMessage:
    path = _string(payload, "path", _MAX_PATH)
    version = _version(payload)
    base = _optionalHash(payload, "base")
    if _bool(payload, "deleted"):
        return HashMessage(path=path, version=version, base=base, deleted=True)
    ops = payload.get("ops")
    if not isinstance(ops, list) or len(ops) > _MAX_OPS_PER_PAGE:
        raise _bad("field 'ops' must be a list of hash-list operations")
    return HashMessage(
        path=path, version=version, base=base, deleted=False, hash=_hash(payload, "hash"),
        size=_int(payload, "size"), ops=tuple(ops), part=_int(payload, "part"),
        more=_bool(payload, "more"),
    )


@attrs.frozen
class ChangeMessage:
    """
    The receiver's answer to C{*_Hash}: the runs of chunk indexes it needs,
    or C{rebase}, or a refusal (with the winner for C{SYNC_CONFLICT}).
    """

    path: str
    hash: Optional[bytes]
    need: tuple = ()
    rebase: bool = False
    refused: Optional[dict] = None
    winner: Optional[dict] = None


def _runs(value, limit: int) -> tuple:
    if not isinstance(value, list) or len(value) > _MAX_ENTRIES:
        raise _bad("field 'need' must be a list of [start, count] runs")
    runs = []
    last = 0
    for run in value:
        if (not isinstance(run, list) or len(run) != 2
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in run)):
            raise _bad("a run must be [start, count]")
        start, count = run
        if start < last or count <= 0 or start + count > limit:
            raise _bad("the runs must be ascending, not overlapping and inside the chunk list")
        runs.append((start, count))
        last = start + count
    return tuple(runs)


def _winner(payload: dict) -> Optional[dict]:
    winner = payload.get("winner")
    if winner is None:
        return None
    if not isinstance(winner, dict):
        raise _bad("field 'winner' must be an object")
    return {"hash": _optionalHash(winner, "hash"), "version": _version(winner)}


def parseChange(payload: dict, chunkCount: int) -> ChangeMessage:
    """
    @param chunkCount: how many chunks the item offered has: every run must
        lie inside it.
    """
    path = _string(payload, "path", _MAX_PATH)
    itemHash = _optionalHash(payload, "hash")
    refused = _refused(payload)
    if refused is not None:
        return ChangeMessage(path=path, hash=itemHash, refused=refused, winner=_winner(payload))
    if _bool(payload, "rebase"):
        return ChangeMessage(path=path, hash=itemHash, rebase=True)
    return ChangeMessage(path=path, hash=itemHash, need=_runs(payload.get("need"), chunkCount))


@attrs.frozen
class DataMessage:
    """
    One frame of C{*_Data}: (index, bytes, continues) entries.
    """

    path: str
    hash: bytes
    chunks: tuple
    more: bool


def parseData(payload: dict) -> DataMessage:
    path = _string(payload, "path", _MAX_PATH)
    itemHash = _hash(payload, "hash")
    chunks = payload.get("chunks")
    if not isinstance(chunks, list) or len(chunks) > _MAX_ENTRIES:
        raise _bad("field 'chunks' must be a list of [index, base64] entries")
    entries = []
    total = 0
    for entry in chunks:
        if (not isinstance(entry, list) or len(entry) not in (2, 3)
                or not isinstance(entry[0], int) or isinstance(entry[0], bool) or entry[0] < 0
                or not isinstance(entry[1], str)
                or (len(entry) == 3 and entry[2] is not True)):
            raise _bad("a chunk entry must be [index, base64] or [index, base64, true]")
        try:
            data = base64.b64decode(entry[1], validate=True)
        except (binascii.Error, ValueError):
            raise _bad("a chunk's data is not base64") from None
        total += len(data)
        if total > FRAME_DATA:
            raise _bad(f"a data frame holds more than {FRAME_DATA} bytes")
        entries.append((entry[0], data, len(entry) == 3))
    return DataMessage(path=path, hash=itemHash, chunks=tuple(entries), more=_bool(payload, "more"))


@attrs.frozen
class AckMessage:
    """
    The receiver's last word on an item: written, or refused.
    """

    path: str
    hash: Optional[bytes]
    refused: Optional[dict] = None
    winner: Optional[dict] = None


def parseAck(payload: dict) -> AckMessage:
    refused = _refused(payload)
    return AckMessage(path=_string(payload, "path", _MAX_PATH),
                      hash=_optionalHash(payload, "hash"), refused=refused,
                      winner=_winner(payload) if refused is not None else None)


@attrs.frozen
class HelloMessage:
    """
    A device opens a round: the categories it syncs.
    """

    select: frozenset
    constrained: bool


def parseHello(payload: dict) -> HelloMessage:
    select = payload.get("select")
    if (not isinstance(select, list) or len(select) > 64
            or not all(isinstance(c, str) and len(c) <= 64 for c in select)):
        raise _bad("field 'select' must be a list of category names")
    return HelloMessage(select=frozenset(select), constrained=_bool(payload, "constrained"))


@attrs.frozen
class PlanMessage:
    """
    The hub's answer to C{Sync_Hello}: how much it is about to send.
    """

    items: int
    bytes: int
    refused: Optional[dict] = None


def parsePlan(payload: dict) -> PlanMessage:
    refused = _refused(payload)
    if refused is not None:
        return PlanMessage(items=0, bytes=0, refused=refused)
    return PlanMessage(items=_int(payload, "items"), bytes=_int(payload, "bytes"))
