# -*- test-case-name: tests.pzh.test_protocol -*-
"""
The seams between the hub and its device links, written down as
interfaces, so that what each part needs of the other is stated once and a
wrong argument fails when the part is made or wired.
"""

from zope.interface import Attribute, Interface

from pz.link import ILinkOwner

__all__ = ["IDeviceLinkOwner", "IZoneLink"]


class IDeviceLinkOwner(ILinkOwner):
    """
    What the hub's end of a device link (L{pzh.protocol.HubProtocol})
    needs from the hub.
    """

    zone = Attribute("the zone: C{zoneId}, C{caPEM}, C{host} and C{port}")
    settings = Attribute("the L{pzh.hub.HubSettings}: queue limits and timeouts")
    maxFrame = Attribute("the largest frame, in bytes, read from a device")
    handshakeTimeout = Attribute("seconds a link may take to complete its TLS handshake")
    idleTimeout = Attribute("seconds of silence after which a device link is dropped")
    refusals = Attribute("the rate-limited log refusals are written to")
    queues = Attribute("the L{pzh.flow.QueueBudget} all links' send queues share")
    authority = Attribute("the L{pzh.authority.ZoneAuthority} that checks certificates")
    enrolment = Attribute("the L{pzh.enrolment.Enrolment} that serves pairing codes")
    friends = Attribute("the L{pzh.friends.Friends}: invitations and the zones trusted")
    zoneLinks = Attribute("the L{pzh.zonelink.ZoneLinks}: links with friend zones' hubs")
    registry = Attribute("the L{pzh.registry.Registry} of connected devices")
    router = Attribute("the L{pzh.router.Router} that handles a registered device's messages")
    metrics = Attribute("the L{pzh.metrics.IHubMetrics} handshakes and refusals are counted in")

    def newBucket():
        """
        A fresh token bucket, for a link not yet known to be a device.
        """

    def bucketFor(deviceId):
        """
        The device's own token bucket, kept across its connections.
        """


class IZoneLink(Interface):
    """
    What the registry, the router and the hub need from a registered
    device's link.
    """

    deviceId = Attribute("the device id its certificate proves")
    address = Attribute("C{host:port} it connected from")
    fingerprint = Attribute("the UDF of its certificate's key, shown in C{pzpUpdate}")
    transport = Attribute("its transport, closed when it is replaced or revoked")
    replaced = Attribute("set when a newer link of the same device took its place")
    crlSent = Attribute("the number of the last CRL sent on it, or None")
    peerPort = Attribute("the port its peer server listens on, as it said (C{peerEndpoint}); "
                         "0 for none")

    def sendString(data):
        """
        Send one frame body as it is (a hub message already encoded).
        """

    def sendMessage(to, payload, msgId=None):
        """
        Send a hub message; returns its id.
        """

    def deliver(data, sender):
        """
        Forward a frame body from the link C{sender}, which waits if this
        link's queue is full.
        """

    def request(to, payload, timeout=None):
        """
        Send a hub message that expects an answer; a Deferred firing with
        the answer's payload (L{pz.link.Link.request}).
        """

    def answered(payload):
        """
        Fire the request C{payload} answers (by its C{ref}); whether one
        was waiting on this link.
        """
