"""
End to end: a Mesh connection request approved from the hub's admin API,
signed on the administration device, with real processes on 127.0.0.1.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e.meshsetup import AdminSession, meshApprovalScenario


class MeshApprovalTests(TestCase):
    """
    C{POST /api/mesh/pending/ID/approve} against a real C{twistd pzh} and
    an administration device run with C{twistd pzp --mesh-approvals}.
    """

    timeout = 240

    @defer.inlineCallbacks
    def test_approveFromAdminAPI(self):
        """
        Signed in, C{POST /api/mesh/pending/UDF/approve} answers 200
        C{Accepted} once the administration device signed the answer; the
        asking device then sees itself approved, receives its zone
        certificate and its proxy reaches Hub/Connected; the request is no
        longer pending.  Without the CSRF token nothing is answered, and a
        request that is not pending is 404.
        """
        scenario = yield meshApprovalScenario(self)
        zone = scenario.zone
        session = yield AdminSession.signIn(zone)
        status, rows = yield session.request("GET", "/api/mesh/pending")
        self.assertEqual(status, 200, rows)
        self.assertEqual([(r["id"], r["account"], r["name"]) for r in rows],
                         [(scenario.request, "alice", "tablet")])

        path = f"/api/mesh/pending/{scenario.request}/approve"
        status, answer = yield AdminSession(zone, session.cookie, "").request("POST", path)
        self.assertEqual((status, answer["code"]), (403, "CSRF_REQUIRED"))
        status, answer = yield session.request("POST", "/api/mesh/pending/MNOPE/approve")
        self.assertEqual((status, answer["code"]), (404, "UNKNOWN_DESTINATION"))

        status, answer = yield session.request("POST", path)
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer, {"account": "alice", "device": scenario.request,
                                  "result": "Accepted", "name": "tablet",
                                  "zone_device": zone.deviceId("tablet")})
        self.assertIn(f"approved device {scenario.request} (tablet) for account alice",
                      scenario.adminProcess.log())

        connected = yield scenario.connecting
        self.assertEqual((connected["result"], connected["device"], connected["zone_device"]),
                         ("Accepted", scenario.request, zone.deviceId("tablet")))
        status, rows = yield session.request("GET", "/api/mesh/pending")
        self.assertEqual((status, rows), (200, []))
        zone.startDevice(scenario.device)
        state = yield zone.waitState(scenario.device, "Hub", "Connected")
        self.assertEqual(state["device"], zone.deviceId("tablet"))
