"""
A zone of synchronisation engines joined in memory, for tests.

One hub and some devices, each with its own items folder and sync state in
a temporary directory, all on one L{Clock} set to the real time (the files'
modification times are real, and the conflict rule compares them with the
hub's clock).  Every message goes through C{json.dumps} / C{json.loads} as it
would on the wire, is counted, and waits in one queue until L{Zone.pump}
delivers it, so a test can look at or drop what is in flight.
"""

import json
import os
import time
from collections import deque

from twisted.internet.task import Clock

from pz.sync.chunkers import manifestOf
from pz.sync.engine import SyncEngine
from pz.sync.items import ItemTree, classify
from pz.sync.state import SyncState

HUB = "zone-1"


class Side:
    """
    One engine with its tree and state.
    """

    def __init__(self, zone, role: str, localId: str, **options) -> None:
        self.zone = zone
        self.id = localId
        self.role = role
        base = zone.testCase.mktemp()
        os.makedirs(base)
        self.tree = ItemTree(os.path.join(base, "zone"))
        self.tree.create()
        self.state = SyncState(":memory:" if zone.memory else self.tree.statePath)
        zone.testCase.addCleanup(self.state.close)
        self.applied = []
        self.options = options
        self.engine = self._makeEngine()

    def _makeEngine(self) -> SyncEngine:
        return SyncEngine(self.zone.clock, self.tree, self.state, role=self.role, localId=self.id,
                          changed=lambda path, h: self.applied.append((path, h)), **self.options)

    def write(self, path: str, data: bytes, ago: float = None) -> None:
        """
        A person edits an item here (not through the engine).

        @param ago: make the file's modification time this many seconds
            before the zone's clock (the version's time).
        """
        target = os.path.join(self.tree.root, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)
        if ago is not None:
            when = int((self.zone.clock.seconds() - ago) * 1e9)
            os.utime(target, ns=(when, when))

    def read(self, path: str):
        return self.tree.read(path)

    def remove(self, path: str) -> None:
        os.unlink(os.path.join(self.tree.root, *path.split("/")))

    def files(self) -> dict:
        """
        Every item file here, {path: bytes}.
        """
        out = {}
        for dirpath, _, names in os.walk(self.tree.root):
            for name in names:
                full = os.path.join(dirpath, name)
                out[os.path.relpath(full, self.tree.root).replace(os.sep, "/")] = open(full, "rb").read()
        return out


    def contents(self) -> dict:
        """
        Every item here as {path: bytes} for data items and {path: item
        hash} for typed ones (which a receiver writes in canonical form).
        """
        out = {}
        for path, data in self.files().items():
            kind = classify(path).kind
            out[path] = data if kind == "data" else manifestOf(kind, data).hash
        return out


class Zone:
    """
    A hub and devices joined by in-memory links.

    @ivar sent: bytes of JSON put on the links so far.
    @ivar messages: every delivered message as (from, to, payload).
    """

    def __init__(self, testCase, devices=("a", "b"), hubOptions=None, memory=False,
                 frameLimit=None, **deviceOptions) -> None:
        """
        @param memory: keep the sync states in memory (fast; for tests of
            convergence rather than durability).
        @param frameLimit: the largest frame each end says its peer takes
            (the engines' default when None).
        """
        self.testCase = testCase
        self.memory = memory
        self.frameLimit = frameLimit
        self.clock = Clock()
        self.clock.advance(time.time())
        self.hub = Side(self, "hub", HUB, **(hubOptions or {}))
        self.devices = {name: Side(self, "device", name, **deviceOptions) for name in devices}
        self.queue = deque()
        self.sent = 0
        self.messages = []
        self.links = set()
        self.drop = None
        self.watch = None

    def __getitem__(self, name: str) -> Side:
        return self.hub if name == HUB else self.devices[name]

    def _post(self, source: str, target: str, payload: dict) -> None:
        if (source, target) not in self.links:
            return
        if self.watch is not None:
            self.watch(source, target, payload)
        text = json.dumps(payload)
        self.sent += len(text)
        self.queue.append((source, target, json.loads(text)))

    def connect(self, name: str) -> None:
        """
        Link device C{name} to the hub: the hub attaches it, the device
        attaches the hub (and says hello).
        """
        self.links.add((HUB, name))
        self.links.add((name, HUB))
        limit = {} if self.frameLimit is None else {"frameLimit": self.frameLimit}
        self.hub.engine.attach(name, lambda p: self._post(HUB, name, p), **limit)
        self.devices[name].engine.attach(HUB, lambda p: self._post(name, HUB, p), **limit)

    def disconnect(self, name: str) -> None:
        """
        Drop the link to device C{name}: what is in flight on it is lost.
        """
        self.links.discard((HUB, name))
        self.links.discard((name, HUB))
        self.queue = deque(m for m in self.queue if name not in (m[0], m[1]))
        self.hub.engine.detach(name)
        self.devices[name].engine.detach(HUB)

    def connectAll(self) -> None:
        for name in self.devices:
            self.connect(name)

    def pump(self, limit: int = 200000) -> None:
        """
        Deliver every message and run every call due now, until nothing is
        left.  C{self.drop(source, target, payload)} returning true drops
        the link before that message is delivered.
        """
        for _ in range(limit):
            if self.queue:
                source, target, payload = self.queue.popleft()
                if self.drop is not None and self.drop(source, target, payload):
                    self.drop = None
                    self.disconnect(source if source != HUB else target)
                    continue
                self.messages.append((source, target, payload))
                self[target].engine.received(source, payload)
                continue
            now = self.clock.seconds()
            if any(c.getTime() <= now for c in self.clock.getDelayedCalls()):
                self.clock.advance(0)
                continue
            return
        raise AssertionError("the zone did not settle")

    def sync(self) -> list:
        """
        Let every side notice its local changes and push them (C{syncNow}
        on the hub and every connected device), then pump.  Returns what
        each C{syncNow} fired with.
        """
        results = []
        for side in [self.hub] + list(self.devices.values()):
            if side.role == "hub" or (HUB, side.id) in self.links:
                side.engine.syncNow().addBoth(results.append)
        self.pump()
        return results

    def names(self, status: str) -> list:
        return [m for m in self.messages if m[2].get("status") == status]
