# -*- test-case-name: tests.pzh.test_friendshare -*-
"""
What a zone shares with its friend zones, over the PZH-PZH links, and what
they share with it.

The webinos synchronisation specification keeps a zone's items inside the
zone; the only thing it says crosses is the trust in another zone ("trusted
PZH certificates ... governed by policies regarding permissions").  So
nothing syncs to another zone unless the owner's policy says so, and what
does is decided here, at the hub, the one place every item leaving the
zone passes:

 - B{the CRL, always}: a friend that accepts this zone's devices on its
   peer ports needs this zone's revocations, or a revoked device would
   stay welcome there until its certificate expires;
 - B{an item the policy permits}: for each of this zone's items of a
   shareable kind (L{pz.sync.items.SHAREABLE}: preferences, user details,
   context, user data) the policy is asked with subject the friend zone
   (relation C{friend}), resource the item's path and action C{sync}, and
   it is shared only if a rule naming that action permits it: the default
   policy permits nothing to another zone, and a rule written for calls
   (even "zone B may call everything") shares nothing.  A rule written
   with C{pzctl policy add --subject ZONE --item PATH} shares one item or
   a folder.  A prompt effect counts as deny here: no one is there to
   answer it.  Each decision and its rule are logged once per change.

Three messages on the zone link, addressed to the other hub::

    sharing hub                                 receiving hub
      |-- zoneShared  items {path: sha256} (all it shares) -->|
      |<-- zoneSharedNeed  paths [...] -----------------------|
      |-- zoneItem  path, data (base64), one per path ------->|

The sharing hub announces its whole list when the link comes up and
whenever it changes (looked at every C{interval} seconds: the items, the
policy, the CRL).  The receiving hub keeps what it is given under
C{items/friends/ZONE/} (L{pz.sync.zoneitems.friendFolder}): C{crl.pem} and
C{items/PATH}; it removes what is no longer listed, asks for what it lacks,
and checks each item when it comes (listed, its hash, the CRL signed by
that friend's CA and not older than the one held) before writing it.
Those are one-way items of the hub's, so they reach this zone's devices
like the trusted certificates do, and nobody re-shares them (a friend's
items are not shareable).  When this zone stops trusting a friend its
folder is removed.

Bounds: an item over L{MAX_SHARED_ITEM} bytes is not shared (logged), at
most L{MAX_SHARED_ITEMS} items per friend; bad input is refused with an
C{error} naming the problem and changes nothing.
"""

import base64
import binascii
import hashlib
from typing import Optional

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.lograte import RateLimitedLog
from pz.sync.items import sharedRule
from pz.sync.zoneitems import CRL, friendCRLPath, friendFolder, friendItemPath

__all__ = ["FriendShare", "MAX_SHARED_ITEM", "MAX_SHARED_ITEMS"]

#: The largest item shared with a friend, in bytes: one frame carries it.
MAX_SHARED_ITEM = 256 * 1024

#: The most items one zone shares with one friend, and the longest path
#: of one: so that one announcement fits in a frame.
MAX_SHARED_ITEMS = 500
MAX_SHARED_PATH = 900


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sharingRequest(friendZone: str, path: str):
    """
    The policy request: may C{friendZone} have this zone's item C{path}?
    """
    from pz.policy import Request, Resource, Subject

    return Request(subject=Subject(zone=friendZone, device=None, user=None, relation="friend"),
                   resource=Resource(service=None, method=None, path=path), action="sync")


def _namesSharing(rule) -> bool:
    """
    Whether C{rule} is about sharing: its target asks for the action
    C{sync}.  A rule written for calls, even one letting a zone call every
    service, shares nothing.
    """
    return rule is not None and any(
        match.attribute == "urn:pz:action" and match.function == "equal"
        and match.value == "sync"
        for allOfs in rule.target.anyOf for allOf in allOfs for match in allOf)


class FriendShare:
    """
    This hub's side of sharing with friend zones: what it offers each
    linked friend, and what it keeps of theirs.
    """

    _log = Logger()

    def __init__(self, sync, authority, friends, pdp, clock, interval: float = 2.0) -> None:
        """
        @param sync: the hub's L{pzh.zonesync.HubSync}: its items, their
            records, and the writes devices then get.
        @param authority: the zone's authority, for its current CRL.
        @param friends: the L{pzh.friends.Friends}: their CAs; observed,
            so an untrusted friend's folder goes.
        @param pdp: the zone's policy (L{pz.policy.item.ItemPolicy}).
        """
        self._sync = sync
        self._authority = authority
        self._friends = friends
        self._pdp = pdp
        self._clock = clock
        self._interval = interval
        self._links: dict = {}
        # What was last announced to each friend, {path: sha256}, and the
        # hashes of this zone's items, by their sync record's hash.
        self._announced: dict = {}
        self._hashes: dict = {}
        # The last decision per friend and path, and the lists each friend
        # last announced here.
        self._decided: dict = {}
        self._offered: dict = {}
        self._tooLarge: set = set()
        self.refusals = RateLimitedLog(Logger(namespace="pzh.friendshare"), clock.seconds)
        self._loop: Optional[LoopingCall] = None
        friends.observe(self)

    def start(self) -> None:
        self._loop = LoopingCall(self.offerAll)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    # -- the links ------------------------------------------------------------

    def linkUp(self, link) -> None:
        """
        A zone link came up: announce everything afresh (the friend may
        have lost what it was given, or missed a change).
        """
        self._links[link.friendZone] = link
        self._announced.pop(link.friendZone, None)
        self.offer(link.friendZone)

    def linkDown(self, zoneId: str) -> None:
        self._links.pop(zoneId, None)
        self._announced.pop(zoneId, None)
        self._offered.pop(zoneId, None)

    def friendAdded(self, record) -> None:
        """
        Nothing to do until its link comes up.
        """

    def friendRemoved(self, zoneId: str) -> None:
        """
        This zone no longer trusts C{zoneId}: what it shared goes, here
        and, with the next sync, on every device.
        """
        self.linkDown(zoneId)
        self._decided.pop(zoneId, None)
        self.forget(zoneId)

    def forget(self, zoneId: str) -> None:
        """
        Remove everything zone C{zoneId} shared with this one.
        """
        folder = friendFolder(zoneId)
        for path in self._heldPaths(folder):
            self._sync.putItem(path, None)

    # -- sharing --------------------------------------------------------------

    def offerAll(self) -> None:
        """
        Announce to every linked friend what changed; one that fails (its
        items unreadable for a moment) is logged and tried again at the
        next look, and stops neither the others nor the looking.
        """
        for zoneId in list(self._links):
            try:
                self.offer(zoneId)
            except Exception:
                self._log.failure("sharing with zone {zone}", zone=zoneId)

    def offer(self, zoneId: str) -> None:
        """
        Announce to C{zoneId} what this zone shares with it now, if that
        changed since the last announcement.
        """
        link = self._links.get(zoneId)
        if link is None or link.transport is None or link.transport.disconnecting:
            return
        shared = self.sharedWith(zoneId)
        if shared == self._announced.get(zoneId):
            return
        self._announced[zoneId] = shared
        link.sendMessage(zoneId, {"status": "zoneShared", "items": shared})

    def sharedWith(self, zoneId: str) -> dict:
        """
        C{{path: sha256}} of what this zone shares with C{zoneId}: its CRL,
        and each shareable item its policy permits.
        """
        shared = {CRL: _digest(self._authority.crlPEM)}
        # Decisions are asked again only when a new policy is in force.
        generation = getattr(self._pdp, "generation", None)
        decided, self._decided[zoneId] = self._decided.get(zoneId, {}), {}
        for rec in self._sync.state.items():
            if rec.deleted or len(rec.path) > MAX_SHARED_PATH or sharedRule(rec.path) is None:
                continue
            if len(shared) > MAX_SHARED_ITEMS:
                self.refusals.info("more than {count} items would be shared with zone {zone}: "
                                   "the first {count} by path are", count=MAX_SHARED_ITEMS,
                                   zone=zoneId)
                break
            if rec.size > MAX_SHARED_ITEM:
                if rec.path not in self._tooLarge:
                    self._tooLarge.add(rec.path)
                    self._log.info("{path} is {size} bytes, over the {limit} shared with friend "
                                   "zones: not shared", path=rec.path, size=rec.size,
                                   limit=MAX_SHARED_ITEM)
                continue
            if self._permits(zoneId, rec.path, generation, decided.get(rec.path)):
                digest = self._hashOf(rec)
                if digest is not None:
                    shared[rec.path] = digest
        return shared

    def _permits(self, zoneId: str, path: str, generation, known) -> bool:
        """
        Whether the policy lets C{zoneId} have C{path}; C{known} is the
        last decision, C{(permitted, rule, generation)}, reused while the
        policy's generation is the same.  A changed decision is logged.
        """
        if known is not None and generation is not None and known[2] == generation:
            self._decided[zoneId][path] = known
            return known[0]
        decision = self._pdp.decide(_sharingRequest(zoneId, path))
        permitted = (decision.effect == "Permit" and decision.prompt is None
                     and _namesSharing(self._pdp.rule(decision.ruleId)))
        if known is None or known[:2] != (permitted, decision.ruleId):
            self._log.info("policy {effect} {subject} sync {path} rule={rule}",
                           effect="Permit" if permitted else "Deny", subject=zoneId, path=path,
                           rule=decision.ruleId)
        self._decided[zoneId][path] = (permitted, decision.ruleId, generation)
        return permitted

    def _hashOf(self, rec) -> Optional[str]:
        """
        The SHA-256 of the item's bytes as they would be sent, hashed again
        only when its sync record changed.
        """
        known = self._hashes.get(rec.path)
        if known is not None and known[0] == rec.hash:
            return known[1]
        data = self._read(rec.path)
        if data is None:
            return None
        digest = _digest(data)
        self._hashes[rec.path] = (rec.hash, digest)
        return digest

    def _read(self, path: str) -> Optional[bytes]:
        if path == CRL:
            return self._authority.crlPEM
        try:
            return self._sync.tree.read(path)
        except (OSError, ZoneError):
            return None

    def needed(self, link, paths) -> None:
        """
        The friend asked for C{paths}: send each that is still shared as
        announced.  One announced no more (the friend asked before the
        newer list came) or changed since is not sent: the newer list
        says what to ask for.
        """
        zoneId = link.friendZone
        announced = self._announced.get(zoneId, {})
        if (not isinstance(paths, list) or len(paths) > MAX_SHARED_ITEMS + 1
                or not all(isinstance(path, str) for path in paths)):
            raise ZoneError("BAD_ENVELOPE", "'paths' must be a list of shared paths")
        for path in paths:
            if path not in announced:
                continue
            data = self._read(path)
            if data is None or _digest(data) != announced[path]:
                continue
            link.sendMessage(zoneId, {"status": "zoneItem", "path": path,
                                      "data": base64.b64encode(data).decode("ascii")})

    # -- what friends share here ----------------------------------------------

    def heldFrom(self, zoneId: str) -> list:
        """
        The paths (as zone C{zoneId} names them) of what it shared that
        this zone holds.
        """
        folder = friendFolder(zoneId)
        items = folder + "items/"
        return sorted(path[len(items):] if path.startswith(items) else path[len(folder):]
                      for path in self._heldPaths(folder))

    def offered(self, link, items) -> None:
        """
        A friend announced what it shares: remove what it no longer does,
        ask for what is missing or different.
        """
        zoneId = link.friendZone
        if not isinstance(items, dict) or len(items) > MAX_SHARED_ITEMS + 1:
            raise ZoneError("BAD_ENVELOPE", "'items' must map at most "
                                            f"{MAX_SHARED_ITEMS + 1} paths to hashes")
        for path, digest in items.items():
            self._localPath(zoneId, path)
            if not (isinstance(digest, str) and len(digest) == 64
                    and all(c in "0123456789abcdef" for c in digest)):
                raise ZoneError("BAD_ENVELOPE", f"the hash of {path[:80]!r} is not a SHA-256")
        self._offered[zoneId] = dict(items)
        wanted = {self._localPath(zoneId, path): digest for path, digest in items.items()}
        for held in self._heldPaths(friendFolder(zoneId)):
            if held not in wanted and held != friendCRLPath(zoneId):
                # A friend never takes back its revocations by omission.
                self._sync.putItem(held, None)
        need = []
        for path, digest in items.items():
            data = self._heldData(self._localPath(zoneId, path))
            if data is None or _digest(data) != digest:
                need.append(path)
        if need:
            link.sendMessage(zoneId, {"status": "zoneSharedNeed", "paths": need})

    def itemReceived(self, link, path, data) -> None:
        """
        One item a friend shares: checked against what it announced (and
        a CRL against its CA and the one held), then kept.
        """
        zoneId = link.friendZone
        expected = self._offered.get(zoneId, {}).get(path) if isinstance(path, str) else None
        if expected is None:
            raise ZoneError("BAD_REQUEST", f"zone {zoneId} did not announce {str(path)[:80]!r}")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ZoneError("BAD_ENVELOPE", f"the data of {path[:80]!r} is not base64") from None
        if _digest(raw) != expected:
            raise ZoneError("SYNC_BAD_ITEM", f"{path[:80]!r} does not match its announced hash")
        local = self._localPath(zoneId, path)
        if path == CRL:
            self._checkCRL(zoneId, raw, local)
        self._sync.putItem(local, raw)

    def _checkCRL(self, zoneId: str, raw: bytes, local: str) -> None:
        record = self._friends.get(zoneId)
        if record is None:
            raise ZoneError("ZONE_UNTRUSTED", f"zone {zoneId} is not a friend of this zone")
        held = self._heldData(local)
        try:
            crl = pki.loadCRL(raw)
            heldCRL = pki.loadCRL(held) if held is not None else None
            pki.checkCRLUpdate(crl, pki.loadCertificate(record.caPEM), heldCRL, allowSame=True)
        except (pki.CertificateError, ValueError) as e:
            raise ZoneError("CRL_INVALID", f"zone {zoneId}'s CRL: {getattr(e, 'message', e)}")

    def _localPath(self, zoneId: str, path) -> str:
        """
        Where a friend's shared C{path} is kept here.

        @raise ZoneError: C{SYNC_BAD_PATH} for a path no zone shares.
        """
        if path == CRL:
            return friendCRLPath(zoneId)
        if not isinstance(path, str) or sharedRule(path) is None:
            raise ZoneError("SYNC_BAD_PATH", f"{str(path)[:80]!r} is not an item a zone shares")
        if len(path) > MAX_SHARED_PATH:
            raise ZoneError("SYNC_BAD_PATH", f"{path[:80]!r} is too long to share")
        return friendItemPath(zoneId, path)

    def _heldPaths(self, folder: str) -> list:
        return self._sync.itemsUnder(folder)

    def _heldData(self, path: str) -> Optional[bytes]:
        try:
            return self._sync.tree.read(path)
        except (OSError, ZoneError):
            return None
