"""
Tests for L{pzh.portal.resource}: the HTTP binding, driven in memory with
L{treq.testing.StubTreq}. Every refusal has its code in the body and the
same code as the HTTP status, and stores nothing.
"""

import json

from twisted.web.test.requesthelper import DummyRequest

from pz.mesh.messages import CreateRequest, GetRequest, HelloRequest, StatusRequest
from pzh.portal.resource import MeshPortalResource
from pzh.portal.service import PortalSettings

from tests.mesh.portal._support import URL, ResourceTestBase, makePerson


class GoodRequestTests(ResourceTestBase):
    """
    Well-formed transactions.
    """

    def test_hello(self):
        """
        A Hello POSTed as tagged JSON is answered 201 with a HelloResponse,
        not cached.
        """
        response, payload = self.assertAnswer(HelloRequest().toJSON(), 201, "HelloResponse")
        self.assertEqual(payload["HelloResponse"]["Version"]["Major"], 3)
        self.assertEqual(response.headers.getRawHeaders(b"cache-control"), [b"no-store"])

    def test_withoutTrailingSlash(self):
        """
        C{/.well-known/mmm} without the slash works too.
        """
        self.assertAnswer(StatusRequest().toJSON(), 201, "StatusResponse", url=URL[:-1])

    def test_statusMirrorsPayload(self):
        """
        The HTTP status is the payload's: 201 created, 409 for the same
        account again, 404 for an unknown identifier.
        """
        alice = makePerson()
        create = CreateRequest(Account="alice", Profile=alice.personal).toJSON()
        self.assertAnswer(create, 201, "CreateResponse")
        self.assertAnswer(create, 409, "CreateResponse", "already exists")
        self.assertAnswer(GetRequest(Identifier="MNOPE").toJSON(), 404, "GetResponse")

    def test_directRender(self):
        """
        Rendered directly (as twisted.web does), a POST with an empty path
        rest is answered, and the response code set.
        """
        resource = MeshPortalResource(self.portal.service)
        request = DummyRequest([])
        request.method = b"POST"
        from io import BytesIO

        request.content = BytesIO(StatusRequest().toJSON())
        body = resource.render(request)
        self.assertEqual(request.responseCode, 201)
        self.assertEqual(list(json.loads(body)), ["StatusResponse"])


class BadInputTests(ResourceTestBase):
    """
    Malformed JSON, wrong type tags, oversized bodies, unknown transactions,
    wrong methods and paths: each answered with its code, nothing stored.
    """

    def test_malformedJSON(self):
        """
        Bodies that are not strict JSON are 400.
        """
        for body in (b"", b"{", b"{'HelloRequest': {}}", b"\xff\xfe", b"[1, 2",
                     b'{"HelloRequest": {}, "HelloRequest": {}}', b'{"StatusRequest": NaN}'):
            self.assertAnswer(body, 400)

    def test_notOneTaggedObject(self):
        """
        JSON that is not one object with exactly one member is 400.
        """
        for body in (b"[]", b"42", b'"HelloRequest"', b"{}",
                     b'{"HelloRequest": {}, "StatusRequest": {}}'):
            self.assertAnswer(body, 400, contains="exactly one member")

    def test_unknownTransaction(self):
        """
        A tag that names no transaction is 400 "unknown transaction".
        """
        self.assertAnswer(b'{"FrobnicateRequest": {}}', 400, contains="unknown transaction")

    def test_notARequest(self):
        """
        A tag naming a Mesh structure that is not a request is 400.
        """
        for tag in ("HelloResponse", "DeviceProfile", "Account"):
            self.assertAnswer(json.dumps({tag: {}}).encode(), 400, contains="is not a request")

    def test_registryNotCopied(self):
        """
        Reading a request finds its type by its tag without copying the
        registry of every Mesh structure (once per request, it was most of
        the binding's own cost), and refuses as before: the request's type
        is the one decoded, an unknown tag and a tag that is not a request
        each with its own message.
        """
        from pz.mesh import schema
        from pzh.portal import resource
        from pzh.portal.resource import parseRequest
        from pz.mesh.errors import MeshFormatError

        def copied():
            raise AssertionError("the registry was copied")

        for module in (schema, resource):
            if hasattr(module, "registeredTypes"):
                self.patch(module, "registeredTypes", copied)
        self.assertEqual(parseRequest(b'{"StatusRequest":{}}'), StatusRequest())
        error = self.assertRaises(MeshFormatError, parseRequest, b'{"FrobnicateRequest":{}}')
        self.assertEqual(error.message, "unknown transaction 'FrobnicateRequest'")
        error = self.assertRaises(MeshFormatError, parseRequest, b'{"DeviceProfile":{}}')
        self.assertEqual(error.message, "DeviceProfile is not a request of the Mesh portal protocol")
        self.assertAnswer(b'{"StatusRequest":{"Bogus":1}}', 400, tag="StatusResponse")
        self.assertAnswer(b'{"DeviceProfile":{}}', 400, tag="MeshResponse")

    def test_wrongTypesInside(self):
        """
        A request whose fields do not fit its declaration (a wrong tag for a
        tagged field, a wrong type, an unknown field) is 400 under that
        transaction's response tag.
        """
        self.assertAnswer(b'{"PublishRequest": {"Entry": {"HelloRequest": {}}}}', 400,
                          "PublishResponse", "expected an Entry")
        self.assertAnswer(b'{"PublishRequest": {"Entry": {"NoSuchType": {}}}}', 400,
                          "PublishResponse", "unknown type")
        self.assertAnswer(b'{"CreateRequest": {"Account": 5}}', 400, "CreateResponse", "expected a string")
        self.assertAnswer(b'{"GetRequest": {"Identifier": null}}', 400, "GetResponse")
        self.assertAnswer(b'{"StatusRequest": {"Bogus": 1}}', 400, "StatusResponse", "unknown field")

    def test_oversized(self):
        """
        A body over the limit is 413, whether announced by Content-Length or
        not.
        """
        body = json.dumps({"ValidateRequest": {"Account": "a" * 40000}}).encode()
        self.assertAnswer(body, 413, contains="exceeds 32768 bytes")

    def test_oversizedUnannounced(self):
        """
        A body longer than the limit is refused even without a
        Content-Length header.
        """
        from io import BytesIO

        resource = MeshPortalResource(self.portal.service, maxBody=1024)
        request = DummyRequest([b""])
        request.method = b"POST"
        request.content = BytesIO(b" " * 2000)
        body = resource.render(request)
        self.assertEqual(request.responseCode, 413)
        self.assertEqual(json.loads(body)["MeshResponse"]["Status"], 413)

    def test_methods(self):
        """
        Any method but POST is 405 with C{Allow: POST}.
        """
        for method in ("GET", "PUT", "DELETE"):
            response, _ = self.assertAnswer(b"", 405, method=method)
            self.assertEqual(response.headers.getRawHeaders(b"allow"), [b"POST"])

    def test_pathBelow(self):
        """
        A path below the portal's is 404.
        """
        self.assertAnswer(HelloRequest().toJSON(), 404, url=URL + "extra")


class RedirectTests(ResourceTestBase):
    """
    A moved portal's 303 carries C{Location}.
    """

    settings = PortalSettings(movedTo="https://new.example/.well-known/mmm/")

    def test_location(self):
        """
        303 as HTTP status, with the new URI in the body and C{Location}.
        """
        response, payload = self.assertAnswer(HelloRequest().toJSON(), 303, "HelloResponse")
        self.assertEqual(response.headers.getRawHeaders(b"location"),
                         [b"https://new.example/.well-known/mmm/"])


class InternalErrorTests(ResourceTestBase):
    """
    A service that raises is 500 with a sentence.
    """

    def test_serviceRaises(self):
        """
        Were the service itself to raise, the answer is still a tagged 500.
        """
        def explode(request):
            raise RuntimeError("secret detail")

        self.portal.service.submit = explode
        _, payload = self.assertAnswer(StatusRequest().toJSON(), 500, "StatusResponse")
        self.assertNotIn("secret", json.dumps(payload))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
