"""
Revocation latency: from C{pzctl revoke} returning to the last connected
device holding the new CRL.

One more device than measured is connected and then revoked; the others
are real device proxies (L{bench.crlwatch}) that report the moment each
has verified and stored the new CRL.
"""

import json
import os
import subprocess
import sys
import time

PYTHON = sys.executable
PZCTL = os.path.join(os.path.dirname(sys.executable), "pzctl")


def measureRevocation(servers, devices: int, log, top: str) -> dict:
    """
    Connect C{devices + 1} proxies to a fresh hub, revoke the last one
    with C{pzctl revoke}, and time the new CRL's arrival at the others.
    """
    hub, port, _ = servers.hub("revoke")
    work = os.path.join(servers.run, "revocation")
    watch = subprocess.Popen(
        [PYTHON, "-m", "bench.crlwatch", "--hub-dir", servers.dataDir, "--certs", servers.certs,
         "--work", work, "--port", str(port), "--count", str(devices + 1)],
        cwd=top, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=open(os.path.join(servers.run, "crlwatch.err"), "wb"), text=True,
    )
    try:
        first = json.loads(watch.stdout.readline() or "{}")
        if first.get("ready") != devices + 1:
            raise RuntimeError(f"the devices did not all connect: {first}")
        with open(os.path.join(servers.dataDir, "zone.json")) as f:
            victim = f"{json.load(f)['zone']}/dev{devices:05d}"
        started = time.monotonic()
        answer = subprocess.run(
            [PZCTL, "--hub-dir", servers.dataDir, "revoke", victim, "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        returned = time.monotonic()
        number = json.loads(answer.stdout)["crl_number"]
        arrivals = {}
        deadline = returned + 30
        while len(arrivals) < devices and time.monotonic() < deadline:
            line = watch.stdout.readline()
            if not line:
                break
            event = json.loads(line)
            if event.get("crl") == number:
                arrivals[event["device"]] = event["t"]
        last = max(arrivals.values()) if arrivals else None
        result = {
            "devices": devices,
            "holding": len(arrivals),
            "pzctl_ms": (returned - started) * 1000,
            "last_after_return_ms": (last - returned) * 1000 if last else None,
            "last_after_start_ms": (last - started) * 1000 if last else None,
            "first_after_start_ms": (min(arrivals.values()) - started) * 1000 if arrivals else None,
        }
        log(f"revocation: {len(arrivals)}/{devices} devices hold CRL {number}; last "
            f"{result['last_after_start_ms']:.1f} ms after pzctl revoke started")
        return result
    finally:
        watch.stdin.close()
        try:
            watch.wait(15)
        except subprocess.TimeoutExpired:
            watch.kill()
        from bench.processes import stop

        stop(hub)


def revocationReport(result: dict) -> list:
    """
    The revocation section of the printed table.
    """
    if not result:
        return []
    ok = result["holding"] == result["devices"] and result["last_after_start_ms"] is not None \
        and result["last_after_start_ms"] < 1000
    return [
        "",
        f"Revocation: {result['devices']} connected devices (real device proxies, bench.crlwatch), "
        "one more revoked with `pzctl revoke`; each device verifies the CRL under its zone CA "
        "and stores it before it counts.",
        f"  pzctl revoke (process start to exit)            {result['pzctl_ms']:8.1f} ms",
        f"  first device holding the new CRL, from start    {result['first_after_start_ms']:8.1f} ms",
        f"  last device holding the new CRL, from start     {result['last_after_start_ms']:8.1f} ms",
        f"  last device, measured from pzctl returning      {result['last_after_return_ms']:8.1f} ms"
        "  (negative: before the command had even exited)",
        f"  devices holding it: {result['holding']}/{result['devices']}",
        f"  target: last device under 1 s after revoking:  {'PASS' if ok else 'FAIL'}",
    ]
