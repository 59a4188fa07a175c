"""
Tests for L{pzh.adminapi}: the admin page's JSON API, requested in memory
with L{treq.testing.StubTreq}, and its event stream over a real HTTP
channel on a L{StringTransport}, in an in-memory zone.
"""

import gc
import json

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from pz import pki
from pz.pairing import PairingCode
from pz.policy.edit import addRule, showRules
from pz.policy.item import POLICY
from pz.testing import ZONE, MemoryHub, MemoryZone
from pzh.adminapi import KEEPALIVE, MAX_BODY, MAX_STREAMS, apiResource
from pzh.hub import HubSettings
from pzh.operations import ZoneOperations
from pzh.qr import qrSVG
from tests.pzh.test_friends import makePair
from pzh.web import makeSite
from pzp.proxy import ProxySettings

URL = "https://127.0.0.1:9000/api/"


class APITestBase(SynchronousTestCase):
    """
    The API of a fresh hub, mounted at C{/api}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        root = Resource()
        self.api = apiResource(self.hub, clock=self.fixture.clock)
        root.putChild(b"api", self.api)
        self.treq = StubTreq(root)

    def call(self, method: str, path: str, body=None, data: bytes = None):
        """
        C{method} C{/api/path} with C{body} as JSON (or raw C{data}): the
        status and the decoded JSON answer.
        """
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        d = self.treq.request(method, URL + path, data=data,
                              headers={b"content-type": [b"application/json"]})
        self.treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        return response.code, json.loads(self.successResultOf(response.content()))

    def assertRefused(self, result, status: int, code: str, *phrases):
        """
        The answer is C{status} with C{{"code", "message"}} naming C{code}.
        """
        self.assertEqual(result[0], status, result)
        self.assertEqual(set(result[1]), {"code", "message"})
        self.assertEqual(result[1]["code"], code)
        for phrase in phrases:
            self.assertIn(phrase, result[1]["message"])

    def enrol(self, name: str):
        return self.fixture.enrolDevice(name)


class RouteTests(APITestBase):
    """
    Every route answers JSON from the zone's operations.
    """

    def test_devices(self):
        """
        C{GET /api/devices} lists every enrolled device with its state, as
        C{pzctl devices --json} does.
        """
        self.assertEqual(self.call("GET", "devices"), (200, []))
        self.enrol("phone")
        self.enrol("tv")
        self.fixture.revoke(f"{ZONE}/tv")
        status, rows = self.call("GET", "devices")
        self.assertEqual(status, 200)
        self.assertEqual([(r["id"], r["state"]) for r in rows],
                         [(f"{ZONE}/phone", "disconnected"), (f"{ZONE}/tv", "revoked")])
        self.assertEqual(set(rows[0]), {"id", "serial", "state", "last_seen", "address",
                                        "not_after"})

    def test_newCode(self):
        """
        C{POST /api/codes} with C{{"device": NAME}} answers 201 and the new
        code, its id, the device id and expiry, and the code as a QR code
        in SVG (L{pzh.qr}; checked in C{tests.pzh.test_adminpage}); the
        code enrols that device.
        """
        status, made = self.call("POST", "codes", {"device": "phone"})
        self.assertEqual(status, 201)
        self.assertEqual(set(made), {"id", "code", "device", "expires", "qr_svg"})
        self.assertEqual(made["qr_svg"], qrSVG(made["code"]))
        self.assertEqual(made["device"], f"{ZONE}/phone")
        code = PairingCode.parse(made["code"])
        self.assertEqual(code.caFingerprint, self.fixture.zone.caFingerprint)
        key = pki.newKey()
        device, _ = self.hub.enrolment.enrol(
            code.token, pki.csrPEM(pki.makeCSR(key, "phone")).decode("ascii"), "127.0.0.1")
        self.assertEqual(device.id, f"{ZONE}/phone")

    def test_codesAndCancel(self):
        """
        C{GET /api/codes} lists the outstanding codes; C{POST
        /api/codes/ID/cancel} cancels one, which leaves the list.
        """
        _, first = self.call("POST", "codes", {"device": "phone"})
        _, second = self.call("POST", "codes", {"device": "tv"})
        status, rows = self.call("GET", "codes")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(r["id"] for r in rows), sorted([first["id"], second["id"]]))
        self.assertNotIn(first["code"], json.dumps(rows))
        self.assertEqual(self.call("POST", f"codes/{first['id']}/cancel"),
                         (200, {"id": first["id"], "device": f"{ZONE}/phone"}))
        self.assertEqual([r["id"] for r in self.call("GET", "codes")[1]], [second["id"]])

    def test_revoke(self):
        """
        C{POST /api/devices/ID/revoke} revokes the device, named by its id
        (its slash escaped or not) or by its name, and answers the serials,
        the CRL number and the device's new row.
        """
        _, cert = self.enrol("phone")
        status, result = self.call("POST", f"devices/{ZONE}%2Fphone/revoke")
        self.assertEqual(status, 200)
        self.assertEqual(result["serials"], [format(cert.serial_number, "x")])
        self.assertEqual(result["row"]["state"], "revoked")
        self.assertEqual(self.hub.store.getDevice(f"{ZONE}/phone").revoked is not None, True)
        self.enrol("tv")
        self.assertEqual(self.call("POST", f"devices/{ZONE}/tv/revoke")[1]["row"]["state"],
                         "revoked")
        self.enrol("car")
        self.assertEqual(self.call("POST", "devices/car/revoke")[1]["device"], f"{ZONE}/car")

    def test_zone(self):
        """
        C{GET /api/zone} sums the zone up: id, CA fingerprint, hub address,
        uptime, devices by state and outstanding codes.
        """
        self.enrol("phone")
        self.call("POST", "codes", {"device": "tv"})
        self.fixture.clock.advance(30)
        status, summary = self.call("GET", "zone")
        self.assertEqual(status, 200)
        self.assertEqual(summary, {
            "zone": ZONE, "ca_fingerprint": self.fixture.zone.caFingerprint,
            "hub": f"127.0.0.1:{self.fixture.zone.port}", "uptime": 30.0,
            "devices": {"enrolled": 1, "connected": 0, "disconnected": 1, "revoked": 0},
            "codes": 1,
        })

    def test_health(self):
        """
        C{GET /api/health} says the hub runs, with its zone, connected
        devices and uptime.
        """
        self.assertEqual(self.call("GET", "health"),
                         (200, {"status": "ok", "zone": ZONE, "connected": 0, "uptime": 0.0}))

    def test_meshWithoutPortal(self):
        """
        Without a Mesh portal, its routes answer C{NOT_RUNNING} (503).
        """
        self.assertRefused(self.call("GET", "mesh/pending"), 503, "NOT_RUNNING", "Mesh portal")
        self.assertRefused(self.call("POST", "mesh/pending/ABCDE/approve"), 503, "NOT_RUNNING")


class BadInputTests(APITestBase):
    """
    Bad requests get a clear error and change nothing.
    """

    def assertUnchanged(self, before):
        self.assertEqual((self.hub.store.listDevices(), self.call("GET", "codes")[1]), before)

    def state(self):
        return self.hub.store.listDevices(), self.call("GET", "codes")[1]

    def test_badJSON(self):
        """
        A body that is not UTF-8 JSON, or not an object, is C{BAD_REQUEST}
        (400) and makes no code.
        """
        before = self.state()
        for data in (b"{", b"\xff\xfe", b"[1]", b'"phone"', b"null"):
            self.assertRefused(self.call("POST", "codes", data=data), 400, "BAD_REQUEST")
        self.assertUnchanged(before)

    def test_badCodeBody(self):
        """
        A code request without C{device}, with other keys, a name that is
        not a string or cannot be a device name: C{BAD_REQUEST}.
        """
        before = self.state()
        for body in ({}, {"name": "phone"}, {"device": "phone", "x": 1}, {"device": 7},
                     {"device": "my phone!"}, {"device": "../etc"}):
            self.assertRefused(self.call("POST", "codes", body), 400, "BAD_REQUEST")
        self.assertUnchanged(before)

    def test_nameTaken(self):
        """
        A code for a name an enrolled device has: C{NAME_TAKEN} (409).
        """
        self.enrol("phone")
        before = self.state()
        self.assertRefused(self.call("POST", "codes", {"device": "phone"}), 409, "NAME_TAKEN")
        self.assertUnchanged(before)

    def test_oversized(self):
        """
        A body over L{MAX_BODY} bytes is C{BAD_REQUEST} naming the limit.
        """
        before = self.state()
        body = {"device": "phone", "pad": "x" * MAX_BODY}
        self.assertRefused(self.call("POST", "codes", body), 400, "BAD_REQUEST", str(MAX_BODY))
        self.assertUnchanged(before)

    def test_unknownDevice(self):
        """
        Revoking a device the zone never had: C{UNKNOWN_DESTINATION} (404),
        and no CRL is signed.
        """
        crl = self.hub.authority.crl
        self.assertRefused(self.call("POST", f"devices/{ZONE}%2Fghost/revoke"), 404,
                           "UNKNOWN_DESTINATION", "ghost")
        self.assertRefused(self.call("POST", "devices/ghost/revoke"), 404, "UNKNOWN_DESTINATION")
        self.assertIs(self.hub.authority.crl, crl)

    def test_unknownCode(self):
        """
        Cancelling no outstanding code: C{TOKEN_INVALID} (404); what cannot
        be an id: C{BAD_REQUEST}; the outstanding code stays.
        """
        self.call("POST", "codes", {"device": "phone"})
        before = self.state()
        self.assertRefused(self.call("POST", f"codes/{'0' * 16}/cancel"), 404, "TOKEN_INVALID")
        self.assertRefused(self.call("POST", "codes/nothex/cancel"), 400, "BAD_REQUEST")
        self.assertUnchanged(before)

    def test_unknownRoute(self):
        """
        A path the API does not have is C{UNKNOWN_MESSAGE} (404); a method
        a route does not take is 405 naming those it does.
        """
        self.assertRefused(self.call("GET", "nothing"), 404, "UNKNOWN_MESSAGE", "/api/nothing")
        self.assertRefused(self.call("GET", ""), 404, "UNKNOWN_MESSAGE")
        before = self.state()
        self.assertRefused(self.call("DELETE", "devices"), 405, "BAD_REQUEST")
        self.assertRefused(self.call("GET", "devices/x/revoke"), 405, "BAD_REQUEST")
        d = self.treq.request("PUT", URL + "codes")
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).headers.getRawHeaders(b"allow"),
                         [b"GET, POST"])
        self.assertUnchanged(before)


class EventStreamTests(SynchronousTestCase):
    """
    C{GET /api/events} streams the zone's changes as they happen.
    """

    def setUp(self):
        self.zone = MemoryZone(self)
        self.site = makeSite(self.zone.hub, reactor=self.zone.reactor)

    def session(self) -> bytes:
        """
        Sign in over the hub's site, as the page's browser does (once per
        test: sign-ins are rate-limited); the session cookie's value.
        """
        if getattr(self, "_session", None) is None:
            self._session = self._signIn()
        return self._session

    def _signIn(self) -> bytes:
        _, url = self.site.adminAuth.newLink()
        address = IPv4Address("TCP", "127.0.0.1", 2)
        channel = self.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        query = url.split("?", 1)[1].encode("ascii")
        channel.dataReceived(b"GET /signin?" + query + b" HTTP/1.1\r\nHost: hub\r\n\r\n")
        [cookie] = [line for line in transport.value().split(b"\r\n")
                    if line.lower().startswith(b"set-cookie: pz_session=")]
        channel.connectionLost(Failure(ConnectionDone()))
        return cookie.split(b"=", 1)[1].split(b";", 1)[0]

    def open(self):
        """
        Open an event stream over the hub's site: the transport it is
        written to, and a callable that closes it as a client going would.
        """
        address = IPv4Address("TCP", "127.0.0.1", 1)
        channel = self.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /api/events HTTP/1.1\r\nHost: hub\r\nCookie: pz_session="
                             + self.session() + b"\r\n\r\n")
        closed = []

        def close():
            if not closed:
                closed.append(True)
                channel.connectionLost(Failure(ConnectionDone()))

        self.addCleanup(close)
        return transport, close

    @staticmethod
    def events(transport) -> list:
        """
        The C{(event, data)} pairs written so far.
        """
        found = []
        for block in transport.value().split(b"\n\n"):
            lines = dict(line.split(b": ", 1) for line in block.split(b"\n")
                         if line.startswith((b"event: ", b"data: ")))
            if b"event" in lines:
                found.append((lines[b"event"].decode(), json.loads(lines[b"data"])))
        return found

    def test_headers(self):
        """
        The stream is C{text/event-stream}, not cached, and tells the
        client how soon to reconnect.
        """
        transport, _ = self.open()
        value = transport.value()
        self.assertTrue(value.startswith(b"HTTP/1.1 200 "), value)
        self.assertIn(b"Content-Type: text/event-stream; charset=utf-8", value)
        self.assertIn(b"Cache-Control: no-store", value)
        self.assertIn(b"retry: 3000", value)

    def test_deviceConnectsAndIsRevoked(self):
        """
        A device enrolled, connecting and revoked each sends an C{event:
        device} with its row: disconnected once enrolled, connected, then
        revoked.
        """
        transport, _ = self.open()
        self.zone.addDevice("phone")
        states = [(kind, row["id"], row["state"]) for kind, row in self.events(transport)
                  if kind == "device"]
        phone = self.zone.deviceId("phone")
        self.assertEqual(states[:2], [("device", phone, "disconnected"),
                                      ("device", phone, "connected")])
        transport.clear()
        self.zone.revoke("phone")
        self.assertIn(("device", phone, "revoked"),
                      [(k, r["id"], r["state"]) for k, r in self.events(transport)])

    def test_disconnect(self):
        """
        A device whose link drops sends an event with it disconnected.
        """
        self.zone.addDevice("phone")
        transport, _ = self.open()
        self.zone.disconnect("phone")
        self.assertEqual([(r["id"], r["state"]) for _, r in self.events(transport)][:1],
                         [(self.zone.deviceId("phone"), "disconnected")])
        self.zone.stopDevice("phone")

    def test_revokeDisconnected(self):
        """
        A device revoked while it is not connected sends an event with it
        revoked.
        """
        self.zone.memoryHub.enrolDevice("tv")
        transport, _ = self.open()
        self.zone.memoryHub.revoke(self.zone.deviceId("tv"))
        self.assertEqual([(k, r["id"], r["state"]) for k, r in self.events(transport)],
                         [("device", self.zone.deviceId("tv"), "revoked")])

    def test_codes(self):
        """
        A pairing code made, cancelled, and another one used each send an
        C{event: code} with its id, device and what happened.
        """
        from pzh.operations import ZoneOperations

        transport, _ = self.open()
        ops = ZoneOperations.forHub(self.zone.hub)
        made = ops.newCode("tv")
        ops.cancelCode(made["id"])
        self.zone.addDevice("phone")
        codes = [data for kind, data in self.events(transport) if kind == "code"]
        self.assertEqual([(c["device"], c["event"]) for c in codes], [
            (self.zone.deviceId("tv"), "made"), (self.zone.deviceId("tv"), "cancelled"),
            (self.zone.deviceId("phone"), "made"), (self.zone.deviceId("phone"), "used")])
        self.assertEqual(codes[0], {"id": made["id"], "device": self.zone.deviceId("tv"),
                                    "expires": made["expires"], "event": "made"})

    def test_mesh(self):
        """
        A Mesh connection request stored or answered at the hub's portal
        (a C{mesh} event on the hub's events) is an C{event: mesh} with its
        id, account and state, as it was told.
        """
        transport, _ = self.open()
        for state in ("pending", "Accepted"):
            self.zone.hub.events.emit("mesh", {"id": "MABCD-EFGHI", "account": "alice",
                                               "state": state})
        self.assertEqual([data for kind, data in self.events(transport) if kind == "mesh"], [
            {"id": "MABCD-EFGHI", "account": "alice", "state": "pending"},
            {"id": "MABCD-EFGHI", "account": "alice", "state": "Accepted"}])

    def test_keepalive(self):
        """
        Every L{KEEPALIVE} seconds the stream carries a comment.
        """
        transport, _ = self.open()
        transport.clear()
        self.zone.reactor.advance(KEEPALIVE - 1)
        self.assertEqual(transport.value(), b"")
        self.zone.reactor.advance(1)
        self.assertIn(b": keepalive\n\n", transport.value())

    def test_clientGoes(self):
        """
        When the client goes, its listener and keepalive go too: nothing is
        written or scheduled for it any more.
        """
        events = self.zone.hub.events
        before = len(events)
        transport, close = self.open()
        self.assertEqual(len(events), before + 1)
        close()
        self.assertEqual(len(events), before)
        self.assertEqual([c for c in self.zone.reactor.getDelayedCalls()
                          if "keepalive" in repr(c) or "LoopingCall" in repr(c)], [])
        transport.clear()
        self.zone.addDevice("phone")
        self.zone.reactor.advance(KEEPALIVE * 2)
        self.assertEqual(transport.value(), b"")

    def test_streamsBounded(self):
        """
        Past L{MAX_STREAMS} open streams a new one is refused with
        C{RATE_LIMITED} (429), until one closes.
        """
        closers = [self.open()[1] for _ in range(MAX_STREAMS)]
        transport, _ = self.open()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 429 "), transport.value())
        self.assertIn(b'"code": "RATE_LIMITED"', transport.value())
        closers[0]()
        transport, _ = self.open()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))


class SyncRouteTests(APITestBase):
    """
    C{/api/services}, C{/api/sync} and C{/api/sync/conflicts} over a hub
    that synchronises, with real devices in memory.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone"],
                               hubSettings=HubSettings(synchronise=True),
                               deviceSettings=ProxySettings(builtinServices=False))
        self.hub = self.zone.hub
        root = Resource()
        root.putChild(b"api", apiResource(self.hub, clock=self.zone.reactor))
        self.treq = StubTreq(root)
        self.phone = self.zone.deviceId("phone")

    def test_sync(self):
        """
        C{GET /api/sync} has one row per unrevoked device: in step after
        its first round, with the time it ended.
        """
        self.zone.advance(3)
        status, rows = self.call("GET", "sync")
        self.assertEqual(status, 200)
        self.assertEqual([(r["device"], r["state"], r["conflicts"]) for r in rows],
                         [(self.phone, "in step", 0)])
        self.assertRegex(rows[0]["last_sync"],
                         r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\Z")

    def test_conflicts(self):
        """
        C{GET /api/sync/conflicts} lists the hub's conflict copies.
        """
        self.assertEqual(self.call("GET", "sync/conflicts"), (200, []))
        self.hub.sync.state.addConflict("preferences.json", self.phone, 1764496800.0,
                                        "conflicts/p", None)
        self.assertEqual(self.call("GET", "sync/conflicts"), (200, [
            {"path": "preferences.json", "device": self.phone, "time": "2025-11-30T10:00:00+00:00",
             "kept_as": "conflicts/p"}]))
        self.assertEqual(self.call("GET", "sync")[1][0]["conflicts"], 1)

    def test_services(self):
        """
        C{GET /api/services}: one row per device and service.
        """
        self.assertEqual(self.call("GET", "services"), (200, []))
        self.hub.services.announced(self.phone, [{"service": "get42", "version": "1.0",
                                                  "methods": ["get42"]}])
        self.assertEqual(self.call("GET", "services"), (200, [
            {"device": self.phone, "service": "get42", "version": "1.0", "methods": ["get42"]}]))

    def test_notSynchronising(self):
        """
        A hub that does not synchronise answers the sync routes C{503
        NOT_RUNNING}.
        """
        root = Resource()
        root.putChild(b"api", apiResource(MemoryHub(self).hub))
        self.treq = StubTreq(root)
        for path in ("sync", "sync/conflicts"):
            self.assertRefused(self.call("GET", path), 503, "NOT_RUNNING", "synchronise")
        self.assertEqual(self.call("GET", "services"), (200, []))
        self.assertRefused(self.call("POST", "sync"), 405, "BAD_REQUEST")


class ZonesRouteTests(APITestBase):
    """
    C{GET /api/zones}: the friend zones, as C{pzctl zones} lists them.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.hub = self.pair.alice.hub
        root = Resource()
        root.putChild(b"api", apiResource(self.hub, clock=self.pair.alice.clock))
        self.treq = StubTreq(root)

    def test_zones(self):
        """
        None before an invitation is accepted; then bob's zone, its CA's
        fingerprint and its link's state.
        """
        self.assertEqual(self.call("GET", "zones"), (200, []))
        self.pair.befriend()
        status, rows = self.call("GET", "zones")
        self.assertEqual(status, 200)
        self.assertEqual([(r["zone"], r["fingerprint"]) for r in rows],
                         [(self.pair.bob.zoneId, self.pair.bob.zone.caFingerprint)])
        self.assertEqual(rows, self.hub.zoneLinks.listing())


class SyncEventTests(SynchronousTestCase):
    """
    C{GET /api/events} carries an C{event: sync} with the device's row
    when its synchronisation state changes.
    """

    session, _signIn, open = EventStreamTests.session, EventStreamTests._signIn, EventStreamTests.open
    events = staticmethod(EventStreamTests.events)

    def setUp(self):
        self.zone = MemoryZone(self, hubSettings=HubSettings(synchronise=True))
        self.site = makeSite(self.zone.hub, reactor=self.zone.reactor)

    def test_syncEvents(self):
        """
        A device connecting syncs, then is in step (each change told once);
        when it goes, its state is unknown.
        """
        transport, _ = self.open()
        self.zone.addDevice("phone")
        self.zone.advance(3)
        phone = self.zone.deviceId("phone")
        rows = [row for kind, row in self.events(transport) if kind == "sync"]
        # Its first round, then others (its services announced reach the
        # service cache, which is pushed back to it), ending in step.
        self.assertEqual([(r["device"], r["state"]) for r in rows[:2]],
                         [(phone, "syncing"), (phone, "in step")])
        self.assertEqual(rows[-1]["state"], "in step")
        states = [r["state"] for r in rows]
        self.assertNotIn(True, [a == b for a, b in zip(states, states[1:])], states)
        self.assertEqual(set(rows[-1]), {"device", "state", "last_sync", "conflicts"})
        transport.clear()
        self.zone.stopDevice("phone")
        self.zone.flush()
        self.assertEqual([(r["device"], r["state"]) for k, r in self.events(transport)
                          if k == "sync"], [(phone, "unknown")])


class MeshRouteTests(SynchronousTestCase):
    """
    C{/api/mesh/pending} over the hub's Mesh portal.
    """

    def setUp(self):
        from pz.mesh.messages import ConnectStartRequest, CreateRequest
        from tests.mesh.portal._support import PortalFixture, makeDevice, makePerson

        self.fixture = MemoryHub(self)
        self.portal = PortalFixture(self)
        root = Resource()
        root.putChild(b"api", apiResource(self.fixture.hub, self.portal.service,
                                          self.fixture.clock))
        self.treq = StubTreq(root)
        alice = makePerson("alice")
        self.portal.service.dispatch(CreateRequest(Account="alice", Profile=alice.personal))
        self.tablet = makeDevice("tablet")
        self.portal.service.dispatch(
            ConnectStartRequest(AccountID="alice", SignedRequest=alice.request(self.tablet)))

    call = APITestBase.call
    assertRefused = APITestBase.assertRefused

    def test_pending(self):
        """
        C{GET /api/mesh/pending} lists the requests waiting.
        """
        status, rows = self.call("GET", "mesh/pending")
        self.assertEqual(status, 200)
        self.assertEqual([(r["id"], r["name"], r["signature"]) for r in rows],
                         [(self.tablet.udf, "tablet", "signed")])

    def connectAdmin(self, name: str = "laptop"):
        """
        Connect an administration device of the account as a bare frame
        client that says it answers for it.
        """
        key, cert = self.fixture.enrolDevice(name)
        client = self.fixture.connectDevice(key, cert).client
        client.sendProp(ZONE, {"status": "meshAccounts", "accounts": ["alice"]})
        self.fixture.coalesce()
        client.take()
        return client

    def post(self, path: str):
        """
        Start C{POST /api/PATH}; the Deferred response.
        """
        d = self.treq.request("POST", URL + path, data=b"")
        self.treq.flush()
        self.fixture.flush()
        return d

    def respond(self, client, **payload):
        """
        The device answers the one C{meshAnswer} it was asked.
        """
        [asked] = [f for f in client.take() if f["payload"].get("status") == "meshAnswer"]
        client.sendProp(ZONE, {"ref": asked["id"], **payload})
        self.fixture.flush()
        self.treq.flush()

    def answerOf(self, d):
        response = self.successResultOf(d)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        return response.code, json.loads(self.successResultOf(response.content()))

    def test_noAdministrationDevice(self):
        """
        With no administration device connected to answer, C{POST
        /api/mesh/pending/ID/approve|refuse} is 503 C{NOT_CONNECTED},
        naming C{twistd pzp --mesh-approvals} and the pzctl command; an
        unknown request is 404; the request stays pending.
        """
        for answer in ("approve", "refuse"):
            self.assertRefused(self.call("POST", f"mesh/pending/{self.tablet.udf}/{answer}"),
                               503, "NOT_CONNECTED", "twistd pzp --mesh-approvals",
                               f"pzctl --pzp-dir DIR mesh {answer} {self.tablet.udf}")
        self.assertRefused(self.call("POST", "mesh/pending/NOPE/approve"), 404,
                           "UNKNOWN_DESTINATION")
        self.assertEqual(len(self.call("GET", "mesh/pending")[1]), 1)

    def test_deviceAnswers(self):
        """
        With an administration device connected, the route answers once
        the device did: 200 with the account, device, result and name.
        """
        laptop = self.connectAdmin()
        d = self.post(f"mesh/pending/{self.tablet.udf}/approve")
        self.assertNoResult(d)
        self.respond(laptop, status="meshAnswered", account="alice", device=self.tablet.udf,
                     result="Accepted", name="tablet")
        self.assertEqual(self.answerOf(d), (200, {
            "account": "alice", "device": self.tablet.udf, "result": "Accepted",
            "name": "tablet"}))

    def test_deviceRefuses(self):
        """
        The device's refusal is the route's, with the status of its code.
        """
        laptop = self.connectAdmin()
        d = self.post(f"mesh/pending/{self.tablet.udf}/refuse")
        self.respond(laptop, status="error", code="NOT_AUTHORISED",
                     message="this device holds no administration key of account alice")
        status, body = self.answerOf(d)
        self.assertEqual((status, body["code"]), (403, "NOT_AUTHORISED"))
        self.assertIn("no administration key", body["message"])

    def test_timeout(self):
        """
        A device that does not answer in time is 504 C{TIMEOUT}.
        """
        self.connectAdmin()
        d = self.post(f"mesh/pending/{self.tablet.udf}/approve")
        self.fixture.advance(self.fixture.hub.mesh.timeout)
        self.treq.flush()
        status, body = self.answerOf(d)
        self.assertEqual((status, body["code"]), (504, "TIMEOUT"))

    def test_clientGone(self):
        """
        When the client goes before the device answers, nothing is
        written for it (and nothing fails).
        """
        from twisted.web.server import Site

        laptop = self.connectAdmin()
        root = Resource()
        root.putChild(b"api", apiResource(self.fixture.hub, self.portal.service,
                                          self.fixture.clock))
        address = IPv4Address("TCP", "127.0.0.1", 1)
        channel = Site(root).buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(b"POST /api/mesh/pending/" + self.tablet.udf.encode("ascii")
                             + b"/approve HTTP/1.1\r\nHost: hub\r\nContent-Length: 0\r\n\r\n")
        self.fixture.flush()
        self.assertEqual(transport.value(), b"")
        channel.connectionLost(Failure(ConnectionDone()))
        self.respond(laptop, status="meshAnswered", account="alice", device=self.tablet.udf,
                     result="Accepted", name="tablet")
        self.assertEqual(transport.value(), b"")
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])


class SignedInOnlyTests(SynchronousTestCase):
    """
    The API as the hub's site serves it: nothing without a session, and no
    change without the session's CSRF token.
    """

    ROUTES = [
        ("GET", "devices"), ("GET", "zone"), ("GET", "health"), ("GET", "codes"),
        ("GET", "mesh/pending"), ("GET", "events"), ("POST", "codes"),
        ("GET", "services"), ("GET", "sync"), ("GET", "sync/conflicts"), ("GET", "zones"),
        ("POST", f"devices/{ZONE}%2Fphone/revoke"), ("POST", "codes/0123456789abcdef/cancel"),
    ]

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.site = makeSite(self.hub, reactor=self.fixture.clock)
        self.treq = StubTreq(self.site.resource)
        self.fixture.enrolDevice("phone")

    def request(self, method, path, cookies=None, headers=None, body=b"{}"):
        d = self.treq.request(method, URL + path, cookies=cookies, headers=headers,
                              data=body if method == "POST" else None)
        self.treq.flush()
        response = self.successResultOf(d)
        if path == "events" and response.code == 200:
            return response.code, b""  # a stream: it does not end
        return response.code, self.successResultOf(response.content())

    def signIn(self) -> dict:
        _, url = self.site.adminAuth.newLink()
        d = self.treq.get("https://127.0.0.1:9000/signin?" + url.split("?")[1],
                          allow_redirects=False)
        self.treq.flush()
        response = self.successResultOf(d)
        return {c.name: c.value for c in response.cookies()}

    def test_noSession(self):
        """
        Every route without a session is 401 and says nothing of the zone.
        """
        for method, path in self.ROUTES:
            code, body = self.request(method, path)
            self.assertEqual(code, 401, (method, path))
            self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")
            self.assertNotIn(b"phone", body)
        self.assertIsNone(self.hub.store.getDevice(f"{ZONE}/phone").revoked)

    def test_forgedCookie(self):
        code, _ = self.request("GET", "devices", cookies={"pz_session": "forged"})
        self.assertEqual(code, 401)

    def test_postNeedsCSRF(self):
        """
        Signed in, a POST without the CSRF token is 403 and changes
        nothing; with it, it is done.
        """
        cookies = self.signIn()
        code, body = self.request("POST", f"devices/{ZONE}%2Fphone/revoke", cookies=cookies)
        self.assertEqual((code, json.loads(body)["code"]), (403, "CSRF_REQUIRED"))
        self.assertIsNone(self.hub.store.getDevice(f"{ZONE}/phone").revoked)
        code, body = self.request("GET", "devices", cookies=cookies)
        self.assertEqual(code, 200)
        d = self.treq.get("https://127.0.0.1:9000/session", cookies=cookies)
        self.treq.flush()
        csrf = self.successResultOf(self.successResultOf(d).json())["csrf"]
        code, _ = self.request("POST", f"devices/{ZONE}%2Fphone/revoke", cookies=cookies,
                               headers={"X-CSRF-Token": csrf})
        self.assertEqual(code, 200)
        self.assertIsNotNone(self.hub.store.getDevice(f"{ZONE}/phone").revoked)


class PolicyRouteTests(APITestBase):
    """
    C{/api/policy}: the zone's policy shown and edited as C{pzctl --hub-dir
    DIR policy} does, over a hub that synchronises.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, HubSettings(synchronise=True))
        self.hub = self.fixture.hub
        root = Resource()
        root.putChild(b"api", apiResource(self.hub, clock=self.fixture.clock))
        self.treq = StubTreq(root)

    def item(self) -> bytes:
        return self.hub.sync.tree.read(POLICY)

    def test_addShowRemove(self):
        """
        C{POST /api/policy/rules} adds a rule (C{201} with its id) that
        C{GET /api/policy} lists; C{POST .../ID/remove} takes it out.
        """
        status, shown = self.call("GET", "policy")
        self.assertEqual(status, 200)
        self.assertEqual(shown, {"rules": showRules(self.item()), "error": None})
        phone = f"{ZONE}/phone"
        status, added = self.call("POST", "policy/rules", {
            "effect": "deny", "subject": phone, "service": "get42", "method": "get42",
            "first": True})
        self.assertEqual(status, 201)
        ruleId = added["rule"]
        rows = self.call("GET", "policy")[1]["rules"]
        self.assertEqual(rows[0], {"id": ruleId, "effect": "deny", "subject": phone,
                                   "service": "get42", "method": "get42", "item": None,
                                   "action": None, "policy": "urn:pz:policy:edits",
                                   "description": "", "simple": True})
        status, _ = self.call("POST", "policy/rules", {"effect": "permit", "subject": None})
        self.assertEqual(status, 201)
        status, shared = self.call("POST", "policy/rules", {
            "effect": "permit", "subject": "bob@127.0.0.1", "item": "userdetails.json"})
        self.assertEqual(status, 201)
        [row] = [r for r in self.call("GET", "policy")[1]["rules"] if r["id"] == shared["rule"]]
        self.assertEqual((row["item"], row["action"]), ("userdetails.json", "sync"))
        self.assertEqual(self.call("POST", f"policy/rules/{ruleId}/remove"),
                         (200, {"removed": ruleId}))
        self.assertNotIn(ruleId.encode(), self.item())

    def test_ruleIdWithSlash(self):
        """
        A hand-written rule id holding a slash is named in the path encoded.
        """
        data, ruleId = addRule(self.item(), "deny", ruleId="rules/by-hand")
        self.hub.sync.tree.write(POLICY, data)
        self.assertEqual(self.call("POST", "policy/rules/rules%2Fby-hand/remove"),
                         (200, {"removed": ruleId}))

    def test_badInput(self):
        """
        A bad effect, a field too many or missing, a bad subject or an
        unknown rule is C{400 BAD_REQUEST}, and the item is left as it was.
        """
        before = self.item()
        for body in ({"effect": "maybe"}, {}, {"effect": "deny", "zone": "x"},
                     {"effect": "deny", "subject": "phone"}, {"effect": "deny", "first": 1},
                     {"effect": "permit", "item": "policies/policy.xml"},
                     {"effect": 3}):
            self.assertRefused(self.call("POST", "policy/rules", body), 400, "BAD_REQUEST")
        self.assertRefused(self.call("POST", "policy/rules", data=b"[1]"), 400, "BAD_REQUEST")
        self.assertRefused(self.call("POST", "policy/rules/urn:pz:rule:nope/remove"), 400,
                           "BAD_REQUEST", "no rule")
        self.assertRefused(self.call("DELETE", "policy"), 405, "BAD_REQUEST")
        self.assertEqual(self.item(), before)

    def test_broken(self):
        """
        A policy that does not parse: C{GET} shows its error and no rule;
        adding or removing is C{409 POLICY_INVALID} and writes nothing.
        """
        broken = b"<PolicySet>\n<oops"
        self.hub.sync.tree.write(POLICY, broken)
        status, shown = self.call("GET", "policy")
        self.assertEqual(status, 200)
        self.assertEqual(shown["rules"], [])
        self.assertTrue(shown["error"].startswith("POLICY_INVALID: policy line 2: "), shown)
        self.assertRefused(self.call("POST", "policy/rules", {"effect": "deny"}), 409,
                           "POLICY_INVALID", "policy line")
        self.assertRefused(self.call("POST", "policy/rules/urn:pz:rule:permit-own-zone/remove"),
                           409, "POLICY_INVALID")
        self.assertEqual(self.item(), broken)

    def test_notSynchronising(self):
        """
        A hub that keeps no items answers C{503 NOT_RUNNING}.
        """
        root = Resource()
        root.putChild(b"api", apiResource(MemoryHub(self).hub))
        self.treq = StubTreq(root)
        self.assertRefused(self.call("GET", "policy"), 503, "NOT_RUNNING")
        self.assertRefused(self.call("POST", "policy/rules", {"effect": "deny"}), 503,
                           "NOT_RUNNING")


class PolicyEventTests(SynchronousTestCase):
    """
    C{GET /api/events} carries an C{event: policy} when the hub's copy of
    the zone's policy changes, however it changed.
    """

    session, _signIn, open = EventStreamTests.session, EventStreamTests._signIn, EventStreamTests.open
    events = staticmethod(EventStreamTests.events)

    def setUp(self):
        self.zone = MemoryZone(self, hubSettings=HubSettings(synchronise=True))
        self.site = makeSite(self.zone.hub, reactor=self.zone.reactor)

    def test_policyEvents(self):
        """
        An edit through the operations is told at once; one written to the
        file (C{pzctl}, an editor) when the hub's scan finds it; other
        items are not told.
        """
        transport, _ = self.open()
        ops = ZoneOperations.forHub(self.zone.hub)
        ops.addPolicyRule("deny", service="get42")
        policy = [data for kind, data in self.events(transport) if kind == "policy"]
        self.assertEqual(policy, [{"path": POLICY}])
        tree = self.zone.hub.sync.tree
        tree.write(POLICY, addRule(tree.read(POLICY), "permit")[0])
        tree.write("context/battery.json", b'{"level": 80}\n')
        self.zone.advance(3)
        policy = [data for kind, data in self.events(transport) if kind == "policy"]
        self.assertEqual(policy, [{"path": POLICY}] * 2)


class PolicySignedInOnlyTests(SynchronousTestCase):
    """
    The policy routes as the hub's site serves them: nothing without a
    session, no change without the CSRF token.
    """

    request, signIn = SignedInOnlyTests.request, SignedInOnlyTests.signIn

    def setUp(self):
        self.fixture = MemoryHub(self, HubSettings(synchronise=True))
        self.hub = self.fixture.hub
        self.site = makeSite(self.hub, reactor=self.fixture.clock)
        self.treq = StubTreq(self.site.resource)

    def test_sessionAndCSRF(self):
        """
        Without a session every policy route is 401 and shows no rule; with
        one, a change without the CSRF token is 403; nothing is written;
        with the token it is done.
        """
        before = self.hub.sync.tree.read(POLICY)
        body = json.dumps({"effect": "deny"}).encode()
        for method, path in (("GET", "policy"), ("POST", "policy/rules"),
                             ("POST", "policy/rules/urn:pz:rule:permit-own-zone/remove")):
            code, answer = self.request(method, path, body=body)
            self.assertEqual((code, json.loads(answer)["code"]), (401, "NOT_AUTHORISED"))
            self.assertNotIn(b"permit-own-zone", answer)
        cookies = self.signIn()
        for path in ("policy/rules", "policy/rules/urn:pz:rule:permit-own-zone/remove"):
            code, answer = self.request("POST", path, cookies=cookies, body=body)
            self.assertEqual((code, json.loads(answer)["code"]), (403, "CSRF_REQUIRED"))
        self.assertEqual(self.hub.sync.tree.read(POLICY), before)
        d = self.treq.get("https://127.0.0.1:9000/session", cookies=cookies)
        self.treq.flush()
        csrf = self.successResultOf(self.successResultOf(d).json())["csrf"]
        code, answer = self.request("POST", "policy/rules", cookies=cookies, body=body,
                                    headers={"X-CSRF-Token": csrf})
        self.assertEqual(code, 201)
        self.assertIn(json.loads(answer)["rule"].encode(), self.hub.sync.tree.read(POLICY))
