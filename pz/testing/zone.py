# -*- test-case-name: tests.pz.test_testing -*-
"""
A whole zone in memory for one test: a real hub and real device proxies,
their links over TLS with real certificates, pumped by
L{twisted.test.iosim} on one L{MemoryReactorClock} -- no sockets, no
threads, no sleeping.

As C{treq.testing.StubTreq} runs real requests against a real resource,
L{MemoryZone} runs the real hub and the real proxies; only the network is
replaced.  Devices that listen for peer links (Peer mode) get a port of
their own on 127.0.0.1, and their direct links are pumped like the hub's.
"""

import itertools

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.error import CannotListenError, ConnectionRefusedError
from twisted.python.failure import Failure

from pz import pki
from pz.testing.ends import deviceEnd
from pz.testing.hub import HOST, HUB_PORT, USER, MemoryHub
from pz.testing.loopback import address, connectPair, flushPumps, nowReactor

__all__ = ["MemoryZone"]

#: The first port handed to a device's peer server in memory.
FIRST_PEER_PORT = 41000


class _ListeningPort:
    """
    A device's peer server in memory: the port it was given, until it
    stops listening.
    """

    def __init__(self, servers: dict, port: int) -> None:
        self._servers = servers
        self.port = port

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", HOST, self.port)

    def startListening(self) -> None:
        pass

    def stopListening(self):
        self._servers.pop(self.port, None)
        return succeed(None)


class MemoryZone:
    """
    A hub and devices for one trial test.

    Outgoing connections the devices ask the reactor for are completed to
    the hub by L{flush} (and so by L{advance}); the zone stops every device
    and checks that nothing is left connected or scheduled when the test
    ends.

    @ivar reactor: the one clock and reactor of the hub and every device.
    @ivar memoryHub: the L{MemoryHub} under the zone, for what a protocol
        test needs (its store, raw connections).
    @ivar hub: the real hub.
    @ivar zoneId: the zone's id, C{user@127.0.0.1}.
    """

    def __init__(self, testCase, devices=(), *, reactor=None, hubSettings=None,
                 deviceSettings=None, user: str = USER) -> None:
        """
        @param testCase: the trial test the zone serves (directories from
            its C{mktemp}, checks and cleanups through it).
        @param devices: names of devices to enrol, start and connect at once.
        @param reactor: the L{MemoryReactorClock} to run on (one at the
            present by default).
        @param hubSettings: the hub's settings (its defaults when C{None}).
        @param deviceSettings: the devices' settings (their defaults when
            C{None}).
        @param user: the zone's user.
        """
        self.testCase = testCase
        self.reactor = reactor if reactor is not None else nowReactor()
        self.memoryHub = MemoryHub(testCase, hubSettings, clock=self.reactor, user=user,
                                   onDisk=False)
        self.hub = self.memoryHub.hub
        self.zoneId = self.memoryHub.zoneId
        self.deviceSettings = deviceSettings
        self._end = deviceEnd()
        self._devices = {}
        self._dataDirs = {}
        self.gaveUp = {}
        self.hubUp = True
        #: port -> the TLS factory of the device listening there.
        self._peerServers = {}
        self._peerPorts = itertools.count(FIRST_PEER_PORT)
        self._peerPortsGiven = set()
        self._clientPorts = itertools.count(FIRST_PEER_PORT + 10000)
        self.peerLinks = []
        self.reactor.listenTCP = self._listenTCP
        testCase.addCleanup(self.close)
        for name in devices:
            self.addDevice(name)

    def deviceId(self, name: str) -> str:
        """
        The id of the device called C{name}.
        """
        return self.memoryHub.deviceId(name)

    def device(self, name: str):
        """
        The device called C{name}: its real proxy service.

        @raise KeyError: if the zone has no such device.
        """
        return self._devices[name]

    def dataDir(self, name: str) -> str:
        """
        The data directory of the device called C{name}.
        """
        return self._dataDirs[name]

    def addDevice(self, name: str, settings=None):
        """
        Enrol a device called C{name} with the hub (as a pairing code
        would), write its credentials to a data directory of its own, start
        its proxy and let it connect.

        @param settings: this device's settings (the zone's otherwise).
        @return: the proxy.
        """
        if name in self._devices:
            raise ValueError(f"the zone already has a device called {name!r}")
        key, cert = self.memoryHub.enrolDevice(name)
        dataDir = self.testCase.mktemp()
        self._end.storeCredentials(dataDir, self.zoneId, self.deviceId(name), HOST, HUB_PORT,
                                   key, cert, self.memoryHub.zone.caCert, self.memoryHub.crl)
        self.gaveUp[name] = []
        proxy = self._end.buildDevice(dataDir, self.reactor, name, None,
                                      settings if settings is not None else self.deviceSettings,
                                      self.gaveUp[name].append)
        self._devices[name] = proxy
        self._dataDirs[name] = dataDir
        proxy.startService()
        self.flush()
        return proxy

    def _listenTCP(self, port, factory, backlog=50, interface=""):
        """
        Listen in memory: port 0 is given the next free peer port.
        """
        self.reactor.tcpServers.append((port, factory, backlog, interface))
        if port == 0:
            port = next(self._peerPorts)
        if port in self._peerServers:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        self._peerServers[port] = factory
        self._peerPortsGiven.add(port)
        return _ListeningPort(self._peerServers, port)

    def connectPending(self) -> int:
        """
        Complete every connection the devices asked the reactor for: to the
        hub (refused while L{hubDown}), or to a device's peer server.

        @raise AssertionError: if a device asked for another address (the
            zone has nothing else to reach).
        @return: how many were completed.
        """
        pending, self.reactor.tcpClients[:] = list(self.reactor.tcpClients), []
        # The reactor makes one connector with each TCP connection asked
        # for: one given up meanwhile (a cancelled dial, perhaps while an
        # earlier connection of this round was being made) is not completed.
        connectors = self.reactor.connectors[-len(pending):] if pending else []
        self.reactor.connectors[:] = []
        if len(connectors) != len(pending):
            connectors = [None] * len(pending)
        for (host, port, factory, _, _), connector in zip(pending, connectors):
            if connector is not None and connector.stoppedConnecting:
                continue
            if (host, port) == (HOST, HUB_PORT):
                if self.hubUp:
                    self.memoryHub.connectFactory(factory)
                else:
                    factory.clientConnectionFailed(
                        None, Failure(ConnectionRefusedError("the hub is down")))
            elif host == HOST and port in self._peerServers:
                self.peerLinks.append(connectPair(
                    self._peerServers[port], factory, self.reactor, address(HOST, port),
                    address(HOST, next(self._clientPorts))))
            elif host == HOST and port in self._peerPortsGiven:
                factory.clientConnectionFailed(None, Failure(ConnectionRefusedError(
                    "that device's peer server has stopped")))
            else:
                raise AssertionError(f"a device connected to {host}:{port}, which nothing "
                                     "in the zone listens on")
        return len(pending)

    def flush(self) -> None:
        """
        Complete pending connections and pump every link until nothing
        moves and no device asks for another connection.
        """
        for _ in range(100):
            self.memoryHub.flush()
            flushPumps([link.pump for link in self.peerLinks])
            self.memoryHub.flush()
            if not self.connectPending():
                return
        raise AssertionError("the devices kept connecting")

    def hubDown(self) -> None:
        """
        The hub goes away: its links drop and the devices' attempts to
        reconnect are refused until L{hubBack} -- while their direct peer
        links stay.
        """
        self.hubUp = False
        for link in self.memoryHub.links:
            if not link.closed:
                link.server.transport.loseConnection()
        self.flush()

    def hubBack(self) -> None:
        """
        The hub is reachable again; the devices reconnect at their next
        attempt (see L{advance}).
        """
        self.hubUp = True

    def advance(self, seconds: float, step: float = 30.0) -> None:
        """
        Move the clock on by C{seconds} in steps no longer than C{step},
        flushing after each, as time passes for live links (keepalives
        flow, reconnections complete).
        """
        end = self.reactor.seconds() + seconds
        while self.reactor.seconds() < end:
            self.reactor.advance(min(step, end - self.reactor.seconds()))
            self.flush()

    def register(self, name: str, service) -> None:
        """
        Run the zone service C{service} (an L{pz.zoneservice.IZoneService})
        on the device called C{name}, and let it announce the change.
        """
        self._devices[name].registry.register(service)
        self.flush()

    def call(self, caller: str, device: str, service: str, method: str, params=None,
             timeout=None):
        """
        From the device called C{caller}, call C{service.method} on the
        device called C{device}, and let the messages through.

        @return: the call's L{Deferred}: fired already if the service
            answered at once; L{advance} the clock for one that takes time
            (or never answers: the caller's C{TIMEOUT}).
        """
        d = self._devices[caller].call(self.deviceId(device), service, method, params, timeout)
        self.flush()
        return d

    def coalesce(self) -> None:
        """
        Let the hub's pending membership announcement go out.
        """
        self.memoryHub.coalesce()
        self.flush()

    def disconnect(self, name: str) -> None:
        """
        Drop the hub's link to the device called C{name}, as a network
        failure would; the device reconnects on its own once its retry is
        due (see L{advance}).

        @raise KeyError: if that device has no live link.
        """
        deviceId = self.deviceId(name)
        for link in self.memoryHub.links:
            if link.closed or link.pump.serverIO.disconnecting:
                continue
            cert = link.serverTLS.getPeerCertificate()
            if cert is not None and pki.identityOf(cert.to_cryptography()) == deviceId:
                link.server.transport.loseConnection()
                self.memoryHub.flush()
                return
        raise KeyError(f"{deviceId} has no live link")

    def revoke(self, name: str) -> None:
        """
        Revoke the device called C{name} at the hub, as C{pzctl revoke}
        does, and let the hub's messages through.
        """
        self.memoryHub.revoke(self.deviceId(name))
        self.flush()

    def stopDevice(self, name: str) -> None:
        """
        Stop the device called C{name}: its link closes and it stops
        reconnecting.
        """
        proxy = self._devices[name]
        if proxy.running:
            d = proxy.stopService()
            self.flush()
            self.testCase.successResultOf(d)

    def close(self) -> None:
        """
        Stop every device, let the links settle and the hub's pending
        announcement go out, then check that no device is registered and
        nothing is left scheduled.
        """
        for name in list(self._devices):
            self.stopDevice(name)
        self.memoryHub.coalesce()
        self.memoryHub.stop()
        self.memoryHub.assertQuiet()
