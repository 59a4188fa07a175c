# -*- test-case-name: tests.pz.test_cli,tests.e2e.test_spine -*-
"""
A device's C{pzctl} verbs (C{--pzp-dir DIR}): C{status}, C{send},
C{inbox}, C{sync}, C{conflicts}, C{services}, C{call} and C{peers}.

All but C{inbox} ask the running proxy through its admin socket;
C{inbox} reads the device's inbox file, whether the proxy runs or not.
Each verb is registered in the C{pzctl.verbs} entry-point group
(C{setup.cfg}).
"""

import json

from pz.cli.verb import Verb, WallClock, needs, printRows
from pz.errors import ZoneError

__all__ = ["status", "send", "inbox", "sync", "conflicts", "services", "call", "peers"]


def _status(args) -> None:
    from pz.admin import adminCall

    status = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "status")
    if args.json:
        print(json.dumps(status))
        return
    print(f"device {status['device'] or '(not enrolled)'}")
    print(f"zone   {status['zone'] or '-'}")
    print(f"state  {status['mode']}/{status['state']}  hub {status['hub'] or '-'}")
    if status.get("error"):
        print(f"last error: {status['error']['code']}: {status['error']['message']}")
    progress = status.get("sync")
    if progress:
        print(f"sync   {_syncLine(progress)}")
    if status.get("peers"):
        print("peers  " + ", ".join(f"{d} {s}" for d, s in status["peers"].items()))


def _syncLine(progress: dict) -> str:
    line = progress.get("state", "-")
    if progress.get("items_total"):
        line += (f", {progress['items_done']}/{progress['items_total']} items"
                 f", {progress['bytes_done']}/{progress['bytes_total']} bytes")
    if progress.get("last_synced"):
        line += f", last synchronised {progress['last_synced']}"
    if progress.get("conflicts"):
        line += f", {progress['conflicts']} conflicts (pzctl conflicts)"
    if progress.get("error"):
        line += f"; {progress['error']['code']}: {progress['error']['message']}"
    return line


#: How long C{pzctl sync} waits for a synchronisation to finish.
SYNC_TIMEOUT = 600.0


def _sync(args) -> None:
    from pz.admin import adminCall

    result = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "sync", timeout=SYNC_TIMEOUT)
    if args.json:
        print(json.dumps(result))
        return
    print(f"synchronised: {result['sent']} items sent, {result['received']} received, "
          f"{result['conflicts']} conflicts")


def _conflicts(args) -> None:
    from pz.admin import adminCall

    where = args.pzp_dir or args.hub_dir or needs(args, "pzp_dir", "--pzp-dir")
    conflicts = adminCall(where, "conflicts")["conflicts"]
    if args.json:
        print(json.dumps(conflicts, indent=2))
        return
    if not conflicts:
        print("no conflicts")
    for c in conflicts:
        print(f"{c['time']}  {c['path']}  from {c['origin']}  kept as {c['kept_as']}")


def _send(args) -> None:
    from pz.admin import adminCall
    from pz.ids import checkDeviceId

    pzpDir = needs(args, "pzp_dir", "--pzp-dir")
    checkDeviceId(args.to)
    request = {"to": args.to, "text": args.text}
    if args.queue:
        request["queue"] = True
    result = adminCall(pzpDir, "send", request)
    if args.json:
        print(json.dumps(result))
    elif result.get("queued"):
        print(f"queued for {args.to}: the hub delivers it when that device connects")
    else:
        print(f"delivered to {args.to}")


def _inbox(args) -> None:
    from pzp.inbox import Inbox
    from pzp.zonedir import ZoneDirectory

    zoneDir = ZoneDirectory(needs(args, "pzp_dir", "--pzp-dir"))
    contents = Inbox(zoneDir.file("inbox.jsonl"), WallClock()).contents()
    if args.json:
        print(json.dumps({"dropped": contents.dropped, "messages": contents.messages}, indent=2))
        return
    if contents.dropped:
        print(f"({contents.dropped} older messages dropped: the inbox is full)")
    for m in contents.messages:
        print(f"{m['received']}  {m['from']}: {m['text']}")


def _sendArguments(parser, parents) -> None:
    parser.add_argument("to", metavar="TO_DEVICE_ID",
                        help="the receiving device's id, ZONE/NAME (pzctl devices lists them)")
    parser.add_argument("text", metavar="TEXT", help="the message")
    parser.add_argument("--queue", action="store_true",
                        help="if that device is offline, have the hub keep the message and "
                             "deliver it when the device connects")


def _services(args) -> None:
    from pz.admin import adminCall

    printRows(args, adminCall(needs(args, "pzp_dir", "--pzp-dir"), "services")["services"],
              "no services", lambda s: f"{s['device']}  {s['service']} {s['version']}  "
                                       f"[{', '.join(s['methods'])}]  via {s['via']}")


def _call(args) -> None:
    from pz.admin import adminCall
    from pz.ids import checkDeviceId

    pzpDir = needs(args, "pzp_dir", "--pzp-dir")
    checkDeviceId(args.device)
    request = {"to": args.device, "service": args.service, "method": args.method,
               "timeout": args.timeout}
    if args.params is not None:
        try:
            request["params"] = json.loads(args.params)
        except ValueError as e:
            raise ZoneError("BAD_ARGUMENTS", f"JSON_ARGS is not JSON: {e}")
    answer = adminCall(pzpDir, "call", request, timeout=args.timeout + 5)
    print(json.dumps(answer if args.json else answer["result"]))


def _callArguments(parser, parents) -> None:
    parser.add_argument("device", metavar="DEVICE_ID",
                        help="the device running the service, ZONE/NAME (pzctl services lists them)")
    parser.add_argument("service", metavar="SERVICE", help="the service's name")
    parser.add_argument("method", metavar="METHOD", help="the method to call")
    parser.add_argument("params", metavar="JSON_ARGS", nargs="?",
                        help='the arguments: a JSON list or object, e.g. \'{"name": "x"}\'')
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the answer (default 30)")


def _peers(args) -> None:
    from pz.admin import adminCall

    peers = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "peers")["peers"]
    if args.json:
        print(json.dumps(peers))
        return
    if not peers:
        print("no other devices known")
    for deviceId, state in peers.items():
        print(f"{deviceId}  {state}")


status = Verb(
    "status", "mode and state of a device (device)",
    "Show the device's id, zone, mode (Virgin or Hub) and state, its hub, and the "
    "last error it met; with --json also its certificate, CRL and peers.", _status,
)

send = Verb(
    "send", "send a text message to another device (device)",
    "Send a text message through the hub to another device of the zone; "
    "return once that device acknowledged it (with --queue and that device offline: once "
    "the hub kept it for delivery when the device connects).", _send, _sendArguments,
)

inbox = Verb(
    "inbox", "messages this device received (device)",
    "List the messages this device received: sender, text and time.", _inbox,
)

sync = Verb(
    "sync", "synchronise the zone's items now (device)",
    "Scan the device's items folder and synchronise with the hub now: send what "
    "changed here, receive what changed elsewhere. Returns once every transfer "
    "finished, with counts.", _sync,
)

conflicts = Verb(
    "conflicts", "versions that lost a synchronisation conflict (device or hub)",
    "List the losing versions kept under DIR/zone/conflicts/ of a device (--pzp-dir) or "
    "of the hub (--hub-dir): the item's path, the device that made the version, its "
    "time and where it is kept (relative to DIR/zone/).", _conflicts,
)

services = Verb(
    "services", "services this device can find in the zone (device)",
    "List every service this device can see: the device running it, its name, version "
    "and methods, and how it would be reached: local (this device), peer (a direct link), "
    "hub (through the hub) or cache (known from the zone's service cache only: that "
    "device or the hub is offline now).", _services,
)

call = Verb(
    "call", "call a service on a device of the zone (device)",
    "Call METHOD of SERVICE on DEVICE_ID with JSON_ARGS (a JSON list or object) and print "
    "the result as JSON; with --json also the path it took (local, peer or hub). Over a "
    "direct peer link when there is one, through the hub otherwise.", _call, _callArguments,
)

peers = Verb(
    "peers", "the state of this device's direct links (device)",
    "List the zone's other devices this device knows and the state of its direct link to "
    "each: NotConnected, Connecting, Connected or Disconnecting; and each device of another "
    "zone on a one-time link of a certificate exchange: Connected (one-time).", _peers,
)
