# -*- test-case-name: tests.pzp.test_peerserver -*-
"""
The device's peer server: the PZP's C{pzp_tlsServer} port, where the zone's
other devices open direct links to it (Peer mode).

It listens while the device is in its zone and reports the port it got, so
that port C{0} (any free port) works and the hub can tell the others where
to dial.  A port that cannot be had is no reason to stop the device: it
says so once in the log and runs without a peer server, reachable through
the hub and by the links it dials itself.
"""

from typing import Optional

from twisted.internet.error import CannotListenError
from twisted.logger import Logger

__all__ = ["PeerServer"]


class PeerServer:
    """
    Listens for peer links on one TCP port.
    """

    _log = Logger()

    def __init__(self, reactor, makeFactory, port: Optional[int], interface: str = "") -> None:
        """
        @param makeFactory: builds the TLS server factory (the Peer mode
            worker's L{pzp.peermode.PeerMode.serverFactory}).
        @param port: the port to listen on, C{0} for any free one, C{None}
            for no peer server.
        @param interface: the address to listen on (all by default).
        """
        self._reactor = reactor
        self._makeFactory = makeFactory
        self._port = port
        self._interface = interface
        self._listening = None
        self.error: Optional[str] = None

    def start(self) -> None:
        if self._port is None or self._listening is not None:
            return
        try:
            self._listening = self._reactor.listenTCP(self._port, self._makeFactory(),
                                                      interface=self._interface)
        except CannotListenError as e:
            self.error = f"cannot listen on port {self._port}: {e.socketError}"
            self._log.error("no peer server: {error}; other devices reach this one through "
                            "the hub", error=self.error)
            return
        self._log.info("peer server listening on port {port}", port=self.port())

    def port(self) -> int:
        """
        The port peer links reach this device on, or 0 if it has no peer
        server.
        """
        return self._listening.getHost().port if self._listening is not None else 0

    def stop(self):
        listening, self._listening = self._listening, None
        if listening is not None:
            return listening.stopListening()
