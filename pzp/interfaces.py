# -*- test-case-name: tests.pzp.test_hublink -*-
"""
The seams between the proxy and its links, written down as interfaces, so
that what each part needs of the other is stated once and a wrong argument
fails when the part is made.
"""

from zope.interface import Attribute

from pz.link import ILinkOwner

__all__ = ["IHubLinkOwner", "IDeviceMessageOwner"]


class IDeviceMessageOwner(ILinkOwner):
    """
    What a link that carries device-to-device messages (L{pzp.devicemessages})
    needs from its owner.
    """

    inbox = Attribute("the L{pzp.inbox.Inbox} received texts are kept in")
    calls = Attribute("the L{pzp.calls.CallWorker} that serves and tracks service calls")


class IHubLinkOwner(IDeviceMessageOwner):
    """
    What the PZP's hub link (L{pzp.hublink.HubLinkProtocol}) needs from the
    proxy.
    """

    settings = Attribute("the proxy's settings: C{keepalive} and C{requestTimeout}, in seconds")
    credentials = Attribute(
        "the device's zone credentials: C{deviceId}, C{zoneId} and the C{crl} it holds")
    hubInputs = Attribute("the Hub machine; the link feeds it C{lost(reason)} once registered")
    meshApprovals = Attribute(
        "the L{pzp.meshapprovals.MeshApprovals} that answers the hub's Mesh requests, or None "
        "(the proxy runs without --mesh-approvals)")

    def peersUpdated(update):
        """
        Apply the hub's C{pzpUpdate} payload (its device lists checked).
        """

    def crlReceived(crl):
        """
        A whole CRL came from the hub (not yet checked against the zone CA).
        """

    def syncReceived(payload):
        """
        A synchronisation message from the hub (L{pz.sync.engine}'s names).
        """

    def renew(link):
        """
        Renew the device's certificate over C{link}; a Deferred that fires
        once the new identity is stored.
        """
