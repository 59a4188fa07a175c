"""
End to end: a real C{twistd pzh} with C{--metrics-token-file} serves
C{/metrics} over HTTPS to that bearer token only, and its counters, read
with C{prometheus_client}'s parser, move as a real C{twistd pzp} pairs and
connects, a device of another zone is refused, and the device is revoked.
"""

import os
from datetime import datetime, timezone

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.trial.unittest import TestCase
from twisted.web.client import readBody
from twisted.web.http_headers import Headers

from pz import pki
from pz.tls import pzpClientOptions
from tests.e2e.harness import Zone, pzctl, waitFor
from tests.e2e.rawclient import exchange

TOKEN = "e2e-metrics-token-0123456789abcdef"


class MetricsTests(TestCase):
    """
    C{/metrics} of a running hub.
    """

    timeout = 120

    @defer.inlineCallbacks
    def get(self, zone, token: str):
        """
        GET C{/metrics} with C{token}; fire with the status and the body.
        """
        response = yield zone.webAgent().request(
            b"GET", f"https://127.0.0.1:{zone.webPort}/metrics".encode(),
            Headers({b"authorization": [f"Bearer {token}".encode()]}))
        body = yield readBody(response)
        return response.code, body

    @defer.inlineCallbacks
    def samples(self, zone) -> dict:
        """
        The hub's samples now, by name and labels.
        """
        code, body = yield self.get(zone, TOKEN)
        self.assertEqual(code, 200, body)
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode("utf-8"))
                for s in family.samples}

    def waitValue(self, zone, key, value):
        """
        Wait until the sample C{key} reads C{value}.
        """
        @defer.inlineCallbacks
        def check():
            found = yield self.samples(zone)
            return found if found.get(key) == value else None

        return waitFor(check, 20, what=f"{key} to be {value}")

    @defer.inlineCallbacks
    def test_countersMove(self):
        """
        The token opens the metrics and a wrong one does not; pairing and
        connecting a device shows it connected and counts its handshakes;
        a foreign certificate counts a refusal; revoking the device counts
        a revocation and it leaves the gauge.
        """
        zone = Zone(self)
        tokenFile = os.path.join(zone.root, "metrics-token")
        with open(tokenFile, "w") as f:
            f.write(TOKEN + "\n")
        yield zone.startHub("--metrics-token-file", tokenFile)
        code, body = yield self.get(zone, "wrong-token-0123456789")
        self.assertEqual(code, 401)
        self.assertNotIn(b"pz_hub", body)

        before = yield self.samples(zone)
        self.assertEqual(before[("pz_hub_connected_devices", ())], 0)
        yield zone.pairDevice("phone")
        found = yield self.waitValue(zone, ("pz_hub_connected_devices", ()), 1)
        self.assertGreaterEqual(found[("pz_hub_handshakes_total", (("outcome", "enrolling"),))], 1)
        self.assertGreaterEqual(found[("pz_hub_handshakes_total", (("outcome", "registered"),))], 1)

        hubCA = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        now = datetime.now(timezone.utc)
        otherKey, otherCA = pki.createZoneCA("mallory@127.0.0.1", now)
        deviceKey = pki.newKey()
        foreign = pki.issueDeviceCertificate(
            otherKey, otherCA, pki.makeCSR(deviceKey, "x"), "mallory@127.0.0.1/phone", 7, now)
        yield exchange(zone.port, pzpClientOptions(hubCA, deviceKey, foreign, "127.0.0.1"))
        found = yield self.samples(zone)
        self.assertEqual(found[("pz_hub_refusals_total", (("code", "CERT_UNTRUSTED"),))], 1)
        self.assertEqual(found[("pz_hub_handshakes_total", (("outcome", "refused"),))], 1)

        yield pzctl("--hub-dir", zone.hubDir, "revoke", zone.deviceId("phone"))
        found = yield self.waitValue(zone, ("pz_hub_connected_devices", ()), 0)
        self.assertEqual(found[("pz_hub_revocations_total", ())], 1)
