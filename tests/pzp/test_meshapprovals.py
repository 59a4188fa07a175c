"""
Tests for L{pzp.meshapprovals} (the device's side of answering Mesh
requests the hub asks for, C{twistd pzp --mesh-approvals}) and for how the
hub link takes the hub's C{meshAnswer}: only from the hub, only when the
option is on.
"""

import os

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.mesh.signing import unverifiedPayload
from pz.mesh.client import MeshPortalError
from pz.testing import ZONE, MemoryHub, PeerCertTransport, frame, frames, nowReactor
from pzp.hublink import HubLinkProtocol
from pzp.inbox import Inbox
from pzp.meshapprovals import MeshApprovals
from pzp.proxy import Proxy, ProxySettings
from pzp.zonedir import ZoneDirectory
from tests.pzp._mesh import MeshAdmin
from tests.pzp._support import FakeProxy, enrolledCredentials, prop


class _RecordingLink:
    """
    What the worker uses of the hub link: C{sendMessage}.
    """

    def __init__(self) -> None:
        self.sent = []

    def sendMessage(self, to, payload, msgId=None):
        self.sent.append((to, payload))
        return "id"


class MeshApprovalsTests(SynchronousTestCase):
    """
    L{MeshApprovals} over an administration device's data directory, its
    portal in memory.
    """

    def setUp(self):
        self.admin = MeshAdmin(self)
        self.approvals = MeshApprovals(self.admin.dataDir, Clock(), ZONE,
                                       clientOf=lambda: self.admin.client)

    def test_announces(self):
        """
        Once the hub link is up, the device says which accounts it holds
        administration keys of; a device that holds none says none.
        """
        link = _RecordingLink()
        self.approvals.linkUp(link)
        self.assertEqual(link.sent, [(ZONE, {"status": "meshAccounts", "accounts": ["alice"]})])
        os.unlink(self.admin.device.file("master.json"))
        link = _RecordingLink()
        self.approvals.linkUp(link)
        self.assertEqual(link.sent, [(ZONE, {"status": "meshAccounts", "accounts": []})])
        other = MeshApprovals(self.mktemp(), Clock(), ZONE)
        self.assertEqual(other.accounts(), [])

    def test_approve(self):
        """
        Asked to approve, the device answers with the shared code: the
        request is completed and the device added to the held profile.
        """
        tablet = self.admin.ask("tablet")
        d = self.admin.resolve(self.approvals.answer("Alice", tablet.udf, "Accepted"))
        self.assertEqual(self.successResultOf(d), {
            "account": "alice", "device": tablet.udf, "result": "Accepted", "name": "tablet"})
        self.assertEqual(self.admin.pending(), [])

    def test_oneAtATime(self):
        """
        Two answers asked at once run one after the other, so that both
        devices end in the held personal profile.
        """
        tablet, watch = self.admin.ask("tablet"), self.admin.ask("watch")
        first = self.approvals.answer("alice", tablet.udf, "Accepted")
        second = self.approvals.answer("alice", watch.udf, "Accepted")
        self.admin.resolve(first)
        self.admin.resolve(second)
        self.assertEqual(self.successResultOf(first)["device"], tablet.udf)
        self.assertEqual(self.successResultOf(second)["device"], watch.udf)
        held = unverifiedPayload(self.admin.device.personal())
        self.assertTrue({tablet.udf, watch.udf} <= {d.Identifier for d in held.Devices})

    def test_unknownAccount(self):
        """
        An account this device holds no key of is C{NOT_AUTHORISED}, and
        the portal is not asked.
        """
        tablet = self.admin.ask("tablet")
        error = self.failureResultOf(self.approvals.answer("bob", tablet.udf, "Accepted"),
                                     ZoneError).value
        self.assertEqual(error.code, "NOT_AUTHORISED")
        self.assertIn("account bob", error.message)
        self.assertEqual(self.admin.pending(), [tablet.udf])

    def test_badAnswer(self):
        """
        An answer that is neither C{Accepted} nor C{Refused} is
        C{BAD_REQUEST}.
        """
        tablet = self.admin.ask("tablet")
        error = self.failureResultOf(self.approvals.answer("alice", tablet.udf, "approve"),
                                     ZoneError).value
        self.assertEqual(error.code, "BAD_REQUEST")

    def test_gone(self):
        """
        A request answered already is C{UNKNOWN_DESTINATION}.
        """
        tablet = self.admin.ask("tablet")
        self.admin.resolve(self.approvals.answer("alice", tablet.udf, "Refused"))
        d = self.admin.resolve(self.approvals.answer("alice", tablet.udf, "Refused"))
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "UNKNOWN_DESTINATION")

    def test_portalRefusal(self):
        """
        What the portal refuses comes back as a zone error naming it.
        """
        tablet = self.admin.ask("tablet")
        approvals = MeshApprovals(self.admin.dataDir, Clock(), ZONE, clientOf=_Refusing)
        error = self.failureResultOf(approvals.answer("alice", tablet.udf, "Accepted"),
                                     ZoneError).value
        self.assertEqual(error.code, "NOT_AUTHORISED")
        self.assertIn("the portal answered 401", error.message)


class _Refusing:
    """
    A portal client whose portal refuses everything (401).
    """

    def connectPendingAll(self, account):
        return fail(MeshPortalError(401, "not today"))


class _Approvals:
    """
    Records what the hub link asks; answers with C{result}.
    """

    def __init__(self) -> None:
        self.asked = []
        self.result = Deferred()

    def answer(self, account, request, answer):
        self.asked.append((account, request, answer))
        return self.result


class HubLinkMeshAnswerTests(SynchronousTestCase):
    """
    The hub link's C{meshAnswer}: only the hub may ask, only a proxy run
    with C{--mesh-approvals} answers.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.creds = enrolledCredentials(self.fixture, "laptop")
        self.proxy = FakeProxy(self.clock, self.creds, Inbox(self.mktemp(), self.clock))
        self.link = HubLinkProtocol(self.proxy)
        self.transport = PeerCertTransport(self.fixture.zone.hubCert)
        self.link.makeConnection(self.transport)
        self.link.handshakeCompleted()
        self.receive({"status": "registered", "device": self.creds.deviceId, "zone": ZONE})
        self.transport.clear()

    def receive(self, payload, sender=ZONE, msgId="m1"):
        self.link.dataReceived(frame(prop(payload, to=self.creds.deviceId, sender=sender,
                                          msgId=msgId)))

    def ask(self, sender=ZONE, **changes):
        payload = {"status": "meshAnswer", "account": "alice", "request": "MABCD-EFGHI",
                   "answer": "Accepted", **changes}
        self.receive(payload, sender, "q1")
        out = frames(self.transport.value())
        self.transport.clear()
        return out

    def test_off(self):
        """
        Without C{--mesh-approvals}, the hub's request is refused
        C{NOT_AUTHORISED}, naming the option, answering its id.
        """
        [answer] = self.ask()
        self.assertEqual(answer["to"], ZONE)
        self.assertEqual((answer["payload"]["code"], answer["payload"]["ref"]),
                         ("NOT_AUTHORISED", "q1"))
        self.assertIn("--mesh-approvals", answer["payload"]["message"])

    def test_fromAnotherDevice(self):
        """
        A device asking through the hub (the hub names it as the sender) is
        refused C{NOT_AUTHORISED}, and nothing is answered for it.
        """
        approvals = self.proxy.meshApprovals = _Approvals()
        [answer] = self.ask(sender=f"{ZONE}/phone")
        self.assertEqual(answer["to"], f"{ZONE}/phone")
        self.assertEqual(answer["payload"]["code"], "NOT_AUTHORISED")
        self.assertIn("only the hub", answer["payload"]["message"])
        self.assertEqual(approvals.asked, [])

    def test_answered(self):
        """
        With C{--mesh-approvals}, the hub's request is answered with
        C{meshAnswered} naming its id, carrying what the worker answered.
        """
        approvals = self.proxy.meshApprovals = _Approvals()
        self.assertEqual(self.ask(), [])
        self.assertEqual(approvals.asked, [("alice", "MABCD-EFGHI", "Accepted")])
        approvals.result.callback({"account": "alice", "device": "MABCD-EFGHI",
                                   "result": "Accepted", "name": "tablet"})
        [answer] = frames(self.transport.value())
        self.assertEqual(answer["to"], ZONE)
        self.assertEqual(answer["payload"], {
            "status": "meshAnswered", "ref": "q1", "account": "alice", "device": "MABCD-EFGHI",
            "result": "Accepted", "name": "tablet"})

    def test_failed(self):
        """
        The worker's refusal goes to the hub as an error naming the
        request's id.
        """
        approvals = self.proxy.meshApprovals = _Approvals()
        self.ask()
        approvals.result.errback(ZoneError("UNKNOWN_DESTINATION", "no request from MABCD"))
        [answer] = frames(self.transport.value())
        self.assertEqual((answer["payload"]["status"], answer["payload"]["code"],
                          answer["payload"]["ref"]), ("error", "UNKNOWN_DESTINATION", "q1"))

    def test_linkGone(self):
        """
        An answer that comes after the link closed is not written.
        """
        approvals = self.proxy.meshApprovals = _Approvals()
        self.ask()
        self.link.connectionLost(Failure(ConnectionDone()))
        approvals.result.callback({"account": "alice", "device": "MABCD-EFGHI",
                                   "result": "Accepted", "name": "tablet"})
        self.assertEqual(self.transport.value(), b"")

    def test_badFields(self):
        """
        A request whose fields are not short strings is C{BAD_ENVELOPE}.
        """
        self.proxy.meshApprovals = _Approvals()
        for changes in ({"account": 1}, {"request": "M" * 200}, {"answer": None}):
            [answer] = self.ask(**changes)
            self.assertEqual(answer["payload"]["code"], "BAD_ENVELOPE", changes)
        self.assertEqual(self.proxy.meshApprovals.asked, [])


class ProxyWiringTests(SynchronousTestCase):
    """
    The proxy builds the worker only with C{--mesh-approvals}.
    """

    def test_wired(self):
        """
        C{ProxySettings(meshApprovals=True)} gives the Hub mode a
        L{MeshApprovals} the hub link finds; by default there is none.
        """
        fixture = MemoryHub(self, onDisk=False)
        for on in (False, True):
            dataDir = self.mktemp()
            creds = enrolledCredentials(fixture, f"laptop{int(on)}")
            ZoneDirectory(dataDir).store(creds)
            proxy = Proxy(dataDir, nowReactor(), "laptop",
                          settings=ProxySettings(meshApprovals=on, peerPort=None,
                                                 peerConnection=False))
            self.assertIsNone(proxy.meshApprovals)
            proxy.startService()
            self.addCleanup(proxy.stopService)
            if on:
                self.assertIsInstance(proxy.meshApprovals, MeshApprovals)
            else:
                self.assertIsNone(proxy.meshApprovals)
