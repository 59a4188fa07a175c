"""
Tests for L{pzh.metrics}: the hub's counters move where the events happen
(devices connecting and refused, messages routed, revocations, Mesh portal
transactions), read back from C{GET /metrics} with C{prometheus_client}'s
own parser; the bearer token; C{twistd pzh --metrics-token(-file)}.
"""

import json
import os
import time
from datetime import timedelta

import prometheus_client
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from treq.testing import StubTreq
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz.mesh.messages import HelloRequest
from pz.services import StoreService
from pz.testing import ZONE, MemoryHub
from pzh.hub import HubSettings
from pzh.metrics import HubMetrics, IHubMetrics, metricsResource
from pzh.store import SQLiteHubStore
from pzh.tap import Options, makeService
from pzh.web import makeSite
from pzh.weblimits import ConnectionCaps, GuardedSite

from tests.mesh.portal._support import PortalFixture

TOKEN = "s3cret-metrics-token-0123456789"
BASE = "https://127.0.0.1:9000"


def samples(body: bytes) -> dict:
    """
    Every sample of a C{/metrics} body, parsed by C{prometheus_client}:
    C{{(name, ((label, value), ...)): value}}.
    """
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


class _MetricsTestCase(SynchronousTestCase):
    """
    A hub in memory, its web site with the metrics token, and a way to
    scrape it.
    """

    settings = HubSettings()

    def setUp(self) -> None:
        self.fixture = MemoryHub(self, self.settings)
        self.hub = self.fixture.hub
        self.addCleanup(self.fixture.close)
        self.site = makeSite(self.hub, metricsToken=TOKEN)
        self.treq = StubTreq(self.site.resource)

    def get(self, path: str = "/metrics", headers=None):
        """
        GET C{path}; the response and its body.
        """
        d = self.treq.get(BASE + path, headers=headers or {})
        self.treq.flush()
        response = self.successResultOf(d)
        return response, self.successResultOf(response.content())

    def scrape(self) -> dict:
        """
        The samples C{/metrics} shows now, with the token.
        """
        response, body = self.get(headers={b"Authorization": [f"Bearer {TOKEN}".encode()]})
        self.assertEqual(response.code, 200, body)
        return samples(body)

    def value(self, name: str, **labels) -> float:
        """
        One sample's value as scraped now; 0 for a series not shown yet.
        """
        return self.scrape().get((name, tuple(sorted(labels.items()))), 0.0)

    def device(self, name: str):
        """
        Enrol and connect C{name}; its link, with what it was sent taken.
        """
        key, cert = self.fixture.enrolDevice(name)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        self.fixture.coalesce()
        for other in self.fixture.links:
            other.client.take()
        return link


class ExpositionTests(_MetricsTestCase):
    """
    What C{/metrics} shows before anything happened.
    """

    def test_everyMetricShown(self):
        """
        A fresh hub shows every metric the documentation names, in the
        Prometheus text format, the gauge and the handshake outcomes at 0.
        """
        response, body = self.get(headers={b"Authorization": [f"Bearer {TOKEN}".encode()]})
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [CONTENT_TYPE_LATEST.encode("ascii")])
        # prometheus_client also shows when each counter was made, as
        # *_created series, which its parser reads as gauges of their own.
        families = {f.name: f.type for f in text_string_to_metric_families(body.decode())
                    if not f.name.endswith("_created")}
        self.assertEqual(families, {
            "pz_hub_connected_devices": "gauge",
            "pz_hub_handshakes": "counter",
            "pz_hub_refusals": "counter",
            "pz_hub_messages_routed": "counter",
            "pz_hub_revocations": "counter",
            "pz_portal_transactions": "counter",
        })
        found = samples(body)
        self.assertEqual(found[("pz_hub_connected_devices", ())], 0)
        for outcome in ("registered", "refused", "enrolling", "renewing"):
            self.assertEqual(found[("pz_hub_handshakes_total", (("outcome", outcome),))], 0)
        self.assertEqual(found[("pz_hub_messages_routed_total", ())], 0)
        self.assertEqual(found[("pz_hub_revocations_total", ())], 0)

    def test_ownRegistry(self):
        """
        Each hub counts in a registry of its own: another hub's devices do
        not show, and nothing goes to C{prometheus_client}'s global one.
        """
        other = MemoryHub(self)
        self.addCleanup(other.close)
        self.assertIsNot(other.hub.metrics.registry, self.hub.metrics.registry)
        key, cert = other.enrolDevice("phone")
        other.connectDevice(key, cert)
        self.assertEqual(len(other.hub.registry), 1)
        self.assertEqual(self.value("pz_hub_connected_devices"), 0)
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="registered"), 0)
        self.assertIsNone(prometheus_client.REGISTRY.get_sample_value(
            "pz_hub_handshakes_total", {"outcome": "registered"}))

    def test_interface(self):
        """
        L{HubMetrics} provides L{IHubMetrics}; a hub takes one passed in.
        """
        metrics = HubMetrics()
        verifyObject(IHubMetrics, metrics)
        fixture = MemoryHub(self)
        self.addCleanup(fixture.close)
        from pzh.hub import Hub

        hub = Hub(fixture.zone, fixture.store, fixture.clock, metrics=metrics)
        self.assertIs(hub.metrics, metrics)
        self.assertRaises(TypeError, Hub, fixture.zone, fixture.store, fixture.clock,
                          metrics=object())

    def test_unknownOutcome(self):
        """
        A handshake outcome that is not one of the documented ones is a
        programming error, not a new series.
        """
        self.assertRaises(ValueError, HubMetrics().handshake, "maybe")


class DeviceTests(_MetricsTestCase):
    """
    Devices connecting, refused, routing and revoked move the counters.
    """

    def test_connected(self):
        """
        The gauge follows the devices registered on a live link.
        """
        phone = self.device("phone")
        self.device("laptop")
        self.assertEqual(self.value("pz_hub_connected_devices"), 2)
        phone.client.transport.loseConnection()
        self.fixture.flush()
        self.assertEqual(self.value("pz_hub_connected_devices"), 1)

    def test_registered(self):
        """
        Each device that registers counts one C{registered} handshake.
        """
        self.device("phone")
        self.device("laptop")
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="registered"), 2)
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="refused"), 0)

    def test_badCertificate(self):
        """
        A certificate of another CA counts a C{refused} handshake and a
        C{CERT_UNTRUSTED} refusal.
        """
        key, cert = self.fixture.foreignDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.codes(), ["CERT_UNTRUSTED"])
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="refused"), 1)
        self.assertEqual(self.value("pz_hub_refusals_total", code="CERT_UNTRUSTED"), 1)
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="registered"), 0)

    def test_revokedCertificate(self):
        """
        A revoked device coming back is C{refused} with C{CERT_REVOKED}.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.hub.revoke(f"{ZONE}/phone")
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.codes(), ["CERT_REVOKED"])
        self.assertEqual(self.value("pz_hub_refusals_total", code="CERT_REVOKED"), 1)
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="refused"), 1)

    def test_enrollingAndRenewing(self):
        """
        A client without a certificate counts C{enrolling}; one with an
        expired certificate within the grace period, C{renewing}.
        """
        self.fixture.connectVirgin()
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="enrolling"), 1)
        key, cert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(timedelta(days=95).total_seconds())
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["renewRequired"])
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="renewing"), 1)

    def test_enrolmentRefused(self):
        """
        A wrong pairing code is counted by its code.
        """
        link = self.fixture.connectVirgin()
        link.client.take()
        link.client.send({"type": "prop", "from": "", "to": ZONE, "id": "e1",
                          "payload": {"status": "enrol", "token": "wrong-token-xxxxxxxx",
                                      "csr": "x"}})
        self.fixture.flush()
        [code] = link.client.codes()
        self.assertEqual(self.value("pz_hub_refusals_total", code=code), 1)

    def test_badFrames(self):
        """
        Malformed frames count each refusal, and the drop after them.
        """
        link = self.device("phone")
        for junk in (b"nope", b"[]", b"\xff\xfe", b'{"type":"prop"}', b"{}"):
            link.client.sendString(junk)
        self.fixture.flush()
        self.assertEqual(self.value("pz_hub_refusals_total", code="BAD_FRAME"), 3)
        self.assertEqual(self.value("pz_hub_refusals_total", code="BAD_ENVELOPE"), 2)
        self.assertEqual(self.value("pz_hub_refusals_total", code="TOO_MANY_ERRORS"), 1)

    def test_routed(self):
        """
        A message forwarded to a connected device, and one queued for an
        offline device, are routed; one to nobody is refused instead.
        """
        phone = self.device("phone")
        self.device("laptop")
        self.fixture.enrolDevice("tablet")
        phone.client.sendProp(f"{ZONE}/laptop", {"status": "message"}, msgId="m1")
        phone.client.sendProp(f"{ZONE}/tablet", {"status": "message", "queue": True},
                              msgId="m2")
        phone.client.sendProp(f"{ZONE}/nobody", {"status": "message"}, msgId="m3")
        self.fixture.flush()
        self.assertEqual(self.value("pz_hub_messages_routed_total"), 2)
        self.assertEqual(self.value("pz_hub_refusals_total", code="UNKNOWN_DESTINATION"), 1)

    def test_hubMessagesNotRouted(self):
        """
        A message the hub answers itself (C{ping}) is not routed.
        """
        phone = self.device("phone")
        phone.client.sendProp(ZONE, {"status": "ping"}, msgId="p1")
        self.fixture.flush()
        self.assertEqual(phone.client.statuses(), ["pong"])
        self.assertEqual(self.value("pz_hub_messages_routed_total"), 0)

    def test_revoked(self):
        """
        Each device revoked counts once; revoking it again does not.
        """
        self.device("phone")
        self.hub.revoke(f"{ZONE}/phone")
        self.assertEqual(self.value("pz_hub_revocations_total"), 1)
        self.hub.revoke(f"{ZONE}/phone")
        self.assertEqual(self.value("pz_hub_revocations_total"), 1)
        self.fixture.flush()
        self.assertEqual(self.value("pz_hub_connected_devices"), 0)


class RateLimitTests(_MetricsTestCase):
    """
    Refusals for sending too much are counted.
    """

    settings = HubSettings(rate=10, burst=5)

    def test_rateLimited(self):
        """
        A device past its share gets C{RATE_LIMITED}, counted.
        """
        phone = self.device("phone")
        for i in range(7):
            phone.client.sendProp(ZONE, {"status": "ping"}, msgId=f"p{i}")
        self.fixture.flush()
        self.assertIn("RATE_LIMITED", phone.client.codes())
        self.assertEqual(self.value("pz_hub_refusals_total", code="RATE_LIMITED"), 1)
        self.fixture.advance(1)


class CoolingOffTests(_MetricsTestCase):
    """
    A device dropped for breaking the rules that comes straight back is
    refused, and that is counted.
    """

    def test_coolingOff(self):
        """
        C{COOLING_OFF} counts a refusal and a C{refused} handshake.
        """
        key, cert = self.fixture.enrolDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        for junk in (b"nope",) * 5:
            link.client.sendString(junk)
        self.fixture.flush()
        self.assertTrue(link.closed)
        again = self.fixture.connectDevice(key, cert)
        self.assertEqual(again.client.codes(), ["COOLING_OFF"])
        self.assertEqual(self.value("pz_hub_refusals_total", code="COOLING_OFF"), 1)
        self.assertEqual(self.value("pz_hub_handshakes_total", outcome="refused"), 1)
        self.fixture.advance(self.settings.maxCoolOff)


class PortalTests(_MetricsTestCase):
    """
    The Mesh portal's answers are counted by status.
    """

    def setUp(self) -> None:
        super().setUp()
        self.portal = PortalFixture(self)
        self.site = makeSite(self.hub, self.portal.service, metricsToken=TOKEN)
        self.treq = StubTreq(self.site.resource)

    def post(self, body: bytes) -> int:
        d = self.treq.post(BASE + "/.well-known/mmm/", data=body)
        self.portal.flush(self.treq)
        response = self.successResultOf(d)
        self.successResultOf(response.content())
        return response.code

    def test_transactions(self):
        """
        Two good transactions count under 201, a malformed request under
        400.
        """
        self.assertEqual(self.post(HelloRequest().toJSON()), 201)
        self.assertEqual(self.post(HelloRequest().toJSON()), 201)
        self.assertEqual(self.post(b"{"), 400)
        self.assertEqual(self.value("pz_portal_transactions_total", status="201"), 2)
        self.assertEqual(self.value("pz_portal_transactions_total", status="400"), 1)


class TokenTests(_MetricsTestCase):
    """
    With a token, C{/metrics} needs C{Authorization: Bearer TOKEN}.
    """

    def assertRefused(self, headers=None) -> None:
        response, body = self.get(headers=headers)
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")
        self.assertNotIn(b"pz_hub", body)
        self.assertEqual(response.headers.getRawHeaders(b"www-authenticate"),
                         [b'Bearer realm="pz-metrics"'])

    def test_accepted(self):
        """
        The right token opens the metrics, whatever the scheme's case.
        """
        response, body = self.get(headers={b"Authorization": [f"bearer {TOKEN}".encode()]})
        self.assertEqual(response.code, 200)
        self.assertIn(("pz_hub_connected_devices", ()), samples(body))

    def test_required(self):
        """
        Without the header: 401 and no metrics.
        """
        self.assertRefused()

    def test_wrongToken(self):
        """
        A wrong token, a prefix of it, the token under another scheme, or
        an empty bearer: 401.
        """
        for value in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer ",
                      TOKEN):
            self.assertRefused({b"Authorization": [value.encode()]})

    def test_noTokenClosed(self):
        """
        Without a token, no request gets the metrics unless the wrapper's
        C{allowed} lets it through (the admin sign-in).
        """
        closed = StubTreq(makeSite(self.hub).resource)
        d = closed.get(BASE + "/metrics", headers={b"Authorization": [b"Bearer "]})
        closed.flush()
        self.assertEqual(self.successResultOf(d).code, 401)
        opened = StubTreq(metricsResource(self.hub.metrics, allowed=lambda request: True))
        d = opened.get(BASE + "/")
        opened.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertIn(("pz_hub_connected_devices", ()),
                      samples(self.successResultOf(response.content())))

    def test_onlyGet(self):
        """
        The metrics are only read: a POST is not allowed.
        """
        d = self.treq.post(BASE + "/metrics", data=b"",
                           headers={b"Authorization": [f"Bearer {TOKEN}".encode()]})
        self.treq.flush()
        self.assertEqual(self.successResultOf(d).code, 405)


class TapTests(SynchronousTestCase):
    """
    C{twistd pzh --metrics-token TOKEN} and C{--metrics-token-file PATH}.
    """

    def parse(self, *args) -> Options:
        options = Options()
        options.parseOptions(["-d", self.mktemp(), "-n", "anna", *args])
        return options

    def tokenFile(self, content: bytes) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(content)
        return path

    def test_default(self):
        """
        By default there is no token.
        """
        self.assertIsNone(self.parse()["metrics-token"])

    def test_token(self):
        """
        C{--metrics-token} gives the token.
        """
        self.assertEqual(self.parse("--metrics-token", TOKEN)["metrics-token"], TOKEN)

    def test_tokenFile(self):
        """
        C{--metrics-token-file} reads it, without the line end.
        """
        path = self.tokenFile(TOKEN.encode() + b"\n")
        self.assertEqual(self.parse("--metrics-token-file", path)["metrics-token"], TOKEN)

    def test_badTokens(self):
        """
        Both options, a missing or empty file, a short token or one with
        spaces: one usage line each.
        """
        cases = [
            (("--metrics-token", TOKEN, "--metrics-token-file", self.tokenFile(TOKEN.encode())),
             "not both"),
            (("--metrics-token-file", os.path.join(self.mktemp(), "none")), "cannot read"),
            (("--metrics-token-file", self.tokenFile(b"\xff" * 20)), "cannot read"),
            (("--metrics-token-file", self.tokenFile(b"")), "at least 16"),
            (("--metrics-token", "short"), "at least 16"),
            (("--metrics-token", "with a space in the middle"), "printable ASCII"),
        ]
        for args, text in cases:
            error = self.assertRaises(usage.UsageError, self.parse, *args)
            self.assertIn(text, str(error))
            self.assertNotIn("\n", str(error))

    def test_wired(self):
        """
        The hub's web site serves C{/metrics} to the token of the file.
        """
        options = self.parse("--metrics-token-file", self.tokenFile(TOKEN.encode()))
        reactor = MemoryReactorClock()
        reactor.advance(time.time())
        top = makeService(options, reactor)
        store = [s for s in top if isinstance(s, StoreService)
                 and isinstance(s.store, SQLiteHubStore)]
        self.addCleanup(store[0].stopService)
        self.addCleanup(top.lock.release)
        [site] = [s.factory.wrappedFactory.wrappedFactory for s in top
                  if isinstance(getattr(s, "factory", None), ConnectionCaps)]
        self.assertIsInstance(site, GuardedSite)
        stub = StubTreq(site.resource)
        for token, code in ((TOKEN, 200), ("x" * 20, 401)):
            d = stub.get(BASE + "/metrics", headers={b"Authorization": [f"Bearer {token}".encode()]})
            stub.flush()
            self.assertEqual(self.successResultOf(d).code, code)
