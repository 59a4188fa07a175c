# -*- test-case-name: tests.pz.test_testing -*-
"""
What the in-memory zone of L{pz.testing} needs from the hub's package and
from the device's package.

The core never imports either end: each end ships an object providing one
of these interfaces and names it in its package's entry points, under the
group L{pz.testing.ends.GROUP}; L{pz.testing.ends} finds them there and
checks them with L{zope.interface.verify.verifyObject} before use, so an
end that drifts from its contract fails at once with the missing name.
"""

from zope.interface import Attribute, Interface

__all__ = ["IMemoryHubEnd", "IMemoryHub", "IMemoryDeviceEnd"]


class IMemoryHub(Interface):
    """
    A real hub built for a test: its zone, its store and the hub itself,
    with what a test needs to drive it.
    """

    zone = Attribute(
        "The hub's zone: C{zoneId}, C{caKey}, C{caCert}, C{caFingerprint}, C{hubKey}, "
        "C{hubCert} and C{path(name)} for a file in its directory.")
    store = Attribute("The hub's store.")
    storePath = Attribute("The file the store keeps its data in, or C{None} when in memory.")
    hub = Attribute("The hub.")
    coalesce = Attribute("Seconds the hub gathers membership changes before it announces them.")

    def deviceFactory():
        """
        A protocol factory serving devices and enrolling ones, without TLS
        (the caller wraps it).
        """

    def enrol(name, csrPEM, address):
        """
        Enrol a device called C{name} with a fresh pairing code, as the hub
        does for one that presents it from C{address}; its certificate.
        """

    def revoke(deviceId):
        """
        Revoke a device as C{pzctl revoke} does: CRL first, then its live
        link dropped, then the new CRL pushed to the others.
        """

    def crl():
        """
        The zone's current certificate revocation list.
        """

    def linkCount():
        """
        How many devices are connected and registered.
        """

    def stop():
        """
        Stop what the hub runs on the clock by itself (the scan of its
        synchronised items).
        """

    def close():
        """
        Stop, and close the store.
        """


class IMemoryHubEnd(Interface):
    """
    The hub's package, as the in-memory zone builds hubs with it.
    """

    def buildHub(directory, clock, user, host, hubPort, webPort, settings, onDisk):
        """
        Create a zone in C{directory} and a hub on C{clock} serving it, with
        C{settings} (the hub's defaults when C{None}); its store in a file
        of C{directory} if C{onDisk}, in memory otherwise.

        @rtype: L{IMemoryHub}
        """


class IMemoryDeviceEnd(Interface):
    """
    The device's package, as the in-memory zone builds devices with it.
    """

    def storeCredentials(dataDir, zoneId, deviceId, hubHost, hubPort, key, cert, caCert, crl):
        """
        Write what an enrolled device keeps into C{dataDir}, as enrolment
        would.
        """

    def buildDevice(dataDir, reactor, name, pairCode, settings, giveUp):
        """
        The device's proxy service over C{dataDir} on C{reactor}, not yet
        started (C{settings} the device's defaults when C{None}).
        """
