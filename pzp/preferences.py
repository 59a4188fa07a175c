# -*- test-case-name: tests.pzp.test_preferences -*-
"""
The user preferences a device acts on, read from its synced
C{items/preferences.json} (the webinos Synchronisation specification's
"User preferences").

The file is synced and people edit it, so reading is forgiving: a missing,
damaged or oddly typed preference falls back to its default rather than
stopping the device.
"""

import json

from pz.errors import ZoneError
from pz.sync.defaults import PREFERENCES

__all__ = ["readPreferences", "peerPort", "peerConnection"]

#: The peer server's port when the preference gives none (the
#: specification's C{pzp_tlsServer}).
DEFAULT_PEER_PORT = PREFERENCES["ports"]["pzp_tlsServer"]


def readPreferences(tree) -> dict:
    """
    The preferences object in the items tree C{tree}
    (L{pz.sync.items.ItemTree}), or C{{}} if it cannot be read as one.
    """
    try:
        value = json.loads((tree.read("preferences.json") or b"{}").decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, ZoneError):
        return {}
    return value if isinstance(value, dict) else {}


def peerPort(preferences: dict) -> int:
    """
    C{ports.pzp_tlsServer}: where the peer server listens (0: any free port).
    """
    ports = preferences.get("ports")
    port = ports.get("pzp_tlsServer") if isinstance(ports, dict) else None
    if isinstance(port, int) and not isinstance(port, bool) and 0 <= port <= 65535:
        return port
    return DEFAULT_PEER_PORT


def peerConnection(preferences: dict) -> bool:
    """
    C{peer_connection}: whether this device dials the zone's other devices
    directly (on unless it says C{"no"}).
    """
    return preferences.get("peer_connection", "yes") != "no"
