# -*- test-case-name: tests.pz.test_wire -*-
"""
The zone's wire format: length-prefixed JSON envelopes over TLS.

A frame is a 4-byte big-endian length and one UTF-8 JSON object.  The
object is the webinos envelope::

    {"type": "prop", "from": ID, "to": ID, "id": MSGID,
     "payload": {"status": "<message name>", ...}}

This module only parses and frames.  It never decides what a message means:
L{FrameProtocol} hands every well-formed envelope to C{envelopeReceived} and
answers every malformed one itself with a stable error code, so the code
above it only ever sees valid envelopes.
"""

import json
import os
from typing import Any, Optional

import attrs
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver

from pz.errors import ZoneError
from pz.lograte import RateLimitedLog

__all__ = [
    "Envelope",
    "FrameProtocol",
    "decodeEnvelope",
    "encodeEnvelope",
    "errorPayload",
    "newMessageId",
    "DEFAULT_MAX_FRAME",
]

#: Default limit on one frame; larger frames are refused unread.
DEFAULT_MAX_FRAME = 1024 * 1024

#: How many bad frames a peer may send before it is disconnected.
DEFAULT_MAX_ERRORS = 5

_TYPES = ("prop", "JSONRPC")
_MAX_ID = 512
_MAX_NAME = 64


def newMessageId() -> str:
    """
    A fresh random message id; ids only need to be unique per sender.
    """
    return os.urandom(9).hex()


@attrs.frozen
class Envelope:
    """
    One message.

    @ivar type: C{"prop"} for zone messages, C{"JSONRPC"} for service calls.
    @ivar sender: the C{from} field.  On receipt it is whatever the peer
        wrote; the hub replaces it with the identity its certificate proves
        before anybody acts on it.
    @ivar to: destination id.
    @ivar id: message id, unique per sender.
    @ivar payload: the message body; C{payload["status"]} names it for
        C{"prop"} messages.
    @ivar respTo: for service calls, where the answer goes.
    """

    type: str
    sender: str
    to: str
    id: str
    payload: dict
    respTo: Optional[str] = None

    @property
    def name(self) -> str:
        """
        The message name (C{payload["status"]}), or C{""} for service calls
        that carry none.
        """
        status = self.payload.get("status", "")
        return status if isinstance(status, str) else ""

    def toJSON(self) -> dict:
        """
        The envelope as a JSON-ready dict, field names as on the wire.
        """
        out = {
            "type": self.type,
            "from": self.sender,
            "to": self.to,
            "id": self.id,
            "payload": self.payload,
        }
        if self.respTo is not None:
            out["resp_to"] = self.respTo
        return out


def encodeEnvelope(envelope: Envelope) -> bytes:
    """
    Serialise an envelope into the bytes of one frame body.

    Text goes out as UTF-8, not as C{\\u} escapes: escaped, an emoji's four
    bytes become twelve, so a message that fitted the limit as its sender
    wrote it would not fit once re-encoded for its receiver.  Text that is
    not valid Unicode (lone surrogates, which only local callers can
    produce: received frames holding them are refused) is escaped, and
    every receiver refuses it.
    """
    obj = envelope.toJSON()
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def _checkString(obj: dict, key: str, limit: int, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ZoneError("BAD_ENVELOPE", f"field {key!r} must be a string")
    if len(value) > limit:
        raise ZoneError("BAD_ENVELOPE", f"field {key!r} is longer than {limit}")
    return value


def decodeEnvelope(data: bytes) -> Envelope:
    """
    Parse one frame body.

    @raise ZoneError: C{BAD_FRAME} if it is not one UTF-8 JSON object,
        C{BAD_ENVELOPE} if the object is not a valid envelope.
    """
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ZoneError("BAD_FRAME", "frame is not valid UTF-8 JSON")
    if not isinstance(obj, dict):
        raise ZoneError("BAD_FRAME", "frame is not a JSON object")
    # Valid UTF-8 cannot hold lone surrogates, but JSON's \u escapes can;
    # such text breaks every later encoder (store, logs), so refuse it here.
    if b"\\u" in data:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ZoneError("BAD_FRAME", "frame holds text that is not valid Unicode")
    kind = obj.get("type")
    if kind not in _TYPES:
        raise ZoneError("BAD_ENVELOPE", "field 'type' must be 'prop' or 'JSONRPC'")
    payload = obj.get("payload")
    if not isinstance(payload, dict):
        raise ZoneError("BAD_ENVELOPE", "field 'payload' must be an object")
    if kind == "prop":
        status = payload.get("status")
        if not isinstance(status, str) or not status or len(status) > _MAX_NAME:
            raise ZoneError("BAD_ENVELOPE", "payload 'status' must name the message")
    sender = _checkString(obj, "from", _MAX_ID, optional=True) or ""
    return Envelope(
        type=kind,
        sender=sender,
        to=_checkString(obj, "to", _MAX_ID),
        id=_checkString(obj, "id", _MAX_ID),
        payload=payload,
        respTo=_checkString(obj, "resp_to", _MAX_ID, optional=True),
    )


def errorPayload(error: ZoneError, ref: Optional[str] = None) -> dict:
    """
    The payload of an error reply for C{error}, naming the message it
    answers when there is one.
    """
    payload = {"status": "error", "code": error.code, "message": error.message}
    if ref is not None:
        payload["ref"] = ref
    return payload


class FrameProtocol(Int32StringReceiver):
    """
    Frames envelopes and answers malformed input.

    Subclasses implement L{envelopeReceived} and set C{localId} (what goes
    in C{from}) and C{peerId} (the default C{to} of error replies).  A frame
    whose declared length exceeds C{MAX_LENGTH} is refused before its body
    is buffered; a peer that sends more than C{maxErrors} bad frames is
    disconnected.
    """

    MAX_LENGTH = DEFAULT_MAX_FRAME
    maxErrors = DEFAULT_MAX_ERRORS
    localId = ""
    peerId = ""
    _errors = 0
    _dropping = False
    _log = Logger()

    #: Where refusals are logged: a L{RateLimitedLog} the owner sets, so a
    #: peer sending garbage cannot fill the disk with lines about it; None
    #: logs every one.
    refusals: Optional[RateLimitedLog] = None

    #: Bytes of frames (length prefixes included) sent and received on
    #: this link: what a benchmark compares with other tools' wire bytes.
    bytesSent = 0
    bytesReceived = 0

    def sendString(self, string: bytes) -> None:
        self.bytesSent += len(string) + 4
        super().sendString(string)

    def sendEnvelope(self, envelope: Envelope) -> None:
        """
        Write one envelope as a frame.
        """
        self.sendString(encodeEnvelope(envelope))

    def sendMessage(self, to: str, payload: dict, msgId: Optional[str] = None) -> str:
        """
        Send a C{prop} message from this end.

        @return: the message id used.
        """
        msgId = msgId or newMessageId()
        self.sendEnvelope(Envelope("prop", self.localId, to, msgId, payload))
        return msgId

    def sendError(self, error: ZoneError, ref: Optional[str] = None) -> None:
        """
        Answer with an error reply.
        """
        self.sendMessage(self.peerId, errorPayload(error, ref))

    def dataReceived(self, data: bytes) -> None:
        # Once an oversized frame has been refused the rest of the stream is
        # its body or worse; and a closing TLS link stays open until the peer
        # answers the close.  Either way, what arrives is dropped unread (and
        # unlogged), not buffered.
        if self._dropping or getattr(self.transport, "disconnecting", False):
            return
        super().dataReceived(data)

    def stringReceived(self, data: bytes) -> None:
        if getattr(self.transport, "disconnecting", False):
            return
        self.bytesReceived += len(data) + 4
        try:
            envelope = decodeEnvelope(data)
        except ZoneError as e:
            self.refuse(e)
            return
        try:
            self.envelopeReceived(envelope)
        except ZoneError as e:
            self.refuse(e, envelope.id, self.replyTarget(envelope), counts=False)

    def replyTarget(self, envelope: Envelope) -> str:
        """
        Where an error about C{envelope} goes: the peer by default.  An end
        that receives forwarded messages answers their sender instead.
        """
        return self.peerId

    def refuse(self, error: ZoneError, ref: Optional[str] = None,
               to: Optional[str] = None, counts: bool = True) -> None:
        """
        Reply with C{error} and log it.  Malformed frames (C{counts}) add
        up: a peer that keeps sending them is disconnected.
        """
        if self.transport is None or getattr(self.transport, "disconnecting", False):
            return
        (self.refusals or self._log).info(
            "refused a message from {peer}: {code} {message}",
            peer=self.peerId or self._peerAddress(),
            code=error.code,
            message=error.message,
        )
        self.sendMessage(self.peerId if to is None else to, errorPayload(error, ref))
        if not counts:
            return
        self._errors += 1
        if self._errors >= self.maxErrors:
            self.sendError(ZoneError("TOO_MANY_ERRORS"))
            self.dropPeer()

    def lengthLimitExceeded(self, length: int) -> None:
        self._dropping = True
        self._unprocessed = b""
        self.refuse(
            ZoneError(
                "FRAME_TOO_LARGE",
                f"frame of {length} bytes exceeds the limit of {self.MAX_LENGTH}",
            )
        )
        self.dropPeer()

    def dropPeer(self) -> None:
        """
        Close the link to a peer that broke the rules (too many bad frames,
        an oversized one), after what was written to it.
        """
        self.transport.loseConnection()

    def stopReading(self) -> None:
        """
        Read nothing more from this peer, not even the frames already
        buffered: one read can hold hundreds of a flooder's frames, and
        each would still be parsed (and charged, and refused) after the
        decision to drop it.  Reading stays paused until the link closes,
        so the peer's answer to a TLS close is not read either: only an
        end that aborts a close that does not finish (the hub's links do)
        may call this.
        """
        self._dropping = True
        # ends Int32StringReceiver's loop over the frames of this read
        self.paused = True
        self.transport.pauseProducing()

    def _peerAddress(self) -> str:
        try:
            peer = self.transport.getPeer()
            return f"{peer.host}:{peer.port}"
        except Exception:
            return "?"

    def envelopeReceived(self, envelope: Envelope) -> None:
        """
        Handle one valid envelope.  Raise L{ZoneError} to refuse it.
        """
        raise ZoneError("UNKNOWN_MESSAGE", f"no handler for {envelope.name!r}")
