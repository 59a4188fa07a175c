"""
The web benchmarks' baseline: a bare C{twisted.web} handler.

For the Mesh portal (L{bench.portal}) it serves exactly as C{twistd
meshportal} does -- a L{Site} over a plain TCP endpoint on 127.0.0.1 with
Twisted's default backlog, the same reactor, the resource mounted at
C{/.well-known/mmm/}, and Twisted's default access log line per request
written to a log file as C{twistd} writes its own -- but its handler does
nothing: every POST to C{/.well-known/mmm/} reads the body and is answered
201 with a fixed JSON body (the benchmark passes a real C{GetResponse} of
the portal, so both answers have the same size).  Nothing is parsed,
checked or stored.

For the admin API (L{bench.adminapi}), C{--get PATH} serves C{GET PATH}
instead (200, the same headers as the hub's API), and C{--tls-data-dir}
puts it behind the hub's own web-port TLS (L{pz.tls.serverOptions} with
the hub's key, certificate and zone CA, read from the hub's data
directory, under L{TLSMemoryBIOFactory}).  With C{--encode} the body file
is read as JSON once and encoded again with C{json.dumps} for every
request, as a JSON resource holding its list in memory would; without it
the bytes are sent as they are.

    python -m bench.bareweb --port PORT --body-file FILE --log-file FILE
        [--get /api/devices] [--encode] [--tls-data-dir HUB_DATA_DIR]
"""

import argparse
import json
import sys

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

from bench.serve import prepare


class Fixed(Resource):
    """
    Answers every POST with the same JSON body.
    """

    isLeaf = True

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def render_POST(self, request) -> bytes:
        request.content.read()
        request.setResponseCode(201)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return self.body


class JSONList(Resource):
    """
    Answers every GET with a JSON value: fixed bytes, or (C{encode}) the
    value encoded anew each time.
    """

    isLeaf = True

    def __init__(self, body: bytes, encode: bool) -> None:
        super().__init__()
        self.body = body
        self.value = json.loads(body) if encode else None

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        if self.value is None:
            return self.body
        return json.dumps(self.value).encode("utf-8")


def root(body: bytes, get=None, encode: bool = False) -> Resource:
    """
    The site's root: the portal's handler at C{/.well-known/mmm/}, or
    L{JSONList} at the path C{get}.
    """
    top = Resource()
    if get is None:
        mmm = Resource()
        mmm.putChild(b"mmm", Fixed(body))
        top.putChild(b".well-known", mmm)
        return top
    segments = [s.encode("ascii") for s in get.strip("/").split("/")]
    parent = top
    for segment in segments[:-1]:
        child = Resource()
        parent.putChild(segment, child)
        parent = child
    parent.putChild(segments[-1], JSONList(body, encode))
    return top


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bareweb")
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True, help="the JSON body of every answer")
    parser.add_argument("--log-file", required=True, help="where the log (access lines) goes")
    parser.add_argument("--get", default=None, help="serve GET at this path (e.g. /api/devices)")
    parser.add_argument("--encode", action="store_true",
                        help="with --get: encode the body's JSON value anew for every request")
    parser.add_argument("--tls-data-dir", default=None,
                        help="serve HTTPS with the TLS of the hub whose data directory this is")
    args = parser.parse_args(argv)
    if args.encode and args.get is None:
        parser.error("--encode goes with --get")
    prepare(None)
    with open(args.body_file, "rb") as f:
        body = f.read()

    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(open(args.log_file, "a"))], redirectStandardIO=False
    )
    factory = Site(root(body, args.get, args.encode))
    if args.tls_data_dir is not None:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        from pz.tls import serverOptions
        from pzh.zone import loadZone

        zone = loadZone(args.tls_data_dir)
        factory = TLSMemoryBIOFactory(serverOptions(zone.hubKey, zone.hubCert, [zone.caCert]),
                                      False, factory)
    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(factory).addErrback(lambda f: (print(f, file=sys.stderr), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
