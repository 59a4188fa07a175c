# -*- test-case-name: tests.mesh.portal.test_resource -*-
"""
The Mesh portal's HTTP binding: C{POST /.well-known/mmm/} with one tagged
request as the body, answered with the tagged response.

The draft (section 7.2) makes the C{Status} in the response authoritative
and asks that the HTTP status report it; here the HTTP status is always the
payload's, including for what the binding itself refuses before any
transaction starts, each answered with a tagged L{MeshResponse} (or the
transaction's own response type when the tag could be read):

    - a body over the size limit (1 MiB by default): 413;
    - a body that is not strict JSON (malformed, not UTF-8, duplicate
      members), not one tagged object, a tag that names no transaction
      ("unknown transaction") or names a structure that is not a request, or
      fields that do not fit the request's declaration: 400;
    - a method other than POST: 405, with C{Allow: POST};
    - a path below C{/.well-known/mmm/}: 404.

A redirect (303, 307) also carries the new URI in C{Location}. Nothing
reaches the service, and so nothing is stored, unless the body is a
well-formed request. A write is answered only once it is committed: the
writes that arrive together share one commit (L{pzh.portal.commit}), so
their answers are written later, when it returns.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from pz.mesh.errors import MeshFormatError
from pz.mesh.messages import (
    BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    REDIRECT_PERMANENT,
    REDIRECT_TEMPORARY,
    SERVER_INTERNAL,
    TOO_LARGE,
    TRANSACTIONS,
    MeshResponse,
    responseTypeFor,
)
from pz.mesh.schema import Structure, decode, parseJSON, structureType

__all__ = ["MeshPortalResource", "wellKnown", "parseRequest", "refusalBody", "MAX_BODY", "PATH"]

#: The largest request body accepted, in bytes.
MAX_BODY = 1024 * 1024

#: Where the portal is mounted (the draft's HTTP Well Known Service Prefix).
PATH = "/.well-known/mmm/"

#: The request types, by their tag: what a body may name.
_REQUESTS = {request.__name__: request for _, request, _ in TRANSACTIONS}


def _tagOf(data: object) -> str | None:
    if isinstance(data, dict) and len(data) == 1:
        [tag] = data
        return tag
    return None


def parseRequest(body: bytes) -> Structure:
    """
    Decode a request body: strict JSON, one member whose name is a
    transaction's request type, whose value fits that type's declaration.

    @raise MeshFormatError: naming the problem.
    """
    data = parseJSON(body)
    tag = _tagOf(data)
    if tag is None:
        raise MeshFormatError(
            "the body must be a JSON object with exactly one member, the request's type"
        )
    kind = _REQUESTS.get(tag)
    if kind is None:
        try:
            structureType(tag)
        except MeshFormatError:
            raise MeshFormatError(f"unknown transaction {tag!r}") from None
        raise MeshFormatError(f"{tag} is not a request of the Mesh portal protocol")
    return decode(data, kind)


def _responseTypeForBody(body: bytes) -> type:
    """
    The response type to refuse C{body} with: the transaction's, if the
    body names a request type, else L{MeshResponse}.
    """
    try:
        tag = _tagOf(parseJSON(body))
    except MeshFormatError:
        return MeshResponse
    kind = _REQUESTS.get(tag) if tag else None
    return MeshResponse if kind is None else responseTypeFor(kind)


class MeshPortalResource(Resource):
    """
    The resource at C{/.well-known/mmm/}: every transaction is a POST here.

    @param service: a L{pzh.portal.service.PortalService}: its C{submit}
        carries out a request, firing once the outcome is durable.
    @param maxBody: the largest body accepted, in bytes.
    @param answered: called with the status of every answer (the hub's
        metrics, L{pzh.metrics}).
    """

    isLeaf = True
    log = Logger()

    def __init__(self, service, maxBody: int = MAX_BODY, answered=lambda status: None) -> None:
        super().__init__()
        self._service = service
        self._maxBody = maxBody
        self._answered = answered

    def render(self, request) -> bytes:
        """
        Answer one request; the HTTP status is the payload's C{Status}.
        """
        if request.postpath not in ([], [b""]):
            return self._refuse(request, MeshResponse, NOT_FOUND, f"POST requests to {PATH}")
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return self._refuse(
                request, MeshResponse, METHOD_NOT_ALLOWED, f"every Mesh transaction is a POST to {PATH}"
            )
        tooLarge = f"the request body exceeds {self._maxBody} bytes"
        length = request.getHeader(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._maxBody:
            return self._refuse(request, MeshResponse, TOO_LARGE, tooLarge)
        body = request.content.read(self._maxBody + 1) if request.content is not None else b""
        if len(body) > self._maxBody:
            return self._refuse(request, MeshResponse, TOO_LARGE, tooLarge)
        try:
            message = parseRequest(body)
        except MeshFormatError as error:
            return self._refuse(request, _responseTypeForBody(body), BAD_REQUEST, error.message)
        answered = maybeDeferred(self._service.submit, message)
        answered.addErrback(self._internalError, message)
        ready: list = []
        answered.addCallback(ready.append)
        if ready:
            # A read with no batch of writes open: answered at once.
            return self._respond(request, ready[0])
        # A write, or a read that saw one: answered once its batch is
        # committed (pzh.portal.commit), unless the client went away.
        gone: list = []
        request.notifyFinish().addErrback(gone.append)
        answered.addCallback(lambda _: gone or self._respondLater(request, ready[0]))
        return NOT_DONE_YET

    def _internalError(self, failure, message):
        self.log.failure("dispatching {request}", failure, request=type(message).__name__)
        return responseTypeFor(type(message))(
            Status=SERVER_INTERNAL, StatusDescription="an internal error occurred"
        )

    def _respondLater(self, request, response: MeshResponse) -> None:
        body = self._respond(request, response)
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def _refuse(self, request, kind: type, status: int, description: str) -> bytes:
        self.log.info("refused a request with {status}: {reason}", status=status, reason=description)
        return self._respond(request, kind(Status=status, StatusDescription=description))

    def _respond(self, request, response: MeshResponse) -> bytes:
        status = response.Status or SERVER_INTERNAL
        self._answered(status)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        if status in (REDIRECT_PERMANENT, REDIRECT_TEMPORARY) and response.StatusDescription:
            request.setHeader(b"location", response.StatusDescription.encode("utf-8"))
        return response.toJSON()


def refusalBody(status: int, description: str) -> bytes:
    """
    A L{MeshResponse} with C{status}: how the web port refuses, before any
    resource runs, a request to the portal that is too large or too slow
    (L{pzh.weblimits.GuardedSite}'s C{refusalBodies}).
    """
    return MeshResponse(Status=status, StatusDescription=description).toJSON()


def wellKnown(service, maxBody: int = MAX_BODY, answered=lambda status: None) -> Resource:
    """
    The C{/.well-known} resource with the portal at C{mmm/}, to mount at the
    root of a site: C{root.putChild(b".well-known", wellKnown(service))}.
    """
    top = Resource()
    top.putChild(b"mmm", MeshPortalResource(service, maxBody, answered))
    return top
