# -*- test-case-name: tests.pzp.test_mode -*-
"""
The proxy's top-level mode: in no zone yet (Virgin), in a zone (Hub), or
revoked from it and erased (Left).

The Mode machine::

    Virgin --enterHub--> Hub --leave--> Left

Each state holds what it needs and nothing else: Virgin the enrolment
worker (built once, with the pairing code), Hub the workers of one zone
membership (built on entry from the stored credentials), Left nothing.
Leaving the zone drops the Hub workers with the state, so no field is
cleared by hand.  The proxy alone feeds this machine.
"""

from typing import Protocol

import attrs
from automat import TypeMachineBuilder, pep614
from twisted.internet.defer import Deferred
from zope.interface import Interface, implementer

from pz.errors import ZoneError
from pzp.seams import (
    IHubMode, IIdentity, IPeerDirectory, IRenewal, IRevocation, ISync, IVirginMode,
)

__all__ = ["ModeMachine", "ModeInputs", "ModeCore", "IHubWorkers", "HubWorkers"]


class IHubWorkers(Interface):
    """
    The workers of one zone membership, as the Mode machine's Hub state
    holds them.
    """

    def start() -> None:
        """
        Start connecting to the hub.
        """

    def stop() -> None:
        """
        The proxy stops: cancel what is scheduled.
        """

    def leave() -> None:
        """
        The zone is erased: stop reconnecting and renewing for good.
        """

    def status() -> dict:
        """
        State, hub, peers, certificate and CRL for the proxy's status.
        """

    def send(to: str, payload: dict) -> Deferred:
        """
        A request to another device over the hub link.
        """


@implementer(IHubWorkers)
@attrs.frozen
class HubWorkers:
    """
    The Hub mode workers the proxy built for the stored credentials, and
    the inbox the hub link writes to.
    """

    identity: object = attrs.field(converter=IIdentity)
    inbox: object
    hubMode: object = attrs.field(converter=IHubMode)
    renewal: object = attrs.field(converter=IRenewal)
    revocation: object = attrs.field(converter=IRevocation)
    directory: object = attrs.field(converter=IPeerDirectory)
    sync: object = attrs.field(converter=ISync)

    def start(self) -> None:
        self.sync.start()
        self.hubMode.start()

    def stop(self) -> None:
        self.renewal.stop()
        self.sync.stop()

    def leave(self) -> None:
        self.hubMode.stopReconnecting()
        self.renewal.stop()
        self.sync.stop()

    def status(self) -> dict:
        cert = self.identity.current.cert
        return {
            **self.hubMode.status(),
            "peers": sorted(self.directory.peers()),
            "certificate": {
                "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(timespec="seconds"),
            },
            "crl": self.revocation.status(),
            "sync": self.sync.status(),
        }

    def send(self, to: str, payload: dict) -> Deferred:
        return self.hubMode.send(to, payload)


class ModeInputs(Protocol):
    def enrol(self) -> None:
        "The proxy starts in no zone: enrol with the pairing code."

    def enterHub(self) -> None:
        "Credentials are stored (now or earlier): join the zone's hub."

    def leave(self) -> None:
        "The hub proved this device revoked and the zone is erased."

    def stop(self) -> None:
        "The proxy stops."

    def status(self) -> dict:
        "Mode, state, hub and peers (and more in Hub mode)."

    def send(self, to: str, payload: dict) -> Deferred:
        "A request to another device of the zone."

    def hub(self) -> object:
        "The Hub workers, or None outside Hub mode."

    def name(self) -> str:
        "The mode's name as the status gives it."


class ModeCore:
    """
    The Mode machine's dependencies.

    @ivar virgin: the enrolment worker.
    @ivar buildHub: builds and wires the Hub workers for the stored
        credentials (the proxy's L{pzp.proxy.Proxy._buildHubWorkers}).
    """

    def __init__(self, virgin, buildHub) -> None:
        self.virgin = IVirginMode(virgin)
        self.buildHub = buildHub


def _joinZone(inputs: ModeInputs, core: ModeCore) -> object:
    workers = IHubWorkers(core.buildHub())
    workers.start()
    return workers


def _notEnrolled(*args, **kwargs) -> Deferred:
    raise ZoneError("NOT_CONNECTED", "this device has not enrolled in a zone yet")


def _buildMode():
    builder = TypeMachineBuilder(ModeInputs, ModeCore)
    Virgin = builder.state("Virgin")
    Hub = builder.state("Hub", _joinZone)
    Left = builder.state("Left")

    Virgin.upon(ModeInputs.enterHub).to(Hub).returns(None)

    @pep614(Virgin.upon(ModeInputs.enrol).loop())
    def enrol(inputs: ModeInputs, core: ModeCore) -> None:
        core.virgin.start()

    @pep614(Hub.upon(ModeInputs.leave).to(Left))
    def leave(inputs: ModeInputs, core: ModeCore, workers: object) -> None:
        workers.leave()

    @pep614(Virgin.upon(ModeInputs.stop).loop())
    def stopVirgin(inputs: ModeInputs, core: ModeCore) -> None:
        core.virgin.stop()

    @pep614(Hub.upon(ModeInputs.stop).loop())
    def stopHub(inputs: ModeInputs, core: ModeCore, workers: object) -> None:
        workers.stop()

    Left.upon(ModeInputs.stop).loop().returns(None)

    @pep614(Virgin.upon(ModeInputs.status).loop())
    def virginStatus(inputs: ModeInputs, core: ModeCore) -> dict:
        return {"mode": "Virgin", **core.virgin.status(), "peers": []}

    @pep614(Hub.upon(ModeInputs.status).loop())
    def hubStatus(inputs: ModeInputs, core: ModeCore, workers: object) -> dict:
        return {"mode": "Hub", **workers.status()}

    # Back in Virgin mode in the specification's terms, with no code to
    # enrol with: a new one means starting the proxy again.
    @pep614(Left.upon(ModeInputs.status).loop())
    def leftStatus(inputs: ModeInputs, core: ModeCore) -> dict:
        return {"mode": "Virgin", "state": "NotConnected", "hub": None, "peers": []}

    @pep614(Hub.upon(ModeInputs.send).loop())
    def send(inputs: ModeInputs, core: ModeCore, workers: object, to: str,
             payload: dict) -> Deferred:
        return workers.send(to, payload)

    Virgin.upon(ModeInputs.send).loop()(_notEnrolled)
    Left.upon(ModeInputs.send).loop()(_notEnrolled)

    @pep614(Hub.upon(ModeInputs.hub).loop())
    def hub(inputs: ModeInputs, core: ModeCore, workers: object) -> object:
        return workers

    Virgin.upon(ModeInputs.hub).loop().returns(None)
    Left.upon(ModeInputs.hub).loop().returns(None)

    Virgin.upon(ModeInputs.name).loop().returns("Virgin")
    Hub.upon(ModeInputs.name, nodata=True).loop().returns("Hub")
    Left.upon(ModeInputs.name).loop().returns("Virgin")
    return builder.build()


ModeMachine = _buildMode()
