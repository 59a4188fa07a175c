# -*- test-case-name: tests.pzh.test_router -*-
"""
Routing: what the hub does with a message from an authenticated device.

Messages addressed to another device are forwarded with C{from} rewritten
to the identity the sender's certificate proves.  Messages addressed to the
hub itself (the zone id) are answered here: C{ping}, C{renew},
C{crlRequest} and the synchronisation messages (L{pzh.zonesync}).
"""

import attrs
from cryptography import x509
from twisted.logger import Logger

from pz import pki
from pz.crlparts import crlUpdates
from pz.dispatch import MessageTable
from pz.errors import ZoneError
from pz.sync.messages import MESSAGE_NAMES_TO_HUB
from pz.wire import DEFAULT_MAX_FRAME, Envelope, encodeEnvelope
from pzh.store import IHubStore

__all__ = ["Router"]


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
                 sync=None) -> None:
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
        target = self._registry.get(envelope.to)
        if target is not None:
            # Measured as it will be sent: with "from" filled in and
            # re-encoded, a frame the sender fitted under the limit may
            # not fit any more, and the receiver would drop its link.
            data = encodeEnvelope(envelope)
            if len(data) > self._maxFrame:
                raise ZoneError("FRAME_TOO_LARGE", (
                    f"with its sender filled in this message is {len(data)} bytes, "
                    f"over the receiver's limit of {self._maxFrame}"))
            target.deliver(data, link)
            return
        device = self._store.getDevice(envelope.to)
        if device is None or device.revoked is not None:
            raise ZoneError("UNKNOWN_DESTINATION", f"no device {envelope.to!r} in this zone")
        raise ZoneError("DEVICE_OFFLINE", f"{envelope.to} is not connected")

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

    def _syncMessage(self, link, envelope: Envelope) -> None:
        """
        Synchronisation: the engine checks the fields and answers a bad
        message on the wire itself.
        """
        self._sync.received(link, envelope.payload)

    for _name in MESSAGE_NAMES_TO_HUB:
        messages.handler(_name)(_syncMessage)
    del _name
