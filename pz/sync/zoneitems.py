# -*- test-case-name: tests.pz.sync.test_zoneitems,tests.pzh.test_zonesync -*-
"""
What a zone puts in its items folder besides the defaults: the trusted
certificates and the CRL, at names every side derives the same way.

The hub writes them (it is their only source: they are one-way items);
a device starts with the ones enrolment gave it, so its first connection
only fetches what changed since.
"""

import os
import re
from typing import Callable

from pz.files import privateDirectory
from pz.sync.items import DEFAULTS, ItemTree
from pz.sync.state import SyncState

__all__ = [
    "CRL", "trustedHubPath", "trustedDevicePath", "friendFolder", "friendCRLPath", "friendItemPath",
    "zoneItems", "openItems",
]

#: The zone's CRL among the items.
CRL = "crl.pem"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def trustedHubPath(zoneId: str) -> str:
    """
    Where a zone's CA certificate is kept among the trusted PZH
    certificates: this zone's own, and later its friends'.
    """
    return f"certificates/trusted-pzh/{_UNSAFE.sub('_', zoneId)}.pem"


def friendFolder(zoneId: str) -> str:
    """
    Where what friend zone C{zoneId} shares with this one is kept among
    the items (by the hub's sharing with friends): its CRL and the items its policy lets
    this zone have.
    """
    return f"friends/{_UNSAFE.sub('_', zoneId)}/"


def friendCRLPath(zoneId: str) -> str:
    """
    Where friend zone C{zoneId}'s CRL is kept among the items.
    """
    return friendFolder(zoneId) + CRL


def friendItemPath(zoneId: str, path: str) -> str:
    """
    Where friend zone C{zoneId}'s item C{path} (its path in that zone) is
    kept among this zone's items.
    """
    return friendFolder(zoneId) + "items/" + path


def trustedDevicePath(deviceId: str) -> str:
    """
    Where a device's current certificate is kept among the trusted PZP
    certificates: named after the device's name, unique in its zone.
    """
    return f"certificates/trusted-pzp/{_UNSAFE.sub('_', deviceId.rpartition('/')[2])}.pem"


def zoneItems(zoneId: str, caPEM: bytes, crlPEM: bytes) -> dict:
    """
    The items a new hub or a newly enrolled device starts with.
    """
    return {**DEFAULTS, CRL: crlPEM, trustedHubPath(zoneId): caPEM}


def openItems(zonePath: str, initialItems: Callable[[], dict]) -> tuple:
    """
    Open one side's items tree and sync state under C{zonePath}.

    The items C{initialItems()} names are written only when there is no
    sync state and no items folder yet (a first start, or a zone directory
    from before synchronisation existed); an items folder that vanished
    later (unmounted) stays an error, never refilled with defaults that
    would then replace the zone's items everywhere.

    @return: C{(tree, state, fresh)}, C{fresh} saying the sync state was
        just created.
    """
    tree = ItemTree(zonePath)
    fresh = not os.path.exists(tree.statePath)
    if fresh and not os.path.lexists(tree.root):
        tree.create(initialItems())
    privateDirectory(tree.workPath)
    return tree, SyncState(tree.statePath), fresh
