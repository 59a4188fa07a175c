# -*- test-case-name: tests.mesh.portal.test_cli,tests.e2e.test_mesh -*-
"""
C{pzctl mesh ...}: one device's side of the Mathematical Mesh portal.

    pzctl --pzp-dir DIR mesh create ACCOUNT --portal URL     new account; this device administers it
    pzctl --pzp-dir DIR mesh publish                         publish this device's profiles
    pzctl [--pzp-dir DIR] mesh get ID | --account A ...      look entries up (all pages)
    pzctl --pzp-dir DIR mesh connect ACCOUNT --portal URL    new device: ask to join, wait for the answer
    pzctl --pzp-dir DIR mesh pending                         administration device: requests waiting
    pzctl --pzp-dir DIR mesh approve|refuse REQUEST          administration device: answer one
    pzctl [--pzp-dir DIR] mesh status                        the portal's checkpoint

The device's Mesh keys and what it knows of its account live in
C{DIR/mesh/} (L{pz.mesh.device}); the portal URL and CA are remembered there
once a device belongs to an account, so C{--portal} is needed only the first
time. C{--ca FILE} trusts that CA for an https portal (a hub's C{ca.pem});
C{--insecure} trusts any certificate (for tests). C{--json} prints JSON.

A device accepted by a portal that runs inside a personal zone hub receives
its zone certificate with the answer; C{connect} stores it in C{DIR/zone/},
so C{twistd pzp --data-dir DIR} then starts in Hub mode: the Mesh route of
enrolment.

The verbs act for one device and store what it receives in its data
directory (its Mesh keys in L{pz.mesh.device}, a zone certificate in
L{pzp.zonedir}), so they live with the device's proxy.  C{pzctl} finds
L{mesh} in the C{pzctl.verbs} entry-point group (C{setup.cfg}).
"""

from __future__ import annotations

import abc
import json
import os
import re
import socket
import sys
from datetime import datetime, timezone

from pz.cli.verb import Verb
from pz.errors import ZoneError
from pzp.meshanswer import answerRequest, asZoneError as _asZoneError, meshHTTPClient

__all__ = ["mesh", "VERBS"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _defaultDeviceName() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:63]
    return name.lstrip("._-") or "device"


class _Context:
    """
    What one verb works with: the device's C{mesh/} directory (if any), the
    portal it talks to, the reactor.
    """

    def __init__(self, args, reactor, needDevice: bool) -> None:
        from pz.mesh.device import MeshDevice

        self.args = args
        self.reactor = reactor
        self.device = None
        if args.pzp_dir:
            self.device = MeshDevice(args.pzp_dir)
        elif needDevice:
            raise ZoneError("BAD_REQUEST", "this command needs --pzp-dir DIR (the device's data directory)")
        remembered = {}
        if self.device is not None:
            remembered = self.device.account() or self.device.connection() or {}
        self.portal = args.portal or remembered.get("portal")
        self.ca = os.path.abspath(args.ca) if args.ca else remembered.get("ca")
        self._client = None

    @property
    def client(self):
        """
        A L{MeshClient} for the portal.
        """
        if self._client is None:
            if not self.portal:
                raise ZoneError("BAD_REQUEST", "which portal? give --portal URL")
            from pz.mesh.client import MeshClient

            try:
                self._client = MeshClient(
                    self.portal, meshHTTPClient(self.reactor, self.ca, self.args.insecure),
                    timeout=self.args.timeout, reactor=self.reactor,
                )
            except ValueError as e:
                raise ZoneError("BAD_REQUEST", str(e))
        return self._client

    def account(self) -> dict:
        """
        The account this device belongs to.
        """
        account = self.device.account()
        if account is None:
            raise ZoneError(
                "BAD_REQUEST", "this device belongs to no Mesh account yet (mesh create or connect)"
            )
        return account


def _run(verb, args) -> None:
    """
    Run the coroutine C{verb.main(context)} under the reactor, then print
    what it returned: JSON with C{--json}, else text.
    """
    from twisted.internet import defer, reactor
    from twisted.python.failure import Failure

    outcome: list = []
    where: list = [None, None]

    def start() -> None:
        async def main():
            context = _Context(args, reactor, verb.needsDevice)
            where[:] = [context.portal, context.ca]
            return await verb.main(context)

        d = defer.ensureDeferred(main())
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    [result] = outcome
    if isinstance(result, Failure):
        raise _asZoneError(result, *where)
    data, text = result
    print(json.dumps(data, indent=2) if args.json else text)


class _Verb(abc.ABC):
    """
    One C{pzctl mesh} verb: its arguments and what it does.
    """

    name = ""
    help = ""
    description = ""
    needsDevice = True

    def configure(self, parser) -> None:
        """
        Add the verb's own arguments.
        """

    def run(self, args) -> None:
        """
        The handler pzctl calls.
        """
        _run(self, args)

    @abc.abstractmethod
    def main(self, context: _Context):
        """
        Do it; fire with C{(jsonData, text)}.
        """


class CreateVerb(_Verb):
    """
    C{mesh create ACCOUNT}: make a master profile and this device's, and
    bind a new account to the personal profile listing this device.
    """

    name = "create"
    help = "create a Mesh account; this device becomes its administration device"
    description = (
        "Create the Mesh account ACCOUNT at the portal: make a master profile and this device's "
        "profile, and bind the account to a personal profile listing this device, which becomes "
        "the account's administration device."
    )

    def configure(self, parser) -> None:
        parser.add_argument("account", metavar="ACCOUNT", help="the new account's name")
        parser.add_argument("--name", help="this device's name (default: the host name)")

    async def main(self, context):
        from pz.mesh.builders import MasterKeys, makePersonalProfile
        from pz.mesh.messages import accountNameFingerprint, normaliseAccount
        from pz.mesh.signing import sign

        device = context.device
        if device.account() is not None:
            raise ZoneError(
                "BAD_REQUEST", f"this device already belongs to account {device.account()['account']}"
            )
        validation = await context.client.validate(context.args.account)
        if not validation.Valid:
            raise ZoneError("BAD_REQUEST", f"{context.args.account!r}: {validation.Reason}")
        name = normaliseAccount(context.args.account)
        now = _now()
        if device.keys() is None:
            device.create(context.args.name or _defaultDeviceName(), now)
        master = MasterKeys.generate(onlineKeys=1, escrowKeys=1)
        personal = makePersonalProfile(
            master.signedProfile(updated=now),
            devices=[device.signedProfile()],
            updated=now,
            names=[accountNameFingerprint(name)],
        )
        signed = sign(personal, master.online[0])
        response = await context.client.create(name, signed)
        device.saveMaster(master)
        device.savePersonal(signed)
        device.saveAccount(name, context.client.url, context.ca, master.identifier, admin=True)
        data = {
            "account": name, "portal": context.client.url, "profile": master.identifier,
            "device": device.signedProfile().Identifier, "status": response.Status,
        }
        return data, f"created account {name} for profile {master.identifier}"


class PublishVerb(_Verb):
    """
    C{mesh publish}: publish this device's profile and, on the
    administration device, a fresh personal profile and the master profile.
    """

    name = "publish"
    help = "publish this device's profiles to the portal"
    description = (
        "Publish this device's profile to the portal and, on the administration device, a fresh "
        "personal profile and the master profile."
    )

    async def main(self, context):
        from pz.mesh.builders import makePersonalProfile
        from pz.mesh.device import nextUpdate
        from pz.mesh.signing import sign, unverifiedPayload

        device = context.device
        context.account()
        entries = []
        master = device.master()
        if master is not None and device.personal() is not None:
            held = unverifiedPayload(device.personal())
            fresh = sign(
                makePersonalProfile(
                    held.SignedMasterProfile, devices=held.Devices or (),
                    applications=held.Applications or (),
                    updated=nextUpdate(_now(), held.Updated), names=held.Names,
                ),
                master.online[0],
            )
            entries += [fresh, held.SignedMasterProfile]
        entries.append(device.signedProfile())
        published = []
        for entry in entries:
            response = await context.client.publish(entry)
            published.append({
                "type": type(entry).__name__, "identifier": entry.Identifier,
                "status": response.Status, "description": response.StatusDescription,
            })
            if type(entry).__name__ == "SignedPersonalProfile":
                device.savePersonal(entry)
        text = "\n".join(f"{p['status']}  {p['type']:<22} {p['identifier']}" for p in published)
        return published, text


def _itemJSON(item) -> dict:
    from pz.mesh.schema import encode, encodeDateTime

    entry = item.Entry
    data = {
        "sequence": item.Sequence,
        "published": None if item.Published is None else encodeDateTime(item.Published),
        "type": type(entry).__name__,
        "identifier": getattr(entry, "Identifier", None) or getattr(entry, "AccountID", None),
        "entry": encode(entry),
    }
    if item.Hash is not None:
        data["previous"], data["hash"] = item.Previous, item.Hash
    return data


class GetVerb(_Verb):
    """
    C{mesh get [ID] [--account A] [--kv KEY=VALUE] ...}: Get, following
    every page.
    """

    name = "get"
    help = "look up entries: by identifier, account or key/value (every page)"
    description = (
        "Look entries up in the portal: by identifier (ID), by --account, or by --kv KEY=VALUE, "
        "following every page of the answer."
    )
    needsDevice = False

    def configure(self, parser) -> None:
        parser.add_argument("identifier", nargs="?", metavar="ID",
                            help="the entry's identifier (a profile's UDF)")
        parser.add_argument("--account", help="entries of this account")
        parser.add_argument("--kv", action="append", default=[], metavar="KEY=VALUE",
                            help="entries indexed under KEY=VALUE (Type, Name, Device, "
                                 "Application, Profile); repeatable")
        parser.add_argument("--max-entries", type=int, help="entries per page")
        parser.add_argument("--max-bytes", type=int, help="bytes per page")
        parser.add_argument("--full", action="store_true", help="include the log chain fields")

    async def main(self, context):
        from pz.mesh.messages import SearchConstraints

        args = context.args
        pairs = []
        for item in args.kv:
            key, sep, value = item.partition("=")
            if not sep:
                raise ZoneError("BAD_REQUEST", f"--kv takes KEY=VALUE, not {item!r}")
            pairs.append((key, value))
        pages: list = []
        items = await context.client.getAll(
            identifier=args.identifier, account=args.account, keyValues=pairs,
            constraints=SearchConstraints(MaxEntries=args.max_entries, MaxBytes=args.max_bytes),
            full=args.full or None, pages=pages,
        )
        rows = [_itemJSON(item) for item in items]
        text = "\n".join(
            f"{r['sequence']:>6}  {r['published']}  {r['type']:<24} {r['identifier']}" for r in rows
        )
        return {"items": rows, "pages": len(pages)}, text


class ConnectVerb(_Verb):
    """
    C{mesh connect ACCOUNT}: this new device asks to join the account's
    profile (ConnectStart), then waits on ConnectStatus for an
    administration device's answer; accepted, it keeps the account and any
    zone certificate that came with the answer.
    """

    name = "connect"
    help = "ask to connect this device to ACCOUNT and wait for the answer"
    description = (
        "Ask to connect this new device to the account ACCOUNT, print the fingerprint to compare "
        "on the approving device, and wait for the answer; accepted by a hub's portal, the device "
        "also receives its zone certificate."
    )

    def configure(self, parser) -> None:
        parser.add_argument("account", metavar="ACCOUNT", help="the account to join")
        parser.add_argument("--name", help="this device's name (default: the host name)")
        parser.add_argument("--no-wait", action="store_true",
                            help="send the request and return; run connect again to wait")
        parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                            help="how long to wait for the answer (default 600)")
        parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                            help="how often to ask (default 1)")

    async def main(self, context):
        from twisted.internet.task import deferLater

        from pz.mesh.client import MeshPortalError
        from pz.mesh.messages import normaliseAccount
        from pz.mesh.model import ConnectionRequest
        from pz.mesh.signing import sign, verifyPersonalProfile
        from pzp.zonedir import ZoneDirectory

        args, device = context.args, context.device
        name = normaliseAccount(args.account)
        if device.account() is not None:
            raise ZoneError(
                "BAD_REQUEST", f"this device already belongs to account {device.account()['account']}"
            )
        zoneDir = ZoneDirectory(args.pzp_dir)
        if zoneDir.enrolled():
            raise ZoneError(
                "BAD_REQUEST", f"this device is already in zone {zoneDir.marker().get('zone')}"
            )
        client = context.client
        pending = device.connection()
        status = None
        if pending is not None and (pending["account"], pending["portal"]) == (name, client.url):
            # Resuming: the request may have been answered meanwhile.
            request, parent = pending["request"], pending["profile"]
            try:
                status = await client.connectStatus(name, request.Identifier)
            except MeshPortalError as e:
                if e.status != 404:
                    raise
        else:
            accountEntry, personal = await client.fetchAccount(name)
            profile = verifyPersonalProfile(personal)
            if profile.Identifier != accountEntry.UserProfileUDF:
                raise ZoneError("NOT_AUTHORISED", "the portal's profile is not the account's")
            parent = profile.Identifier
            deviceName = args.name or device.description() or _defaultDeviceName()
            if device.keys() is None or device.description() != deviceName:
                device.create(deviceName, _now())
            keys = device.keys()
            request = sign(
                ConnectionRequest(ParentUDF=parent, Device=device.signedProfile()), keys.signature
            )
            device.saveConnection(name, client.url, context.ca, parent, request)
        if status is None:
            await client.connectStart(name, request)
        udf = request.Identifier
        if status is None or status.Result is None:
            print(
                f"device {udf} asked to join account {name}; compare this with what "
                "'pzctl mesh pending' shows on the approving device",
                file=sys.stderr, flush=True,
            )
        if args.no_wait and (status is None or status.Result is None):
            return (
                {"account": name, "device": udf, "result": "Pending"},
                f"requested: device {udf} waits for account {name}",
            )
        deadline = context.reactor.seconds() + args.wait
        while status is None or status.Result is None:
            if status is not None:
                await deferLater(context.reactor, args.interval, lambda: None)
            status = await client.connectStatus(name, udf)
            if status.Result is not None:
                break
            if context.reactor.seconds() >= deadline:
                raise ZoneError("TIMEOUT", f"no answer from account {name} within {args.wait:g}s")
        data = await self._answered(context, name, parent, request, status)
        return data

    async def _answered(self, context, name, parent, request, status):
        from pz.mesh.signing import unverifiedPayload, verifyConnectionResult, verifyPersonalProfile

        device, client = context.device, context.client
        accountEntry, personal = await client.fetchAccount(name)
        profile = verifyPersonalProfile(personal)
        if profile.Identifier != parent or accountEntry.UserProfileUDF != parent:
            raise ZoneError("NOT_AUTHORISED", f"account {name} is no longer profile {parent}")
        result = verifyConnectionResult(status.Result, profile)
        if result.Device != unverifiedPayload(request).Device:
            raise ZoneError("NOT_AUTHORISED", "the answer is for another request")
        udf = request.Identifier
        if result.Result != "Accepted":
            device.forget()
            raise ZoneError(
                "NOT_AUTHORISED", f"account {name} answered {result.Result}: device {udf} is not connected"
            )
        data = {"account": name, "device": udf, "result": "Accepted", "profile": parent}
        text = f"connected: device {udf} is now a device of account {name}"
        if status.Zone is not None:
            zone = _storeZone(context, status.Zone)
            data.update(zone)
            text += f"\nzone: enrolled as {zone['zone_device']}; start twistd pzp --data-dir {context.args.pzp_dir}"
        device.saveAccount(name, client.url, context.ca, parent, admin=False)
        device.savePersonal(personal)
        device.clearConnection()
        return data, text


def _storeZone(context, zone) -> dict:
    """
    Check the zone credentials an accepted device received and store them
    in its zone directory, so that C{twistd pzp} starts in Hub mode.
    """
    from cryptography.hazmat.primitives import serialization

    from pz import pki
    from pzp.zonedir import Credentials, ZoneDirectory

    try:
        cert = pki.loadCertificate(zone.Certificate.encode("ascii"))
        ca = pki.loadCertificate(zone.CA.encode("ascii"))
        crl = pki.loadCRL(zone.CRL.encode("ascii"))
        pki.verifyCRL(crl, ca)
        deviceId = pki.verifyPeerCertificate(cert, ca, crl, _now())
    except (pki.CertificateError, AttributeError, UnicodeEncodeError) as e:
        raise ZoneError("CERT_INVALID", f"the zone credentials are not usable: {e}")
    if context.ca:
        with open(context.ca, "rb") as f:
            pinned = pki.loadCertificate(f.read())
        if pinned != ca:
            raise ZoneError("CERT_UNTRUSTED", "the zone CA is not the CA given with --ca")
    key = context.device.zoneKey()
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ZoneError("CERT_INVALID", "the zone certificate is not for this device's key")
    if deviceId != zone.Device or not deviceId.startswith(f"{zone.Zone}/"):
        raise ZoneError("CERT_INVALID", f"the zone certificate names {deviceId}, not {zone.Device}")
    host, _, port = (zone.Hub or "").rpartition(":")
    if not host or not port.isdigit():
        raise ZoneError("CERT_INVALID", f"the hub address {zone.Hub!r} is not HOST:PORT")
    ZoneDirectory(context.args.pzp_dir).store(Credentials(
        zoneId=zone.Zone, deviceId=deviceId, hubHost=host.strip("[]"), hubPort=int(port),
        key=key, cert=cert, caCert=ca, crl=crl,
    ))
    return {"zone": zone.Zone, "zone_device": deviceId, "hub": zone.Hub,
            "ca_fingerprint": pki.caFingerprint(ca)}


class PendingVerb(_Verb):
    """
    C{mesh pending}: the requests waiting on this device's account, each
    with the requesting device's UDF and name.
    """

    name = "pending"
    help = "list the connection requests waiting on this device's account"
    description = (
        "List the connection requests waiting on this device's account, each with the requesting "
        "device's fingerprint and name."
    )

    async def main(self, context):
        from pz.mesh.errors import MeshError
        from pz.mesh.signing import unverifiedPayload, verifyConnectionRequest

        account = context.account()["account"]
        pending = await context.client.connectPendingAll(account)
        rows = []
        for signed in pending:
            try:
                request = verifyConnectionRequest(signed)
                state = "signed"
            except MeshError as e:
                request, state = unverifiedPayload(signed), f"refuse: {e.message}"
            profile = unverifiedPayload(request.Device)
            rows.append({"device": signed.Identifier, "name": profile.Description,
                         "signature": state})
        text = "\n".join(f"{r['device']}  {r['name']}  ({r['signature']})" for r in rows)
        return rows, text or f"no requests are waiting on account {account}"


class _AnswerVerb(_Verb):
    """
    C{mesh approve|refuse REQUEST}: answer a pending request, signed with
    an administration key.
    """

    answer = ""

    def configure(self, parser) -> None:
        parser.add_argument("request", metavar="REQUEST",
                            help="the requesting device's UDF (or a unique prefix of it)")

    async def main(self, context):
        return await answerRequest(context.device, lambda: context.client, context.args.request,
                                   self.answer)


class ApproveVerb(_AnswerVerb):
    """
    C{mesh approve REQUEST}: accept the device, add it to the personal
    profile and publish that.
    """

    name = "approve"
    help = "accept a pending request (and add the device to the profile)"
    description = (
        "Accept the pending connection request of the device REQUEST (its fingerprint, or a "
        "unique prefix): sign the answer with an administration key and publish the personal "
        "profile with the device added."
    )
    answer = "Accepted"


class RefuseVerb(_AnswerVerb):
    """
    C{mesh refuse REQUEST}: refuse the device.
    """

    name = "refuse"
    help = "refuse a pending request"
    description = (
        "Refuse the pending connection request of the device REQUEST (its fingerprint, or a "
        "unique prefix)."
    )
    answer = "Refused"


class StatusVerb(_Verb):
    """
    C{mesh status}: the portal's last write time and checkpoint.
    """

    name = "status"
    help = "the portal's last write time and log checkpoint"
    description = (
        "Show the portal's last write time and the checkpoint of its log."
    )
    needsDevice = False

    async def main(self, context):
        from pz.mesh.schema import encodeDateTime

        response = await context.client.status()
        when = response.LastWriteTime
        data = {
            "portal": context.client.url,
            "last_write_time": None if when is None else encodeDateTime(when),
            "checkpoint": response.CheckpointValue,
        }
        if context.device is not None and context.device.account() is not None:
            data["account"] = context.device.account()["account"]
        text = f"portal     {data['portal']}\nlast write {data['last_write_time'] or 'never'}\ncheckpoint {data['checkpoint']}"
        return data, text


VERBS = (CreateVerb(), PublishVerb(), GetVerb(), ConnectVerb(), PendingVerb(), ApproveVerb(),
         RefuseVerb(), StatusVerb())


def _meshArguments(parser, parents) -> None:
    """
    Add C{mesh}'s verbs to its parser; each verb sets C{func} to its
    handler.  C{parents} are the parsers of the options every command takes
    (C{--pzp-dir}, C{--json}, ...), so that they may follow the verb too.
    """
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--portal", metavar="URL", help="the portal (remembered once used)")
    common.add_argument("--ca", metavar="FILE", help="trust this CA certificate (PEM) for https")
    common.add_argument("--insecure", action="store_true",
                        help="trust any https certificate (tests only)")
    common.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait for each answer (default 30)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True,
                                  help="what to do at the portal")
    for verb in VERBS:
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.description,
                               parents=[common, *parents])
        verb.configure(sub)
        sub.set_defaults(func=verb.run)


mesh = Verb(
    "mesh", "Mathematical Mesh portal: accounts, profiles, devices",
    "Act for this device (--pzp-dir) against a Mathematical Mesh portal: a "
    "standalone twistd meshportal, or the one a hub serves on its web port "
    "(pass --ca HUB_DIR/ca.pem for its https).",
    None, _meshArguments,
)
