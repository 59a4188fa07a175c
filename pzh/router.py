# -*- test-case-name: tests.pzh.test_router -*-
"""
Routing: what the hub does with a message from an authenticated device.

Messages addressed to another device are forwarded with C{from} rewritten
to the identity the sender's certificate proves; those addressed to a
device of another zone go to the zone links (L{pzh.zonelink}).  Messages addressed to the
hub itself (the zone id) are answered here: C{ping}, C{renew},
C{crlRequest}, the synchronisation messages (L{pzh.zonesync}),
C{peerEndpoint} (the port of the device's peer server, which its entry in
C{pzpUpdate} then carries), C{servicesAnnounce} (what services the
device offers, kept in the zone's service cache, L{pzh.services}),
C{meshAccounts} (the Mesh accounts an administration device answers
requests for, L{pzh.meshanswerers}) and the answers to the hub's own
requests (C{meshAnswered}, C{error}), matched by id on the link they came
by and never answered.

A message to an enrolled device that is offline is refused
(C{DEVICE_OFFLINE}) unless its payload says C{"queue": true}: then the
forwarded frame is kept in the store (bounded per device, expiring, see
L{QueueLimits}), the sender is answered C{queued}, and the frames are sent
in order when the device registers (L{Router.deliverQueued}).
"""

import attrs
from cryptography import x509
from twisted.logger import Logger

from pz import pki
from pz.crlparts import crlUpdates
from pz.dispatch import Anything, JSONList, MessageTable
from pz.errors import ZoneError
from pz.servicecache import parseAnnounce
from pz.sync.messages import MESSAGE_NAMES_TO_HUB
from pz.wire import DEFAULT_MAX_FRAME, Envelope, encodeEnvelope
from pzh.store import IHubStore

__all__ = ["Router", "QueueLimits"]


@attrs.frozen
class QueueLimits:
    """
    How much the hub keeps for one offline device, and for how long.

    @ivar expiry: seconds a queued message is kept undelivered.
    @ivar maxMessages: messages queued for one device at most.
    @ivar maxBytes: bytes of frames queued for one device at most.
    """

    expiry: float = 7 * 24 * 3600.0
    maxMessages: int = 1000
    maxBytes: int = 16 * 1024 * 1024


#: What the hub answers only when it has a zone authority.
_NEEDS_AUTHORITY = frozenset({"renew", "crlRequest"})

#: What the hub answers only when it synchronises (L{pz.sync.engine}).
_SYNC = frozenset(MESSAGE_NAMES_TO_HUB)


class Router:
    """
    Forwards by C{to}; answers the messages addressed to the hub through
    its table, L{Router.messages}.
    """

    _log = Logger()
    messages = MessageTable(unknown=lambda name: ZoneError(
        "UNKNOWN_MESSAGE", f"the hub does not handle {name!r}"))

    def __init__(self, zoneId: str, registry, store: IHubStore, authority=None,
                 maxFrame: int = DEFAULT_MAX_FRAME, crlChanged=None, issued=None,
                 sync=None, clock=None, queue: QueueLimits = QueueLimits(),
                 services=None, routed=lambda: None, mesh=None, zones=None) -> None:
        """
        @param clock: what queued messages are timed by; a router without
            one (some tests') does not queue.
        @param services: the L{pzh.services.ZoneServiceCache} announces
            go to; a router without one (some tests') refuses them.
        @param routed: called once for each message accepted for another
            device, forwarded or queued (the hub's metrics).
        @param mesh: the L{pzh.meshanswerers.MeshAnswerers} told which
            Mesh accounts a device answers for; a router without one
            refuses C{meshAccounts}.
        @param zones: the L{pzh.zonelink.ZoneLinks} a message to another
            zone's device goes to; a router without one refuses those as
            C{UNKNOWN_DESTINATION}.
        """
        self._zones = zones
        self._mesh = mesh
        self._routed = routed
        self._services = services
        self._clock = clock
        self._queue = queue
        # deviceId -> [link, queued frames not written yet]: while a link
        # has some, what is forwarded to it waits behind them.
        self._draining: dict = {}
        self._zoneId = zoneId
        self._maxFrame = maxFrame
        self._registry = registry
        self._store = IHubStore(store)
        self._authority = authority
        self._crlChanged = crlChanged
        self._issued = issued
        self._sync = sync

    def dispatch(self, link, envelope: Envelope) -> None:
        """
        Route one envelope received on C{link}.

        @raise ZoneError: if it cannot be delivered; nothing was sent.
        """
        envelope = attrs.evolve(envelope, sender=link.deviceId)
        if envelope.to in ("", self._zoneId):
            self.messages.dispatchEnvelope(envelope, link)
            return
        if self._zones is not None and not envelope.to.startswith(self._zoneId + "/"):
            self._zones.forwardOut(link, envelope)
            self._routed()
            return
        queue = envelope.payload.get("queue", False)
        if not isinstance(queue, bool):
            raise ZoneError("BAD_REQUEST", "field 'queue' must be true or false")
        target = self._registry.get(envelope.to)
        if target is not None:
            self._forward(link, target, envelope)
        else:
            device = self._store.getDevice(envelope.to)
            if device is None or device.revoked is not None:
                raise ZoneError("UNKNOWN_DESTINATION", f"no device {envelope.to!r} in this zone")
            if not queue or self._clock is None:
                raise ZoneError("DEVICE_OFFLINE", f"{envelope.to} is not connected")
            self._keep(link, envelope, self._forwarded(envelope))
        self._routed()

    def _forward(self, link, target, envelope: Envelope) -> None:
        """
        Send C{envelope} from C{link} to the connected device C{target}.
        """
        data = self._forwarded(envelope)
        draining = self._draining.get(envelope.to)
        if draining is not None and draining[0] is target:
            # Sent after the queued messages still waiting, not
            # before them.
            self._registry.sendFrames(target, [lambda link: data])
            return
        target.deliver(data, link)

    def _forwarded(self, envelope: Envelope) -> bytes:
        """
        The frame the destination is sent.  Measured as it will be sent:
        with "from" filled in and re-encoded, a frame the sender fitted
        under the limit may not fit any more, and the receiver would drop
        its link.
        """
        data = encodeEnvelope(envelope)
        if len(data) > self._maxFrame:
            raise ZoneError("FRAME_TOO_LARGE", (
                f"with its sender filled in this message is {len(data)} bytes, "
                f"over the receiver's limit of {self._maxFrame}"))
        return data

    def _keep(self, link, envelope: Envelope, data: bytes) -> None:
        """
        Queue C{data} for the offline destination of C{envelope} and tell
        the sender so, naming its message.
        """
        now = self._clock.seconds()
        limits = self._queue
        # What has expired does not count against the bound.
        self._store.expireQueued(now - limits.expiry, envelope.to)
        seq = self._store.queueMessage(envelope.to, link.deviceId, envelope.id, data, now,
                                       limits.maxMessages, limits.maxBytes)
        if seq is None:
            raise ZoneError("QUEUE_FULL", (
                f"{envelope.to} is offline and already has as many queued messages as the hub "
                f"keeps for it ({limits.maxMessages} messages, {limits.maxBytes} bytes)"))
        link.sendMessage(link.deviceId, {"status": "queued", "ref": envelope.id})

    def deliverQueued(self, link) -> None:
        """
        Send a device that just registered what was queued for it, in the
        order it was queued, paced like the hub's other sends; each message
        leaves the store as it is written, so what a lost link did not get
        waits for the next one.  Expired messages are dropped first.
        """
        if self._clock is None:
            return
        expired = self._store.expireQueued(self._clock.seconds() - self._queue.expiry,
                                           link.deviceId)
        if expired:
            self._log.info("dropped {count} expired queued message(s) for {device}",
                           count=expired, device=link.deviceId)
        self._draining.pop(link.deviceId, None)
        queued = self._store.queuedFor(link.deviceId)
        if queued:
            self._log.info("delivering {count} queued message(s) to {device}",
                           count=len(queued), device=link.deviceId)
            draining = self._draining[link.deviceId] = [link, len(queued)]
            self._registry.sendFrames(link, [self._writer(message, draining)
                                             for message in queued])

    def _writer(self, message, draining: list):
        """
        A frame maker for L{Registry.sendFrames} that forgets C{message}
        as it is written; after the last one, forwarding to the link goes
        straight through again.
        """
        def write(link) -> bytes:
            self._store.removeQueued(message.seq)
            draining[1] -= 1
            if draining[1] == 0 and self._draining.get(link.deviceId) is draining:
                del self._draining[link.deviceId]
            return message.frame
        return write

    @messages.before
    def _offered(self, name: str, link, envelope: Envelope) -> None:
        """
        Before every message to the hub: a hub without a zone authority
        (some tests' hubs) has no certificates to renew or CRL to send.
        """
        if self._authority is None and name in _NEEDS_AUTHORITY:
            raise ZoneError("UNKNOWN_MESSAGE", f"the hub does not handle {name!r}")
        if self._sync is None and name in _SYNC:
            raise ZoneError("UNKNOWN_MESSAGE", f"this hub does not synchronise ({name!r})")
        if self._services is None and name == "servicesAnnounce":
            raise ZoneError("UNKNOWN_MESSAGE", f"the hub does not handle {name!r}")
        if self._mesh is None and name == "meshAccounts":
            raise ZoneError("UNKNOWN_MESSAGE", f"the hub does not handle {name!r}")

    @messages.handler("ping")
    def _ping(self, link, envelope: Envelope) -> None:
        link.sendMessage(link.deviceId, {"status": "pong", "ref": envelope.id})

    @messages.handler("renew")
    def renew(self, link, envelope: Envelope, deviceId=None) -> None:
        """
        Issue a new certificate to the device on C{link} for the key in
        the request's CSR.  Also serves links admitted only to renew (an
        expired certificate within the grace period).
        """
        csrPEM = envelope.payload.get("csr")
        try:
            csr = x509.load_pem_x509_csr(csrPEM.encode("ascii"))
        except (AttributeError, ValueError, UnicodeEncodeError):
            raise ZoneError("CERT_INVALID", "renew needs a PEM certificate request in 'csr'")
        deviceId = deviceId or link.deviceId
        cert, superseded = self._authority.renew(
            deviceId, csr, getattr(link, "certificate", None),
            grace=getattr(link, "renewingId", None) is not None)
        # The CRL is not in the answer: it may be larger than any frame.
        # When superseded certificates made a new one, every device
        # (this one included) is sent it in pieces.
        link.sendMessage(deviceId, {
            "status": "renewed",
            "ref": envelope.id,
            "certificate": pki.certificatePEM(cert).decode("ascii"),
        })
        if self._issued is not None:
            self._issued(deviceId, cert)
        if superseded and self._crlChanged is not None:
            self._crlChanged()

    @messages.handler("crlRequest")
    def _crlRequest(self, link, envelope: Envelope) -> None:
        """
        Send the current CRL, in pieces if need be, to a device that found
        on connecting that it holds an older one.  Each CRL is sent once
        per link: asking again cannot make the hub send it over and over.
        """
        number = pki.crlNumber(self._authority.crl)
        if link.crlSent == number:
            raise ZoneError("BAD_REQUEST", f"CRL number {number} was already sent on this link")
        link.crlSent = number
        self._registry.sendPaced([link], crlUpdates(self._authority.crlPEM))

    @messages.handler("peerEndpoint", port=Anything(optional=True))
    def _peerEndpoint(self, link, envelope: Envelope, port) -> None:
        """
        The device's peer server listens on C{port} (0: it runs none).  No
        answer: the other devices hear of it in the next C{pzpUpdate}.
        """
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ZoneError("BAD_REQUEST",
                            "peerEndpoint: field 'port' must be an integer from 0 to 65535")
        self._registry.setPeerPort(link, port)

    @messages.handler("servicesAnnounce")
    def _servicesAnnounce(self, link, envelope: Envelope) -> None:
        """
        The device's services, all of them: its entry in the zone's service
        cache becomes that.  No answer unless it is refused.
        """
        self._services.announced(link.deviceId, parseAnnounce(envelope.payload))

    @messages.handler("meshAccounts", accounts=JSONList())
    def _meshAccounts(self, link, envelope: Envelope, accounts) -> None:
        """
        The Mesh accounts the device answers connection requests for (its
        proxy runs with C{--mesh-approvals}), all of them.  No answer
        unless it is refused.
        """
        self._mesh.announced(link, accounts)

    @messages.handler("meshAnswered")
    @messages.handler("error")
    def _answer(self, link, envelope: Envelope) -> None:
        """
        An answer to a request the hub sent on this link (by its C{ref}).
        One that answers nothing waiting there (late, or naming another
        link's request) is only logged: an error is never answered, or the
        hub and a device could send each other errors about errors.
        """
        if link.answered(envelope.payload):
            return
        payload = envelope.payload
        (getattr(link, "refusals", None) or self._log).info(
            "{device} sent {status} {code} answering no request of the hub",
            device=link.deviceId, status=payload.get("status"), code=payload.get("code", ""))

    def _syncMessage(self, link, envelope: Envelope) -> None:
        """
        Synchronisation: the engine checks the fields and answers a bad
        message on the wire itself.
        """
        self._sync.received(link, envelope.payload)

    for _name in MESSAGE_NAMES_TO_HUB:
        messages.handler(_name)(_syncMessage)
    del _name
