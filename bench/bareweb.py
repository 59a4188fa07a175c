"""
The Mesh portal benchmark's baseline: a bare C{twisted.web} handler.

It serves exactly as C{twistd meshportal} does -- a L{Site} over a plain TCP
endpoint on 127.0.0.1 with Twisted's default backlog, the same reactor, the
resource mounted at C{/.well-known/mmm/}, and Twisted's default access log
line per request written to a log file as C{twistd} writes its own -- but
its handler does nothing: every POST to C{/.well-known/mmm/} reads the body
and is answered 201 with a fixed JSON body (the benchmark passes a real
C{GetResponse} of the portal, so both answers have the same size).  Nothing
is parsed, checked or stored.

    python -m bench.bareweb --port PORT --body-file FILE --log-file FILE
"""

import argparse
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bareweb")
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", required=True, help="the JSON body of every answer")
    parser.add_argument("--log-file", required=True, help="where the log (access lines) goes")
    args = parser.parse_args(argv)
    prepare(None)
    with open(args.body_file, "rb") as f:
        body = f.read()

    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(open(args.log_file, "a"))], redirectStandardIO=False
    )
    mmm = Resource()
    mmm.putChild(b"mmm", Fixed(body))
    root = Resource()
    root.putChild(b".well-known", mmm)
    endpoint = TCP4ServerEndpoint(reactor, args.port, interface=args.interface)
    endpoint.listen(Site(root)).addErrback(lambda f: (print(f, file=sys.stderr), reactor.stop()))
    reactor.run()


if __name__ == "__main__":
    main()
