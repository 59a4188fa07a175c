# -*- test-case-name: tests.pzp.test_machine -*-
"""
The proxy's modes as state machines, one per diagram of the PZP
specification, with the states and transitions named as there.

Virgin mode (before enrolment)::

    NotConnected --> Connecting : Successful (Resolved IP Address)
    Connecting --> NotConnected : Error / Timeout / Hangup
    Connecting --> Connected    : Successful
    Connected --> Hub           : Successful stored certificate

Hub mode (enrolled)::

    NotConnected --> Connecting     : Successful
    Connecting --> NotConnected     : Error / Timeout / Hangup
    Connecting --> Connected        : Successful
    Connected --> Disconnecting     : Error / Timeout / Hangup
    Disconnecting --> NotConnected  : No valid connection

The machines decide; the protocols and the reconnecting service only feed
them inputs, and act through the small action interfaces below.  Both are
built at import time, so C{make docs} can draw them from this code.
"""

from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.internet.defer import Deferred, fail
from zope.interface import Interface

from pz.errors import ZoneError

__all__ = [
    "VirginInputs", "VirginMachine", "IVirginActions",
    "HubInputs", "HubMachine", "IHubActions",
]


# --- Virgin mode -----------------------------------------------------------


class IVirginActions(Interface):
    """
    What the Virgin machine asks the proxy to do.
    """

    def connect() -> None:
        """
        Open an enrolment connection to the hub named by the pairing code.
        """

    def store(result) -> None:
        """
        Store the credentials the hub issued, then feed C{stored()} or
        C{failed(error)}.
        """

    def enterHub() -> None:
        """
        Leave Virgin mode and start Hub mode with the stored credentials.
        """

    def enrolmentFailed(error) -> None:
        """
        An attempt failed; retry later if that can help, else report it.
        """


class VirginInputs(Protocol):
    def start(self) -> None:
        "Begin (or retry) enrolment."

    def connected(self, result: object) -> None:
        "The hub proved itself and issued this device's certificate."

    def failed(self, error: object) -> None:
        "Error, timeout or hang-up while enrolling or storing."

    def stored(self) -> None:
        "The certificate and keys are stored."

    def state(self) -> str:
        "The name of the current state."


class VirginCore:
    """
    The Virgin machine's dependencies.
    """

    def __init__(self, actions) -> None:
        self.actions = IVirginActions(actions)


def _buildVirgin():
    builder = TypeMachineBuilder(VirginInputs, VirginCore)
    NotConnected = builder.state("NotConnected")
    Connecting = builder.state("Connecting")
    Connected = builder.state("Connected")
    Hub = builder.state("Hub")

    for state, name in ((NotConnected, "NotConnected"), (Connecting, "Connecting"),
                        (Connected, "Connected"), (Hub, "Hub")):
        state.upon(VirginInputs.state).loop().returns(name)

    @pep614(NotConnected.upon(VirginInputs.start).to(Connecting))
    def connect(inputs: VirginInputs, core: VirginCore) -> None:
        core.actions.connect()

    @pep614(Connecting.upon(VirginInputs.connected).to(Connected))
    def store(inputs: VirginInputs, core: VirginCore, result: object) -> None:
        core.actions.store(result)

    @pep614(Connecting.upon(VirginInputs.failed).to(NotConnected))
    @pep614(Connected.upon(VirginInputs.failed).to(NotConnected))
    def failed(inputs: VirginInputs, core: VirginCore, error: object) -> None:
        core.actions.enrolmentFailed(error)

    @pep614(Connected.upon(VirginInputs.stored).to(Hub))
    def enterHub(inputs: VirginInputs, core: VirginCore) -> None:
        core.actions.enterHub()

    # Repeated start requests while an attempt runs, or after enrolment,
    # change nothing.
    Connecting.upon(VirginInputs.start).loop().returns(None)
    Connected.upon(VirginInputs.start).loop().returns(None)
    Hub.upon(VirginInputs.start).loop().returns(None)
    return builder.build()


VirginMachine = _buildVirgin()


# --- Hub mode ----------------------------------------------------------------


class IHubActions(Interface):
    """
    What the Hub machine asks the proxy to do.
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

    @pep614(Connected.upon(HubInputs.state).loop())
    def connectedState(inputs: HubInputs, core: HubCore, link: object) -> str:
        return "Connected"

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
