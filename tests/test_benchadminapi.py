"""
The admin API benchmark (L{bench.adminapi}): the client's answer check,
the bare JSON resource, the device records, the printed table, the
options, and one short run of the whole part with real processes on
127.0.0.1 (that it runs and prints its rows, not how fast).
"""

import json
import os
import subprocess
import sys

from treq.testing import StubTreq
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bench import adminapi
from bench.bareweb import root
from bench.webload import BadAnswer, check, rowsOf
from pzh.operations import ZoneOperations
from pzh.store import SQLiteHubStore

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CheckTests(SynchronousTestCase):
    def test_rows(self):
        """
        The rows of a device list are counted in its bytes, as
        C{json.dumps} writes them.
        """
        body = json.dumps([{"id": "z/a", "state": "connected"}, {"id": "z/b"}]).encode()
        self.assertEqual(rowsOf(body), 2)
        check(200, body, 2)

    def test_refused(self):
        """
        Another status, another row count or no list is an error with its
        code.
        """
        body = json.dumps([{"id": "z/a"}]).encode()
        self.assertEqual(self.assertRaises(BadAnswer, check, 401, body, 1).code, "HTTP_401")
        self.assertEqual(self.assertRaises(BadAnswer, check, 200, body, 2).code, "BAD_BODY")
        self.assertEqual(self.assertRaises(BadAnswer, check, 200, b'{"id": 1}', 1).code,
                         "BAD_BODY")


class BareWebTests(SynchronousTestCase):
    """
    L{bench.bareweb}'s resources, requested in memory.
    """

    body = json.dumps([{"id": "z/a", "serial": "1f"}, {"id": "z/b", "serial": "2e"}]).encode()

    def get(self, resource, path="https://127.0.0.1/api/devices", method="GET"):
        treq = StubTreq(resource)
        d = treq.request(method, path, data=b"{}" if method == "POST" else None)
        treq.flush()
        response = self.successResultOf(d)
        return response.code, response.headers, self.successResultOf(response.content())

    def test_fixed(self):
        """
        C{--get} serves the body's bytes at that path, as the hub's API
        does (JSON, not cached).
        """
        code, headers, body = self.get(root(self.body, "/api/devices"))
        self.assertEqual((code, body), (200, self.body))
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"application/json"])
        self.assertEqual(headers.getRawHeaders(b"cache-control"), [b"no-store"])

    def test_encode(self):
        """
        With C{encode} the same list is encoded anew for every request.
        """
        resource = root(b' [ {"id": "z/a",  "serial": "1f"}, {"id": "z/b", "serial": "2e"} ]',
                        "/api/devices", encode=True)
        code, _, body = self.get(resource)
        self.assertEqual((code, body), (200, self.body))

    def test_portal(self):
        """
        Without C{--get}, the Mesh portal benchmark's handler is where it
        was: every POST to C{/.well-known/mmm/} answered 201 with the body.
        """
        code, _, body = self.get(root(self.body), "https://127.0.0.1/.well-known/mmm/",
                                 method="POST")
        self.assertEqual((code, body), (201, self.body))


class EnrolRecordsTests(SynchronousTestCase):
    def test_records(self):
        """
        The devices are in the hub's store as pairing records them, and
        the zone's operations list them, by id, each with its row.
        """
        hubDir = self.mktemp()
        os.makedirs(hubDir)
        with open(os.path.join(hubDir, "zone.json"), "w") as f:
            json.dump({"zone": "bench@127.0.0.1"}, f)
        self.assertEqual(adminapi.enrolRecords(hubDir, 30, now=1764496800.0), "bench@127.0.0.1")
        store = SQLiteHubStore(os.path.join(hubDir, "hub.db"))
        self.addCleanup(store.close)
        devices = store.listDevices()
        self.assertEqual([d.id for d in devices],
                         [f"bench@127.0.0.1/dev{i:05d}" for i in range(30)])
        self.assertEqual(len({d.serial for d in devices}), 30)
        self.assertEqual(devices[1].lastSeen, 1764496800.0 - 1)
        rows = [ZoneOperations._row(d, {}) for d in devices]
        self.assertEqual({r["state"] for r in rows}, {"disconnected"})
        self.assertEqual(rows[0]["last_seen"], "2025-11-30T10:00:00+00:00")
        self.assertEqual(rows[0]["not_after"], "2026-02-28T10:00:00+00:00")

    def test_localLink(self):
        """
        The sign-in link keeps its path and token and points at the port
        listened on.
        """
        self.assertEqual(adminapi.localLink("https://hub.example:9000/signin?token=a.b", 4321),
                         "https://127.0.0.1:4321/signin?token=a.b")


def figures(rate: float, p99: float, errors=None) -> dict:
    return {"measured": {"calls": 100, "answered": 100 - sum((errors or {}).values()),
                         "errors": errors or {}, "answer_rate": rate, "p50_ms": p99 / 2,
                         "p99_ms": p99, "max_ms": p99 + 1},
            "server_cpu_us": 1000, "client_cpu_us": 500, "opened": 8, "body_bytes": 1114620}


class ReportTests(SynchronousTestCase):
    base = {"devices": 5000, "connections": 8, "warmup": 1.0, "seconds": 5.0,
            "max_requests": 20000, "load_before": 0.5, "load_after": 0.7, "enrol_seconds": 0.1}

    def test_rows(self):
        """
        One row per server with its rate against the json.dumps
        reference's, latencies and the connections the client opened.
        """
        lines = adminapi.adminAPIReport(dict(self.base, hub=figures(10.0, 900.0),
                                             encode=figures(40.0, 250.0),
                                             fixed=figures(120.0, 100.0, {"HTTP_500": 2})))
        text = "\n".join(lines)
        self.assertIn("1,114,620-byte JSON answer", text)
        [hub] = [line for line in lines if line.startswith(adminapi.SERVERS[0][1])]
        self.assertEqual(hub[len(adminapi.SERVERS[0][1]):].split(),
                         ["100", "100", "10.0", "0.25", "450.0", "900.0", "901.0", "1000", "500",
                          "8"])
        self.assertIn("errors {'HTTP_500': 2}", text)

    def test_notMeasured(self):
        """
        A server that failed has a row of dashes and its reason.
        """
        lines = adminapi.adminAPIReport(dict(self.base, hub={"error": "HTTP_401: no"},
                                             encode=figures(40.0, 250.0), fixed=figures(1, 1)))
        self.assertIn("  hub: twistd pzh, GET /api/devices: not measured: HTTP_401: no", lines)

    def test_nothing(self):
        self.assertEqual(adminapi.adminAPIReport({}), [])


class OptionsTests(SynchronousTestCase):
    def test_defaults(self):
        """
        The issue's zone: 5,000 devices.
        """
        from bench.options import parseArgs

        args = parseArgs([])
        self.assertEqual((args.adminapi_devices, args.adminapi_connections), (5000, 8))
        self.assertFalse(args.skip_adminapi)

    def test_outOfRange(self):
        """
        A load that is not bounded, or is empty, is refused.
        """
        from bench.options import parseArgs

        devnull = open(os.devnull, "w")
        self.addCleanup(devnull.close)
        self.patch(sys, "stderr", devnull)
        for bad in (["--adminapi-devices", "0"], ["--adminapi-connections", "0"],
                    ["--adminapi-seconds", "0"], ["--adminapi-seconds", "3600"],
                    ["--adminapi-max-requests", "0"], ["--adminapi-warmup", "-1"]):
            self.assertRaises(SystemExit, parseArgs, bad)


class SmokeTests(TestCase):
    """
    C{python -m bench.adminapi} with 50 devices and a handful of requests:
    a real C{twistd pzh}, the bare servers and the client as processes on
    127.0.0.1.
    """

    timeout = 300

    def test_runsAndPrintsItsRows(self):
        """
        Each server's row has its requests, all answered, over the
        connections in flight only.  (It writes C{bench/out/adminapi.txt}
        and C{adminapi.json}, as the part run alone does.)
        """
        done = subprocess.run(
            [sys.executable, "-m", "bench.adminapi", "--adminapi-devices", "50",
             "--adminapi-connections", "2", "--adminapi-warmup", "0",
             "--adminapi-seconds", "5", "--adminapi-max-requests", "6"],
            cwd=TOP, capture_output=True, text=True, timeout=240,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        lines = done.stdout.splitlines()
        for _, label in adminapi.SERVERS:
            found = [line for line in lines if line.startswith(label)]
            self.assertEqual(len(found), 1, f"{label}: {found}\n{done.stdout}")
            cells = found[0][len(label):].split()
            self.assertEqual((cells[0], cells[1], cells[-1]), ("6", "6", "2"), done.stdout)
        self.assertNotIn("not measured", done.stdout)
