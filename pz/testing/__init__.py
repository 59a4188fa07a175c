# -*- test-case-name: tests.pz.test_testing -*-
"""
Test helpers shipped with the library, as C{treq.testing} is: a whole zone
in memory for an integrator's trial tests, and the pieces under it for
protocol tests.

  - L{MemoryZone}: a real hub and real devices over TLS in memory, on one
    clock.
  - L{ServiceChecks}: the checks every zone service should pass, as a
    mixin for a test case.
  - L{MemoryHub}: a real hub that a test reaches with its own clients
    (L{FrameClient}, or any TLS client factory).
  - L{tlsLoopback}, L{connectPair}, L{SlowReaderTransport}: both ends of a
    TLS connection in memory.

The hub and the devices come from the installed hub and device packages,
found through the entry-point group C{pz.testing} (see L{pz.testing.ends}).
See C{docs/testing.md}.
"""

from pz.testing.ends import GROUP, NoEndInstalled
from pz.testing.hub import HOST, HUB_PORT, RENEWAL_DUE, USER, WEB_PORT, ZONE, MemoryHub
from pz.testing.loopback import (
    FrameClient, Link, PeerCertTransport, SlowReaderTransport, TLSRecorder, address, connectPair,
    flushPumps, frame, frames, nowClock, nowReactor, prop, tlsLoopback,
)
from pz.testing.zone import MemoryZone
from pz.testing.services import ServiceChecks

__all__ = [
    "MemoryZone", "ServiceChecks", "MemoryHub", "Link", "FrameClient", "SlowReaderTransport", "TLSRecorder",
    "PeerCertTransport", "address", "tlsLoopback", "connectPair", "flushPumps", "frame", "frames",
    "prop", "nowClock", "nowReactor",
    "GROUP", "NoEndInstalled", "USER", "HOST", "ZONE", "HUB_PORT", "WEB_PORT", "RENEWAL_DUE",
]
