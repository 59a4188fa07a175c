"""
End-to-end: two real hubs, C{alice} and C{bob}, on 127.0.0.1, become friend
zones by invitation with C{pzctl}; a device of bob calls a device of alice
through both hubs, and directly on its peer port; after C{untrust-zone} the
next call is refused and the links are closed.
"""

import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from pz import pki
from pz.sync.zoneitems import friendCRLPath, friendFolder, friendItemPath, trustedHubPath
from pz.testing import frames
from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor
from tests.e2e.test_services import _deviceFiles, _dialPeerPort


class FriendZonesTests(TestCase):
    """
    Invitation, the PZH-PZH link, a call routed between zones, untrust.
    """

    timeout = 240

    @defer.inlineCallbacks
    def test_befriendCallUntrust(self):
        """
        Alice invites, bob accepts; both list each other (C{zones --json})
        with the link up and hold the other's CA among the trusted PZH
        certificates, synced to their devices; bob's device calls
        C{get42} on alice's device through both hubs; alice untrusts bob:
        the link closes and bob's device's next call is refused
        C{ZONE_UNTRUSTED}.
        """
        alice, bob = Zone(self, user="alice"), Zone(self, user="bob")
        yield alice.startHub()
        yield bob.startHub()
        yield alice.pairDevice("phone")
        yield alice.pairDevice("tv")
        yield bob.pairDevice("tab")

        out = yield pzctl("--hub-dir", alice.hubDir, "invite-zone")
        code = out.strip()
        self.assertTrue(code.startswith(f"pz://127.0.0.1:{alice.port}/"), code)
        accepted = yield pzctlJSON("--hub-dir", bob.hubDir, "accept-zone", code, "--json")
        self.assertEqual(accepted["zone"], alice.zoneId)
        # single use
        _, err, status = yield pzctl("--hub-dir", bob.hubDir, "accept-zone", code, check=False)
        self.assertEqual(status, 1)
        self.assertIn("TOKEN_USED", err)

        def linkUp(zone, other):
            @defer.inlineCallbacks
            def check():
                rows = yield pzctlJSON("--hub-dir", zone.hubDir, "zones", "--json")
                return rows if [(r["zone"], r["link"]) for r in rows] == [(other, "up")] else None
            return waitFor(check, 30, what=f"{zone.user}'s link with {other}")

        [aliceRow] = yield linkUp(alice, bob.zoneId)
        [bobRow] = yield linkUp(bob, alice.zoneId)
        self.assertEqual((aliceRow["dials"], bobRow["dials"]), (False, True))
        aliceZone = yield pzctlJSON("--hub-dir", alice.hubDir, "zone", "--json")
        self.assertEqual(bobRow["fingerprint"], aliceZone["ca_fingerprint"])

        # The friend's CA reaches the devices as a synced one-way item.
        tabCopy = os.path.join(bob.deviceDir("tab"), "zone", "items",
                               trustedHubPath(alice.zoneId))
        yield waitFor(lambda: os.path.exists(tabCopy), 30, what="alice's CA on bob's device")

        phone, tab = alice.deviceId("phone"), bob.deviceDir("tab")
        # Alice's default policy lets no other zone in: denied at her device.
        out, err, status = yield pzctl("--pzp-dir", tab, "call", phone, "get42", "get42",
                                       check=False)
        self.assertEqual(status, 1, out)
        self.assertIn("DENIED", err)
        # A Permit rule naming bob's zone, written on alice's hub, syncs to
        # her phone and lets the call through both hubs, without a restart.
        yield pzctl("--hub-dir", alice.hubDir, "policy", "add", "--effect", "permit",
                    "--subject", bob.zoneId, "--service", "get42")

        @defer.inlineCallbacks
        def permitted():
            out, err, status = yield pzctl("--pzp-dir", tab, "call", "--json", phone, "get42",
                                           "get42", check=False)
            return json.loads(out) if status == 0 else None
        answer = yield waitFor(permitted, 30, what="the permit rule on alice's phone")
        self.assertEqual(answer, {"result": 42, "via": "hub"})

        # Alice's device accepts bob's device on its peer port, for calls.
        phoneCopy = os.path.join(alice.deviceDir("phone"), "zone", "items",
                                 trustedHubPath(bob.zoneId))
        yield waitFor(lambda: os.path.exists(phoneCopy), 30, what="bob's CA on alice's device")
        status = yield alice.status("phone")
        port = status["peer_port"]
        aliceCA = pki.readCertificate(os.path.join(alice.deviceDir("phone"), "zone", "ca.pem"))
        tabKey, tabCert = _deviceFiles(bob, "tab")
        call = {"type": "JSONRPC", "from": bob.deviceId("tab"), "to": phone, "id": "e1",
                "payload": {"jsonrpc": "2.0", "id": 1, "method": "get42.get42", "params": []}}
        text = {"type": "prop", "from": bob.deviceId("tab"), "to": phone, "id": "e2",
                "payload": {"status": "message", "text": "hi"}}
        data, closed = yield _dialPeerPort(port, aliceCA, tabKey, tabCert, [call, text])
        answers = [f["payload"] for f in frames(data)]
        self.assertIn({"jsonrpc": "2.0", "id": 1, "result": 42}, answers)
        self.assertIn("NOT_AUTHORISED", [p.get("code") for p in answers])

        yield self.sharing(alice, bob)

        yield pzctl("--hub-dir", alice.hubDir, "untrust-zone", bob.zoneId)
        rows = yield pzctlJSON("--hub-dir", alice.hubDir, "zones", "--json")
        self.assertEqual(rows, [])
        self.assertFalse(os.path.exists(os.path.join(alice.hubDir, "zone", "items",
                                                     trustedHubPath(bob.zoneId))))
        # What bob's zone shared with alice's (its CRL) left her items.
        left = [names for _, _, names in os.walk(os.path.join(alice.hubDir, "zone", "items",
                                                              friendFolder(bob.zoneId)))]
        self.assertEqual(sum(left, []), [])
        [bobRow] = yield pzctlJSON("--hub-dir", bob.hubDir, "zones", "--json")
        # ZONE_UNTRUSTED as alice closed it; CERT_UNTRUSTED once bob dialled again
        self.assertIn(bobRow["link"], ("refused (ZONE_UNTRUSTED)", "refused (CERT_UNTRUSTED)"))
        out, err, status = yield pzctl("--pzp-dir", tab, "call", phone, "get42", "get42",
                                       check=False)
        self.assertEqual(status, 1, out)
        self.assertIn("ZONE_UNTRUSTED", err)
        self.assertIn("no longer trusts this zone", bob.hub.log())

        # Once alice's device synced the untrust, its peer port refuses bob's.
        yield waitFor(lambda: not os.path.exists(phoneCopy), 30,
                      what="bob's CA gone from alice's device")
        data, closed = yield _dialPeerPort(port, aliceCA, tabKey, tabCert, [call])
        self.assertEqual((data, closed), (b"", True))

    @defer.inlineCallbacks
    def sharing(self, alice, bob):
        """
        What alice's zone shares with bob's reaches bob's device: her CRL
        at once, her user details once a rule on her hub names them (her
        preferences never); a device she revokes is then refused on the
        peer port of bob's device.
        """
        tabItems = os.path.join(bob.deviceDir("tab"), "zone", "items")

        def onTab(path):
            try:
                with open(os.path.join(tabItems, *path.split("/")), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                return None

        crlPath = friendCRLPath(alice.zoneId)
        yield waitFor(lambda: onTab(crlPath), 30, what="alice's CRL on bob's device")

        details = json.dumps({"name": "Alice", "email": "alice@example.org"}, indent=2).encode()
        with open(os.path.join(alice.hubDir, "zone", "items", "userdetails.json"), "wb") as f:
            f.write(details)
        yield pzctl("--hub-dir", alice.hubDir, "policy", "add", "--effect", "permit",
                    "--subject", bob.zoneId, "--item", "userdetails.json")
        shared = friendItemPath(alice.zoneId, "userdetails.json")
        yield waitFor(lambda: onTab(shared) == details, 30,
                      what="alice's user details on bob's device")
        self.assertIsNone(onTab(friendItemPath(alice.zoneId, "preferences.json")))
        [row] = yield pzctlJSON("--hub-dir", bob.hubDir, "zones", "--json")
        self.assertEqual(row["shared"], ["crl.pem", "userdetails.json"])
        self.assertIn("sync userdetails.json", alice.hub.log())

        # Alice's tv reaches bob's tab's peer port (its call is denied by
        # bob's policy, but the link was made) until alice revokes it.
        tvKey, tvCert = _deviceFiles(alice, "tv")
        tabPort = (yield bob.status("tab"))["peer_port"]
        bobCA = pki.readCertificate(os.path.join(bob.deviceDir("tab"), "zone", "ca.pem"))
        call = {"type": "JSONRPC", "from": alice.deviceId("tv"), "to": bob.deviceId("tab"),
                "id": "t1", "payload": {"jsonrpc": "2.0", "id": 1, "method": "get42.get42",
                                        "params": []}}
        data, closed = yield _dialPeerPort(tabPort, bobCA, tvKey, tvCert, [call], wait=1.5)
        errors = [f["payload"]["error"]["data"]["zone_code"] for f in frames(data)
                  if "error" in f["payload"]]
        self.assertEqual(errors, ["DENIED"])
        yield pzctl("--hub-dir", alice.hubDir, "revoke", alice.deviceId("tv"))
        yield waitFor(lambda: pki.crlListsSerial(pki.loadCRL(onTab(crlPath)),
                                                 pki.readCertificate(os.path.join(
                                                     alice.hubDir, "ca.pem")),
                                                 tvCert.serial_number),
                      30, what="alice's revocation on bob's device")
        data, closed = yield _dialPeerPort(tabPort, bobCA, tvKey, tvCert, [call])
        self.assertEqual((data, closed), (b"", True))

