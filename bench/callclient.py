"""
The caller of the calls benchmark (L{bench.calls}): device A, one process
whose reactor sends the calls and times their answers.

    python -m bench.callclient relay --port P --certs DIR --name devNNNNN --to devMMMMM [load]
    python -m bench.callclient device --data-dir DIR --name NAME --pair CODE --to DEVICE_ID
                                      [--peer] [load]

  - C{relay}: the A end of the bare relay (L{bench.callrelay.Caller}),
    with the device certificate C{--name} of C{--certs}; C{--to} names the
    certificate the B end presents (its id goes in the frames).
  - C{device}: a real device proxy (L{pzp.proxy.Proxy}, the code C{twistd
    pzp} runs), paired with C{--pair} into C{--data-dir}, calling
    C{echo.echo} on device C{--to}.  Without C{--peer} it runs no peer
    server and dials no peer, so every call goes through the hub; with
    C{--peer} it runs a peer server (any free port) and dials, and the
    calls start once its Peer machine for C{--to} is C{Connected}.

Each call carries a string of C{--size} characters (C{{"value": ...}}),
echoed back.  In order: a warm-up at C{--rate} for C{--warmup} s (not
kept), C{--seconds} s at C{--rate} (an open loop paced by the reactor's
clock, L{bench.callload.OpenLoop}), then C{--peak-seconds} s with
C{--in-flight} calls waiting at all times (L{bench.callload.ClosedLoop}).
Prints one JSON object on its last line of output: each load's figures,
the frame sizes and, for a device, which path carried each answered call
(C{Proxy.callVia} says: C{hub} or C{peer}), counted.  Every
wait is bounded; C{--max-time} bounds the whole run.
"""

import argparse
import json
import os
import random
import string
import sys
import time

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater, react
from twisted.logger import globalLogBeginner, textFileLogObserver

from bench.callload import ClosedLoop, OpenLoop, summarise
from bench.processes import cpuTicks
from pz import pki
from pz.calls import makeRequest, makeResult
from pz.wire import Envelope, encodeEnvelope, newMessageId

#: The service and method every call names (L{bench.callservice.Echo}).
SERVICE, METHOD = "echo", "echo"


class WrongAnswer(Exception):
    """
    An answer that is not the value the call sent.
    """

    code = "WRONG_ANSWER"


def valueOf(size: int, seed: int = 11) -> str:
    """
    The string every call carries: C{size} printable characters (one byte
    each in UTF-8, none that JSON escapes).
    """
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(size))


def frameSizes(localId: str, remoteId: str, value: str) -> dict:
    """
    The bytes of one call's frames on the wire, length prefix included:
    the request device A sends and the answer device B sends (on the bare
    relay the request comes back as it went).
    """
    request = Envelope("JSONRPC", localId, remoteId, newMessageId(),
                       makeRequest(newMessageId(), SERVICE, METHOD, {"value": value}),
                       respTo=localId)
    answer = Envelope("JSONRPC", remoteId, localId, newMessageId(),
                      makeResult(newMessageId(), value))
    return {"request": len(encodeEnvelope(request)) + 4, "answer": len(encodeEnvelope(answer)) + 4}


async def waitFor(reactor, condition, timeout: float, what: str, step: float = 0.05) -> None:
    """
    Poll C{condition} every C{step} s until it is true.

    @raise RuntimeError: after C{timeout} s, naming C{what}.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        await deferLater(reactor, step, lambda: None)


def checked(d: Deferred, expected) -> Deferred:
    """
    C{d}, failing with L{WrongAnswer} unless it fires with C{expected}.
    """

    def check(result):
        if result != expected:
            raise WrongAnswer(f"answer {str(result)[:80]!r}")
        return result

    return d.addCallback(check)


async def relayCaller(reactor, args, value: str):
    """
    Connect the A end to the relay; returns the function that makes one
    call, what to report and the path count (none here).
    """
    from bench.callrelay import Caller, clientOptions, connect

    localId = pki.identityOf(pki.readCertificate(os.path.join(args.certs, args.name + ".pem")))
    remoteId = pki.identityOf(pki.readCertificate(os.path.join(args.certs, args.to + ".pem")))
    caller = Caller(localId, remoteId)
    connecting = connect(reactor, args.port, clientOptions(args.certs, args.name), caller)
    connecting.addTimeout(args.setup_timeout, reactor)
    await connecting
    await caller.ready.addTimeout(args.setup_timeout, reactor)
    params = {"value": value}

    def issue():
        d = caller.call(SERVICE, METHOD, params)
        d.addCallback(lambda payload: payload["params"]["value"])
        return checked(d, value)

    return issue, {"from": localId, "to": remoteId, **frameSizes(localId, remoteId, value)}, None


async def deviceCaller(reactor, args, value: str):
    """
    Start device A's proxy (pairing it first if it has no zone yet) and
    wait until it may call: connected to the hub, its first
    synchronisation over, and with C{--peer}, its peer link to C{--to}
    C{Connected}.
    """
    from pz.pairing import PairingCode
    from pzp.proxy import Proxy, ProxySettings

    settings = ProxySettings(keepalive=600.0, maxBackoff=1.0,
                             peerPort=0 if args.peer else None, peerConnection=args.peer)
    code = PairingCode.parse(args.pair) if args.pair else None
    proxy = Proxy(args.data_dir, reactor, args.name, pairCode=code, settings=settings)
    proxy.startService()
    reactor.addSystemEventTrigger("before", "shutdown", proxy.stopService)

    def connected():
        status = proxy.status()
        return (status.get("mode"), status.get("state")) == ("Hub", "Connected")

    await waitFor(reactor, connected, args.setup_timeout, "device A connected to the hub")
    # A new device's first synchronisation (every item from the hub) is
    # over before anything is measured, as for device B.
    await proxy.syncNow().addTimeout(args.setup_timeout, reactor)
    localId = proxy.credentials.deviceId
    # So is the hub's rewrite of the zone's service cache with A's own
    # services, which it writes half a second after A announced them.
    await waitFor(reactor, lambda: localId in proxy._hubWorkers().discovery.cached(),
                  args.setup_timeout, "device A's services in its service cache")
    await proxy.syncNow().addTimeout(args.setup_timeout, reactor)
    if args.peer:
        await waitFor(reactor, lambda: proxy.peerStatus().get(args.to) == "Connected",
                      args.setup_timeout, f"device A's peer link to {args.to} Connected")
    params = {"value": value}
    vias = {}

    def carried(answer: dict):
        vias[answer["via"]] = vias.get(answer["via"], 0) + 1
        return answer["result"]

    def issue():
        d = proxy.callVia(args.to, SERVICE, METHOD, params, args.timeout).addCallback(carried)
        return checked(d, value)

    def paths() -> dict:
        """
        How many calls each path carried since the last look.
        """
        seen = dict(vias)
        vias.clear()
        return seen

    return issue, {"from": localId, "to": args.to, **frameSizes(localId, args.to, value)}, paths


TICKS = os.sysconf("SC_CLK_TCK")


def cpuOf(pids: dict) -> dict:
    """
    The user + system CPU time, in clock ticks, of each process named in
    C{pids} that is still there.
    """
    ticks = {}
    for who, pid in pids.items():
        try:
            ticks[who] = cpuTicks(pid)
        except (OSError, ValueError, IndexError):
            pass
    return ticks


def cpuSpec(text: str) -> tuple:
    """
    C{--cpu NAME=PID}.
    """
    name, _, pid = text.partition("=")
    if not name or not pid.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=PID, not {text!r}")
    return name, int(pid)


async def run(reactor, args) -> dict:
    value = valueOf(args.size)
    setup = relayCaller if args.mode == "relay" else deviceCaller
    issue, info, paths = await setup(reactor, args, value)
    result = {"mode": args.mode, "peer": getattr(args, "peer", False), "size": args.size, **info}
    count = max(1, round(args.rate * args.seconds))
    if args.warmup > 0:
        await OpenLoop(reactor, issue, args.rate, max(1, round(args.rate * args.warmup)),
                       args.timeout).run()
    watched = {"A": os.getpid(), **dict(args.cpu)}
    for name, load in (
        ("fixed", lambda: OpenLoop(reactor, issue, args.rate, count, args.timeout)),
        ("peak", lambda: ClosedLoop(reactor, issue, args.in_flight, args.peak_seconds,
                                    args.peak_max, args.timeout)),
    ):
        if paths:
            paths()
        before = cpuOf(watched)
        samples = await load().run()
        after = cpuOf(watched)
        result[name] = summarise(samples)
        result[name]["cpu_us_per_call"] = {
            who: round(1e6 * (after[who] - before[who]) / TICKS / len(samples))
            for who in watched if who in before and who in after}
        if paths:
            result[name]["carried"] = paths()
            result[name]["via"] = sorted(result[name]["carried"])
    return result


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.callclient")
    modes = parser.add_subparsers(dest="mode", required=True)
    relay = modes.add_parser("relay", help="the A end of the bare TLS echo relay")
    relay.add_argument("--port", type=int, required=True)
    relay.add_argument("--certs", required=True)
    relay.add_argument("--name", required=True, help="this end's device certificate")
    relay.add_argument("--to", required=True, help="the B end's device certificate")
    device = modes.add_parser("device", help="device A, a real device proxy")
    device.add_argument("--data-dir", required=True)
    device.add_argument("--name", required=True)
    device.add_argument("--pair", default=None, help="pairing code (a new device)")
    device.add_argument("--to", required=True, help="device B's id")
    device.add_argument("--peer", action="store_true",
                        help="call over the peer link (default: through the hub)")
    for mode in (relay, device):
        mode.add_argument("--rate", type=float, default=1000.0, help="calls a second offered")
        mode.add_argument("--seconds", type=float, default=5.0, help="length of the fixed load")
        mode.add_argument("--warmup", type=float, default=1.0, help="warm-up at --rate, s")
        mode.add_argument("--size", type=int, default=200, help="characters each call carries")
        mode.add_argument("--in-flight", type=int, default=64, help="calls waiting (peak)")
        mode.add_argument("--peak-seconds", type=float, default=3.0, help="length of the peak load")
        mode.add_argument("--peak-max", type=int, default=200000,
                          help="most calls in the peak load")
        mode.add_argument("--timeout", type=float, default=5.0, help="a call's timeout, s")
        mode.add_argument("--setup-timeout", type=float, default=60.0,
                          help="longest wait for the links to be ready, s")
        mode.add_argument("--max-time", type=float, default=300.0, help="longest run, s")
        mode.add_argument("--log", default=None, help="write the caller's log here")
        mode.add_argument("--cpu", type=cpuSpec, action="append", default=[],
                          metavar="NAME=PID",
                          help="report this process's CPU time per call (repeatable)")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 100000 and 0 < args.seconds <= 600 and 0 <= args.warmup <= 60
            and 1 <= args.size <= 100000 and 1 <= args.in_flight <= 1000
            and 0 < args.peak_seconds <= 600 and args.peak_max >= 1 and args.timeout > 0):
        parser.error("the load options are out of range")
    return args


def main(argv=None) -> None:
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    if args.log:
        globalLogBeginner.beginLoggingTo([textFileLogObserver(open(args.log, "a"))],
                                         redirectStandardIO=False)

    async def body(reactor):
        watchdog = reactor.callLater(args.max_time, lambda: reactor.stop())
        try:
            result = await run(reactor, args)
        except Exception as e:
            result = {"mode": args.mode, "error": f"{type(e).__name__}: {e}"}
        if watchdog.active():
            watchdog.cancel()
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()

    react(lambda reactor: Deferred.fromCoroutine(body(reactor)))


if __name__ == "__main__":
    main()
