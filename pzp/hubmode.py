# -*- test-case-name: tests.pzp.test_hubmode -*-
"""
Hub mode: an enrolled device keeps its authenticated link to the hub.

The Hub machine has the states and transitions of the PZP
specification's Hub diagram::

    NotConnected --> Connecting     : Successful
    Connecting --> NotConnected     : Error / Timeout / Hangup
    Connecting --> Connected        : Successful
    Connected --> Disconnecting     : Error / Timeout / Hangup
    Disconnecting --> NotConnected  : No valid connection

L{HubMode} owns it and is the only thing that feeds it: the reconnecting
service's attempts reach it through L{_ObservedEndpoint} and the link's
verdict through C{prepareConnection}; the link reports its loss to
L{HubMode.lost}.  The machine acts through L{IHubActions}, which
L{HubMode} implements by passing each event on to the worker it concerns
(renewal, revocation, the peer directory, synchronisation).
"""

from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz.errors import ZoneError
from pz.tls import pzpClientOptions
from pzp.hublink import RenewedError, RevokedError
from pzp.seams import (
    IHubMode, IIdentity, IPeerDirectory, IProxyEvents, IRenewal, IRevocation, ISync, asZoneError,
)

__all__ = ["HubMode", "HubMachine", "HubInputs", "HubCore", "IHubActions"]

#: Hub refusals that reconnecting cannot cure: the certificate is not one
#: this hub will take (expired past the grace period, another zone's, not a
#: device's), or the hub is not this zone's.
_HOPELESS = frozenset({"CERT_EXPIRED", "CERT_UNTRUSTED", "CERT_INVALID", "HUB_UNTRUSTED"})


class IHubActions(Interface):
    """
    What the Hub machine asks its worker to do.
    """

    def linkUp(link) -> None:
        """
        The link is registered: start what runs while connected.
        """

    def cleanUp(reason) -> None:
        """
        The link is gone: release what was tied to it.
        """

    def connectFailed(reason) -> None:
        """
        An attempt to reach the hub failed.
        """

    def leaveZone(evidence) -> None:
        """
        The hub said this device is revoked: check the evidence and, if it
        holds, erase the zone data and return to Virgin mode.
        """


class HubInputs(Protocol):
    def attempt(self) -> None:
        "The reconnecting service starts an attempt."

    def connected(self, link: object) -> None:
        "TLS is up, the hub is verified and it registered this device."

    def failed(self, reason: object) -> None:
        "The attempt failed: error, timeout or hang-up."

    def lost(self, reason: object) -> None:
        "The registered link failed: error, timeout or hang-up."

    def revoked(self, evidence: object) -> None:
        "The hub refused this device as revoked, with a CRL as evidence."

    def cleanedUp(self) -> None:
        "Clean-up after a lost link is done."

    def send(self, to: str, payload: dict) -> Deferred:
        "Send a request to another device; fires with its answer."

    def state(self) -> str:
        "The name of the current state."

    def currentLink(self) -> object:
        "The registered link while Connected, else None."


class HubCore:
    """
    The Hub machine's dependencies.
    """

    def __init__(self, actions) -> None:
        self.actions = IHubActions(actions)


def _notConnected(*args, **kwargs) -> Deferred:
    return fail(ZoneError("NOT_CONNECTED"))


def _rememberLink(inputs: HubInputs, core: HubCore, link: object) -> object:
    return link


def _buildHub():
    builder = TypeMachineBuilder(HubInputs, HubCore)
    NotConnected = builder.state("NotConnected")
    Connecting = builder.state("Connecting")
    Connected = builder.state("Connected", _rememberLink)
    Disconnecting = builder.state("Disconnecting")

    for state, name in ((NotConnected, "NotConnected"), (Connecting, "Connecting"),
                        (Disconnecting, "Disconnecting")):
        state.upon(HubInputs.state).loop().returns(name)
        state.upon(HubInputs.send).loop()(_notConnected)
        state.upon(HubInputs.currentLink).loop().returns(None)

    @pep614(Connected.upon(HubInputs.state).loop())
    def connectedState(inputs: HubInputs, core: HubCore, link: object) -> str:
        return "Connected"

    @pep614(Connected.upon(HubInputs.currentLink).loop())
    def currentLink(inputs: HubInputs, core: HubCore, link: object) -> object:
        return link

    NotConnected.upon(HubInputs.attempt).to(Connecting).returns(None)

    @pep614(Connecting.upon(HubInputs.connected).to(Connected))
    def linkUp(inputs: HubInputs, core: HubCore, link: object) -> None:
        core.actions.linkUp(link)

    @pep614(Connecting.upon(HubInputs.failed).to(NotConnected))
    def connectFailed(inputs: HubInputs, core: HubCore, reason: object) -> None:
        core.actions.connectFailed(reason)

    @pep614(Connecting.upon(HubInputs.revoked).to(NotConnected))
    def revoked(inputs: HubInputs, core: HubCore, evidence: object) -> None:
        core.actions.leaveZone(evidence)

    @pep614(Connected.upon(HubInputs.send).loop())
    def send(inputs: HubInputs, core: HubCore, link: object, to: str, payload: dict) -> Deferred:
        return link.request(to, payload)

    @pep614(Connected.upon(HubInputs.lost).to(Disconnecting))
    def lost(inputs: HubInputs, core: HubCore, link: object, reason: object) -> None:
        core.actions.cleanUp(reason)
        inputs.cleanedUp()

    Disconnecting.upon(HubInputs.cleanedUp).to(NotConnected).returns(None)
    return builder.build()


HubMachine = _buildHub()


@implementer(IStreamClientEndpoint)
class _ObservedEndpoint:
    """
    Tells the Hub mode worker when the reconnecting service starts an
    attempt and when the attempt fails before any protocol exists.  The
    real endpoint is made per attempt, so a renewed certificate is used
    from the next connection on.
    """

    def __init__(self, makeEndpoint, attempting, failed) -> None:
        self._makeEndpoint = makeEndpoint
        self._attempting = attempting
        self._failed = failed

    def connect(self, factory):
        self._attempting()

        def failed(failure):
            self._failed(asZoneError(failure))
            return failure

        return self._makeEndpoint().connect(factory).addErrback(failed)


@implementer(IHubMode, IHubActions)
class HubMode:
    """
    Keeps the link to the hub with a reconnecting service.

    @ivar client: the reconnecting service, once started.
    """

    _log = Logger()

    def __init__(self, reactor, settings, linkFactory, parent) -> None:
        """
        @param linkFactory: builds the hub link protocols.
        @param parent: the service collection the reconnecting service
            runs in.
        """
        self._reactor = reactor
        self._settings = settings
        self._linkFactory = linkFactory
        self._parent = parent
        self.client = None
        self._machine = HubMachine(HubCore(self))

    def wire(self, events, identity, renewal, revocation, directory, sync,
             discovery=None, meshApprovals=None) -> None:
        """
        @param discovery: told when the link is up and lost, to announce
            the device to the hub (L{pzp.discovery.Discovery}).
        @param meshApprovals: told when the link is up and lost, to tell
            the hub which Mesh accounts this device answers for
            (L{pzp.meshapprovals.MeshApprovals}, with C{--mesh-approvals}).
        """
        self._discovery = discovery
        self._meshApprovals = meshApprovals
        self._events = IProxyEvents(events)
        self._identity = IIdentity(identity)
        self._renewal = IRenewal(renewal)
        self._revocation = IRevocation(revocation)
        self._directory = IPeerDirectory(directory)
        self._sync = ISync(sync)

    # --- IHubMode ---------------------------------------------------------------

    def start(self) -> None:
        endpoint = _ObservedEndpoint(self._makeEndpoint, self._attempting, self._attemptFailed)
        self.client = ClientService(
            endpoint, self._linkFactory,
            retryPolicy=backoffPolicy(self._settings.initialBackoff, self._settings.maxBackoff),
            clock=self._reactor,
            prepareConnection=self._prepareLink,
        )
        self.client.setServiceParent(self._parent)

    def _attempting(self) -> None:
        self._machine.attempt()

    def _attemptFailed(self, error) -> None:
        self._machine.failed(error)

    def _makeEndpoint(self):
        creds = self._identity.current
        return wrapClientTLS(
            pzpClientOptions(creds.caCert, creds.key, creds.cert, creds.hubHost),
            HostnameEndpoint(self._reactor, creds.hubHost, creds.hubPort, timeout=30),
            clock=self._reactor,
        )

    def stopReconnecting(self) -> None:
        """
        Stop the reconnecting service once it has taken the current
        attempt's outcome in: stopped from inside prepareConnection, it
        would have no transition for the refused link's close.
        """
        client = self.client
        self._reactor.callLater(0, lambda: client.parent and client.disownServiceParent())

    def lost(self, reason) -> None:
        self._machine.lost(reason)

    def send(self, to: str, payload: dict):
        return self._machine.send(to, payload)

    def state(self) -> str:
        return self._machine.state()

    def currentLink(self):
        return self._machine.currentLink()

    def status(self) -> dict:
        creds = self._identity.current
        return {"state": self._machine.state(), "hub": f"{creds.hubHost}:{creds.hubPort}"}

    def _prepareLink(self, protocol):
        """
        Wait for the hub's verdict on a new link and feed it to the Hub
        machine.  The reconnecting service then counts the link as made
        either way: a refused link closes right after and the service
        reconnects as for any lost link.  (Failing here instead would leave
        the service with no transition for the refused link's close.)  A
        refusal that retrying cannot cure stops the reconnecting.
        """
        def registered(link):
            self._machine.connected(link)

        def refused(failure):
            error = asZoneError(failure)
            if isinstance(error, RevokedError):
                self._machine.revoked(error)
                return
            self._machine.failed(error)
            if error.code in _HOPELESS and not isinstance(error, RenewedError):
                self._log.error("the hub refused this device: {code}: {message}. Not retrying; "
                                "restart the proxy once this is fixed.",
                                code=error.code, message=error.message)
                self.stopReconnecting()
                self._events.giveUp(error)

        return protocol.registered.addCallbacks(registered, refused)

    # --- IHubActions ------------------------------------------------------------

    def linkUp(self, link) -> None:
        self._events.clearError()
        self._log.info("connected to the hub as {device}",
                       device=self._identity.current.deviceId)
        self._renewal.linkUp(link)
        self._sync.linkUp(link)
        if self._discovery is not None:
            self._discovery.linkUp(link)
        if self._meshApprovals is not None:
            self._meshApprovals.linkUp(link)

    def cleanUp(self, reason) -> None:
        self._renewal.linkLost()
        self._sync.linkLost()
        if self._discovery is not None:
            self._discovery.linkLost()
        if self._meshApprovals is not None:
            self._meshApprovals.linkLost()
        self._directory.clear()
        self._log.info("lost the hub link: {why}", why=reason.getErrorMessage())

    def connectFailed(self, reason) -> None:
        self._events.reportError(reason)
        self._log.info("could not reach the hub: {code}: {message}",
                       code=reason.code, message=reason.message)

    def leaveZone(self, evidence) -> None:
        self._revocation.refusedAsRevoked(evidence)
