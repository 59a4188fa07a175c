"""
End to end: no Publish the Mesh portal acknowledged is lost when its
process dies. A real C{twistd meshportal}, a client firing many Publishes
at once, C{SIGKILL} while answers are arriving, a restart on the same data
directory: every Publish answered with success is there (Get), and the
log's hash chain verifies.
"""

import json
import os
import signal

from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from pz.mesh.messages import GetRequest, PublishRequest, StatusRequest
from pzh.portal.store import SQLitePortalStore
from pzh.portal.tap import PORTAL_DB

from tests.e2e.harness import Twistd, freePort, shortTempDir, waitFor
from tests.mesh.portal._support import makeDevice

#: Publishes prepared; requests in flight; successes before the kill.
PREPARED = 240
IN_FLIGHT = 16
KILL_AFTER = 60


class PortalCrashTests(TestCase):
    """
    SIGKILL under load loses nothing that was answered.
    """

    timeout = 180

    def setUp(self):
        self.root = shortTempDir(self)
        self.dataDir = os.path.join(self.root, "portal")
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = IN_FLIGHT
        pool.retryAutomatically = False
        self.addCleanup(pool.closeCachedConnections)
        self.http = HTTPClient(Agent(reactor, pool=pool))

    @defer.inlineCallbacks
    def startPortal(self, *extra):
        """
        Start C{twistd meshportal} on the data directory; fire with the
        process and its transaction URL once it answers.
        """
        port = freePort()
        portal = Twistd(self, "meshportal", [
            "--data-dir", self.dataDir, "--interface", "127.0.0.1", "--port", str(port), *extra,
        ], os.path.join(self.root, f"portal-{port}.log")).start()
        url = f"http://127.0.0.1:{port}/.well-known/mmm/"
        yield waitFor(lambda: self.post(url, StatusRequest().toJSON()).addCallback(
            lambda answer: answer[0] == 201), what="the portal")
        return portal, url

    @defer.inlineCallbacks
    def post(self, url: str, body: bytes):
        response = yield self.http.post(url, data=body, timeout=20)
        content = yield response.content()
        return response.code, json.loads(content)

    @defer.inlineCallbacks
    def crashUnderLoad(self, *extra):
        """
        Fire the prepared Publishes, IN_FLIGHT at a time; SIGKILL the portal
        as the KILL_AFTER-th success answer arrives. Fire with the
        identifiers whose Publish was answered with success, and how many
        requests were still unanswered at the kill.
        """
        devices = [makeDevice(f"d{n}") for n in range(PREPARED)]
        portal, url = yield self.startPortal(*extra)
        queue = iter(devices)
        acknowledged, killed = [], []
        unanswered = []

        @defer.inlineCallbacks
        def loop():
            for device in queue:
                if killed:
                    return
                try:
                    code, answer = yield self.post(url, PublishRequest(Entry=device.profile).toJSON())
                except Exception:
                    # The connection died with the portal: no answer, no claim.
                    unanswered.append(device.udf)
                    return
                status = answer.get("PublishResponse", {}).get("Status")
                if code == 201 and status == 201:
                    acknowledged.append(device.udf)
                if len(acknowledged) >= KILL_AFTER and not killed:
                    killed.append(portal.kill(signal.SIGKILL))

        yield defer.gatherResults([loop() for _ in range(IN_FLIGHT)])
        self.assertTrue(killed, f"only {len(acknowledged)} Publishes succeeded; the portal was "
                        "never killed")
        yield killed[0]
        return acknowledged, unanswered

    @defer.inlineCallbacks
    def checkNothingLost(self, acknowledged):
        """
        Restart the portal on the same data: each acknowledged Publish is
        found by Get, and the log chains.
        """
        _, url = yield self.startPortal()
        for udf in acknowledged:
            code, answer = yield self.post(url, GetRequest(Identifier=udf).toJSON())
            self.assertEqual(code, 201, f"acknowledged Publish of {udf} lost: {answer}")
            [item] = answer["GetResponse"]["DataItems"]
            self.assertEqual(item["Entry"]["SignedDeviceProfile"]["Identifier"], udf)
        store = SQLitePortalStore(os.path.join(self.dataDir, PORTAL_DB))
        self.addCleanup(store.close)
        head = store.verifyChain()
        self.assertGreaterEqual(head.sequence, len(acknowledged))
        code, status = yield self.post(url, StatusRequest().toJSON())
        self.assertEqual(status["StatusResponse"]["CheckpointValue"], head.hash.hex())

    @defer.inlineCallbacks
    def test_killedWhileAnswering(self):
        """
        The default portal (batches committed each turn, in its writer
        thread) killed with answers arriving and requests in flight.
        """
        acknowledged, unanswered = yield self.crashUnderLoad()
        self.assertGreaterEqual(len(acknowledged), KILL_AFTER)
        self.assertTrue(unanswered, "the kill came when no request was in flight")
        yield self.checkNothingLost(acknowledged)

    @defer.inlineCallbacks
    def test_killedWithBatchOpen(self):
        """
        The same with batches held open half a second: the kill lands while a batch
        is collecting, and its members, unanswered, may be lost; none of
        those answered is.
        """
        acknowledged, unanswered = yield self.crashUnderLoad("--commit-delay", "0.5")
        self.assertTrue(unanswered, "the kill came when no request was in flight")
        yield self.checkNothingLost(acknowledged)
