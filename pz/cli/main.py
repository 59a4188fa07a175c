# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{pzctl}: the admin command line that people and scripts use.

C{--hub-dir DIR} acts on a hub, C{--pzp-dir DIR} on a device.  What the
hub's store alone can answer (pairing codes, the list of devices) works
whether the hub runs or not; what needs the live process (who is connected,
sending a message, a device's state) goes through its admin socket.
Output is for people unless C{--json} is given.  The global options
(C{--hub-dir}, C{--pzp-dir}, C{--json}) go before or after the command.
Every error, a wrong command line included, prints one line
C{pzctl: CODE: sentence} on stderr and exits with status 1.
"""

import argparse
import json
import os
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


class _Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one C{pzctl: BAD_REQUEST: ...}
    line and exit status 1, as the README promises, instead of argparse's
    usage block and status 2.  The sub-command parsers are of this class
    too (argparse makes them with the parent's class).
    """

    def error(self, message: str):
        raise ZoneError("BAD_REQUEST", f"{message} (see {self.prog} --help)")


#: The file that marks a hub's data directory (L{pzh.zone.ZONE_FILE}),
#: named here so that device commands need not import the hub's modules.
_HUB_MARKER = "zone.json"


def _isHubDir(path: str) -> bool:
    """
    Whether C{path} holds a hub's zone (C{twistd pzh}).
    """
    return os.path.isfile(os.path.join(path, _HUB_MARKER))


def _isDeviceDir(path: str) -> bool:
    """
    Whether C{path} holds a device's zone or Mesh directory (C{twistd pzp}).
    """
    from pz.mesh.device import MeshDevice
    from pzp.zonedir import ZoneDirectory

    return os.path.isdir(ZoneDirectory(path).path) or os.path.isdir(MeshDevice(path).path)


def _checkDataDirs(args) -> None:
    """
    Refuse a hub's data directory given as C{--pzp-dir} and a device's as
    C{--hub-dir}, saying which flag it needs, before anything asks the
    process there a command it does not know.
    """
    if args.pzp_dir and _isHubDir(args.pzp_dir):
        raise ZoneError(
            "BAD_REQUEST",
            f"{args.pzp_dir} is a hub's data directory (twistd pzh); use --hub-dir {args.pzp_dir}",
        )
    if args.hub_dir and not _isHubDir(args.hub_dir) and _isDeviceDir(args.hub_dir):
        raise ZoneError(
            "BAD_REQUEST",
            f"{args.hub_dir} is a device's data directory (twistd pzp); use --pzp-dir {args.hub_dir}",
        )


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
    if args.json:
        print(json.dumps({"code": str(code), "device": f"{zone.zoneId}/{args.device}"}))
    else:
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
    from pz.ids import checkDeviceId

    pzpDir = _needs(args, "pzp_dir", "--pzp-dir")
    checkDeviceId(args.to)
    result = adminCall(pzpDir, "send", {"to": args.to, "text": args.text})
    print(json.dumps(result) if args.json else f"delivered to {args.to}")


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


def _globalOptions(default) -> argparse.ArgumentParser:
    """
    The options every command takes, before or after its name: with
    C{default} on the top-level parser, and with L{argparse.SUPPRESS} on
    each sub-command's, so that an option given before the command is not
    reset by the sub-command's default.
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--hub-dir", metavar="DIR", default=default(None),
                   help="data directory of a hub (twistd pzh)")
    p.add_argument("--pzp-dir", metavar="DIR", default=default(None),
                   help="data directory of a device (twistd pzp)")
    p.add_argument("--json", action="store_true", default=default(False),
                   help="print JSON instead of text")
    return p


def _parser() -> argparse.ArgumentParser:
    top = _globalOptions(lambda value: value)
    common = _globalOptions(lambda value: argparse.SUPPRESS)
    p = _Parser(
        prog="pzctl", parents=[top],
        description="Administer a personal zone: a hub (--hub-dir) or a device (--pzp-dir).",
        epilog="Errors print one line, 'pzctl: CODE: sentence', on stderr and exit with status 1.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help, description, func):
        s = sub.add_parser(name, help=help, description=description, parents=[common])
        s.set_defaults(func=func)
        return s

    s = command("pair", "print a one-time pairing code for a new device (hub)",
                "Print a one-time pairing code for a new device called NAME: give it to the "
                "device's 'twistd pzp --pair'. It works whether the hub runs or not; the code "
                "is single use and valid for --lifetime seconds.", cmdPair)
    s.add_argument("--device", required=True, metavar="NAME", help="name the device will get")
    s.add_argument("--lifetime", type=float, default=600.0, metavar="SECONDS",
                   help="how long the code stays valid (default 600)")

    command("devices", "list every device ever enrolled (hub)",
            "List every device ever enrolled in the hub's zone with its state (connected, "
            "disconnected or revoked), address, last contact and certificate expiry.",
            cmdDevices)

    s = command("revoke", "revoke a device: cut it off and make it erase the zone (hub)",
                "Revoke a device: sign a new CRL listing its certificates, drop its link and "
                "push the CRL to every device; on its next connection it erases its zone data. "
                "With the hub stopped, the CRL is signed here and served when the hub starts.",
                cmdRevoke)
    s.add_argument("device", metavar="DEVICE_ID", help="the device's id, ZONE/NAME")

    command("zone", "print the zone id (hub)",
            "Print the hub's zone id (and, with --json, its CA fingerprint and address).",
            cmdZone)

    s = command("wait", "wait until the hub runs, or the device reaches a state",
                "Wait until the hub of --hub-dir answers, or until the device of --pzp-dir "
                "reaches --mode/--state (then print its status as JSON); fail with TIMEOUT "
                "after --timeout seconds.", cmdWait)
    s.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long to wait (default 30)")
    s.add_argument("--mode", default="Hub", choices=["Virgin", "Hub"],
                   help="the device mode to wait for (default Hub)")
    s.add_argument("--state", default="Connected",
                   choices=["NotConnected", "Connecting", "Connected", "Disconnecting"],
                   help="the device state to wait for (default Connected)")

    command("status", "mode and state of a device (device)",
            "Show the device's id, zone, mode (Virgin or Hub) and state, its hub, and the "
            "last error it met; with --json also its certificate, CRL and peers.", cmdStatus)

    s = command("send", "send a text message to another device (device)",
                "Send a text message through the hub to another device of the zone; "
                "return once that device acknowledged it.", cmdSend)
    s.add_argument("to", metavar="TO_DEVICE_ID",
                   help="the receiving device's id, ZONE/NAME (pzctl devices lists them)")
    s.add_argument("text", metavar="TEXT", help="the message")

    command("inbox", "messages this device received (device)",
            "List the messages this device received: sender, text and time.", cmdInbox)
    from pz.cli.mesh import addMeshCommands
    addMeshCommands(sub, [common])
    return p


def main(argv=None) -> int:
    """
    Run C{pzctl}; returns the exit status.
    """
    try:
        args = _parser().parse_args(argv)
        _checkDataDirs(args)
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
