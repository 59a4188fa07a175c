"""
Tests for L{pzh.portal.replica}: a read-only portal following a primary by
replaying its Transfer answers, over HTTP in memory.
"""

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from pz.mesh.client import MeshClient
from pz.mesh.messages import ConnectStartRequest, CreateRequest, PublishRequest, StatusRequest
from pzh.portal.replica import PortalReplica
from pzh.portal.resource import wellKnown
from pzh.portal.service import PortalSettings

from tests.mesh.portal._support import PortalFixture, makeDevice, makePerson


class ReplicaTests(SynchronousTestCase):
    """
    A primary with some history, and a replica following it.
    """

    def setUp(self):
        self.primary = PortalFixture(self)
        self.alice = makePerson()
        self.write(CreateRequest(Account="alice", Profile=self.alice.personal))
        for n in range(3):
            self.write(PublishRequest(Entry=makeDevice(f"d{n}").profile))
        self.write(ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(makeDevice())))
        self.stub = self.serve(self.primary)
        self.replica = PortalFixture(self, PortalSettings(primary="https://primary.example/"))
        self.follower = PortalReplica(
            self.replica.service, MeshClient("https://primary.example/", self.stub),
            self.replica.clock, interval=5.0, pageEntries=2,
        )

    def serve(self, portal):
        root = Resource()
        root.putChild(b".well-known", wellKnown(portal.service))
        return StubTreq(root)

    def write(self, request):
        self.primary.later()
        response = self.primary.service.dispatch(request)
        self.assertIn(response.Status, (201, 202), response.StatusDescription)

    def pull(self, stub=None):
        """
        Run one round to the end; return how many records it replayed.
        """
        d = self.follower.pull()
        for _ in range(100):
            if d.called:
                break
            (stub or self.stub).flush()
        return self.successResultOf(d)

    def checkpoint(self, portal):
        return portal.service.dispatch(StatusRequest()).CheckpointValue

    def test_catchUp(self):
        """
        One round replays the whole log, page by page, and the replica has
        the primary's checkpoint; a round with nothing new replays nothing;
        later writes are picked up by the next round.
        """
        self.assertEqual(self.pull(), 6)
        self.assertEqual(self.checkpoint(self.replica), self.checkpoint(self.primary))
        self.assertEqual(self.pull(), 0)
        self.write(PublishRequest(Entry=makeDevice().profile))
        self.assertEqual(self.pull(), 1)
        self.assertEqual(self.checkpoint(self.replica), self.checkpoint(self.primary))
        self.assertEqual(self.replica.tables(), self.primary.tables())

    def test_loop(self):
        """
        Started, it pulls at once and then every interval on its clock;
        stopped, it leaves nothing scheduled.
        """
        self.follower.startService()
        for _ in range(20):
            self.stub.flush()
        self.assertEqual(self.checkpoint(self.replica), self.checkpoint(self.primary))
        self.write(PublishRequest(Entry=makeDevice().profile))
        self.replica.clock.advance(5)
        for _ in range(20):
            self.stub.flush()
        self.assertEqual(self.checkpoint(self.replica), self.checkpoint(self.primary))
        self.follower.stopService()
        self.assertEqual(self.replica.clock.getDelayedCalls(), [])

    def test_divergedPrimary(self):
        """
        A primary whose history differs from what was replayed is not
        followed: the round stops at the first record that does not chain.
        """
        self.pull()
        head = self.replica.store.head()
        other = PortalFixture(self)
        bob = makePerson("bob")
        for n in range(8):
            other.later()
            other.service.dispatch(PublishRequest(Entry=makeDevice(f"o{n}").profile))
        other.service.dispatch(CreateRequest(Account="bob", Profile=bob.personal))
        stub = self.serve(other)
        self.follower._client = MeshClient("https://other.example/", stub)
        self.assertEqual(self.pull(stub), 0)
        self.assertEqual(self.replica.store.head(), head)

    def test_primaryFails(self):
        """
        A primary that cannot be reached is logged and retried next round.
        """
        class Down:
            """
            A client whose primary refuses connections.
            """

            def transfer(self, constraints):
                from twisted.internet.defer import fail
                from twisted.internet.error import ConnectionRefusedError

                return fail(ConnectionRefusedError())

        self.follower._client = Down()
        self.assertEqual(self.successResultOf(self.follower.pull()), 0)
        from twisted.internet.error import ConnectionRefusedError

        self.assertEqual(len(self.flushLoggedErrors(ConnectionRefusedError)), 1)
