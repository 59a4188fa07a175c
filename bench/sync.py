"""
Synchronisation: the bytes on the wire and the time for small edits of a
10 MB file, next to C{rsync --no-whole-file} through an C{rsync} daemon;
chunking and hashing throughput; and the time one changed preference takes
to reach ten connected devices.

In order (see C{bench/README.md}, item 6):

 1. B{edits of a 10 MB file}: a real C{twistd pzh} and one C{twistd pzp}
    (paired with C{pzctl pair} and C{--pair CODE}); a 10 MB random file is
    written into the device's C{zone/items/userdata/} and synchronised once
    (not measured).  Then three edits, one after the other on the same
    file: (a) 100 bytes inserted in the middle, (b) 1 KiB changed at
    offset 4 KiB, (c) 1 KiB appended.  For each: the device's hub-link
    byte counters (C{pzctl status --json}, C{sync.link_bytes}: every frame
    byte, length prefixes included) are read, the edit is made,
    the request C{pzctl --pzp-dir D sync} sends goes to the device's admin
    socket, and the benchmark polls (every 5 ms) until the hub's copy
    equals the edited file; once the device has answered and the counters
    have stopped moving they are read again.  Bytes = the growth of sent +
    received; time = from sending the request to the hub holding the new
    file.
 2. B{the same with rsync}: an C{rsync} daemon on 127.0.0.1 in inetd mode
    (L{RsyncDaemon}: a listening socket bound to port 0 here, and for each
    client connection C{rsync --daemon} with that connection as its
    standard input and output, so no port is picked first and bound later);
    C{rsync --no-whole-file --stats FILE rsync://127.0.0.1:PORT/bench/}
    once for the base copy and once after each of the same three edits.
    Bytes = "Total bytes sent" + "Total bytes received" of C{--stats};
    time = the command's wall time.
 3. B{chunking + hashing} throughput (L{bench.syncchunk}), MB/s.
 4. B{one preference, ten devices}: a fresh hub and ten C{twistd pzp},
    started one at a time (each waited for until Connected); device 1's
    C{preferences.json} gets a new C{"slave"} value (written to a temporary
    file and renamed into place), the sync request goes to device 1, and the
    benchmark polls the other nine devices' and the hub's copies until all
    hold it.  Three edits; the median is reported.

Everything listens on 127.0.0.1; every wait is bounded; every process is
stopped before this returns.  C{python -m bench.sync [OPTIONS]} runs this
part alone (about two minutes) and writes C{bench/out/sync.txt} and
C{bench/out/sync.json}.
"""

import json
import os
import grp
import pwd
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench.processes import TOP, freePort, log, spawn, started, stop, waitForPort
from bench.report import fmt, ratio, runAlone, table
from pz.admin import adminCall

PYTHON = sys.executable
BIN = os.path.dirname(sys.executable)
TWISTD = os.path.join(BIN, "twistd")
PZCTL = os.path.join(BIN, "pzctl")
RSYNC = shutil.which("rsync") or "/usr/bin/rsync"

#: The size of the edited file: 10 MB.
FILE_SIZE = 10 * 1000 * 1000

#: Where the file lives among the zone's items (on the device and the hub).
ITEM = "userdata/bench/file.bin"

#: How often the benchmark looks at the hub's copy, and the longest wait.
POLL = 0.005
WAIT = 120.0

#: Seconds between the scans of the items folders: longer than the run, so
#: nothing but the sync request starts a transfer and the clock starts with it.
SCAN_INTERVAL = 3600.0

#: The largest item either side accepts (their default, given explicitly).
MAX_ITEM = 64 * 1024 * 1024

#: Devices of the preference test, and its edits (median).
DEVICES = 10
PREFERENCE_EDITS = 3

#: The target for chunking + hashing (from the issue), MB/s.
THROUGHPUT_TARGET = 300.0


# The edits


def editsOf(rng: random.Random) -> list:
    """
    The three edits, each a function from the file's bytes to the edited
    bytes, with a label.  The random bytes are drawn once, so both sides
    get exactly the same edits.
    """
    inserted = rng.randbytes(100)
    changed = rng.randbytes(1024)
    appended = rng.randbytes(1024)

    def insertMiddle(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[:middle] + inserted + data[middle:]

    def changeNearStart(data: bytes) -> bytes:
        return data[:4096] + changed + data[4096 + len(changed):]

    def append(data: bytes) -> bytes:
        return data + appended

    return [
        ("(a) 100 B inserted in the middle", insertMiddle),
        ("(b) 1 KiB changed at offset 4 KiB", changeNearStart),
        ("(c) 1 KiB appended", append),
    ]


def replaceFile(path: str, data: bytes, scratch: str) -> None:
    """
    Write C{data} to C{path} as an editor saves: a temporary file in
    C{scratch} (outside the items folder, on the same file system), then
    a rename over the old file.
    """
    temp = os.path.join(scratch, "edit.tmp")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.replace(temp, path)


# The rsync side


_STATS = re.compile(r"^Total bytes (sent|received):\s+([\d,.]+)\s*$", re.MULTILINE)


def parseStats(text: str) -> dict:
    """
    The "Total bytes sent" and "Total bytes received" lines of
    C{rsync --stats}, as integers (rsync groups digits with commas or
    dots, depending on the locale).
    """
    found = {kind: int(re.sub(r"[,.]", "", number)) for kind, number in _STATS.findall(text)}
    if set(found) != {"sent", "received"}:
        raise ValueError(f"no byte totals in rsync's --stats output: {text[-300:]!r}")
    return found


class RsyncDaemon:
    """
    An C{rsync} daemon on 127.0.0.1 run the way C{inetd} runs it: this
    object holds the listening socket (bound to port 0, so the port is the
    kernel's choice, never picked and then bound), and L{transfer} starts
    C{rsync --daemon} for the one connection its client makes, with that
    connection as the daemon's standard input and output (rsync serves one
    client over a socket on its standard input and exits).

    The module C{bench} writes into C{directory}; no chroot, and no switch
    of user or group unless this runs as root (then the files stay this
    user's).
    """

    MODULE = "bench"

    def __init__(self, workDir: str, directory: str, timeout: float = 60.0) -> None:
        self.workDir = workDir
        self.directory = directory
        self.timeout = timeout
        os.makedirs(directory, exist_ok=True)
        self.config = os.path.join(workDir, "rsyncd.conf")
        self.logFile = os.path.join(workDir, "rsyncd.log")
        lines = [
            "use chroot = false",
            f"log file = {self.logFile}",
            f"[{self.MODULE}]",
            f"path = {directory}",
            "read only = false",
        ]
        if os.geteuid() == 0:
            lines += [f"uid = {pwd.getpwuid(os.geteuid()).pw_name}",
                      f"gid = {grp.getgrgid(os.getegid()).gr_name}"]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._listener.settimeout(timeout)
        self.port = self._listener.getsockname()[1]

    def url(self) -> str:
        return f"rsync://127.0.0.1:{self.port}/{self.MODULE}/"

    def transfer(self, source: str) -> dict:
        """
        C{rsync --no-whole-file --ignore-times --stats SOURCE
        rsync://127.0.0.1:PORT/bench/}: its bytes ("Total bytes sent" +
        "Total bytes received") and its wall time, from starting the client
        to its exit.  C{--ignore-times}: rsync's quick check (same size,
        same modification time) must never skip an edit that keeps the
        size; for a file that changed it alters nothing that is sent.
        """
        began = time.monotonic()
        client = subprocess.Popen(
            [RSYNC, "--no-whole-file", "--ignore-times", "--stats", source, self.url()],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "LC_ALL": "C"}, start_new_session=True,
        )
        client.benchName = "rsync client"
        started.append(client)
        daemon = None
        try:
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                client.kill()
                raise RuntimeError(f"rsync did not connect within {self.timeout} s: "
                                   f"{client.communicate()[1].strip()[-300:]}")
            with conn:
                daemon = subprocess.Popen(
                    [RSYNC, "--daemon", f"--config={self.config}"],
                    stdin=conn.fileno(), stdout=conn.fileno(),
                    stderr=open(os.path.join(self.workDir, "rsyncd.err"), "ab"),
                    start_new_session=True,
                )
            daemon.benchName = "rsync daemon"
            started.append(daemon)
            out, err = client.communicate(timeout=self.timeout)
            elapsed = time.monotonic() - began
            daemon.wait(self.timeout)
        finally:
            for proc in (client, daemon):
                if proc is not None:
                    stop(proc, 5)
        if client.returncode != 0 or daemon.returncode != 0:
            raise RuntimeError(f"rsync failed ({client.returncode}, daemon {daemon.returncode}): "
                               f"{err.strip()[-300:]}")
        totals = parseStats(out)
        return {"bytes": totals["sent"] + totals["received"], "sent": totals["sent"],
                "received": totals["received"], "seconds": elapsed}

    def close(self) -> None:
        self._listener.close()


def measureRsync(work: str, base: bytes, edits: list) -> dict:
    """
    The base copy, then each edit, through an inetd-mode rsync daemon.
    """
    daemon = RsyncDaemon(os.path.join(work, "rsync"), os.path.join(work, "rsync", "module"))
    source = os.path.join(work, "rsync", "source", "file.bin")
    os.makedirs(os.path.dirname(source), exist_ok=True)
    copy = os.path.join(daemon.directory, "file.bin")
    try:
        data = base
        replaceFile(source, data, os.path.dirname(source))
        result = {"base": daemon.transfer(source), "edits": []}
        for label, edit in edits:
            data = edit(data)
            replaceFile(source, data, os.path.dirname(source))
            measured = daemon.transfer(source)
            with open(copy, "rb") as f:
                measured["identical"] = f.read() == data
            result["edits"].append({"edit": label, **measured})
            log(f"sync: rsync {label}: {measured['bytes']} bytes, {measured['seconds']:.3f} s")
        return result
    finally:
        daemon.close()


# Our side


def pzctl(*args, timeout: float = 60.0) -> str:
    done = subprocess.run([PZCTL, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=TOP)
    if done.returncode != 0:
        raise RuntimeError(f"pzctl {' '.join(args)} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


class Zone:
    """
    A hub and its devices, each a real C{twistd} process on 127.0.0.1.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.hubDir = os.path.join(root, "hub")
        self.devices = []
        os.makedirs(root, exist_ok=True)

    def startHub(self) -> None:
        self.port = freePort()
        self.hub = spawn("hub (sync)", [
            TWISTD, "-n", "--pidfile", os.path.join(self.root, "hub.pid"),
            "--logfile", os.path.join(self.root, "hub.log"),
            "pzh", "--data-dir", self.hubDir, "--name", "bench", "--interface", "127.0.0.1",
            "--port", str(self.port), "--web-port", "0", "--idle-timeout", "3600",
            "--sync-interval", str(SCAN_INTERVAL), "--sync-max-item", str(MAX_ITEM),
        ], os.path.join(self.root, "hub.out"))
        waitForPort(self.port, self.hub)
        pzctl("--hub-dir", self.hubDir, "wait", "--timeout", "30")

    def deviceDir(self, index: int) -> str:
        return os.path.join(self.root, f"dev{index:02d}")

    def addDevice(self, timeout: float = 60.0) -> str:
        """
        Pair one more device, wait until it is connected to the hub and
        its first synchronisation is over.
        """
        index = len(self.devices) + 1
        name = f"dev{index:02d}"
        code = pzctl("--hub-dir", self.hubDir, "pair", "--device", name).strip()
        directory = self.deviceDir(index)
        proc = spawn(f"device {name}", [
            TWISTD, "-n", "--pidfile", "", "--logfile", os.path.join(self.root, f"{name}.log"),
            "pzp", "--data-dir", directory, "--name", name, "--pair", code,
            "--keepalive", "3600", "--max-backoff", "1", "--sync-interval", str(SCAN_INTERVAL),
            "--sync-max-item", str(MAX_ITEM),
        ], os.path.join(self.root, f"{name}.out"))
        self.devices.append((directory, proc))
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"device {name} exited with {proc.returncode}: see "
                                   f"{os.path.join(self.root, name + '.log')}")
            try:
                status = self.status(directory)
                if (status.get("mode"), status.get("state")) == ("Hub", "Connected"):
                    break
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"device {name} did not connect within {timeout} s")
            time.sleep(0.2)
        # Its first synchronisation (every item from the hub) is over when
        # this returns: what is measured next is not mixed with it.
        pzctl("--pzp-dir", directory, "sync", "--json", timeout=timeout)
        return directory

    def status(self, directory: str) -> dict:
        return json.loads(pzctl("--pzp-dir", directory, "status", "--json", timeout=30))

    def linkBytes(self, directory: str) -> int:
        link = self.status(directory).get("sync", {}).get("link_bytes")
        if not link:
            raise RuntimeError("the device's status has no sync.link_bytes")
        return link["sent"] + link["received"]

    def settledLinkBytes(self, directory: str, timeout: float = 5.0) -> int:
        """
        The counters once two readings in a row agree (each is a C{pzctl}
        process, so they are about a second apart): the last frame of a
        transfer (an acknowledgement) may follow the data.
        """
        last = self.linkBytes(directory)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.linkBytes(directory)
            if now == last:
                return now
            last = now
        return last

    def syncUntil(self, directory: str, done, timeout: float = WAIT) -> dict:
        """
        Ask the device to synchronise (the request C{pzctl --pzp-dir
        DIRECTORY sync} sends on the device's admin socket, sent from here,
        so that no Python start-up is timed) and poll C{done()} every 5 ms
        until it is true; the time is from sending the request.  Returns
        once the device has answered too.
        """
        answer: dict = {}

        def ask() -> None:
            try:
                answer["result"] = adminCall(directory, "sync", timeout=timeout)
            except Exception as e:  # reported below, in the bench's thread
                answer["error"] = e

        asking = threading.Thread(target=ask, name="sync request", daemon=True)
        began = time.monotonic()
        asking.start()
        arrived = None
        deadline = began + timeout
        while time.monotonic() < deadline:
            if done():
                arrived = time.monotonic() - began
                break
            time.sleep(POLL)
        asking.join(max(1.0, deadline - time.monotonic()))
        if "error" in answer:
            raise RuntimeError(f"the sync request failed: {answer['error']}")
        if arrived is None or "result" not in answer:
            raise RuntimeError(f"the change had not arrived {timeout} s after the sync request")
        return {"seconds": arrived, "began": began, "answer": answer["result"],
                "command_seconds": time.monotonic() - began}

    def stop(self) -> None:
        for _, proc in reversed(self.devices):
            stop(proc)
        stop(self.hub)


class FileWatch:
    """
    Whether a file holds exactly C{expected}: read only when its size,
    inode or time changed since the last look (writes are renames), so
    polling every 5 ms stays cheap for a 10 MB file.
    """

    def __init__(self, path: str, expected: bytes) -> None:
        self.path = path
        self.expected = expected
        self._seen = (None, False)

    def __call__(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        key = (st.st_size, st.st_ino, st.st_mtime_ns)
        if key != self._seen[0]:
            self._seen = (key, st.st_size == len(self.expected)
                          and self.read() == self.expected)
        return self._seen[1]

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()


def measureOurs(work: str, base: bytes, edits: list) -> dict:
    """
    The base copy, then each edit, from one device to a real hub.
    """
    zone = Zone(os.path.join(work, "file"))
    zone.startHub()
    try:
        device = zone.addDevice()
        itemPath = os.path.join(device, "zone", "items", *ITEM.split("/"))
        hubPath = os.path.join(zone.hubDir, "zone", "items", *ITEM.split("/"))
        scratch = os.path.join(work, "file")

        def once(data: bytes) -> dict:
            before = zone.settledLinkBytes(device)
            replaceFile(itemPath, data, scratch)
            measured = zone.syncUntil(device, FileWatch(hubPath, data))
            del measured["began"]
            after = zone.settledLinkBytes(device)
            measured["bytes"] = after - before
            return measured

        data = base
        result = {"base": once(data), "edits": []}
        log(f"sync: ours: base copy {result['base']['bytes']} bytes, "
            f"{result['base']['seconds']:.3f} s")
        for label, edit in edits:
            data = edit(data)
            measured = once(data)
            result["edits"].append({"edit": label, **measured})
            log(f"sync: ours {label}: {measured['bytes']} bytes, {measured['seconds']:.3f} s")
        return result
    finally:
        zone.stop()


def measurePreference(work: str, devices: int = DEVICES, edits: int = PREFERENCE_EDITS) -> dict:
    """
    One changed preference on device 1, timed until the hub and every
    other device hold it; C{edits} times.
    """
    zone = Zone(os.path.join(work, "preference"))
    zone.startHub()
    try:
        began = time.monotonic()
        for _ in range(devices):
            zone.addDevice()
        log(f"sync: {devices} devices connected in {time.monotonic() - began:.1f} s")
        first = zone.devices[0][0]
        scratch = zone.root
        mine = os.path.join(first, "zone", "items", "preferences.json")
        holders = [os.path.join(d, "zone", "items", "preferences.json")
                   for d, _ in zone.devices[1:]]
        holders.append(os.path.join(zone.hubDir, "zone", "items", "preferences.json"))
        runs = []
        for n in range(edits):
            with open(mine, "rb") as f:
                preferences = json.load(f)
            value = f"bench-{n}-{time.time_ns()}"
            preferences["slave"] = value
            replaceFile(mine, (json.dumps(preferences, indent=2, ensure_ascii=False)
                               + "\n").encode("utf-8"), scratch)
            arrivals = {}

            def everywhere() -> bool:
                now = time.monotonic()
                for path in holders:
                    if path not in arrivals and _holds(path, value):
                        arrivals[path] = now
                return len(arrivals) == len(holders)

            measured = zone.syncUntil(first, everywhere, timeout=60.0)
            began = measured.pop("began")
            measured["hub_seconds"] = arrivals[holders[-1]] - began
            measured["first_device_seconds"] = min(arrivals[p] for p in holders[:-1]) - began
            runs.append(measured)
            log(f"sync: preference {n + 1}: on the hub and {devices - 1} devices after "
                f"{measured['seconds']:.3f} s")
        return {"devices": devices, "runs": runs,
                "median_seconds": statistics.median(r["seconds"] for r in runs),
                "median_hub_seconds": statistics.median(r["hub_seconds"] for r in runs)}
    finally:
        zone.stop()


def _holds(path: str, value: str) -> bool:
    try:
        with open(path, "rb") as f:
            return json.load(f).get("slave") == value
    except (OSError, ValueError, AttributeError):
        return False


def measureThroughput() -> dict:
    """
    Chunking + hashing of a data item (L{bench.syncchunk}), in its own
    process so the page cache and the interpreter are fresh.
    """
    done = subprocess.run(
        [PYTHON, "-c", "import json, bench.syncchunk as s; print(json.dumps(s.measure(64)))"],
        cwd=TOP, capture_output=True, text=True, timeout=120,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# The whole part


def measureSync(args, run: str) -> dict:
    """
    Everything above, in one run, under C{RUN/sync/}.
    """
    work = os.path.join(run, "sync")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    rng = random.Random(10)
    base = rng.randbytes(FILE_SIZE)
    edits = editsOf(rng)
    result = {"file_size": FILE_SIZE}
    parts = [
        ("rsync", "rsync through an inetd-mode daemon: base copy and three edits",
         lambda: measureRsync(work, base, edits)),
        ("ours", "a hub and one device: base copy and the same three edits",
         lambda: measureOurs(work, base, edits)),
        ("throughput", "chunking + hashing throughput", measureThroughput),
        ("preference", f"one preference to {DEVICES} connected devices",
         lambda: measurePreference(work)),
    ]
    for key, what, measure in parts:
        log(f"sync: {what}")
        try:
            result[key] = measure()
        except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as e:
            # One part failing leaves the others' figures in the table
            # (and the part marked FAIL), not a run with no report.
            log(f"sync: {what}: failed: {e}")
            result[key] = {"error": str(e)}
    return result


def syncReport(result: dict) -> list:
    """
    The synchronisation section of the printed table.
    """
    if not result:
        return []
    lines = [
        "",
        f"Synchronisation: a {result['file_size'] / 1e6:.0f} MB random file edited three times, "
        "one edit after the other. Ours: one twistd pzp -> twistd pzh, a sync request (what "
        "`pzctl sync` sends) on the device's admin socket; bytes = "
        "every frame byte of the device's hub link (length prefixes included, no TLS or TCP), "
        "time = from sending the request to the hub holding the edited file. rsync: "
        "`rsync --no-whole-file --ignore-times --stats` to an rsync daemon on 127.0.0.1 "
        "(inetd mode); bytes = its total bytes sent + received, time = the command's wall "
        "time.",
    ]
    headers = ["edit", "our bytes", "rsync bytes", "ours/rsync", "our time s", "rsync time s",
               "bytes <= rsync"]
    rows = []
    ours, theirs = result.get("ours", {}), result.get("rsync", {})
    verdicts = []
    pairs = [("base copy (not a target)", ours.get("base"), theirs.get("base"), False)]
    ourEdits, theirEdits = ours.get("edits", []), theirs.get("edits", [])
    for i in range(max(len(ourEdits), len(theirEdits))):
        o = ourEdits[i] if i < len(ourEdits) else {}
        r = theirEdits[i] if i < len(theirEdits) else {}
        pairs.append((o.get("edit") or r.get("edit"), o, r, True))
    for label, o, r, counted in pairs:
        o, r = o or {}, r or {}
        ok = o.get("bytes") is not None and r.get("bytes") is not None \
            and o["bytes"] <= r["bytes"]
        if counted:
            verdicts.append(ok)
        rows.append([
            label, fmt(o.get("bytes")), fmt(r.get("bytes")),
            fmt(ratio(o.get("bytes"), r.get("bytes")), "{:.2f}"),
            fmt(o.get("seconds"), "{:.3f}"), fmt(r.get("seconds"), "{:.3f}"),
            ("PASS" if ok else "FAIL") if counted else "",
        ])
    lines += table(headers, rows, ["<"] + [">"] * 6)
    for name, part in (("ours", ours), ("rsync", theirs)):
        if part.get("error"):
            lines.append(f"  {name}: not measured: {part['error']}")
    throughput = result.get("throughput", {})
    rate = throughput.get("mb_per_s")
    if rate is not None:
        lines.append(
            f"Chunking + hashing (bench.syncchunk: manifestOfFile of a {throughput['size_mb']} MiB "
            f"random file, FastCDC + SHA-256 per chunk + SHA-256 of the item, median of "
            f"{throughput['runs']}): {rate:.0f} MB/s (best {throughput['best_mb_per_s']:.0f}; "
            f"{fmt(throughput.get('mb_per_cpu_s'))} MB per CPU-second), "
            f"{throughput['chunks']} chunks of "
            f"{throughput['average_chunk']:.0f} bytes on average"
        )
    else:
        lines.append(f"Chunking + hashing: not measured ({throughput.get('error', 'no figure')})")
    preference = result.get("preference")
    if preference and preference.get("error"):
        lines.append(f"One preference to {DEVICES} connected devices: not measured: "
                     f"{preference['error']}")
    elif preference:
        lines.append(
            f"One preference to {preference['devices']} connected devices: `preferences.json` "
            f"edited on device 1, the sync request there; until the hub and the other "
            f"{preference['devices'] - 1} devices hold it: median "
            f"{preference['median_seconds']:.3f} s of {len(preference['runs'])} ("
            + ", ".join(f"{r['seconds']:.3f}" for r in preference["runs"]) + " s); on the hub "
            f"after {fmt(preference.get('median_hub_seconds'), '{:.3f}')} s (median)"
        )
    lines.append("Targets")
    for (label, *_), ok in zip(pairs[1:], verdicts):
        lines.append(f"  sync {label}: bytes on the wire <= rsync's: "
                     f"{'PASS' if ok else 'FAIL'}")
    lines.append(f"  chunking + hashing >= {THROUGHPUT_TARGET:.0f} MB/s: {fmt(rate)} MB/s  "
                 f"{'PASS' if rate is not None and rate >= THROUGHPUT_TARGET else 'FAIL'}")
    return lines


def main(argv=None) -> int:
    """
    C{python -m bench.sync}: only this part.
    """
    return runAlone("sync", measureSync, syncReport, argv)


if __name__ == "__main__":
    sys.exit(main())
