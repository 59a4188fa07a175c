# -*- test-case-name: tests.pzp.test_hublink -*-
"""
The seams between the proxy and its links, written down as interfaces, so
that what each part needs of the other is stated once and a wrong argument
fails when the part is made.
"""

from zope.interface import Attribute, Interface

from pz.link import ILinkOwner

__all__ = ["IHubLinkOwner", "IDeviceMessageOwner", "IPromptHandler"]


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


class IPromptHandler(Interface):
    """
    Who asks the person when the policy says to ask (webinos' prompt
    effects): the embedding application implements it (a dialog, a
    notification); L{pzp.prompts.PromptQueue} is the built-in one, answered
    with C{pzctl answer}.
    """

    def prompt(request, decision):
        """
        Ask whether the call C{request} (a L{pz.policy.Request}) may go
        ahead; C{decision} (a L{pz.policy.Decision}) names the rule and its
        prompt kind (C{oneshot}, C{session}, C{blanket}).

        @return: a L{Deferred} firing with a L{pzp.prompts.PromptAnswer};
            it may be cancelled (the call was given up), and the handler
            then stops asking.
        """
