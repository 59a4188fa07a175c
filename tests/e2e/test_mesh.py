"""
End to end: the Mesh portal as real processes on 127.0.0.1, driven through
C{pzctl mesh} as a person would: a standalone C{twistd meshportal} (accounts,
profiles, a second device connected and approved from the first, a refusal,
Get paging, bad input, a second portal replaying the first's log), what the
Mesh reference implementation sends, and the portal inside C{twistd pzh},
where an approved device joins the zone.
"""

import json
import os

from treq.client import HTTPClient
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from pz.mesh.messages import CreateRequest, StatusRequest

from tests.e2e.harness import Twistd, Zone, freePort, pzctl, pzctlJSON, shortTempDir, waitFor
from tests.mesh import reference as ref
from tests.mesh.portal._support import makePerson


@defer.inlineCallbacks
def rawPost(url: str, body: bytes):
    """
    POST C{body} to C{url} as any HTTP client could; fire with the HTTP
    status and the decoded JSON answer.
    """
    client = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    response = yield client.post(url, data=body, allow_redirects=False)
    content = yield response.content()
    return response.code, json.loads(content)


class MeshEndToEndTests(TestCase):
    """
    The portal's "must show" list, with real processes.
    """

    timeout = 120

    def setUp(self):
        self.root = shortTempDir(self)

    def dir(self, name: str) -> str:
        return os.path.join(self.root, name)

    @defer.inlineCallbacks
    def startPortal(self, name: str, *extra):
        """
        Start C{twistd meshportal}; fire with its URL once it answers.
        """
        port = freePort()
        Twistd(self, "meshportal", [
            "--data-dir", self.dir(name), "--interface", "127.0.0.1", "--port", str(port), *extra,
        ], self.dir(f"{name}.log")).start()
        url = f"http://127.0.0.1:{port}/"
        yield waitFor(lambda: pzctl("mesh", "status", "--portal", url, check=False).addCallback(
            lambda result: result[2] == 0), what=f"portal {name}")
        return url

    def mesh(self, device, *argv):
        """
        C{pzctl --pzp-dir DEVICE mesh ARGV --json}, parsed.
        """
        return pzctlJSON("--pzp-dir", self.dir(device), "mesh", *argv, "--json")

    def status(self, url):
        return pzctlJSON("mesh", "status", "--portal", url, "--json")

    @defer.inlineCallbacks
    def waitPending(self, admin: str, count: int = 1):
        """
        Wait until C{count} requests wait on the admin device's account.
        """
        rows = yield waitFor(lambda: self.mesh(admin, "pending").addCallback(
            lambda rows: rows if len(rows) >= count else None), what="a pending request")
        return rows

    @defer.inlineCallbacks
    def test_standalonePortal(self):
        """
        Against a real C{twistd meshportal}: create an account, publish
        profiles, connect a second device and approve it from the first; a
        refused request leaves nothing behind; Get paging returns every
        entry exactly once; bad input is answered with its code and stores
        nothing; a second portal replaying the first's Transfer reaches the
        same checkpoint, and sends writes back to the first (307).
        """
        url = yield self.startPortal("portal")

        created = yield self.mesh("laptop", "create", "Alice", "--portal", url, "--name", "laptop")
        self.assertEqual((created["account"], created["status"]), ("alice", 201))
        published = yield self.mesh("laptop", "publish")
        self.assertEqual([(p["type"], p["status"]) for p in published], [
            ("SignedPersonalProfile", 202), ("SignedMasterProfile", 201), ("SignedDeviceProfile", 201),
        ])
        got = yield self.mesh("laptop", "get", created["profile"])
        self.assertEqual([i["type"] for i in got["items"]], ["SignedPersonalProfile"])

        # A second device asks, and waits; the first approves it.
        connecting = self.mesh("phone", "connect", "alice", "--portal", url, "--name", "phone",
                               "--interval", "0.2", "--wait", "60")
        [request] = yield self.waitPending("laptop")
        self.assertEqual(request["name"], "phone")
        approved = yield self.mesh("laptop", "approve", request["device"])
        self.assertEqual(approved["result"], "Accepted")
        connected = yield connecting
        self.assertEqual((connected["result"], connected["device"]), ("Accepted", request["device"]))
        self.assertNotIn("zone_device", connected)
        yield self.mesh("phone", "publish")
        self.assertEqual((yield self.mesh("laptop", "pending")), [])
        profile = yield self.mesh("phone", "get", created["profile"])
        devices = profile["items"][0]["entry"]["SignedPersonalProfile"]
        self.assertEqual(devices["Identifier"], created["profile"])

        # A refused request leaves nothing behind.
        asked = yield self.mesh("tablet", "connect", "alice", "--portal", url, "--no-wait")
        [request] = yield self.waitPending("laptop")
        self.assertEqual(request["device"], asked["device"])
        yield self.mesh("laptop", "refuse", request["device"])
        out, err, code = yield pzctl("--pzp-dir", self.dir("tablet"), "mesh", "connect", "alice",
                                     check=False)
        self.assertEqual(code, 1)
        self.assertIn("NOT_AUTHORISED", err)
        self.assertIn("Refused", err)
        self.assertEqual((yield self.mesh("laptop", "pending")), [])
        self.assertFalse(os.path.exists(os.path.join(self.dir("tablet"), "mesh")))
        self.assertFalse(os.path.exists(os.path.join(self.dir("tablet"), "zone")))

        # Get paging: every entry exactly once, one per page.
        whole = yield self.mesh("laptop", "get", "--account", "alice")
        paged = yield self.mesh("laptop", "get", "--account", "alice", "--max-entries", "1")
        identifiers = [(i["type"], i["identifier"]) for i in paged["items"]]
        self.assertEqual(len(identifiers), len(set(identifiers)))
        self.assertEqual(identifiers, [(i["type"], i["identifier"]) for i in whole["items"]])
        self.assertEqual(paged["pages"], len(paged["items"]))
        self.assertEqual({t for t, _ in identifiers},
                         {"Account", "SignedPersonalProfile", "SignedMasterProfile"})
        devices = yield self.mesh("laptop", "get", "--kv", "Type=SignedDeviceProfile",
                                  "--max-entries", "1")
        self.assertEqual(sorted(i["identifier"] for i in devices["items"]),
                         sorted([created["device"], connected["device"]]))

        # Bad input: each answered with its code, nothing stored.
        before = yield self.status(url)
        endpoint = url + ".well-known/mmm/"
        alice = makePerson("alice")
        cases = [
            (b'{"HelloRequest": ', 400),
            (b'{"PublishRequest": {"Entry": {"HelloRequest": {}}}}', 400),
            (b'{"GetRequest": {"Identifier": 42}}', 400),
            (b'{"FrobnicateRequest": {}}', 400),
            (json.dumps({"ValidateRequest": {"Account": "x" * (1024 * 1024)}}).encode(), 413),
            (CreateRequest(Account="alice", Profile=alice.personal).toJSON(), 409),
            (b'{"GetRequest": {"Identifier": "MNOPE-NOPEN-OPENO"}}', 404),
        ]
        for body, status in cases:
            code, payload = yield rawPost(endpoint, body)
            [(tag, fields)] = payload.items()
            self.assertEqual((code, fields["Status"]), (status, status), (body[:60], payload))
        out, err, code = yield pzctl("mesh", "get", "MNOPE-NOPEN-OPENO", "--portal", url, check=False)
        self.assertEqual(code, 1)
        self.assertIn("404", err)
        self.assertEqual((yield self.status(url)), before)

        # A second portal replays the first's log and reaches its checkpoint.
        mirror = yield self.startPortal("mirror", "--follow", url, "--follow-interval", "0.2")
        expected = yield self.status(url)
        yield waitFor(lambda: self.status(mirror).addCallback(
            lambda s: s["checkpoint"] == expected["checkpoint"]), what="the mirror to catch up")
        mirrored = yield self.mesh("laptop", "get", "--account", "alice", "--portal", mirror)
        self.assertEqual(mirrored["items"], whole["items"])
        code, payload = yield rawPost(mirror + ".well-known/mmm/", StatusRequest().toJSON())
        self.assertEqual(payload["StatusResponse"]["CheckpointValue"], expected["checkpoint"])
        code, payload = yield rawPost(mirror + ".well-known/mmm/",
                                      CreateRequest(Account="bob", Profile=alice.personal).toJSON())
        self.assertEqual((code, payload["CreateResponse"]["StatusDescription"]),
                         (307, url + ".well-known/mmm/"))

    @defer.inlineCallbacks
    def test_referenceForms(self):
        """
        What the Mesh reference implementation sends, to a real
        C{twistd meshportal}: a device profile with RSA keys in its form,
        signed RS512 in its JWS form with its line breaks, is published, and
        an escrow entry is found by its own Identifier.
        """
        url = yield self.startPortal("reference")
        endpoint = url + ".well-known/mmm/"
        signer = ref.rsaKey(0)
        device = ref.referenceSigned(
            ref.rsaDevicePayload(signer, ref.rsaKey(1), ref.rsaKey(2)), signer)
        escrow = {"Identifier": "MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM",
                  "EncryptedData": {"recipients": [{"header": {"kid": "x"}}], "ciphertext": "MQ"}}
        for entry in ({"SignedDeviceProfile": device}, {"OfflineEscrowEntry": escrow}):
            code, payload = yield rawPost(
                endpoint, json.dumps({"PublishRequest": {"Entry": entry}}, indent=2).encode())
            self.assertEqual(code, 201, payload)
        for identifier, tag in ((signer.udf, "SignedDeviceProfile"),
                                (escrow["Identifier"], "OfflineEscrowEntry")):
            code, payload = yield rawPost(
                endpoint, json.dumps({"GetRequest": {"Identifier": identifier}}).encode())
            self.assertEqual(code, 201, payload)
            self.assertEqual(list(payload["GetResponse"]["DataItems"][0]["Entry"]), [tag])

    @defer.inlineCallbacks
    def test_meshEnrolmentInHub(self):
        """
        Against the portal mounted in a real C{twistd pzh} (HTTPS, the hub's
        certificate): a new device asks to join, shows its UDF, is approved
        from the administration device, receives its zone certificate with
        the signed result, and C{twistd pzp} then reaches Hub/Connected; a
        refused device gets nothing and the zone has no trace of it.
        """
        zone = Zone(self)
        yield zone.startHub()
        url = f"https://127.0.0.1:{zone.webPort}/"
        ca = os.path.join(zone.hubDir, "ca.pem")
        out, err, code = yield pzctl("mesh", "status", "--portal", url, "--ca", ca, check=False)
        self.assertEqual(code, 0, err)
        mesh = lambda device, *argv: pzctlJSON(
            "--pzp-dir", zone.deviceDir(device), "mesh", *argv, "--json")

        created = yield mesh("admin", "create", "alice", "--portal", url, "--ca", ca)
        self.assertEqual(created["status"], 201)

        connecting = mesh("tablet", "connect", "alice", "--portal", url, "--ca", ca,
                          "--name", "tablet", "--interval", "0.2", "--wait", "60")
        rows = yield waitFor(lambda: mesh("admin", "pending").addCallback(lambda r: r or None),
                             what="the tablet's request")
        [request] = rows
        approved = yield mesh("admin", "approve", request["device"])
        self.assertEqual(approved["zone_device"], zone.deviceId("tablet"))
        connected = yield connecting
        self.assertEqual(connected["device"], request["device"])
        self.assertEqual(connected["zone_device"], zone.deviceId("tablet"))
        self.assertEqual(connected["hub"], f"127.0.0.1:{zone.port}")
        key = os.path.join(zone.deviceDir("tablet"), "zone", "identity", "key.pem")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)

        zone.startDevice("tablet")
        status = yield zone.waitState("tablet", "Hub", "Connected")
        self.assertEqual(status["device"], zone.deviceId("tablet"))

        asked = yield mesh("rogue", "connect", "alice", "--portal", url, "--ca", ca,
                           "--name", "rogue", "--no-wait")
        yield waitFor(lambda: mesh("admin", "pending").addCallback(lambda r: r or None),
                      what="the rogue's request")
        yield mesh("admin", "refuse", asked["device"])
        out, err, code = yield pzctl("--pzp-dir", zone.deviceDir("rogue"), "mesh", "connect", "alice",
                                     check=False)
        self.assertEqual(code, 1)
        self.assertIn("NOT_AUTHORISED", err)
        self.assertFalse(os.path.exists(os.path.join(zone.deviceDir("rogue"), "zone")))
        self.assertEqual((yield mesh("admin", "pending")), [])
        devices = yield zone.devicesList()
        self.assertEqual([d["id"] for d in devices], [zone.deviceId("tablet")])
