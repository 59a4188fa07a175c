# -*- test-case-name: tests.pz.test_cli,tests.e2e.test_spine -*-
"""
The hub's C{pzctl} verbs (C{--hub-dir DIR}): C{pair}, C{codes},
C{cancel-code}, C{devices}, C{revoke}, C{zone}, C{admin-link} and
C{admin-logout}.

Each runs one of the zone's operations (L{pzh.operations}, which the admin
page's API runs too).  What the hub's store alone can answer (pairing
codes, the list of devices) works whether the hub runs or not; who is
connected, and revoking with the hub running, go through its admin socket.
Each verb is registered in the C{pzctl.verbs} entry-point group
(C{setup.cfg}); the modules it drives are imported when it runs, so
C{pzctl --help} stays fast.
"""

import json

from pz.cli.verb import Verb, WallClock, needs, printRows

__all__ = ["pair", "codes", "cancelCode", "devices", "revoke", "zone", "adminLink", "adminLogout"]


def _operations(args, codeLifetime: float = 600.0):
    from pzh.operations import ZoneOperations

    return ZoneOperations.forDirectory(needs(args, "hub_dir", "--hub-dir"), WallClock(),
                                       codeLifetime)


def _pair(args) -> None:
    made = _operations(args, args.lifetime).newCode(args.device)
    if args.json:
        print(json.dumps({"code": made["code"], "device": made["device"], "id": made["id"],
                          "expires": made["expires"]}))
    else:
        print(made["code"])
    if args.qr:
        import segno

        segno.make(made["code"]).terminal(compact=True)


def _codes(args) -> None:
    printRows(args, _operations(args).codes(),
              "no pairing codes outstanding (make one: pzctl --hub-dir DIR pair --device NAME)",
              lambda r: f"{r['id']}  {r['device']}  expires {r['expires']}")


def _cancelCode(args) -> None:
    result = _operations(args).cancelCode(args.id)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"cancelled pairing code {result['id']} for {result['device']}")


def _zone(args) -> None:
    summary = _operations(args).summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(summary["zone"])


def _devices(args) -> None:
    rows = _operations(args).devices()
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


def _revoke(args) -> None:
    result = _operations(args).revoke(args.device)
    if args.json:
        print(json.dumps(result))
    elif result["serials"]:
        print(f"revoked {result['device']} (CRL number {result['crl_number']})")
    else:
        print(f"{result['device']} was already revoked (CRL number {result['crl_number']})")


def _adminLink(args) -> None:
    from pz.admin import adminCall
    from pz.timefmt import isoTime

    result = adminCall(needs(args, "hub_dir", "--hub-dir"), "admin-link")
    if args.json:
        print(json.dumps({"url": result["url"], "id": result["id"],
                          "expires": isoTime(result["expires"])}))
    else:
        print(result["url"])


def _adminLogout(args) -> None:
    from pz.admin import adminCall

    result = adminCall(needs(args, "hub_dir", "--hub-dir"), "admin-logout")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"signed out {result['sessions']} admin session(s)")


def _pairArguments(parser, parents) -> None:
    parser.add_argument("--device", required=True, metavar="NAME", help="name the device will get")
    parser.add_argument("--lifetime", type=float, default=600.0, metavar="SECONDS",
                        help="how long the code stays valid (default 600)")
    parser.add_argument("--qr", action="store_true",
                        help="also print the code as a QR code, for the device's camera")


def _cancelCodeArguments(parser, parents) -> None:
    parser.add_argument("id", metavar="ID", help="the code's id, as pzctl codes lists it")


def _revokeArguments(parser, parents) -> None:
    parser.add_argument("device", metavar="DEVICE_ID", help="the device's id, ZONE/NAME")


pair = Verb(
    "pair", "print a one-time pairing code for a new device (hub)",
    "Print a one-time pairing code for a new device called NAME: give it to the "
    "device's 'twistd pzp --pair'. It works whether the hub runs or not; the code "
    "is single use and valid for --lifetime seconds. --qr prints it as a QR code too.",
    _pair, _pairArguments,
)

codes = Verb(
    "codes", "list the pairing codes not used yet (hub)",
    "List the pairing codes neither used nor expired, with their ids, the device each "
    "names and when it expires (the codes themselves are not kept).",
    _codes,
)

cancelCode = Verb(
    "cancel-code", "cancel a pairing code not used yet (hub)",
    "Cancel the outstanding pairing code ID (as 'codes' lists it): it can no longer "
    "enrol a device.",
    _cancelCode, _cancelCodeArguments,
)

devices = Verb(
    "devices", "list every device ever enrolled (hub)",
    "List every device ever enrolled in the hub's zone with its state (connected, "
    "disconnected or revoked), address, last contact and certificate expiry.",
    _devices,
)

revoke = Verb(
    "revoke", "revoke a device: cut it off and make it erase the zone (hub)",
    "Revoke a device: sign a new CRL listing its certificates, drop its link and "
    "push the CRL to every device; on its next connection it erases its zone data. "
    "With the hub stopped, the CRL is signed here and served when the hub starts.",
    _revoke, _revokeArguments,
)

zone = Verb(
    "zone", "print the zone id (hub)",
    "Print the hub's zone id (and, with --json, its CA fingerprint, address, uptime "
    "when the hub runs, devices counted by state and outstanding pairing codes).",
    _zone,
)

adminLink = Verb(
    "admin-link", "print a one-time sign-in link to the admin web page (hub)",
    "Print a link that signs a browser in to the running hub's admin web page: "
    "it works once, within ten minutes, and sets a session cookie. Anyone who opens "
    "it first gets the session, so keep it to yourself.",
    _adminLink,
)

adminLogout = Verb(
    "admin-logout", "sign every admin web session out (hub)",
    "Sign every browser out of the running hub's admin web page and void the sign-in "
    "links not used yet.",
    _adminLogout,
)
