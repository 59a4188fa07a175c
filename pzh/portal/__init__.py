"""
The Mathematical Mesh portal service (draft-hallambaker-mesh-reference-03,
section 7): accounts, published profiles and device connection requests,
kept in an append-only hash-chained log, served over HTTP at
C{/.well-known/mmm/}.

Where things are:
    - L{pzh.portal.service}: what each transaction does (no HTTP).
    - L{pzh.portal.store}: the log and its indexes (C{IPortalStore}, SQLite).
    - L{pzh.portal.resource}: the HTTP binding, a C{twisted.web} resource.
    - L{pzh.portal.replica}: a read-only portal that follows another by
      replaying its Transfer answers.
    - L{pzh.portal.interfaces}, L{pzh.portal.zone}: giving accepted devices
      a zone certificate when the portal runs inside C{twistd pzh}.
    - L{pzh.portal.tap}: C{twistd meshportal}, and the hub's wiring.

The messages are in L{pz.mesh.messages}, the client in L{pz.mesh.client}.
See C{docs/mesh-portal.md}.
"""

from pzh.portal.interfaces import IZoneEnroller
from pzh.portal.resource import MeshPortalResource, wellKnown
from pzh.portal.service import PortalService
from pzh.portal.store import IPortalStore, SQLitePortalStore

__all__ = [
    "PortalService",
    "IPortalStore",
    "SQLitePortalStore",
    "MeshPortalResource",
    "wellKnown",
    "IZoneEnroller",
]
