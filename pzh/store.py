# -*- test-case-name: tests.pzh.test_store -*-
"""
The hub's durable state: enrolled devices, pairing tokens, revocations,
messages queued for offline devices and small settings.

Callers only see L{IHubStore}; L{SQLiteHubStore} is the default backend.
Another backend (PostgreSQL for a provider that runs several hub processes)
implements the same interface and is chosen in one place, the service
wiring, without touching the callers.  Calls are synchronous: SQLite on a
local disk answers in microseconds, and the hub's writes are rare (pairing,
connect, disconnect, revoke).
"""

from typing import Optional

import attrs
from zope.interface import Interface, implementer

from pz.sqlite import SQLiteFile

__all__ = ["IHubStore", "SQLiteHubStore", "DeviceRecord", "TokenRecord", "QueuedMessage",
           "FriendRecord"]


@attrs.frozen
class DeviceRecord:
    """
    One enrolled device, as the hub remembers it.

    Times are POSIX seconds.  C{serial} is the serial number of the device's
    current certificate.
    """

    id: str
    name: str
    serial: int
    enrolled: float
    notAfter: float
    lastSeen: Optional[float] = None
    address: Optional[str] = None
    revoked: Optional[float] = None


@attrs.frozen
class TokenRecord:
    """
    A pairing token, kept only as its hash.
    """

    tokenHash: str
    deviceName: str
    expires: float
    used: Optional[float] = None


@attrs.frozen
class FriendRecord:
    """
    A friend zone this hub trusts (its CA is among the trusted PZH
    certificates), with where its hub is and which side keeps the link up.

    @ivar zoneId: the friend's zone id.
    @ivar fingerprint: the UDF of the friend zone's CA key.
    @ivar host: the friend hub's host, as its certificate names it.
    @ivar port: the friend hub's device port.
    @ivar since: when the trust was made (POSIX seconds).
    @ivar dials: whether this hub dials the friend (else the friend dials).
    @ivar caPEM: the friend zone's CA certificate, PEM.
    """

    zoneId: str
    fingerprint: str
    host: str
    port: int
    since: float
    dials: bool
    caPEM: bytes


@attrs.frozen
class QueuedMessage:
    """
    A message kept for a device that was offline when it was sent.

    @ivar seq: its place in the hub's queue (delivery follows it).
    @ivar frame: the forwarded frame, exactly as the hub sends it.
    @ivar size: C{len(frame)}, what the per-device byte bound counts.
    """

    seq: int
    messageId: str
    deviceId: str
    sender: str
    queued: float
    size: int
    frame: bytes


class IHubStore(Interface):
    """
    Everything the hub keeps across restarts.
    """

    def addToken(token: TokenRecord) -> None:
        """
        Remember a new pairing token.
        """

    def getToken(tokenHash: str) -> Optional[TokenRecord]:
        """
        The token with that hash, or None.
        """

    def useToken(tokenHash: str, when: float) -> bool:
        """
        Mark a token used.  Atomic: of two concurrent callers only one gets
        True.
        """

    def outstandingTokens(when: float) -> list:
        """
        The tokens neither used nor expired at C{when}, soonest expiry
        first.
        """

    def cancelToken(tokenHash: str) -> bool:
        """
        Forget a token not used yet, so that it can never be used.  Returns
        whether one was forgotten.
        """

    def putDevice(device: DeviceRecord) -> None:
        """
        Insert or replace a device record.
        """

    def getDevice(deviceId: str) -> Optional[DeviceRecord]:
        """
        The device with that id, or None.
        """

    def listDevices() -> list:
        """
        Every device ever enrolled, ordered by id.
        """

    def deviceBySerial(serial: int) -> Optional[DeviceRecord]:
        """
        The device whose current certificate has that serial, or None.
        """

    def touchDevice(deviceId: str, lastSeen: float, address: Optional[str]) -> None:
        """
        Record when and from where a device was last seen.
        """

    def touchDevices(touches: list) -> None:
        """
        L{touchDevice} for many C{(deviceId, lastSeen, address)} at once, in
        one transaction.
        """

    def addRevocation(deviceId: str, serial: int, when: float) -> None:
        """
        Record a revoked certificate serial (and mark the device revoked if
        that serial is its current one).
        """

    def revocations() -> list:
        """
        Every revoked serial as C{(serial, when)}, oldest first.
        """

    def addCertificate(deviceId: str, serial: int, notAfter: float) -> None:
        """
        Remember a certificate issued to a device, so that revoking the
        device can revoke every certificate of it that is still valid.
        """

    def revokeDevice(deviceId: str, when: float) -> list:
        """
        Revoke, in one transaction, the device's current certificate and
        every other certificate of it still valid at C{when}; mark the
        device revoked.  Returns the serials newly revoked.
        """

    def liveCertificates(deviceId: str, when: float) -> list:
        """
        The certificates issued to C{deviceId} that have not expired at
        C{when}, revoked or not, as C{(serial, notAfter)}, oldest expiry
        first.
        """

    def activeRevocations(when: float) -> list:
        """
        L{revocations} without the serials whose certificate had expired
        at C{when}: what the CRL still has to list.
        """

    def serialRevoked(serial: int) -> bool:
        """
        Whether C{serial} was ever revoked (it may have left the CRL since
        it expired).
        """

    def queueMessage(deviceId: str, sender: str, messageId: str, frame: bytes, when: float,
                     maxMessages: int, maxBytes: int) -> Optional[int]:
        """
        Keep C{frame} for C{deviceId}, unless that would put more than
        C{maxMessages} messages or C{maxBytes} bytes in its queue; checked
        and written in one transaction.

        @return: the message's C{seq}, or None when over a bound.
        """

    def queuedFor(deviceId: str) -> list:
        """
        The L{QueuedMessage}s kept for C{deviceId}, oldest first.
        """

    def removeQueued(seq: int) -> None:
        """
        Forget one queued message (it was delivered, or expired).
        """

    def expireQueued(before: float, deviceId: Optional[str] = None) -> int:
        """
        Forget the messages queued before C{before} (for C{deviceId} only,
        if given).

        @return: how many were dropped.
        """

    def addInvitation(token: TokenRecord) -> None:
        """
        Remember a new zone invitation (kept, like a pairing token, as
        its hash; C{deviceName} is unused and empty).
        """

    def getInvitation(tokenHash: str) -> Optional[TokenRecord]:
        """
        The invitation with that hash, or None.
        """

    def useInvitation(tokenHash: str, when: float) -> bool:
        """
        Mark an invitation used.  Atomic: of two concurrent callers only
        one gets True.
        """

    def putFriend(friend: FriendRecord) -> None:
        """
        Insert or replace a friend zone.
        """

    def getFriend(zoneId: str) -> Optional[FriendRecord]:
        """
        The friend zone with that id, or None.
        """

    def listFriends() -> list:
        """
        Every friend zone, ordered by zone id.
        """

    def removeFriend(zoneId: str) -> bool:
        """
        Forget a friend zone; whether there was one.
        """

    def getSetting(name: str) -> Optional[str]:
        """
        A small named setting, or None.
        """

    def putSetting(name: str, value: str) -> None:
        """
        Store a small named setting.
        """

    def close() -> None:
        """
        Release the backend; the next call opens it again.
        """


_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    serial TEXT NOT NULL,
    enrolled REAL NOT NULL,
    not_after REAL NOT NULL,
    last_seen REAL,
    address TEXT,
    revoked REAL
);
CREATE INDEX IF NOT EXISTS devices_serial ON devices(serial);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    device_name TEXT NOT NULL,
    expires REAL NOT NULL,
    used REAL
);
CREATE TABLE IF NOT EXISTS revocations (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    revoked REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    serial TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    not_after REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_device ON certificates(device_id);
CREATE TABLE IF NOT EXISTS queued (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    queued REAL NOT NULL,
    size INTEGER NOT NULL,
    frame BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queued_device ON queued(device_id, seq);
CREATE TABLE IF NOT EXISTS invitations (
    token_hash TEXT PRIMARY KEY,
    expires REAL NOT NULL,
    used REAL
);
CREATE TABLE IF NOT EXISTS friends (
    zone_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    since REAL NOT NULL,
    dials INTEGER NOT NULL,
    ca TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _device(row) -> DeviceRecord:
    return DeviceRecord(
        id=row[0],
        name=row[1],
        serial=int(row[2]),
        enrolled=row[3],
        notAfter=row[4],
        lastSeen=row[5],
        address=row[6],
        revoked=row[7],
    )


def _friend(row) -> FriendRecord:
    return FriendRecord(row[0], row[1], row[2], int(row[3]), row[4], bool(row[5]),
                        row[6].encode("ascii"))


_DEVICE_COLUMNS = "id, name, serial, enrolled, not_after, last_seen, address, revoked"


@implementer(IHubStore)
class SQLiteHubStore(SQLiteFile):
    """
    L{IHubStore} in one SQLite file.

    WAL mode lets C{pzctl} read and add pairing tokens while the hub runs.
    Serial numbers are stored as text because they exceed SQLite's 64-bit
    integers.
    """

    schema = _SCHEMA

    def addToken(self, token: TokenRecord) -> None:
        self._db.execute(
            "INSERT INTO tokens (token_hash, device_name, expires, used) VALUES (?, ?, ?, ?)",
            (token.tokenHash, token.deviceName, token.expires, token.used),
        )

    def getToken(self, tokenHash: str) -> Optional[TokenRecord]:
        row = self._one(
            "SELECT token_hash, device_name, expires, used FROM tokens WHERE token_hash = ?",
            [tokenHash],
        )
        return TokenRecord(*row) if row else None

    def useToken(self, tokenHash: str, when: float) -> bool:
        cursor = self._db.execute(
            "UPDATE tokens SET used = ? WHERE token_hash = ? AND used IS NULL",
            (when, tokenHash),
        )
        return cursor.rowcount == 1

    def outstandingTokens(self, when: float) -> list:
        rows = self._db.execute(
            "SELECT token_hash, device_name, expires, used FROM tokens"
            " WHERE used IS NULL AND expires > ? ORDER BY expires, token_hash", (when,))
        return [TokenRecord(*row) for row in rows]

    def cancelToken(self, tokenHash: str) -> bool:
        cursor = self._db.execute(
            "DELETE FROM tokens WHERE token_hash = ? AND used IS NULL", (tokenHash,))
        return cursor.rowcount == 1

    def putDevice(self, device: DeviceRecord) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO devices ({_DEVICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                device.id,
                device.name,
                str(device.serial),
                device.enrolled,
                device.notAfter,
                device.lastSeen,
                device.address,
                device.revoked,
            ),
        )

    def getDevice(self, deviceId: str) -> Optional[DeviceRecord]:
        row = self._one(f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id = ?", [deviceId])
        return _device(row) if row else None

    def listDevices(self) -> list:
        rows = self._db.execute(f"SELECT {_DEVICE_COLUMNS} FROM devices ORDER BY id")
        return [_device(row) for row in rows]

    def deviceBySerial(self, serial: int) -> Optional[DeviceRecord]:
        row = self._one(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE serial = ?", [str(serial)]
        )
        return _device(row) if row else None

    def touchDevice(self, deviceId: str, lastSeen: float, address: Optional[str]) -> None:
        self.touchDevices([(deviceId, lastSeen, address)])

    def touchDevices(self, touches: list) -> None:
        # Last-seen times are hints shown to the person: losing the newest
        # on a power cut is harmless, but an fsync on the reactor thread at
        # every connect and disconnect held up every other device's
        # messages (about 7 ms each, a flooder reconnecting paid by all).
        # In WAL mode a commit with synchronous=NORMAL is not synced; the
        # next FULL commit syncs it with its own.
        db = self._db
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "UPDATE devices SET last_seen = ?, address = COALESCE(?, address) WHERE id = ?",
                    [(lastSeen, address, deviceId) for deviceId, lastSeen, address in touches],
                )
        finally:
            db.execute("PRAGMA synchronous=FULL")

    def addRevocation(self, deviceId: str, serial: int, when: float) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO revocations (serial, device_id, revoked) VALUES (?, ?, ?)",
                (str(serial), deviceId, when),
            )
            self._db.execute(
                "UPDATE devices SET revoked = COALESCE(revoked, ?) WHERE id = ? AND serial = ?",
                (when, deviceId, str(serial)),
            )

    def revocations(self) -> list:
        rows = self._db.execute("SELECT serial, revoked FROM revocations ORDER BY revoked, serial")
        return [(int(serial), when) for serial, when in rows]

    def addCertificate(self, deviceId: str, serial: int, notAfter: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO certificates (serial, device_id, not_after) VALUES (?, ?, ?)",
            (str(serial), deviceId, notAfter),
        )

    def revokeDevice(self, deviceId: str, when: float) -> list:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._one("SELECT serial FROM devices WHERE id = ?", [deviceId])
            if row is None:
                return []
            serials = {row[0]}
            serials.update(r[0] for r in self._db.execute(
                "SELECT serial FROM certificates WHERE device_id = ? AND not_after > ?",
                (deviceId, when),
            ))
            revoked = []
            for serial in sorted(serials):
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO revocations (serial, device_id, revoked) VALUES (?, ?, ?)",
                    (serial, deviceId, when),
                )
                if cursor.rowcount:
                    revoked.append(int(serial))
            self._db.execute(
                "UPDATE devices SET revoked = COALESCE(revoked, ?) WHERE id = ?", (when, deviceId)
            )
        return revoked

    def liveCertificates(self, deviceId: str, when: float) -> list:
        rows = self._db.execute(
            "SELECT serial, not_after FROM certificates WHERE device_id = ? AND not_after > ?"
            " ORDER BY not_after, serial", (deviceId, when))
        return [(int(serial), notAfter) for serial, notAfter in rows]

    def activeRevocations(self, when: float) -> list:
        # A serial with no certificate row (none is recorded for it) stays.
        rows = self._db.execute(
            "SELECT r.serial, r.revoked FROM revocations r"
            " LEFT JOIN certificates c ON c.serial = r.serial"
            " WHERE c.not_after IS NULL OR c.not_after > ?"
            " ORDER BY r.revoked, r.serial", (when,))
        return [(int(serial), revoked) for serial, revoked in rows]

    def serialRevoked(self, serial: int) -> bool:
        return self._one("SELECT 1 FROM revocations WHERE serial = ?", [str(serial)]) is not None

    def queueMessage(self, deviceId: str, sender: str, messageId: str, frame: bytes,
                     when: float, maxMessages: int, maxBytes: int) -> Optional[int]:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            count, size = self._one(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM queued WHERE device_id = ?",
                [deviceId])
            if count + 1 > maxMessages or size + len(frame) > maxBytes:
                return None
            cursor = self._db.execute(
                "INSERT INTO queued (message_id, device_id, sender, queued, size, frame)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (messageId, deviceId, sender, when, len(frame), frame))
        return cursor.lastrowid

    def queuedFor(self, deviceId: str) -> list:
        rows = self._db.execute(
            "SELECT seq, message_id, device_id, sender, queued, size, frame FROM queued"
            " WHERE device_id = ? ORDER BY seq", (deviceId,))
        return [QueuedMessage(*row[:6], bytes(row[6])) for row in rows]

    def removeQueued(self, seq: int) -> None:
        self._db.execute("DELETE FROM queued WHERE seq = ?", (seq,))

    def expireQueued(self, before: float, deviceId: Optional[str] = None) -> int:
        if deviceId is None:
            cursor = self._db.execute("DELETE FROM queued WHERE queued < ?", (before,))
        else:
            cursor = self._db.execute(
                "DELETE FROM queued WHERE queued < ? AND device_id = ?", (before, deviceId))
        return cursor.rowcount

    def addInvitation(self, token: TokenRecord) -> None:
        self._db.execute("INSERT INTO invitations (token_hash, expires, used) VALUES (?, ?, ?)",
                         (token.tokenHash, token.expires, token.used))

    def getInvitation(self, tokenHash: str) -> Optional[TokenRecord]:
        row = self._one("SELECT token_hash, expires, used FROM invitations WHERE token_hash = ?",
                        [tokenHash])
        return TokenRecord(row[0], "", row[1], row[2]) if row else None

    def useInvitation(self, tokenHash: str, when: float) -> bool:
        cursor = self._db.execute(
            "UPDATE invitations SET used = ? WHERE token_hash = ? AND used IS NULL",
            (when, tokenHash))
        return cursor.rowcount == 1

    def putFriend(self, friend: FriendRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO friends (zone_id, fingerprint, host, port, since, dials, ca)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (friend.zoneId, friend.fingerprint, friend.host, friend.port, friend.since,
             int(friend.dials), friend.caPEM.decode("ascii")))

    def getFriend(self, zoneId: str) -> Optional[FriendRecord]:
        row = self._one("SELECT zone_id, fingerprint, host, port, since, dials, ca FROM friends"
                        " WHERE zone_id = ?", [zoneId])
        return _friend(row) if row else None

    def listFriends(self) -> list:
        rows = self._db.execute(
            "SELECT zone_id, fingerprint, host, port, since, dials, ca FROM friends"
            " ORDER BY zone_id")
        return [_friend(row) for row in rows]

    def removeFriend(self, zoneId: str) -> bool:
        return self._db.execute("DELETE FROM friends WHERE zone_id = ?", (zoneId,)).rowcount == 1

    def getSetting(self, name: str) -> Optional[str]:
        row = self._one("SELECT value FROM settings WHERE name = ?", [name])
        return row[0] if row else None

    def putSetting(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value)
        )

