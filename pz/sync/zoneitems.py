# -*- test-case-name: tests.pz.sync.test_zoneitems -*-
"""
What a zone puts in its items folder besides the defaults: the trusted
certificates and the CRL, at names every side derives the same way.

The hub writes them (it is their only source: they are one-way items);
a device starts with the ones enrolment gave it, so its first connection
only fetches what changed since.
"""

import re

from pz.sync.items import DEFAULTS

__all__ = ["CRL", "trustedHubPath", "trustedDevicePath", "zoneItems"]

#: The zone's CRL among the items.
CRL = "crl.pem"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def trustedHubPath(zoneId: str) -> str:
    """
    Where a zone's CA certificate is kept among the trusted PZH
    certificates: this zone's own, and later its friends'.
    """
    return f"certificates/trusted-pzh/{_UNSAFE.sub('_', zoneId)}.pem"


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
