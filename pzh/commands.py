# -*- test-case-name: tests.pz.test_cli,tests.e2e.test_spine -*-
"""
The hub's C{pzctl} verbs (C{--hub-dir DIR}): C{pair}, C{devices},
C{revoke}, C{zone}, C{admin-link} and C{admin-logout}.

What the hub's store alone can answer (pairing codes, the list of devices)
works whether the hub runs or not; who is connected, and revoking with the
hub running, go through its admin socket.  Each verb is registered in the
C{pzctl.verbs} entry-point group (C{setup.cfg}); the modules it drives are
imported when it runs, so C{pzctl --help} stays fast.
"""

import json
from datetime import datetime, timezone

from pz.cli.verb import Verb, WallClock, needs
from pz.errors import ZoneError

__all__ = ["pair", "devices", "revoke", "zone", "adminLink", "adminLogout"]


def _iso(when):
    if when is None:
        return None
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")


def _hubStore(hubDir: str):
    from pzh.store import SQLiteHubStore
    from pzh.zone import loadZone

    zone = loadZone(hubDir)
    return zone, SQLiteHubStore(zone.path("hub.db"))


def _pair(args) -> None:
    from pzh.enrolment import Enrolment

    zone, store = _hubStore(needs(args, "hub_dir", "--hub-dir"))
    code = Enrolment(zone, store, None, WallClock(), args.lifetime).newCode(args.device)
    if args.json:
        print(json.dumps({"code": str(code), "device": f"{zone.zoneId}/{args.device}"}))
    else:
        print(code)


def _zone(args) -> None:
    from pzh.zone import loadZone

    zone = loadZone(needs(args, "hub_dir", "--hub-dir"))
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


def _devices(args) -> None:
    hubDir = needs(args, "hub_dir", "--hub-dir")
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


def _revoke(args) -> None:
    from datetime import timedelta

    from pz.admin import adminCall
    from pzh.authority import ZoneAuthority

    hubDir = needs(args, "hub_dir", "--hub-dir")
    try:
        result = adminCall(hubDir, "revoke", {"device": args.device})
    except ZoneError as e:
        if e.code != "NOT_RUNNING":
            raise
        # No hub running: sign the CRL here; the hub serves it when it starts.
        zone, store = _hubStore(hubDir)
        authority = ZoneAuthority(zone, store, WallClock(), timedelta(days=90))
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


def _adminLink(args) -> None:
    from pz.admin import adminCall

    result = adminCall(needs(args, "hub_dir", "--hub-dir"), "admin-link")
    if args.json:
        print(json.dumps({"url": result["url"], "id": result["id"],
                          "expires": _iso(result["expires"])}))
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


def _revokeArguments(parser, parents) -> None:
    parser.add_argument("device", metavar="DEVICE_ID", help="the device's id, ZONE/NAME")


pair = Verb(
    "pair", "print a one-time pairing code for a new device (hub)",
    "Print a one-time pairing code for a new device called NAME: give it to the "
    "device's 'twistd pzp --pair'. It works whether the hub runs or not; the code "
    "is single use and valid for --lifetime seconds.", _pair, _pairArguments,
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
    "Print the hub's zone id (and, with --json, its CA fingerprint and address).",
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
