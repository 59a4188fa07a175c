"""
Tests for L{pzh.meshanswerers} and the hub's side of answering a Mesh
request from the admin page (L{pzh.operations.ZoneOperations.meshAnswer}):
a real hub in memory, its devices bare frame clients over TLS
(L{twisted.test.iosim}), one clock.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.mesh.messages import ConnectStartRequest, CreateRequest
from pz.testing import ZONE, MemoryHub
from pzh.operations import ZoneOperations
from tests.mesh.portal._support import PortalFixture, makeDevice, makePerson


class MeshAnswerTests(SynchronousTestCase):
    """
    The hub asks a connected administration device to answer, and waits
    for its answer on that device's link.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.portal = PortalFixture(self)
        self.ops = ZoneOperations.forHub(self.hub, self.portal.service)
        alice = makePerson("alice")
        response = self.portal.service.dispatch(
            CreateRequest(Account="alice", Profile=alice.personal))
        self.assertEqual(response.Status, 201, response.StatusDescription)
        self.tablet = makeDevice("tablet")
        response = self.portal.service.dispatch(
            ConnectStartRequest(AccountID="alice", SignedRequest=alice.request(self.tablet)))
        self.assertEqual(response.Status, 201, response.StatusDescription)

    def connect(self, name: str, accounts=("Alice",)):
        """
        Connect the enrolled device C{name}; it says it answers for
        C{accounts} (None: it says nothing).  Its frame client.
        """
        key, cert = self.fixture.enrolDevice(name)
        client = self.fixture.connectDevice(key, cert).client
        if accounts is not None:
            client.sendProp(ZONE, {"status": "meshAccounts", "accounts": list(accounts)}, "a1")
        self.fixture.coalesce()
        client.take()
        return client

    def asked(self, client) -> dict:
        """
        The one C{meshAnswer} request C{client} received; its envelope.
        """
        [envelope] = [f for f in client.take() if f["payload"].get("status") == "meshAnswer"]
        return envelope

    def answer(self, client, envelope, **changes):
        payload = {"status": "meshAnswered", "ref": envelope["id"], "account": "alice",
                   "device": self.tablet.udf, "result": "Accepted", "name": "tablet", **changes}
        client.sendProp(ZONE, payload, "r1")
        self.fixture.flush()

    def test_noDevice(self):
        """
        With no administration device of the account connected (none at
        all, or one that answers for nothing), the answer fails at once
        with C{NOT_CONNECTED}, naming how to answer: the proxy's option
        and the pzctl command.
        """
        for connected in (False, True):
            if connected:
                self.connect("laptop", accounts=None)
            error = self.failureResultOf(self.ops.meshAnswer(self.tablet.udf, "approve"),
                                         ZoneError).value
            self.assertEqual(error.code, "NOT_CONNECTED")
            self.assertIn("twistd pzp --mesh-approvals", error.message)
            self.assertIn(f"pzctl --pzp-dir DIR mesh approve {self.tablet.udf}", error.message)
        self.assertEqual(self.hub.mesh.answerers("alice"), [])

    def test_badArguments(self):
        """
        A request that is not pending is C{UNKNOWN_DESTINATION}, an answer
        other than approve or refuse C{BAD_REQUEST}; no device is asked.
        """
        laptop = self.connect("laptop")
        error = self.failureResultOf(self.ops.meshAnswer("MNOPE", "approve"), ZoneError).value
        self.assertEqual(error.code, "UNKNOWN_DESTINATION")
        error = self.failureResultOf(self.ops.meshAnswer(self.tablet.udf, "maybe"),
                                     ZoneError).value
        self.assertEqual(error.code, "BAD_REQUEST")
        self.fixture.flush()
        self.assertEqual(laptop.take(), [])

    def test_deviceAnswers(self):
        """
        The device that said it answers for the account is asked, over its
        link, by a request naming the account, the request and the answer;
        its answer, naming the request's id, fires the result.
        """
        laptop = self.connect("laptop")
        self.assertEqual(self.hub.mesh.answerers("alice"), [self.fixture.deviceId("laptop")])
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        self.assertNoResult(d)
        envelope = self.asked(laptop)
        self.assertEqual(envelope["from"], ZONE)
        self.assertEqual(envelope["to"], self.fixture.deviceId("laptop"))
        self.assertEqual(envelope["payload"], {"status": "meshAnswer", "account": "alice",
                                               "request": self.tablet.udf,
                                               "answer": "Accepted"})
        self.answer(laptop, envelope, zone_device=f"{ZONE}/tablet")
        self.assertEqual(self.successResultOf(d), {
            "account": "alice", "device": self.tablet.udf, "result": "Accepted",
            "name": "tablet", "zone_device": f"{ZONE}/tablet"})
        self.assertEqual(laptop.take(), [])

    def test_refuse(self):
        """
        C{refuse} asks the device for C{Refused}.
        """
        laptop = self.connect("laptop")
        d = self.ops.meshAnswer(self.tablet.udf, "refuse")
        self.fixture.flush()
        envelope = self.asked(laptop)
        self.assertEqual(envelope["payload"]["answer"], "Refused")
        self.answer(laptop, envelope, result="Refused")
        self.assertEqual(self.successResultOf(d)["result"], "Refused")

    def test_deviceRefuses(self):
        """
        The device's error answer fails the result with its code and
        message; the hub does not answer the error.
        """
        laptop = self.connect("laptop")
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        envelope = self.asked(laptop)
        laptop.sendProp(ZONE, {"status": "error", "ref": envelope["id"],
                               "code": "NOT_AUTHORISED", "message": "no key of account alice"})
        self.fixture.flush()
        error = self.failureResultOf(d, ZoneError).value
        self.assertEqual(error.code, "NOT_AUTHORISED")
        self.assertIn("no key of account alice", error.message)
        self.assertIn(self.fixture.deviceId("laptop"), error.message)
        self.assertEqual(laptop.take(), [])

    def test_answerOfAnotherRequest(self):
        """
        An answer for another request than the one asked fails the result
        (C{INTERNAL}): nothing the device says is taken for what it was
        not asked.
        """
        laptop = self.connect("laptop")
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        self.answer(laptop, self.asked(laptop), device="MOTHER-DEVICE")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "INTERNAL")

    def test_timeout(self):
        """
        A device that does not answer within the hub's timeout (on its
        clock) fails the result with C{TIMEOUT}; its late answer is only
        logged.
        """
        laptop = self.connect("laptop")
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        envelope = self.asked(laptop)
        self.fixture.advance(self.hub.mesh.timeout - 0.5)
        self.assertNoResult(d)
        self.fixture.advance(0.5)
        error = self.failureResultOf(d, ZoneError).value
        self.assertEqual(error.code, "TIMEOUT")
        self.assertIn("did not answer within 30 s", error.message)
        self.answer(laptop, envelope)
        self.assertEqual(laptop.take(), [])

    def test_wrongDevice(self):
        """
        An answer naming the request's id but coming from another device
        is ignored (and not answered); the device asked still answers.
        """
        laptop = self.connect("laptop")
        intruder = self.connect("phone", accounts=None)
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        envelope = self.asked(laptop)
        self.answer(intruder, envelope, result="Refused")
        self.assertNoResult(d)
        self.assertEqual(intruder.take(), [])
        self.answer(laptop, envelope)
        self.assertEqual(self.successResultOf(d)["result"], "Accepted")

    def test_linkClosed(self):
        """
        The device's link closing while the hub waits fails the result
        with C{NOT_CONNECTED}, saying it went before it answered; the
        device answers for nothing any more.
        """
        laptop = self.connect("laptop")
        d = self.ops.meshAnswer(self.tablet.udf, "approve")
        self.fixture.flush()
        laptop.transport.loseConnection()
        self.fixture.flush()
        error = self.failureResultOf(d, ZoneError).value
        self.assertEqual(error.code, "NOT_CONNECTED")
        self.assertIn("disconnected before it answered", error.message)
        self.assertEqual(self.hub.mesh.answerers("alice"), [])
        error = self.failureResultOf(self.ops.meshAnswer(self.tablet.udf, "approve"),
                                     ZoneError).value
        self.assertIn("--mesh-approvals", error.message)

    def test_reconnect(self):
        """
        A device's new link answers for nothing until it says so again;
        then it is the one asked.
        """
        self.connect("laptop")
        key, cert = self.fixture.enrolDevice("laptop2")
        first = self.fixture.connectDevice(key, cert).client
        first.sendProp(ZONE, {"status": "meshAccounts", "accounts": ["alice"]})
        self.fixture.flush()
        second = self.fixture.connectDevice(key, cert).client
        self.fixture.flush()
        self.assertEqual(self.hub.mesh.answerers("alice"), [self.fixture.deviceId("laptop")])
        second.sendProp(ZONE, {"status": "meshAccounts", "accounts": ["alice", "bob"]})
        self.fixture.flush()
        self.assertEqual(self.hub.mesh.answerers("alice"),
                         [self.fixture.deviceId("laptop"), self.fixture.deviceId("laptop2")])
        self.assertEqual(self.hub.mesh.answerers("BOB"), [self.fixture.deviceId("laptop2")])

    def test_badAnnouncement(self):
        """
        A C{meshAccounts} whose accounts are not a short list of names is
        refused with its code, and what the device said before stays.
        """
        laptop = self.connect("laptop")
        for accounts, code in (("alice", "BAD_ENVELOPE"), ([1], "BAD_REQUEST"),
                               (["x" * 65], "BAD_REQUEST"), ([""], "BAD_REQUEST"),
                               ([f"a{i}" for i in range(33)], "BAD_REQUEST")):
            laptop.sendProp(ZONE, {"status": "meshAccounts", "accounts": accounts}, "bad")
            self.fixture.flush()
            self.assertEqual(laptop.codes(), [code], accounts)
            laptop.take()
        self.assertEqual(self.hub.mesh.answerers("alice"), [self.fixture.deviceId("laptop")])
        laptop.sendProp(ZONE, {"status": "meshAccounts", "accounts": []})
        self.fixture.flush()
        self.assertEqual(self.hub.mesh.answerers("alice"), [])
