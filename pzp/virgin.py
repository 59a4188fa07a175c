# -*- test-case-name: tests.pzp.test_virgin -*-
"""
Virgin mode: a device in no zone yet enrols with its pairing code.

The Virgin machine has the states and transitions of the PZP
specification's Virgin diagram::

    NotConnected --> Connecting : Successful (Resolved IP Address)
    Connecting --> NotConnected : Error / Timeout / Hangup
    Connecting --> Connected    : Successful
    Connected --> Hub           : Successful stored certificate

L{VirginMode} owns it: it alone feeds the machine (from the proxy's
C{start}, the enrolment connection's outcome, the store and the retry
timer), and the machine acts through L{IVirginActions}.
"""

import random
from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz import pki
from pz.errors import ZoneError
from pz.tls import enrolmentClientOptions
from pzp.enrol import EnrolmentProtocol
from pzp.seams import IProxyEvents, IVirginMode, asZoneError
from pzp.zonedir import Credentials

__all__ = ["VirginMode", "VirginMachine", "VirginInputs", "VirginCore", "IVirginActions"]

#: Enrolment failures worth retrying: the hub may just not be up yet.
_RETRYABLE = frozenset({"NOT_CONNECTED", "TIMEOUT"})


class IVirginActions(Interface):
    """
    What the Virgin machine asks its worker to do.
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


@implementer(IVirginMode, IVirginActions)
class VirginMode:
    """
    Enrols this device with the hub its pairing code names, retrying what
    a later attempt may cure.

    @ivar retryCall: the scheduled retry, if any.
    """

    _log = Logger()

    def __init__(self, reactor, settings, zoneDir, deviceName: str, pairCode) -> None:
        self._reactor = reactor
        self._settings = settings
        self._zoneDir = zoneDir
        self._deviceName = deviceName
        self._pairCode = pairCode
        self._key = None
        self._attempts = 0
        self.retryCall = None
        self._events = None
        self._machine = VirginMachine(VirginCore(self))

    def wire(self, events) -> None:
        self._events = IProxyEvents(events)

    # --- IVirginMode ----------------------------------------------------------

    def start(self) -> None:
        if self._pairCode is None:
            error = ZoneError(
                "BAD_REQUEST", "this device is in no zone yet: start it with --pair CODE "
                "(get a code with: pzctl --hub-dir DIR pair --device NAME)")
            self._log.warn("{message}", message=error.message)
            self._events.reportError(error)
            self._events.giveUp(error)
            return
        self._machine.start()

    def stop(self) -> None:
        if self.retryCall is not None and self.retryCall.active():
            self.retryCall.cancel()

    def status(self) -> dict:
        code = self._pairCode
        return {"state": self._machine.state(),
                "hub": f"{code.host}:{code.port}" if code is not None else None}

    # --- IVirginActions -------------------------------------------------------

    def connect(self) -> None:
        code = self._pairCode
        if self._key is None:
            self._key = pki.newKey()
        protocol = EnrolmentProtocol(code, self._key, self._deviceName, self._reactor,
                                     self._settings.enrolTimeout)
        endpoint = wrapClientTLS(
            enrolmentClientOptions(code.host),
            HostnameEndpoint(self._reactor, code.host, code.port,
                             timeout=self._settings.enrolTimeout),
            clock=self._reactor,
        )
        self._log.info("enrolling as {name} with the hub at {host}:{port}",
                       name=self._deviceName, host=code.host, port=code.port)
        d = connectProtocol(endpoint, protocol)
        d.addCallback(lambda _: protocol.result)
        d.addCallbacks(self._machine.connected,
                       lambda f: self._machine.failed(asZoneError(f)))

    def store(self, result) -> None:
        try:
            self._zoneDir.store(Credentials(
                zoneId=result.zoneId, deviceId=result.deviceId, hubHost=result.hubHost,
                hubPort=result.hubPort, key=self._key, cert=result.cert,
                caCert=result.caCert, crl=result.crl,
            ))
        except OSError as e:
            self._machine.failed(ZoneError("INTERNAL", f"cannot store credentials: {e}"))
            return
        self._log.info("enrolled as {device}", device=result.deviceId)
        self._warnIfRenamed(result.deviceId)
        self._machine.stored()

    def _warnIfRenamed(self, deviceId: str) -> None:
        """
        A pairing code is made for one device name, and the hub enrols
        under that name whatever the device asked for: say so loudly
        rather than let a different name pass unnoticed.
        """
        enrolledAs = deviceId.rsplit("/", 1)[-1]
        if enrolledAs != self._deviceName:
            self._log.warn(
                "enrolled as {device}, not {asked!r}: the pairing code was made for "
                "{name!r}, and the code's name is the one that counts. To use another name, "
                "revoke this device and pair it with a code made for that name.",
                device=deviceId, asked=self._deviceName, name=enrolledAs)

    def enterHub(self) -> None:
        self._key = None
        self._events.enrolled()

    def enrolmentFailed(self, error) -> None:
        self._events.reportError(error)
        if error.code in _RETRYABLE and self._events.running:
            self._attempts += 1
            delay = min(self._settings.initialBackoff * 1.5 ** self._attempts,
                        self._settings.maxBackoff) * (0.5 + random.random() / 2)
            self._log.info("enrolment attempt failed ({code}: {message}); retrying in {delay:.1f}s",
                           code=error.code, message=error.message, delay=delay)
            self.retryCall = self._reactor.callLater(delay, self._machine.start)
        else:
            self._log.error("enrolment refused: {code}: {message}. Ask the hub for a new "
                            "pairing code.", code=error.code, message=error.message)
            self._events.giveUp(error)
