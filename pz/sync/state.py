# -*- test-case-name: tests.pz.sync.test_state -*-
"""
What one side remembers about synchronisation, across restarts, in
C{DIR/zone/sync/state.db}.

For each item: its hash, size and version (time and origin device) as last
recorded, and the file signature the scan saw then, so an unchanged file
is not hashed again.  For each peer and item: the hash both sides last
agreed on, so a reconnection sends only what changed since, and a hash
list can be sent as a difference from that agreed version.  Chunk lists of
recent item hashes, the bases those differences are computed from.  And
the conflicts kept, for the person to list.  A deletion is a record too (a
tombstone), so it synchronises like any change and is never confused with
an item never seen.
"""

from typing import Optional

import attrs

from pz.sqlite import SQLiteFile
from pz.sync.items import Signature

__all__ = ["Version", "ItemRecord", "SyncState", "TOMBSTONE", "HASH_SIZE"]

#: The length of an item or chunk hash (SHA-256), in bytes.
HASH_SIZE = 32


class _Tombstone:
    """
    The agreed "hash" of a deleted item: distinct from every real hash and
    from None (nothing agreed at all).
    """

    def __repr__(self) -> str:
        return "TOMBSTONE"

    def __reduce__(self):
        return "TOMBSTONE"


TOMBSTONE = _Tombstone()


@attrs.frozen
class Version:
    """
    When an item's content was made, and by which side (a device id, or
    the zone id for the hub): what the webinos conflict rule compares.
    """

    time: float
    origin: str


@attrs.frozen
class ItemRecord:
    """
    The last known state of one item on this side.  C{hash} None is a
    tombstone: the item was deleted at C{version}.
    """

    path: str
    hash: Optional[bytes]
    size: int
    version: Version
    signature: Optional[Signature] = None

    @property
    def deleted(self) -> bool:
        """
        Whether this record is a tombstone.
        """
        return self.hash is None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    path TEXT PRIMARY KEY,
    hash BLOB,
    size INTEGER NOT NULL,
    time REAL NOT NULL,
    origin TEXT NOT NULL,
    sig_size INTEGER,
    sig_mtime INTEGER,
    sig_ctime INTEGER,
    sig_inode INTEGER
);
CREATE TABLE IF NOT EXISTS agreed (
    peer TEXT NOT NULL,
    path TEXT NOT NULL,
    hash BLOB,
    PRIMARY KEY (peer, path)
);
CREATE TABLE IF NOT EXISTS chunk_lists (
    hash BLOB PRIMARY KEY,
    chunks BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    origin TEXT NOT NULL,
    time REAL NOT NULL,
    kept_as TEXT NOT NULL,
    hash BLOB
);
"""

_ITEM_COLUMNS = "path, hash, size, time, origin, sig_size, sig_mtime, sig_ctime, sig_inode"


def _record(row) -> ItemRecord:
    signature = Signature(*row[5:9]) if row[5] is not None else None
    return ItemRecord(
        path=row[0],
        hash=bytes(row[1]) if row[1] is not None else None,
        size=row[2],
        version=Version(row[3], row[4]),
        signature=signature,
    )


def _agreed(value):
    return TOMBSTONE if value is None else bytes(value)


class SyncState(SQLiteFile):
    """
    The sync state in one SQLite file (created 0600 by L{SQLiteFile});
    every change is one statement or one transaction, committed durably
    before the call returns, so a process killed at any point leaves the
    state of before or after the call.
    """

    schema = _SCHEMA

    def item(self, path: str) -> Optional[ItemRecord]:
        """
        The record of C{path}, or None if it was never recorded.
        """
        row = self._one(f"SELECT {_ITEM_COLUMNS} FROM items WHERE path = ?", [path])
        return _record(row) if row else None

    def items(self) -> list:
        """
        Every record, tombstones included, ordered by path.
        """
        rows = self._db.execute(f"SELECT {_ITEM_COLUMNS} FROM items ORDER BY path")
        return [_record(row) for row in rows]

    def record(self, rec: ItemRecord) -> None:
        """
        Insert or replace the record of C{rec.path}.
        """
        sig = rec.signature
        self._db.execute(
            f"INSERT OR REPLACE INTO items ({_ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.path, rec.hash, rec.size, rec.version.time, rec.version.origin,
                sig.size if sig else None, sig.mtimeNs if sig else None,
                sig.ctimeNs if sig else None, sig.inode if sig else None,
            ),
        )

    def agreed(self, peer: str, path: str):
        """
        The hash C{peer} and this side last agreed on for C{path}:
        C{bytes}, L{TOMBSTONE} for an agreed deletion, or None if nothing
        was ever agreed (a new peer, or one forgotten).
        """
        row = self._one("SELECT hash FROM agreed WHERE peer = ? AND path = ?", [peer, path])
        return _agreed(row[0]) if row else None

    def setAgreed(self, peer: str, path: str, hash) -> None:
        """
        Remember that C{peer} holds C{hash} (or L{TOMBSTONE}) for C{path};
        None forgets what was agreed for that path.
        """
        if hash is None:
            self._db.execute("DELETE FROM agreed WHERE peer = ? AND path = ?", (peer, path))
            return
        stored = None if hash is TOMBSTONE else bytes(hash)
        self._db.execute(
            "INSERT OR REPLACE INTO agreed (peer, path, hash) VALUES (?, ?, ?)",
            (peer, path, stored),
        )

    def agreedPaths(self, peer: str) -> dict:
        """
        Everything agreed with C{peer}, as C{{path: hash or TOMBSTONE}}.
        """
        rows = self._db.execute("SELECT path, hash FROM agreed WHERE peer = ?", (peer,))
        return {path: _agreed(value) for path, value in rows}

    def forgetPeer(self, peer: str) -> None:
        """
        Forget everything agreed with C{peer} (a revoked or removed
        device): its next connection is a first one.
        """
        self._db.execute("DELETE FROM agreed WHERE peer = ?", (peer,))

    def chunkList(self, itemHash: bytes) -> Optional[tuple]:
        """
        The chunk hashes of the item content with hash C{itemHash}, if kept.
        """
        row = self._one("SELECT chunks FROM chunk_lists WHERE hash = ?", [itemHash])
        if row is None:
            return None
        blob = bytes(row[0])
        return tuple(blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))

    def storeChunkList(self, itemHash: bytes, chunks) -> None:
        """
        Keep the chunk list of the item content with hash C{itemHash}.
        """
        chunks = [bytes(c) for c in chunks]
        if any(len(c) != HASH_SIZE for c in chunks):
            raise ValueError(f"chunk hashes are {HASH_SIZE} bytes")
        self._db.execute(
            "INSERT OR REPLACE INTO chunk_lists (hash, chunks) VALUES (?, ?)",
            (bytes(itemHash), b"".join(chunks)),
        )

    def pruneChunkLists(self) -> None:
        """
        Drop the chunk lists no one can need: those of hashes that are
        neither an item's current hash nor agreed with some peer.
        """
        self._db.execute(
            "DELETE FROM chunk_lists WHERE hash NOT IN"
            " (SELECT hash FROM items WHERE hash IS NOT NULL"
            "  UNION SELECT hash FROM agreed WHERE hash IS NOT NULL)"
        )

    def addConflict(self, path: str, origin: str, time: float, keptAs: str,
                    hash: Optional[bytes]) -> None:
        """
        Remember a kept losing version: the item, the version's origin and
        time, where it was kept (relative to the zone folder) and its hash
        (None for a losing deletion).
        """
        self._db.execute(
            "INSERT INTO conflicts (path, origin, time, kept_as, hash) VALUES (?, ?, ?, ?, ?)",
            (path, origin, time, keptAs, hash),
        )

    def conflicts(self) -> list:
        """
        Every kept conflict, oldest first, as dicts with C{path},
        C{origin}, C{time} (POSIX seconds), C{kept_as} and C{hash} (bytes
        or None).
        """
        rows = self._db.execute(
            "SELECT path, origin, time, kept_as, hash FROM conflicts ORDER BY id")
        return [
            {"path": path, "origin": origin, "time": when, "kept_as": keptAs,
             "hash": bytes(h) if h is not None else None}
            for path, origin, when, keptAs, h in rows
        ]
