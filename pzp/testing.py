# -*- test-case-name: tests.pz.test_testing -*-
"""
The device's end of L{pz.testing}: builds real proxies for the in-memory
zone.

Registered in C{setup.cfg} under the entry-point group C{pz.testing} as
C{device}, so the core finds it without importing this package.
"""

from zope.interface import provider

from pz.testing.interfaces import IMemoryDeviceEnd
from pzp.proxy import Proxy, ProxySettings
from pzp.zonedir import Credentials, ZoneDirectory

__all__ = ["deviceEnd"]


@provider(IMemoryDeviceEnd)
class deviceEnd:
    """
    Builds devices for L{pz.testing}.
    """

    @staticmethod
    def storeCredentials(dataDir, zoneId, deviceId, hubHost, hubPort, key, cert, caCert,
                         crl) -> Credentials:
        credentials = Credentials(zoneId=zoneId, deviceId=deviceId, hubHost=hubHost,
                                  hubPort=hubPort, key=key, cert=cert, caCert=caCert, crl=crl)
        ZoneDirectory(dataDir).store(credentials)
        return credentials

    @staticmethod
    def buildDevice(dataDir, reactor, name, pairCode, settings, giveUp) -> Proxy:
        return Proxy(dataDir, reactor, name, pairCode,
                     settings if settings is not None else ProxySettings(), giveUp=giveUp)
