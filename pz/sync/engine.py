# -*- test-case-name: tests.pz.sync.test_engine -*-
"""
The synchronisation engine: the zone's items on every device, only the
changed chunks on the wire, no change ever lost.

This is the protocol of the webinos Synchronisation specification, run by
the same code on the hub and on a device; the role picks the message names.
The hub pushes with C{Sync_Hash} / C{Sync_Data} and the device answers with
C{Sync_Change} / C{Sync_Ack}; the device pushes with C{Update_Hash} /
C{Update_Data} and the hub answers with C{Update_Change} / C{Update_Ack}::

    sender                                   receiver
      |-- *_Hash  path, version, hash, base, ops -->|  ops: the chunk list as a
      |   (pages: part 0..n, more)                  |  difference from base
      |<-- *_Change  need: [[start, count], ...] ---|  the chunks it lacks
      |--- *_Data  [[index, base64], ...] --------->|  bounded frames
      |<-- *_Ack  path, hash ------------------------|  written: both agree

One round trip, as the specification's rsync-like algorithm has, but with a
strong hash (SHA-256) over chunks cut by file type (see L{pz.sync.chunkers})
in place of rsync's weak checksum and MD4.  The chunk list itself is sent as
the difference from the version the receiver last acknowledged
(L{pz.sync.hashlist}), so a small edit of a large file costs a handful of
hashes and the changed chunks.

Triggers: a device sends C{Sync_Hello} when its link is up and when the
person asks (L{SyncEngine.syncNow}); the hub answers with C{Sync_Plan} and
sends every selected item that device has not acknowledged, while the device
sends its own unacknowledged changes.  A scan of the items folder every
C{scanInterval} seconds (or L{SyncEngine.localChange}) finds local changes;
a change reaching the hub goes on to every other connected device at once.

Why the hub decides conflicts: the specification makes the hub the zone's
central authority ("In synchronisation between the PZH and PZPs, the PZH
acts as a central authority").  Every update passes through it, so one
place, with one clock, applies the rule (L{pz.sync.conflicts}): the later
version wins when its time lies within 5 s of the hub's clock, otherwise the
hub's version.  The loser is kept where it lives: the hub keeps its own
losing copy; a device whose update lost is told so (C{SYNC_CONFLICT}, with
the winner), then receives the winner and keeps its own copy.  A device that
receives a hub version while it holds an unacknowledged change of its own
answers C{SYNC_PENDING} and the hub decides when the update arrives.

One-way items (trusted certificates, the CRL) are never taken from a device
(C{SYNC_ONE_WAY}); the hub answers by sending its copy back.  Deletions are
tombstones (path, origin, time) that flow like versions.  A missing or empty
items folder is an error in status, never a mass deletion.

Nothing is written before the whole item is there and checked: chunk hashes
on arrival, the whole item's hash, the typed parse, the caller's validators
(the CRL's signature and number); then the items tree renames a fsynced
temporary file into place.  A link that drops in the middle leaves the old
item whole; the next round converges from what both sides last agreed, and
what was in flight is offered again (its acknowledgement may have been lost).

Each item offered to a peer is an L{pz.sync.transfer.Outgoing} whose
answers are decided by a small Automat machine (offered, sending, waiting
for the acknowledgement, done); the receiver's side is an
L{pz.sync.transfer.Incoming} with its L{pz.sync.transfer.Assembler}.  A
sender has at most C{maxInFlight} items in flight per peer and queues the
rest; a receiver refuses more than C{maxIncoming} at once (C{SYNC_BUSY}),
and the sender tries those again a second later.
"""

import base64
import json
import os
import stat
from typing import Callable, Optional

import attrs
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz.errors import CODES, ZoneError
from pz.timefmt import isoTime
from pz.sync import items as _items
from pz.sync.chunkers import encodeHash, manifestOf, manifestOfFile
from pz.sync.conflicts import updateWins
from pz.sync.hashlist import applyOps, diffOps, fullOps, pages
from pz.sync.messages import (
    MESSAGE_NAMES_TO_DEVICE, MESSAGE_NAMES_TO_HUB, encodeOptionalHash, encodeVersion,
    frameBudget, namesFor, parseAck, parseChange, parseData, parseHash, parseHello, parsePlan, refusal,
)
from pz.sync.progress import Progress
from pz.sync.state import TOMBSTONE, ItemRecord, Version
from pz.sync.transfer import (
    Assembler, ChunkSource, Incoming, IOfferActions, Outgoing, SourceChanged, dataFrames, needRuns,
)
from pz.wire import DEFAULT_MAX_FRAME

__all__ = ["SyncEngine", "ISyncEngine", "MESSAGE_NAMES_TO_HUB", "MESSAGE_NAMES_TO_DEVICE",
           "MAX_ITEM_SIZE"]

#: The largest item sent or accepted unless configured otherwise, in bytes.
MAX_ITEM_SIZE = 64 * 1024 * 1024

#: Codes that are the protocol working as designed, not errors for status.
_ROUTINE = frozenset({"SYNC_CONFLICT", "SYNC_PENDING", "SYNC_ONE_WAY", "SYNC_NOT_SELECTED",
                      "SYNC_BUSY"})

#: Codes a peer may send that this side knows.
_KNOWN = frozenset(CODES)


class ISyncEngine(Interface):
    """
    What the hub and the proxy use of a synchronisation engine.
    """

    def start() -> None:
        "Start the periodic scan for local changes."

    def stop() -> None:
        "Stop the periodic scan."

    def attach(peerId: str, send: Callable[[dict], None], frameLimit: int = DEFAULT_MAX_FRAME) -> None:
        "A link to a peer is up; C{send} puts a payload on it; the peer refuses frames over C{frameLimit}."

    def detach(peerId: str) -> None:
        "The link to a peer is gone."

    def received(peerId: str, payload: dict) -> None:
        "A synchronisation message from a peer; never raises."

    def syncNow() -> Deferred:
        "The person asks for a sync; fires with what it moved."

    def localChange(path: str) -> None:
        "A writer on this side changed an item."

    def status() -> dict:
        "Progress and health, for C{pzctl status --json}."

    def peerBusy(peerId: str) -> Optional[bool]:
        """
        Whether anything is in flight or queued with a peer; None when it is
        not attached.
        """

    def conflicts() -> list:
        "The losing versions kept on this side."


class _Peer:
    """
    One attached peer: how to reach it, what it syncs, what is in flight.
    """

    def __init__(self, peerId: str, send: Callable[[dict], None],
                 frameLimit: int = DEFAULT_MAX_FRAME) -> None:
        self.id = peerId
        self.send = send
        self.dataLimit, self.pageLimit = frameBudget(frameLimit)
        self.selection: Optional[frozenset] = None
        self.outgoing: dict = {}
        self.queue: dict = {}
        self.incoming: dict = {}
        self.lost: dict = {}
        self.retrying: set = set()
        self.attached = True

    def busy(self) -> bool:
        return bool(self.outgoing or self.queue or self.incoming or self.retrying)


class _Round:
    """
    A device's C{syncNow}: done when the hub's plan is met and nothing is in
    flight.
    """

    def __init__(self) -> None:
        self.deferred = Deferred()
        self.plan: Optional[int] = None
        self.finished: set = set()
        self.sent = 0
        self.received = 0
        self.conflicts = 0


@implementer(IOfferActions)
class _OfferActions:
    """
    What an offer machine does, for transfers to one peer: the engine's
    work, bound to that peer.
    """

    def __init__(self, engine: "SyncEngine", peer: _Peer) -> None:
        self._engine = engine
        self._peer = peer

    def sendData(self, offer: Outgoing, runs) -> None:
        engine = self._engine
        source = ChunkSource(offer.rule.kind, engine._tree.resolve(offer.path), offer.manifest)
        offer.frames = dataFrames(source, runs, self._peer.dataLimit)
        engine._clock.callLater(0, engine._sendFrame, self._peer, offer)

    def offerAgain(self, offer: Outgoing) -> None:
        offer.full = True
        self._engine._offer(self._peer, offer)

    def agreed(self, offer: Outgoing) -> None:
        self._engine._dropOutgoing(self._peer, offer)
        self._engine._count("sent")
        self._engine._next(self._peer)

    def refusedBy(self, offer: Outgoing, refused: dict, winner) -> None:
        self._engine._refusedByPeer(self._peer, offer, refused, winner)

    def stale(self, offer: Outgoing, what: str) -> None:
        SyncEngine._log.debug("a late {what} for {path} from {peer}; ignored", what=what,
                              path=offer.path, peer=self._peer.id)


@implementer(ISyncEngine)
class SyncEngine:
    """
    Synchronises one side's items with its peers (a hub with its devices, a
    device with its hub).

    @param clock: an C{IReactorTime}.
    @param tree: the L{pz.sync.items.ItemTree}.
    @param state: the L{pz.sync.state.SyncState}.
    @param role: C{"hub"} or C{"device"}.
    @param localId: this side's id: the zone id on the hub, the device id on
        a device; the origin of the versions made here.
    @param validators: C{{path or category: callable(path, bytes)}}, run on
        a received item before it is written; they raise
        C{ZoneError("SYNC_BAD_ITEM")}.
    @param changed: told C{(path, hash or None)} after every received item
        is applied.
    @param recorded: told C{path} whenever this side records a new
        version of its own: a writer changed or removed the item, found by
        a scan or by L{localChange}.
    @param maxInFlight: transfers this side sends to one peer at once; the
        rest wait in a queue.
    @param maxIncoming: transfers this side takes from one peer at once;
        more are refused with C{SYNC_BUSY}.
    """

    _log = Logger()

    def __init__(self, clock, tree, state, *, role: str, localId: str, validators=None,
                 maxItemSize: int = MAX_ITEM_SIZE, scanInterval: float = 2.0,
                 constrained: bool = False, changed: Optional[Callable] = None,
                 maxInFlight: int = 4, maxIncoming: int = 16,
                 recorded: Optional[Callable[[str], None]] = None) -> None:
        self._names = namesFor(role)
        self._clock = clock
        self._tree = tree
        self._state = state
        self._role = role
        self._localId = localId
        self._validators = dict(validators or {})
        self._maxItemSize = maxItemSize
        self._maxChunks = max(4096, maxItemSize // 256)
        self._scanInterval = scanInterval
        self._constrained = constrained
        self._changed = changed
        self._recorded = recorded
        self._maxInFlight = maxInFlight
        self._maxIncoming = maxIncoming
        self._busyDelay = 1.0
        self._selectionCache = None
        self._peers: dict = {}
        self._progress = Progress(clock)
        self._loop: Optional[LoopingCall] = None
        self._missing: Optional[ZoneError] = None
        self._lastError: Optional[ZoneError] = None
        self._manifests: dict = {}
        self._defaults: dict = {}
        self._rounds: list = []
        self._plannedLeft = 0
        self._hubRound: Optional[dict] = None
        self._warned: set = set()
        self._uncertain: dict = {}
        try:
            # Temporary files of transfers cut short when this process last
            # stopped: nothing refers to them.
            tree.discardTemps()
        except OSError:
            pass
        self._handlers = {
            "hub": {
                "Sync_Hello": self._onHello, "Sync_Change": self._onChange, "Sync_Ack": self._onAck,
                "Update_Hash": self._onHash, "Update_Data": self._onData,
            },
            "device": {
                "Sync_Plan": self._onPlan, "Sync_Hash": self._onHash, "Sync_Data": self._onData,
                "Update_Change": self._onChange, "Update_Ack": self._onAck,
            },
        }[role]

    # --- the face to the wiring -------------------------------------------------

    def start(self) -> None:
        """
        Start the periodic scan for local changes.
        """
        if self._loop is None:
            self._loop = LoopingCall(self._periodicScan)
            self._loop.clock = self._clock
            self._loop.start(self._scanInterval, now=True)

    def stop(self) -> None:
        """
        Stop the periodic scan.
        """
        if self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    def attach(self, peerId: str, send: Callable[[dict], None],
               frameLimit: int = DEFAULT_MAX_FRAME) -> None:
        """
        A link to C{peerId} is up.  A device opens a round at once (scan,
        C{Sync_Hello}, its own changes); a hub waits for the device's hello.

        @param frameLimit: the largest frame the peer takes: data frames and
            hash-list pages are cut to fit it.
        """
        if peerId in self._peers:
            self.detach(peerId)
        peer = _Peer(peerId, send, frameLimit)
        self._peers[peerId] = peer
        # Debug only: the hub's registry and the device's Hub mode already
        # log each link, and a hub taking many connections a second should
        # not pay for two more lines each.
        self._log.debug("synchronisation link to {peer} is up", peer=peerId)
        if self._role == "device":
            self._hello(peer)

    def detach(self, peerId: str) -> None:
        """
        The link to C{peerId} is gone: every transfer in flight with it is
        dropped (temporary files removed); what both last agreed stays, so
        the next link resumes from there.
        """
        peer = self._peers.pop(peerId, None)
        if peer is None:
            return
        peer.attached = False
        # Whether the peer took what was in flight is unknown (its
        # acknowledgement may be lost with the link): offer those again,
        # deletions included, when it is back.
        if peer.outgoing or peer.queue:
            self._uncertain.setdefault(peerId, set()).update(peer.outgoing, peer.queue)
        for inc in list(peer.incoming.values()):
            self._endIncoming(peer, inc, finished=False)
        for out in list(peer.outgoing.values()):
            self._progress.end(out.task)
        peer.outgoing.clear()
        peer.queue.clear()
        self._log.debug("synchronisation link to {peer} is down", peer=peerId)
        if self._role == "device":
            rounds, self._rounds = self._rounds, []
            for r in rounds:
                r.deferred.errback(ZoneError("NOT_CONNECTED", "the link to the hub dropped during the sync"))
        self._settle()

    def received(self, peerId: str, payload: dict) -> None:
        """
        A synchronisation message from C{peerId}.  Never raises: a bad
        message is refused on the wire with its code, and nothing is written.
        """
        peer = self._peers.get(peerId)
        if peer is None:
            self._log.warn("synchronisation message from {peer}, which is not attached", peer=peerId)
            return
        name = payload.get("status") if isinstance(payload, dict) else None
        handler = self._handlers.get(name)
        if handler is None:
            self._log.warn("{peer} sent {name!r}, which is not a synchronisation message for a {role}",
                           peer=peerId, name=name, role=self._role)
            return
        try:
            handler(peer, payload)
        except ZoneError as e:
            self._answerBad(peer, name, payload, e)
        except Exception:
            self._log.failure("synchronisation message {name} from {peer}", name=name, peer=peerId)
            self._answerBad(peer, name, payload, ZoneError("INTERNAL", "an unexpected error; see the log"))
        self._settle()

    def syncNow(self) -> Deferred:
        """
        The person asks for a sync.  A device scans, says hello and fires
        with C{{"sent", "received", "conflicts"}} once every transfer of the
        round is over; the hub scans, pushes what changed and fires once
        nothing is in flight.
        """
        if self._role == "device":
            peer = self._hubPeer()
            if peer is None:
                return fail(ZoneError("NOT_CONNECTED", "this device is not connected to its hub"))
            r = _Round()
            self._rounds.append(r)
            self._hello(peer)
            self._settle()
            return r.deferred
        d = Deferred()
        if self._hubRound is None:
            self._hubRound = {"deferreds": [], "sent": 0, "received": 0, "conflicts": 0}
        self._hubRound["deferreds"].append(d)
        self._lastError = None
        self._scanAndPush()
        self._settle()
        return d

    def localChange(self, path: str) -> None:
        """
        A writer on this side changed (or removed) the item at C{path}: scan
        it now and push it.  Raises C{ZoneError("SYNC_BAD_PATH")} for a path
        that is no item.
        """
        _items.classify(path)
        if self._checkItems() and self._scanPath(path):
            self._push(path)
        self._settle()

    def status(self) -> dict:
        """
        Progress and health, as C{pzctl status --json} shows under C{sync}.
        """
        p = self._progress
        if self._missing is not None:
            state = "error"
        elif self._role == "device" and self._hubPeer() is None:
            state = "offline"
        elif p.active:
            state = "syncing"
        else:
            state = "idle"
        error = self._missing or self._lastError
        return {
            "state": state,
            "items_done": p.itemsDone, "items_total": p.itemsTotal,
            "bytes_done": p.bytesDone, "bytes_total": p.bytesTotal,
            "last_synced": p.lastSyncedText(),
            "conflicts": len(self._state.conflicts()),
            "error": {"code": error.code, "message": error.message} if error else None,
        }

    def peerBusy(self, peerId: str) -> Optional[bool]:
        """
        Whether anything is in flight or queued with C{peerId}: None when
        it is not attached.  The hub's per-device sync state
        (L{pzh.zonesync.HubSync.deviceStatus}) is read from it.
        """
        peer = self._peers.get(peerId)
        return None if peer is None else peer.busy()

    def conflicts(self) -> list:
        """
        The losing versions kept on this side, ready for JSON: C{path},
        C{origin}, C{time}, C{kept_as} (relative to the zone folder) and
        C{hash} (as on the wire, null for none).
        """
        return [dict(entry, time=isoTime(entry["time"]),
                     hash=encodeOptionalHash(entry.get("hash")))
                for entry in self._state.conflicts()]

    # --- local changes ----------------------------------------------------------

    def _periodicScan(self) -> None:
        try:
            self._scanAndPush()
        except Exception:
            self._log.failure("scanning the items")
        self._settle()

    def _checkItems(self) -> bool:
        try:
            self._tree.check()
        except ZoneError as e:
            if self._missing is None:
                self._log.error("the items folder is unusable, nothing is synchronised: {code}: {message}",
                                code=e.code, message=e.message)
            self._missing = e
            return False
        if self._missing is not None:
            self._log.info("the items folder is back")
        self._missing = None
        return True

    def _scanAndPush(self) -> None:
        for path in self._scan():
            self._push(path)

    def _scan(self) -> list:
        """
        Record every local change since the last scan; return the changed
        paths.  Nothing at all when the items folder is unusable: a missing
        folder is not a deletion of everything.
        """
        if not self._checkItems():
            return []
        try:
            seen = self._tree.scan()
        except ZoneError as e:
            self._missing = e
            return []
        records = {rec.path: rec for rec in self._state.items()}
        changed = []
        for path, sig in seen.items():
            rec = records.get(path)
            if rec is not None and rec.hash is not None and rec.signature == sig:
                continue
            if self._scanPath(path, sig):
                changed.append(path)
        for rec in records.values():
            if rec.hash is not None and rec.path not in seen:
                if self._scanPath(rec.path):
                    changed.append(rec.path)
        if changed:
            self._state.pruneChunkLists()
        return changed

    def _signature(self, absPath: str):
        st = os.lstat(absPath)
        return _items.Signature(size=st.st_size, mtimeNs=st.st_mtime_ns, ctimeNs=st.st_ctime_ns,
                                inode=st.st_ino)

    def _scanPath(self, path: str, sig=None) -> bool:
        """
        Bring the record of C{path} up to date with its file; return whether
        that made a new version, which the owner hears of (C{recorded}).
        """
        made = self._recordFile(path, sig)
        if made and self._recorded is not None:
            try:
                self._recorded(path)
            except Exception:
                self._log.failure("telling the owner {path} changed here", path=path)
        return made

    def _recordFile(self, path: str, sig=None) -> bool:
        try:
            rule = _items.classify(path)
            absPath = self._tree.resolve(path)
        except ZoneError:
            return False
        rec = self._state.item(path)
        if sig is None:
            try:
                st = os.lstat(absPath)
                sig = self._signature(absPath) if stat.S_ISREG(st.st_mode) else None
            except OSError:
                sig = None
        if sig is None:
            if rec is None or rec.hash is None or not self._checkItems():
                return False
            self._state.record(ItemRecord(path=path, hash=None, size=0,
                                          version=Version(self._clock.seconds(), self._localId),
                                          signature=None))
            self._log.info("{path} was deleted here", path=path)
            return True
        if rec is not None and rec.hash is not None and rec.signature == sig:
            return False
        try:
            manifest = self._manifest(path, absPath, rule.kind, sig)
        except ZoneError as e:
            if (path, e.code) not in self._warned:
                self._warned.add((path, e.code))
                self._log.warn("{path} is not synchronised: {code}: {message}",
                               path=path, code=e.code, message=e.message)
            return False
        except OSError:
            return False
        self._warned = {w for w in self._warned if w[0] != path}
        if rec is not None and rec.hash == manifest.hash:
            self._state.record(attrs.evolve(rec, signature=sig))
            return False
        when = min(sig.mtimeNs / 1e9, self._clock.seconds())
        self._state.storeChunkList(manifest.hash, manifest.chunks)
        self._state.record(ItemRecord(path=path, hash=manifest.hash, size=manifest.size,
                                      version=Version(when, self._localId), signature=sig))
        return True

    def _manifest(self, path: str, absPath: str, kind: str, sig=None):
        if sig is None:
            sig = self._signature(absPath)
        cached = self._manifests.get(path)
        if cached is not None and cached[0] == sig:
            return cached[1]
        manifest = manifestOfFile(kind, absPath, self._maxItemSize)
        self._manifests[path] = (sig, manifest)
        return manifest

    def _push(self, path: str) -> None:
        """
        Offer the current version of C{path} to every peer that should have
        it: the hub to every device selecting its category, a device to its
        hub.
        """
        category = _items.classify(path).category
        for peer in list(self._peers.values()):
            if self._selection(peer) is not None and category in self._selection(peer):
                self._enqueue(peer, path)

    # --- selection and the defaults ------------------------------------------

    def _ownSelection(self) -> frozenset:
        """
        The categories this device syncs, from its preferences (which sync
        too, so a choice made on one device reaches the others).
        """
        rec = self._state.item("preferences.json")
        key = rec.hash if rec is not None else None
        if self._selectionCache is not None and self._selectionCache[0] == key:
            return self._selectionCache[1]
        try:
            prefs = json.loads(self._tree.read("preferences.json") or b"{}")
            if not isinstance(prefs, dict):
                prefs = {}
        except (ValueError, ZoneError):
            prefs = {}
        selection = frozenset(_items.selection(prefs, self._localId, self._constrained))
        self._selectionCache = (key, selection)
        return selection

    def _selection(self, peer: _Peer) -> Optional[frozenset]:
        if self._role == "device":
            return self._ownSelection()
        return peer.selection

    def _hubPeer(self) -> Optional[_Peer]:
        return next(iter(self._peers.values()), None) if self._role == "device" else None

    def _isDefault(self, path: str, itemHash) -> bool:
        """
        Is C{itemHash} the default content of C{path}?  A default written at
        enrolment is nobody's change: the zone's version replaces it without
        a conflict copy.
        """
        if path not in _items.DEFAULTS or itemHash is None:
            return False
        if path not in self._defaults:
            kind = _items.classify(path).kind
            self._defaults[path] = manifestOf(kind, _items.DEFAULTS[path]).hash
        return self._defaults[path] == itemHash

    def _agreedDiffers(self, peer: _Peer, rec) -> bool:
        agreed = self._state.agreed(peer.id, rec.path)
        if rec.hash is None:
            return isinstance(agreed, bytes)
        return agreed != rec.hash

    def _lostHere(self, peer: _Peer, rec) -> bool:
        """
        Is this device's current version of C{rec.path} the one the hub
        refused (a lost conflict, a one-way item)?  Then the hub's version
        replaces it and it is kept as a conflict copy; a newer local change
        is pending instead, for the hub to decide.
        """
        if rec is None or rec.path not in peer.lost:
            return False
        return peer.lost[rec.path] == rec.hash

    def _pendingLocal(self, peer: _Peer, rec) -> bool:
        """
        Does this device hold a change of C{rec.path} the hub has not
        acknowledged?
        """
        if rec is None or not self._agreedDiffers(peer, rec):
            return False
        if self._state.agreed(peer.id, rec.path) is None and self._isDefault(rec.path, rec.hash):
            return False
        return True

    # --- rounds -------------------------------------------------------------------

    def _hello(self, peer: _Peer) -> None:
        self._lastError = None
        self._scan()
        selection = self._ownSelection()
        self._send(peer, {"status": "Sync_Hello", "select": sorted(selection),
                          "constrained": self._constrained})
        uncertain = self._uncertain.pop(peer.id, set())
        for rec in self._state.items():
            if _items.classify(rec.path).category not in selection:
                continue
            if rec.path in uncertain:
                self._enqueue(peer, rec.path, planned=True)
            elif self._pendingLocal(peer, rec):
                self._enqueue(peer, rec.path)

    def _onHello(self, peer: _Peer, payload: dict) -> None:
        hello = parseHello(payload)
        if hello.constrained:
            selection = frozenset(_items.CONSTRAINED)
        else:
            selection = (hello.select & frozenset(_items.CATEGORIES)) | frozenset(_items.ALWAYS)
        first = peer.selection is None and not self._state.agreedPaths(peer.id)
        peer.selection = selection
        if not self._checkItems():
            self._send(peer, {"status": "Sync_Plan", "refused": refusal(self._missing)})
            return
        self._scanAndPush()
        paths = []
        size = 0
        uncertain = self._uncertain.pop(peer.id, set())
        for rec in self._state.items():
            if _items.classify(rec.path).category not in selection:
                continue
            if (rec.path in peer.outgoing or rec.path in peer.queue or rec.path in uncertain
                    or self._agreedDiffers(peer, rec)):
                paths.append(rec.path)
                size += rec.size
        self._send(peer, {"status": "Sync_Plan", "items": len(paths), "bytes": size})
        self._progress.expect(len(paths), size, first=first and bool(paths))
        for path in paths:
            self._enqueue(peer, path, planned=True)

    def _onPlan(self, peer: _Peer, payload: dict) -> None:
        plan = parsePlan(payload)
        if plan.refused is not None:
            code = plan.refused["code"]
            error = ZoneError(code if code in _KNOWN else "SYNC_BAD_MESSAGE", plan.refused["message"])
            self._lastError = error
            failed = [r for r in self._rounds if r.plan is None]
            self._rounds = [r for r in self._rounds if r.plan is not None]
            for r in failed:
                r.deferred.errback(error)
            return
        first = not self._state.agreedPaths(peer.id)
        if plan.items:
            self._progress.expect(plan.items, plan.bytes, first=first)
            self._plannedLeft += plan.items
        for r in self._rounds:
            if r.plan is None:
                r.plan = plan.items

    def _settle(self) -> None:
        """
        After every event: end the progress round and fire the syncs that are
        done.
        """
        busy = any(p.busy() for p in self._peers.values())
        if not busy:
            if self._progress.settle():
                self._plannedLeft = 0
                self._state.pruneChunkLists()
            if self._hubRound is not None:
                r, self._hubRound = self._hubRound, None
                for d in r["deferreds"]:
                    d.callback({"sent": r["sent"], "received": r["received"], "conflicts": r["conflicts"]})
        if self._role == "device" and not busy:
            done = [r for r in self._rounds if r.plan is not None and len(r.finished) >= r.plan]
            self._rounds = [r for r in self._rounds if r not in done]
            for r in done:
                r.deferred.callback({"sent": r.sent, "received": r.received, "conflicts": r.conflicts})

    def _count(self, what: str, path: Optional[str] = None) -> None:
        for r in self._rounds:
            if what == "finished":
                r.finished.add(path)
            else:
                setattr(r, what, getattr(r, what) + 1)
        if self._hubRound is not None and what != "finished":
            self._hubRound[what] += 1

    # --- sending ------------------------------------------------------------------

    def _send(self, peer: _Peer, payload: dict) -> None:
        if not peer.attached:
            return
        try:
            peer.send(payload)
        except Exception:
            self._log.failure("sending {name} to {peer}", name=payload.get("status"), peer=peer.id)

    def _enqueue(self, peer: _Peer, path: str, full: bool = False, planned: bool = False) -> None:
        """
        Send the current version of C{path} to C{peer} now, or queue it if
        C{maxInFlight} transfers are already going.  A newer version
        supersedes one in flight.
        """
        out = peer.outgoing.get(path)
        if out is not None:
            rec = self._state.item(path)
            if rec is not None and rec.hash == out.hash and not full:
                return
            self._dropOutgoing(peer, out)
            # The peer may take the superseded version before it sees the
            # new one: send the new one even if it seems agreed.
            planned = True
        if len(peer.outgoing) >= self._maxInFlight:
            old = peer.queue.get(path, (False, False))
            peer.queue[path] = (old[0] or full, old[1] or planned)
            return
        self._startOutgoing(peer, path, full, planned)

    def _next(self, peer: _Peer) -> None:
        while peer.attached and peer.queue and len(peer.outgoing) < self._maxInFlight:
            path = next(iter(peer.queue))
            full, planned = peer.queue.pop(path)
            self._startOutgoing(peer, path, full, planned)

    def _dropOutgoing(self, peer: _Peer, out: Outgoing) -> None:
        if peer.outgoing.get(out.path) is out:
            del peer.outgoing[out.path]
            self._progress.end(out.task)

    def _startOutgoing(self, peer: _Peer, path: str, full: bool, planned: bool) -> None:
        rec = self._state.item(path)
        if rec is None:
            return
        if not (full or planned or self._agreedDiffers(peer, rec)):
            return
        rule = _items.classify(path)
        agreed = self._state.agreed(peer.id, path)
        base = None if full or not isinstance(agreed, bytes) else agreed
        manifest = None
        if rec.hash is not None:
            try:
                absPath = self._tree.resolve(path)
                manifest = self._manifest(path, absPath, rule.kind)
            except (OSError, ZoneError):
                manifest = None
            if manifest is None or manifest.hash != rec.hash:
                # The file changed since it was recorded: record the change
                # and offer that instead.
                if self._scanPath(path):
                    self._push(path)
                return
        task = self._progress.begin(path, rec.size, planned=planned)
        out = Outgoing(path, rule, rec, manifest, base, full, planned, task, _OfferActions(self, peer))
        peer.outgoing[path] = out
        self._offer(peer, out)

    def _offer(self, peer: _Peer, out: Outgoing) -> None:
        rec = out.record
        head = {"status": self._names.hash, "path": out.path, "version": encodeVersion(rec.version),
                "base": encodeOptionalHash(out.base)}
        if rec.hash is None:
            self._send(peer, dict(head, deleted=True))
            return
        baseChunks = None
        if out.base is not None and not out.full:
            baseChunks = self._state.chunkList(out.base)
        ops = diffOps(baseChunks, out.manifest.chunks) if baseChunks is not None \
            else fullOps(out.manifest.chunks)
        parts = pages(ops, peer.pageLimit)
        for i, page in enumerate(parts):
            if peer.outgoing.get(out.path) is not out:
                return
            self._send(peer, dict(head, hash=encodeHash(rec.hash), size=rec.size, ops=page, part=i,
                                  more=i < len(parts) - 1))

    def _onChange(self, peer: _Peer, payload: dict) -> None:
        out = self._outgoingFor(peer, payload)
        if out is None:
            return
        try:
            msg = parseChange(payload, out.chunkCount)
        except ZoneError as e:
            self._abandon(peer, out, e)
            return
        if msg.hash != out.hash:
            self._log.debug("stale {name} for {path}", name=self._names.peerChange, path=out.path)
        elif msg.refused is not None:
            out.machine.changeRefused(msg.refused, msg.winner)
        elif msg.rebase and out.full and out.machine.stage() == "Offered":
            self._abandon(peer, out, ZoneError("SYNC_BAD_MESSAGE", "rebase asked of a full list"))
        elif msg.rebase:
            out.machine.rebase()
        elif not msg.need:
            out.machine.haveAll()
        else:
            out.machine.need(msg.need)

    def _sendFrame(self, peer: _Peer, out: Outgoing) -> None:
        if peer.outgoing.get(out.path) is not out or not peer.attached:
            return
        try:
            frame = out.nextFrame if out.nextFrame is not None else next(out.frames)
            out.nextFrame = next(out.frames, None)
        except SourceChanged:
            self._log.info("{path} changed while being sent; offering the new version", path=out.path)
            self._dropOutgoing(peer, out)
            if self._scanPath(out.path):
                self._push(out.path)
            else:
                self._enqueue(peer, out.path)
            self._next(peer)
            self._settle()
            return
        chunks = [[i, base64.b64encode(data).decode("ascii")] + ([True] if cont else [])
                  for i, data, cont in frame]
        more = out.nextFrame is not None
        if not more:
            out.machine.framesSent()
        self._send(peer, {"status": self._names.data, "path": out.path, "hash": encodeHash(out.hash),
                          "chunks": chunks, "more": more})
        self._progress.step(out.task, sum(len(data) for _, data, _ in frame))
        if more and peer.outgoing.get(out.path) is out:
            self._clock.callLater(0, self._sendFrame, peer, out)
        self._settle()

    def _onAck(self, peer: _Peer, payload: dict) -> None:
        try:
            msg = parseAck(payload)
            _items.classify(msg.path)
        except ZoneError as e:
            out = self._outgoingFor(peer, payload)
            if out is None:
                raise
            self._abandon(peer, out, e)
            return
        if msg.refused is None:
            # The receiver holds this version now, whichever transfer it
            # ended (the link keeps order, so the last word stands).
            self._state.setAgreed(peer.id, msg.path, msg.hash if msg.hash is not None else TOMBSTONE)
        out = peer.outgoing.get(msg.path)
        if out is None or msg.hash != out.hash:
            self._log.debug("stale {name} for {path}", name=self._names.peerAck, path=msg.path)
            if msg.refused is None:
                self._reoffer(peer, msg.path)
            return
        if msg.refused is not None:
            out.machine.ackRefused(msg.refused, msg.winner)
        else:
            out.machine.acked()

    def _reoffer(self, peer: _Peer, path: str) -> None:
        """
        The peer acknowledged a version this side has moved on from: offer
        the current one unless it is already on its way.
        """
        rec = self._state.item(path)
        selection = self._selection(peer)
        if (rec is None or path in peer.outgoing or path in peer.queue or selection is None
                or _items.classify(path).category not in selection):
            return
        if self._agreedDiffers(peer, rec) and (self._role == "hub" or self._pendingLocal(peer, rec)):
            self._enqueue(peer, path)

    def _outgoingFor(self, peer: _Peer, payload: dict) -> Optional[Outgoing]:
        path = payload.get("path")
        out = peer.outgoing.get(path) if isinstance(path, str) else None
        if out is None:
            self._log.debug("{peer} answered about {path!r}, which is not being sent", peer=peer.id,
                            path=path)
        return out

    def _abandon(self, peer: _Peer, out: Outgoing, error: ZoneError) -> None:
        self._log.warn("{peer} sent a bad answer about {path}: {code}: {message}", peer=peer.id,
                       path=out.path, code=error.code, message=error.message)
        self._lastError = error
        self._dropOutgoing(peer, out)
        self._next(peer)

    def _refusedByPeer(self, peer: _Peer, out: Outgoing, refused: dict, winner) -> None:
        code = refused["code"]
        self._dropOutgoing(peer, out)
        if code in _ROUTINE:
            self._log.info("{peer} refused {path}: {code}: {message}", peer=peer.id, path=out.path,
                           code=code, message=refused["message"])
        else:
            self._log.warn("{peer} refused {path}: {code}: {message}", peer=peer.id, path=out.path,
                           code=code, message=refused["message"])
            self._lastError = ZoneError(code if code in _KNOWN else "SYNC_BAD_MESSAGE",
                                        refused["message"])
        if self._role == "device" and code in ("SYNC_CONFLICT", "SYNC_ONE_WAY"):
            # The hub keeps its version and sends it; this side keeps its
            # own copy as a conflict when it arrives.
            peer.lost[out.path] = out.hash
        if self._role == "hub" and code == "SYNC_PENDING" and out.resendOnPending:
            self._enqueue(peer, out.path, planned=True)
        if code == "SYNC_BUSY":
            # The peer takes fewer transfers at once than this side sends:
            # try again once some are done.
            peer.retrying.add(out.path)
            self._clock.callLater(self._busyDelay, self._retryBusy, peer, out)
        self._next(peer)

    def _retryBusy(self, peer: _Peer, out: Outgoing) -> None:
        peer.retrying.discard(out.path)
        if peer.attached and self._peers.get(peer.id) is peer:
            self._enqueue(peer, out.path, full=out.full, planned=True)
            self._settle()

    # --- receiving ------------------------------------------------------------------

    def _answerBad(self, peer: _Peer, name: str, payload: dict, error: ZoneError) -> None:
        """
        Refuse a message that could not be taken, on the wire, with its code.
        """
        path = payload.get("path") if isinstance(payload, dict) else None
        path = path if isinstance(path, str) and len(path) <= 1024 else ""
        itemHash = payload.get("hash") if isinstance(payload, dict) else None
        itemHash = itemHash if isinstance(itemHash, str) and len(itemHash) <= 64 else None
        self._log.warn("refused {name} for {path!r} from {peer}: {code}: {message}", name=name,
                       path=path, peer=peer.id, code=error.code, message=error.message)
        if name == self._names.peerHash or name == self._names.peerData:
            inc = peer.incoming.get(path)
            if inc is not None and (name == self._names.peerHash
                                    or encodeOptionalHash(inc.hash) == itemHash):
                self._endIncoming(peer, inc, finished=True)
            elif name == self._names.peerHash:
                self._count("finished", path)
            answer = self._names.change if name == self._names.peerHash else self._names.ack
            self._send(peer, {"status": answer, "path": path, "hash": itemHash,
                              "refused": refusal(error)})
        elif name == "Sync_Hello":
            self._send(peer, {"status": "Sync_Plan", "refused": refusal(error)})
        else:
            self._lastError = error

    def _refuse(self, peer: _Peer, inc_or_path, itemHash, error: ZoneError, answer: str,
                winner=None) -> None:
        path = inc_or_path.path if isinstance(inc_or_path, Incoming) else inc_or_path
        if isinstance(inc_or_path, Incoming):
            self._endIncoming(peer, inc_or_path, finished=True)
        if error.code in _ROUTINE:
            self._log.info("refused {path} from {peer}: {code}: {message}", path=path, peer=peer.id,
                           code=error.code, message=error.message)
        else:
            self._log.warn("refused {path} from {peer}: {code}: {message}", path=path, peer=peer.id,
                           code=error.code, message=error.message)
        payload = {"status": answer, "path": path, "hash": encodeOptionalHash(itemHash),
                   "refused": refusal(error)}
        if winner is not None:
            payload["winner"] = {"hash": encodeOptionalHash(winner.hash),
                                 "version": encodeVersion(winner.version)}
        self._send(peer, payload)

    def _endIncoming(self, peer: _Peer, inc: Incoming, finished: bool) -> None:
        if peer.incoming.get(inc.path) is inc:
            del peer.incoming[inc.path]
            if inc.task is not None:
                self._progress.end(inc.task)
        inc.discard()
        if finished:
            self._count("finished", inc.path)

    def _onHash(self, peer: _Peer, payload: dict) -> None:
        msg = parseHash(payload)
        rule = _items.classify(msg.path)
        self._tree.resolve(msg.path)
        current = peer.incoming.get(msg.path)
        if msg.part > 0:
            if (current is None or current.stage != "hashing" or current.hash != msg.hash
                    or current.nextPart != msg.part):
                raise ZoneError("SYNC_BAD_MESSAGE", f"page {msg.part} of {msg.path} was not expected")
            current.ops.extend(msg.ops)
            if len(current.ops) > self._maxChunks:
                raise ZoneError("SYNC_BAD_MESSAGE", "the hash list is longer than the chunk limit")
            current.nextPart += 1
            current.more = msg.more
            if not msg.more:
                self._hashComplete(peer, current)
            return
        if current is not None:
            self._endIncoming(peer, current, finished=False)
        if not self._checkItems():
            raise self._missing
        if self._role == "hub" and rule.oneWay and not self._holds(msg):
            self._refuse(peer, msg.path, msg.hash, ZoneError(
                "SYNC_ONE_WAY", f"{msg.path} flows only from the hub; the hub's copy follows"),
                self._names.change)
            self._count("finished", msg.path)
            self._scanPath(msg.path)
            if self._state.item(msg.path) is None:
                # The hub's copy of an item it never had is its absence.
                self._state.record(ItemRecord(path=msg.path, hash=None, size=0, version=Version(
                    self._clock.seconds(), self._localId), signature=None))
            self._enqueue(peer, msg.path, full=True, planned=True)
            return
        selection = self._selection(peer)
        if selection is None or rule.category not in selection:
            raise ZoneError("SYNC_NOT_SELECTED", f"{rule.category} items are not synchronised here")
        if not msg.deleted and msg.size > self._maxItemSize:
            raise ZoneError("SYNC_TOO_LARGE", f"the item is larger than {self._maxItemSize} bytes")
        if len(peer.incoming) >= self._maxIncoming:
            raise ZoneError("SYNC_BUSY", "too many transfers at once; try again later")
        planned = self._plannedLeft > 0 and self._progress.active
        if planned:
            self._plannedLeft -= 1
        task = self._progress.begin(msg.path, msg.size, planned=planned)
        inc = Incoming(msg, rule, task)
        peer.incoming[msg.path] = inc
        if not msg.more:
            self._hashComplete(peer, inc)

    def _holds(self, msg) -> bool:
        """
        Does this side hold exactly the version C{msg} offers?  (A device
        reporting a one-way item it got from the hub is merely agreeing.)
        """
        self._scanPath(msg.path)
        cur = self._state.item(msg.path)
        return cur is not None and not msg.deleted and cur.hash == msg.hash

    def _decide(self, peer: _Peer, inc: Incoming, cur):
        """
        The hub's decision on an update: C{"same"} (it already holds it),
        C{"accept"} or C{"refuse"} (the hub's current version wins).  Sets
        C{inc.keepCurrent} when the hub's own copy loses.
        """
        inc.expectCurrent = cur.hash if cur is not None else None
        inc.keepCurrent = False
        if cur is not None and cur.hash == inc.hash:
            return "same"
        if cur is None or cur.hash == inc.base:
            return "accept"
        if updateWins(cur.version, inc.version, self._clock.seconds()):
            inc.keepCurrent = cur.hash is not None
            self._log.info("conflict on {path}: the update from {peer} wins", path=inc.path, peer=peer.id)
            return "accept"
        self._log.info("conflict on {path}: the hub's version wins over {peer}'s", path=inc.path,
                       peer=peer.id)
        return "refuse"

    def _hubRefuses(self, peer: _Peer, inc: Incoming, cur, answer: str) -> None:
        self._refuse(peer, inc, inc.hash, ZoneError(
            "SYNC_CONFLICT", f"{inc.path} changed on the hub too and the hub's version wins"),
            answer, winner=cur)
        out = peer.outgoing.get(inc.path)
        if out is not None and out.hash == cur.hash:
            # The device may already have answered that transfer with
            # SYNC_PENDING (the answer is on its way): send again then.
            out.resendOnPending = True
        else:
            self._enqueue(peer, inc.path, planned=True)

    def _hashComplete(self, peer: _Peer, inc: Incoming) -> None:
        self._scanPath(inc.path)
        cur = self._state.item(inc.path)
        if self._role == "hub":
            decision = self._decide(peer, inc, cur)
            if decision == "refuse":
                self._hubRefuses(peer, inc, cur, self._names.change)
                return
        elif cur is None or cur.hash != inc.hash:
            if inc.rule.oneWay:
                # Only the hub's copy counts: one altered here is kept aside.
                inc.keepCurrent = self._lostHere(peer, cur) or (
                    cur is not None and cur.hash is not None and self._pendingLocal(peer, cur))
            elif not self._lostHere(peer, cur) and self._pendingLocal(peer, cur):
                self._refuse(peer, inc, inc.hash, ZoneError(
                    "SYNC_PENDING", f"{inc.path} changed here too; the hub decides on this side's update"),
                    self._names.change)
                self._enqueue(peer, inc.path)
                return
            else:
                inc.keepCurrent = self._lostHere(peer, cur)
        if inc.deleted:
            self._apply(peer, inc)
            return
        if cur is not None and cur.hash == inc.hash:
            self._send(peer, {"status": self._names.change, "path": inc.path,
                              "hash": encodeHash(inc.hash), "need": []})
            self._apply(peer, inc, same=True)
            return
        baseChunks = ()
        if any(not isinstance(op, str) for op in inc.ops):
            baseChunks = self._chunkListOf(inc.base, cur)
            if baseChunks is None:
                self._endIncoming(peer, inc, finished=False)
                self._send(peer, {"status": self._names.change, "path": inc.path,
                                  "hash": encodeHash(inc.hash), "rebase": True})
                return
        chunks = applyOps(baseChunks, inc.ops, self._maxChunks)
        local = self._localSource(inc.path, cur, inc.rule.kind)
        have = local.index if local is not None else {}
        need = [i for i, h in enumerate(chunks) if h not in have]
        inc.assembler = Assembler(self._tree, inc.rule.kind, inc.hash, inc.size, chunks, need, local,
                                  self._maxItemSize)
        inc.assembler.advance()
        inc.stage = "data"
        self._send(peer, {"status": self._names.change, "path": inc.path,
                          "hash": encodeHash(inc.hash), "need": needRuns(need)})
        if not need:
            self._apply(peer, inc)

    def _chunkListOf(self, itemHash, cur):
        if itemHash is None:
            return None
        chunks = self._state.chunkList(itemHash)
        if chunks is None and cur is not None and cur.hash == itemHash:
            try:
                manifest = self._manifest(cur.path, self._tree.resolve(cur.path),
                                          _items.classify(cur.path).kind)
            except (OSError, ZoneError):
                return None
            if manifest.hash == itemHash:
                chunks = manifest.chunks
        return chunks

    def _localSource(self, path: str, cur, kind: str) -> Optional[ChunkSource]:
        if cur is None or cur.hash is None:
            return None
        try:
            absPath = self._tree.resolve(path)
            manifest = self._manifest(path, absPath, kind)
        except (OSError, ZoneError):
            return None
        return ChunkSource(kind, absPath, manifest)

    def _onData(self, peer: _Peer, payload: dict) -> None:
        msg = parseData(payload)
        inc = peer.incoming.get(msg.path)
        if inc is None or inc.hash != msg.hash or inc.stage != "data":
            raise ZoneError("SYNC_NOT_ASKED", f"no chunk of this version of {msg.path} was asked for")
        for index, data, continues in msg.chunks:
            inc.assembler.feed(index, data, continues)
            self._progress.step(inc.task, len(data))
        if inc.assembler.complete:
            self._apply(peer, inc)
        elif not msg.more:
            raise ZoneError("SYNC_BAD_MESSAGE", "the data ended before every chunk asked for came")

    def _validate(self, inc: Incoming, canonical: Optional[bytes]) -> None:
        check = self._validators.get(inc.path) or self._validators.get(inc.rule.category)
        if check is None:
            return
        data = canonical
        if data is None:
            with open(inc.assembler.tempPath, "rb") as f:
                data = f.read()
        try:
            check(inc.path, data)
        except ZoneError as e:
            raise ZoneError("SYNC_BAD_ITEM", e.message) from None
        except Exception as e:
            raise ZoneError("SYNC_BAD_ITEM", f"{inc.path} is not acceptable: {e}") from None

    def _apply(self, peer: _Peer, inc: Incoming, same: bool = False) -> None:
        """
        Every chunk is there: check the item, decide once more against what
        this side holds now, keep the loser, write.
        """
        try:
            if not same and not inc.deleted:
                canonical = inc.assembler.finish()
                self._validate(inc, canonical)
            if not self._checkItems():
                raise self._missing
            self._scanPath(inc.path)
            cur = self._state.item(inc.path)
            if self._role == "hub":
                if (cur.hash if cur is not None else None) != inc.expectCurrent:
                    if self._decide(peer, inc, cur) == "refuse":
                        self._hubRefuses(peer, inc, cur, self._names.ack)
                        return
            elif (cur is None or cur.hash != inc.hash) and not inc.rule.oneWay:
                inc.keepCurrent = self._lostHere(peer, cur)
                if not inc.keepCurrent and self._pendingLocal(peer, cur):
                    raise ZoneError("SYNC_PENDING",
                                    f"{inc.path} changed here too; the hub decides on this side's update")
            if inc.keepCurrent and cur is not None and cur.hash is not None and cur.hash != inc.hash:
                self._keepConflict(cur)
            if inc.deleted:
                if cur is not None and cur.hash is not None:
                    self._tree.remove(inc.path)
                sig = None
            elif not same:
                chunks = tuple(inc.assembler.chunks)
                self._tree.install(inc.path, inc.assembler.tempPath)
                inc.assembler = None
                sig = self._signature(self._tree.resolve(inc.path))
                self._state.storeChunkList(inc.hash, chunks)
            else:
                sig = cur.signature
        except ZoneError as e:
            if e.code == "SYNC_PENDING":
                self._enqueue(peer, inc.path)
            self._refuse(peer, inc, inc.hash, e, self._names.ack)
            return
        version = inc.version if not same else cur.version
        self._state.record(ItemRecord(path=inc.path, hash=inc.hash, size=0 if inc.deleted else inc.size,
                                      version=version, signature=sig))
        self._state.setAgreed(peer.id, inc.path, inc.hash if inc.hash is not None else TOMBSTONE)
        peer.lost.pop(inc.path, None)
        self._endIncoming(peer, inc, finished=True)
        self._send(peer, {"status": self._names.ack, "path": inc.path,
                          "hash": encodeOptionalHash(inc.hash)})
        if not same:
            self._count("received")
            self._log.info("{path} {what} from {peer}", path=inc.path, peer=peer.id,
                           what="deleted" if inc.deleted else "updated")
            if self._changed is not None:
                try:
                    self._changed(inc.path, inc.hash)
                except Exception:
                    self._log.failure("telling the owner {path} changed", path=inc.path)
            if self._role == "hub":
                category = inc.rule.category
                for other in list(self._peers.values()):
                    if other is not peer and other.selection is not None and category in other.selection:
                        self._enqueue(other, inc.path)

    def _keepConflict(self, cur) -> None:
        """
        Keep the losing version this side holds, with its origin and time.
        """
        try:
            source = self._tree.resolve(cur.path)
        except ZoneError:
            return
        if not os.path.isfile(source):
            return
        keptAs = self._tree.keepConflict(cur.path, source, cur.version.origin, cur.version.time)
        self._state.addConflict(cur.path, cur.version.origin, cur.version.time, keptAs, cur.hash)
        self._count("conflicts")
        self._log.info("kept the losing version of {path} from {origin} as {keptAs}", path=cur.path,
                       origin=cur.version.origin, keptAs=keptAs)

