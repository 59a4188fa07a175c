# -*- test-case-name: tests.mesh.portal.test_client -*-
"""
A client for the Mesh portal protocol (draft section 7) on C{treq}.

    client = MeshClient("https://portal.example/", treq.client.HTTPClient(agent))
    hello = yield client.hello()                    # a HelloResponse
    yield client.create("alice", signedPersonalProfile)

One method per transaction; each fires with the response structure
(L{pz.mesh.messages}) when its C{Status} is a success (2xx) and fails with
L{MeshPortalError} otherwise, whose C{status} is the draft's code and whose
C{message} the portal's C{StatusDescription}. Redirects (303, 307) are not
followed: the draft warns that their target cannot be trusted without
authentication, so the error carries it (C{location}) for the caller to
decide.

The HTTP client is a parameter (build it with an C{Agent} whose TLS policy
trusts the portal's CA; tests pass C{treq.testing.StubTreq}). Answers are
read up to a size limit and decoded strictly, like everything else in
L{pz.mesh}.
"""

from __future__ import annotations

from typing import Iterable, Optional

from hyperlink import DecodedURL
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import Logger

from pz.mesh.errors import MeshError, MeshFormatError
from pz.mesh.messages import (
    ConnectCompleteRequest,
    ConnectPendingRequest,
    ConnectStartRequest,
    ConnectStatusRequest,
    CreateRequest,
    GetRecordsRequest,
    GetRequest,
    HelloRequest,
    KeyValue,
    MeshRequest,
    MeshResponse,
    PublishRequest,
    SearchConstraints,
    StatusRequest,
    TransferRequest,
    ValidateRequest,
    responseTypeFor,
)
from pz.mesh.model import Account, Entry, SignedConnectionRequest, SignedConnectionResult, SignedPersonalProfile
from pz.mesh.schema import decode, parseJSON

__all__ = ["MeshClient", "MeshPortalError", "portalEndpoint", "MAX_RESPONSE"]

#: The largest answer read from a portal, in bytes.
MAX_RESPONSE = 16 * 1024 * 1024

_WELL_KNOWN = (".well-known", "mmm", "")


class MeshPortalError(MeshError):
    """
    A portal answered with a status that is not success.

    @ivar status: the draft's status code (or the HTTP status when the
        answer held no Mesh response).
    @ivar response: the decoded response, if there was one.
    """

    def __init__(self, status: int, message: str, response: Optional[MeshResponse] = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response

    @property
    def location(self) -> Optional[str]:
        """
        For a redirect (303, 307): the URI the portal names, untrusted.
        """
        if self.status in (303, 307) and self.response is not None:
            return self.response.StatusDescription
        return None

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def portalEndpoint(url: str) -> str:
    """
    The URL transactions are posted to: C{url} itself if it already ends in
    C{/.well-known/mmm/}, else that path appended to it.

    @raise ValueError: for a URL that is not http or https.
    """
    parsed = DecodedURL.from_text(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    path = [segment for segment in parsed.path if segment]
    if path[-2:] != [".well-known", "mmm"]:
        path += [".well-known", "mmm"]
    return parsed.replace(path=(*path, ""), query=(), fragment="").to_text()


def _keyValues(pairs: Iterable) -> Optional[tuple]:
    """
    C{(key, value)} pairs or L{KeyValue}s as the KeyValues of a request.
    """
    values = tuple(
        pair if isinstance(pair, KeyValue) else KeyValue(Key=pair[0], Value=pair[1])
        for pair in pairs
    )
    return values or None


class _Limit:
    def __init__(self, limit: int) -> None:
        self.chunks: list = []
        self._left = limit

    def __call__(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left < 0:
            raise MeshPortalError(502, "the portal's answer is larger than this client accepts")
        self.chunks.append(data)


class MeshClient:
    """
    Talks to one Mesh portal.

    @param portalURL: the portal's base URL (C{https://host:port/}) or its
        transaction URL (C{.../.well-known/mmm/}).
    @param httpClient: a C{treq.client.HTTPClient} (or C{StubTreq}).
    @param timeout: seconds to wait for each answer; needs C{reactor}.
    """

    log = Logger()

    def __init__(self, portalURL: str, httpClient, *, timeout: Optional[float] = None,
                 reactor=None, maxResponse: int = MAX_RESPONSE) -> None:
        self.url = portalEndpoint(portalURL)
        self._http = httpClient
        self._maxResponse = maxResponse
        self._options = {}
        if timeout is not None:
            self._options = {"timeout": timeout, "reactor": reactor}

    @inlineCallbacks
    def transact(self, request: MeshRequest):
        """
        Post any request and fire with its response.

        @return: a Deferred firing with the response (of the transaction's
            response type, or L{MeshResponse}) when its status is 2xx.
        @raise MeshPortalError: (as a failure) otherwise.
        @raise MeshFormatError: (as a failure) if the answer is not a Mesh
            response.
        """
        response = yield self._http.post(
            self.url,
            data=request.toJSON(),
            headers={b"Content-Type": [b"application/json"], b"Accept": [b"application/json"]},
            allow_redirects=False,
            unbuffered=True,
            **self._options,
        )
        collector = _Limit(self._maxResponse)
        yield response.collect(collector)
        body = b"".join(collector.chunks)
        expected = responseTypeFor(type(request))
        try:
            answer = decode(parseJSON(body), MeshResponse)
        except MeshFormatError as error:
            if response.code >= 300:
                raise MeshPortalError(
                    response.code, f"the portal answered HTTP {response.code} without a Mesh response"
                ) from None
            raise MeshFormatError(f"the portal's answer is not a Mesh response: {error.message}")
        if type(answer) not in (expected, MeshResponse):
            raise MeshFormatError(
                f"the portal answered {type(request).__name__} with {type(answer).__name__}"
            )
        if answer.Status is None:
            raise MeshFormatError("the portal's answer has no Status")
        if not 200 <= answer.Status < 300:
            raise MeshPortalError(answer.Status, answer.StatusDescription or "", answer)
        return answer

    # -- one method per transaction ------------------------------------------

    def hello(self) -> Deferred:
        """
        Hello: fires with a L{HelloResponse} describing the portal.
        """
        return self.transact(HelloRequest())

    def validate(self, account: str, reserve: Optional[bool] = None,
                 language: Optional[Iterable[str]] = None) -> Deferred:
        """
        ValidateAccount: fires with a L{ValidateResponse} saying whether
        C{account} is acceptable and, either way, the naming rules.
        """
        return self.transact(ValidateRequest(
            Account=account, Reserve=reserve, Language=None if language is None else tuple(language)
        ))

    def create(self, account: str, profile: SignedPersonalProfile) -> Deferred:
        """
        CreateAccount: bind C{account} to C{profile}, whose C{Names} lists
        the account's fingerprint. Fails with 409 if it exists.
        """
        return self.transact(CreateRequest(Account=account, Profile=profile))

    def get(self, identifier: Optional[str] = None, account: Optional[str] = None,
            keyValues: Iterable = (), constraints: Optional[SearchConstraints] = None,
            multiple: Optional[bool] = None, full: Optional[bool] = None) -> Deferred:
        """
        Get: fires with one L{GetResponse} (one page). C{keyValues} holds
        C{(key, value)} pairs or L{KeyValue}s.
        """
        return self.transact(GetRequest(
            Identifier=identifier, Account=account, KeyValues=_keyValues(keyValues),
            SearchConstraints=constraints, Multiple=multiple, Full=full,
        ))

    def getRecords(self, identifier: Optional[str] = None, account: Optional[str] = None,
                   keyValues: Iterable = (), constraints: Optional[SearchConstraints] = None,
                   multiple: Optional[bool] = None) -> Deferred:
        """
        GetRecords (the Client-Service Protocol draft's): the same search as
        L{get}; fires with one L{GetRecordsResponse} whose items are log
        records, each with its C{Previous} and C{Hash}.
        """
        return self.transact(GetRecordsRequest(
            Identifier=identifier, Account=account, KeyValues=_keyValues(keyValues),
            SearchConstraints=constraints, Multiple=multiple,
        ))

    @inlineCallbacks
    def getAll(self, identifier: Optional[str] = None, account: Optional[str] = None,
               keyValues: Iterable = (), constraints: Optional[SearchConstraints] = None,
               full: Optional[bool] = None, pages: Optional[list] = None):
        """
        Get every match, following C{PageKey}s: fires with the list of
        L{DataItem}s. If C{pages} is a list, each page's response is
        appended to it.
        """
        constraints = constraints or SearchConstraints()
        response = yield self.get(identifier, account, keyValues, constraints, True, full)
        items = []
        while True:
            if pages is not None:
                pages.append(response)
            items.extend(response.DataItems or ())
            if response.PageKey is None:
                return items
            response = yield self.get(constraints=SearchConstraints(
                MaxEntries=constraints.MaxEntries, MaxBytes=constraints.MaxBytes,
                PageKey=response.PageKey,
            ))

    def publish(self, entry: Entry) -> Deferred:
        """
        Publish: fires with a L{PublishResponse}, 201 for a new entry, 202
        for a new version.
        """
        return self.transact(PublishRequest(Entry=entry))

    def status(self) -> Deferred:
        """
        Status: fires with a L{StatusResponse}: last write time and the
        log's checkpoint.
        """
        return self.transact(StatusRequest())

    def connectStart(self, account: str, request: SignedConnectionRequest) -> Deferred:
        """
        ConnectStart: post a new device's signed request to join C{account}.
        """
        return self.transact(ConnectStartRequest(AccountID=account, SignedRequest=request))

    def connectStatus(self, account: str, deviceID: str) -> Deferred:
        """
        ConnectStatus: fires with a L{ConnectStatusResponse}, whose
        C{Result} is absent while the request is pending.
        """
        return self.transact(ConnectStatusRequest(AccountID=account, DeviceID=deviceID))

    def connectPending(self, account: str, constraints: Optional[SearchConstraints] = None) -> Deferred:
        """
        ConnectPending: fires with one page of the requests pending on
        C{account}.
        """
        return self.transact(ConnectPendingRequest(AccountID=account, SearchConstraints=constraints))

    @inlineCallbacks
    def connectPendingAll(self, account: str, maxEntries: Optional[int] = None):
        """
        ConnectPending, every page: fires with the list of pending
        L{SignedConnectionRequest}s, oldest first.
        """
        pending = []
        constraints = SearchConstraints(MaxEntries=maxEntries)
        while True:
            response = yield self.connectPending(account, constraints)
            pending.extend(response.Pending or ())
            if response.PageKey is None:
                return pending
            constraints = SearchConstraints(MaxEntries=maxEntries, PageKey=response.PageKey)

    def connectComplete(self, account: str, result: SignedConnectionResult) -> Deferred:
        """
        ConnectComplete: post an administration device's signed answer.
        """
        return self.transact(ConnectCompleteRequest(AccountID=account, Result=result))

    def transfer(self, constraints: Optional[SearchConstraints] = None) -> Deferred:
        """
        Transfer: fires with one page of the log (a L{TransferResponse}).
        """
        return self.transact(TransferRequest(SearchConstraints=constraints))

    @inlineCallbacks
    def fetchAccount(self, account: str):
        """
        Look an account up: fires with C{(Account, SignedPersonalProfile)},
        the account entry and its current personal profile (not verified
        here: verify it before trusting it).
        """
        response = yield self.get(account=account, keyValues=[("Type", "Account")])
        [item] = response.DataItems
        entry = item.Entry
        if not isinstance(entry, Account) or not entry.UserProfileUDF:
            raise MeshFormatError(f"the portal's entry for account {account} is not an Account")
        response = yield self.get(
            identifier=entry.UserProfileUDF, keyValues=[("Type", "SignedPersonalProfile")]
        )
        [item] = response.DataItems
        if not isinstance(item.Entry, SignedPersonalProfile):
            raise MeshFormatError(f"the profile of account {account} is not a personal profile")
        return entry, item.Entry
