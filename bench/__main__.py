"""
C{make bench} (C{python -m bench}, from the project's top directory): the
hub's connection rate and memory per device, next to a bare Twisted
mutual-TLS server and C{openssl s_server}, all measured in this one run with
the same certificates and the same client program.

What it does, in order (see C{bench/README.md} for why):

 1. starts the hub (C{twistd -n pzh}) on a fresh data directory, which
    creates the zone; issues 5,000 device certificates from the zone CA and
    enrols them in the hub's store;
 2. starts the bare Twisted server (L{bench.bareserver}) and
    C{openssl s_server} with the hub's certificate, key and CA;
 3. connection rate: runs L{bench.client} against each server, three times,
    interleaved, and C{openssl s_time} likewise; takes medians; reads each
    server's CPU time around every run;
 4. memory: for the bare server, then the hub, each freshly started: RSS
    after start-up, a few connections and a garbage collection; then 5,000
    idle links held by L{bench.hold}; once traffic has settled, another
    collection and RSS again; the growth divided by 5,000;
 5. revocation latency (L{bench.revocation}); skip with C{--skip-revocation};
 6. the Mesh portal (L{bench.portal}): Get and Publish transactions per
    second over HTTP with a C{treq} client next to a bare C{twisted.web}
    handler, and the cost of one Publish in-process; skip with
    C{--skip-portal};
 7. synchronisation (L{bench.sync}): bytes on the wire and time for three
    small edits of a 10 MB file from a device to the hub, next to C{rsync}
    through an C{rsync} daemon; chunking + hashing throughput; one changed
    preference reaching 10 connected devices; skip with C{--skip-sync};
 8. calls (L{bench.calls}): a zone service call's round trip at 1,000
    calls/s and the peak call rate, through the hub and over a peer link,
    next to a bare Twisted TLS echo relay; skip with C{--skip-calls};
 9. the admin API (L{bench.adminapi}): C{GET /api/devices} of a zone with
    5,000 devices from the hub's web port, signed in, requests/s and
    p50/p99 latency over HTTPS keep-alive, next to a bare C{twisted.web}
    JSON resource serving the same list over the same TLS; skip with
    C{--skip-adminapi};
 9b. one policy decision (L{bench.policy}): median and p99 of
    C{PolicyDecisionPoint.decide} on a 100-rule policy, in-process, next to
    a dict lookup of the same answer; skip with C{--skip-policy};
10. prints the machine facts and one table, with ratios to the bare server
    and pass/fail against the targets, and writes it to
    C{bench/out/results.txt} (raw figures in C{bench/out/results.json}).

Every load is bounded in count and time; servers listen on 127.0.0.1 only.
"""

import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

from bench.options import parseArgs
from bench.processes import (
    OUT, TOP, cpuTicks, freePort, log, spawn, started, status, stop, stopAll, waitForPort,
)
from bench.report import fmt, publish, ratio, table

PYTHON = sys.executable
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
TICKS = os.sysconf("SC_CLK_TCK")

RATE_TARGET = 0.70
MEMORY_TARGET = 1.30

# Servers


class Servers:
    def __init__(self, run: str) -> None:
        self.run = run
        self.dataDir = os.path.join(run, "hub")
        self.certs = os.path.join(run, "certs")

    def hub(self, tag: str):
        port = freePort()
        gcFile = os.path.join(self.run, f"hub-{tag}.gc")
        proc = spawn(f"hub ({tag})", [
            PYTHON, "-m", "bench.serve", "--gc-file", gcFile, "--",
            "twistd", "-n", "--pidfile", os.path.join(self.run, f"hub-{tag}.pid"),
            "--logfile", os.path.join(self.run, f"hub-{tag}.log"),
            "pzh", "--data-dir", self.dataDir, "--name", "bench", "--interface", "127.0.0.1",
            "--port", str(port), "--web-port", "0", "--idle-timeout", "3600",
        ], os.path.join(self.run, f"hub-{tag}.out"))
        waitForPort(port, proc)
        return proc, port, gcFile

    def bare(self, tag: str):
        port = freePort()
        gcFile = os.path.join(self.run, f"bare-{tag}.gc")
        proc = spawn(f"bare server ({tag})", [
            PYTHON, "-m", "bench.bareserver", "--data-dir", self.dataDir,
            "--port", str(port), "--gc-file", gcFile,
        ], os.path.join(self.run, f"bare-{tag}.out"))
        waitForPort(port, proc)
        return proc, port, gcFile

    def sServer(self):
        port = freePort()
        proc = spawn("openssl s_server", [
            OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}",
            "-cert", os.path.join(self.dataDir, "hub.pem"),
            "-key", os.path.join(self.dataDir, "hub.key"),
            "-cert_chain", os.path.join(self.dataDir, "ca.pem"),
            "-CAfile", os.path.join(self.dataDir, "ca.pem"),
            "-verify", "1", "-no_ticket", "-quiet",
        ], os.path.join(self.run, "s_server.out"), stdin=subprocess.PIPE)
        waitForPort(port, proc)
        return proc, port


# Measurements


def runClient(args, port: int, mode: str, extra=(), timeout=120) -> dict:
    argv = [
        PYTHON, "-m", "bench.client", "--port", str(port), "--certs", args.certs,
        "--mode", mode, "--workers", str(args.workers), "--devices", str(args.rate_devices),
        *extra,
    ]
    done = subprocess.run(argv, cwd=TOP, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"client failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measureRate(args, row: dict) -> dict:
    before = cpuTicks(row["pid"])
    result = runClient(args, row["port"], row["mode"], [
        "--warmup", str(args.warmup), "--duration", str(args.duration),
    ])
    result["server_cpu_us"] = (
        round(1e6 * (cpuTicks(row["pid"]) - before) / TICKS / result["total"])
        if result["total"] else None
    )
    return result


_S_TIME = re.compile(rb"(\d+) connections in [\d.]+s;")


def measureSTime(args, row: dict) -> dict:
    argv = [
        OPENSSL, "s_time", "-connect", f"127.0.0.1:{row['port']}", "-new",
        "-cert", os.path.join(args.certs, "dev00000.pem"),
        "-key", os.path.join(args.certs, "dev00000.key"),
        "-CAfile", os.path.join(args.certs, "ca.pem"), "-time", str(args.s_time),
    ]
    before = cpuTicks(row["pid"])
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, timeout=args.s_time + 30)
    elapsed = time.monotonic() - started
    match = _S_TIME.search(done.stdout)
    if done.returncode != 0 or not match:
        return {"rate": None, "error": (done.stderr or done.stdout)[-300:].decode(errors="replace")}
    count = int(match.group(1))
    return {
        "rate": count / elapsed, "count": count, "seconds": round(elapsed, 3),
        "server_cpu_us": round(1e6 * (cpuTicks(row["pid"]) - before) / TICKS / count)
        if count else None,
    }


def collect(pid: int, gcFile: str, seq: int, timeout: float = 30.0) -> dict:
    """
    Ask a server to collect garbage (SIGUSR2, see L{bench.serve}) and wait
    for its report.
    """
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(gcFile) as f:
                report = json.load(f)
            if report.get("seq") == seq:
                return report
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} did not report a garbage collection")


def settle(pids, minimum: float, maximum: float, quiet: int = 2) -> tuple:
    """
    Wait until none of C{pids} used more than C{quiet} clock ticks of CPU in
    each of two consecutive seconds (at least C{minimum} s, at most
    C{maximum} s).  Returns (seconds waited, whether it settled).
    """
    started = time.monotonic()
    last = {pid: cpuTicks(pid) for pid in pids}
    calm = 0
    while True:
        time.sleep(1.0)
        now = {pid: cpuTicks(pid) for pid in pids}
        busy = any(now[pid] - last[pid] > quiet for pid in pids)
        last = now
        calm = 0 if busy else calm + 1
        waited = time.monotonic() - started
        if calm >= 2 and waited >= minimum:
            return round(waited, 1), True
        if waited >= maximum:
            return round(waited, 1), False


def measureMemory(args, servers: Servers, which: str) -> dict:
    if which == "hub":
        proc, port, gcFile = servers.hub("memory")
        mode = "hub"
    else:
        proc, port, gcFile = servers.bare("memory")
        mode = "tls"
    try:
        # Run the connection code paths once, so the baseline is a warm
        # server rather than a freshly imported one.
        runClient(args, port, mode, ["--count", "20", "--max-time", "30"])
        settle([proc.pid], 1.0, 10.0)
        base = collect(proc.pid, gcFile, 1)
        holder = subprocess.Popen(
            [PYTHON, "-m", "bench.hold", "--port", str(port), "--certs", args.certs,
             "--count", str(args.links), "--mode", mode, "--inflight", str(args.inflight),
             "--ramp-timeout", str(args.ramp_timeout), "--max-time", str(args.ramp_timeout + 120)],
            cwd=TOP, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(servers.run, f"hold-{which}.err"), "wb"),
            text=True, start_new_session=True,
        )
        holder.benchName = f"holder ({which})"
        started.append(holder)
        line = holder.stdout.readline()
        if not line:
            raise RuntimeError(f"the {which} holder exited: see hold-{which}.err")
        up = json.loads(line)
        waited, settled = settle([proc.pid, holder.pid], 3.0, 60.0)
        loaded = collect(proc.pid, gcFile, 2)
        peak = status(proc.pid, "VmHWM")
        holder.stdin.write("stop\n")
        holder.stdin.flush()
        final = json.loads(holder.stdout.readline() or "{}")
        holder.wait(60)
        started.remove(holder)
    finally:
        stop(proc)
    links = final.get("open", up["up"])
    growth = loaded["rss_kib"] - base["rss_kib"]
    trimmed = None
    if "rss_after_trim_kib" in loaded and "rss_after_trim_kib" in base:
        trimmed = (loaded["rss_after_trim_kib"] - base["rss_after_trim_kib"]) / max(links, 1)
    return {
        "links": links,
        "up": up,
        "final": final,
        "settle_seconds": waited,
        "settled": settled,
        "rss_before_kib": base["rss_kib"],
        "rss_loaded_kib": loaded["rss_kib"],
        "peak_kib": peak,
        "per_link_kib": growth / max(links, 1),
        "per_link_after_trim_kib": trimmed,
        "objects_before": base["objects"],
        "objects_loaded": loaded["objects"],
    }


# Report


def facts() -> list:
    from OpenSSL import SSL
    import OpenSSL
    import twisted

    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = 0.0
    try:
        with open("/proc/meminfo") as f:
            memory = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        pass
    cli = subprocess.run([OPENSSL, "version"], capture_output=True, text=True).stdout.strip()
    code = "?"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=TOP,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pz", "pzh", "pzp",
                                "twisted"], cwd=TOP, capture_output=True, text=True).stdout
        code = (head or "?") + (" with uncommitted changes to pz/pzh/pzp" if dirty.strip() else "")
    except OSError:
        pass
    return [
        f"machine : {os.cpu_count()} cores ({model}), {memory:.1f} GiB, "
        f"Linux {platform.release()}, load average {os.getloadavg()[0]:.2f} at start",
        f"python  : {platform.python_implementation()} {platform.python_version()}, "
        f"Twisted {twisted.__version__}, pyOpenSSL {OpenSSL.__version__} on "
        f"{SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()} (hub, bare server, clients)",
        f"openssl : {cli} at {OPENSSL} (s_server, s_time)",
        f"code    : {code}, {time.strftime('%Y-%m-%d %H:%M %Z')}",
    ]


def report(args, rate: dict, memory: dict, info: list) -> list:
    lines = list(info)
    lines.append("")
    anyResult = next(r for name in rate for r in rate[name]["client"])
    lines.append(
        f"Connection rate: a new mutual-TLS connection each time ({anyResult['tls']}, "
        f"{anyResult['cipher']}), device certificates round-robin over {args.rate_devices}; "
        f"client: bench.client, {args.workers} processes each connecting sequentially, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s measured; s_time: one process, "
        f"{args.s_time} s; median of {args.repeat} runs, interleaved."
    )
    bare = rate["bare"]
    headers = ["server", "what completes", "kex", "conn/s", "vs bare", "runs", "srv CPU us/conn",
               "cli CPU us/conn", "s_time conn/s", "vs bare"]
    rows = []
    for name, label, what in (
        ("hub", "hub (twistd pzh)", "handshake + registered"),
        ("bare", "bare Twisted mTLS", "handshake"),
        ("s_server", "openssl s_server", "handshake"),
    ):
        r = rate[name]
        rows.append([
            label, what, r["group"], fmt(r["rate"]), fmt(ratio(r["rate"], bare["rate"]), "{:.2f}"),
            "/".join(fmt(x["rate"]) for x in r["client"]),
            fmt(r["server_cpu_us"]), fmt(r["client_cpu_us"]),
            fmt(r["s_time"]), fmt(ratio(r["s_time"], bare["s_time"]), "{:.2f}"),
        ])
    lines += table(headers, rows, ["<", "<", "<"] + [">"] * 7)
    rateRatio = ratio(rate["hub"]["rate"], bare["rate"])
    verdict = lambda ok: "PASS" if ok else "FAIL"
    errors = [f"{name}: {r['errors']} errors ({r['first_error']})"
              for name in rate for r in rate[name]["client"] if r["errors"]]
    errors += [f"{name} s_time: {r['error']}" for name in rate for r in rate[name]["s_time_runs"]
               if r.get("error")]
    if errors:
        lines.append("errors: " + "; ".join(errors))
    lines.append("")
    if memory:
        lines += memoryReport(args, memory)
    lines.append("Targets")
    lines.append(
        f"  connection rate >= {RATE_TARGET:.2f} x bare server: "
        f"{fmt(rateRatio, '{:.2f}')} x  {verdict(rateRatio is not None and rateRatio >= RATE_TARGET)}"
    )
    if memory:
        memRatio = ratio(memory["hub"]["per_link_kib"], memory["bare"]["per_link_kib"])
        lines.append(
            f"  memory per device <= {MEMORY_TARGET:.2f} x bare server: "
            f"{fmt(memRatio, '{:.2f}')} x  "
            f"{verdict(memRatio is not None and memRatio <= MEMORY_TARGET)}"
        )
    return lines


def memoryReport(args, memory: dict) -> list:
    lines = []
    lines.append(
        f"Memory per idle connected device: {args.links} links held open by bench.hold "
        f"(one process, at most {args.inflight} connecting at once), RSS growth of the "
        f"server process after settling and a gc, divided by the links."
    )
    headers = ["server", "links up", "ramp s", "RSS before MiB", "RSS with links MiB",
               "peak MiB", "KiB/link", "vs bare", "KiB/link after malloc_trim"]
    rows = []
    for name, label in (("hub", "hub (registered)"), ("bare", "bare Twisted mTLS")):
        m = memory[name]
        rows.append([
            label, m["links"], fmt(m["up"]["ramp_seconds"], "{:.1f}"),
            fmt(m["rss_before_kib"] / 1024, "{:.1f}"), fmt(m["rss_loaded_kib"] / 1024, "{:.1f}"),
            fmt(m["peak_kib"] / 1024, "{:.1f}"), fmt(m["per_link_kib"], "{:.1f}"),
            fmt(ratio(m["per_link_kib"], memory["bare"]["per_link_kib"]), "{:.2f}"),
            fmt(m["per_link_after_trim_kib"], "{:.1f}"),
        ])
    lines += table(headers, rows)
    for name in ("hub", "bare"):
        m = memory[name]
        notes = []
        if m["up"]["failed"] or m["final"].get("lost_after_up"):
            notes.append(f"{m['up']['failed']} failed, {m['final'].get('lost_after_up')} lost")
        if not m["settled"]:
            notes.append(f"traffic had not settled after {m['settle_seconds']} s")
        if notes:
            lines.append(f"note ({name}): " + "; ".join(notes))
    hubBytes = memory["hub"]["final"].get("bytes_received")
    if hubBytes:
        lines.append(
            f"(the hub sent the {args.links} devices {hubBytes / 2**20:.0f} MiB of pzpUpdate "
            f"frames while they joined; settled {memory['hub']['settle_seconds']} s after the "
            f"last registration)"
        )
    lines.append("")
    return lines


# Main


def mainAttack(argv) -> int:
    """
    C{python -m bench attack}: the under-attack table only.
    """
    from bench.attack import attackReport, measureAttack

    args = parseArgs(argv)
    began = time.monotonic()
    run = os.path.join(OUT, "run-attack")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    info = facts()
    for line in info:
        log(line)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        attack = measureAttack(args, run, log, TOP, spawn=spawn, stop=stop, freePort=freePort,
                               waitForPort=waitForPort)
    finally:
        stopAll()
    publish("attack", "run-attack", info + attackReport(attack), began,
             {"facts": info, "attack": attack})
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["attack"]:
        return mainAttack(argv[1:])
    args = parseArgs(argv)
    began = time.monotonic()
    run = os.path.join(OUT, "run")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    servers = Servers(run)
    args.certs = servers.certs
    info = facts()
    for line in info:
        log(line)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        log("starting the hub (creates the zone)")
        hub, hubPort, _ = servers.hub("rate")
        log(f"issuing {max(args.links, args.rate_devices, args.revocation_devices + 1)} device certificates")
        from bench.devices import issueDevices

        issueDevices(servers.dataDir, servers.certs,
                     max(args.links, args.rate_devices, args.revocation_devices + 1))
        bare, barePort, _ = servers.bare("rate")
        sServer, sPort = servers.sServer()
        rows = [
            {"name": "hub", "pid": hub.pid, "port": hubPort, "mode": "hub"},
            {"name": "bare", "pid": bare.pid, "port": barePort, "mode": "tls"},
            {"name": "s_server", "pid": sServer.pid, "port": sPort, "mode": "tls"},
        ]
        raw = {row["name"]: {"client": [], "s_time_runs": []} for row in rows}
        for rep in range(args.repeat):
            order = rows[rep % len(rows):] + rows[: rep % len(rows)]
            for row in order:
                result = measureRate(args, row)
                raw[row["name"]]["client"].append(result)
                log(f"run {rep + 1}: {row['name']}: {result['rate']:.0f} conn/s "
                    f"({result['errors']} errors), server {result['server_cpu_us']} us/conn")
        for rep in range(args.repeat):
            order = rows[rep % len(rows):] + rows[: rep % len(rows)]
            for row in order:
                result = measureSTime(args, row)
                raw[row["name"]]["s_time_runs"].append(result)
                log(f"s_time {rep + 1}: {row['name']}: {fmt(result['rate'])} conn/s")
        for proc in (sServer, bare, hub):
            stop(proc)
        rate = {}
        for name, r in raw.items():
            runs = r["client"]
            sTimes = [x["rate"] for x in r["s_time_runs"] if x.get("rate")]
            median = lambda key: statistics.median(x[key] for x in runs if x[key] is not None) \
                if any(x[key] is not None for x in runs) else None
            rate[name] = {
                **r,
                "rate": statistics.median(x["rate"] for x in runs),
                "server_cpu_us": median("server_cpu_us"),
                "client_cpu_us": median("client_cpu_us"),
                "group": runs[0]["group"],
                "s_time": statistics.median(sTimes) if sTimes else None,
            }

        memory = {}
        if not args.skip_memory:
            for which in ("bare", "hub"):
                log(f"memory: {args.links} idle links to the {which} server")
                memory[which] = measureMemory(args, servers, which)
                m = memory[which]
                log(f"memory: {which}: {m['per_link_kib']:.1f} KiB/link "
                    f"({m['links']} links, ramp {m['up']['ramp_seconds']} s, "
                    f"settled in {m['settle_seconds']} s)")
        revocation = {}
        if not args.skip_revocation:
            from bench.revocation import measureRevocation

            log(f"revocation: {args.revocation_devices} connected devices")
            revocation = measureRevocation(servers, args.revocation_devices, log, TOP)
        portal = {}
        if not args.skip_portal:
            from bench.portal import measurePortal

            log(f"portal: Get and Publish at {args.portal_concurrency} in flight")
            portal = measurePortal(args, run, log, TOP, spawn=spawn, stop=stop, freePort=freePort,
                                   waitForPort=waitForPort, cpuTicks=cpuTicks)
        sync = {}
        if not args.skip_sync:
            from bench.sync import measureSync

            log("sync: a 10 MB file edited three times, next to rsync; 10 devices")
            sync = measureSync(args, run)
        calls = {}
        if not args.skip_calls:
            from bench.calls import measureCalls

            log("calls: round trip and peak through the hub and a peer link, next to a bare "
                "TLS echo relay")
            calls = measureCalls(args, run)
        adminapi = {}
        if not args.skip_adminapi:
            from bench.adminapi import measureAdminAPI

            log("adminapi: GET /api/devices of a 5,000-device zone, next to a bare twisted.web "
                "JSON resource")
            adminapi = measureAdminAPI(args, run)
        policy = {}
        if not args.skip_policy:
            from bench.policy import measurePolicy

            log("policy: one decision on a 100-rule policy, next to a dict lookup")
            policy = measurePolicy(args)
        attack = {}
        if not args.skip_attack:
            from bench.attack import measureAttack

            log("attack: a normal device's round trip, quiet and under three attacks")
            attack = measureAttack(args, run, log, TOP, spawn=spawn, stop=stop,
                                   freePort=freePort, waitForPort=waitForPort)
    finally:
        stopAll()

    from bench.adminapi import adminAPIReport
    from bench.attack import attackReport
    from bench.calls import callsReport
    from bench.policy import policyReport
    from bench.portal import portalReport
    from bench.revocation import revocationReport
    from bench.sync import syncReport

    lines = (report(args, rate, memory, info) + revocationReport(revocation)
             + portalReport(portal) + syncReport(sync) + callsReport(calls)
             + adminAPIReport(adminapi) + policyReport(policy) + attackReport(attack))
    publish("results", "run", lines, began,
             {"args": {k: v for k, v in vars(args).items()}, "facts": info,
              "rate": rate, "memory": memory, "revocation": revocation,
              "portal": portal, "sync": sync, "calls": calls, "adminapi": adminapi,
              "policy": policy,
              "attack": attack})
    return 0


if __name__ == "__main__":
    sys.exit(main())
