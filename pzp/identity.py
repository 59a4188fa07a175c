# -*- test-case-name: tests.pzp.test_lifecycle -*-
"""
The zone credentials a device in Hub mode holds.

Renewal replaces the key and certificate, revocation handling the CRL;
both go through L{Identity}, which writes the zone directory first and
only then uses the new credentials, so memory never runs ahead of disk.
"""

import attrs
from zope.interface import implementer

from pzp.seams import IIdentity

__all__ = ["Identity"]


@implementer(IIdentity)
class Identity:
    """
    The credentials in use, kept in step with the zone directory.
    """

    def __init__(self, zoneDir) -> None:
        self._zoneDir = zoneDir
        self.current = zoneDir.load()

    def replaceIdentity(self, key, cert) -> None:
        self._zoneDir.replaceIdentity(key, cert)
        self.current = attrs.evolve(self.current, key=key, cert=cert)

    def replaceCRL(self, crl) -> None:
        self._zoneDir.replaceCRL(crl)
        self.current = attrs.evolve(self.current, crl=crl)
