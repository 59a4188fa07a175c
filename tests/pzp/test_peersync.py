"""
Tests for L{pzp.peersync}: two devices' L{PeerMode} workers linked over
real TLS in memory (C{iosim} pumps on one L{Clock}), each with its
L{PeerSync}, its items tree and the real revocation worker behind its
C{crlReceived}; and one worker fed messages directly by a peer that lies.
"""

import base64
import hashlib
import os

import attrs
from twisted.internet.task import Clock, LoopingCall
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki, udf
from pz.errors import ZoneError
from pz.sync.chunkers import manifestOf
from pz.sync.defaults import POLICY as DEFAULT_POLICY
from pz.sync.items import ItemTree
from pz.sync.zoneitems import CRL, trustedDevicePath, zoneItems
from pz.wire import DEFAULT_MAX_FRAME, decodeEnvelope
from pzp.identity import Identity
from pzp.inbox import Inbox
from pzp.peermode import PeerMode
from pzp.peersync import POLICY, WATCH_INTERVAL, PeerSync, peerSynced
from pzp.revocation import Revocation
from pzp.seams import IProxyEvents
from pzp.sync import SyncSettings, ZoneSync
from pzp.zonedir import Credentials, ZoneDirectory
from tests.pz.test_tls import NOW, ZONE, _zones
from tests.pz.sync.support import Zone
from tests.pzp.test_peermode import PeerModeTests

LAPTOP = f"{ZONE}/a-laptop"
PHONE = f"{ZONE}/b-phone"


def policy(n: int) -> bytes:
    """
    A valid XACML policy, different for each C{n}.
    """
    return DEFAULT_POLICY.replace("Permit every request of this zone's own devices.", f"Edit {n}.").encode("utf-8")


def hexHash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ZoneDir:
    """
    The part of a zone directory the identity and the revocation worker
    use: the credentials and the CRL's storage (the real one's).
    """

    replaceCRL = ZoneDirectory.replaceCRL

    def __init__(self, path: str, creds) -> None:
        self.path = path
        self._creds = creds

    def load(self):
        return self._creds


@implementer(IProxyEvents)
class _Events:
    def __init__(self) -> None:
        self.errors = []

    def enrolled(self) -> None:
        pass

    def leftZone(self) -> None:
        raise AssertionError("nothing erases the zone here")

    def reportError(self, error) -> None:
        self.errors.append(error)

    def clearError(self) -> None:
        pass

    def giveUp(self, error) -> None:
        pass


class Device:
    """
    One device: its credentials (identity), items tree, revocation worker
    and peer-sync worker.  Its C{crlReceived} is the proxy's: the
    revocation worker takes the CRL, then Peer mode closes revoked peers'
    links.
    """

    def __init__(self, test, clock, name: str, crl) -> None:
        zone = test.zone
        key, cert = zone.device(name)
        self.deviceId = f"{ZONE}/{name}"
        creds = Credentials(zoneId=ZONE, deviceId=self.deviceId, hubHost="127.0.0.1", hubPort=443,
                            key=key, cert=cert, caCert=zone.caCert, crl=crl)
        path = test.mktemp()
        self.tree = ItemTree(path)
        self.tree.create(zoneItems(ZONE, pki.certificatePEM(zone.caCert), pki.crlPEM(crl)))
        self.zoneDir = _ZoneDir(path, creds)
        self.identity = Identity(self.zoneDir)
        self.events = _Events()
        self.revocation = Revocation(self.zoneDir)
        self.revocation.wire(self.events, self.identity)
        self.crls = []
        self.peerMode = None
        self.sync = PeerSync(clock, self.tree, lambda: self.identity.current, self.crlReceived)

    def crlReceived(self, crl) -> None:
        self.crls.append(crl)
        self.revocation.crlReceived(crl)
        if self.peerMode is not None:
            self.peerMode.crlReceived(crl)

    @property
    def credentials(self):
        return self.identity.current

    def heldNumber(self) -> int:
        return pki.crlNumber(self.identity.current.crl)

    def setCRL(self, crl) -> None:
        """
        The CRL came from the hub.
        """
        self.identity.replaceCRL(crl)


class _Base(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW.timestamp())
        self.zone, self.foreign = _zones()
        self.crl1 = self.buildCRL(1)

    def buildCRL(self, number, revoked=(), zone=None):
        zone = zone or self.zone
        return pki.buildCRL(zone.caKey, zone.caCert, [(s, NOW) for s in revoked], number, NOW)

    def deviceCert(self, name, zone=None):
        return pki.certificatePEM((zone or self.zone).device(name)[1])


class PeerSyncLinkTests(_Base):
    """
    Two devices, each a L{PeerMode} with a L{PeerSync}, linked over TLS in
    memory.
    """

    dialer = PeerModeTests.dialer
    flush = PeerModeTests.flush

    def setUp(self):
        super().setUp()
        self.pumps = []
        self.laptop = Device(self, self.clock, "a-laptop", self.crl1)
        self.phone = Device(self, self.clock, "b-phone", self.crl1)
        self.workers = {}
        for device in (self.laptop, self.phone):
            inbox = Inbox(self.mktemp(), self.clock)
            device.peerMode = PeerMode(self.clock, device.identity, inbox, self.dialer,
                                       peerSync=device.sync)
            self.workers[device.deviceId] = device.peerMode

    def connect(self):
        """
        The phone dials the laptop; both links are up once flushed.
        """
        creds = self.laptop.credentials
        self.phone.peerMode.peerAvailable(LAPTOP, "127.0.0.1", 8040,
                                          udf.key_fingerprint(creds.cert.public_key()))
        self.flush()
        self.assertEqual(self.phone.peerMode.status(), {LAPTOP: "Connected"})

    def test_newerCRLCrosses(self):
        """
        A CRL newer than the peer's crosses the link when it comes up and
        goes where a hub-pushed CRL goes: the peer's revocation worker
        stores it (its items and its credentials) and Peer mode is told.
        """
        crl2 = self.buildCRL(2, [424242])
        self.laptop.setCRL(crl2)
        self.connect()
        self.assertEqual([pki.crlNumber(c) for c in self.phone.crls], [2])
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.phone.tree.read(CRL), pki.crlPEM(crl2))
        self.assertEqual(self.laptop.crls, [])
        self.assertEqual(self.phone.sync.installed, 1)

    def test_olderCRLStays(self):
        """
        The peer holding an older CRL does not make this device take it:
        the newer one goes the other way only.
        """
        crl2 = self.buildCRL(2)
        self.phone.setCRL(crl2)
        self.connect()
        self.assertEqual(self.phone.crls, [])
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual([pki.crlNumber(c) for c in self.laptop.crls], [2])

    def test_revokedPeerClosed(self):
        """
        A CRL taken from a peer closes the links of the devices it revokes,
        as one from the hub does: the laptop, told by the hub that it is
        revoked, hands the CRL on, and the phone closes the link at once.
        """
        self.connect()
        self.laptop.setCRL(self.buildCRL(2, [self.laptop.credentials.cert.serial_number]))
        self.laptop.sync.localChanged()
        self.flush()
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.phone.peerMode.status(), {LAPTOP: "NotConnected"})
        self.assertEqual(self.laptop.peerMode.status(), {PHONE: "NotConnected"})

    def test_missingCertificateInstalled(self):
        """
        A trusted device certificate the peer lacks is installed through
        its items tree; one it holds in another version is left alone.
        """
        watch = trustedDevicePath(f"{ZONE}/c-watch")
        tv = trustedDevicePath(f"{ZONE}/d-tv")
        watchPEM, tvPEM, tvOther = (self.deviceCert(n) for n in ("c-watch", "d-tv", "d-tv"))
        self.laptop.tree.write(watch, watchPEM)
        self.laptop.tree.write(tv, tvPEM)
        self.phone.tree.write(tv, tvOther)
        self.connect()
        self.assertEqual(self.phone.tree.read(watch), watchPEM)
        self.assertEqual(self.phone.tree.read(tv), tvOther)
        self.assertEqual(self.laptop.tree.read(tv), tvPEM)

    def test_policyCrosses(self):
        """
        The later-edited policy crosses, keeping its edit time; the older
        one does not go back the other way.
        """
        self.laptop.tree.write(POLICY, policy(1))
        self.phone.tree.write(POLICY, policy(2))
        os.utime(self.laptop.tree.resolve(POLICY), (1000, 1000))
        os.utime(self.phone.tree.resolve(POLICY), (2000, 2000))
        self.connect()
        self.assertEqual(self.laptop.tree.read(POLICY), policy(2))
        self.assertEqual(self.phone.tree.read(POLICY), policy(2))
        self.assertEqual(os.stat(self.laptop.tree.resolve(POLICY)).st_mtime, 2000)
        self.assertEqual((self.laptop.sync.installed, self.phone.sync.installed), (1, 0))

    def test_equalPolicyTimes(self):
        """
        Two different policies with the same time: neither device takes
        the other's (no swap back and forth); the hub's sync settles it.
        """
        self.laptop.tree.write(POLICY, policy(1))
        self.phone.tree.write(POLICY, policy(2))
        os.utime(self.laptop.tree.resolve(POLICY), (1000, 1000))
        os.utime(self.phone.tree.resolve(POLICY), (1000, 1000))
        self.connect()
        self.assertEqual(self.laptop.tree.read(POLICY), policy(1))
        self.assertEqual(self.phone.tree.read(POLICY), policy(2))

    def test_policiesNotSelected(self):
        """
        A device whose preferences do not select policies neither
        announces nor takes the policy (as its hub synchronisation); the
        certificates and the CRL still cross.
        """
        self.phone.tree.write("preferences.json", b'{"synchronise": {"policies": "no"}}')
        self.laptop.tree.write(POLICY, policy(1))
        self.laptop.setCRL(self.buildCRL(2))
        phonePolicy = self.phone.tree.read(POLICY)
        self.connect()
        self.assertEqual(self.phone.tree.read(POLICY), phonePolicy)
        self.assertEqual(self.phone.sync.refused, 0)
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.laptop.tree.read(POLICY), policy(1))

    def test_changeAfterLinkUp(self):
        """
        A change after the link came up is announced
        (L{PeerSync.localChanged}) and crosses.
        """
        self.connect()
        self.assertEqual(self.phone.crls, [])
        self.laptop.setCRL(self.buildCRL(2))
        self.laptop.tree.write(POLICY, policy(3))
        self.laptop.sync.localChanged()
        self.flush()
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.phone.tree.read(POLICY), policy(3))

    def test_changeFound(self):
        """
        A change nobody reports is found by looking at the files while a
        link is up, and crosses; with nothing changed, nothing is sent.
        """
        self.connect()
        link = self.laptop.peerMode.linkFor(PHONE)
        sent = []
        original = link.sendString
        link.sendString = lambda data: (sent.append(data), original(data))
        self.clock.advance(WATCH_INTERVAL)
        self.flush()
        self.assertEqual(sent, [])
        self.laptop.setCRL(self.buildCRL(2))
        self.laptop.tree.write(POLICY, policy(4))
        self.assertEqual(self.phone.heldNumber(), 1)
        self.clock.advance(WATCH_INTERVAL)
        self.flush()
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.phone.tree.read(POLICY), policy(4))
        # Announced once: the next look finds nothing new.
        sent.clear()
        self.clock.advance(WATCH_INTERVAL)
        self.flush()
        self.assertEqual(sent, [])

    def test_takenItemAnnouncedOn(self):
        """
        What a device takes from a peer it announces on its links, so it
        spreads on to third devices; back to the sender, the announcement
        needs nothing and the exchange ends.
        """
        self.connect()
        sent = {PHONE: [], LAPTOP: []}
        for device, peer in ((self.phone, LAPTOP), (self.laptop, PHONE)):
            link = device.peerMode.linkFor(peer)
            link.sendString = (lambda log, original: lambda data: (
                log.append(decodeEnvelope(data).payload["status"]), original(data)))(
                    sent[device.deviceId], link.sendString)
        self.phone.setCRL(self.buildCRL(3))
        self.phone.sync.localChanged()
        self.flush()
        self.assertEqual(self.laptop.heldNumber(), 3)
        self.assertEqual(sent, {PHONE: ["Update_Hash", "Update_Data"],
                                LAPTOP: ["Update_Change", "Update_Hash"]})

    def test_lostLinkForgotten(self):
        """
        A link that is gone is announced on no more.
        """
        self.connect()
        link = self.phone.peerMode.linkFor(LAPTOP)
        link.transport.loseConnection()
        self.flush()
        sent = []
        link.sendString = sent.append
        self.phone.sync.localChanged()
        self.assertEqual(sent, [])
        # Nothing is left looking at the files.
        self.assertFalse([c for c in self.clock.getDelayedCalls()
                          if isinstance(c.func, LoopingCall)])

    def test_olderFromHubRefusedAfterwards(self):
        """
        Once a peer's newer CRL is held, the device's synchronisation
        refuses an older one from the hub: a peer's CRL is never taken
        back.
        """
        self.laptop.setCRL(self.buildCRL(2))
        self.connect()
        sync = ZoneSync(Clock(), None, SyncSettings())
        sync.wire(self.phone.identity, self.phone.revocation)
        error = self.assertRaises(ZoneError, sync._checkCRL, CRL, pki.crlPEM(self.crl1))
        self.assertEqual(error.code, "SYNC_BAD_ITEM")

    def test_notCurrentLink(self):
        """
        A peer-sync message on a link that is not the peer's kept link is
        not handed on.
        """
        self.connect()
        link = self.laptop.peerMode.linkFor(PHONE)
        stray = attrs.make_class("Stray", ["peerId"])(PHONE)
        self.laptop.peerMode.peerSyncReceived(stray, {"status": "Update_Hash"})
        self.assertEqual(self.laptop.sync.refused, 0)
        self.laptop.peerMode.peerSyncReceived(link, {"status": "Update_Hash"})
        self.assertEqual(self.laptop.sync.refused, 1)


class FakeLink:
    """
    A peer link as the worker sees it: what it sends is decoded and kept.
    """

    MAX_LENGTH = DEFAULT_MAX_FRAME

    def __init__(self, localId: str, peerId: str) -> None:
        self.localId, self.peerId = localId, peerId
        self.sent = []

    def sendString(self, data: bytes) -> None:
        self.sent.append(decodeEnvelope(data).payload)


class LyingPeerTests(_Base):
    """
    The phone's worker fed by a peer that sends what it likes.
    """

    def setUp(self):
        super().setUp()
        self.phone = Device(self, self.clock, "b-phone", self.crl1)
        self.link = FakeLink(PHONE, LAPTOP)
        self.phone.sync.linkUp(self.link)
        [self.announced] = self.link.sent
        self.link.sent.clear()
        self.before = self.snapshot()

    def snapshot(self):
        tree = self.phone.tree
        return {path: tree.read(path) for path in tree.scan()}

    def offer(self, path, data: bytes, itemHash=None, number=0, policyTime=None, send=None):
        """
        Announce C{path} with C{itemHash} (that of C{data} by default);
        if the phone asks for it, send C{send} (C{data} base64 by
        default).  Return what the phone asked for.
        """
        payload = {"status": "Update_Hash", "items": {path: itemHash or hexHash(data)},
                   "crlNumber": number}
        if policyTime is not None:
            payload["policyTime"] = policyTime
        self.phone.sync.received(self.link, payload)
        asked = [p for m in self.link.sent for p in m.get("need", [])]
        if asked:
            self.phone.sync.received(self.link, {
                "status": "Update_Data", "path": path,
                "data": base64.b64encode(data).decode("ascii") if send is None else send})
        return asked

    def assertRefused(self, code):
        self.assertEqual(self.phone.sync.lastRefusal.code, code)
        self.assertEqual(self.snapshot(), self.before)
        self.assertEqual(self.phone.crls, [])
        self.assertEqual(self.phone.heldNumber(), 1)

    def test_announcement(self):
        """
        The announcement names the CRL, the trusted device certificates
        and the policy, with the engine's hashes (SHA-256 of the PEM
        bytes) in hex, the CRL number and the policy's time.
        """
        self.assertEqual(self.announced["status"], "Update_Hash")
        self.assertEqual(self.announced["crlNumber"], 1)
        self.assertEqual(self.announced["items"][CRL], hexHash(pki.crlPEM(self.crl1)))
        self.assertEqual(sorted(self.announced["items"]), [CRL, POLICY])
        self.assertIsInstance(self.announced["policyTime"], float)

    def test_forgedCRL(self):
        """
        A CRL signed by another CA (its issuer named alike) is refused.
        """
        forged = pki.crlPEM(self.buildCRL(9, zone=self.foreign))
        self.assertEqual(self.offer(CRL, forged, number=9), [CRL])
        self.assertRefused("CRL_INVALID")

    def test_olderCRLSent(self):
        """
        A peer announcing a higher number but sending an older CRL is
        refused when the data comes.
        """
        self.phone.setCRL(self.buildCRL(2))
        self.before = self.snapshot()
        self.assertEqual(self.offer(CRL, pki.crlPEM(self.crl1), number=5), [CRL])
        self.assertEqual(self.phone.sync.lastRefusal.code, "CRL_INVALID")
        self.assertEqual(self.snapshot(), self.before)
        self.assertEqual(self.phone.heldNumber(), 2)
        self.assertEqual(self.phone.crls, [])

    def test_olderCRLNotAsked(self):
        """
        A CRL announced with a number not above the one held is not asked
        for.
        """
        self.phone.setCRL(self.buildCRL(2))
        self.assertEqual(self.offer(CRL, pki.crlPEM(self.buildCRL(2, [7])), number=2), [])

    def test_certificateOfAnotherCA(self):
        """
        A device certificate issued by another CA is refused.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        self.assertEqual(self.offer(path, self.deviceCert("c-watch", self.foreign)), [path])
        self.assertRefused("CERT_UNTRUSTED")

    def test_revokedCertificate(self):
        """
        A certificate the CRL held lists is refused.
        """
        key, cert = self.zone.device("c-watch")
        self.phone.setCRL(self.buildCRL(2, [cert.serial_number]))
        self.before = self.snapshot()
        path = trustedDevicePath(f"{ZONE}/c-watch")
        self.offer(path, pki.certificatePEM(cert))
        self.assertEqual(self.phone.sync.lastRefusal.code, "CERT_REVOKED")
        self.assertEqual(self.snapshot(), self.before)

    def test_certificateAtAnotherPath(self):
        """
        A device's certificate offered as another device's is refused.
        """
        path = trustedDevicePath(f"{ZONE}/d-tv")
        self.offer(path, self.deviceCert("c-watch"))
        self.assertRefused("CERT_INVALID")

    def test_hubCertificate(self):
        """
        The hub's certificate is no trusted device certificate.
        """
        path = trustedDevicePath(ZONE)
        self.offer(path, pki.certificatePEM(self.zone.hubCert))
        self.assertRefused("CERT_INVALID")

    def test_policyNotXACML(self):
        """
        A policy that is not XACML is refused, whatever hash it came with.
        """
        self.offer(POLICY, b"<html>not a policy</html>", policyTime=9e9)
        self.assertRefused("SYNC_BAD_ITEM")

    def test_policyNotAPolicy(self):
        """
        Well-formed XACML the decision point does not take (an unknown
        combining algorithm) is refused too, before it is written.
        """
        broken = policy(7).replace(b"first-applicable", b"no-such-algorithm")
        self.assertEqual(self.offer(POLICY, broken, policyTime=9e9,
                                    itemHash=manifestOf("xacml", broken).hash.hex()), [POLICY])
        self.assertRefused("SYNC_BAD_ITEM")

    def test_policyOlder(self):
        """
        A different policy older than this device's is not asked for.
        """
        self.assertEqual(self.offer(POLICY, policy(5), policyTime=1.0), [])
        self.assertEqual(self.phone.tree.read(POLICY), self.before[POLICY])

    def test_versionTime(self):
        """
        Given C{versionTime} (the sync engine's record), the policy's time
        comes from it, in the announcement and in the comparison.
        """
        sync = PeerSync(self.clock, self.phone.tree, lambda: self.phone.identity.current,
                        self.phone.crlReceived, versionTime=lambda path: 5000.0)
        link = FakeLink(PHONE, LAPTOP)
        sync.linkUp(link)
        self.assertEqual(link.sent[0]["policyTime"], 5000.0)
        for when, asked in ((4000.0, []), (5000.0, []), (6000.0, [POLICY])):
            link.sent.clear()
            sync.received(link, {"status": "Update_Hash", "items": {POLICY: hexHash(b"x")},
                                 "crlNumber": 0, "policyTime": when})
            self.assertEqual([p for m in link.sent for p in m["need"]], asked)

    def test_policyNotSelected(self):
        """
        A constrained device (certificates and the CRL only) does not
        announce its policy, does not ask for a peer's and does not send
        its own.
        """
        sync = PeerSync(self.clock, self.phone.tree, lambda: self.phone.identity.current,
                        self.phone.crlReceived, constrained=True)
        link = FakeLink(PHONE, LAPTOP)
        sync.linkUp(link)
        self.assertEqual(sorted(link.sent[0]["items"]), [CRL])
        link.sent.clear()
        sync.received(link, {"status": "Update_Hash", "items": {POLICY: hexHash(policy(7))},
                             "crlNumber": 0, "policyTime": 9e9})
        sync.received(link, {"status": "Update_Change", "need": [POLICY]})
        self.assertEqual(link.sent, [])

    def test_policyDeselectedMeanwhile(self):
        """
        A policy asked for before the preferences stopped selecting
        policies is refused when it comes.
        """
        asked = {"status": "Update_Hash",
                 "items": {POLICY: manifestOf("xacml", policy(7)).hash.hex()},
                 "crlNumber": 0, "policyTime": 9e9}
        self.phone.sync.received(self.link, asked)
        self.phone.tree.write("preferences.json", b'{"synchronise": {"policies": "no"}}')
        self.before = self.snapshot()
        self.phone.sync.received(self.link, {"status": "Update_Data", "path": POLICY,
                                             "data": base64.b64encode(policy(7)).decode("ascii")})
        self.assertRefused("SYNC_NOT_SELECTED")

    def test_hashMismatch(self):
        """
        Data that is not what was announced is refused.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        self.offer(path, self.deviceCert("c-watch"), itemHash="0" * 64)
        self.assertRefused("SYNC_HASH_MISMATCH")

    def test_announcedAgainMeanwhile(self):
        """
        A peer announcing again before the data came is not asked twice;
        one announcing a new version meanwhile is asked for it, and the
        old version's data (refused: not the hash announced) does not
        stop the new one's.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        first, second = self.deviceCert("c-watch"), self.deviceCert("c-watch")
        for data in (first, first, second):
            self.phone.sync.received(self.link, {"status": "Update_Hash",
                                                 "items": {path: hexHash(data)}, "crlNumber": 0})
        self.assertEqual([m["need"] for m in self.link.sent], [[path], [path]])
        for data in (first, second):
            self.phone.sync.received(self.link, {
                "status": "Update_Data", "path": path,
                "data": base64.b64encode(data).decode("ascii")})
        self.assertEqual(self.phone.sync.lastRefusal.code, "SYNC_HASH_MISMATCH")
        self.assertEqual(self.phone.tree.read(path), second)

    def test_badBase64(self):
        """
        Data that is not strict base64 is refused (a lax decoder would
        skip the stray character and take it).
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        data = self.deviceCert("c-watch")
        text = base64.b64encode(data).decode("ascii")
        self.offer(path, data, send=text[:40] + "!" + text[40:])
        self.assertRefused("SYNC_BAD_MESSAGE")

    def test_notAsked(self):
        """
        Data nobody asked for is refused, even a valid certificate; so is
        a second copy of one already taken.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        data = base64.b64encode(self.deviceCert("c-watch")).decode("ascii")
        self.phone.sync.received(self.link, {"status": "Update_Data", "path": path, "data": data})
        self.assertRefused("SYNC_NOT_ASKED")

    def test_badPaths(self):
        """
        An announcement naming anything but the peer-synced items (another
        item, a path out of the folder, a CA certificate) is refused whole:
        nothing is asked, not even the valid items beside it.
        """
        good = trustedDevicePath(f"{ZONE}/c-watch")
        for bad in ("preferences.json", "../crl.pem", "certificates/trusted-pzh/x.pem",
                    "certificates/trusted-pzp/../../crl.pem", "/etc/passwd", "", 7):
            self.link.sent.clear()
            self.phone.sync.received(self.link, {
                "status": "Update_Hash", "items": {bad: "0" * 64, good: "1" * 64} if isinstance(
                    bad, str) else [bad], "crlNumber": 0})
            self.assertEqual(self.link.sent, [])
            self.assertIn(self.phone.sync.lastRefusal.code, ("SYNC_BAD_PATH", "SYNC_BAD_MESSAGE"))
        self.assertEqual(self.snapshot(), self.before)

    def test_badFields(self):
        """
        Malformed announcements, requests and data are refused and nothing
        is sent or changed.
        """
        bad = [
            {"status": "Update_Hash", "items": {CRL: "0" * 64}},
            {"status": "Update_Hash", "items": {CRL: "0" * 64}, "crlNumber": True},
            {"status": "Update_Hash", "items": {CRL: "zz"}, "crlNumber": 3},
            {"status": "Update_Hash", "items": {POLICY: "0" * 64}, "crlNumber": 3,
             "policyTime": "later"},
            {"status": "Update_Hash", "items": {f"certificates/trusted-pzp/{i}.pem": "0" * 64
                                                for i in range(5000)}, "crlNumber": 3},
            {"status": "Update_Change", "need": "crl.pem"},
            {"status": "Update_Change", "need": ["preferences.json"]},
            {"status": "Update_Data", "path": ["x"], "data": ""},
            {"status": "Update_Other"},
        ]
        for payload in bad:
            self.phone.sync.received(self.link, payload)
        self.assertEqual(self.link.sent, [])
        self.assertEqual(self.phone.sync.refused, len(bad))
        self.assertEqual(self.snapshot(), self.before)

    def test_change(self):
        """
        A request for peer-synced items is answered with their data, one
        frame each.
        """
        self.phone.sync.received(self.link, {"status": "Update_Change", "need": [CRL, POLICY]})
        self.assertEqual([(m["status"], m["path"]) for m in self.link.sent],
                         [("Update_Data", CRL), ("Update_Data", POLICY)])
        self.assertEqual(base64.b64decode(self.link.sent[0]["data"]), pki.crlPEM(self.crl1))

    def test_oversized(self):
        """
        An item whose frame would be over the link's limit is not sent.
        """
        self.phone.tree.write(POLICY, DEFAULT_POLICY.replace(
            "Permit every request of this zone's own devices.", "x" * 3000).encode("utf-8"))
        self.link.MAX_LENGTH = 2000
        self.phone.sync.received(self.link, {"status": "Update_Change", "need": [CRL, POLICY]})
        self.assertEqual([m["path"] for m in self.link.sent], [CRL])

    def test_writeFails(self):
        """
        A failure writing an item is logged and counted (C{INTERNAL}); it
        does not reach the link.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")

        def fail(path, data):
            raise OSError(28, "No space left on device")

        self.phone.tree.write = fail
        self.offer(path, self.deviceCert("c-watch"))
        self.assertEqual(self.phone.sync.lastRefusal.code, "INTERNAL")
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertIsNone(self.phone.tree.read(path))

    def test_linkDown(self):
        """
        Once the link is down, data it had asked for is no longer taken.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        data = self.deviceCert("c-watch")
        self.phone.sync.received(self.link, {"status": "Update_Hash",
                                             "items": {path: hexHash(data)}, "crlNumber": 0})
        self.phone.sync.linkDown(LAPTOP)
        self.phone.sync.received(self.link, {
            "status": "Update_Data", "path": path, "data": base64.b64encode(data).decode("ascii")})
        self.assertEqual(self.phone.sync.lastRefusal.code, "NOT_CONNECTED")
        self.assertIsNone(self.phone.tree.read(path))


class PeerSyncedTests(SynchronousTestCase):
    def test_paths(self):
        """
        Only the CRL, trusted device certificates and the policy.
        """
        self.assertTrue(all(map(peerSynced, [CRL, POLICY, "certificates/trusted-pzp/x.pem"])))
        self.assertFalse(any(map(peerSynced, [
            "certificates/trusted-pzh/x.pem", "preferences.json", "certificates/trusted-pzp/x",
            "certificates/trusted-pzp/a/b.pem", "../crl.pem", None, 3])))


class EngineTests(_Base):
    """
    What the device's synchronisation engine makes of an item peer sync
    installed (L{tests.pz.sync.support.Zone}: a hub and devices' engines
    in memory): no loop, no conflict copy, and a peer's newer CRL never
    replaced by an older one from the hub.
    """

    def setUp(self):
        super().setUp()
        self.engineZone = Zone(self, devices=("a", "b"))
        self.a, self.b = self.engineZone.devices["a"], self.engineZone.devices["b"]
        self.hub = self.engineZone.hub
        for side in (self.hub, self.a, self.b):
            side.tree.write(CRL, pki.crlPEM(self.crl1))
            side.options["validators"] = {CRL: self.crlValidator(side)}
            side.engine = side._makeEngine()

    def crlValidator(self, side):
        """
        The device's CRL check (as L{pzp.sync.ZoneSync} makes it), against
        the CRL C{side} holds.
        """
        def check(path, data):
            pki.checkCRLUpdate(pki.loadCRL(data), self.zone.caCert,
                               pki.loadCRL(side.tree.read(CRL)), allowSame=True)
        return check

    def refusals(self):
        return [m[2]["refused"]["code"] for m in self.engineZone.messages if "refused" in m[2]]

    def test_certificateAgreed(self):
        """
        A trusted certificate b took from a peer, the hub's own copy: b's
        engine reports it, the hub holds the same, they agree; nothing is
        refused, no conflict copy, and the next sync sends nothing.
        """
        path = trustedDevicePath(f"{ZONE}/c-watch")
        pem = self.deviceCert("c-watch")
        self.hub.write(path, pem)
        self.engineZone.connect("a")
        self.engineZone.sync()
        self.b.tree.write(path, pem)
        self.engineZone.connect("b")
        self.engineZone.sync()
        self.assertEqual(self.refusals(), [])
        self.assertEqual(self.b.engine.conflicts(), [])
        self.engineZone.messages.clear()
        self.engineZone.sync()
        zone = self.engineZone
        self.assertEqual(zone.names("Update_Hash") + zone.names("Sync_Hash"), [])

    def test_newerCRLKept(self):
        """
        b took CRL 2 from a peer while the hub's synchronisation still
        offers CRL 1 (the hub signs, pushes, and writes its item at its
        next scan): the hub refuses b's copy as one-way and sends its own,
        which b's CRL check refuses; b keeps CRL 2 and the zone settles.
        Once the hub holds CRL 2 too, they agree.
        """
        crl2 = pki.crlPEM(self.buildCRL(2))
        self.engineZone.connectAll()
        self.engineZone.sync()
        self.b.tree.write(CRL, crl2)
        self.b.engine.localChange(CRL)
        self.engineZone.pump()
        self.assertEqual(self.b.read(CRL), crl2)
        self.assertEqual(self.refusals(), ["SYNC_ONE_WAY", "SYNC_BAD_ITEM"])
        self.hub.tree.write(CRL, crl2)
        self.hub.engine.localChange(CRL)
        self.engineZone.sync()
        for side in (self.hub, self.a, self.b):
            self.assertEqual(side.read(CRL), crl2)
