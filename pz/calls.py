# -*- test-case-name: tests.pz.test_calls -*-
"""
Service calls between devices: the JSON-RPC 2.0 shapes carried in the
payload of a C{"JSONRPC"} envelope, their strict checks, the mapping between
L{ZoneError} and the JSON-RPC error object, and L{serve}, which runs one
request against a device's L{ServiceRegistry}.

The shapes follow the JSON-RPC 2.0 Specification:

    request: {"jsonrpc": "2.0", "id": ID, "method": "SERVICE.METHOD", "params": [...] | {...}}
    result:  {"jsonrpc": "2.0", "id": ID, "result": VALUE}
    error:   {"jsonrpc": "2.0", "id": ID, "error": {"code": INT, "message": TEXT,
                                                    "data": {"zone_code": CODE}}}

Every call expects an answer, so JSON-RPC notifications (no C{id}) and
batches are not part of the zone's protocol and are refused.  The zone code
in C{data.zone_code} is what programs match on; the numeric C{code} is the
nearest JSON-RPC one, for generic JSON-RPC tools.
"""

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from pz.errors import CODES, ZoneError
from pz.zoneservice import NAME

__all__ = [
    "Request",
    "Answer",
    "makeRequest",
    "parseRequest",
    "requestId",
    "makeResult",
    "makeError",
    "parseAnswer",
    "errorObject",
    "zoneErrorFrom",
    "checkJSON",
    "serve",
    "MAX_ID",
    "MAX_PARAMS_BYTES",
    "MAX_VALUES",
    "MAX_DEPTH",
    "MAX_RESULT_BYTES",
    "MAX_MESSAGE",
]

_log = Logger()

#: The longest string id, in characters; integer ids must be exact in a
#: double (JSON numbers elsewhere may not keep more).
MAX_ID = 128
_MAX_INT_ID = 2**53
#: The largest call arguments, encoded.
MAX_PARAMS_BYTES = 256 * 1024
#: The most JSON values (each scalar, list and object counts one) in the
#: arguments or a result: a million-element argument is refused before any
#: service sees it.
MAX_VALUES = 10_000
#: The deepest nesting of lists and objects.
MAX_DEPTH = 32
#: The largest result, encoded: it must fit in a frame with its envelope.
MAX_RESULT_BYTES = 512 * 1024
#: Error messages longer than this are cut.
MAX_MESSAGE = 1000

#: The JSON-RPC 2.0 code nearest to each zone code; others are -32000
#: ("server error", the range the specification leaves to implementations).
_RPC_CODES = {
    "BAD_REQUEST": -32600,
    "NO_SUCH_SERVICE": -32601,
    "NO_SUCH_METHOD": -32601,
    "BAD_ARGUMENTS": -32602,
    "INTERNAL": -32603,
}
_SERVER_ERROR = -32000


@dataclass(frozen=True)
class Request:
    """
    One checked call request.

    @ivar id: the caller's id for the call (str or int).
    @ivar service: the service's name.
    @ivar method: the method's name.
    @ivar params: the arguments, a list or a dict.
    """

    id: Union[str, int]
    service: str
    method: str
    params: Union[list, dict]


@dataclass(frozen=True)
class Answer:
    """
    One checked answer: a C{result}, or an C{error}.

    @ivar error: L{None} for a result, else the L{ZoneError} it carries.
    """

    id: Union[str, int]
    result: Any = None
    error: Optional[ZoneError] = None


def _bad(message: str) -> ZoneError:
    return ZoneError("BAD_REQUEST", message)


def _checkId(value) -> Union[str, int]:
    """
    @raise ZoneError: C{BAD_REQUEST} unless C{value} is a non-empty string of
        at most L{MAX_ID} characters or an integer that a double keeps exactly.
    """
    if isinstance(value, bool):
        raise _bad("field 'id' must be a string or an integer")
    if isinstance(value, str):
        if not value or len(value) > MAX_ID:
            raise _bad(f"field 'id' must be 1 to {MAX_ID} characters")
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_INT_ID:
            raise _bad("field 'id' is too large an integer")
        return value
    raise _bad("field 'id' must be a string or an integer")


def _countValues(value, limit: int = MAX_VALUES, depth: int = MAX_DEPTH) -> None:
    """
    Walk a JSON value without recursion, stopping as soon as it holds more
    than C{limit} values or nests deeper than C{depth}.

    @raise ValueError: saying which bound was crossed.
    """
    count = 0
    pending = [(value, 0)]
    while pending:
        item, level = pending.pop()
        count += 1
        if count > limit:
            raise ValueError(f"more than {limit} values")
        if isinstance(item, (list, dict)):
            if level >= depth:
                raise ValueError(f"nested deeper than {depth}")
            children = item.values() if isinstance(item, dict) else item
            if len(children) > limit:
                raise ValueError(f"more than {limit} values")
            pending.extend((child, level + 1) for child in children)


def checkJSON(value, maxBytes: int) -> int:
    """
    Check that C{value} can be carried as strict JSON within the bounds.

    @return: its encoded size in bytes.
    @raise ValueError: saying why not (not JSON, NaN or infinity, a key that
        is not a string, too many values, too deep, too large).
    """
    _countValues(value)
    _checkKeys(value)
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not JSON: {e}")
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > maxBytes:
        raise ValueError(f"{size} bytes, more than {maxBytes}")
    return size


def _checkKeys(value) -> None:
    """
    @raise ValueError: if an object key is not a string (C{json} would turn
        it into one silently, and the caller would not get what was sent).
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValueError(f"object key {key!r} is not a string")
                pending.append(child)
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def _splitMethod(method) -> tuple:
    if not isinstance(method, str) or method.count(".") != 1:
        raise _bad("field 'method' must be 'SERVICE.METHOD'")
    service, name = method.split(".")
    if not NAME.match(service) or not NAME.match(name):
        raise _bad("field 'method' must be 'SERVICE.METHOD' with valid names")
    return service, name


def _checkParams(params) -> Union[list, dict]:
    if not isinstance(params, (list, dict)):
        raise ZoneError("BAD_ARGUMENTS", "field 'params' must be a list or an object")
    try:
        checkJSON(params, MAX_PARAMS_BYTES)
    except ValueError as e:
        raise ZoneError("BAD_ARGUMENTS", f"field 'params' is refused: {e}")
    return params


def makeRequest(id, service: str, method: str, params=None) -> dict:
    """
    Build a request payload, checked as L{parseRequest} checks it.

    @param params: a list or a dict; L{None} for no arguments.
    @raise ZoneError: C{BAD_REQUEST} or C{BAD_ARGUMENTS} for a request that
        the other end would refuse.
    """
    payload = {
        "jsonrpc": "2.0",
        "id": id,
        "method": f"{service}.{method}",
        "params": [] if params is None else params,
    }
    parseRequest(payload)
    return payload


def requestId(payload) -> Optional[Union[str, int]]:
    """
    The id of a request payload, if it has a valid one, so that even a
    refused request is answered with the id its caller waits on.
    """
    if not isinstance(payload, dict):
        return None
    try:
        return _checkId(payload.get("id"))
    except ZoneError:
        return None


def _checkShape(payload, notAnObject: str, fields: set) -> None:
    """
    What requests and answers share: a JSON-RPC 2.0 object with no field
    but C{fields}.
    """
    if not isinstance(payload, dict):
        raise _bad(notAnObject)
    if payload.get("jsonrpc") != "2.0":
        raise _bad("field 'jsonrpc' must be '2.0'")
    extra = set(payload) - fields
    if extra:
        raise _bad(f"unknown fields {sorted(extra)!r}")


def parseRequest(payload) -> Request:
    """
    Check a request payload strictly.

    @raise ZoneError: C{BAD_REQUEST} for a payload that is not a JSON-RPC
        2.0 call of this zone (not an object, wrong version, missing or bad
        id, bad method, unknown fields); C{BAD_ARGUMENTS} for params that
        are not a list or an object or cross the size bounds.
    """
    _checkShape(payload, "a call must be a JSON object (batches are not supported)",
                {"jsonrpc", "id", "method", "params"})
    if "id" not in payload:
        raise _bad("field 'id' is missing (notifications are not supported)")
    callId = _checkId(payload["id"])
    service, method = _splitMethod(payload.get("method"))
    params = _checkParams(payload.get("params", []))
    return Request(callId, service, method, params)


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def errorObject(error: ZoneError) -> dict:
    """
    The JSON-RPC error object for a L{ZoneError}.
    """
    return {
        "code": _RPC_CODES.get(error.code, _SERVER_ERROR),
        "message": _cut(error.message),
        "data": {"zone_code": error.code},
    }


def zoneErrorFrom(obj) -> ZoneError:
    """
    The L{ZoneError} an error object carries.

    A zone code this end does not know (a newer peer) becomes
    C{REMOTE_ERROR} with the code in the message, so nothing is lost and
    nothing unknown is invented.

    @raise ZoneError: C{BAD_REQUEST} if C{obj} is not an error object.
    """
    if not isinstance(obj, dict):
        raise _bad("field 'error' must be an object")
    code, message, data = obj.get("code"), obj.get("message"), obj.get("data")
    if not isinstance(code, int) or isinstance(code, bool):
        raise _bad("field 'error.code' must be an integer")
    if not isinstance(message, str):
        raise _bad("field 'error.message' must be a string")
    if not isinstance(data, dict) or not isinstance(data.get("zone_code"), str):
        raise _bad("field 'error.data.zone_code' must be a string")
    zoneCode = data["zone_code"]
    message = _cut(message)
    if zoneCode not in CODES:
        return ZoneError("REMOTE_ERROR", _cut(f"{zoneCode[:64]}: {message}"))
    return ZoneError(zoneCode, message)


def makeResult(id, result) -> dict:
    """
    Build a result answer.

    @raise ValueError: if the result cannot be carried (see L{checkJSON}).
    """
    checkJSON(result, MAX_RESULT_BYTES)
    return {"jsonrpc": "2.0", "id": id, "result": result}


def makeError(id, error: ZoneError) -> dict:
    """
    Build an error answer; C{id} is L{None} when the request had no valid id.
    """
    return {"jsonrpc": "2.0", "id": id, "error": errorObject(error)}


def parseAnswer(payload) -> Answer:
    """
    Check an answer payload strictly.

    @raise ZoneError: C{BAD_REQUEST} for anything but one result or one
        error answer with a valid id.
    """
    _checkShape(payload, "an answer must be a JSON object", {"jsonrpc", "id", "result", "error"})
    callId = _checkId(payload.get("id"))
    if ("result" in payload) == ("error" in payload):
        raise _bad("an answer has exactly one of 'result' and 'error'")
    if "error" in payload:
        return Answer(callId, error=zoneErrorFrom(payload["error"]))
    try:
        checkJSON(payload["result"], MAX_RESULT_BYTES)
    except ValueError as e:
        raise _bad(f"field 'result' is refused: {e}")
    return Answer(callId, result=payload["result"])


def serve(registry, payload, log: Logger = _log) -> Deferred:
    """
    Run one call against a device's services.

    Never fails: every outcome is an answer, unless the returned Deferred
    is cancelled (the serving device gave up on a slow service).  A service's own L{ZoneError}
    keeps its code; any other exception is C{REMOTE_ERROR} with the
    exception's type and message (never a traceback), and the failure is
    logged here, on the device that ran it.

    @param registry: the device's L{ServiceRegistry}.
    @param payload: the request payload, as received.
    @return: a L{Deferred} firing with the answer payload.
    """
    try:
        request = parseRequest(payload)
        service = registry.get(request.service)
        if request.method not in service.methods():
            raise ZoneError(
                "NO_SUCH_METHOD", f"service {request.service!r} has no method {request.method!r}"
            )
    except ZoneError as e:
        return succeed(makeError(requestId(payload), e))
    where = f"{request.service}.{request.method}"

    def answered(result):
        try:
            return makeResult(request.id, result)
        except ValueError as e:
            log.warn("call {where} returned what cannot be sent: {why}", where=where, why=str(e))
            return makeError(request.id, ZoneError("REMOTE_ERROR", f"{where}: the result cannot be sent: {e}"))

    def failed(failure):
        if failure.check(CancelledError):
            return failure  # whoever cancelled the call answers for it
        if failure.check(ZoneError):
            return makeError(request.id, failure.value)
        log.failure("call {where} failed", failure, where=where)
        exception = failure.value
        text = str(exception) or "no message"
        return makeError(
            request.id, ZoneError("REMOTE_ERROR", _cut(f"{where}: {type(exception).__name__}: {text}"))
        )

    d = maybeDeferred(service.call, request.method, request.params)
    d.addCallbacks(answered, failed)
    return d

