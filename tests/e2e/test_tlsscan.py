"""
An outside TLS scanner, sslyze, scans a real C{twistd pzh}'s device port and
web port on 127.0.0.1: no SSL 2/3, TLS 1.0 or 1.1 at all, and on TLS 1.2
only ECDHE suites with authenticated encryption (AES-GCM,
ChaCha20-Poly1305); TLS 1.3 as well.

sslyze lives in a virtualenv of its own, C{.venv/sslyze}, which C{make
test} makes: it pins C{cryptography} below the version the project runs
on, so it cannot share the project's environment.
"""

import json
import os
import sys

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Zone

#: Where the Makefile installs sslyze.
SSLYZE = os.path.join(sys.prefix, "sslyze", "bin", "sslyze")

#: The protocol versions no port may accept, as sslyze names their scans.
_REFUSED = ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites",
            "tls_1_0_cipher_suites", "tls_1_1_cipher_suites")


def _aead(suite: str) -> bool:
    """
    Whether the IANA-named TLS 1.2 C{suite} is ECDHE with AES-GCM or
    ChaCha20-Poly1305.
    """
    return suite.startswith("TLS_ECDHE_") and ("_GCM_" in suite or "_CHACHA20_POLY1305_" in suite)


class OutsideScannerTests(TestCase):
    """
    What sslyze finds on the hub's ports.
    """

    #: One scan of two ports takes about 5 s on an idle machine.
    timeout = 120

    def scanned(self, result: dict, scan: str) -> list:
        """
        The names of the suites C{scan} found accepted, once it completed.
        """
        where = result["server_location"]["port"]
        attempt = result["scan_result"][scan]
        self.assertEqual(attempt["status"], "COMPLETED", f"{scan} on port {where}: {attempt}")
        return [s["cipher_suite"]["name"] for s in attempt["result"]["accepted_cipher_suites"]]

    @defer.inlineCallbacks
    def test_hubPorts(self):
        """
        Both of the hub's TLS ports accept TLS 1.2 with AEAD suites and TLS
        1.3, and nothing else.
        """
        self.assertTrue(os.access(SSLYZE, os.X_OK),
                        f"sslyze is not installed at {SSLYZE}; `make test` installs it")
        zone = Zone(self)
        yield zone.startHub()
        report = os.path.join(zone.root, "sslyze.json")
        ports = {zone.port: "device port", zone.webPort: "web port"}
        out, err, code = yield getProcessOutputAndValue(SSLYZE, [
            "--quiet", "--mozilla_config", "disable", "--json_out", report,
            "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
            *(f"127.0.0.1:{port}" for port in ports),
        ], env=dict(os.environ))
        self.assertEqual(code, 0, err.decode("utf-8", "replace"))
        with open(report) as f:
            results = json.load(f)["server_scan_results"]
        self.assertEqual(sorted(r["server_location"]["port"] for r in results), sorted(ports))
        for result in results:
            port = ports[result["server_location"]["port"]]
            self.assertEqual(result["scan_status"], "COMPLETED", port)
            for scan in _REFUSED:
                self.assertEqual(self.scanned(result, scan), [], f"{port}: {scan}")
            tls12 = self.scanned(result, "tls_1_2_cipher_suites")
            self.assertTrue(tls12, f"{port} accepts no TLS 1.2 suite")
            self.assertEqual([s for s in tls12 if not _aead(s)], [], f"{port}: TLS 1.2")
            self.assertTrue(self.scanned(result, "tls_1_3_cipher_suites"), f"{port}: TLS 1.3")
