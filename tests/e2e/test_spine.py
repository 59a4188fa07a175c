"""
End to end: real C{twistd pzh} and C{twistd pzp} processes on 127.0.0.1
with real TLS, driven through C{pzctl} as a person or a script would.
"""

import os
from datetime import datetime, timezone

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from pz import pki
from pz.tls import enrolmentClientOptions, pzpClientOptions
from pzp.inbox import Inbox
from tests.e2e.harness import PZCtlError, Zone, pzctl, pzctlJSON, waitFor
from tests.e2e.rawclient import envelope, exchange


def _errorCodes(frames) -> list:
    return [f["payload"].get("code") for f in frames if f["payload"].get("status") == "error"]


class SpineTests(TestCase):
    """
    A hub, devices pairing with it, messages between them, restarts.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_pairConnectMessageAndRestart(self):
        """
        Two devices pair and reach Hub/Connected; the hub lists them as
        connected with exactly the documented keys; a message sent from one
        arrives in the other's inbox with C{from} set by the hub; after the
        hub is killed and restarted both devices reconnect on their own.
        """
        zone = Zone(self)
        yield zone.startHub()
        phone = yield zone.pairDevice("phone")
        laptop = yield zone.pairDevice("laptop")
        self.assertEqual(phone["device"], zone.deviceId("phone"))
        self.assertEqual(laptop["zone"], zone.zoneId)
        self.assertEqual(phone["hub"], f"127.0.0.1:{zone.port}")

        devices = yield zone.devicesList()
        self.assertEqual(sorted(d["id"] for d in devices),
                         [zone.deviceId("laptop"), zone.deviceId("phone")])
        for d in devices:
            self.assertEqual(set(d), {"id", "serial", "state", "last_seen", "address", "not_after"})
            self.assertEqual(d["state"], "connected")
            self.assertTrue(d["address"].startswith("127.0.0.1:"))

        yield waitFor(lambda: zone.status("phone").addCallback(
            lambda s: zone.deviceId("laptop") in s["peers"]), what="pzpUpdate")

        out = yield pzctl("--pzp-dir", zone.deviceDir("phone"), "send",
                          zone.deviceId("laptop"), "hello from the phone")
        self.assertIn("delivered", out)
        inbox = yield pzctlJSON("--pzp-dir", zone.deviceDir("laptop"), "inbox", "--json")
        self.assertEqual(inbox["dropped"], 0)
        self.assertEqual([(m["from"], m["text"]) for m in inbox["messages"]],
                         [(zone.deviceId("phone"), "hello from the phone")])

        yield zone.hub.kill()
        yield zone.waitState("phone", "Hub", "NotConnected", timeout=30)
        yield zone.startHub()
        yield zone.waitState("phone", "Hub", "Connected", timeout=30)
        yield zone.waitState("laptop", "Hub", "Connected", timeout=30)
        devices = yield zone.devicesList()
        self.assertEqual({d["state"] for d in devices}, {"connected"})

    @defer.inlineCallbacks
    def assertGaveUp(self, zone, name: str, code: str):
        """
        The device's proxy exits with status 1, its log saying why in one
        line, and C{pzctl wait} reports that reason at once.
        """
        status = yield zone.devices[name].exited()
        self.assertEqual(status, 1)
        lines = [line for line in zone.devices[name].log().splitlines() if f"pzp: {code}: " in line]
        self.assertEqual(len(lines), 1, zone.devices[name].log())
        self.assertTrue(lines[0].endswith("; exiting"), lines[0])
        _, err, exitCode = yield pzctl("--pzp-dir", zone.deviceDir(name), "wait", "--timeout", "10",
                                       check=False)
        self.assertEqual(exitCode, 1)
        self.assertTrue(err.startswith(f"pzctl: {code}: the proxy stopped: "), err)

    @defer.inlineCallbacks
    def test_refusals(self):
        """
        A client with a certificate from another CA, a client with no
        certificate, a wrong token, a reused token and an expired token are
        each refused with their own error code (a proxy refused so gives up
        and exits with status 1), and the hub keeps serving the connected
        devices throughout.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("phone")
        yield zone.pairDevice("laptop")
        hubCA = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        now = datetime.now(timezone.utc)

        # A device of another zone: its own CA, a perfectly good certificate.
        otherKey, otherCA = pki.createZoneCA("mallory@127.0.0.1", now)
        deviceKey = pki.newKey()
        foreign = pki.issueDeviceCertificate(
            otherKey, otherCA, pki.makeCSR(deviceKey, "x"), "mallory@127.0.0.1/phone", 7, now)
        frames = yield exchange(zone.port, pzpClientOptions(hubCA, deviceKey, foreign, "127.0.0.1"))
        self.assertEqual(_errorCodes(frames), ["CERT_UNTRUSTED"])

        # No certificate at all, trying to use the zone.
        frames = yield exchange(zone.port, enrolmentClientOptions("127.0.0.1"),
                                [envelope("message", to=zone.deviceId("phone"), text="hi")],
                                waitFor="hello")
        self.assertEqual(_errorCodes(frames), ["CERT_REQUIRED"])

        # Wrong token: the code's token replaced by another.
        good = yield zone.pairCode("tablet")
        wrong = good.replace(good.split("/")[3].split("#")[0], "A" * 32)
        zone.startDevice("wrong", wrong)
        yield self.assertGaveUp(zone, "wrong", "TOKEN_INVALID")

        # The good code works once, then is used up.
        zone.startDevice("tablet", good)
        yield zone.waitState("tablet", "Hub", "Connected")
        zone.startDevice("copycat", good)
        yield self.assertGaveUp(zone, "copycat", "TOKEN_USED")

        # A code that lived one second.
        short = yield zone.pairCode("watch", "--lifetime", "1")
        madeAt = datetime.now(timezone.utc).timestamp()
        yield waitFor(lambda: datetime.now(timezone.utc).timestamp() > madeAt + 1.5,
                      what="the code to expire")
        zone.startDevice("watch", short)
        yield self.assertGaveUp(zone, "watch", "TOKEN_EXPIRED")

        # The hub kept serving the devices that belong.
        for name in ("phone", "laptop"):
            status = yield zone.status(name)
            self.assertEqual((status["mode"], status["state"]), ("Hub", "Connected"))
        yield pzctl("--pzp-dir", zone.deviceDir("laptop"), "send", zone.deviceId("phone"), "still here")
        devices = yield zone.devicesList()
        self.assertEqual(sorted(d["id"] for d in devices),
                         sorted(zone.deviceId(n) for n in ("laptop", "phone", "tablet")))

    @defer.inlineCallbacks
    def test_fromIsTheCertificateIdentity(self):
        """
        A device that writes someone else's id in C{from} is delivered
        under its own certificate's id: the hub, not the sender, says who
        sent a message.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("laptop")
        # A device of this zone that lies: certificate issued by the zone CA.
        caKey = pki.readPrivateKey(os.path.join(zone.hubDir, "ca.key"))
        caCert = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        key = pki.newKey()
        cert = pki.issueDeviceCertificate(caKey, caCert, pki.makeCSR(key, "x"),
                                          zone.deviceId("liar"), 99, datetime.now(timezone.utc))
        lie = envelope("message", to=zone.deviceId("laptop"), sender=zone.deviceId("boss"),
                       text="trust me")
        yield exchange(zone.port, pzpClientOptions(caCert, key, cert, "127.0.0.1"), [lie],
                       waitFor="registered", timeout=3)
        inbox = Inbox(os.path.join(zone.deviceDir("laptop"), "zone", "inbox.jsonl"), None)
        messages = yield waitFor(inbox.messages, what="the message")
        self.assertEqual([(m["from"], m["text"]) for m in messages],
                         [(zone.deviceId("liar"), "trust me")])

    @defer.inlineCallbacks
    def test_cliErrors(self):
        """
        C{pzctl} errors exit non-zero with one line on stderr naming the
        code: a device that does not run, a hub directory with no zone, a
        message to a device that is not in the zone.
        """
        zone = Zone(self)
        out, err, code = yield pzctl("--pzp-dir", zone.deviceDir("ghost"), "status", check=False)
        self.assertEqual((code, err.count("\n"), err.split(":")[1].strip()), (1, 1, "NOT_RUNNING"))
        out, err, code = yield pzctl("--hub-dir", zone.hubDir, "pair", "--device", "x", check=False)
        self.assertEqual((code, err.split(":")[1].strip()), (1, "NOT_RUNNING"))
        yield zone.startHub()
        yield zone.pairDevice("phone")
        out, err, code = yield pzctl("--pzp-dir", zone.deviceDir("phone"), "send",
                                     zone.deviceId("nobody"), "hi", check=False)
        self.assertEqual((code, err.split(":")[1].strip()), (1, "UNKNOWN_DESTINATION"))
        out, err, code = yield pzctl("--hub-dir", zone.hubDir, "pair", "--device", "phone",
                                     check=False)
        self.assertEqual((code, err.split(":")[1].strip()), (1, "NAME_TAKEN"))
        with self.assertRaises(PZCtlError):
            yield pzctl("--hub-dir", zone.hubDir, "pair", "--device", "bad name!")
