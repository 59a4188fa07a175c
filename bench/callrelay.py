"""
The calls benchmark's reference: a bare Twisted TLS echo relay.

Three parts, each what the zone's own path has in its place:

  - C{server}: the relay, in place of the hub.  It listens as the hub does
    (L{pz.tls.hubServerOptions} over the zone's CA, hub key and hub
    certificate, read from the hub's data directory, in a
    L{TLSMemoryBIOFactory} over a TCP endpoint, Nagle's algorithm off on
    every link as the hub's are) and reads length-prefixed frames
    (L{Int32StringReceiver}, as the hub's links do).  A client's first
    frame says which end it is, C{A} or C{B}; every later frame is written
    unread to the other end.  No envelope is decoded, no sender checked,
    nothing routed, queued or paced: what is left is the cost of Twisted's
    TLS and framing, which the hub pays too.
  - C{echo}: the B end, in place of device B: a mutual-TLS client with a
    device certificate of the zone that writes every frame back as it came.
  - L{Caller}: the A end, in place of device A's proxy; it runs in
    L{bench.callclient}, which sends it calls.  Each call is the frame
    device A's call worker would send (a C{JSONRPC} envelope with a
    C{JSON-RPC} request), and the echoed frame is decoded and matched to
    its call by the envelope's id, as an answer is.

    python -m bench.callrelay server --data-dir HUB_DIR --port PORT
    python -m bench.callrelay echo --port PORT --certs DIR --name devNNNNN
"""

import argparse
import os
import sys

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol, \
    wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int32StringReceiver
from twisted.protocols.tls import TLSMemoryBIOFactory

from pz import pki
from pz.calls import makeRequest
from pz.errors import ZoneError
from pz.link import noDelay
from pz.tls import hubServerOptions, pzpClientOptions
from pz.wire import DEFAULT_MAX_FRAME, Envelope, decodeEnvelope, encodeEnvelope, newMessageId

__all__ = ["RelayEnd", "RelayFactory", "Echo", "Caller", "clientOptions"]

#: The first frame of each end.
ENDS = (b"A", b"B")

#: What the relay sends A once B is there too: an empty frame.
READY = b""


class RelayEnd(Int32StringReceiver):
    """
    The relay's side of one client's link.
    """

    MAX_LENGTH = DEFAULT_MAX_FRAME

    def __init__(self, ends: dict) -> None:
        self.ends = ends
        self.end = None

    def connectionMade(self) -> None:
        noDelay(self.transport)

    def stringReceived(self, data: bytes) -> None:
        if self.end is not None:
            other = self.ends.get(ENDS[1] if self.end == ENDS[0] else ENDS[0])
            if other is not None:
                other.sendString(data)
            return
        if data not in ENDS or data in self.ends:
            self.transport.loseConnection()
            return
        self.end = data
        self.ends[data] = self
        if len(self.ends) == 2:
            self.ends[ENDS[0]].sendString(READY)

    def connectionLost(self, reason) -> None:
        if self.end is not None and self.ends.get(self.end) is self:
            del self.ends[self.end]


class RelayFactory(Factory):
    """
    Pairs one A end with one B end at a time.
    """

    def __init__(self) -> None:
        self.ends = {}

    def buildProtocol(self, addr):
        protocol = RelayEnd(self.ends)
        protocol.factory = self
        return protocol


class Echo(Int32StringReceiver):
    """
    The B end: every frame goes back as it came.
    """

    MAX_LENGTH = DEFAULT_MAX_FRAME

    def connectionMade(self) -> None:
        noDelay(self.transport)
        self.sendString(ENDS[1])

    def stringReceived(self, data: bytes) -> None:
        self.sendString(data)

    def connectionLost(self, reason) -> None:
        from twisted.internet import reactor

        if reactor.running:
            reactor.stop()


class Caller(Int32StringReceiver):
    """
    The A end: L{call} sends a call's frame and fires with the echoed
    frame's payload.

    @ivar ready: fires once the relay has both ends.
    """

    MAX_LENGTH = DEFAULT_MAX_FRAME

    def __init__(self, localId: str, remoteId: str) -> None:
        self.localId = localId
        self.remoteId = remoteId
        self.ready = Deferred()
        self.lost = Deferred()
        self._waiting = {}

    def connectionMade(self) -> None:
        noDelay(self.transport)
        self.sendString(ENDS[0])

    def frameFor(self, service: str, method: str, params) -> Envelope:
        """
        The envelope device A's call worker sends for this call.
        """
        return Envelope("JSONRPC", self.localId, self.remoteId, newMessageId(),
                        makeRequest(newMessageId(), service, method, params),
                        respTo=self.localId)

    def call(self, service: str, method: str, params) -> Deferred:
        envelope = self.frameFor(service, method, params)
        d = Deferred(lambda _: self._waiting.pop(envelope.id, None))
        self._waiting[envelope.id] = d
        self.sendString(encodeEnvelope(envelope))
        return d

    def stringReceived(self, data: bytes) -> None:
        if data == READY and not self.ready.called:
            self.ready.callback(self)
            return
        envelope = decodeEnvelope(data)
        d = self._waiting.pop(envelope.id, None)
        if d is not None:
            d.callback(envelope.payload)

    def connectionLost(self, reason) -> None:
        waiting, self._waiting = self._waiting, {}
        for d in waiting.values():
            d.errback(ZoneError("NOT_CONNECTED", "the relay link closed"))
        if not self.ready.called:
            self.ready.errback(ZoneError("NOT_CONNECTED", "the relay link closed during set-up"))
        self.lost.callback(None)


def clientOptions(certs: str, name: str):
    """
    Mutual-TLS client options with the device certificate C{name} of the
    benchmark's certificate directory, as a device connects to its hub.
    """
    return pzpClientOptions(
        pki.readCertificate(os.path.join(certs, "ca.pem")),
        pki.readPrivateKey(os.path.join(certs, name + ".key")),
        pki.readCertificate(os.path.join(certs, name + ".pem")),
        "127.0.0.1",
    )


def connect(reactor, port: int, options, protocol) -> Deferred:
    endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10))
    return connectProtocol(endpoint, protocol)


def serve(args) -> None:
    from twisted.internet import reactor

    from pzh.zone import loadZone

    zone = loadZone(args.data_dir)
    factory = TLSMemoryBIOFactory(hubServerOptions(zone.caCert, zone.hubKey, zone.hubCert),
                                  False, RelayFactory())
    endpoint = TCP4ServerEndpoint(reactor, args.port, interface="127.0.0.1")
    endpoint.listen(factory).addErrback(lambda f: (print(f, file=sys.stderr), reactor.stop()))
    reactor.run()


def echo(args) -> None:
    from twisted.internet import reactor

    def failed(failure):
        print(f"the echo end could not connect: {failure.getErrorMessage()}", file=sys.stderr)
        reactor.stop()

    connect(reactor, args.port, clientOptions(args.certs, args.name), Echo()).addErrback(failed)
    reactor.run()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callrelay")
    roles = parser.add_subparsers(dest="role", required=True)
    server = roles.add_parser("server", help="the relay")
    server.add_argument("--data-dir", required=True, help="the hub's data directory")
    server.add_argument("--port", type=int, required=True)
    end = roles.add_parser("echo", help="the B end")
    end.add_argument("--port", type=int, required=True)
    end.add_argument("--certs", required=True)
    end.add_argument("--name", required=True, help="the device certificate to present")
    args = parser.parse_args(argv)
    (serve if args.role == "server" else echo)(args)


if __name__ == "__main__":
    main()
