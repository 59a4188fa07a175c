"""
Tests for L{pzh.friendshare}: what a zone shares with a friend zone over
their PZH-PZH link (its CRL always, an item where its policy permits), and
what the friend's hub keeps of it.
"""

import base64
import hashlib
import json

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import ZoneError
from pz.policy.edit import addRule, removeRule
from pz.policy.item import POLICY
from pz.sync.zoneitems import CRL, friendCRLPath, friendFolder, friendItemPath
from pz.testing import HOST
from tests.pzh.test_friends import makePair

DETAILS = json.dumps({"name": "Alice", "email": "alice@example.org"}, indent=2).encode()


class SharingTests(SynchronousTestCase):
    """
    Alice and bob are friends; bob's hub dials alice's.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.pair.befriend()
        self.alice, self.bob = self.pair.alice, self.pair.bob
        self.alice.hub.sync.putItem("userdetails.json", DETAILS)
        self.pair.dial()

    def held(self, hub, path: str):
        return hub.hub.sync.tree.read(path)

    def bobHolds(self, path: str):
        return self.held(self.bob, friendItemPath(self.alice.zoneId, path))

    def editPolicy(self, change):
        """
        Change alice's policy as C{pzctl --hub-dir DIR policy} does, then
        let her hub look again.
        """
        tree = self.alice.hub.sync.tree
        result = change(tree.read(POLICY))
        data, ruleId = result if isinstance(result, tuple) else (result, None)
        tree.write(POLICY, data)
        self.alice.hub.share.offerAll()
        self.pair.flush()
        return ruleId

    def test_crlAlwaysShared(self):
        """
        Once linked, each hub holds the other's CRL among its items, for
        its devices: nothing else, since the default policy shares nothing.
        """
        self.assertEqual(self.held(self.bob, friendCRLPath(self.alice.zoneId)),
                         self.alice.hub.authority.crlPEM)
        self.assertEqual(self.held(self.alice, friendCRLPath(self.bob.zoneId)),
                         self.bob.hub.authority.crlPEM)
        self.assertIsNone(self.bobHolds("userdetails.json"))

    def test_sharedWhenPermitted(self):
        """
        A rule naming bob's zone and the item shares it (the bytes as
        they are), the decision logged; removing the rule takes it back.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        ruleId = self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId,
                                                      item="userdetails.json"))
        self.assertEqual(self.bobHolds("userdetails.json"), DETAILS)
        self.assertIsNone(self.bobHolds("preferences.json"))
        lines = [e for e in events if e.get("path") == "userdetails.json" and "rule" in e]
        self.assertEqual([(e["effect"], e["subject"], e["rule"]) for e in lines],
                         [("Permit", self.bob.zoneId, ruleId)])
        self.editPolicy(lambda data: removeRule(data, ruleId))
        self.assertIsNone(self.bobHolds("userdetails.json"))
        # The CRL stays: a friend never takes back its revocations.
        self.assertIsNotNone(self.held(self.bob, friendCRLPath(self.alice.zoneId)))

    def test_changeFollows(self):
        """
        A shared item that changes reaches the friend with the next look.
        """
        self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId,
                                             item="userdetails.json"))
        changed = DETAILS.replace(b"Alice", b"Alice B.")
        self.alice.hub.sync.putItem("userdetails.json", changed)
        self.alice.hub.share.offerAll()
        self.pair.flush()
        self.assertEqual(self.bobHolds("userdetails.json"), changed)

    def test_listed(self):
        """
        C{pzctl zones} rows say what each side shares with the other.
        """
        self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId,
                                             item="userdetails.json"))
        [row] = self.alice.hub.zoneLinks.listing()
        self.assertEqual((row["shares"], row["shared"]), (["crl.pem", "userdetails.json"],
                                                          ["crl.pem"]))
        [row] = self.bob.hub.zoneLinks.listing()
        self.assertEqual((row["shares"], row["shared"]), (["crl.pem"],
                                                          ["crl.pem", "userdetails.json"]))

    def test_failureKeepsLooking(self):
        """
        A look that fails is logged, and the next one shares as usual.
        """
        share = self.alice.hub.share
        share.start()
        self.addCleanup(share.stop)
        original = share.sharedWith
        self.patch(share, "sharedWith", lambda zoneId: 1 / 0)
        self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId,
                                             item="userdetails.json"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.patch(share, "sharedWith", original)
        self.alice.clock.advance(2.0)
        self.pair.flush()
        self.assertEqual(self.bobHolds("userdetails.json"), DETAILS)

    def test_callRuleSharesNothing(self):
        """
        A rule letting bob's zone call everything is about calls: it
        shares no item.
        """
        self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId))
        self.assertIsNone(self.bobHolds("userdetails.json"))

    def test_revocationReachesFriend(self):
        """
        A device alice revokes is in the CRL bob's hub holds for her zone
        after the next look.
        """
        _, cert = self.alice.enrolDevice("phone")
        self.alice.revoke(self.alice.deviceId("phone"))
        self.alice.hub.share.offerAll()
        self.pair.flush()
        crl = pki.loadCRL(self.held(self.bob, friendCRLPath(self.alice.zoneId)))
        self.assertTrue(pki.crlListsSerial(crl, self.alice.zone.caCert, cert.serial_number))

    def test_untrustRemoves(self):
        """
        When bob stops trusting alice, what she shared leaves his items.
        """
        self.editPolicy(lambda data: addRule(data, "permit", subject=self.bob.zoneId,
                                             item="userdetails.json"))
        self.bob.hub.friends.untrust(self.alice.zoneId)
        folder = friendFolder(self.alice.zoneId)
        self.assertEqual([p for p in self.bob.hub.sync.tree.scan() if p.startswith(folder)], [])

    def test_strangersRemovedAtStart(self):
        """
        At start (L{pzh.friends.Friends.publish}) what a zone that is no
        longer a friend had shared leaves the items; a friend's stays.
        """
        stale = friendCRLPath("carol@127.0.0.1")
        self.alice.hub.sync.putItem(stale, self.alice.hub.authority.crlPEM)
        self.alice.hub.friends.publish()
        self.assertIsNone(self.held(self.alice, stale))
        self.assertIsNotNone(self.held(self.alice, friendCRLPath(self.bob.zoneId)))

    def test_onlyWhatIsShared(self):
        """
        Asked for an item it does not share (the policy, a withdrawn or
        made-up path), alice's hub sends nothing; a request that is not a
        list of paths is C{BAD_ENVELOPE}.
        """
        aliceEnd = self.alice.hub.zoneLinks.linkFor(self.bob.zoneId)
        sent = []
        self.patch(aliceEnd, "sendMessage", lambda to, payload: sent.append(payload))
        self.alice.hub.share.needed(aliceEnd, [POLICY, "userdetails.json", "../../etc/passwd"])
        self.assertEqual(sent, [])
        error = self.assertRaises(ZoneError, self.alice.hub.share.needed, aliceEnd, [7])
        self.assertEqual(error.code, "BAD_ENVELOPE")


class BadInputTests(SynchronousTestCase):
    """
    A friend hub that lies about what it shares is refused with the code
    that says why, and nothing is written.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.pair.befriend()
        self.alice, self.bob = self.pair.alice, self.pair.bob
        link = self.alice.connect(tls.pzpClientOptions(
            self.alice.zone.caCert, self.bob.zone.hubKey, self.bob.zone.hubCert, HOST))
        self.raw = link.client
        self.pair.flush()

    def share(self, items: dict, data: dict) -> list:
        """
        Announce C{items} ({path: hash}) as bob's hub, then send C{data}
        ({path: bytes}); the codes alice's hub answered.
        """
        self.raw.sendProp(self.alice.zoneId, {"status": "zoneShared", "items": items}, "s1",
                          sender=self.bob.zoneId)
        for i, (path, raw) in enumerate(data.items()):
            self.raw.sendProp(self.alice.zoneId, {
                "status": "zoneItem", "path": path,
                "data": raw if isinstance(raw, str) else base64.b64encode(raw).decode()}, f"d{i}",
                sender=self.bob.zoneId)
        self.pair.flush()
        return self.raw.codes()

    def assertNothingKept(self):
        folder = friendFolder(self.bob.zoneId)
        self.assertEqual([p for p in self.alice.hub.sync.tree.scan() if p.startswith(folder)], [])

    def test_goodShare(self):
        """
        What the bad cases change: an announced item with its hash, and
        the friend's own CRL, are kept.
        """
        crl = self.bob.hub.authority.crlPEM
        items = {"userdetails.json": hashlib.sha256(DETAILS).hexdigest(),
                 CRL: hashlib.sha256(crl).hexdigest()}
        self.assertEqual(self.share(items, {"userdetails.json": DETAILS, CRL: crl}), [])
        self.assertEqual(self.alice.hub.sync.tree.read(
            friendItemPath(self.bob.zoneId, "userdetails.json")), DETAILS)

    def test_pathsNoZoneShares(self):
        """
        A path out of the folder, the policy, certificates or what a third
        zone shared with the friend are C{SYNC_BAD_PATH}; a hash that is
        not one, C{BAD_ENVELOPE}.
        """
        digest = hashlib.sha256(b"x").hexdigest()
        for path in ("../crl.pem", "policies/policy.xml", "certificates/trusted-pzh/x@y.pem",
                     "friends/x@y/crl.pem", ""):
            self.assertEqual(self.share({path: digest}, {})[-1], "SYNC_BAD_PATH", path)
        self.assertEqual(self.share({"userdetails.json": 7}, {})[-1], "BAD_ENVELOPE")
        self.assertNothingKept()

    def test_notAnnouncedOrWrongHash(self):
        """
        Data never announced is C{BAD_REQUEST}; data that does not match
        its hash is C{SYNC_BAD_ITEM}; data that is not base64,
        C{BAD_ENVELOPE}.
        """
        self.assertEqual(self.share({}, {"userdetails.json": DETAILS}), ["BAD_REQUEST"])
        items = {"userdetails.json": hashlib.sha256(b"other").hexdigest()}
        self.assertEqual(self.share(items, {"userdetails.json": DETAILS})[-1], "SYNC_BAD_ITEM")
        self.assertEqual(self.share(items, {"userdetails.json": "%%%"})[-1], "BAD_ENVELOPE")
        self.assertNothingKept()

    def test_forgedOrOlderCRL(self):
        """
        A CRL that bob's CA did not sign, or one older than the one held,
        is C{CRL_INVALID}.
        """
        forged = pki.crlPEM(pki.buildCRL(self.alice.zone.caKey, self.alice.zone.caCert, [], 99,
                                         self.alice.now()))
        codes = self.share({CRL: hashlib.sha256(forged).hexdigest()}, {CRL: forged})
        self.assertEqual(codes[-1], "CRL_INVALID")
        self.assertNothingKept()
        old = self.bob.hub.authority.crlPEM
        self.share({CRL: hashlib.sha256(old).hexdigest()}, {CRL: old})
        self.bob.enrolDevice("tv")
        self.bob.revoke(self.bob.deviceId("tv"))
        new = self.bob.hub.authority.crlPEM
        self.share({CRL: hashlib.sha256(new).hexdigest()}, {CRL: new})
        codes = self.share({CRL: hashlib.sha256(old).hexdigest()}, {CRL: old})
        self.assertEqual(codes[-1], "CRL_INVALID")
        self.assertEqual(self.alice.hub.sync.tree.read(friendCRLPath(self.bob.zoneId)), new)
