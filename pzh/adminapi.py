# -*- test-case-name: tests.pzh.test_adminapi -*-
"""
The admin page's JSON API, mounted at C{/api} on the hub's web port.

Every route runs one of the zone's operations (L{pzh.operations}), the
ones C{pzctl} runs, and answers JSON; a refusal is
C{{"code": CODE, "message": SENTENCE}} with the code C{pzctl} would print
and the HTTP status that fits it.  Request bodies are one JSON object of
at most L{MAX_BODY} bytes.  An operation that waits for someone else (a
Mesh answer, signed on an administration device) returns a Deferred, and
the route answers when it fires.  C{GET /api/events} is a Server-Sent
Events stream of the zone's changes, fed by the hub's
L{pzh.events.ZoneEvents}.

This resource checks no one's identity: the hub's site wraps it with the
admin sign-in guard before mounting it.  Routes are listed in
C{docs/admin-api.md}.
"""

import json
import re

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from pz.errors import ZoneError
from pz.timefmt import isoTime
from pzh.operations import ZoneOperations
from pzh.qr import qrSVG

__all__ = ["apiResource", "MAX_BODY", "KEEPALIVE", "MAX_STREAMS", "STATUS"]

#: The largest request body the API reads, in bytes.
MAX_BODY = 4096

#: Seconds between the comments that keep an event stream's connection
#: (and the proxies on its way) from timing out.
KEEPALIVE = 15.0

#: Event streams open at once; more are refused until one closes.
MAX_STREAMS = 32

#: The HTTP status of each refusal code; others are 500.
STATUS = {
    "BAD_REQUEST": 400,
    "NOT_AUTHORISED": 403,
    "UNKNOWN_DESTINATION": 404,
    "UNKNOWN_MESSAGE": 404,
    "TOKEN_INVALID": 404,
    "NAME_TAKEN": 409,
    "TOKEN_USED": 409,
    "TOKEN_EXPIRED": 409,
    "POLICY_INVALID": 409,
    "RATE_LIMITED": 429,
    "NOT_RUNNING": 503,
    "NOT_CONNECTED": 503,
    "TIMEOUT": 504,
}

_JSON = b"application/json"


class _Route:
    """
    One route: a method, a path pattern whose groups are the handler's
    arguments, and the handler (a method of L{AdminAPI}, taking the body
    as C{body} when C{takesBody}).
    """

    def __init__(self, method: bytes, pattern: str, handler, takesBody: bool) -> None:
        self.method = method
        self.pattern = re.compile(r"\A" + pattern + r"\Z")
        self.handler = handler
        self.takesBody = takesBody


class _RouteTable:
    """
    The API's routes, declared beside their handlers (as klein binds
    routes declared on a class).
    """

    def __init__(self) -> None:
        self.routes: list = []

    def route(self, method: str, pattern: str, takesBody: bool = False):
        def declare(handler):
            self.routes.append(_Route(method.encode("ascii"), pattern, handler, takesBody))
            return handler
        return declare


class AdminAPI(Resource):
    """
    The routes of the admin API over L{ZoneOperations}.
    """

    isLeaf = True
    _log = Logger()
    table = _RouteTable()

    def __init__(self, operations: ZoneOperations, events, clock) -> None:
        super().__init__()
        self._ops = operations
        self._events = events
        self._clock = clock
        self._streams: set = set()

    # -- plumbing -------------------------------------------------------------

    def render(self, request):
        path = "/".join(segment.decode("utf-8", "replace") for segment in request.postpath)
        allowed = []
        for route in self.table.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            try:
                args = list(match.groups())
                if route.takesBody:
                    args.append(self._body(request))
                result = route.handler(self, request, *args)
            except ZoneError as e:
                return self._refuse(request, e)
            except Exception:
                self._log.failure("admin API {method} /api/{path} failed",
                                  method=request.method.decode("ascii", "replace"), path=path)
                return self._refuse(request, ZoneError("INTERNAL"))
            if result is NOT_DONE_YET:
                return result
            if isinstance(result, Deferred):
                self._answerLater(request, result, path)
                return NOT_DONE_YET
            return self._answer(request, result)
        if allowed:
            request.setHeader(b"allow", b", ".join(sorted(set(allowed))))
            return self._refuse(request, ZoneError(
                "BAD_REQUEST",
                f"/api/{path} does not take {request.method.decode('ascii', 'replace')}"
            ), 405)
        return self._refuse(request, ZoneError("UNKNOWN_MESSAGE", f"no API route /api/{path}"))

    @staticmethod
    def _answer(request, result) -> bytes:
        request.setHeader(b"content-type", _JSON)
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(result).encode("utf-8")

    def _answerLater(self, request, result: Deferred, path: str) -> None:
        """
        Answer when a handler's Deferred fires: its result as JSON, a
        L{ZoneError} as a refusal; nothing if the client went meanwhile.
        """
        gone: list = []
        request.notifyFinish().addErrback(gone.append)

        def write(body: bytes) -> None:
            if not gone:
                request.write(body)
                request.finish()

        def failed(failure) -> None:
            if isinstance(failure.value, ZoneError):
                error = failure.value
            else:
                self._log.failure("admin API {method} /api/{path} failed", failure,
                                  method=request.method.decode("ascii", "replace"), path=path)
                error = ZoneError("INTERNAL")
            write(self._refuse(request, error))

        def succeeded(value) -> None:
            write(self._answer(request, value))

        result.addCallbacks(succeeded, failed).addErrback(
            lambda failure: self._log.failure("admin API {method} /api/{path}: no answer written",
                                              failure, method=request.method.decode(
                                                  "ascii", "replace"), path=path))

    @staticmethod
    def _refuse(request, error: ZoneError, status: int = 0) -> bytes:
        request.setResponseCode(status or STATUS.get(error.code, 500))
        request.setHeader(b"content-type", _JSON)
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps({"code": error.code, "message": error.message}).encode("utf-8")

    @staticmethod
    def _body(request) -> dict:
        """
        The request's body: one JSON object of at most L{MAX_BODY} bytes;
        an empty body is an empty object.
        """
        data = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if len(data) > MAX_BODY:
            raise ZoneError("BAD_REQUEST", f"the request body exceeds {MAX_BODY} bytes")
        if not data.strip():
            return {}
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ZoneError("BAD_REQUEST", "the request body is not UTF-8 JSON")
        if not isinstance(body, dict):
            raise ZoneError("BAD_REQUEST", "the request body must be a JSON object")
        return body

    def _deviceId(self, given: str) -> str:
        """
        A device named in a path: its full id, or its name within this
        zone.
        """
        return given if "/" in given else f"{self._ops.zone.zoneId}/{given}"

    # -- routes ---------------------------------------------------------------

    @table.route("GET", r"devices/?")
    def devices(self, request) -> list:
        return self._ops.devices()

    @table.route("POST", r"devices/([^/]+/[^/]+|[^/]+)/revoke", takesBody=True)
    def revoke(self, request, device: str, body: dict) -> dict:
        deviceId = self._deviceId(device)
        return {**self._ops.revoke(deviceId), "row": self._ops.device(deviceId)}

    @table.route("GET", r"zone/?")
    def zone(self, request) -> dict:
        return self._ops.summary()

    @table.route("GET", r"health/?")
    def health(self, request) -> dict:
        summary = self._ops.summary()
        return {"status": "ok", "zone": summary["zone"],
                "connected": summary["devices"]["connected"], "uptime": summary["uptime"]}

    @table.route("GET", r"codes/?")
    def codes(self, request) -> list:
        return self._ops.codes()

    @table.route("POST", r"codes/?", takesBody=True)
    def newCode(self, request, body: dict) -> dict:
        if set(body) - {"device"} or "device" not in body:
            raise ZoneError("BAD_REQUEST", 'the body must be {"device": NAME}')
        request.setResponseCode(201)
        made = self._ops.newCode(body["device"])
        return {**made, "qr_svg": qrSVG(made["code"])}

    @table.route("POST", r"codes/([^/]+)/cancel", takesBody=True)
    def cancelCode(self, request, id: str, body: dict) -> dict:
        return self._ops.cancelCode(id)

    @table.route("GET", r"mesh/pending/?")
    def meshPending(self, request) -> list:
        return self._ops.meshPending()

    @table.route("POST", r"mesh/pending/([^/]+)/(approve|refuse)", takesBody=True)
    def meshAnswer(self, request, id: str, answer: str, body: dict) -> Deferred:
        return self._ops.meshAnswer(id, answer)

    @table.route("GET", r"services/?")
    def services(self, request) -> list:
        return self._ops.services()

    @table.route("GET", r"sync/?")
    def sync(self, request) -> list:
        return self._ops.syncStatus()

    @table.route("GET", r"sync/conflicts/?")
    def syncConflicts(self, request) -> list:
        return self._ops.syncConflicts()

    @table.route("GET", r"zones/?")
    def zones(self, request) -> list:
        return self._ops.friendZones()

    @table.route("GET", r"policy/?")
    def policy(self, request) -> dict:
        return self._ops.policy()

    @table.route("POST", r"policy/rules/?", takesBody=True)
    def addPolicyRule(self, request, body: dict) -> dict:
        fields = {"effect", "subject", "service", "method", "item", "first"}
        if set(body) - fields or "effect" not in body:
            raise ZoneError("BAD_REQUEST", 'the body must be {"effect": EFFECT} with, if '
                            'wanted, "subject", "service", "method", "item" and "first"')
        request.setResponseCode(201)
        return self._ops.addPolicyRule(body["effect"], subject=body.get("subject"),
                                       service=body.get("service"), method=body.get("method"),
                                       first=body.get("first", False), item=body.get("item"))

    @table.route("POST", r"policy/rules/(.+)/remove", takesBody=True)
    def removePolicyRule(self, request, ruleId: str, body: dict) -> dict:
        return self._ops.removePolicyRule(ruleId)

    @table.route("GET", r"events/?")
    def events(self, request):
        if len(self._streams) >= MAX_STREAMS:
            raise ZoneError("RATE_LIMITED", f"{MAX_STREAMS} event streams are open already; "
                            "close one and try again")
        _EventStream(request, self._ops, self._events, self._clock, self._streams)
        return NOT_DONE_YET


class _EventStream:
    """
    One client's Server-Sent Events stream: an C{event: device} with the
    device's row when it connects, disconnects, is enrolled or revoked; an
    C{event: code} when a pairing code is made, used or cancelled; an
    C{event: mesh} when a Mesh connection request arrives at the hub's
    portal or is answered; C{event: sync} with the device's
    synchronisation row when its state changes; C{event: policy} when the
    hub's copy of the zone's policy changes; a comment every
    L{KEEPALIVE} seconds; everything let go when the client goes.
    """

    _log = Logger()

    def __init__(self, request, operations, events, clock, streams: set) -> None:
        self._request = request
        self._ops = operations
        self._streams = streams
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.write(b"retry: 3000\n\n")
        self._unsubscribe = events.subscribe(self._event)
        self._keepalive = LoopingCall(self._write, b": keepalive\n\n")
        self._keepalive.clock = clock
        self._keepalive.start(KEEPALIVE, now=False)
        streams.add(self)
        request.notifyFinish().addBoth(self._gone)

    def _write(self, data: bytes) -> None:
        self._request.write(data)

    def _event(self, kind: str, data) -> None:
        if kind == "device":
            try:
                payload = self._ops.device(data)
            except ZoneError:
                return
        elif kind == "sync":
            payload = self._ops.syncDevice(data)
        elif kind == "code":
            payload = {**data, "expires": isoTime(data.get("expires"))}
        else:
            payload = data
        self._write(b"event: " + kind.encode("ascii") + b"\ndata: "
                    + json.dumps(payload).encode("utf-8") + b"\n\n")

    def _gone(self, result) -> None:
        self._unsubscribe()
        if self._keepalive.running:
            self._keepalive.stop()
        self._streams.discard(self)


def apiResource(hub, portal=None, clock=None) -> Resource:
    """
    The admin API of C{hub} (and of its Mesh C{portal}, if it hosts one),
    to mount at C{/api}; C{clock} paces the event streams' keepalives
    (the hub's clock by default).
    """
    return AdminAPI(ZoneOperations.forHub(hub, portal), hub.events,
                    clock if clock is not None else hub.clock)
