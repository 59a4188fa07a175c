"""
The Mesh portal benchmark's client: transactions per second over HTTP with
C{treq}, at a fixed number of requests in flight.

One Twisted process.  It reads its request bodies, already encoded (and,
for Publish, already signed: no signing happens here), one per line from
C{--bodies}, and keeps C{--concurrency} requests in flight: each of that
many loops posts a body to C{/.well-known/mmm/}, reads the whole answer,
checks it and posts the next.  Connections are persistent (one
C{HTTPConnectionPool} with room for every loop), so after the first
requests no connection is opened.

An answer counts as a transaction when its HTTP status is 2xx and its body
is one JSON object tagged C{--expect} (e.g. C{GetResponse}) whose C{Status}
is 2xx; anything else (another status, another tag, a failed connection, no
answer within C{--timeout}) is an error.  The answer is decoded with
C{json.loads} only, not with L{pz.mesh.schema}: the client should cost as
little as it can so that the server, not the client, sets the rate.

With C{--once} each body is sent once (Publish: a profile sent twice would
be answered "already published" without a new record); when they run out,
the loops stop and the report says when (C{exhausted_at}).  Without it the
bodies are sent round-robin.

A run: C{--warmup} seconds not counted, then C{--duration} seconds in which
answers that arrive are counted; then no new request is sent and the
process waits (at most C{--timeout}) for those in flight.

Prints one JSON object: transactions counted and their rate, errors and the
first error, latency percentiles (ms), and the client's own CPU time per
counted transaction.

    python -m bench.portalclient --url http://127.0.0.1:P/.well-known/mmm/
        --bodies FILE --expect GetResponse [--concurrency 16] [--warmup 1]
        [--duration 5] [--once]
"""

import argparse
import json
import resource
import sys


def cpuSeconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list, fraction: float):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.portalclient")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="request bodies, one per line")
    parser.add_argument("--expect", required=True, help="the response tag, e.g. GetResponse")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="longest wait for one answer")
    parser.add_argument("--once", action="store_true", help="send each body at most once")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parseArgs(argv)
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    if not bodies:
        raise SystemExit("no request bodies")

    from treq.client import HTTPClient
    from twisted.internet import reactor
    from twisted.internet.defer import inlineCallbacks
    from twisted.web.client import Agent, HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = args.concurrency
    pool.retryAutomatically = False
    http = HTTPClient(Agent(reactor, pool=pool))
    url = args.url.encode("ascii")
    headers = {b"Content-Type": [b"application/json"], b"Accept": [b"application/json"]}
    expect = args.expect

    state = {
        "next": 0, "sent": 0, "total": 0, "counted": 0, "errors": 0, "errors_total": 0,
        "first_error": None, "exhausted_at": None, "stopping": False, "last": None,
    }
    latencies = []
    started = reactor.seconds()
    windowStart = started + args.warmup
    windowEnd = windowStart + args.duration
    cpu = {}
    cpu0 = cpuSeconds()

    def check(code: int, body: bytes):
        if not 200 <= code < 300:
            return f"HTTP {code}: {body[:200]!r}"
        try:
            data = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:200]!r}"
        if not isinstance(data, dict) or list(data) != [expect]:
            return f"not a {expect}: {body[:200]!r}"
        status = data[expect].get("Status") if isinstance(data[expect], dict) else None
        if not isinstance(status, int) or not 200 <= status < 300:
            return f"{expect} with Status {status}: {body[:200]!r}"
        return None

    def error(message: str, now: float) -> None:
        state["errors_total"] += 1
        if windowStart <= now <= windowEnd:
            state["errors"] += 1
        if state["first_error"] is None:
            state["first_error"] = message

    @inlineCallbacks
    def loop():
        while not state["stopping"]:
            index = state["next"]
            if index >= len(bodies):
                if args.once:
                    if state["exhausted_at"] is None:
                        state["exhausted_at"] = reactor.seconds() - started
                    return
                index = 0
            state["next"] = index + 1
            state["sent"] += 1
            sent = reactor.seconds()
            try:
                response = yield http.post(
                    url, data=bodies[index], headers=headers, timeout=args.timeout,
                )
                body = yield response.content()
                problem = check(response.code, body)
            except Exception as e:
                problem = f"{type(e).__name__}: {e}"
            now = reactor.seconds()
            if problem is not None:
                error(problem, now)
                continue
            state["total"] += 1
            state["last"] = now
            if windowStart <= now <= windowEnd:
                state["counted"] += 1
                latencies.append(now - sent)

    def openWindow():
        cpu["start"] = cpuSeconds()

    def closeWindow():
        cpu["end"] = cpuSeconds()
        state["stopping"] = True

    reactor.callLater(args.warmup, openWindow)
    reactor.callLater(args.warmup + args.duration, closeWindow)
    loops = [loop() for _ in range(args.concurrency)]

    from twisted.internet.defer import DeferredList

    def finish(_):
        d = pool.closeCachedConnections()
        d.addBoth(lambda _: reactor.stop())

    DeferredList(loops, consumeErrors=True).addCallback(finish)
    # However it goes, the process ends.
    reactor.callLater(args.warmup + args.duration + args.timeout + 5, reactor.stop)
    reactor.run()

    measured = args.duration
    if state["exhausted_at"] is not None and state["exhausted_at"] < args.warmup + args.duration:
        # The bodies ran out inside the window: it ends with the last answer.
        measured = max((state["last"] or windowStart) - windowStart, 1e-3)
    cpuUsed = cpu.get("end", cpuSeconds()) - cpu.get("start", cpu0)
    result = {
        "counted": state["counted"],
        "total": state["total"],
        "seconds": round(measured, 3),
        "rate": state["counted"] / measured,
        "errors": state["errors"],
        "errors_total": state["errors_total"],
        "first_error": state["first_error"],
        "sent": state["sent"],
        "bodies": len(bodies),
        "exhausted_at": state["exhausted_at"],
        "concurrency": args.concurrency,
        "p50_ms": None if not latencies else round(1e3 * percentile(latencies, 0.50), 2),
        "p95_ms": None if not latencies else round(1e3 * percentile(latencies, 0.95), 2),
        "p99_ms": None if not latencies else round(1e3 * percentile(latencies, 0.99), 2),
        "client_cpu_us": round(1e6 * cpuUsed / state["counted"]) if state["counted"] else None,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
