# -*- test-case-name: tests.pzh.test_operations -*-
"""
The zone's admin operations, one code path for C{pzctl} and the admin
page's JSON API (L{pzh.adminapi}).

L{ZoneOperations} lists devices with their state, makes, lists and
cancels pairing codes, revokes devices, sums the zone up, shows and edits
the zone's policy and, when the hub hosts a Mesh portal, lists the
connection requests waiting on it and has them answered by an
administration device; in a running hub it also
shows the zone's service cache and each device's synchronisation.  It
is built over a running hub (L{ZoneOperations.forHub}: the web port) or
over a hub's data directory (L{ZoneOperations.forDirectory}: C{pzctl},
which asks a running hub what only it knows through its admin socket and
works from the store alone when none runs).  Every refusal is a
L{pz.errors.ZoneError} with the same code in both.
"""

import re
from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail

from pz.errors import ZoneError
from pz.timefmt import isoTime
from pz.tokens import codeId, tokenHash
from pzh.enrolment import Enrolment
from pzh.store import IHubStore
from pzh.zonesync import ZONE_FOLDER

__all__ = ["ZoneOperations", "CODE_ID", "MAX_PENDING_LISTED"]

#: The most Mesh connection requests listed at once.
MAX_PENDING_LISTED = 500

#: What a pairing code's id looks like (L{pz.tokens.codeId}).
CODE_ID = re.compile(r"\A[0-9a-f]{16}\Z")


class ZoneOperations:
    """
    What an administrator can see and do in a zone.

    @param connected: returns the live links as
        C{{deviceId: {"address", "last_seen"}}}.
    @param linkOf: returns what C{connected} says of one device, or None
        when it is not connected; by default looked up in C{connected()}.
        The hub gives one that reads its registry, so that an event about
        one device does not list every link of a large zone.
    @param revoker: revokes a device id and returns
        C{{"device", "serials", "crl_number"}}.
    @param events: a L{pzh.events.ZoneEvents} told of cancelled codes, or
        None.
    @param started: when the hub started (POSIX seconds), or None when
        not known (no hub running).
    @param portal: the hub's Mesh L{pzh.portal.service.PortalService}, or
        None.
    @param mesh: the hub's L{pzh.meshanswerers.MeshAnswerers}, which asks
        an administration device to answer a Mesh request, or None (no
        hub running: nobody to ask).
    @param policyFile: the L{pz.policy.itemfile.PolicyFile} of the hub's
        items, or None when the hub keeps none (it does not synchronise).
    """

    def __init__(self, zone, store: IHubStore, clock, enrolment: Enrolment,
                 connected: Callable[[], dict], revoker: Callable[[str], dict],
                 events=None, started: Optional[float] = None, portal=None,
                 linkOf: Optional[Callable[[str], Optional[dict]]] = None,
                 mesh=None, zoneLinks=None, policyFile=None) -> None:
        self.zone = zone
        self._store = IHubStore(store)
        self._clock = clock
        self._enrolment = enrolment
        self._connected = connected
        self._linkOf = linkOf if linkOf is not None else lambda d: connected().get(d)
        self._revoker = revoker
        self._events = events
        self._started = started
        self.portal = portal
        self._mesh = mesh
        self._zoneLinks = zoneLinks
        self._policyFile = policyFile

    @classmethod
    def forHub(cls, hub, portal=None) -> "ZoneOperations":
        """
        The operations of a running L{pzh.hub.Hub}, in its process.
        """
        def linkOf(deviceId: str) -> Optional[dict]:
            link = hub.registry.get(deviceId)
            if link is None:
                return None
            return {"address": link.address, "last_seen": link.lastSeen}

        from pz.policy.itemfile import PolicyFile

        # An edit here is pushed to the devices at once.
        policyFile = (None if hub.sync is None
                      else PolicyFile(hub.sync.tree, changed=hub.sync.engine.localChange))
        return cls(hub.zone, hub.store, hub.clock, hub.enrolment, hub.connectedDevices,
                   hub.revoke, events=hub.events, started=hub.started, portal=portal,
                   linkOf=linkOf, mesh=hub.mesh, zoneLinks=hub.zoneLinks, policyFile=policyFile,
                   ).withSync(hub.sync, hub.services)

    @classmethod
    def forDirectory(cls, hubDir: str, clock, codeLifetime: float = 600.0) -> "ZoneOperations":
        """
        The operations of the hub whose data directory is C{hubDir}, from
        another process (C{pzctl}): who is connected, and revoking, go
        through a running hub's admin socket; with no hub running, nobody
        is connected and the CRL is signed here (the hub serves it when it
        starts).
        """
        from datetime import timedelta

        from pz.admin import adminCall
        from pz.policy.itemfile import PolicyFile
        from pz.sync.items import ItemTree
        from pzh.authority import ZoneAuthority
        from pzh.store import SQLiteHubStore
        from pzh.zone import loadZone

        zone = loadZone(hubDir)
        store = SQLiteHubStore(zone.path("hub.db"))

        def connected() -> dict:
            try:
                return adminCall(hubDir, "connected")
            except ZoneError as e:
                if e.code == "NOT_RUNNING":
                    return {}
                raise

        def revoker(deviceId: str) -> dict:
            from pz import pki

            try:
                return adminCall(hubDir, "revoke", {"device": deviceId})
            except ZoneError as e:
                if e.code != "NOT_RUNNING":
                    raise
            authority = ZoneAuthority(zone, store, clock, timedelta(days=90))
            serials = authority.revoke(deviceId)
            return {"device": deviceId, "serials": [format(s, "x") for s in serials],
                    "crl_number": pki.crlNumber(authority.crl)}

        enrolment = Enrolment(zone, store, None, clock, codeLifetime)
        # The running hub's scan finds an edit made here and syncs it.
        policyFile = PolicyFile(ItemTree(zone.path(ZONE_FOLDER)))
        return cls(zone, store, clock, enrolment, connected, revoker, policyFile=policyFile)

    # -- devices --------------------------------------------------------------

    @staticmethod
    def _row(device, live: dict) -> dict:
        state = "disconnected"
        lastSeen, address = device.lastSeen, device.address
        if device.revoked is not None:
            state = "revoked"
        elif device.id in live:
            state = "connected"
            lastSeen = live[device.id]["last_seen"] or lastSeen
            address = live[device.id]["address"] or address
        return {
            "id": device.id,
            "serial": format(device.serial, "x"),
            "state": state,
            "last_seen": isoTime(lastSeen),
            "address": address,
            "not_after": isoTime(device.notAfter),
        }

    def devices(self) -> list:
        """
        Every device ever enrolled, by id: C{id}, hex C{serial}, C{state}
        (C{connected}, C{disconnected} or C{revoked}), C{last_seen} and
        C{not_after} (ISO times or null) and C{address}.
        """
        live = self._connected()
        return [self._row(device, live) for device in self._store.listDevices()]

    def device(self, deviceId: str) -> dict:
        """
        One device's row, as in L{devices}.

        @raise ZoneError: C{UNKNOWN_DESTINATION} for a device never enrolled.
        """
        record = self._store.getDevice(deviceId) if isinstance(deviceId, str) else None
        if record is None:
            raise ZoneError("UNKNOWN_DESTINATION", f"no device {deviceId!r} in this zone")
        live = self._linkOf(deviceId)
        return self._row(record, {} if live is None else {deviceId: live})

    def revoke(self, deviceId: str) -> dict:
        """
        Revoke a device: C{{"device", "serials", "crl_number"}}; C{serials}
        is empty if it already was.

        @raise ZoneError: C{UNKNOWN_DESTINATION} for a device never enrolled.
        """
        return self._revoker(deviceId)

    # -- pairing codes --------------------------------------------------------

    def newCode(self, deviceName: str) -> dict:
        """
        A new single-use pairing code for a device to be called
        C{deviceName}: C{{"id", "code", "device", "expires"}}.

        @raise ZoneError: C{BAD_REQUEST} for a bad name, C{NAME_TAKEN} for
            one an unrevoked device has.
        """
        if not isinstance(deviceName, str):
            raise ZoneError("BAD_REQUEST", "the device name must be a string")
        code = self._enrolment.newCode(deviceName)
        record = self._store.getToken(tokenHash(code.token))
        return {"id": codeId(record.tokenHash), "code": str(code),
                "device": self._enrolment.deviceId(deviceName), "expires": isoTime(record.expires)}

    def codes(self) -> list:
        """
        The pairing codes neither used nor expired, soonest expiry first:
        C{{"id", "device", "expires"}} (the code itself is never kept).
        """
        return [{"id": codeId(t.tokenHash), "device": self._enrolment.deviceId(t.deviceName),
                 "expires": isoTime(t.expires)}
                for t in self._store.outstandingTokens(self._clock.seconds())]

    def cancelCode(self, id: str) -> dict:
        """
        Cancel an outstanding pairing code by its id: C{{"id", "device"}}.

        @raise ZoneError: C{BAD_REQUEST} for what cannot be an id,
            C{TOKEN_INVALID} for no outstanding code of that id.
        """
        if not isinstance(id, str) or not CODE_ID.match(id):
            raise ZoneError("BAD_REQUEST", "a pairing code id is 16 hexadecimal digits "
                            "(pzctl codes lists them)")
        for token in self._store.outstandingTokens(self._clock.seconds()):
            if codeId(token.tokenHash) == id and self._store.cancelToken(token.tokenHash):
                device = self._enrolment.deviceId(token.deviceName)
                if self._events is not None:
                    self._events.emit("code", {"id": id, "device": device,
                                               "expires": token.expires, "event": "cancelled"})
                return {"id": id, "device": device}
        raise ZoneError("TOKEN_INVALID", f"no outstanding pairing code has id {id}")

    # -- the zone -------------------------------------------------------------

    def summary(self) -> dict:
        """
        The zone at a glance: C{zone} id, C{ca_fingerprint}, C{hub}
        address, C{uptime} in seconds (null when the hub does not run),
        C{devices} counted by state and outstanding C{codes}.
        """
        counts = {"enrolled": 0, "connected": 0, "disconnected": 0, "revoked": 0}
        for row in self.devices():
            counts["enrolled"] += 1
            counts[row["state"]] += 1
        zone = self.zone
        host = f"[{zone.host}]" if ":" in zone.host else zone.host
        return {
            "zone": zone.zoneId,
            "ca_fingerprint": zone.caFingerprint,
            "hub": f"{host}:{zone.port}",
            "uptime": None if self._started is None else self._clock.seconds() - self._started,
            "devices": counts,
            "codes": len(self._store.outstandingTokens(self._clock.seconds())),
        }

    # -- the Mesh portal ------------------------------------------------------

    def _portal(self):
        if self.portal is None:
            raise ZoneError("NOT_RUNNING", "this hub hosts no Mesh portal")
        return self.portal

    def meshPending(self) -> list:
        """
        The Mesh connection requests waiting on the portal's accounts,
        oldest first: C{id} (the requesting device's UDF), C{account},
        C{name} (the one the device asks for), C{requested} (the portal's
        time) and C{signature} (C{signed}, or why it does not verify).
        """
        from pz.mesh.errors import MeshError
        from pz.mesh.model import SignedConnectionRequest
        from pz.mesh.signing import unverifiedPayload, verifyConnectionRequest

        rows = []
        for record in self._portal().store.allPending(MAX_PENDING_LISTED):
            signed = SignedConnectionRequest.fromJSON(record.data)
            try:
                request, state = verifyConnectionRequest(signed), "signed"
            except MeshError as e:
                request, state = unverifiedPayload(signed), f"does not verify: {e.message}"
            profile = unverifiedPayload(request.Device)
            rows.append({"id": record.device, "account": record.account,
                         "name": profile.Description, "requested": record.time,
                         "signature": state})
        return rows

    def meshAnswer(self, id: str, answer: str) -> Deferred:
        """
        Approve or refuse a pending Mesh connection request, by asking an
        administration device of its account to.

        The portal takes an answer only when it is signed by an
        administration key of the account (the Mesh rule that no
        unauthenticated input changes state); those keys stay on the
        account's administration devices, never on the hub.  A device
        whose proxy runs with C{twistd pzp --mesh-approvals} answers for
        its accounts when the hub asks it over its link
        (L{pzh.meshanswerers}): it signs, here nothing is signed.

        @return: a Deferred firing with C{{"account", "device", "result",
            "name"}} (C{result} C{Accepted} or C{Refused}; and
            C{zone_device} for a device enrolled in the zone), or failing
            with a L{ZoneError}: C{BAD_REQUEST} for an answer that is
            neither C{approve} nor C{refuse}, C{UNKNOWN_DESTINATION} for no
            such request, C{NOT_CONNECTED} when no administration device of
            the account is connected to answer (or it went before it did),
            C{TIMEOUT} when it did not answer in time, or the device's own
            refusal.
        """
        try:
            if answer not in ("approve", "refuse"):
                raise ZoneError("BAD_REQUEST", "a Mesh request is answered approve or refuse")
            for record in self._portal().store.allPending(MAX_PENDING_LISTED):
                if record.device == id:
                    break
            else:
                raise ZoneError("UNKNOWN_DESTINATION",
                                f"no Mesh connection request from {id} is pending")
            if self._mesh is None:
                raise ZoneError(
                    "NOT_CONNECTED",
                    "only a running hub can ask an administration device to answer; on an "
                    f"administration device run pzctl --pzp-dir DIR mesh {answer} {id}")
        except ZoneError as e:
            return fail(e)
        return self._mesh.ask(record.account, id, answer)

    # -- friend zones ---------------------------------------------------------

    def friendZones(self) -> list:
        """
        The zones this zone trusts, as C{pzctl zones} lists them: C{zone},
        C{fingerprint} (its CA's), C{since}, C{hub} (its address),
        C{dials} (whether this hub dials it) and C{link} (its state).

        @raise ZoneError: C{NOT_RUNNING} outside the running hub.
        """
        if self._zoneLinks is None:
            raise ZoneError("NOT_RUNNING", "the friend zones' links are known to the running hub")
        return self._zoneLinks.listing()

    # -- the zone's policy ----------------------------------------------------

    def _policy(self):
        if self._policyFile is None:
            raise ZoneError("NOT_RUNNING", "this hub does not synchronise the zone's items, "
                                           "so it keeps no policy")
        return self._policyFile

    def policy(self) -> dict:
        """
        The zone's policy as the hub's C{items/policies/policy.xml} holds
        it, as C{pzctl --hub-dir DIR policy show} reads it: C{rules} (one
        row per rule, see L{pz.policy.edit.showRules}) and C{error}, null,
        or C{"CODE: message"} when the file cannot be read or does not
        parse (C{POLICY_INVALID} naming the line): its rules are then not
        listed, and the devices keep the policy they had.

        @raise ZoneError: C{NOT_RUNNING} when the hub keeps no items.
        """
        policyFile = self._policy()
        try:
            return {"rules": policyFile.rules(), "error": None}
        except ZoneError as e:
            return {"rules": [], "error": f"{e.code}: {e.message}"}

    def addPolicyRule(self, effect, subject=None, service=None, method=None,
                      first=False, item=None) -> dict:
        """
        Add a rule to the zone's policy, as C{pzctl --hub-dir DIR policy
        add} does (in the policy C{urn:pz:policy:edits}, after the rules
        added before, or before them with C{first}): C{{"rule": id}}.  The
        file is replaced atomically and syncs to every device.  With
        C{item} the rule is about sharing that item with the subject's
        friend zone (L{pzh.friendshare}).

        @raise ZoneError: C{BAD_REQUEST} for a bad effect, subject, service
            or method, C{POLICY_INVALID} when the policy does not parse
            (nothing is written), C{NOT_RUNNING} when the hub keeps no
            items.
        """
        return {"rule": self._policy().add(effect, subject=subject, service=service,
                                           method=method, first=first, item=item)}

    def removePolicyRule(self, ruleId) -> dict:
        """
        Remove a rule from the zone's policy, as C{pzctl --hub-dir DIR
        policy remove} does: C{{"removed": id}}.

        @raise ZoneError: C{BAD_REQUEST} when the policy has no such rule,
            C{POLICY_INVALID} when it does not parse (nothing is written),
            C{NOT_RUNNING} when the hub keeps no items.
        """
        self._policy().remove(ruleId)
        return {"removed": ruleId}

    # -- synchronisation and services ------------------------------------------

    #: The running hub's L{pzh.zonesync.HubSync} (None when it does not
    #: synchronise) and L{pzh.services.ZoneServiceCache}: set by
    #: L{withSync}, only in the hub's own process, which alone knows them.
    _sync = None
    _services = None

    def withSync(self, sync, services) -> "ZoneOperations":
        """
        Give these operations the hub's synchronisation and service cache.

        @return: C{self}.
        """
        self._sync = sync
        self._services = services
        return self

    def services(self) -> list:
        """
        The zone's service cache (C{items/servicecache.json} with the
        announces not written yet), one row per device and service, sorted
        by device then service: C{device}, C{service}, C{version},
        C{methods}.

        @raise ZoneError: C{NOT_RUNNING} outside the running hub.
        """
        from pz.servicecache import findServices

        if self._services is None:
            raise ZoneError("NOT_RUNNING", "the zone's service cache is known to the running hub")
        return sorted(findServices(self._services.cache()),
                      key=lambda row: (row["device"], row["service"]))

    def _hubSync(self):
        if self._sync is None:
            raise ZoneError("NOT_RUNNING", "this hub does not synchronise the zone's items")
        return self._sync

    def _syncRow(self, deviceId: str, conflicts: dict) -> dict:
        status = self._sync.deviceStatus(deviceId)
        return {"device": deviceId, "state": status["state"],
                "last_sync": isoTime(status["last_sync"]),
                "conflicts": conflicts.get(deviceId, 0)}

    def _conflictCounts(self) -> dict:
        counts: dict = {}
        for entry in self._hubSync().engine.conflicts():
            counts[entry["origin"]] = counts.get(entry["origin"], 0) + 1
        return counts

    def syncStatus(self) -> list:
        """
        Each unrevoked device's synchronisation with the hub, by id:
        C{device}, C{state} (C{in step}, C{syncing} or C{unknown}: see
        L{pzh.zonesync.HubSync.deviceStatus}), C{last_sync} (ISO time or
        null) and C{conflicts} (the hub's conflict copies of versions that
        device made).

        @raise ZoneError: C{NOT_RUNNING} when the hub does not synchronise.
        """
        counts = self._conflictCounts()
        return [self._syncRow(device.id, counts) for device in self._store.listDevices()
                if device.revoked is None]

    def syncDevice(self, deviceId: str) -> dict:
        """
        One device's row, as in L{syncStatus}.

        @raise ZoneError: C{NOT_RUNNING} as there.
        """
        return self._syncRow(deviceId, self._conflictCounts())

    def syncConflicts(self) -> list:
        """
        The hub's conflict copies, oldest first: C{path} (the item),
        C{device} (who made the losing version: a device id, or the zone
        id for the hub's own), C{time} (that version's, ISO) and
        C{kept_as} (under the hub's C{DATA/zone/}).

        @raise ZoneError: C{NOT_RUNNING} when the hub does not synchronise.
        """
        return [{"path": c["path"], "device": c["origin"], "time": c["time"],
                 "kept_as": c["kept_as"]} for c in self._hubSync().engine.conflicts()]
