# -*- test-case-name: tests.mesh.portal.test_zone -*-
"""
The seam between the Mesh portal and whatever hosts it.

A portal running inside a personal zone hub can do one thing a standalone
portal cannot: when an administration device accepts a new device's
connection (ConnectComplete), give that device a zone certificate, so that
the Mesh route becomes a second way to enrol beside pairing codes. The
portal does that through an L{IZoneEnroller} it is given; a portal given
none (C{twistd meshportal}) only records the signed result.
"""

from zope.interface import Interface

__all__ = ["IZoneEnroller"]


class IZoneEnroller(Interface):
    """
    Issues zone certificates to devices accepted through the Mesh portal.
    """

    def enrolFromMesh(deviceName: str, csrPEM: str, deviceUDF: str) -> dict:
        """
        Enrol a device whose connection an administration device of the
        account has just accepted, with a signature the portal checked.

        @param deviceName: the name the device asked for (the last part of
            its zone id).
        @param csrPEM: a PEM certificate signing request for the device's
            zone key, which the portal checked is the key the device's
            signed profile names as its authentication key.
        @param deviceUDF: the device profile's UDF, for the records.
        @return: a dict with C{certificate}, C{ca} and C{crl} (PEM text),
            C{hub} (C{host:port}), C{device} (its zone id) and C{zone}.
        @raise pz.errors.ZoneError: C{NAME_TAKEN} if an unrevoked device of
            the zone has that name, C{BAD_REQUEST} for a name that cannot be
            one, C{CERT_INVALID} for a request that cannot be signed.
            Nothing is issued or stored when it raises.
        """
