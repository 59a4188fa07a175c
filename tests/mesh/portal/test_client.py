"""
Tests for L{pz.mesh.client}: L{MeshClient} against the real portal
resource in memory (L{treq.testing.StubTreq}), and against portals that
answer badly.
"""

from treq.testing import StubTreq, StringStubbingResource
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from pz.mesh.client import MeshClient, MeshPortalError, portalEndpoint
from pz.mesh.errors import MeshFormatError
from pz.mesh.messages import (
    ConnectStatusResponse,
    GetRecordsResponse,
    GetResponse,
    HelloResponse,
    SearchConstraints,
    StatusResponse,
)
from pz.mesh.model import Account
from pzh.portal.resource import wellKnown
from pzh.portal.service import PortalSettings

from tests.mesh.portal._support import PortalFixture, makeDevice, makePerson


class EndpointTests(SynchronousTestCase):
    """
    L{portalEndpoint} finds the transaction URL.
    """

    def test_forms(self):
        """
        A base URL, one with a path, and one already naming the portal, with
        or without the final slash, all give C{.../.well-known/mmm/}.
        """
        cases = {
            "https://p.example": "https://p.example/.well-known/mmm/",
            "https://p.example/": "https://p.example/.well-known/mmm/",
            "http://127.0.0.1:8080/mesh": "http://127.0.0.1:8080/mesh/.well-known/mmm/",
            "https://p.example/.well-known/mmm": "https://p.example/.well-known/mmm/",
            "https://p.example/.well-known/mmm/?x=1#y": "https://p.example/.well-known/mmm/",
        }
        for given, expected in cases.items():
            self.assertEqual(portalEndpoint(given), expected)

    def test_refused(self):
        """
        Only http and https URLs with a host.
        """
        for bad in ("ftp://p.example/", "p.example", "https://"):
            self.assertRaises(ValueError, portalEndpoint, bad)


class ClientTests(SynchronousTestCase):
    """
    Each transaction through the client.
    """

    def setUp(self):
        self.portal = PortalFixture(self, PortalSettings(maxPageEntries=2))
        root = Resource()
        root.putChild(b".well-known", wellKnown(self.portal.service))
        self.stub = StubTreq(root)
        self.client = MeshClient("https://portal.example/", self.stub)
        self.alice = makePerson()

    def result(self, d):
        """
        Run the stub until C{d} fires; return its result.
        """
        self.portal.flush(self.stub)
        return self.successResultOf(d)

    def failure(self, d, *errors):
        self.portal.flush(self.stub)
        return self.failureResultOf(d, *errors)

    def test_helloAndStatus(self):
        """
        hello and status fire with their responses.
        """
        self.assertIsInstance(self.result(self.client.hello()), HelloResponse)
        status = self.result(self.client.status())
        self.assertIsInstance(status, StatusResponse)
        self.assertEqual(status.CheckpointValue, "0" * 64)

    def test_accountLifecycle(self):
        """
        validate, create, fetchAccount, publish, get, getAll and getRecords.
        """
        self.assertTrue(self.result(self.client.validate("alice", reserve=True, language=["en"])).Valid)
        self.assertEqual(self.result(self.client.create("alice", self.alice.personal)).Status, 201)
        account, profile = self.result(self.client.fetchAccount("ALICE"))
        self.assertIsInstance(account, Account)
        self.assertEqual((account.UserProfileUDF, profile), (self.alice.udf, self.alice.personal))
        devices = [makeDevice(f"d{n}") for n in range(3)]
        for device in devices:
            self.assertEqual(self.result(self.client.publish(device.profile)).Status, 201)
        response = self.result(self.client.get(identifier=devices[0].udf))
        self.assertIsInstance(response, GetResponse)
        self.assertEqual(response.DataItems[0].Entry, devices[0].profile)
        pages = []
        items = self.result(self.client.getAll(
            keyValues=[("Type", "SignedDeviceProfile")], pages=pages,
            constraints=SearchConstraints(MaxEntries=1)))
        self.assertEqual([i.Entry for i in items], [d.profile for d in devices])
        self.assertEqual(len(pages), 3)
        records = self.result(self.client.getRecords(
            keyValues=[("Type", "SignedDeviceProfile")], multiple=True))
        self.assertIsInstance(records, GetRecordsResponse)
        self.assertEqual([i.Entry for i in records.DataItems], [d.profile for d in devices[:2]])
        self.assertIsNotNone(records.PageKey)
        for item in records.DataItems:
            self.assertEqual(item.Hash, self.portal.store.record(item.Sequence).hash.hex())

    def test_connection(self):
        """
        connectStart, connectPending(All), connectComplete, connectStatus.
        """
        self.result(self.client.create("alice", self.alice.personal))
        devices = [makeDevice(f"d{n}") for n in range(3)]
        requests = [self.alice.request(d) for d in devices]
        for request in requests:
            self.assertEqual(self.result(self.client.connectStart("alice", request)).Status, 201)
        self.assertEqual(len(self.result(self.client.connectPending("alice")).Pending), 2)
        self.assertEqual(self.result(self.client.connectPendingAll("alice", maxEntries=1)), requests)
        status = self.result(self.client.connectStatus("alice", devices[0].udf))
        self.assertIsInstance(status, ConnectStatusResponse)
        self.assertIsNone(status.Result)
        result = self.alice.result(requests[0])
        self.result(self.client.connectComplete("alice", result))
        self.assertEqual(self.result(self.client.connectStatus("alice", devices[0].udf)).Result, result)

    def test_transfer(self):
        """
        transfer fires with one page of the log.
        """
        self.result(self.client.create("alice", self.alice.personal))
        response = self.result(self.client.transfer())
        self.assertEqual([i.Sequence for i in response.DataItems], [1, 2])

    def test_errorStatus(self):
        """
        A failure status fails the Deferred with L{MeshPortalError} carrying
        the code, the description and the response.
        """
        self.result(self.client.create("alice", self.alice.personal))
        error = self.failure(self.client.create("alice", self.alice.personal), MeshPortalError).value
        self.assertEqual(error.status, 409)
        self.assertIn("already exists", error.message)
        self.assertEqual(error.response.Status, 409)
        self.assertIsNone(error.location)
        self.assertEqual(str(error), f"409: {error.message}")
        self.assertEqual(self.failure(self.client.get(identifier="MX"), MeshPortalError).value.status, 404)


class RedirectTests(SynchronousTestCase):
    """
    Redirects are reported, not followed.
    """

    def test_location(self):
        """
        A 303 fails with the URI as C{location}, and no second request is
        made.
        """
        portal = PortalFixture(self, PortalSettings(movedTo="https://new.example/"))
        root = Resource()
        root.putChild(b".well-known", wellKnown(portal.service))
        stub = StubTreq(root)
        d = MeshClient("https://old.example/", stub).hello()
        stub.flush()
        error = self.failureResultOf(d, MeshPortalError).value
        self.assertEqual((error.status, error.location), (303, "https://new.example/"))


class BadPortalTests(SynchronousTestCase):
    """
    Portals, or things in front of them, that do not answer with a Mesh
    response.
    """

    def answer(self, code, body, headers=None, **kwargs):
        """
        Make one request to a stub that answers C{(code, body)}.
        """
        resource = StringStubbingResource(lambda *args: (code, headers or {}, body))
        stub = StubTreq(resource)
        d = MeshClient("https://p.example/", stub, **kwargs).status()
        stub.flush()
        return d

    def test_htmlError(self):
        """
        An HTML error page is a L{MeshPortalError} with the HTTP status.
        """
        error = self.failureResultOf(self.answer(502, b"<html>bad gateway</html>"), MeshPortalError).value
        self.assertEqual(error.status, 502)

    def test_garbageSuccess(self):
        """
        A 2xx answer that is not a Mesh response is a L{MeshFormatError}.
        """
        self.failureResultOf(self.answer(200, b"hello"), MeshFormatError)
        self.failureResultOf(self.answer(201, b'{"StatusResponse": {}}'), MeshFormatError)

    def test_wrongResponseType(self):
        """
        An answer of another transaction's type is refused; a plain
        MeshResponse is accepted (the draft allows a parent type).
        """
        self.failureResultOf(self.answer(201, b'{"HelloResponse": {"Status": 201}}'), MeshFormatError)
        ok = self.successResultOf(self.answer(201, b'{"MeshResponse": {"Status": 201}}'))
        self.assertEqual(ok.Status, 201)

    def test_tooLarge(self):
        """
        An answer over the client's limit is refused.
        """
        body = b'{"MeshResponse": {"Status": 201, "StatusDescription": "' + b"x" * 5000 + b'"}}'
        error = self.failureResultOf(self.answer(201, body, maxResponse=1000), MeshPortalError).value
        self.assertIn("larger", error.message)
