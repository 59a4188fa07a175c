# -*- test-case-name: tests.pzp.test_sync,tests.pzh.test_zonesync -*-
"""
The device's part of synchronisation: its zone items kept in step with
the hub's over the hub link.

L{ZoneSync} owns the device's L{pz.sync.engine.SyncEngine} and connects it
to the rest of the proxy: the hub link it speaks over (attached when the
Hub machine reports the link up, detached when it is lost), the admin
side's C{sync}, C{conflicts} and status, and the revocation worker, which
hears of every CRL the hub's sync delivers (the CRL keeps its lifecycle
rules: signed by the zone CA, its number only grows).  A policy from the
hub that does not parse is not installed (L{pzp.policy.checkPolicy}).
"""

from collections import deque
from typing import Optional

import attrs
from zope.interface import implementer

from pz import pki
from pz.bucket import TokenBucket, frameCost
from pz.errors import ZoneError
from pz.sync.chunkers import manifestOf
from pz.sync.engine import MAX_ITEM_SIZE, SyncEngine
from pz.sync.state import SyncState
from pz.sync.zoneitems import CRL, openItems, trustedHubPath, zoneItems
from pz.wire import Envelope, encodeEnvelope, newMessageId
from pzp.policy import POLICY, checkPolicy
from pzp.seams import IIdentity, IRevocation, ISync

__all__ = ["ZoneSync", "SyncSettings"]


@attrs.frozen
class SyncSettings:
    """
    @ivar interval: seconds between scans of the items folder.
    @ivar maxItem: the largest item, in bytes, sent or accepted.
    @ivar constrained: sync only certificates and the CRL (a device with
        little memory or power, as the webinos PZP specification allows).
    """

    interval: float = 2.0
    maxItem: int = MAX_ITEM_SIZE
    constrained: bool = False


#: The share of the hub's rate and burst uploads use: the rest is left for
#: pings and messages on the same link.
RATE_SHARE = 0.75


class PacedUpload:
    """
    The engine's C{send} over the hub link: frames go out no faster than
    the hub reads this link (the rate it announced on registering, counted
    by the hub's own rule, L{pz.bucket}), so a large item is never refused
    as a flood.  Each payload is encoded once, as it will be sent; frames
    keep their order.
    """

    def __init__(self, clock, link, to: str) -> None:
        self._clock = clock
        self._link = link
        self._to = to
        rate, burst = link.readRate or (None, None)
        self._bucket = TokenBucket(rate * RATE_SHARE, max(1, int(burst * RATE_SHARE)),
                                   clock.seconds) if rate else None
        self._waiting: deque = deque()
        self._timer = None

    def __call__(self, payload: dict) -> None:
        link = self._link
        self._waiting.append(encodeEnvelope(
            Envelope("prop", link.localId, self._to, newMessageId(), payload)))
        if self._timer is None:
            self._drain()

    def _drain(self) -> None:
        self._timer = None
        while self._waiting:
            if not self._link.connected:
                self._waiting.clear()
                return
            data = self._waiting[0]
            if self._bucket is not None:
                wait = self._bucket.take(frameCost(len(data)))
                if wait:
                    self._timer = self._clock.callLater(wait, self._drain)
                    return
            self._waiting.popleft()
            self._link.sendString(data)


@implementer(ISync)
class ZoneSync:
    """
    Keeps C{DIR/zone/items/} in step with the hub.
    """

    def __init__(self, clock, zoneDir, settings: SyncSettings) -> None:
        self._clock = clock
        self._zoneDir = zoneDir
        self._settings = settings
        self._engine: Optional[SyncEngine] = None
        self._state: Optional[SyncState] = None
        self._peer: Optional[str] = None
        self._link = None

    def wire(self, identity, revocation) -> None:
        self._identity = IIdentity(identity)
        self._revocation = IRevocation(revocation)

    def _build(self) -> SyncEngine:
        creds = self._identity.current
        # Enrolment wrote the items; a zone directory from before
        # synchronisation gets them here.
        tree, self._state, fresh = openItems(self._zoneDir.path, lambda: zoneItems(
            creds.zoneId, pki.certificatePEM(creds.caCert), pki.crlPEM(creds.crl)))
        self._tree = tree
        if fresh:
            self._agreeOnEnrolment(tree, creds.zoneId)
        return SyncEngine(
            self._clock, tree, self._state, role="device", localId=creds.deviceId,
            validators={CRL: self._checkCRL, POLICY: checkPolicy}, maxItemSize=self._settings.maxItem,
            scanInterval=self._settings.interval, constrained=self._settings.constrained,
            changed=self._applied,
        )

    def _agreeOnEnrolment(self, tree, zoneId: str) -> None:
        """
        The CA certificate and the CRL among the items came from the hub
        with enrolment: record them as agreed with it, so that they are
        nobody's local change and a newer copy from the hub replaces them
        without a conflict copy.
        """
        for path in (trustedHubPath(zoneId), CRL):
            data = tree.read(path)
            if data is not None:
                self._state.setAgreed(zoneId, path, manifestOf("pem", data).hash)

    # --- ISync ------------------------------------------------------------------

    def start(self) -> None:
        if self._engine is None:
            self._engine = self._build()
        self._engine.start()

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.stop()
            self._state.close()

    def linkUp(self, link) -> None:
        zoneId = self._identity.current.zoneId
        self._peer = zoneId
        self._link = link
        self._engine.attach(zoneId, PacedUpload(self._clock, link, zoneId),
                            frameLimit=link.hubMaxFrame)

    def linkLost(self) -> None:
        if self._peer is not None:
            peer, self._peer, self._link = self._peer, None, None
            self._engine.detach(peer)

    def received(self, payload: dict) -> None:
        if self._peer is not None:
            self._engine.received(self._peer, payload)

    def syncNow(self):
        if self._peer is None:
            raise ZoneError("NOT_CONNECTED", "the hub is not connected: nothing can sync now; "
                            "local changes are sent once it is")
        return self._engine.syncNow()

    def status(self) -> dict:
        if self._engine is None:
            return {"state": "offline"}
        status = self._engine.status()
        if self._link is not None:
            # Every frame of the hub link, sync or not: what benchmarks
            # compare with other tools' bytes on the wire.
            status["link_bytes"] = {"sent": self._link.bytesSent,
                                    "received": self._link.bytesReceived}
        return status

    def conflicts(self) -> list:
        return self._engine.conflicts() if self._engine is not None else []

    def versionTime(self, path: str) -> Optional[float]:
        """
        When this device's version of item C{path} was made, wherever it
        was made (an item from the hub keeps the time of its edit, not of
        its arrival), or None if there is none: what peer sync compares
        policies by (L{pzp.peersync}).  An edit not scanned yet is
        recorded (and sent) first.
        """
        if self._engine is None:
            return None
        self._engine.localChange(path)
        rec = self._state.item(path)
        return rec.version.time if rec is not None and rec.hash is not None else None

    # --- what the engine asks -------------------------------------------------------

    def _checkCRL(self, path: str, data: bytes) -> None:
        """
        A CRL from the hub is kept only if the zone CA signed it and its
        number is not below the one held.
        """
        creds = self._identity.current
        try:
            pki.checkCRLUpdate(pki.loadCRL(data), creds.caCert, creds.crl, allowSame=True)
        except pki.StaleCRL as e:
            raise ZoneError("SYNC_BAD_ITEM", (
                f"{path} has CRL number {e.number}, below the {e.held} this device holds"))
        except (pki.CertificateError, ValueError) as e:
            raise ZoneError("SYNC_BAD_ITEM", f"{path} is not a CRL signed by the zone CA: "
                            f"{getattr(e, 'message', e)}")

    def _applied(self, path: str, itemHash: Optional[bytes]) -> None:
        """
        An item from the hub was written: a new CRL is the revocation
        worker's to take in (the engine's validator checked it).
        """
        if path == CRL and itemHash is not None:
            self._revocation.crlReceived(pki.loadCRL(self._tree.read(CRL)))
