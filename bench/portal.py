"""
Mesh portal: transactions per second for Get and Publish over HTTP, next to
a bare C{twisted.web} handler, and the cost of one Publish without HTTP.

In order (see C{bench/README.md}, item 4):

 1. signs, in worker processes and before anything is timed, a personal
    profile for one account, C{--portal-entries} device profiles to publish
    first and C{--portal-publishes} more for the Publish run: each a new
    device as C{pzctl mesh} makes one (Ed25519 signature key, P-256
    authentication key with its certificate request, X25519 encryption
    key), its profile signed by its own key;
 2. the cost of one Publish, in a fresh process without HTTP: a
    L{PortalService} over an L{SQLitePortalStore} on disk (the data
    directory the portal will serve), CreateAccount, then each of the first
    entries through C{PortalService.dispatch(PublishRequest)} (signature
    check, admission, log append and commit), timed one by one, and the
    last 160 in batches of 16 sharing one commit (group commit); then the
    signature check alone (C{verifyDeviceProfile}) on the same entries, and
    one SQLite commit of one small row in the same directory with the same
    settings, for scale;
 3. starts C{twistd -n meshportal} on that data directory (plain HTTP,
    127.0.0.1) and L{bench.bareweb}, which answers every POST with a real
    C{GetResponse} of that portal;
 4. runs L{bench.portalclient} (C{treq}, C{--portal-concurrency} requests in
    flight) for Get (by Identifier, round-robin over the published entries)
    and Publish (each prepared entry once) against the portal, and the same
    requests against the bare handler; reads each server's CPU time around
    every run;
 5. stops both servers and checks the portal's log: its record count and
    its hash chain.

Everything listens on 127.0.0.1; every process is stopped before this
returns.  C{python -m bench.portal [OPTIONS]} runs this part alone.
"""

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")

#: The account the benchmark creates.
ACCOUNT = "bench"

#: Device profiles signed per task of the signing workers.
CHUNK = 250

#: In-process: the last BATCH * BATCHES entries are published in batches of
#: BATCH sharing one commit (group commit).
BATCH = 16
BATCHES = 10


# Preparation (worker processes)


def _person(account: str) -> bytes:
    """
    A CreateRequest for C{account}: new master keys and an administration
    device, and a personal profile naming the account, signed by the online
    key.
    """
    from pz.mesh.builders import MasterKeys, makePersonalProfile
    from pz.mesh.device import makeDeviceKeys, signedDeviceProfile
    from pz.mesh.messages import CreateRequest, accountNameFingerprint
    from pz.mesh.signing import sign

    when = datetime.now(timezone.utc)
    master = MasterKeys.generate(onlineKeys=1)
    admin = signedDeviceProfile(makeDeviceKeys(), "laptop", when)
    personal = makePersonalProfile(
        master.signedProfile(updated=when), devices=[admin], updated=when,
        names=[accountNameFingerprint(account)],
    )
    return CreateRequest(Account=account, Profile=sign(personal, master.online[0])).toJSON()


def _signDevices(task) -> list:
    """
    C{count} new devices' signed profiles, as (Identifier, PublishRequest
    body) pairs.
    """
    prefix, start, count = task
    from pz.mesh.device import makeDeviceKeys, signedDeviceProfile
    from pz.mesh.messages import PublishRequest

    when = datetime.now(timezone.utc)
    out = []
    for index in range(start, start + count):
        signed = signedDeviceProfile(makeDeviceKeys(), f"{prefix}{index:05d}", when)
        body = PublishRequest(Entry=signed).toJSON()
        if b"\n" in body:
            raise RuntimeError("a request body holds a newline")
        out.append((signed.Identifier, body))
    return out


class _Clock:
    """
    The reactor's clock, without a reactor.
    """

    @staticmethod
    def seconds() -> float:
        return time.time()


def _stats(values: list) -> dict:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "median_ms": 1e3 * statistics.median(ordered),
        "p95_ms": 1e3 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "mean_ms": 1e3 * statistics.fmean(ordered),
        "max_ms": 1e3 * ordered[-1],
    }


def _publishInProcess(dataDir: str, createBody: bytes, bodies: list) -> dict:
    """
    Create the account and publish C{bodies} through L{PortalService}
    itself, timing each Publish; then the signature check alone, and a bare
    SQLite commit.  Runs in a fresh process.
    """
    from pz.mesh.signing import verifyDeviceProfile
    from pzh.portal.resource import parseRequest
    from pzh.portal.service import PortalService
    from pzh.portal.store import SQLitePortalStore
    from pzh.portal.tap import PORTAL_DB

    os.makedirs(dataDir, mode=0o700, exist_ok=True)
    store = SQLitePortalStore(os.path.join(dataDir, PORTAL_DB))
    service = PortalService(store, _Clock())
    created = service.dispatch(parseRequest(createBody))
    if created.Status != 201:
        raise RuntimeError(f"CreateAccount answered {created.Status}: {created.StatusDescription}")
    clock = time.perf_counter
    # The last BATCH * BATCHES entries go in batches sharing one commit, as
    # the served portal's group commit makes them; the others one by one.
    take = BATCH * BATCHES if len(bodies) >= 2 * BATCH * BATCHES else 0
    alone, grouped = bodies[:len(bodies) - take], bodies[len(bodies) - take:]
    decoding, publishing, requests, refused = [], [], [], []
    for body in alone:
        t0 = clock()
        request = parseRequest(body)
        t1 = clock()
        response = service.dispatch(request)
        t2 = clock()
        if response.Status != 201:
            refused.append(f"{response.Status}: {response.StatusDescription}")
            continue
        decoding.append(t1 - t0)
        publishing.append(t2 - t1)
        requests.append(request)
    batched = []
    for start in range(0, len(grouped), BATCH):
        chunk = [parseRequest(body) for body in grouped[start:start + BATCH]]
        t0 = clock()
        store.beginBatch()
        answers = [service.dispatch(request) for request in chunk]
        store.commitBatch()
        batched.append((clock() - t0) / len(chunk))
        refused += [f"{a.Status}: {a.StatusDescription}" for a in answers if a.Status != 201]
    store.close()
    checking = []
    for request in requests:
        t0 = clock()
        verifyDeviceProfile(request.Entry, None)
        checking.append(clock() - t0)
    # One small commit with the store's settings, in the same directory.
    path = os.path.join(dataDir, "commit-probe.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY, data BLOB)")
    committing = []
    for n in range(200):
        t0 = clock()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (n, data) VALUES (?, ?)", (n, b"x" * 2000))
        db.execute("COMMIT")
        committing.append(clock() - t0)
    db.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except OSError:
            pass
    return {
        "publish": _stats(publishing),
        "publish_batched": _stats(batched) if batched else None,
        "batch": BATCH,
        "decode": _stats(decoding),
        "signature": _stats(checking),
        "commit": _stats(committing),
        "refused": len(refused),
        "first_refusal": refused[0] if refused else None,
        "entry_bytes": statistics.median(len(b) for b in bodies),
    }


def _checkLog(dataDir: str) -> dict:
    """
    After the portal stopped: how many records its log holds, and whether
    the hash chain verifies.
    """
    from pzh.portal.store import ChainError, SQLitePortalStore
    from pzh.portal.tap import PORTAL_DB

    store = SQLitePortalStore(os.path.join(dataDir, PORTAL_DB))
    try:
        head = store.verifyChain()
        return {"records": head.sequence, "chain": "verifies"}
    except ChainError as e:
        return {"records": store.head().sequence, "chain": str(e)}
    finally:
        store.close()


# Orchestration


def _post(url: str, body: bytes) -> tuple:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _runClient(top: str, url: str, bodies: str, expect: str, args, once: bool) -> dict:
    argv = [
        PYTHON, "-m", "bench.portalclient", "--url", url, "--bodies", bodies, "--expect", expect,
        "--concurrency", str(args.portal_concurrency), "--warmup", str(args.portal_warmup),
        "--duration", str(args.portal_duration),
    ] + (["--once"] if once else [])
    done = subprocess.run(argv, cwd=top, capture_output=True, text=True,
                          timeout=args.portal_warmup + args.portal_duration + 60)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"portal client failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measurePortal(args, run: str, log, top: str, *, spawn, stop, freePort, waitForPort,
                  cpuTicks) -> dict:
    """
    The whole portal part (see the module docstring); the process helpers
    are L{bench.processes}', so that its clean-up knows every server.
    """
    began = time.monotonic()
    loadStart = os.getloadavg()[0]
    work = os.path.join(run, "portal")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    dataDir = os.path.join(work, "data")
    entries, publishes = args.portal_entries, args.portal_publishes

    log(f"portal: signing {entries + publishes} device profiles in worker processes")
    started = time.monotonic()
    workers = max(1, min(2, os.cpu_count() or 1))
    tasks = [("entry", s, min(CHUNK, entries - s)) for s in range(0, entries, CHUNK)]
    tasks += [("publish", s, min(CHUNK, publishes - s)) for s in range(0, publishes, CHUNK)]
    with ProcessPoolExecutor(workers) as pool:
        person = pool.submit(_person, ACCOUNT)
        signed = [pair for chunk in pool.map(_signDevices, tasks) for pair in chunk]
        createBody = person.result()
    signSeconds = time.monotonic() - started
    setup, fresh = signed[:entries], signed[entries:]
    getFile = os.path.join(work, "get.bodies")
    publishFile = os.path.join(work, "publish.bodies")
    from pz.mesh.messages import GetRequest

    with open(getFile, "wb") as f:
        for identifier, _ in setup:
            f.write(GetRequest(Identifier=identifier).toJSON() + b"\n")
    with open(publishFile, "wb") as f:
        for _, body in fresh:
            f.write(body + b"\n")

    log(f"portal: CreateAccount and {entries} Publish in-process (PortalService, SQLite on disk)")
    with ProcessPoolExecutor(1) as pool:
        inProcess = pool.submit(
            _publishInProcess, dataDir, createBody, [body for _, body in setup]
        ).result()
    if inProcess["refused"]:
        raise RuntimeError(f"the portal refused {inProcess['refused']} of the first entries: "
                           f"{inProcess['first_refusal']}")
    p = inProcess["publish"]
    log(f"portal: one Publish in-process: median {p['median_ms']:.2f} ms, "
        f"p95 {p['p95_ms']:.2f} ms")

    portalPort, barePort = freePort(), freePort()
    portal = spawn("mesh portal", [
        PYTHON, "-m", "bench.serve", "--",
        "twistd", "-n", "--pidfile", os.path.join(work, "meshportal.pid"),
        "--logfile", os.path.join(work, "meshportal.log"),
        "meshportal", "--data-dir", dataDir, "--interface", "127.0.0.1",
        "--port", str(portalPort),
    ], os.path.join(work, "meshportal.out"))
    bare = None
    try:
        waitForPort(portalPort, portal)
        portalURL = f"http://127.0.0.1:{portalPort}/.well-known/mmm/"
        with open(getFile, "rb") as f:
            firstGet = f.readline().rstrip(b"\n")
        code, answer = _post(portalURL, firstGet)
        if code != 201 or not answer.startswith(b'{"GetResponse":'):
            raise RuntimeError(f"the portal answered Get with {code}: {answer[:300]!r}")
        answerFile = os.path.join(work, "get-response.json")
        with open(answerFile, "wb") as f:
            f.write(answer)
        bare = spawn("bare twisted.web", [
            PYTHON, "-m", "bench.bareweb", "--port", str(barePort), "--body-file", answerFile,
            "--log-file", os.path.join(work, "bareweb.log"),
        ], os.path.join(work, "bareweb.out"))
        waitForPort(barePort, bare)
        bareURL = f"http://127.0.0.1:{barePort}/.well-known/mmm/"

        runs = {}
        plan = [
            ("get", "bare", bare, bareURL, getFile, "GetResponse", False),
            ("get", "portal", portal, portalURL, getFile, "GetResponse", False),
            ("publish", "portal", portal, portalURL, publishFile, "PublishResponse", True),
            ("publish", "bare", bare, bareURL, publishFile, "GetResponse", False),
        ]
        for what, server, proc, url, bodies, expect, once in plan:
            before = cpuTicks(proc.pid)
            result = _runClient(top, url, bodies, expect, args, once)
            used = (cpuTicks(proc.pid) - before) / TICKS
            result["server_cpu_us"] = (
                round(1e6 * used / result["total"]) if result["total"] else None
            )
            runs[f"{what}/{server}"] = result
            log(f"portal: {what} {server}: {result['rate']:.0f} tx/s ({result['errors']} errors), "
                f"server {result['server_cpu_us']} us/tx, p50 {result['p50_ms']} ms")
    finally:
        if bare is not None:
            stop(bare)
        stop(portal)
    with ProcessPoolExecutor(1) as pool:
        logCheck = pool.submit(_checkLog, dataDir).result()
    expected = 2 + entries + runs["publish/portal"]["total"]
    return {
        "account": ACCOUNT,
        "entries": entries,
        "publishes_prepared": publishes,
        "sign_seconds": round(signSeconds, 1),
        "concurrency": args.portal_concurrency,
        "warmup": args.portal_warmup,
        "duration": args.portal_duration,
        "get_request_bytes": len(firstGet),
        "get_response_bytes": len(answer),
        "in_process": inProcess,
        "runs": runs,
        "log": {**logCheck, "expected": expected},
        "seconds": round(time.monotonic() - began, 1),
        "load_average": [loadStart, os.getloadavg()[0]],
    }


# Report


def _fmt(value, spec="{:.0f}"):
    return "-" if value is None else spec.format(value)


def portalReport(result: dict) -> list:
    """
    The "Mesh portal" section of the printed table.
    """
    if not result:
        return []
    from bench.report import table

    runs = result["runs"]
    inProcess = result["in_process"]
    lines = [
        "",
        f"Mesh portal: twistd meshportal, plain HTTP on 127.0.0.1, SQLite on disk (WAL, "
        f"synchronous=FULL), account {result['account']!r} and {result['entries']} device "
        f"profiles published first; reference: bench.bareweb, a bare twisted.web handler answering "
        f"every POST with a fixed {result['get_response_bytes']}-byte GetResponse. Client: "
        f"bench.portalclient, one treq process, {result['concurrency']} requests in flight on "
        f"persistent connections, {result['warmup']:g} s warm-up + {result['duration']:g} s "
        f"measured, one run each. Get: by Identifier, round-robin over the published entries "
        f"({result['get_request_bytes']}-byte request); Publish: a new device's signed profile "
        f"each ({inProcess['entry_bytes']:.0f}-byte request, signed beforehand).",
    ]
    headers = ["transaction", "server", "tx/s", "vs bare", "errors", "p50 ms", "p95 ms",
               "srv CPU us/tx", "cli CPU us/tx"]
    rows = []
    for what, label in (("get", "Get"), ("publish", "Publish")):
        base = runs[f"{what}/bare"]["rate"]
        for server, name in (("portal", "meshportal"), ("bare", "bare twisted.web")):
            r = runs[f"{what}/{server}"]
            rows.append([
                label, name, _fmt(r["rate"]), _fmt(r["rate"] / base if base else None, "{:.2f}"),
                r["errors"], _fmt(r["p50_ms"], "{:.1f}"), _fmt(r["p95_ms"], "{:.1f}"),
                _fmt(r["server_cpu_us"]), _fmt(r["client_cpu_us"]),
            ])
    lines += table(headers, rows, ["<", "<"] + [">"] * 7)
    notes = [f"{key}: {r['errors_total']} errors ({r['first_error']})"
             for key, r in runs.items() if r["errors_total"]]
    publish = runs["publish/portal"]
    if publish["exhausted_at"] is not None:
        notes.append(
            f"the {publish['bodies']} prepared Publish entries ran out "
            f"{publish['exhausted_at']:.1f} s "
            f"into the run; its rate is over the {publish['seconds']:g} s measured before that"
        )
    check = result["log"]
    if "load_average" in result:
        notes.append(
            "load average (1 min) at the start of this part %.2f, at its end %.2f "
            "(2 cores; other work on the machine competes for them)" % tuple(result["load_average"])
        )
    notes.append(
        f"portal log afterwards: {check['records']} records (expected {check['expected']}), "
        f"hash chain {check['chain']}"
    )
    lines += ["  " + note for note in notes]
    pub, sig, commit, dec = (inProcess[k] for k in ("publish", "signature", "commit", "decode"))
    rest = pub["median_ms"] - sig["median_ms"]
    lines += [
        "",
        f"Cost of one Publish without HTTP: PortalService.dispatch(PublishRequest) in one process, "
        f"{pub['count']} new device profiles, timed one by one, into the SQLite store on disk that "
        f"twistd meshportal then serves (these are the entries published first).",
    ]
    ms = lambda value: _fmt(value, "{:.2f}")
    rows = [
        ["Publish: signature check + log append + commit", ms(pub["median_ms"]),
         ms(pub["p95_ms"]), ms(pub["mean_ms"]), ms(pub["max_ms"])],
        ["  of which the signature check (verifyDeviceProfile)", ms(sig["median_ms"]),
         ms(sig["p95_ms"]), ms(sig["mean_ms"]), ms(sig["max_ms"])],
        ["  the rest: lookups, admission, append, commit", ms(rest), "-",
         ms(pub["mean_ms"] - sig["mean_ms"]), "-"],
        ["for scale: one bare SQLite commit, same settings", ms(commit["median_ms"]),
         ms(commit["p95_ms"]), ms(commit["mean_ms"]), ms(commit["max_ms"])],
        ["not included: decoding the request body", ms(dec["median_ms"]), ms(dec["p95_ms"]),
         ms(dec["mean_ms"]), ms(dec["max_ms"])],
    ]
    lines += table(["in-process", "median ms", "p95 ms", "mean ms", "max ms"], rows)
    lines.append(
        f"  (1000 / mean Publish = {1000 / pub['mean_ms']:.0f} Publish/s at most, before any HTTP; "
        f"'the rest' is a difference of medians and of means)"
    )
    if inProcess.get("publish_batched"):
        grouped = inProcess["publish_batched"]
        lines += table(["in-process, group commit", "median ms", "p95 ms", "mean ms", "max ms"], [[
            f"Publish in batches of {inProcess['batch']}, one commit each, per Publish",
            ms(grouped["median_ms"]), ms(grouped["p95_ms"]), ms(grouped["mean_ms"]),
            ms(grouped["max_ms"]),
        ]])
        lines.append(
            f"  ({grouped['count']} batches, the last {grouped['count'] * inProcess['batch']} "
            f"entries; 1000 / mean = {1000 / grouped['mean_ms']:.0f} Publish/s at most, before any HTTP)"
        )
    return lines


def main(argv=None) -> int:
    """
    C{python -m bench.portal}: only this part, with C{python -m bench}'s
    options.
    """
    from bench import processes
    from bench.options import parseArgs

    args = parseArgs(argv)
    run = os.path.join(processes.OUT, "run")
    os.makedirs(run, exist_ok=True)
    try:
        result = measurePortal(
            args, run, processes.log, processes.TOP, spawn=processes.spawn, stop=processes.stop,
            freePort=processes.freePort, waitForPort=processes.waitForPort,
            cpuTicks=processes.cpuTicks,
        )
    finally:
        processes.stopAll()
    sys.stdout.write("\n".join(portalReport(result)) + "\n")
    with open(os.path.join(run, "portal", "results.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
