# -*- test-case-name: tests.pzp.test_inbox -*-
"""
Messages other devices sent to this one.

One JSON object per line in C{zone/inbox.jsonl}, appended and flushed as
each message arrives, so C{pzctl inbox} can read it without asking the
running proxy, and the inbox goes with the rest of the zone data if the
device leaves the zone.

The inbox is bounded, in messages and in bytes: when a new message would
pass either bound, the oldest messages are dropped, a tenth of the bound at
once so the file is not rewritten for every message, and how many were
dropped since the inbox began is kept in a first line C{{"dropped": N}}.
That rewrite goes to a temporary file, synced, then renamed over the
inbox, so a crash leaves the old inbox or the new one; an append is synced
before the message is acknowledged.
"""

import json
import os
from datetime import datetime, timezone

import attrs

__all__ = ["Inbox", "InboxContents", "MAX_TEXT", "MAX_MESSAGES", "MAX_BYTES", "MIN_BYTES"]

#: Longest text message accepted, in characters.
MAX_TEXT = 64 * 1024

#: Default bound on the messages kept.
MAX_MESSAGES = 10_000

#: Default bound on the inbox file, in bytes.
MAX_BYTES = 16 * 1024 * 1024

#: The smallest byte bound allowed: room for the longest message, each of
#: its characters escaped in JSON (12 bytes for one outside the BMP).
MIN_BYTES = 1024 * 1024


@attrs.frozen
class InboxContents:
    """
    What the inbox holds: the messages kept, oldest first, and how many
    older ones were dropped to keep within its bounds.
    """

    messages: list
    dropped: int


def _isHeader(record) -> bool:
    return (isinstance(record, dict) and "from" not in record
            and isinstance(record.get("dropped"), int))


def _writeSynced(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


class Inbox:
    """
    The device's received messages.

    @param maxMessages: the most messages kept.
    @param maxBytes: the largest the file grows, in bytes.
    """

    def __init__(self, path: str, clock, maxMessages: int = MAX_MESSAGES,
                 maxBytes: int = MAX_BYTES) -> None:
        if maxMessages < 1 or maxBytes < 1:
            raise ValueError("an inbox must be able to hold a message")
        self._path = path
        self._clock = clock
        self._maxMessages = maxMessages
        self._maxBytes = maxBytes
        # Loaded from the file on the first add: messages and bytes in it,
        # and whether its last line was torn by a crash.
        self._count = None
        self._size = 0
        self._torn = False

    def add(self, sender: str, text: str) -> dict:
        """
        Store a message, dropping the oldest if the inbox is full, and
        return the stored entry.
        """
        entry = {
            "from": sender,
            "text": text,
            "received": datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
            .isoformat(timespec="milliseconds"),
        }
        line = (json.dumps(entry) + "\n").encode("utf-8")
        if self._count is None:
            self._load()
        if self._count + 1 > self._maxMessages or self._size + len(line) > self._maxBytes:
            self._compact(line)
        else:
            self._append(line)
        return entry

    def contents(self) -> InboxContents:
        """
        The stored messages, oldest first, and the count of those dropped;
        a torn last line is skipped.
        """
        dropped, lines = self._read()
        return InboxContents([json.loads(line) for line in lines], dropped)

    def messages(self) -> list:
        """
        Every stored message, oldest first.
        """
        return self.contents().messages

    def _read(self):
        """
        The dropped count and each message's line, as bytes.
        """
        try:
            with open(self._path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, []
        dropped, lines = 0, []
        for line in data.splitlines(keepends=True):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if _isHeader(record):
                dropped = record["dropped"]
            elif isinstance(record, dict):
                lines.append(line if line.endswith(b"\n") else line + b"\n")
        return dropped, lines

    def _load(self) -> None:
        _, lines = self._read()
        self._count = len(lines)
        try:
            with open(self._path, "rb") as f:
                f.seek(0, os.SEEK_END)
                self._size = f.tell()
                if self._size:
                    f.seek(-1, os.SEEK_END)
                    self._torn = f.read(1) != b"\n"
        except FileNotFoundError:
            self._size, self._torn = 0, False

    def _append(self, line: bytes) -> None:
        if self._torn:
            # End the torn line, so it stays one unreadable line and does
            # not swallow this message.
            line = b"\n" + line
        _writeSynced(os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), line)
        self._torn = False
        self._count += 1
        self._size += len(line)

    def _compact(self, line: bytes) -> None:
        dropped, lines = self._read()
        lines.append(line)
        keepCount = max(1, self._maxMessages - self._maxMessages // 10)
        keepBytes = self._maxBytes - self._maxBytes // 10
        kept, size = [], 0
        for candidate in reversed(lines):
            if kept and (len(kept) >= keepCount or size + len(candidate) > keepBytes):
                break
            kept.append(candidate)
            size += len(candidate)
        kept.reverse()
        dropped += len(lines) - len(kept)
        data = (json.dumps({"dropped": dropped}) + "\n").encode("utf-8") + b"".join(kept)
        temporary = self._path + ".new"
        _writeSynced(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), data)
        os.replace(temporary, self._path)
        directory = os.open(os.path.dirname(os.path.abspath(self._path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._count, self._size, self._torn = len(kept), len(data), False
