"""
The admin API under load: C{GET /api/devices} of a zone with 5,000
enrolled devices, from the hub's web port, next to a bare C{twisted.web}
JSON resource serving the same list over the same TLS, with the same
client.

In order (see C{bench/README.md}, item 8):

 1. a fresh hub (C{twistd -n pzh}, its web port on 127.0.0.1) creates the
    zone; C{--adminapi-devices} device records are written into its store
    in one transaction (L{enrolRecords}: what pairing records, with a
    certificate serial, expiry, last-seen time and address each; no
    certificate is issued, since the list never reads one);
 2. C{pzctl --hub-dir DIR admin-link} prints a one-time sign-in link;
    the client (L{bench.webload}, its own process) follows it over HTTPS
    and keeps the session cookie it sets;
 3. B{the hub}: the client keeps C{--adminapi-connections} requests in
    flight on keep-alive connections, C{--adminapi-warmup} seconds then
    C{--adminapi-seconds} measured (each at most
    C{--adminapi-max-requests} requests), and saves the list it got;
 4. B{the references}: L{bench.bareweb} with the hub's web-port TLS
    options, key and certificate, serving that list at C{/api/devices}:
    once encoding it with C{json.dumps} for every request (a JSON
    resource holding its rows in memory), once as fixed bytes (TLS and
    HTTP alone); each measured by the same client the same way.

The server's CPU time (C{/proc/PID/stat}) is read around each client run
and divided by the requests it answered.  Everything listens on 127.0.0.1;
every load is bounded in count and time; every process is stopped before
this returns.  C{python -m bench.adminapi [OPTIONS]} runs this part alone
(about a minute) and writes C{bench/out/adminapi.txt} and
C{bench/out/adminapi.json}.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

from bench.processes import TOP, cpuTicks, freePort, log, spawn, stop, waitForPort
from bench.report import fmt, ratio, runAlone, table

PYTHON = sys.executable
BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
PZCTL = os.path.join(BIN, "pzctl")
TICKS = os.sysconf("SC_CLK_TCK")

#: The rows of the table: key, label.
SERVERS = (
    ("hub", "hub: twistd pzh, GET /api/devices"),
    ("encode", "bare twisted.web, json.dumps"),
    ("fixed", "bare twisted.web, fixed bytes"),
)


def pzctl(*args, timeout: float = 60.0) -> str:
    done = subprocess.run([PZCTL, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=TOP)
    if done.returncode != 0:
        raise RuntimeError(f"pzctl {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def enrolRecords(hubDir: str, count: int, now: float = None) -> str:
    """
    Record C{count} devices (C{dev00000}...) in the hub's store as
    pairing would, in one transaction (the hub may be running: the store
    is in WAL mode), each last seen at a time and address of its own.

    @return: the zone id.
    """
    from pzh.store import DeviceRecord, SQLiteHubStore

    with open(os.path.join(hubDir, "zone.json")) as f:
        zoneId = json.load(f)["zone"]
    now = time.time() if now is None else now
    notAfter = (datetime.fromtimestamp(now, timezone.utc) + timedelta(days=90)).timestamp()
    store = SQLiteHubStore(os.path.join(hubDir, "hub.db"))
    try:
        db = store._db
        db.execute("BEGIN")
        for index in range(count):
            name = f"dev{index:05d}"
            serial = int.from_bytes(os.urandom(16), "big") >> 1
            address = f"127.0.{index // 250}.{index % 250 + 1}:{40000 + index % 20000}"
            store.putDevice(DeviceRecord(f"{zoneId}/{name}", name, serial, now - 86400, notAfter,
                                         lastSeen=now - index, address=address))
        db.execute("COMMIT")
    finally:
        store.close()
    return zoneId


def localLink(url: str, port: int) -> str:
    """
    The sign-in link, pointed at 127.0.0.1 and the web port actually
    listened on (the link names the zone's host and announced port).
    """
    parts = urlsplit(url)
    return urlunsplit(("https", f"127.0.0.1:{port}", parts.path, parts.query, ""))


def clientArgs(args) -> list:
    """
    The load options every server's client run gets: the same for all.
    """
    return ["--expect-rows", str(args.adminapi_devices),
            "--connections", str(args.adminapi_connections),
            "--warmup", str(args.adminapi_warmup), "--seconds", str(args.adminapi_seconds),
            "--max-requests", str(args.adminapi_max_requests), "--timeout", "30"]


def runClient(args, argv: list, pid: int) -> dict:
    """
    Run one L{bench.webload} to its end (bounded) and return its figures,
    with the server's CPU time per answered request (warm-up included).
    """
    limit = 3 * 30 + args.adminapi_warmup + args.adminapi_seconds + 60
    before = cpuTicks(pid)
    done = subprocess.run([PYTHON, "-m", "bench.webload", *argv, *clientArgs(args)], cwd=TOP,
                          capture_output=True, text=True, timeout=limit + 30)
    used = (cpuTicks(pid) - before) / TICKS
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"the client printed nothing (exit {done.returncode}): "
                           f"{done.stderr.strip()[-300:]}")
    result = json.loads(lines[-1])
    if result.get("error"):
        raise RuntimeError(result["error"])
    answered = result["measured"]["answered"] + (result.get("warmup") or {}).get("answered", 0)
    result["server_cpu_us"] = round(1e6 * used / answered) if answered else None
    return result


def measureAdminAPI(args, run: str) -> dict:
    """
    The hub and the two references, in one run, under C{RUN/adminapi/}.
    A server that could not be measured is kept with its reason.
    """
    work = os.path.join(run, "adminapi")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    hubDir = os.path.join(work, "hub")
    body = os.path.join(work, "devices.json")
    result = {"devices": args.adminapi_devices, "connections": args.adminapi_connections,
              "warmup": args.adminapi_warmup, "seconds": args.adminapi_seconds,
              "max_requests": args.adminapi_max_requests, "load_before": os.getloadavg()[0]}
    procs = []
    try:
        port, webPort = freePort(), freePort()
        log("adminapi: starting the hub")
        hub = spawn("hub", [
            TWISTD, "-n", "--pidfile", "", "--logfile", os.path.join(work, "hub.log"),
            "pzh", "--data-dir", hubDir, "--name", "bench", "--interface", "127.0.0.1",
            "--port", str(port), "--web-port", str(webPort),
        ], os.path.join(work, "hub.out"))
        procs.append(hub)
        waitForPort(webPort, hub)
        pzctl("--hub-dir", hubDir, "wait", "--timeout", "30")
        began = time.monotonic()
        enrolRecords(hubDir, args.adminapi_devices)
        result["enrol_seconds"] = round(time.monotonic() - began, 2)
        log(f"adminapi: {args.adminapi_devices} devices recorded in "
            f"{result['enrol_seconds']} s")
        link = json.loads(pzctl("--hub-dir", hubDir, "admin-link", "--json"))["url"]
        ca = os.path.join(hubDir, "ca.pem")
        url = f"https://127.0.0.1:{webPort}/api/devices"
        try:
            result["hub"] = runClient(args, ["--url", url, "--ca", ca, "--signin",
                                             localLink(link, webPort), "--save-body", body],
                                      hub.pid)
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
            result["hub"] = {"error": str(e)}
        stop(hub)
        for key, extra in (("encode", ["--encode"]), ("fixed", [])):
            if not os.path.exists(body):
                result[key] = {"error": "the hub gave no list to serve"}
                continue
            barePort = freePort()
            bare = spawn(f"bare web ({key})", [
                PYTHON, "-m", "bench.bareweb", "--port", str(barePort), "--body-file", body,
                "--log-file", os.path.join(work, f"bareweb-{key}.log"), "--get", "/api/devices",
                "--tls-data-dir", hubDir, *extra,
            ], os.path.join(work, f"bareweb-{key}.out"))
            procs.append(bare)
            try:
                waitForPort(barePort, bare)
                result[key] = runClient(
                    args, ["--url", f"https://127.0.0.1:{barePort}/api/devices", "--ca", ca],
                    bare.pid)
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
                result[key] = {"error": str(e)}
            stop(bare)
        for key, label in SERVERS:
            m = (result.get(key) or {}).get("measured")
            if m:
                log(f"adminapi: {label}: {fmt(m['answer_rate'])} req/s, p50 "
                    f"{fmt(m['p50_ms'], '{:.1f}')} ms, p99 {fmt(m['p99_ms'], '{:.1f}')} ms")
            else:
                log(f"adminapi: {label}: failed: {(result.get(key) or {}).get('error')}")
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
        log(f"adminapi: the hub did not start: {e}")
        result["error"] = str(e)
    finally:
        for proc in procs:
            stop(proc)
    result["load_after"] = os.getloadavg()[0]
    return result


def adminAPIReport(result: dict) -> list:
    """
    The admin API section of the printed table.
    """
    if not result:
        return []
    sizes = next((result[k]["body_bytes"] for k, _ in SERVERS
                  if (result.get(k) or {}).get("body_bytes")), None)
    lines = [
        "",
        f"Admin API: GET /api/devices of a zone with {result['devices']:,} enrolled devices "
        f"({fmt(sizes, '{:,}')}-byte JSON answer), over HTTPS (the hub's web-port TLS, "
        f"certificate and key for every server) on 127.0.0.1. Hub: twistd pzh, signed in with "
        f"a `pzctl admin-link` link (session cookie on every request). References: "
        f"bench.bareweb, a bare twisted.web resource serving the list the hub answered, encoded "
        f"with json.dumps per request, or as fixed bytes. Client: bench.webload, one treq "
        f"process, {result['connections']} requests in flight on keep-alive connections, "
        f"{result['warmup']:g} s warm-up + {result['seconds']:g} s measured (at most "
        f"{result['max_requests']:,} requests each); latency = send to the answer's last "
        f"byte. CPU us/req: the server's CPU time over the client's run, per answered request.",
    ]
    headers = ["server", "requests", "answered", "req/s", "vs json.dumps", "p50 ms", "p99 ms",
               "max ms", "srv CPU us/req", "cli CPU us/req", "connections"]
    rows, notes = [], []
    baseRate = ((result.get("encode") or {}).get("measured") or {}).get("answer_rate")
    for key, label in SERVERS:
        part = result.get(key) or {}
        m = part.get("measured")
        if part.get("error") or not m:
            rows.append([label] + ["-"] * (len(headers) - 1))
            notes.append(f"  {label}: not measured: {part.get('error', 'no figures')}")
            continue
        rows.append([
            label, m["calls"], m["answered"], fmt(m["answer_rate"], "{:.1f}"),
            fmt(ratio(m["answer_rate"], baseRate), "{:.2f}"), fmt(m["p50_ms"], "{:.1f}"),
            fmt(m["p99_ms"], "{:.1f}"), fmt(m["max_ms"], "{:.1f}"), fmt(part["server_cpu_us"]),
            fmt(part["client_cpu_us"]), part["opened"],
        ])
        if m.get("errors"):
            notes.append(f"  {label}: errors {m['errors']}")
    lines += table(headers, rows)
    lines += notes
    if result.get("enrol_seconds") is not None:
        lines.append(f"  {result['devices']:,} device records written to the hub's store in "
                     f"{result['enrol_seconds']} s, one transaction")
    lines.append(f"  load average (1 min) at the start of this part {result['load_before']:.2f}, "
                 f"at its end {result.get('load_after', 0):.2f} (2 cores shared with other work)")
    if result.get("error"):
        lines.append(f"  not measured: {result['error']}")
    return lines


def main(argv=None) -> int:
    """
    C{python -m bench.adminapi}: only this part.
    """
    return runAlone("adminapi", measureAdminAPI, adminAPIReport, argv)


if __name__ == "__main__":
    sys.exit(main())
