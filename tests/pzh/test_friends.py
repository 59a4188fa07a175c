"""
Tests for L{pzh.friends} and L{pzh.befriend}: zone invitations, made,
accepted and refused, and the trust they leave on both hubs.
"""

from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.sync.zoneitems import trustedHubPath
from pz.testing import HOST, MemoryHub
from pz.testing.loopback import flushPumps
from pzh.befriend import Invited, InvitationProtocol
from pz.tokens import ZONE_GUESSES
from pzh.friends import checkZoneCA, validZoneId
from pzh.hub import HubSettings


def _settings() -> HubSettings:
    return HubSettings(synchronise=True)


class _Pair:
    """
    Two hubs, C{alice} and C{bob}, on one clock.
    """

    def __init__(self, testCase) -> None:
        self.alice = MemoryHub(testCase, _settings(), user="alice")
        self.bob = MemoryHub(testCase, _settings(), clock=self.alice.clock, user="bob")
        self.clock = self.alice.clock

    def flush(self) -> None:
        flushPumps([link.pump for hub in (self.alice, self.bob) for link in hub.links])

    def accept(self, code: str, protocol=None):
        """
        Have bob accept C{code} from alice over TLS in memory; the
        protocol's result, pumped until quiet.
        """
        protocol = protocol or InvitationProtocol(PairingCode.parse(code), self.bob.zone,
                                                  self.clock)
        self.alice.connectProtocol(tls.enrolmentClientOptions(HOST), protocol)
        self.flush()
        return protocol.result

    def dial(self):
        """
        Bob's hub dials alice's, as its C{ClientService} does: the client
        and alice's end, pumped until quiet.
        """
        from pzh.zonelink import ZoneLinkClient

        client = ZoneLinkClient(self.bob.hub.zoneLinks, self.alice.zoneId)
        link = self.alice.connectProtocol(
            tls.pzpClientOptions(self.alice.zone.caCert, self.bob.zone.hubKey,
                                 self.bob.zone.hubCert, HOST), client)
        self.flush()
        return client, link

    def befriend(self) -> None:
        """
        Make alice and bob friends, the whole way.
        """
        invited = self.accept(self.alice.hub.friends.invite()["code"])
        result = self.testCase.successResultOf(invited)
        self.bob.hub.friends.accepted(result.zoneId, result.caCert, result.host, result.port)


def makePair(testCase) -> _Pair:
    pair = _Pair(testCase)
    pair.testCase = testCase
    return pair


class ZoneIdTests(SynchronousTestCase):
    """
    L{validZoneId} knows a zone id's form.
    """

    def test_forms(self):
        """
        C{user@host} is a zone id; a device id, a bare name, or a non-string
        is not.
        """
        self.assertTrue(validZoneId("bob@127.0.0.1"))
        self.assertTrue(validZoneId("bob@hub.example.org"))
        for bad in ("bob", "@h", "bob@", "bob@h/phone", "b b@h", None, 3, "x" * 70 + "@h"):
            self.assertFalse(validZoneId(bad), repr(bad))


class CheckZoneCATests(SynchronousTestCase):
    """
    L{checkZoneCA} accepts only a self-signed CA naming the zone claimed.
    """

    def setUp(self):
        self.hub = MemoryHub(self, user="carol", onDisk=False)
        self.now = self.hub.now()

    def test_good(self):
        """
        A zone's CA certificate naming that zone is accepted.
        """
        pem = self.hub.zone.caPEM.decode("ascii")
        self.assertEqual(checkZoneCA(pem, self.hub.zoneId, self.now), self.hub.zone.caCert)

    def test_refused(self):
        """
        Not PEM, a leaf certificate, another zone's name, or a CA not valid
        now: C{CERT_INVALID}.
        """
        ca = self.hub.zone.caPEM.decode("ascii")
        leaf = pki.certificatePEM(self.hub.zone.hubCert).decode("ascii")
        cases = [("junk", self.hub.zoneId, self.now), (None, self.hub.zoneId, self.now),
                 (leaf, self.hub.zoneId, self.now), (ca, "mallory@127.0.0.1", self.now),
                 (ca, self.hub.zoneId, self.now + timedelta(days=20000)),
                 ("x" * 20000, self.hub.zoneId, self.now)]
        for pem, zoneId, when in cases:
            e = self.assertRaises(ZoneError, checkZoneCA, pem, zoneId, when)
            self.assertEqual(e.code, "CERT_INVALID", (repr(pem)[:40], zoneId))


class InvitationTests(SynchronousTestCase):
    """
    L{pzh.friends.Friends} hands out invitations and checks them as it
    checks pairing codes.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.alice, self.bob = self.pair.alice, self.pair.bob
        self.friends = self.alice.hub.friends
        self.bobCA = self.bob.zone.caPEM.decode("ascii")

    def tokenOf(self, made: dict) -> str:
        return PairingCode.parse(made["code"]).token

    def present(self, token, zoneId=None, ca=None, source="127.0.0.5"):
        return self.friends.befriend(token, zoneId or self.bob.zoneId, ca or self.bobCA,
                                     HOST, 8000, source)

    def test_codeForm(self):
        """
        An invitation has the pairing code's form: this hub's address, a
        token, and the zone CA's fingerprint; only the token's hash is kept.
        """
        made = self.friends.invite()
        code = PairingCode.parse(made["code"])
        self.assertEqual((code.host, code.port, code.caFingerprint),
                         (HOST, 8000, self.alice.zone.caFingerprint))
        self.assertEqual(made["expires"], self.alice.clock.seconds() + 600.0)
        db = self.alice._ownConnection()
        self.addCleanup(db.close)
        rows = db.execute("SELECT token_hash FROM invitations").fetchall()
        self.assertEqual(len(rows), 1)
        self.assertNotIn(code.token, rows[0][0])

    def test_singleUse(self):
        """
        A token makes one friend; presented again it is C{TOKEN_USED}, and
        bob's CA is among alice's trusted PZH certificates.
        """
        token = self.tokenOf(self.friends.invite())
        record = self.present(token)
        self.assertEqual((record.zoneId, record.dials), (self.bob.zoneId, False))
        self.assertTrue(self.friends.trusts(self.bob.zoneId))
        self.assertEqual(self.alice.hub.sync.tree.read(trustedHubPath(self.bob.zoneId)),
                         self.bob.zone.caPEM)
        self.friends.untrust(self.bob.zoneId)
        e = self.assertRaises(ZoneError, self.present, token)
        self.assertEqual(e.code, "TOKEN_USED")
        self.assertFalse(self.friends.trusts(self.bob.zoneId))

    def test_expired(self):
        """
        Past its lifetime an invitation is C{TOKEN_EXPIRED}, and nothing
        is trusted.
        """
        token = self.tokenOf(self.friends.invite())
        self.alice.clock.advance(601)
        e = self.assertRaises(ZoneError, self.present, token)
        self.assertEqual(e.code, "TOKEN_EXPIRED")
        self.assertEqual(self.friends.records(), [])

    def test_wrongToken(self):
        """
        A token never made is C{TOKEN_INVALID}; so is one that is not text.
        """
        self.friends.invite()
        for token in ("A" * 32, None, 5):
            e = self.assertRaises(ZoneError, self.present, token)
            self.assertEqual(e.code, "TOKEN_INVALID")
        self.assertEqual(self.friends.records(), [])

    def test_rateLimited(self):
        """
        After five wrong tokens from one address it hears only
        C{RATE_LIMITED}; another address is still told the truth, and a
        valid token still works from the blocked address.
        """
        token = self.tokenOf(self.friends.invite())
        codes = [self.assertRaises(ZoneError, self.present, "B" * 32).code for _ in range(6)]
        self.assertEqual(codes, ["TOKEN_INVALID"] * 5 + ["RATE_LIMITED"])
        e = self.assertRaises(ZoneError, self.present, "B" * 32, source="127.0.0.6")
        self.assertEqual(e.code, "TOKEN_INVALID")
        self.assertEqual(self.present(token).zoneId, self.bob.zoneId)

    def test_zoneBudget(self):
        """
        The whole zone takes L{ZONE_GUESSES} wrong tokens a minute, from
        any number of addresses.
        """
        for i in range(ZONE_GUESSES):
            self.assertRaises(ZoneError, self.present, "C" * 32, source=f"10.0.{i}.1")
        e = self.assertRaises(ZoneError, self.present, "C" * 32, source="10.9.9.9")
        self.assertEqual(e.code, "RATE_LIMITED")

    def test_badFriendKeepsToken(self):
        """
        A valid token with a bad zone id, a CA that is not that zone's,
        this zone's own id or CA, or a bad address is refused, and the
        token stays unused for the real request.
        """
        token = self.tokenOf(self.friends.invite())
        ownCA = self.alice.zone.caPEM.decode("ascii")
        for zoneId, ca, code in [("bob", self.bobCA, "BAD_REQUEST"),
                                 ("mallory@127.0.0.1", self.bobCA, "CERT_INVALID"),
                                 (self.alice.zoneId, ownCA, "BAD_REQUEST"),
                                 (self.bob.zoneId, "not pem", "CERT_INVALID")]:
            e = self.assertRaises(ZoneError, self.present, token, zoneId, ca)
            self.assertEqual(e.code, code, zoneId)
        e = self.assertRaises(ZoneError, self.friends.befriend, token, self.bob.zoneId,
                              self.bobCA, HOST, 0, "127.0.0.5")
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertEqual(self.friends.records(), [])
        self.assertEqual(self.present(token).zoneId, self.bob.zoneId)

    def test_alreadyFriend(self):
        """
        A zone already trusted is not trusted twice (its CA replaced)
        without being untrusted first.
        """
        self.present(self.tokenOf(self.friends.invite()))
        e = self.assertRaises(ZoneError, self.present, self.tokenOf(self.friends.invite()))
        self.assertEqual(e.code, "BAD_REQUEST")

    def test_untrustUnknown(self):
        """
        Untrusting a zone that is not a friend is C{BAD_REQUEST}.
        """
        for zone in ("bob@127.0.0.1", None):
            e = self.assertRaises(ZoneError, self.friends.untrust, zone)
            self.assertEqual(e.code, "BAD_REQUEST")

    def test_survivesRestart(self):
        """
        A new hub object over the same store trusts the same zones.
        """
        self.present(self.tokenOf(self.friends.invite()))
        from pzh.friends import Friends

        again = Friends(self.alice.zone, self.alice.store, self.alice.clock)
        self.assertTrue(again.trusts(self.bob.zoneId))
        self.assertEqual(again.caFor(self.bob.zoneId), self.bob.zone.caCert)


class AcceptTests(SynchronousTestCase):
    """
    L{InvitationProtocol}: bob's hub accepts alice's invitation over TLS,
    checking alice's hub first.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.alice, self.bob = self.pair.alice, self.pair.bob

    def test_accepted(self):
        """
        Bob learns alice's CA, checked; alice trusts bob's; after bob
        records it both hubs hold the other's CA among the trusted PZH
        certificates.
        """
        self.pair.befriend()
        self.assertTrue(self.alice.hub.friends.trusts(self.bob.zoneId))
        self.assertTrue(self.bob.hub.friends.trusts(self.alice.zoneId))
        self.assertEqual(self.bob.hub.sync.tree.read(trustedHubPath(self.alice.zoneId)),
                         self.alice.zone.caPEM)
        self.assertEqual(self.alice.hub.sync.tree.read(trustedHubPath(self.bob.zoneId)),
                         self.bob.zone.caPEM)
        self.assertTrue(self.bob.hub.friends.get(self.alice.zoneId).dials)
        self.assertFalse(self.alice.hub.friends.get(self.bob.zoneId).dials)

    def test_wrongFingerprint(self):
        """
        A code whose fingerprint is not alice's CA's: C{HUB_UNTRUSTED}
        before the token is sent, so the invitation is still unused.
        """
        made = self.alice.hub.friends.invite()
        code = PairingCode.parse(made["code"])
        forged = PairingCode(code.host, code.port, code.token, self.bob.zone.caFingerprint)
        failure = self.pair.testCase.failureResultOf(self.pair.accept(str(forged)), ZoneError)
        self.assertEqual(failure.value.code, "HUB_UNTRUSTED")
        self.assertEqual(self.alice.hub.friends.records(), [])
        self.assertIsInstance(self.successResultOf(self.pair.accept(made["code"])), Invited)

    def test_refusalReported(self):
        """
        Alice's refusal (a used invitation) fails the acceptance with its
        code.
        """
        made = self.alice.hub.friends.invite()
        self.successResultOf(self.pair.accept(made["code"]))
        self.alice.hub.friends.untrust(self.bob.zoneId)
        failure = self.failureResultOf(self.pair.accept(made["code"]), ZoneError)
        self.assertEqual(failure.value.code, "TOKEN_USED")

    def test_badCode(self):
        """
        A malformed code is refused before anything is dialled.
        """
        from pzh.befriend import acceptInvitation

        failure = self.assertRaises(ZoneError, acceptInvitation, self.alice.clock,
                                    self.bob.zone, "pz://nothing")
        self.assertEqual(failure.code, "BAD_REQUEST")
