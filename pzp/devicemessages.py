# -*- test-case-name: tests.pzp.test_hublink -*-
"""
Device-to-device messages, handled once for whatever link carried them.

A text C{message} goes to the inbox and is acknowledged with an C{ack}
naming it; an C{ack} (or an C{error} answering a request) fires the request
it answers.  The hub link builds its table on L{DeviceMessaging.messages},
and so will a direct link to another device: each message is handled here
only.
"""

from pz.dispatch import MessageTable, Text
from pz.link import Link
from pzp.inbox import MAX_TEXT
from pzp.interfaces import IDeviceMessageOwner

__all__ = ["DeviceMessaging"]


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
        zone may send every message, so nothing is refused yet; the zone's
        policy check goes here.

        @raise ZoneError: C{NOT_AUTHORISED} to refuse the message.
        """

    @messages.handler("message", text=Text(maxLength=MAX_TEXT))
    def _message(self, envelope, text: str) -> None:
        self.owner.inbox.add(envelope.sender, text)
        self.sendMessage(envelope.sender, {"status": "ack", "ref": envelope.id})

    @messages.handler("ack")
    def _ack(self, envelope) -> None:
        self.answered(envelope.payload)
