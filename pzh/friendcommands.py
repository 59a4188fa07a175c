# -*- test-case-name: tests.pzh.test_friendcommands,tests.e2e.test_friends -*-
"""
The hub's C{pzctl} verbs for friend zones (C{--hub-dir DIR}):
C{invite-zone}, C{accept-zone}, C{zones} and C{untrust-zone}.

Each asks the running hub through its admin socket: accepting dials the
other hub, and untrusting closes live links, which only the running
process can do.  Registered in the C{pzctl.verbs} entry-point group.
"""

import json

from pz.cli.verb import Verb, needs, printRows

__all__ = ["inviteZone", "acceptZone", "zones", "untrustZone"]


def _ask(args, command: str, arguments=None, timeout: float = 30.0):
    from pz.admin import adminCall

    return adminCall(needs(args, "hub_dir", "--hub-dir"), command, arguments, timeout=timeout)


def _inviteZone(args) -> None:
    from pz.timefmt import isoTime

    made = _ask(args, "invite-zone")
    if args.json:
        print(json.dumps({"code": made["code"], "id": made["id"],
                          "expires": isoTime(made["expires"])}))
    else:
        print(made["code"])


def _acceptZone(args) -> None:
    result = _ask(args, "accept-zone", {"code": args.code}, timeout=45.0)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"now trusting zone {result['zone']} (CA {result['fingerprint']})")


def _zones(args) -> None:
    rows = _ask(args, "zones")
    width = max((len(r["zone"]) for r in rows), default=0)
    printRows(args, rows, "no friend zones (invite one: pzctl --hub-dir DIR invite-zone)",
              lambda r: f"{r['zone']:<{width}}  {r['fingerprint']}  since {r['since']}  "
                        f"link {r['link']}" + (
                            f"  shares {len(r['shares'])} item(s), holds {len(r['shared'])} "
                            "of theirs" if "shares" in r else ""))


def _untrustZone(args) -> None:
    result = _ask(args, "untrust-zone", {"zone": args.zone})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"no longer trusting zone {result['zone']}")


def _acceptArguments(parser, parents) -> None:
    parser.add_argument("code", metavar="CODE", help="the invitation, pz://HOST:PORT/TOKEN#FINGERPRINT")


def _untrustArguments(parser, parents) -> None:
    parser.add_argument("zone", metavar="ZONE", help="the friend zone's id, USER@HOST")


inviteZone = Verb(
    "invite-zone", "print a one-time invitation for another zone's hub (hub)",
    "Print a one-time invitation another zone's owner gives their hub "
    "('pzctl accept-zone CODE'): single use, valid for the hub's --code-lifetime. "
    "Once accepted, each zone trusts the other's CA. Needs the hub running.",
    _inviteZone,
)

acceptZone = Verb(
    "accept-zone", "accept another zone's invitation: the zones trust each other (hub)",
    "Have the running hub dial the hub CODE names, check its CA against the code's "
    "fingerprint, and exchange CA certificates: each zone then holds the other's among "
    "its trusted PZH certificates, and this hub keeps a link with the other.",
    _acceptZone, _acceptArguments,
)

zones = Verb(
    "zones", "list the friend zones and their links (hub)",
    "List the zones this zone trusts: zone id, CA fingerprint, since when, and the state "
    "of the link with its hub (up, connecting, waiting, refused).",
    _zones,
)

untrustZone = Verb(
    "untrust-zone", "stop trusting a friend zone; its links close at once (hub)",
    "Remove the friend zone's CA from the trusted PZH certificates (and so from every "
    "device at its next sync) and close the link with its hub at once; its calls are "
    "refused from now on.",
    _untrustZone, _untrustArguments,
)
