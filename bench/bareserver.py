"""
The benchmark's baseline: a bare Twisted mutual-TLS server.

It listens exactly as the hub does -- the same TLS options
(L{pz.tls.hubServerOptions} over the zone's CA, hub key and hub
certificate, read from the hub's data directory), the same
L{TLSMemoryBIOFactory} over a plain TCP endpoint with Twisted's default
backlog, the same reactor -- but its protocol does nothing: a connection
completes the TLS handshake (the client's certificate is requested and its
proof of key possession checked by OpenSSL) and then just stays open until
the client closes it.  It does not log per connection.

    python -m bench.bareserver --data-dir DIR --port PORT [--gc-file F]
"""

import argparse

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from bench.serve import prepare
from pz.tls import hubServerOptions
from pzh.zone import loadZone


@implementer(IHandshakeListener)
class Nothing(Protocol):
    """
    Completes the handshake and ignores everything.
    """

    def handshakeCompleted(self) -> None:
        pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bareserver")
    parser.add_argument("--data-dir", required=True, help="the hub's data directory")
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--gc-file", default=None)
    args = parser.parse_args(argv)
    prepare(args.gc_file)

    from twisted.internet import reactor

    zone = loadZone(args.data_dir)
    factory = TLSMemoryBIOFactory(
        hubServerOptions(zone.caCert, zone.hubKey, zone.hubCert),
        False,
        Factory.forProtocol(Nothing),
    )
    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(factory).addErrback(lambda f: (print(f), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
