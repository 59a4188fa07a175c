"""
Tests for L{pz.calls}: the JSON-RPC shapes of service calls, their checks,
the error mapping and L{serve}.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from pz.calls import (
    MAX_DEPTH,
    MAX_ID,
    MAX_VALUES,
    Answer,
    Request,
    errorObject,
    makeError,
    makeRequest,
    makeResult,
    parseAnswer,
    parseRequest,
    serve,
    zoneErrorFrom,
)
from pz.errors import CODES, ZoneError
from pz.zoneservice import ServiceRegistry, ZoneService, exposed


class Tools(ZoneService):
    """
    A service whose methods cover every outcome L{serve} knows.
    """

    name = "tools"
    version = "1.0"

    def __init__(self) -> None:
        self.pending = Deferred()

    @exposed
    def add(self, a: int, b: int):
        return a + b

    @exposed
    def later(self):
        return self.pending

    @exposed
    def crash(self):
        raise ValueError("disk full")

    @exposed
    def crashLater(self):
        return fail(KeyError("gone"))

    @exposed
    def refuse(self):
        raise ZoneError("NOT_AUTHORISED", "only the owner may")

    @exposed
    def unsendable(self):
        return {"bytes": b"\x00"}

    @exposed
    def notANumber(self):
        return float("nan")


class _Log:
    """
    A logger's observer that records events.
    """

    def __init__(self) -> None:
        self.events = []
        self.log = Logger(observer=self.events.append)


def _json():
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=20,
    )


_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_-]{0,20}\Z")
_ids = st.text(min_size=1, max_size=MAX_ID) | st.integers(min_value=-(2**53), max_value=2**53)


class RequestTests(SynchronousTestCase):
    """
    L{makeRequest} and L{parseRequest}.
    """

    def test_shape(self) -> None:
        """
        A request has the JSON-RPC 2.0 fields and C{SERVICE.METHOD}.
        """
        self.assertEqual(
            makeRequest("c1", "get42", "get42"),
            {"jsonrpc": "2.0", "id": "c1", "method": "get42.get42", "params": []},
        )
        self.assertEqual(
            parseRequest({"jsonrpc": "2.0", "id": 7, "method": "a.b", "params": {"x": 1}}),
            Request(7, "a", "b", {"x": 1}),
        )

    def test_paramsOptional(self) -> None:
        """
        A request without params has no arguments.
        """
        self.assertEqual(parseRequest({"jsonrpc": "2.0", "id": 1, "method": "a.b"}).params, [])

    @given(_ids, _names, _names, st.lists(_json(), max_size=4) | st.dictionaries(st.text(), _json(), max_size=4))
    @settings(max_examples=150, deadline=None)
    def test_roundTrip(self, callId, service, method, params) -> None:
        """
        What L{makeRequest} builds, L{parseRequest} reads back, also after
        a trip through JSON text.
        """
        payload = json.loads(json.dumps(makeRequest(callId, service, method, params)))
        self.assertEqual(parseRequest(payload), Request(callId, service, method, params))

    @given(_json())
    @settings(max_examples=300, deadline=None)
    def test_randomNeverRaisesOthers(self, payload) -> None:
        """
        Random JSON is refused with a L{ZoneError} or parsed; nothing else.
        """
        for candidate in (payload, {"jsonrpc": "2.0", "id": 1, "method": "a.b", "params": payload}):
            try:
                parseRequest(candidate)
            except ZoneError as e:
                self.assertIn(e.code, ("BAD_REQUEST", "BAD_ARGUMENTS"))
            try:
                parseAnswer(candidate)
            except ZoneError as e:
                self.assertEqual(e.code, "BAD_REQUEST")

    @given(st.dictionaries(st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error", "x"]), _json()))
    @settings(max_examples=300, deadline=None)
    def test_randomFieldsNeverRaiseOthers(self, payload) -> None:
        """
        Objects made of the right field names with random values are
        refused with a L{ZoneError} or parsed; nothing else.
        """
        for parse in (parseRequest, parseAnswer):
            try:
                parse(payload)
            except ZoneError:
                pass

    def assertRefused(self, payload, code="BAD_REQUEST", fragment="") -> None:
        e = self.assertRaises(ZoneError, parseRequest, payload)
        self.assertEqual(e.code, code, payload)
        self.assertIn(fragment, e.message)

    def test_badVersion(self) -> None:
        """
        A missing or wrong C{jsonrpc} is refused.
        """
        self.assertRefused({"id": 1, "method": "a.b"}, fragment="jsonrpc")
        self.assertRefused({"jsonrpc": "1.0", "id": 1, "method": "a.b"}, fragment="jsonrpc")

    def test_badId(self) -> None:
        """
        A missing id (a notification), null, a boolean, a float, an empty
        or too long string and a huge integer are refused.
        """
        self.assertRefused({"jsonrpc": "2.0", "method": "a.b"}, fragment="notifications")
        for bad in (None, True, 1.5, "", "x" * (MAX_ID + 1), 2**60, [1], {}):
            self.assertRefused({"jsonrpc": "2.0", "id": bad, "method": "a.b"}, fragment="'id'")

    def test_badMethod(self) -> None:
        """
        A method that is not exactly C{SERVICE.METHOD} with valid names is
        refused.
        """
        for bad in (None, 3, "", "ab", "a.b.c", ".b", "a.", "a b.c", "1a.b"):
            self.assertRefused({"jsonrpc": "2.0", "id": 1, "method": bad}, fragment="SERVICE.METHOD")

    def test_badParams(self) -> None:
        """
        Params that are not a list or an object are C{BAD_ARGUMENTS}.
        """
        for bad in (None, 1, "x", True):
            self.assertRefused({"jsonrpc": "2.0", "id": 1, "method": "a.b", "params": bad}, "BAD_ARGUMENTS")

    def test_boundsParams(self) -> None:
        """
        A million-element argument, deep nesting and too many bytes are
        C{BAD_ARGUMENTS}.
        """
        base = {"jsonrpc": "2.0", "id": 1, "method": "a.b"}
        self.assertRefused(dict(base, params=[list(range(1_000_000))]), "BAD_ARGUMENTS", "values")
        self.assertRefused(dict(base, params=[0] * (MAX_VALUES + 1)), "BAD_ARGUMENTS", "values")
        deep = []
        for _ in range(MAX_DEPTH + 1):
            deep = [deep]
        self.assertRefused(dict(base, params=deep), "BAD_ARGUMENTS", "deeper")
        self.assertRefused(dict(base, params=["x" * 300_000]), "BAD_ARGUMENTS", "bytes")
        parseRequest(dict(base, params=[0] * (MAX_VALUES - 1)))

    def test_unknownFields(self) -> None:
        """
        Fields JSON-RPC does not define are refused, as is a batch.
        """
        self.assertRefused({"jsonrpc": "2.0", "id": 1, "method": "a.b", "extra": 1}, fragment="extra")
        self.assertRefused([{"jsonrpc": "2.0", "id": 1, "method": "a.b"}], fragment="batches")

    def test_makeChecks(self) -> None:
        """
        L{makeRequest} refuses what the other end would refuse.
        """
        self.assertRaises(ZoneError, makeRequest, "", "a", "b")
        self.assertRaises(ZoneError, makeRequest, "1", "a.x", "b")
        self.assertRaises(ZoneError, makeRequest, "1", "a", "b", "params")


class AnswerTests(SynchronousTestCase):
    """
    L{makeResult}, L{makeError}, L{parseAnswer} and the error mapping.
    """

    @given(_ids, _json())
    @settings(max_examples=150, deadline=None)
    def test_resultRoundTrip(self, callId, result) -> None:
        """
        A result answer reads back as it was built.
        """
        payload = json.loads(json.dumps(makeResult(callId, result)))
        self.assertEqual(parseAnswer(payload), Answer(callId, result=result))

    @given(_ids, st.sampled_from(sorted(CODES)), st.text(min_size=1, max_size=200))
    @settings(max_examples=150, deadline=None)
    def test_errorRoundTrip(self, callId, code, message) -> None:
        """
        Every zone code, with its message, crosses an error answer intact.
        """
        answer = parseAnswer(json.loads(json.dumps(makeError(callId, ZoneError(code, message)))))
        self.assertEqual((answer.id, answer.error.code, answer.error.message), (callId, code, message))

    def test_errorObject(self) -> None:
        """
        The error object carries the nearest JSON-RPC code and the zone code.
        """
        self.assertEqual(
            errorObject(ZoneError("NO_SUCH_METHOD", "no m")),
            {"code": -32601, "message": "no m", "data": {"zone_code": "NO_SUCH_METHOD"}},
        )
        self.assertEqual(errorObject(ZoneError("BAD_ARGUMENTS"))["code"], -32602)
        self.assertEqual(errorObject(ZoneError("REMOTE_ERROR"))["code"], -32000)
        self.assertEqual(len(errorObject(ZoneError("REMOTE_ERROR", "x" * 5000))["message"]), 1000)

    def test_unknownZoneCode(self) -> None:
        """
        A zone code this end does not know becomes C{REMOTE_ERROR} naming it.
        """
        e = zoneErrorFrom({"code": -32000, "message": "hm", "data": {"zone_code": "NEWER_CODE"}})
        self.assertEqual((e.code, e.message), ("REMOTE_ERROR", "NEWER_CODE: hm"))

    def test_badErrorObject(self) -> None:
        """
        An error object missing its code, message or zone code is refused.
        """
        for bad in (
            None,
            {"message": "m", "data": {"zone_code": "TIMEOUT"}},
            {"code": True, "message": "m", "data": {"zone_code": "TIMEOUT"}},
            {"code": 1, "message": 2, "data": {"zone_code": "TIMEOUT"}},
            {"code": 1, "message": "m"},
            {"code": 1, "message": "m", "data": {"zone_code": 3}},
        ):
            self.assertEqual(self.assertRaises(ZoneError, zoneErrorFrom, bad).code, "BAD_REQUEST")

    def test_badAnswers(self) -> None:
        """
        An answer with both or neither of result and error, a bad id,
        unknown fields or a wrong version is refused.
        """
        for bad in (
            {"jsonrpc": "2.0", "id": 1},
            {"jsonrpc": "2.0", "id": 1, "result": 1, "error": errorObject(ZoneError("TIMEOUT"))},
            {"jsonrpc": "2.0", "id": None, "result": 1},
            {"jsonrpc": "2.0", "id": 1, "result": 1, "more": 2},
            {"id": 1, "result": 1},
            "answer",
            {"jsonrpc": "2.0", "id": 1, "result": [0] * (MAX_VALUES + 1)},
        ):
            self.assertEqual(self.assertRaises(ZoneError, parseAnswer, bad).code, "BAD_REQUEST", bad)

    def test_unsendableResult(self) -> None:
        """
        L{makeResult} refuses bytes, NaN and non-string keys.
        """
        for bad in (b"x", float("nan"), {1: "a"}, object()):
            self.assertRaises(ValueError, makeResult, 1, bad)


class ServeTests(SynchronousTestCase):
    """
    L{serve} answers every call, whatever happens to it.
    """

    def setUp(self) -> None:
        self.registry = ServiceRegistry()
        self.tools = Tools()
        self.registry.register(self.tools)
        self.logged = _Log()

    def serve(self, payload) -> dict:
        return self.successResultOf(serve(self.registry, payload, self.logged.log))

    def call(self, method, params=None, callId="c1") -> dict:
        return self.serve(makeRequest(callId, "tools", method, params))

    def assertError(self, answer, code, fragment="", callId="c1") -> None:
        parsed = parseAnswer(answer)
        self.assertEqual(parsed.id, callId)
        self.assertIsNotNone(parsed.error, answer)
        self.assertEqual(parsed.error.code, code)
        self.assertIn(fragment, parsed.error.message)

    def test_result(self) -> None:
        """
        A good call is answered with its result.
        """
        self.assertEqual(self.call("add", [2, 3]), {"jsonrpc": "2.0", "id": "c1", "result": 5})

    def test_deferredResult(self) -> None:
        """
        A method returning a L{Deferred} is answered when it fires.
        """
        d = serve(self.registry, makeRequest(9, "tools", "later"), self.logged.log)
        self.assertNoResult(d)
        self.tools.pending.callback("done")
        self.assertEqual(self.successResultOf(d)["result"], "done")

    def test_noSuchService(self) -> None:
        """
        An unknown service is C{NO_SUCH_SERVICE}.
        """
        self.assertError(self.serve(makeRequest("c1", "nothing", "add")), "NO_SUCH_SERVICE", "'nothing'")

    def test_noSuchMethod(self) -> None:
        """
        An unknown method is C{NO_SUCH_METHOD}, also for a service that
        does not check its own names.
        """
        self.assertError(self.call("methods"), "NO_SUCH_METHOD", "'methods'")

        class Loose(ZoneService):
            name = "loose"

            def methods(self):
                return []

            def call(self, method, params):
                return "ran"

        self.registry.register(Loose())
        self.assertError(self.serve(makeRequest("c1", "loose", "anything")), "NO_SUCH_METHOD")

    def test_badArguments(self) -> None:
        """
        Wrong arguments or types are C{BAD_ARGUMENTS}, and nothing is logged
        (the caller's mistake, not the device's).
        """
        self.assertError(self.call("add", [1]), "BAD_ARGUMENTS", "tools.add")
        self.assertError(self.call("add", ["1", 2]), "BAD_ARGUMENTS", "'a'")
        self.assertEqual(self.logged.events, [])

    def test_serviceRaises(self) -> None:
        """
        A service that raises is C{REMOTE_ERROR} with its message and no
        traceback; the failure is logged on this device.
        """
        answer = self.call("crash")
        self.assertError(answer, "REMOTE_ERROR", "tools.crash: ValueError: disk full")
        self.assertNotIn("Traceback", json.dumps(answer))
        self.assertNotIn(".py", json.dumps(answer))
        self.assertEqual(len(self.logged.events), 1)
        self.assertIsNotNone(self.logged.events[0].get("log_failure"))

    def test_deferredFails(self) -> None:
        """
        A L{Deferred} that fails is C{REMOTE_ERROR} too.
        """
        self.assertError(self.call("crashLater"), "REMOTE_ERROR", "KeyError")
        self.assertEqual(len(self.logged.events), 1)

    def test_serviceZoneError(self) -> None:
        """
        A service's own L{ZoneError} keeps its code and message.
        """
        self.assertError(self.call("refuse"), "NOT_AUTHORISED", "only the owner may")

    def test_unsendableResult(self) -> None:
        """
        A result JSON cannot carry is C{REMOTE_ERROR}, logged.
        """
        self.assertError(self.call("unsendable"), "REMOTE_ERROR", "cannot be sent")
        self.assertError(self.call("notANumber", callId="c2"), "REMOTE_ERROR", "cannot be sent", "c2")
        self.assertEqual(len(self.logged.events), 2)

    def test_badRequest(self) -> None:
        """
        A malformed request is answered C{BAD_REQUEST}, with its id when
        the id was valid and C{null} otherwise.
        """
        self.assertError(self.serve({"jsonrpc": "2.0", "id": "c1", "method": "nodot"}), "BAD_REQUEST")
        answer = self.serve({"jsonrpc": "2.0", "id": None, "method": "tools.add"})
        self.assertIsNone(answer["id"])
        self.assertEqual(answer["error"]["data"]["zone_code"], "BAD_REQUEST")
        self.assertIsNone(self.serve(["not", "a", "call"])["id"])

    def test_millionElements(self) -> None:
        """
        A million-element argument is refused before the service runs.
        """
        payload = {"jsonrpc": "2.0", "id": "c1", "method": "tools.add", "params": [0] * 1_000_000}
        self.assertError(self.serve(payload), "BAD_ARGUMENTS", "values")

    @given(_json())
    @settings(max_examples=200, deadline=None)
    def test_randomAlwaysAnswered(self, payload) -> None:
        """
        Random JSON, as a request or as its params, always gets an answer
        that L{parseAnswer} accepts when it has an id.
        """
        for candidate in (payload, {"jsonrpc": "2.0", "id": 1, "method": "tools.add", "params": payload}):
            answer = self.successResultOf(serve(self.registry, candidate, self.logged.log))
            self.assertEqual(answer["jsonrpc"], "2.0")
            if answer["id"] is not None:
                parseAnswer(answer)
