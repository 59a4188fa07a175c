# -*- test-case-name: tests.pzp.test_inbox -*-
"""
Messages other devices sent to this one.

One JSON object per line in C{zone/inbox.jsonl}, appended and flushed as
each message arrives, so C{pzctl inbox} can read it without asking the
running proxy, and the inbox goes with the rest of the zone data if the
device leaves the zone.
"""

import json
import os
from datetime import datetime, timezone

__all__ = ["Inbox", "MAX_TEXT"]

#: Longest text message accepted, in characters.
MAX_TEXT = 64 * 1024


class Inbox:
    """
    The device's received messages.
    """

    def __init__(self, path: str, clock) -> None:
        self._path = path
        self._clock = clock

    def add(self, sender: str, text: str) -> dict:
        """
        Append a message and return the stored entry.
        """
        entry = {
            "from": sender,
            "text": text,
            "received": datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
            .isoformat(timespec="milliseconds"),
        }
        with open(self._path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def messages(self) -> list:
        """
        Every stored message, oldest first; a torn last line is skipped.
        """
        try:
            with open(self._path, encoding="utf-8") as f:
                lines = f.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out
