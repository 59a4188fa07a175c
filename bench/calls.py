"""
Calls: the round trip of a zone service call and the peak call rate,
through the hub and over a direct peer link, next to a bare Twisted TLS
echo relay, all measured in one run with the same frames at the same
offered load.

In order (see C{bench/README.md}, item 7):

 1. a fresh hub (C{twistd -n pzh}, its per-device rate raised above the
    offered load: the default 200 frames a second would refuse most of
    it) and device B (C{twistd -n pzp --service bench.callservice:Echo},
    paired with C{pzctl pair}), each waited for until connected;
 2. B{the reference}: the bare relay (L{bench.callrelay}: the hub's TLS
    options, certificate and framing, frames relayed unread) and its
    echoing B end, each its own process, with two device certificates
    issued from the zone's CA; device A's end is L{bench.callclient}
    C{relay};
 3. B{through the hub}: device A, a device proxy in L{bench.callclient}'s
    own reactor, paired as a new device, with no peer server and no
    dialling, so every call goes A -> hub -> B and back;
 4. B{over the peer link}: another device A with Peer mode on, calling
    once its peer link to B is C{Connected};
 5. B{through the hub with a 100-rule policy}: B's C{policies/policy.xml}
    replaced by one of 100 rules (99 that do not apply, then the zone's
    permit-own-zone), and a third device A calling through the hub as in 3:
    every call B serves is decided against it (L{pzp.policy}).

Each caller sends C{echo.echo} calls carrying a string of C{--calls-size}
characters: first a warm-up, then a fixed load of C{--calls-rate} calls a
second for C{--calls-seconds} (open loop, paced by the reactor's clock),
then C{--calls-in-flight} calls kept waiting for C{--calls-peak-seconds}
(the peak rate).  The round trip is from the call leaving A's reactor to
its answer arriving there.  Targets: the hub path's p99 within 1.5 x the
bare relay's, the peer path's p99 below the hub path's, and the hub path's
peak call rate with the 100-rule policy at most 10% below the rate with
the zone's default one-rule policy.

Everything listens on 127.0.0.1; every load is bounded in count and time;
every process is stopped before this returns.  C{python -m bench.calls
[OPTIONS]} runs this part alone (under a minute) and writes
C{bench/out/calls.txt} and C{bench/out/calls.json}.
"""

import json
import os
import shutil
import subprocess
import sys
import time

from bench.processes import TOP, freePort, log, spawn, stop, waitForPort
from bench.report import fmt, ratio, runAlone, table

PYTHON = sys.executable
BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
PZCTL = os.path.join(BIN, "pzctl")

#: The hub's per-device share for this part, frames a second and burst:
#: well above the offered load and the peak, so the token bucket is never
#: what is measured.
HUB_RATE = 50000
HUB_BURST = 5000

#: The targets: the hub path's p99 at most this times the bare relay's; the
#: peer path's p99 below the hub path's.
HUB_TARGET = 1.5

#: The path each load's calls must all have taken (what C{Proxy.callVia}
#: says carried a call).
HUB_LINK = "hub"
PEER_LINK = "peer"

#: The rows of the table: key, label, the link its calls must take.
PATHS = (
    ("relay", "bare TLS echo relay (reference)", None),
    ("hub", "hub path: A -> hub -> B", HUB_LINK),
    ("peer", "peer link: A -> B", PEER_LINK),
)

#: The policy phase's row, shown when it ran.
POLICY_PATH = ("policy", "hub path, 100-rule policy on B", HUB_LINK)

#: Rules in the policy phase's policy on B.
POLICY_RULES = 100

#: The target: the hub path's peak call rate with the policy at least this
#: share of the rate without it.
POLICY_TARGET = 0.9


def bigPolicy(rules: int = POLICY_RULES) -> bytes:
    """
    The zone's default policy with C{rules - 1} rules added first that do
    not apply to the benchmark's calls (other devices' calls to other
    services), so that every call is decided past them all and the zone's
    permit-own-zone rule permits it: C{rules} rules in all.
    """
    from pz.policy.edit import addRule
    from pz.sync.defaults import POLICY

    data = POLICY.encode("utf-8")
    for i in range(rules - 1):
        data, _ = addRule(data, "deny", subject=f"bench@127.0.0.1/other{i}",
                          service=f"service{i}")
    return data


def pzctl(*args, timeout: float = 60.0) -> str:
    done = subprocess.run([PZCTL, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=TOP)
    if done.returncode != 0:
        raise RuntimeError(f"pzctl {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def lastLine(path: str) -> str:
    """
    The last line a process wrote to its output file (C{twistd} says there
    in one line why it could not start), or where to look.
    """
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        lines = []
    return lines[-1][-300:] if lines else f"see {path}"


class CallZone:
    """
    The hub, device B and the bare relay, each a process on 127.0.0.1.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.hubDir = os.path.join(root, "hub")
        self.certs = os.path.join(root, "certs")
        self.procs = []
        os.makedirs(root, exist_ok=True)

    def _spawn(self, name: str, argv: list, port: int = None):
        proc = spawn(name, argv, os.path.join(self.root, name.replace(" ", "-") + ".out"))
        self.procs.append(proc)
        if port is not None:
            waitForPort(port, proc)
        return proc

    def startHub(self) -> None:
        self.port = freePort()
        self.hub = self._spawn("hub", [
            TWISTD, "-n", "--pidfile", "", "--logfile", os.path.join(self.root, "hub.log"),
            "pzh", "--data-dir", self.hubDir, "--name", "bench", "--interface", "127.0.0.1",
            "--port", str(self.port), "--web-port", "0", "--idle-timeout", "3600",
            "--rate", str(HUB_RATE), "--burst", str(HUB_BURST),
        ], self.port)
        pzctl("--hub-dir", self.hubDir, "wait", "--timeout", "30")

    def startRelay(self) -> None:
        """
        The bare relay and its echoing B end, with two device certificates
        of the zone (C{dev00000} for A, C{dev00001} for B).
        """
        from bench.devices import issueDevices

        issueDevices(self.hubDir, self.certs, 2, workers=1)
        self.relayPort = freePort()
        self.relay = self._spawn("relay", [PYTHON, "-m", "bench.callrelay", "server", "--data-dir",
                              self.hubDir, "--port", str(self.relayPort)], self.relayPort)
        self.echo = self._spawn("relay echo", [PYTHON, "-m", "bench.callrelay", "echo", "--port",
                                   str(self.relayPort), "--certs", self.certs,
                                   "--name", "dev00001"])

    def pairCode(self, name: str) -> str:
        return pzctl("--hub-dir", self.hubDir, "pair", "--device", name).strip()

    def startDeviceB(self, timeout: float = 60.0) -> str:
        """
        Device B, serving L{bench.callservice.Echo}, with a peer server on
        a free port; returns its device id once it is connected and its
        first synchronisation is over.
        """
        directory = os.path.join(self.root, "b")
        proc = self.deviceB = self._spawn("device b", [
            TWISTD, "-n", "--pidfile", "", "--logfile", os.path.join(self.root, "b.log"),
            "pzp", "--data-dir", directory, "--name", "b", "--pair", self.pairCode("b"),
            "--keepalive", "3600", "--max-backoff", "1", "--peer-port", "0",
            "--service", "bench.callservice:Echo",
        ])
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"device b exited with {proc.returncode}: "
                                   f"{lastLine(os.path.join(self.root, 'device-b.out'))}")
            try:
                status = json.loads(pzctl("--pzp-dir", directory, "status", "--json",
                                          timeout=30))
                if (status.get("mode"), status.get("state")) == ("Hub", "Connected"):
                    # Its first synchronisation (every item from the hub) is
                    # over before anything is measured.
                    pzctl("--pzp-dir", directory, "sync", "--json", timeout=timeout)
                    return status["device"]
            except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"device b did not connect within {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
        self.procs = []


def loadArgs(args) -> list:
    """
    The load options every caller gets: the same for every path.
    """
    return ["--rate", str(args.calls_rate), "--seconds", str(args.calls_seconds),
            "--warmup", str(args.calls_warmup), "--size", str(args.calls_size),
            "--in-flight", str(args.calls_in_flight),
            "--peak-seconds", str(args.calls_peak_seconds), "--timeout", "5"]


def runCaller(args, argv: list, logPath: str) -> dict:
    """
    Run one L{bench.callclient} to its end (bounded) and return its figures.
    """
    limit = 60 + 2 * (args.calls_warmup + args.calls_seconds + args.calls_peak_seconds) + 20
    done = subprocess.run(
        [PYTHON, "-m", "bench.callclient", *argv, *loadArgs(args), "--log", logPath,
         "--max-time", str(limit)],
        cwd=TOP, capture_output=True, text=True, timeout=limit + 30,
    )
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the caller printed nothing (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")
    result = json.loads(lines[-1])
    if result.get("error"):
        raise RuntimeError(result["error"])
    return result


def measureCalls(args, run: str) -> dict:
    """
    The three paths, in one run, under C{RUN/calls/}.  A path that could
    not be measured is kept with its reason and the others still run.
    """
    work = os.path.join(run, "calls")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    zone = CallZone(work)
    result = {"rate": args.calls_rate, "seconds": args.calls_seconds,
              "warmup": args.calls_warmup, "size": args.calls_size,
              "in_flight": args.calls_in_flight, "peak_seconds": args.calls_peak_seconds,
              "hub_rate": HUB_RATE, "hub_burst": HUB_BURST, "load_before": os.getloadavg()[0]}
    try:
        log("calls: starting the hub")
        zone.startHub()
        deviceB = {}

        def relay() -> dict:
            zone.startRelay()
            return runCaller(args, ["relay", "--port", str(zone.relayPort), "--certs",
                                    zone.certs, "--name", "dev00000", "--to", "dev00001",
                                    "--cpu", f"middle={zone.relay.pid}",
                                    "--cpu", f"B={zone.echo.pid}"],
                             os.path.join(work, "relay-caller.log"))

        def device(name: str, peer: bool):
            def measure() -> dict:
                if "error" in deviceB:
                    raise RuntimeError(deviceB["error"])
                if "id" not in deviceB:
                    log("calls: starting device B (twistd pzp --service bench.callservice:Echo)")
                    try:
                        deviceB["id"] = zone.startDeviceB()
                    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                        deviceB["error"] = str(e)
                        raise
                argv = ["device", "--data-dir", os.path.join(work, name), "--name", name,
                        "--pair", zone.pairCode(name), "--to", deviceB["id"],
                        "--cpu", f"middle={zone.hub.pid}", "--cpu", f"B={zone.deviceB.pid}"]
                return runCaller(args, argv + (["--peer"] if peer else []),
                                 os.path.join(work, f"{name}.log"))
            return measure

        def withPolicy() -> dict:
            from pz.sync.items import ItemTree

            # B reads it at its next call (pz.policy.item.ItemPolicy).
            ItemTree(os.path.join(work, "b", "zone")).write("policies/policy.xml", bigPolicy())
            return device("apol", False)()

        for key, measure, what in (
            ("relay", relay, "the bare TLS echo relay"),
            ("hub", device("ahub", False), "device A -> hub -> device B"),
            ("peer", device("apeer", True), "device A -> device B over a peer link"),
            ("policy", withPolicy, f"device A -> hub -> device B, {POLICY_RULES}-rule policy on B"),
        ):
            log(f"calls: {what}")
            try:
                result[key] = measure()
                fixed, peak = result[key]["fixed"], result[key]["peak"]
                log(f"calls: {what}: p50 {fmt(fixed['p50_ms'], '{:.2f}')} ms, p99 "
                    f"{fmt(fixed['p99_ms'], '{:.2f}')} ms, {fixed['answered']}/{fixed['calls']} "
                    f"answered; peak {fmt(peak['answer_rate'])} calls/s")
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                # One path failing leaves the others' figures in the table
                # (and its targets FAIL), not a run with no report.
                log(f"calls: {what}: failed: {e}")
                result[key] = {"error": str(e)}
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
        log(f"calls: the hub did not start: {e}")
        result["error"] = str(e)
    finally:
        zone.stop()
    result["load_after"] = os.getloadavg()[0]
    return result


def verdicts(result: dict) -> list:
    """
    The targets as (text, figure, passed): a path whose calls were not all
    answered, or took another link than its own, never passes.
    """

    def valid(key: str):
        part = result.get(key) or {}
        fixed = part.get("fixed") or {}
        link = dict((k, l) for k, _, l in PATHS + (POLICY_PATH,))[key]
        if part.get("error") or fixed.get("p99_ms") is None or fixed.get("errors"):
            return None
        if link is not None and fixed.get("via") != [link]:
            return None
        return fixed["p99_ms"]

    relay, hub, peer = valid("relay"), valid("hub"), valid("peer")
    hubRatio = ratio(hub, relay) if hub is not None else None
    peerRatio = ratio(peer, hub) if peer is not None else None
    found = [
        (f"hub path p99 <= {HUB_TARGET:g} x the bare relay's p99", hubRatio,
         hubRatio is not None and hubRatio <= HUB_TARGET),
        ("peer path p99 < the hub path's p99", peerRatio, peerRatio is not None and peerRatio < 1),
    ]
    if POLICY_PATH[0] in result:
        def peak(key: str):
            return ((result.get(key) or {}).get("peak") or {}).get("answer_rate")

        # The figure is shown whenever both peaks were measured; it passes
        # only if both paths' fixed loads were whole too.
        policyRatio = (ratio(peak("policy"), peak("hub"))
                       if peak("policy") is not None and peak("hub") else None)
        whole = hub is not None and valid("policy") is not None
        found.append((f"hub path peak calls/s with a {POLICY_RULES}-rule policy on B >= "
                      f"{POLICY_TARGET:g} x with the default policy", policyRatio,
                      whole and policyRatio is not None and policyRatio >= POLICY_TARGET))
    return found


def cpuCell(load: dict) -> str:
    """
    CPU time per call of device A (the caller), the middle (the hub or the
    relay; idle on the peer path) and device B, in microseconds.
    """
    cpu = load.get("cpu_us_per_call") or {}
    return "/".join(fmt(cpu.get(who)) for who in ("A", "middle", "B"))


def callsReport(result: dict) -> list:
    """
    The calls section of the printed table.
    """
    if not result:
        return []
    sizes = next((result[k] for k, _, _ in PATHS if "request" in result.get(k, {})), {})
    count = round(result["rate"] * result["seconds"])
    lines = [
        "",
        f"Calls: device A calls echo.echo on device B (bench.callservice.Echo, run by "
        f"`twistd pzp --service`), each call carrying a {result['size']}-character string that "
        f"comes back (request frame {fmt(sizes.get('request'))} bytes, answer "
        f"{fmt(sizes.get('answer'))}, length prefix included). A: a device proxy "
        f"(pzp.proxy.Proxy) in bench.callclient's reactor; B and the hub: twistd processes, the "
        f"hub with --rate {result['hub_rate']} --burst {result['hub_burst']} (the default "
        f"200 frames/s per device is below the load). Fixed load: {result['rate']:,.0f} calls/s "
        f"offered open-loop, paced by the reactor's clock, {result['warmup']:g} s warm-up + "
        f"{result['seconds']:g} s measured ({count:,} calls), timeout 5 s; round trip = from "
        f"the call leaving A's reactor to its answer arriving there. Peak: "
        f"{result['in_flight']} calls in flight for {result['peak_seconds']:g} s (closed "
        f"loop). Reference: bench.callrelay, a bare Twisted TLS relay (the hub's TLS options, "
        f"certificate and framing; frames relayed unread between two TLS clients) with an "
        f"echoing B end, the same frames at the same load. CPU us/call: user + system CPU "
        f"time of the caller (A), the hub or relay (mid) and B over the fixed load, per call. "
        f"Every call B serves is decided by the zone's policy: the zone's default one-rule "
        f"policy on the hub and peer rows; {POLICY_RULES} rules (none applying before the "
        f"last, which permits) on the last.",
    ]
    headers = ["path", "calls", "answered", "sent/s", "p50 ms", "p99 ms", "max ms",
               "p99 vs relay", "send lag p99 ms", "CPU us/call A/mid/B", "peak calls/s",
               "peak p50 ms", "link"]
    rows = []
    notes = []
    relayP99 = (result.get("relay", {}).get("fixed") or {}).get("p99_ms")
    shown = PATHS + ((POLICY_PATH,) if POLICY_PATH[0] in result else ())
    for key, label, _ in shown:
        part = result.get(key) or {}
        fixed, peak = part.get("fixed") or {}, part.get("peak") or {}
        if part.get("error") or not fixed:
            rows.append([label] + ["-"] * (len(headers) - 1))
            notes.append(f"  {label}: not measured: {part.get('error', 'no figures')}")
            continue
        rows.append([
            label, fixed["calls"], fixed["answered"], fmt(fixed["send_rate"]),
            fmt(fixed["p50_ms"], "{:.2f}"), fmt(fixed["p99_ms"], "{:.2f}"),
            fmt(fixed["max_ms"], "{:.2f}"), fmt(ratio(fixed["p99_ms"], relayP99), "{:.2f}"),
            fmt(fixed["lag_p99_ms"], "{:.2f}"), cpuCell(fixed), fmt(peak.get("answer_rate")),
            fmt(peak.get("p50_ms"), "{:.2f}"), "/".join(fixed.get("via") or ["-"]),
        ])
        for name, load in (("fixed load", fixed), ("peak", peak)):
            if load.get("errors"):
                notes.append(f"  {label}, {name}: errors {load['errors']}")
            if len(load.get("carried") or {}) > 1:
                notes.append(f"  {label}, {name}: calls carried by {load['carried']}")
    lines += table(headers, rows, ["<"] + [">"] * (len(headers) - 2) + ["<"])
    lines += notes
    lines.append(f"  load average (1 min) at the start of this part {result['load_before']:.2f}, "
                 f"at its end {result.get('load_after', 0):.2f} (2 cores shared with other work)")
    if result.get("error"):
        lines.append(f"  not measured: {result['error']}")
    lines.append("Targets")
    for text, figure, ok in verdicts(result):
        lines.append(f"  {text}: {fmt(figure, '{:.2f}')} x  {'PASS' if ok else 'FAIL'}")
    return lines


def main(argv=None) -> int:
    """
    C{python -m bench.calls}: only this part.
    """
    return runAlone("calls", measureCalls, callsReport, argv)


if __name__ == "__main__":
    sys.exit(main())
