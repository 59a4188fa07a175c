# -*- test-case-name: tests.pz.test_timefmt -*-
"""
How the zone writes a time for people and programs: ISO 8601, UTC, to the
second (C{pzctl}'s output, the admin API, the sync conflicts list).
"""

from datetime import datetime, timezone
from typing import Optional

__all__ = ["isoTime"]


def isoTime(seconds: Optional[float]) -> Optional[str]:
    """
    POSIX seconds as ISO 8601 UTC text to the second; None stays None.
    """
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")
