"""
Tests for L{pz.wire} (framing and envelopes) and L{pz.errors} (the stable
error codes).
"""

import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import CODES, ZoneError
from pz.lograte import RateLimitedLog
from pz.testing import frames as _frames
from pz.wire import (
    DEFAULT_MAX_FRAME,
    Envelope,
    FrameProtocol,
    decodeEnvelope,
    encodeEnvelope,
    errorPayload,
    newMessageId,
)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _json(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


def _valid(**changes) -> dict:
    envelope = {"type": "prop", "from": "a@h/x", "to": "a@h/y", "id": "1",
                "payload": {"status": "hello"}}
    envelope.update(changes)
    return envelope



class ZoneErrorTests(SynchronousTestCase):
    """
    L{ZoneError} carries only known codes.
    """

    def test_knownCode(self):
        """
        A known code keeps its code and message and shows both.
        """
        e = ZoneError("TOKEN_USED", "that one is gone")
        self.assertEqual((e.code, e.message), ("TOKEN_USED", "that one is gone"))
        self.assertEqual(str(e), "TOKEN_USED: that one is gone")

    def test_defaultMessage(self):
        """
        Without a message, the code's description from L{CODES} is used.
        """
        self.assertEqual(ZoneError("TIMEOUT").message, CODES["TIMEOUT"])

    def test_unknownCode(self):
        """
        Inventing a code fails at once.
        """
        self.assertRaises(ValueError, ZoneError, "MADE_UP")

    def test_codesDescribed(self):
        """
        Every code is upper case and has a sentence.
        """
        for code, text in CODES.items():
            self.assertEqual(code, code.upper())
            self.assertTrue(text)


class EnvelopeTests(SynchronousTestCase):
    """
    Encoding and decoding envelopes.
    """

    def test_roundTrip(self):
        """
        An encoded envelope decodes to an equal one, C{resp_to} included.
        """
        envelope = Envelope("JSONRPC", "a@h/x", "a@h/y", "7", {"jsonrpc": "2.0"}, "a@h/x")
        self.assertEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope)

    def test_wireNames(self):
        """
        On the wire the sender is C{from} and the reply target C{resp_to};
        C{resp_to} is left out when there is none.
        """
        wire = json.loads(encodeEnvelope(Envelope("prop", "s", "t", "i", {"status": "x"})))
        self.assertEqual(wire, {"type": "prop", "from": "s", "to": "t", "id": "i",
                                "payload": {"status": "x"}})
        self.assertEqual(Envelope("JSONRPC", "s", "t", "i", {}, "r").toJSON()["resp_to"], "r")

    def test_name(self):
        """
        The message name is the payload's C{status}, or empty when it has
        none or it is not a string.
        """
        self.assertEqual(Envelope("prop", "", "", "", {"status": "ping"}).name, "ping")
        self.assertEqual(Envelope("JSONRPC", "", "", "", {}).name, "")
        self.assertEqual(Envelope("JSONRPC", "", "", "", {"status": 3}).name, "")

    def test_missingFrom(self):
        """
        A missing or null C{from} decodes as empty: it is never trusted
        anyway.
        """
        self.assertEqual(decodeEnvelope(_json(_valid(**{"from": None}))).sender, "")
        body = _valid()
        del body["from"]
        self.assertEqual(decodeEnvelope(_json(body)).sender, "")

    def test_jsonrpcNeedsNoStatus(self):
        """
        A service call's payload need not name a message.
        """
        envelope = decodeEnvelope(_json(_valid(type="JSONRPC", payload={"jsonrpc": "2.0"})))
        self.assertEqual(envelope.type, "JSONRPC")

    def assertCode(self, body: bytes, code: str) -> None:
        """
        Decoding C{body} fails with C{code}.
        """
        e = self.assertRaises(ZoneError, decodeEnvelope, body)
        self.assertEqual(e.code, code)

    def test_badFrames(self):
        """
        Bytes that are not one UTF-8 JSON object are C{BAD_FRAME}.
        """
        for body in (b"", b"nope", b"\xff", b"[1]", b"3", b'"s"', b"[" * 100000,
                     b"1" * 5000, b'{"a":1} x'):
            self.assertCode(body, "BAD_FRAME")

    def test_badEnvelopes(self):
        """
        JSON objects that are not valid envelopes are C{BAD_ENVELOPE}.
        """
        cases = [
            _valid(type="other"),
            _valid(type=None),
            _valid(type=["prop"]),
            _valid(payload=[]),
            _valid(payload=None),
            _valid(payload={}),
            _valid(payload={"status": ""}),
            _valid(payload={"status": 5}),
            _valid(payload={"status": "x" * 65}),
            _valid(to=None),
            _valid(to=5),
            _valid(id=["1"]),
            _valid(to="x" * 513),
            _valid(id="x" * 513),
            _valid(**{"from": 1}),
            _valid(resp_to=1),
        ]
        for body in cases:
            self.assertCode(_json(body), "BAD_ENVELOPE")
        for body in (_valid(to="\ud800"), _valid(id="a\udfff"),
                     _valid(payload={"status": "x", "text": "\udc80"})):
            self.assertCode(_json(body), "BAD_FRAME")
        missing = _valid()
        del missing["id"]
        self.assertCode(_json(missing), "BAD_ENVELOPE")

    def test_limitsInclusive(self):
        """
        Ids of 512 characters and names of 64 are accepted.
        """
        envelope = decodeEnvelope(_json(_valid(to="x" * 512, payload={"status": "y" * 64})))
        self.assertEqual(len(envelope.to), 512)

    def test_textEncodedAsUTF8(self):
        """
        Text is encoded as UTF-8, not escaped: an emoji costs its four
        bytes, not the twelve of two C{\\u} escapes, so a frame re-encoded
        by the hub is no larger than its sender made it.
        """
        text = "\U0001F600" * 1000
        sent = json.dumps(_valid(payload={"status": "message", "text": text}),
                          ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        encoded = encodeEnvelope(decodeEnvelope(sent))
        self.assertLessEqual(len(encoded), len(sent))
        self.assertEqual(decodeEnvelope(encoded).payload["text"], text)

    def test_unencodableTextEscaped(self):
        """
        Text that is not valid Unicode, which only a local caller can
        produce, is still encoded (escaped) rather than raising.
        """
        encoded = encodeEnvelope(Envelope("prop", "a", "b", "1", {"status": "x", "t": "\ud800"}))
        self.assertIn(b"\\ud800", encoded)

    def test_errorPayload(self):
        """
        An error payload carries the code, the sentence and, when given,
        the id of the message it answers.
        """
        error = ZoneError("BAD_FRAME", "broken")
        self.assertEqual(errorPayload(error),
                         {"status": "error", "code": "BAD_FRAME", "message": "broken"})
        self.assertEqual(errorPayload(error, "m1")["ref"], "m1")

    def test_newMessageId(self):
        """
        Message ids are fresh short hex strings.
        """
        ids = {newMessageId() for _ in range(100)}
        self.assertEqual(len(ids), 100)
        for i in ids:
            self.assertEqual(len(i), 18)
            int(i, 16)


class _Recorder(FrameProtocol):
    """
    A L{FrameProtocol} that records what it accepts and refuses some.
    """

    localId = "zone"
    peerId = "peer"

    def __init__(self) -> None:
        self.envelopes = []

    def envelopeReceived(self, envelope):
        if envelope.name == "refuse":
            raise ZoneError("NOT_AUTHORISED", "not you")
        self.envelopes.append(envelope)


class FrameProtocolTests(SynchronousTestCase):
    """
    L{FrameProtocol} frames, answers malformed frames and drops peers that
    keep sending them.
    """

    def setUp(self):
        self.protocol = _Recorder()
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 1234))
        self.protocol.makeConnection(self.transport)

    def sent(self) -> list:
        """
        The frames written so far.
        """
        out = _frames(self.transport.value())
        self.transport.clear()
        return out

    def test_defaultLimit(self):
        """
        Frames are limited to 1 MiB by default.
        """
        self.assertEqual(DEFAULT_MAX_FRAME, 1024 * 1024)
        self.assertEqual(FrameProtocol.MAX_LENGTH, DEFAULT_MAX_FRAME)

    def test_validEnvelope(self):
        """
        A valid envelope reaches C{envelopeReceived} and gets no answer,
        even split across reads.
        """
        data = _frame(_json(_valid()))
        for i in range(len(data)):
            self.protocol.dataReceived(data[i : i + 1])
        self.assertEqual([e.id for e in self.protocol.envelopes], ["1"])
        self.assertEqual(self.sent(), [])

    def test_sendMessage(self):
        """
        C{sendMessage} writes a C{prop} frame from C{localId} and returns its
        id.
        """
        msgId = self.protocol.sendMessage("there", {"status": "x"})
        [frame] = self.sent()
        self.assertEqual(frame, {"type": "prop", "from": "zone", "to": "there", "id": msgId,
                                 "payload": {"status": "x"}})
        self.assertEqual(self.protocol.sendMessage("there", {"status": "x"}, "given"), "given")

    def test_malformedAnswered(self):
        """
        A malformed frame gets an error frame to the peer with its code.
        """
        self.protocol.dataReceived(_frame(b"junk"))
        [frame] = self.sent()
        self.assertEqual(frame["to"], "peer")
        self.assertEqual(frame["from"], "zone")
        self.assertEqual(frame["payload"]["status"], "error")
        self.assertEqual(frame["payload"]["code"], "BAD_FRAME")
        self.assertNotIn("ref", frame["payload"])
        self.assertFalse(self.transport.disconnecting)

    def test_refusedByHandler(self):
        """
        A L{ZoneError} from the handler is answered with its code and the
        refused message's id, and does not count towards disconnection.
        """
        for i in range(10):
            self.protocol.dataReceived(
                _frame(_json(_valid(id=f"r{i}", payload={"status": "refuse"})))
            )
        answers = self.sent()
        self.assertEqual([a["payload"]["code"] for a in answers], ["NOT_AUTHORISED"] * 10)
        self.assertEqual(answers[3]["payload"]["ref"], "r3")
        self.assertFalse(self.transport.disconnecting)

    def test_tooManyErrors(self):
        """
        The fifth malformed frame gets C{TOO_MANY_ERRORS} and the connection
        is closed; frames after that are ignored.
        """
        self.protocol.dataReceived(_frame(b"x") * 5 + _frame(_json(_valid())))
        codes = [f["payload"]["code"] for f in self.sent()]
        self.assertEqual(codes, ["BAD_FRAME"] * 5 + ["TOO_MANY_ERRORS"])
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.protocol.envelopes, [])
        self.protocol.dataReceived(_frame(b"x"))
        self.assertEqual(self.sent(), [])

    def test_lengthLimit(self):
        """
        A declared length above C{MAX_LENGTH} is refused with
        C{FRAME_TOO_LARGE} as soon as the prefix arrives, and the
        connection closes.
        """
        self.protocol.MAX_LENGTH = 100
        self.protocol.dataReceived(struct.pack(">I", 101))
        [frame] = self.sent()
        self.assertEqual(frame["payload"]["code"], "FRAME_TOO_LARGE")
        self.assertIn("101", frame["payload"]["message"])
        self.assertTrue(self.transport.disconnecting)

    def test_oversizedFrameLoggedOnce(self):
        """
        An oversized frame whose body keeps arriving after the refusal, in
        many reads, is refused and logged once: the rest is not read.
        """
        events = []
        self.protocol._log = Logger(observer=events.append)
        self.protocol.MAX_LENGTH = 1000
        self.protocol.dataReceived(struct.pack(">I", 1024 * 1024))
        for _ in range(512):
            self.protocol.dataReceived(b"x" * 2048)
        codes = [f["payload"]["code"] for f in self.sent()]
        self.assertEqual(codes, ["FRAME_TOO_LARGE"])
        self.assertEqual(len(events), 1)
        self.assertEqual(self.protocol._unprocessed, b"")

    def test_refusalsRateLimited(self):
        """
        With a L{RateLimitedLog} set, refusals beyond its burst are
        answered but not logged.
        """
        events = []
        clock = Clock()
        self.protocol.refusals = RateLimitedLog(Logger(observer=events.append), clock.seconds,
                                                burst=2, interval=10)
        for i in range(50):
            self.protocol.dataReceived(
                _frame(_json(_valid(id=f"r{i}", payload={"status": "refuse"}))))
        self.assertEqual(len(self.sent()), 50)
        self.assertEqual(len(events), 2)

    def test_nothingBufferedWhenClosing(self):
        """
        Once the link is closing (here after an over-limit prefix), what
        the peer keeps sending is dropped unread: over TLS the link stays
        open until the peer answers the close, and a peer that never does
        must not be able to fill the hub's memory meanwhile, nor its log
        with one refusal per read.
        """
        self.protocol.MAX_LENGTH = 100
        self.protocol.dataReceived(struct.pack(">I", 101))
        self.sent()
        logged = []
        self.protocol._log = Logger(observer=logged.append)
        for _ in range(50):
            self.protocol.dataReceived(b"x" * 1000)
        self.assertLessEqual(len(self.protocol._unprocessed), 104)
        self.assertEqual(logged, [])
        self.assertEqual(self.sent(), [])

    def test_noWritesWhenClosing(self):
        """
        Nothing is written once the connection is closing.
        """
        self.transport.loseConnection()
        self.protocol.refuse(ZoneError("BAD_FRAME"))
        self.assertEqual(self.transport.value(), b"")

    def test_defaultHandler(self):
        """
        Without a handler, every message is C{UNKNOWN_MESSAGE}.
        """
        protocol = FrameProtocol()
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(_frame(_json(_valid())))
        [frame] = _frames(transport.value())
        self.assertEqual(frame["payload"]["code"], "UNKNOWN_MESSAGE")
        self.assertEqual(frame["payload"]["ref"], "1")

    def test_replyTarget(self):
        """
        Errors about a message go where C{replyTarget} says.
        """
        self.protocol.replyTarget = lambda envelope: envelope.sender
        self.protocol.dataReceived(_frame(_json(_valid(payload={"status": "refuse"}))))
        [frame] = self.sent()
        self.assertEqual(frame["to"], "a@h/x")
