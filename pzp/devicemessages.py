# -*- test-case-name: tests.pzp.test_hublink -*-
"""
Device-to-device messages, handled once for whatever link carried them.

A text C{message} goes to the inbox and is acknowledged with an C{ack}
naming it; an C{ack} (or an C{error} answering a request) fires the request
it answers.  A service call (a C{JSONRPC} envelope, request or answer) goes
to the owner's call worker (L{pzp.calls.CallWorker}), which answers on the
link the request came by.  The hub link builds its table on
L{DeviceMessaging.messages}, and so does the direct link to another device
(L{pzp.peerlink}): each message is handled here only.
"""

from pz.dispatch import MessageTable, Text
from pz.errors import ZoneError
from pz.link import Link
from pzp.inbox import MAX_TEXT
from pzp.interfaces import IDeviceMessageOwner

__all__ = ["DeviceMessaging", "FROM_HUB_ONLY"]

#: Messages only the hub itself may send a device: on the hub link, with
#: the zone id as sender (never another device's message the hub
#: forwards); never over a peer link.
FROM_HUB_ONLY = frozenset({"meshAnswer"})


class DeviceMessaging(Link):
    """
    A link that carries messages between devices.
    """

    ownerInterface = IDeviceMessageOwner
    messages = MessageTable()

    @messages.before
    def permitted(self, name: str, envelope) -> None:
        """
        Before every message this link handles (its table and every table
        built on it): whether the sender may send it here.  The link's
        peer proved its identity in the handshake and every device of the
        zone may send every device-to-device message; what only the hub
        may ask (L{FROM_HUB_ONLY}) is refused from anyone else.  Service
        calls (C{JSONRPC}) do not pass this table: the zone's policy
        decides on them in one place, L{pzp.calls.CallWorker}, for every
        link alike (L{pzp.policy}).

        @raise ZoneError: C{NOT_AUTHORISED} to refuse the message.
        """
        if name in FROM_HUB_ONLY and not self.fromHub(envelope):
            raise ZoneError("NOT_AUTHORISED", f"only the hub may send this device {name!r}")

    def fromHub(self, envelope) -> bool:
        """
        Whether C{envelope} comes from the hub itself: never over this
        kind of link (a direct link to another device).
        """
        return False

    def envelopeReceived(self, envelope) -> None:
        if envelope.type == "JSONRPC":
            self.owner.calls.envelopeReceived(self, envelope)
        else:
            super().envelopeReceived(envelope)

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self.owner.calls.linkLost(self)

    @messages.handler("message", text=Text(maxLength=MAX_TEXT))
    def _message(self, envelope, text: str) -> None:
        self.owner.inbox.add(envelope.sender, text)
        self.sendMessage(envelope.sender, {"status": "ack", "ref": envelope.id})

    @messages.handler("ack")
    def _ack(self, envelope) -> None:
        self.answered(envelope.payload)
