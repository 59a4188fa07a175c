# -*- test-case-name: tests.pzp.test_peersync -*-
"""
Peer-triggered synchronisation: two devices of a zone hand each other the
zone's certificates, CRL and policy over their direct peer link, so a
revocation or a policy change spreads even while the hub is out of reach.

The webinos Synchronisation specification ("Peer connections", "Update
signal"): devices of the same personal zone trigger synchronisation by
sending update messages; typically the items are certificates, revocations
and policies.  Three messages on the peer link::

    announcer                                     receiver
      |-- Update_Hash  items {path: hash}, crlNumber, policyTime -->|
      |<-- Update_Change  need [path...] -----------------------------|
      |-- Update_Data  path, data (base64), one frame per item ----->|

An announcement goes out when a link comes up (both ends) and whenever one
of these items changes on this device: reported (L{PeerSync.localChanged})
or found by looking at the files every L{WATCH_INTERVAL} seconds while a
link is up, whoever changed them (the hub's synchronisation, the person,
the revocation worker, another peer).  Only these items cross:
C{crl.pem}, C{certificates/trusted-pzp/*.pem} and C{policies/policy.xml}.
A hash is the synchronisation engine's item hash (L{manifestOf}: SHA-256
of the bytes for the PEM items, of the canonical form for the policy, so a
reformatted policy is no change), in lower-case hex.

The receiver asks only for what it would take, and checks everything again
when the data comes, before anything is written:

 - the CRL, only if the announced number is above the one held; it must be
   the zone CA's and newer (L{pki.checkCRLUpdate}, the rule every CRL a
   device takes in follows), and then goes where a CRL the hub pushes goes
   (the C{crlReceived} given: the revocation worker stores it, and revoked
   peers' links close);
 - a trusted device certificate, only one this device does not hold (the
   hub's copy, replaced at a renewal, is never overwritten by a peer's): it
   must be a device certificate of this zone, issued by the zone CA and not
   revoked by the CRL held, at the path named after its device;
 - the policy, only if it differs and the announced time is later than
   this device's own (the later edit wins, as the hub's conflict rule
   says; equal times take nothing, so two devices never swap their
   policies back and forth): it must be a policy the decision point
   takes (L{pz.policy.item.checkPolicy}); one that is not is neither
   announced nor taken.  Only a device whose preferences select policies (and that is
   not constrained) announces, asks for or sends the policy, as for the
   hub's synchronisation.

Certificates and the policy are written through the L{ItemTree}
(atomically); the device's own synchronisation then sees them as local
changes: a trusted certificate the hub holds is merely agreed, one it does
not is refused by the hub (one-way item) and replaced by the hub's copy;
the policy reaches the hub as an ordinary update.  An older CRL from the
hub's synchronisation is refused by the device's validator once the newer
one is held, so a peer's CRL is never taken back.

Bad input (a path outside the set, bad base64, data not asked for, a hash
that does not match, a forged or older CRL, a certificate of another CA,
an item too large for a frame) is refused with a log line (rate-limited)
and changes nothing; L{PeerSync.status} counts the refusals and keeps the
last few.  Nothing is answered on the wire: the exchange needs no error
messages (an item refused is asked for again only when the peer next
announces it), and a peer sending garbage gets no echo to work with.
"""

import base64
import binascii
import json
import math
import os
from collections import deque
from datetime import datetime, timezone
from typing import Callable, Optional

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.lograte import RateLimitedLog
from pz.policy.item import checkPolicy
from pz.sync.chunkers import manifestOf
from pz.sync.items import classify, selection
from pz.sync.zoneitems import CRL, trustedDevicePath
from pz.tls import verifyZoneDevice
from pz.wire import Envelope, encodeEnvelope, newMessageId

__all__ = ["PeerSync", "POLICY", "TRUSTED_PZP", "MAX_ANNOUNCED", "WATCH_INTERVAL", "peerSynced"]

#: The zone's policy among the items.
POLICY = "policies/policy.xml"
#: The device's preferences among the items (which categories it syncs).
PREFERENCES = "preferences.json"
#: The folder of the trusted device certificates among the items.
TRUSTED_PZP = "certificates/trusted-pzp/"
#: The most paths one announcement or one request may name: a zone's
#: devices, with room to spare.
MAX_ANNOUNCED = 4096

#: Seconds between looks at the items' files for changes nobody reported,
#: while a peer link is up (the synchronisation engine's scan interval).
WATCH_INTERVAL = 2.0

_HEX = frozenset("0123456789abcdef")


def peerSynced(path) -> bool:
    """
    Whether C{path} is an item peers synchronise: the CRL, a trusted device
    certificate or the policy (and a valid item path).
    """
    if not isinstance(path, str):
        return False
    try:
        classify(path)
    except ZoneError:
        return False
    return path in (CRL, POLICY) or (path.startswith(TRUSTED_PZP) and path.count("/") == 2)


def _isHash(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _isTime(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _itemHash(path: str, data: bytes) -> str:
    """
    The synchronisation engine's hash of C{data} as item C{path}, in hex.

    @raise ZoneError: C{SYNC_BAD_ITEM} when C{data} is not valid for its
        kind (a policy that is not XACML).
    """
    return manifestOf(classify(path).kind, data).hash.hex()


class _Asked:
    """
    What this device asked one peer for, from its latest announcement: the
    hash each item must have, and the policy's time.
    """

    def __init__(self, hashes: dict, policyTime: Optional[float]) -> None:
        self.hashes = hashes
        self.policyTime = policyTime


class PeerSync:
    """
    The peer-sync worker of one device: announces its items on each peer
    link, asks for what it lacks, checks and installs what comes.

    @ivar refused: how many messages or items were refused so far.
    @ivar installed: how many items were taken from peers so far.
    @ivar lastRefusal: the L{ZoneError} of the latest refusal, or None.
    """

    _log = Logger()

    def __init__(self, clock, tree, credentials: Callable, crlReceived: Callable,
                 versionTime: Optional[Callable] = None, interval: float = WATCH_INTERVAL,
                 constrained: bool = False) -> None:
        """
        @param clock: for certificate validity and the log's rate limit.
        @param tree: the device's L{pz.sync.items.ItemTree}.
        @param credentials: returns the device's current credentials
            (C{caCert}, C{crl}; C{crl} is the CRL held).
        @param crlReceived: C{crlReceived(crl)}, where a CRL the hub pushes
            goes: it stores it (updating the CRL C{credentials} returns)
            and closes revoked peers' links.
        @param versionTime: C{versionTime(path)}, the time of this
            device's version of an item (the synchronisation engine's
            record), or None if it has none; the file's modification time
            by default.
        @param interval: seconds between looks at the items' files while a
            peer link is up: a change found (whoever made it) is announced.
        @param constrained: the device synchronises only certificates and
            the CRL (L{pz.sync.items.CONSTRAINED}); otherwise the policy
            crosses only if the device's preferences select policies, as
            for the hub's synchronisation.
        """
        self._clock = clock
        self._tree = tree
        self._credentials = credentials
        self._crlReceived = crlReceived
        self._versionTime = versionTime or self._modified
        self._links: dict = {}
        self._asked: dict = {}
        self._interval = interval
        self._constrained = constrained
        self._watch: Optional[LoopingCall] = None
        self._seen: Optional[dict] = None
        self._lines = RateLimitedLog(self._log, clock.seconds)
        self.refused = 0
        self.installed = 0
        self.lastRefusal: Optional[ZoneError] = None
        self._recent: deque = deque(maxlen=8)

    # --- the face to Peer mode --------------------------------------------------

    def linkUp(self, link) -> None:
        """
        C{link} is now the peer link to C{link.peerId}: announce this
        device's items on it.
        """
        self._links[link.peerId] = link
        self._asked.pop(link.peerId, None)
        if self._watch is None:
            self._seen = self._signatures()
            self._watch = LoopingCall(self._look)
            self._watch.clock = self._clock
            self._watch.start(self._interval, now=False)
        self._send(link, self._announcement())

    def linkDown(self, deviceId: str) -> None:
        """
        The peer link to C{deviceId} is gone: forget it and what was asked
        of it.
        """
        self._links.pop(deviceId, None)
        self._asked.pop(deviceId, None)
        if not self._links and self._watch is not None:
            self._watch.stop()
            self._watch = None

    def localChanged(self) -> None:
        """
        The CRL, a trusted certificate or the policy changed on this device
        (from the hub, the person or a peer): announce again on every link.
        Changes nobody reports are found by looking at the files every
        C{interval} seconds.
        """
        if not self._links:
            return
        self._seen = self._signatures()
        payload = self._announcement()
        for link in list(self._links.values()):
            self._send(link, payload)

    def received(self, link, payload: dict) -> None:
        """
        An C{Update_*} message from the peer at the end of C{link}.
        """
        handler = {"Update_Hash": self._onHash, "Update_Change": self._onChange,
                   "Update_Data": self._onData}.get(payload.get("status"))
        if handler is None:
            self._refuse(link, ZoneError("UNKNOWN_MESSAGE", "not a peer sync message"))
            return
        if self._links.get(link.peerId) is not link:
            self._refuse(link, ZoneError("NOT_CONNECTED", "not the current link to that peer"))
            return
        try:
            handler(link, payload)
        except ZoneError as e:
            self._refuse(link, e)
        except Exception:
            # A failure here (a disk error writing an item) is this
            # device's, not the peer's: logged in full, the link kept.
            self._log.failure("peer sync: handling {name} from {peer}",
                              name=payload.get("status"), peer=link.peerId)
            self._refuse(link, ZoneError("INTERNAL"))

    def status(self) -> dict:
        """
        Counters and the latest refusals, for status output.
        """
        return {"installed": self.installed, "refused": self.refused,
                "recent_refusals": list(self._recent)}

    # --- announcing ---------------------------------------------------------------

    def _modified(self, path: str) -> Optional[float]:
        try:
            return os.stat(self._tree.resolve(path), follow_symlinks=False).st_mtime
        except (OSError, ZoneError):
            return None

    def _policySelected(self) -> bool:
        """
        Whether this device synchronises policies (its preferences, which
        the hub's synchronisation follows too).
        """
        try:
            prefs = json.loads(self._tree.read(PREFERENCES) or b"{}")
        except (OSError, ValueError, ZoneError):
            prefs = {}
        deviceId = self._credentials().deviceId
        return "policies" in selection(prefs if isinstance(prefs, dict) else {}, deviceId,
                                       self._constrained)

    def _paths(self) -> list:
        """
        The peer-synced items' paths that may exist here (and are selected).
        """
        paths = [CRL, POLICY] if self._policySelected() else [CRL]
        folder = os.path.join(self._tree.root, *TRUSTED_PZP.rstrip("/").split("/"))
        try:
            with os.scandir(folder) as entries:
                paths += sorted(TRUSTED_PZP + e.name for e in entries
                                if e.is_file(follow_symlinks=False))
        except OSError:
            pass
        return [p for p in paths if peerSynced(p)][:MAX_ANNOUNCED]

    def _signatures(self) -> dict:
        """
        What the files look like (size, times, inode), cheap to compare:
        when it differs from the last announcement's, something changed.
        """
        seen = {}
        for path in self._paths():
            try:
                st = os.stat(os.path.join(self._tree.root, *path.split("/")), follow_symlinks=False)
            except OSError:
                continue
            seen[path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        return seen

    def _look(self) -> None:
        try:
            if self._signatures() != self._seen:
                self.localChanged()
        except Exception:
            self._log.failure("peer sync: looking at the items")

    def _inventory(self) -> dict:
        """
        This device's peer-synced items: C{{path: hex hash}}.  A policy that
        does not parse is left out (the engine reports it), and so is
        anything that cannot be read.
        """
        items = {}
        for path in self._paths():
            try:
                data = self._tree.read(path)
                if data is not None:
                    if path == POLICY:
                        checkPolicy(path, data)
                    items[path] = _itemHash(path, data)
            except (OSError, ZoneError):
                continue
        return items

    def _announcement(self) -> dict:
        payload = {"status": "Update_Hash", "items": self._inventory(),
                   "crlNumber": self._heldNumber()}
        if POLICY in payload["items"]:
            when = self._versionTime(POLICY)
            if when is not None:
                payload["policyTime"] = when
        return payload

    def _heldNumber(self) -> int:
        crl = self._credentials().crl
        return pki.crlNumber(crl) if crl is not None else -1

    def _send(self, link, payload: dict) -> bool:
        """
        Send C{payload} to the peer, unless its frame would be larger than
        the link takes.
        """
        data = encodeEnvelope(Envelope("prop", link.localId, link.peerId, newMessageId(), payload))
        if len(data) > link.MAX_LENGTH:
            self._lines.info("not sending {name} {path} to {peer}: {size} bytes is over the "
                             "frame limit of {limit}", name=payload["status"],
                             path=payload.get("path", ""), peer=link.peerId, size=len(data),
                             limit=link.MAX_LENGTH)
            return False
        link.sendString(data)
        return True

    # --- receiving ----------------------------------------------------------------

    def _refuse(self, link, error: ZoneError) -> None:
        self.refused += 1
        self.lastRefusal = error
        self._recent.append({"peer": link.peerId, "code": error.code, "message": error.message})
        self._lines.info("peer sync: refused what {peer} sent: {code}: {message}",
                         peer=link.peerId, code=error.code, message=error.message)

    def _onHash(self, link, payload: dict) -> None:
        items = payload.get("items")
        number = payload.get("crlNumber")
        policyTime = payload.get("policyTime")
        if not isinstance(items, dict) or len(items) > MAX_ANNOUNCED:
            raise ZoneError("SYNC_BAD_MESSAGE",
                            f"Update_Hash needs items, an object of at most {MAX_ANNOUNCED} paths")
        if not isinstance(number, int) or isinstance(number, bool):
            raise ZoneError("SYNC_BAD_MESSAGE", "Update_Hash needs crlNumber, an integer")
        if policyTime is not None and not _isTime(policyTime):
            raise ZoneError("SYNC_BAD_MESSAGE", "policyTime must be a time in seconds")
        for path, value in items.items():
            if not peerSynced(path):
                raise ZoneError("SYNC_BAD_PATH",
                                f"{path[:80]!r} is not an item peers synchronise")
            if not _isHash(value):
                raise ZoneError("SYNC_BAD_MESSAGE", f"the hash of {path} is not 64 hex digits")
        mine = self._inventory()
        need = []
        if CRL in items and items[CRL] != mine.get(CRL) and number > self._heldNumber():
            need.append(CRL)
        need += sorted(p for p in items if p.startswith(TRUSTED_PZP) and p not in mine)
        if (POLICY in items and items[POLICY] != mine.get(POLICY) and policyTime is not None
                and self._policySelected()):
            own = self._versionTime(POLICY) if POLICY in mine else None
            if own is None or policyTime > own:
                need.append(POLICY)
        asked = self._asked.get(link.peerId)
        if asked is None or len(asked.hashes) + len(need) > MAX_ANNOUNCED:
            asked = self._asked[link.peerId] = _Asked({}, policyTime)
        # An item asked for before and still on its way (the peer announced
        # again meanwhile) is not asked for twice.
        fresh = [p for p in need if asked.hashes.get(p) != items[p]]
        asked.hashes.update((p, items[p]) for p in need)
        if POLICY in fresh:
            asked.policyTime = policyTime
        if fresh:
            self._send(link, {"status": "Update_Change", "need": fresh})

    def _onChange(self, link, payload: dict) -> None:
        need = payload.get("need")
        if (not isinstance(need, list) or len(need) > MAX_ANNOUNCED
                or not all(peerSynced(p) for p in need)):
            raise ZoneError("SYNC_BAD_PATH", "Update_Change needs need, a list of items "
                            "peers synchronise")
        paths = set(self._paths())
        for path in dict.fromkeys(need):
            if path == POLICY and path not in paths:
                self._lines.info("peer sync: not sending {path} to {peer}: policies are not "
                                 "synchronised here", path=path, peer=link.peerId)
                continue
            try:
                data = self._tree.read(path)
            except (OSError, ZoneError) as e:
                data = None
                self._lines.info("peer sync: cannot read {path}: {why}", path=path, why=e)
            if data is not None:
                self._send(link, {"status": "Update_Data", "path": path,
                                  "data": base64.b64encode(data).decode("ascii")})

    def _onData(self, link, payload: dict) -> None:
        path, text = payload.get("path"), payload.get("data")
        asked = self._asked.get(link.peerId)
        if not isinstance(path, str) or asked is None or path not in asked.hashes:
            raise ZoneError("SYNC_NOT_ASKED", f"{str(path)[:80]!r} was not asked of this peer")
        if not isinstance(text, str):
            raise ZoneError("SYNC_BAD_MESSAGE", f"the data of {path} is not base64 text")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ZoneError("SYNC_BAD_MESSAGE", f"the data of {path} is not valid base64") from None
        if _itemHash(path, data) != asked.hashes[path]:
            # Still asked for: the peer may have announced a newer version
            # since, whose data follows.
            raise ZoneError("SYNC_HASH_MISMATCH", f"{path} does not have the hash announced")
        del asked.hashes[path]
        if path == CRL:
            self._takeCRL(data)
        elif path == POLICY:
            if not self._policySelected():
                raise ZoneError("SYNC_NOT_SELECTED", "policies are not synchronised here")
            checkPolicy(path, data)
            self._write(path, data, asked.policyTime)
        elif not self._takeCertificate(path, data):
            return
        self.installed += 1
        self._log.info("peer sync: took {path} from {peer}", path=path, peer=link.peerId)
        self.localChanged()

    def _takeCRL(self, data: bytes) -> None:
        creds = self._credentials()
        try:
            crl = pki.loadCRL(data)
            pki.checkCRLUpdate(crl, creds.caCert, creds.crl)
        except pki.CertificateError as e:
            raise ZoneError("CRL_INVALID", e.message) from None
        self._crlReceived(crl)

    def _takeCertificate(self, path: str, data: bytes) -> bool:
        """
        Install a trusted device certificate the peer sent, once checked;
        return whether it was written.
        """
        if self._tree.read(path) is not None:
            # Taken meanwhile (from the hub): the hub's copy stands.
            return False
        creds = self._credentials()
        now = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
        try:
            identity = verifyZoneDevice(pki.loadCertificate(data), creds.caCert, creds.crl, now)
        except pki.CertificateError as e:
            raise ZoneError(e.code, f"{path}: {e.message}") from None
        if trustedDevicePath(identity) != path:
            raise ZoneError("CERT_INVALID", f"{path} holds the certificate of {identity}")
        self._write(path, data)
        return True

    def _write(self, path: str, data: bytes, when: Optional[float] = None) -> None:
        self._tree.write(path, data)
        if when is not None:
            # The version keeps the time of the edit, not of this copy: the
            # later-edit rule then compares edits with any third device.
            os.utime(self._tree.resolve(path), (when, when), follow_symlinks=False)
