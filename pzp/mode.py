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

from typing import Callable, Protocol

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

    @ivar peers: the Peer mode worker (L{pzp.peermode.PeerMode}).
    @ivar peerServer: its listening port (L{pzp.peerserver.PeerServer}).
    @ivar discovery: announces the device and lists the zone's services.
    @ivar calls: the device's call worker (L{pzp.calls.CallWorker}).
    @ivar peerConnection: whether to dial peers now (the preference).
    """

    identity: object = attrs.field(converter=IIdentity)
    inbox: object
    hubMode: object = attrs.field(converter=IHubMode)
    renewal: object = attrs.field(converter=IRenewal)
    revocation: object = attrs.field(converter=IRevocation)
    directory: object = attrs.field(converter=IPeerDirectory)
    sync: object = attrs.field(converter=ISync)
    peers: object
    peerServer: object
    discovery: object
    calls: object
    peerConnection: Callable[[], bool]

    def start(self) -> None:
        self.sync.start()
        self.peerServer.start()
        self.hubMode.start()

    def stop(self) -> None:
        self.renewal.stop()
        self.sync.stop()
        self.peers.stop()
        self.peerServer.stop()
        self.calls.stop()

    def leave(self) -> None:
        self.hubMode.stopReconnecting()
        self.stop()

    def status(self) -> dict:
        cert = self.identity.current.cert
        return {
            **self.hubMode.status(),
            "peers": self.peerStates(),
            "peer_port": self.peerServer.port(),
            "certificate": {
                "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat(timespec="seconds"),
            },
            "crl": self.revocation.status(),
            "sync": self.sync.status(),
        }

    def peerStates(self) -> dict:
        """
        The Peer machine state of every device the hub lists or this
        device has a machine for, by device id.
        """
        peers = dict.fromkeys(self.directory.peers(), "NotConnected")
        peers.pop(self.identity.current.deviceId, None)
        peers.update(self.peers.status())
        return dict(sorted(peers.items()))

    def peersUpdated(self, update: dict) -> None:
        """
        The hub's C{pzpUpdate}: the directory takes it, and each device
        listed with a peer endpoint is dialled unless linked already (when
        the C{peer_connection} preference is on).
        """
        self.directory.update(update)
        for deviceId in update.get("left", []):
            if isinstance(deviceId, str):
                self.peers.peerGone(deviceId)
        if not self.peerConnection():
            return
        for deviceId, entry in self.directory.peers().items():
            peer, fingerprint = entry.get("peer"), entry.get("fingerprint")
            if (isinstance(peer, dict) and isinstance(peer.get("host"), str)
                    and isinstance(peer.get("port"), int) and 0 < peer["port"] < 65536
                    and isinstance(fingerprint, str)):
                self.peers.peerAvailable(deviceId, peer["host"], peer["port"], fingerprint)

    def route(self, to: str):
        """
        The link that carries traffic for device C{to}, and its name: the
        peer link while that device's Peer machine is Connected (the hub
        up or not), else the hub link.

        @raise ZoneError: C{NOT_CONNECTED} when there is neither.
        """
        link = self.peers.linkFor(to)
        if link is not None:
            return link, "peer"
        link = self.hubMode.currentLink()
        if link is None:
            raise ZoneError("NOT_CONNECTED", f"no link to {to}: the hub is not connected "
                                             "and there is no peer link to it")
        return link, "hub"

    def send(self, to: str, payload: dict) -> Deferred:
        if not payload.get("queue"):
            link = self.peers.linkFor(to)
            if link is not None:
                return link.request(to, payload)
        return self.hubMode.send(to, payload)

    def call(self, to: str, service: str, method: str, params, timeout) -> Deferred:
        """
        Call C{service.method} on device C{to} over its route; fires with
        C{{"result": ..., "via": "peer" | "hub" | "local"}}.
        """
        if to == self.identity.current.deviceId:
            d = self.calls.callLocal(service, method, params)
            via = "local"
        else:
            link, via = self.route(to)
            d = self.calls.call(link, to, service, method, params, timeout)
        return d.addCallback(lambda result: {"result": result, "via": via})

    def services(self) -> list:
        """
        Every service this device can see (L{pzp.discovery.Discovery}).
        """
        connected = self.hubMode.currentLink() is not None
        online = self.directory.peers()
        return self.discovery.services(self.identity.current.deviceId, self.peers.services(),
                                       lambda deviceId: connected and deviceId in online)


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
        return {"mode": "Virgin", **core.virgin.status(), "peers": {}}

    @pep614(Hub.upon(ModeInputs.status).loop())
    def hubStatus(inputs: ModeInputs, core: ModeCore, workers: object) -> dict:
        return {"mode": "Hub", **workers.status()}

    # Back in Virgin mode in the specification's terms, with no code to
    # enrol with: a new one means starting the proxy again.
    @pep614(Left.upon(ModeInputs.status).loop())
    def leftStatus(inputs: ModeInputs, core: ModeCore) -> dict:
        return {"mode": "Virgin", "state": "NotConnected", "hub": None, "peers": {}}

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
