"""
The "under attack" table: a normal device's send round trip, quiet and
while the hub is attacked, and the hub's memory around each attack.

One hub (C{twistd -n pzh} with its default flow settings, web port on),
one run, in order:

 1. quiet: the normal pair (L{bench.attackclient} C{normal}: device A
    sends device B a message every 1/50 s, B acks, A times the round trip)
    alone for C{--attack-seconds};
 2. (a) a paired device floods unknown destinations at full speed;
 3. (b) a paired device floods another that never reads (the reader is
    paired too, and comes back when dropped);
 4. (c) 1,000 slow web connections, one byte every 3 s each.

Each attack lasts C{--attack-seconds}, then the benchmark waits
C{--recover-seconds} (30) and reads the hub's RSS again.  The normal pair
runs through the whole run; its samples are split by the attack windows.
The hub's RSS is sampled every 0.2 s from C{/proc}.  Targets: p99 under
attack at most 3x the quiet p99, hub RSS peak under 300 MB, no legitimate
device (A or B) ever dropped.

    python -m bench attack      (this table only)
"""

import json
import os
import subprocess
import sys
import threading
import time

PYTHON = sys.executable

P99_TARGET = 3.0
RSS_TARGET_MB = 300.0

_PHASES = [
    ("quiet", "quiet: the normal pair alone"),
    ("flood", "(a) flood of unknown destinations"),
    ("sink", "(b) flood of a device that never reads"),
    ("slowweb", "(c) 1,000 slow web connections"),
]


class _RSS(threading.Thread):
    """
    Samples a process's VmRSS every C{interval} s until stopped.
    """

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._done = threading.Event()

    def run(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._done.is_set():
            try:
                with open(f"/proc/{self.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu = (int(fields[11]) + int(fields[12])) / tick
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.samples.append((time.monotonic(), int(line.split()[1]), cpu))
                            break
            except OSError:
                return
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(5)

    def now(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def peak(self, start: float, end: float) -> int:
        return max((kib for t, kib, _ in self.samples if start <= t <= end), default=0)

    def cpuShare(self, start: float, end: float):
        """
        The process's CPU time (user + system) between the samples nearest
        C{start} and C{end}, as a share of that wall time.
        """
        inside = [(t, cpu) for t, _, cpu in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def _client(top, run, name, args, seconds, log=None):
    argv = [PYTHON, "-m", "bench.attackclient", *args, "--seconds", str(seconds)]
    err = open(os.path.join(run, f"attack-{name}.err"), "wb")
    proc = subprocess.Popen(argv, cwd=top, stdout=subprocess.PIPE, stderr=err, text=True,
                            start_new_session=True)
    err.close()
    return proc


def _result(proc, timeout: float) -> dict:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    lines = [line for line in (out or "").splitlines() if line.startswith("{")]
    results = [json.loads(line) for line in lines]
    final = [r for r in results if "role" in r]
    return final[-1] if final else {"error": f"exit {proc.returncode}"}


def _percentile(values, q: float):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measureAttack(args, run: str, log, top: str, spawn, stop, freePort, waitForPort) -> dict:
    """
    Start a hub on a fresh zone in C{run}, issue four device certificates
    and run the four phases.
    """
    from bench.devices import issueDevices

    dataDir = os.path.join(run, "attack-hub")
    certs = os.path.join(run, "attack-certs")
    port, webPort = freePort(), freePort()
    argv = [PYTHON, "-m", "bench.serve", "--gc-file", os.path.join(run, "attack-hub.gc"), "--",
            "twistd", "-n", "--pidfile", os.path.join(run, "attack-hub.pid"),
            "--logfile", os.path.join(run, "attack-hub.log"),
            *(["--profile", os.path.abspath(args.hub_profile), "--profiler", "cprofile",
               "--savestats"] if args.hub_profile else []),
            "pzh", "--data-dir", dataDir, "--name", "bench", "--interface", "127.0.0.1",
            "--port", str(port), "--web-port", str(webPort), "--idle-timeout", "3600"]
    hub = spawn("hub (attack)", argv, os.path.join(run, "attack-hub.out"))
    waitForPort(port, hub)
    waitForPort(webPort, hub)
    summary = issueDevices(dataDir, certs, 5)
    zone = summary["zone"]
    common = ["--port", str(port), "--certs", certs]
    seconds = args.attack_seconds
    recover = args.recover_seconds
    total = 2 + seconds * 4 + 3 * recover + 60
    rss = _RSS(hub.pid)
    rss.start()
    windows = {}
    attackers = {}
    try:
        normal = _client(top, run, "normal", ["normal", *common, "--zone", zone, "--rate", "50"],
                         total)
        time.sleep(2.0)
        windows["quiet"] = (time.monotonic(), None, rss.now())
        time.sleep(seconds)
        windows["quiet"] = (windows["quiet"][0], time.monotonic(), windows["quiet"][2])
        for name in [n for n, _ in _PHASES if n in args.attacks]:
            before = rss.now()
            log(f"attack: {dict(_PHASES)[name]} for {seconds:g} s")
            begun = time.monotonic()
            procs = []
            # attackers get time to spare; they are stopped (SIGTERM) when
            # the window ends, and report then
            spare = seconds + 60
            if name == "flood":
                procs.append(_client(top, run, "flood", [
                    "flood", *common, "--device", "dev00002", "--to", f"{zone}/nobody"], spare))
            elif name == "sink":
                procs.append(_client(top, run, "sink", [
                    "sink", *common, "--device", "dev00003"], spare))
                time.sleep(1.0)
                procs.append(_client(top, run, "pusher", [
                    "flood", *common, "--device", "dev00004", "--to", f"{zone}/dev00003",
                    "--size", str(60 * 1024)], spare))
            else:
                slow = _client(top, run, "slowweb", [
                    "slowweb", "--port", str(webPort), "--certs", certs,
                    "--count", str(args.slow_connections), "--interval", "3"], spare)
                procs.append(slow)
                # the window opens once every connection is open
                slow.stdout.readline()
            start = time.monotonic()
            time.sleep(seconds)
            end = time.monotonic()
            for p in procs:
                p.send_signal(15)
            results = [_result(p, 60) for p in procs]
            time.sleep(recover)
            windows[name] = (start, end, before)
            attackers[name] = {"results": results, "rss_before_kib": before,
                               "rss_peak_kib": rss.peak(begun, end + 2),
                               "rss_after_kib": rss.now()}
            log(f"attack: {name}: RSS {before / 1024:.0f} -> peak "
                f"{attackers[name]['rss_peak_kib'] / 1024:.0f} -> "
                f"{attackers[name]['rss_after_kib'] / 1024:.0f} MiB after {recover:g} s")
        normal.send_signal(15)
        normalResult = _result(normal, 30)
    finally:
        rss.stop()
        stop(hub)
    return _summarise(windows, attackers, normalResult, rss, args)


def _summarise(windows, attackers, normal, rss, args) -> dict:
    samples = normal.get("samples", [])
    phases = {}
    for name, _ in _PHASES:
        if name not in windows:
            continue
        start, end, before = windows[name]
        rtts = [ms for t, ms in samples if start <= t <= (end or start)]
        phase = {
            "samples": len(rtts),
            "p50_ms": _percentile(rtts, 0.50),
            "p99_ms": _percentile(rtts, 0.99),
            "max_ms": max(rtts) if rtts else None,
            "seconds": round((end or start) - start, 1),
            "hub_cpu_share": rss.cpuShare(start, end or start),
        }
        if name in attackers:
            phase.update({k: v for k, v in attackers[name].items()})
        else:
            phase["rss_before_kib"] = before
            phase["rss_peak_kib"] = rss.peak(start, end or start)
            phase["rss_after_kib"] = rss.peak(start, end or start)
        phases[name] = phase
    return {"phases": phases, "normal": {k: v for k, v in normal.items() if k != "samples"},
            "samples": samples, "windows": windows,
            "attack_seconds": args.attack_seconds, "recover_seconds": args.recover_seconds}


def _attackerNote(name: str, results: list) -> str:
    from bench.report import fmt

    if name == "flood" and results:
        r = results[0]
        return (f"{r.get('sent', 0)} frames sent, {r.get('connects', 0)} connections "
                f"({r.get('registrations', 0)} registered), errors {r.get('codes', {})}, "
                f"flooder CPU {fmt(r.get('cpu_s'), '{:.1f}')} s")
    if name == "sink" and len(results) == 2:
        sink, pusher = results
        return (f"reader dropped {sink.get('drops', 0)}x; pusher sent {pusher.get('sent', 0)} "
                f"frames of 60 KiB, {pusher.get('connects', 0)} connections, "
                f"errors {pusher.get('codes', {})}")
    if name == "slowweb" and results:
        r = results[0]
        return (f"{r.get('opened', 0)} opened ({r.get('failed', 0)} failed) in "
                f"{r.get('ramp_seconds')} s, {r.get('still_open', 0)} still open at the end, "
                f"{r.get('closed_by_server', 0)} closed by the hub; client fd limit "
                f"{r.get('fd_limit')}")
    return ""


def attackReport(result: dict) -> list:
    """
    The table's lines.
    """
    if not result:
        return []
    from bench.report import fmt, table

    phases = result["phases"]
    quiet = phases.get("quiet", {})
    lines = ["", (f"Under attack: one hub, default flow settings; normal pair (bench.attackclient "
                  f"normal): device A sends B a message every 20 ms, B acks, round trip = A's "
                  f"send to A reading the ack. Each attack {result['attack_seconds']:g} s, hub "
                  f"RSS read {result['recover_seconds']:g} s after it ended.")]
    rows = []
    worst = 0.0
    peak = 0
    for name, label in _PHASES:
        p = phases.get(name)
        if not p:
            continue
        vs = (p["p99_ms"] / quiet["p99_ms"]) if p.get("p99_ms") and quiet.get("p99_ms") else None
        if name != "quiet" and vs is not None:
            worst = max(worst, vs)
        peak = max(peak, p.get("rss_peak_kib", 0))
        rows.append([
            label, str(p["samples"]), fmt(p["p50_ms"], "{:.2f}"), fmt(p["p99_ms"], "{:.2f}"),
            fmt(vs, "{:.2f}"), fmt(p.get("rss_before_kib", 0) / 1024, "{:.0f}"),
            fmt(p.get("rss_peak_kib", 0) / 1024, "{:.0f}"),
            "-" if name == "quiet" else fmt(p.get("rss_after_kib", 0) / 1024, "{:.0f}"),
            fmt(p["hub_cpu_share"] * 100 if p.get("hub_cpu_share") is not None else None,
                "{:.0f}"),
        ])
    lines += table(["phase", "samples", "p50 ms", "p99 ms", "p99 vs quiet", "RSS before MiB",
                    "peak MiB", "30 s after MiB", "hub CPU %"], rows)
    for name, label in _PHASES[1:]:
        p = phases.get(name)
        if p:
            lines.append(f"  {label}: {_attackerNote(name, p.get('results', []))}")
    normal = result["normal"]
    dropped = normal.get("lost", 0)
    lines.append(f"  normal pair: {normal.get('unanswered', 0)} messages unanswered, "
                 f"{normal.get('errors', 0)} errors, links lost {dropped}")
    lines.append("Targets")
    lines.append(f"  round trip p99 under attack <= {P99_TARGET:g} x quiet: {worst:.2f} x  "
                 f"{'PASS' if worst and worst <= P99_TARGET else 'FAIL'}")
    lines.append(f"  hub RSS peak < {RSS_TARGET_MB:g} MB: {peak * 1024 / 1e6:.0f} MB  "
                 f"{'PASS' if peak * 1024 / 1e6 < RSS_TARGET_MB else 'FAIL'}")
    lines.append(f"  no legitimate device dropped: {dropped} drops  "
                 f"{'PASS' if dropped == 0 else 'FAIL'}")
    return lines
