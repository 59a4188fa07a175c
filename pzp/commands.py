# -*- test-case-name: tests.pz.test_cli,tests.e2e.test_spine -*-
"""
A device's C{pzctl} verbs (C{--pzp-dir DIR}): C{status}, C{send} and
C{inbox}.

C{status} and C{send} ask the running proxy through its admin socket;
C{inbox} reads the device's inbox file, whether the proxy runs or not.
Each verb is registered in the C{pzctl.verbs} entry-point group
(C{setup.cfg}).
"""

import json

from pz.cli.verb import Verb, WallClock, needs

__all__ = ["status", "send", "inbox"]


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


def _send(args) -> None:
    from pz.admin import adminCall
    from pz.ids import checkDeviceId

    pzpDir = needs(args, "pzp_dir", "--pzp-dir")
    checkDeviceId(args.to)
    result = adminCall(pzpDir, "send", {"to": args.to, "text": args.text})
    print(json.dumps(result) if args.json else f"delivered to {args.to}")


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


status = Verb(
    "status", "mode and state of a device (device)",
    "Show the device's id, zone, mode (Virgin or Hub) and state, its hub, and the "
    "last error it met; with --json also its certificate, CRL and peers.", _status,
)

send = Verb(
    "send", "send a text message to another device (device)",
    "Send a text message through the hub to another device of the zone; "
    "return once that device acknowledged it.", _send, _sendArguments,
)

inbox = Verb(
    "inbox", "messages this device received (device)",
    "List the messages this device received: sender, text and time.", _inbox,
)
