"""
The admin API benchmark's client: one URL fetched over HTTPS keep-alive
connections, a fixed number of requests in flight, bounded in count and
time; each request timed from its send to the last byte of its answer.

One Twisted process with C{treq}.  It trusts only the zone CA (C{--ca})
and checks the server's name, as the admin page's browser would.  With
C{--signin URL} it first follows the one-time sign-in link that C{pzctl
admin-link} printed (one C{GET}, no redirect followed) and sends the
session cookie it set with every request after.

The load (L{bench.callload.ClosedLoop}): C{--connections} requests in
flight at all times over at most as many persistent connections, a new
one sent as soon as one is answered: first C{--warmup} seconds (not
counted), then C{--seconds} measured, each at most C{--max-requests}
requests.  An answer counts when it is HTTP 200 and its body holds
exactly C{--expect-rows} rows (objects starting with C{{"id": }}); anything
else is an error, by its HTTP status (C{HTTP_401}) or C{BAD_BODY}.  The
rows are counted in the raw bytes, not decoded, so that the client costs
little beside the server.

Prints one JSON object: the sign-in's status, the measured load's figures
(requests, answered, errors, requests/s, p50/p99/max latency in ms), the
answer's size, the connections opened in all and the client's CPU time
per measured request.  With C{--save-body FILE} the first good answer's
body is written there (the bare resource serves the same list).

    python -m bench.webload --url https://127.0.0.1:P/api/devices --ca CA.pem
        [--signin URL] [--expect-rows 5000] [--connections 8] [--warmup 1]
        [--seconds 5] [--max-requests 20000] [--save-body FILE]
"""

import argparse
import json
import resource
import sys

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

#: What begins each row of the admin API's device list, as C{json.dumps}
#: writes it.
ROW = b'{"id": '


class BadAnswer(Exception):
    """
    An answer that does not count; C{code} says why.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def rowsOf(body: bytes) -> int:
    """
    The rows of a device list, counted in its bytes.
    """
    return body.count(ROW)


def check(status: int, body: bytes, expectRows: int) -> None:
    """
    Raise L{BadAnswer} unless the answer is a 200 with C{expectRows} rows.
    """
    if status != 200:
        raise BadAnswer(f"HTTP_{status}", body[:200].decode("utf-8", "replace"))
    if not body.startswith(b"[") or rowsOf(body) != expectRows:
        raise BadAnswer("BAD_BODY", f"{rowsOf(body)} rows in {len(body)} bytes")


def cpuSeconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@implementer(IStreamClientEndpoint)
class _Counted:
    def __init__(self, inner, counter) -> None:
        self._inner = inner
        self._counter = counter

    def connect(self, factory):
        self._counter.opened += 1
        return self._inner.connect(factory)


@implementer(IAgentEndpointFactory)
class CountingEndpoints:
    """
    The HTTPS endpoints the client's L{Agent} connects with, counted: a
    keep-alive load opens one per request in flight, not one per request.
    """

    def __init__(self, reactor, policy) -> None:
        self._reactor = reactor
        self._policy = policy
        self.opened = 0

    def endpointForURI(self, uri):
        inner = HostnameEndpoint(self._reactor, uri.host, uri.port)
        if uri.scheme == b"https":
            inner = wrapClientTLS(self._policy.creatorForNetloc(uri.host, uri.port), inner)
        return _Counted(inner, self)


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.webload")
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True, help="the zone CA's certificate (PEM)")
    parser.add_argument("--signin", default=None, help="a one-time sign-in link to follow first")
    parser.add_argument("--expect-rows", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=20000,
                        help="most requests of the warm-up, and of the measured load")
    parser.add_argument("--timeout", type=float, default=10.0, help="longest wait for one answer")
    parser.add_argument("--save-body", default=None, help="write the first good body here")
    args = parser.parse_args(argv)
    if not (1 <= args.connections <= 256 and 0 <= args.warmup <= 60 and 0 < args.seconds <= 120
            and 1 <= args.max_requests <= 10 ** 6 and args.expect_rows >= 0
            and 0 < args.timeout <= 120):
        parser.error("--connections must be in [1, 256], --warmup in [0, 60], --seconds in "
                     "(0, 120], --max-requests in [1, 1e6], --timeout in (0, 120]")
    return args


def main(argv=None) -> None:
    args = parseArgs(argv)

    from treq.client import HTTPClient
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.ssl import Certificate
    from twisted.web.client import Agent, HTTPConnectionPool

    from bench.callload import ClosedLoop, summarise
    from pz.tls import httpsClientPolicy

    with open(args.ca, "rb") as f:
        ca = Certificate.loadPEM(f.read())
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = args.connections
    pool.retryAutomatically = False
    endpoints = CountingEndpoints(reactor, httpsClientPolicy(ca))
    http = HTTPClient(Agent.usingEndpointFactory(reactor, endpoints, pool=pool))
    headers = {b"Accept": [b"application/json"]}
    result = {"url": args.url, "connections": args.connections}
    saved = []

    async def fetch():
        response = await http.get(args.url, headers=headers, timeout=args.timeout)
        body = await response.content()
        check(response.code, body, args.expect_rows)
        if not saved:
            saved.append(len(body))
            if args.save_body:
                with open(args.save_body, "wb") as f:
                    f.write(body)
        return body

    def issue():
        return ensureDeferred(fetch())

    async def run():
        if args.signin:
            response = await http.get(args.signin, allow_redirects=False, timeout=args.timeout)
            await response.content()
            result["signin_status"] = response.code
            cookie = {c.name: c.value for c in response.cookies()}.get("pz_session")
            if cookie is None:
                raise BadAnswer("NO_SESSION", f"the sign-in link answered {response.code} "
                                "without a session cookie")
            headers[b"Cookie"] = [b"pz_session=" + cookie.encode("ascii")]
        if args.warmup > 0:
            warm = ClosedLoop(reactor, issue, args.connections, args.warmup, args.max_requests,
                              args.timeout)
            result["warmup"] = summarise(await warm.run())
        cpu = cpuSeconds()
        load = ClosedLoop(reactor, issue, args.connections, args.seconds, args.max_requests,
                          args.timeout)
        samples = await load.run()
        used = cpuSeconds() - cpu
        measured = summarise(samples)
        result["measured"] = measured
        result["client_cpu_us"] = (round(1e6 * used / measured["answered"])
                                   if measured["answered"] else None)
        result["body_bytes"] = saved[0] if saved else None
        result["opened"] = endpoints.opened

    def failed(failure):
        result["error"] = f"{type(failure.value).__name__}: {failure.value}"

    d = ensureDeferred(run())
    d.addErrback(failed)
    d.addBoth(lambda _: pool.closeCachedConnections())
    d.addBoth(lambda _: reactor.stop())
    # However it goes, the process ends.
    limit = args.timeout * 3 + args.warmup + args.seconds + 2 * args.timeout + 10
    reactor.callLater(limit, lambda: (result.setdefault("error", "the time limit passed"),
                                      reactor.stop()))
    reactor.run()
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
