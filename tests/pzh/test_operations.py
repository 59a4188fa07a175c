"""
Tests for L{pzh.operations}: the zone operations C{pzctl} and the admin
API share, over a real hub in memory.
"""

import os

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.mesh.messages import ConnectStartRequest, CreateRequest
from pz.policy.edit import addRule, showRules
from pz.policy.item import POLICY
from pz.sync.items import ItemTree
from pz.testing import ZONE, MemoryHub, MemoryZone
from pz.tokens import codeId, tokenHash
from pzh.hub import HubSettings
from pzh.interfaces import IZoneLink
from pzh.operations import ZoneOperations
from pzp.proxy import ProxySettings
from tests.mesh.portal._support import PortalFixture, makeDevice, makePerson


@implementer(IZoneLink)
class _Link:
    """
    A connected device as the registry sees it.
    """

    replaced = False
    peerPort = 0
    fingerprint = None

    def __init__(self, deviceId: str, address: str, lastSeen: float) -> None:
        self.deviceId = deviceId
        self.address = address
        self.lastSeen = lastSeen
        self.transport = StringTransport()

    def sendString(self, data: bytes) -> None:
        pass


class OperationsTests(SynchronousTestCase):
    """
    L{ZoneOperations.forHub} over a L{MemoryHub}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.ops = ZoneOperations.forHub(self.hub)
        self.heard = []
        self.hub.events.subscribe(lambda kind, data: self.heard.append((kind, data)))

    def test_deviceStates(self):
        """
        A device is C{connected} while its link is registered (with the
        link's address and last-seen time), C{disconnected} otherwise, and
        C{revoked} once revoked, whether connected or not.
        """
        self.fixture.enrolDevice("phone", "10.0.0.1")
        self.fixture.enrolDevice("tv")
        link = _Link(f"{ZONE}/phone", "127.0.0.1:4000", 1700000000.0)
        self.hub.registry.register(link)
        self.hub.registry.cancel()
        rows = {r["id"]: r for r in self.ops.devices()}
        self.assertEqual(rows[f"{ZONE}/phone"]["state"], "connected")
        self.assertEqual(rows[f"{ZONE}/phone"]["address"], "127.0.0.1:4000")
        self.assertEqual(rows[f"{ZONE}/phone"]["last_seen"], "2023-11-14T22:13:20+00:00")
        self.assertEqual(rows[f"{ZONE}/tv"]["state"], "disconnected")
        self.assertEqual(self.ops.device(f"{ZONE}/phone"), rows[f"{ZONE}/phone"])
        self.ops.revoke(f"{ZONE}/phone")
        self.assertEqual(self.ops.device(f"{ZONE}/phone")["state"], "revoked")

    def test_devicesOneQuery(self):
        """
        Listing the devices reads the store once, whatever their number:
        no query per row (a 5,000-device zone's list is what C{make bench}
        loads the admin API with).
        """
        for index in range(20):
            self.fixture.enrolDevice(f"d{index}")
        calls = []
        store = self.hub.store
        for name in ("listDevices", "getDevice", "deviceBySerial", "outstandingTokens"):
            def counted(*args, _name=name, _real=getattr(store, name)):
                calls.append(_name)
                return _real(*args)
            self.patch(store, name, counted)
        self.assertEqual(len(self.ops.devices()), 20)
        self.assertEqual(calls, ["listDevices"])

    def test_deviceReadsOneLink(self):
        """
        One device's row reads only its own link from the hub's registry,
        not the list of every link (an event stream asks for one row at
        each connect and disconnect of a large zone).
        """
        self.fixture.enrolDevice("phone")
        link = _Link(f"{ZONE}/phone", "127.0.0.1:4000", 1.0)
        self.hub.registry.register(link)
        self.hub.registry.cancel()
        listed = []
        self.patch(self.hub.registry, "links", lambda: listed.append(True) or [link])
        ops = ZoneOperations.forHub(self.hub)
        self.assertEqual(ops.device(f"{ZONE}/phone")["state"], "connected")
        self.assertEqual(listed, [])
        self.assertEqual(ops.devices()[0]["state"], "connected")
        self.assertEqual(listed, [True])

    def test_deviceUnknown(self):
        """
        An unknown device, or what is no id at all, is
        C{UNKNOWN_DESTINATION}, and revoking it signs no CRL.
        """
        crl = self.hub.authority.crl
        for deviceId in (f"{ZONE}/ghost", None, 7):
            self.assertEqual(self.assertRaises(ZoneError, self.ops.device, deviceId).code,
                             "UNKNOWN_DESTINATION")
            self.assertEqual(self.assertRaises(ZoneError, self.ops.revoke, deviceId).code,
                             "UNKNOWN_DESTINATION")
        self.assertIs(self.hub.authority.crl, crl)

    def test_codes(self):
        """
        A code made is listed by its id (the start of its token's hash)
        until it is used, cancelled or expires; the listeners hear each.
        """
        made = self.ops.newCode("tv")
        self.assertEqual(made["id"], codeId(tokenHash(made["code"].rsplit("/", 1)[1]
                                                      .split("#")[0])))
        self.assertEqual(self.ops.codes(), [{"id": made["id"], "device": f"{ZONE}/tv",
                                             "expires": made["expires"]}])
        self.assertEqual(self.ops.cancelCode(made["id"]), {"id": made["id"],
                                                           "device": f"{ZONE}/tv"})
        self.assertEqual(self.ops.codes(), [])
        self.assertEqual([(k, d["event"]) for k, d in self.heard], [("code", "made"),
                                                                   ("code", "cancelled")])
        self.ops.newCode("radio")
        self.fixture.clock.advance(self.hub.enrolment.codeLifetime)
        self.assertEqual(self.ops.codes(), [])

    def test_cancelRefused(self):
        """
        Cancelling a used, unknown or malformed id is refused, and the
        codes stay as they were.
        """
        made = self.ops.newCode("tv")
        for bad, code in (("0" * 16, "TOKEN_INVALID"), ("ABC", "BAD_REQUEST"),
                          (made["id"].upper(), "BAD_REQUEST"), (None, "BAD_REQUEST")):
            self.assertEqual(self.assertRaises(ZoneError, self.ops.cancelCode, bad).code, code)
        self.assertEqual(len(self.ops.codes()), 1)

    def test_newCodeRefused(self):
        """
        A name that is no string, or no device name, is C{BAD_REQUEST}.
        """
        for name in (None, 3, "", "a b"):
            self.assertEqual(self.assertRaises(ZoneError, self.ops.newCode, name).code,
                             "BAD_REQUEST")
        self.assertEqual(self.ops.codes(), [])

    def test_events(self):
        """
        The hub tells its listeners of a device enrolled, connected,
        disconnected and revoked, by id.
        """
        self.fixture.enrolDevice("phone")
        link = _Link(f"{ZONE}/phone", "127.0.0.1:4000", 1.0)
        self.hub.registry.register(link)
        self.hub.registry.unregister(link)
        self.hub.registry.cancel()
        self.ops.revoke(f"{ZONE}/phone")
        self.assertEqual([d for k, d in self.heard if k == "device"], [f"{ZONE}/phone"] * 4)

    def test_summary(self):
        """
        The summary counts devices by state and outstanding codes.
        """
        self.fixture.enrolDevice("phone")
        self.fixture.enrolDevice("tv")
        self.ops.revoke(f"{ZONE}/tv")
        self.ops.newCode("radio")
        summary = self.ops.summary()
        self.assertEqual(summary["devices"], {"enrolled": 2, "connected": 0,
                                              "disconnected": 1, "revoked": 1})
        self.assertEqual(summary["codes"], 1)
        self.assertEqual(summary["uptime"], 0.0)


class MeshTests(SynchronousTestCase):
    """
    The Mesh connection requests waiting on the hub's portal.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.portal = PortalFixture(self)
        self.ops = ZoneOperations.forHub(self.fixture.hub, self.portal.service)
        self.alice = makePerson("alice")
        response = self.portal.service.dispatch(
            CreateRequest(Account="alice", Profile=self.alice.personal))
        self.assertEqual(response.Status, 201, response.StatusDescription)

    def start(self, name: str):
        device = makeDevice(name)
        response = self.portal.service.dispatch(
            ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(device)))
        self.assertEqual(response.Status, 201, response.StatusDescription)
        return device

    def test_pending(self):
        """
        Every pending request is listed, oldest first, with the device's
        UDF, account, the name it asks for and its signature checked.
        """
        self.assertEqual(self.ops.meshPending(), [])
        tablet, watch = self.start("tablet"), self.start("watch")
        rows = self.ops.meshPending()
        self.assertEqual([(r["id"], r["account"], r["name"], r["signature"]) for r in rows],
                         [(tablet.udf, "alice", "tablet", "signed"),
                          (watch.udf, "alice", "watch", "signed")])

    def test_answer(self):
        """
        The hub holds no administration key and signs nothing: with no
        administration device connected to answer, answering a pending
        request fails C{NOT_CONNECTED}, naming the option and the command
        that answer it; an unknown request is C{UNKNOWN_DESTINATION}; a bad
        answer C{BAD_REQUEST}; the request stays pending.
        """
        tablet = self.start("tablet")
        error = self.failureResultOf(self.ops.meshAnswer(tablet.udf, "approve"), ZoneError).value
        self.assertEqual(error.code, "NOT_CONNECTED")
        self.assertIn(f"mesh approve {tablet.udf}", error.message)
        self.assertIn("--mesh-approvals", error.message)
        self.assertEqual(self.failureResultOf(self.ops.meshAnswer("NOPE", "refuse"),
                                              ZoneError).value.code, "UNKNOWN_DESTINATION")
        self.assertEqual(self.failureResultOf(self.ops.meshAnswer(tablet.udf, "maybe"),
                                              ZoneError).value.code, "BAD_REQUEST")
        self.assertEqual(len(self.ops.meshPending()), 1)

    def test_answerWithoutHub(self):
        """
        Operations over a hub's directory (no hub running) have nobody to
        ask: C{NOT_CONNECTED}, naming the pzctl command.
        """
        tablet = self.start("tablet")
        hub = self.fixture.hub
        ops = ZoneOperations(hub.zone, hub.store, hub.clock, hub.enrolment, dict,
                             hub.revoke, portal=self.portal.service)
        error = self.failureResultOf(ops.meshAnswer(tablet.udf, "refuse"), ZoneError).value
        self.assertEqual(error.code, "NOT_CONNECTED")
        self.assertIn(f"pzctl --pzp-dir DIR mesh refuse {tablet.udf}", error.message)

    def test_noPortal(self):
        """
        Without a portal, the Mesh operations are C{NOT_RUNNING}.
        """
        ops = ZoneOperations.forHub(self.fixture.hub)
        self.assertEqual(self.assertRaises(ZoneError, ops.meshPending).code, "NOT_RUNNING")


GET42 = [{"service": "get42", "version": "1.0", "methods": ["get42"]}]


class SyncAndServicesTests(SynchronousTestCase):
    """
    The zone's service cache and each device's synchronisation, as the
    running hub knows them, over a real hub and real devices in memory.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone", "laptop"],
                               hubSettings=HubSettings(synchronise=True),
                               deviceSettings=ProxySettings(builtinServices=False))
        self.hub = self.zone.hub
        self.ops = ZoneOperations.forHub(self.hub)
        self.phone, self.laptop = self.zone.deviceId("phone"), self.zone.deviceId("laptop")
        self.heard = []
        self.hub.events.subscribe(lambda kind, data: self.heard.append((kind, data)))

    def rows(self) -> dict:
        return {row["device"]: row for row in self.ops.syncStatus()}

    def test_inStepAfterARound(self):
        """
        Once a device's first round is over, it is C{in step} with the
        time the round ended; a change the hub pushes makes it
        C{syncing} until the device acknowledges it, which moves its
        last sync time on.
        """
        self.zone.advance(3)
        rows = self.rows()
        self.assertEqual(set(rows), {self.phone, self.laptop})
        self.assertEqual(rows[self.phone]["state"], "in step")
        self.assertEqual(set(rows[self.phone]), {"device", "state", "last_sync", "conflicts"})
        first = rows[self.phone]["last_sync"]
        self.assertIsNotNone(first)
        self.zone.reactor.advance(60)
        self.hub.sync.tree.write("context/battery.json", b'{"level": 80}\n')
        self.hub.sync.engine.localChange("context/battery.json")
        self.assertEqual(self.rows()[self.phone]["state"], "syncing")
        self.zone.flush()
        row = self.rows()[self.phone]
        self.assertEqual(row["state"], "in step")
        self.assertGreater(row["last_sync"], first)

    def test_disconnectedIsUnknown(self):
        """
        A device that is not connected is C{unknown} (what it changed
        offline cannot be known) and keeps its last sync time; a revoked
        device is not listed.
        """
        self.zone.advance(3)
        before = self.rows()[self.laptop]["last_sync"]
        self.zone.stopDevice("laptop")
        self.zone.flush()
        self.assertEqual(self.rows()[self.laptop], {"device": self.laptop, "state": "unknown",
                                                    "last_sync": before, "conflicts": 0})
        self.zone.revoke("phone")
        self.assertEqual(list(self.rows()), [self.laptop])

    def test_events(self):
        """
        The hub tells its listeners C{("sync", DEVICE_ID)} when a device's
        state changes: syncing as its link comes up, in step, unknown when
        it goes; not for every message that changes nothing.
        """
        self.zone.advance(3)
        self.assertEqual([d for k, d in self.heard if k == "sync"], [])
        self.zone.stopDevice("laptop")
        self.zone.flush()
        self.assertEqual([d for k, d in self.heard if k == "sync"], [self.laptop])
        self.assertEqual(self.ops.syncDevice(self.laptop)["state"], "unknown")

    def test_eventsAsALinkComesUp(self):
        """
        A device's first link: C{syncing} as it registers, then C{in
        step}, each told once.
        """
        states = []
        self.hub.events.subscribe(
            lambda kind, data: states.append(self.ops.syncDevice(data)["state"])
            if kind == "sync" and data == self.zone.deviceId("tv") else None)
        self.zone.addDevice("tv")
        self.zone.advance(3)
        self.assertEqual(states, ["syncing", "in step"])

    def test_conflicts(self):
        """
        The hub's conflict copies are listed with the device whose version
        lost, and counted in that device's row.
        """
        self.zone.advance(3)
        self.assertEqual(self.ops.syncConflicts(), [])
        self.hub.sync.state.addConflict("preferences.json", self.phone, 1764496800.0,
                                        "conflicts/preferences.json.phone.20251130T100000Z",
                                        b"\x01" * 32)
        self.assertEqual(self.ops.syncConflicts(), [{
            "path": "preferences.json", "device": self.phone, "time": "2025-11-30T10:00:00+00:00",
            "kept_as": "conflicts/preferences.json.phone.20251130T100000Z"}])
        rows = self.rows()
        self.assertEqual((rows[self.phone]["conflicts"], rows[self.laptop]["conflicts"]), (1, 0))

    def test_services(self):
        """
        The service cache, announces not yet written included: one row per
        device and service, sorted by device then service.
        """
        self.assertEqual(self.ops.services(), [])
        two = [{"service": "b", "version": "2", "methods": ["x"]},
               {"service": "a", "version": "1", "methods": ["y", "z"]}]
        self.hub.services.announced(self.phone, GET42)
        self.hub.services.announced(self.laptop, two)
        rows = self.ops.services()
        self.assertEqual([(r["device"], r["service"]) for r in rows],
                         sorted([(self.laptop, "a"), (self.laptop, "b"), (self.phone, "get42")]))
        self.assertEqual(rows[-1], {"device": self.phone, "service": "get42", "version": "1.0",
                                    "methods": ["get42"]})

    def test_notSynchronising(self):
        """
        A hub that does not synchronise answers C{NOT_RUNNING} for the sync
        operations, and its in-memory service cache still; outside the hub
        (C{pzctl}'s operations) the service cache is C{NOT_RUNNING} too.
        """
        hub = MemoryHub(self).hub
        ops = ZoneOperations.forHub(hub)
        for operation in (ops.syncStatus, ops.syncConflicts):
            self.assertEqual(self.assertRaises(ZoneError, operation).code, "NOT_RUNNING")
        self.assertEqual(ops.services(), [])
        bare = ZoneOperations(hub.zone, hub.store, hub.clock, hub.enrolment, dict, dict)
        self.assertEqual(self.assertRaises(ZoneError, bare.services).code, "NOT_RUNNING")


class PolicyTests(SynchronousTestCase):
    """
    The zone's policy, shown and edited from the hub's items as C{pzctl
    --hub-dir DIR policy} does, over a real hub and a real device in
    memory.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone"],
                               hubSettings=HubSettings(synchronise=True),
                               deviceSettings=ProxySettings(builtinServices=False))
        self.hub = self.zone.hub
        self.ops = ZoneOperations.forHub(self.hub)
        self.phone = self.zone.deviceId("phone")
        self.zone.advance(3)
        self.heard = []
        self.hub.events.subscribe(
            lambda kind, data: kind == "policy" and self.heard.append((kind, data)))

    def phonePolicy(self) -> bytes:
        return ItemTree(os.path.join(self.zone.dataDir("phone"), "zone")).read(POLICY)

    def test_show(self):
        """
        The rules as C{pzctl --hub-dir DIR policy show --json} lists them,
        and no error.
        """
        shown = self.ops.policy()
        self.assertIsNone(shown["error"])
        self.assertEqual(shown["rules"], showRules(self.hub.sync.tree.read(POLICY)))
        self.assertIn("urn:pz:rule:permit-own-zone", [r["id"] for r in shown["rules"]])

    def test_addRemoveSyncs(self):
        """
        A rule added here is in the hub's item at once, reaches the device
        by sync and is told as an C{event: policy}; removed, it leaves
        both.
        """
        ruleId = self.ops.addPolicyRule("deny", subject=self.phone, service="get42",
                                        first=True)["rule"]
        self.assertEqual(self.heard, [("policy", {"path": POLICY})])
        [row] = [r for r in self.ops.policy()["rules"] if r["id"] == ruleId]
        self.assertEqual((row["effect"], row["subject"], row["service"], row["method"]),
                         ("deny", self.phone, "get42", None))
        self.zone.advance(3)
        self.assertIn(ruleId.encode(), self.phonePolicy())
        self.assertEqual(self.ops.removePolicyRule(ruleId), {"removed": ruleId})
        self.zone.advance(3)
        self.assertNotIn(ruleId.encode(), self.phonePolicy())
        self.assertEqual(self.heard, [("policy", {"path": POLICY})] * 2)

    def test_editElsewhere(self):
        """
        An edit by C{pzctl --hub-dir} (or an editor) is told when the hub's
        scan finds it, and a device's edit when it arrives by sync: each
        once.
        """
        tree = self.hub.sync.tree
        data, _ = addRule(tree.read(POLICY), "deny", service="byhand")
        tree.write(POLICY, data)
        self.assertEqual(self.heard, [])
        self.zone.advance(3)
        self.assertEqual(self.heard, [("policy", {"path": POLICY})])
        phoneTree = ItemTree(os.path.join(self.zone.dataDir("phone"), "zone"))
        data, ruleId = addRule(phoneTree.read(POLICY), "permit", service="fromphone")
        phoneTree.write(POLICY, data)
        self.zone.advance(6)
        self.assertEqual(self.heard, [("policy", {"path": POLICY})] * 2)
        self.assertIn(ruleId, [r["id"] for r in self.ops.policy()["rules"]])

    def test_badInput(self):
        """
        A bad effect, subject or rule is refused with the code C{pzctl}
        gives, and nothing is written or told.
        """
        before = self.hub.sync.tree.read(POLICY)
        for call in (lambda: self.ops.addPolicyRule("maybe"),
                     lambda: self.ops.addPolicyRule("deny", subject="phone"),
                     lambda: self.ops.addPolicyRule("deny", service=""),
                     lambda: self.ops.removePolicyRule("urn:pz:rule:nope")):
            self.assertEqual(self.assertRaises(ZoneError, call).code, "BAD_REQUEST")
        self.assertEqual(self.hub.sync.tree.read(POLICY), before)
        self.zone.advance(3)
        self.assertEqual(self.heard, [])

    def test_broken(self):
        """
        A policy that does not parse shows its error, naming the line, and
        no rule; adding and removing refuse it with C{POLICY_INVALID} and
        write nothing.
        """
        broken = b'<?xml version="1.0"?>\n<PolicySet>\n  <oops\n'
        self.hub.sync.tree.write(POLICY, broken)
        shown = self.ops.policy()
        self.assertEqual(shown["rules"], [])
        self.assertRegex(shown["error"], r"\APOLICY_INVALID: policy line \d+: ")
        for call in (lambda: self.ops.addPolicyRule("deny"),
                     lambda: self.ops.removePolicyRule("urn:pz:rule:permit-own-zone")):
            self.assertEqual(self.assertRaises(ZoneError, call).code, "POLICY_INVALID")
        self.assertEqual(self.hub.sync.tree.read(POLICY), broken)

    def test_forDirectory(self):
        """
        Over the hub's data directory (C{pzctl}), the same file is shown
        and edited.
        """
        ops = ZoneOperations.forDirectory(self.hub.zone.dataDir, self.hub.clock)
        ruleId = ops.addPolicyRule("deny", service="get42")["rule"]
        self.assertIn(ruleId, [r["id"] for r in self.ops.policy()["rules"]])
        self.assertEqual(ops.policy(), self.ops.policy())

    def test_notSynchronising(self):
        """
        A hub that does not synchronise keeps no policy: C{NOT_RUNNING}.
        """
        ops = ZoneOperations.forHub(MemoryHub(self).hub)
        for call in (ops.policy, lambda: ops.addPolicyRule("deny"),
                     lambda: ops.removePolicyRule("x")):
            self.assertEqual(self.assertRaises(ZoneError, call).code, "NOT_RUNNING")
