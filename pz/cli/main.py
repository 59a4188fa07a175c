# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{pzctl}: the admin command line that people and scripts use.

C{--hub-dir DIR} acts on a hub, C{--pzp-dir DIR} on a device.  What the
hub's store alone can answer (pairing codes, the list of devices) works
whether the hub runs or not; what needs the live process (who is connected,
sending a message, a device's state) goes through its admin socket.
Output is for people unless C{--json} is given; errors print one line on
stderr and exit non-zero.
"""

import argparse
import json
import sys
import time
from datetime import datetime, timezone

from pz.errors import ZoneError

__all__ = ["main"]


class _WallClock:
    @staticmethod
    def seconds() -> float:
        return time.time()


def _iso(when):
    if when is None:
        return None
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")


def _needs(args, attr: str, flag: str) -> str:
    value = getattr(args, attr)
    if not value:
        raise ZoneError("BAD_REQUEST", f"this command needs {flag} DIR")
    return value


def _hubStore(hubDir: str):
    from pzh.store import SQLiteHubStore
    from pzh.zone import loadZone

    zone = loadZone(hubDir)
    return zone, SQLiteHubStore(zone.path("hub.db"))


# --- hub commands --------------------------------------------------------------


def cmdPair(args) -> None:
    from pzh.enrolment import Enrolment

    zone, store = _hubStore(_needs(args, "hub_dir", "--hub-dir"))
    code = Enrolment(zone, store, None, _WallClock(), args.lifetime).newCode(args.device)
    print(code)


def cmdZone(args) -> None:
    from pzh.zone import loadZone

    zone = loadZone(_needs(args, "hub_dir", "--hub-dir"))
    if args.json:
        print(json.dumps({"zone": zone.zoneId, "ca_fingerprint": zone.caFingerprint,
                          "hub": f"{zone.host}:{zone.port}"}))
    else:
        print(zone.zoneId)


def _liveDevices(hubDir: str) -> dict:
    from pz.admin import adminCall

    try:
        return adminCall(hubDir, "connected")
    except ZoneError as e:
        if e.code == "NOT_RUNNING":
            return {}
        raise


def cmdDevices(args) -> None:
    hubDir = _needs(args, "hub_dir", "--hub-dir")
    zone, store = _hubStore(hubDir)
    live = _liveDevices(hubDir)
    rows = []
    for device in store.listDevices():
        state = "disconnected"
        lastSeen, address = device.lastSeen, device.address
        if device.revoked is not None:
            state = "revoked"
        elif device.id in live:
            state = "connected"
            lastSeen = live[device.id]["last_seen"] or lastSeen
            address = live[device.id]["address"] or address
        rows.append({
            "id": device.id,
            "serial": format(device.serial, "x"),
            "state": state,
            "last_seen": _iso(lastSeen),
            "address": address,
            "not_after": _iso(device.notAfter),
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no devices enrolled yet (pair one: pzctl --hub-dir DIR pair --device NAME)")
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['state']:<12}  {r['address'] or '-':<21}  "
              f"last seen {r['last_seen'] or 'never'}")


def cmdRevoke(args) -> None:
    from datetime import timedelta

    from pz.admin import adminCall
    from pzh.authority import ZoneAuthority

    hubDir = _needs(args, "hub_dir", "--hub-dir")
    try:
        result = adminCall(hubDir, "revoke", {"device": args.device})
    except ZoneError as e:
        if e.code != "NOT_RUNNING":
            raise
        # No hub running: sign the CRL here; the hub serves it when it starts.
        zone, store = _hubStore(hubDir)
        authority = ZoneAuthority(zone, store, _WallClock(), timedelta(days=90))
        serials = authority.revoke(args.device)
        from pz import pki

        result = {"device": args.device, "serials": [format(s, "x") for s in serials],
                  "crl_number": pki.crlNumber(authority.crl)}
    if args.json:
        print(json.dumps(result))
    elif result["serials"]:
        print(f"revoked {result['device']} (CRL number {result['crl_number']})")
    else:
        print(f"{result['device']} was already revoked (CRL number {result['crl_number']})")


def _waitFor(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except ZoneError as e:
            if e.code not in ("NOT_RUNNING", "TIMEOUT"):
                raise
        if time.monotonic() >= deadline:
            raise ZoneError("TIMEOUT", f"{what} not reached within {timeout:g}s")
        time.sleep(0.1)


def cmdWait(args) -> None:
    from pz.admin import adminCall

    if args.hub_dir:
        _waitFor(lambda: adminCall(args.hub_dir, "ping", timeout=2), args.timeout,
                 "a running hub")
        return
    from pz.process import readExitRecord

    pzpDir = _needs(args, "pzp_dir", "--pzp-dir or --hub-dir")
    state = args.state
    last = {}

    def reached():
        try:
            status = adminCall(pzpDir, "status", timeout=2)
        except ZoneError as e:
            # A proxy that gave up left its reason: no point waiting on.
            stopped = readExitRecord(pzpDir) if e.code == "NOT_RUNNING" else None
            if stopped is not None:
                raise ZoneError(stopped.code, f"the proxy stopped: {stopped.message}")
            raise
        last["error"] = status.get("error")
        return status if status["state"] == state and status["mode"] == args.mode else None

    try:
        status = _waitFor(reached, args.timeout, f"{args.mode}/{state}")
    except ZoneError as e:
        if e.code == "TIMEOUT" and last.get("error"):
            error = last["error"]
            raise ZoneError("TIMEOUT", f"{e.message}; the device's last error: "
                                       f"{error['code']}: {error['message']}")
        raise
    print(json.dumps(status))


# --- device commands ------------------------------------------------------------


def cmdStatus(args) -> None:
    from pz.admin import adminCall

    status = adminCall(_needs(args, "pzp_dir", "--pzp-dir"), "status")
    if args.json:
        print(json.dumps(status))
        return
    print(f"device {status['device'] or '(not enrolled)'}")
    print(f"zone   {status['zone'] or '-'}")
    print(f"state  {status['mode']}/{status['state']}  hub {status['hub'] or '-'}")
    if status.get("error"):
        print(f"last error: {status['error']['code']}: {status['error']['message']}")


def cmdSend(args) -> None:
    from pz.admin import adminCall

    adminCall(_needs(args, "pzp_dir", "--pzp-dir"), "send", {"to": args.to, "text": args.text})
    print(f"delivered to {args.to}")


def cmdInbox(args) -> None:
    from pzp.inbox import Inbox
    from pzp.zonedir import ZoneDirectory

    zoneDir = ZoneDirectory(_needs(args, "pzp_dir", "--pzp-dir"))
    contents = Inbox(zoneDir.file("inbox.jsonl"), _WallClock()).contents()
    if args.json:
        print(json.dumps({"dropped": contents.dropped, "messages": contents.messages}, indent=2))
        return
    if contents.dropped:
        print(f"({contents.dropped} older messages dropped: the inbox is full)")
    for m in contents.messages:
        print(f"{m['received']}  {m['from']}: {m['text']}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pzctl", description="Administer a personal zone.")
    p.add_argument("--hub-dir", metavar="DIR", help="data directory of a hub (twistd pzh)")
    p.add_argument("--pzp-dir", metavar="DIR", help="data directory of a device (twistd pzp)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("pair", help="print a one-time pairing code for a new device (hub)")
    s.add_argument("--device", required=True, metavar="NAME", help="name the device will get")
    s.add_argument("--lifetime", type=float, default=600.0, metavar="SECONDS",
                   help="how long the code stays valid (default 600)")
    s.set_defaults(func=cmdPair)

    s = sub.add_parser("devices", help="list every device ever enrolled (hub)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmdDevices)

    s = sub.add_parser("revoke", help="revoke a device: cut it off and make it erase the zone (hub)")
    s.add_argument("device", metavar="DEVICE_ID")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmdRevoke)

    s = sub.add_parser("zone", help="print the zone id (hub)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmdZone)

    s = sub.add_parser("wait", help="wait until the hub runs, or the device reaches a state")
    s.add_argument("--timeout", type=float, default=30.0)
    s.add_argument("--mode", default="Hub", choices=["Virgin", "Hub"])
    s.add_argument("--state", default="Connected",
                   choices=["NotConnected", "Connecting", "Connected", "Disconnecting"])
    s.set_defaults(func=cmdWait)

    s = sub.add_parser("status", help="mode and state of a device (device)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmdStatus)

    s = sub.add_parser("send", help="send a text message to another device (device)")
    s.add_argument("to", metavar="TO_DEVICE_ID")
    s.add_argument("text", metavar="TEXT")
    s.set_defaults(func=cmdSend)

    s = sub.add_parser("inbox", help="messages this device received (device)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmdInbox)
    from pz.cli.mesh import addMeshCommands
    addMeshCommands(sub)
    return p


def main(argv=None) -> int:
    """
    Run C{pzctl}; returns the exit status.
    """
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except ZoneError as e:
        print(f"pzctl: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pzctl: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
