"""
The device's sync worker: uploads paced at the rate the hub reads the
device's link (a large item is never refused as a flood), and the CRL's
lifecycle rules kept on what synchronisation delivers.
"""

import json
import os

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki
from pz.bucket import COST_UNIT
from pz.errors import ZoneError
from pz.testing import MemoryHub
from pz.wire import decodeEnvelope
from pzp.seams import IIdentity, IRevocation
from pzp.sync import RATE_SHARE, PacedUpload, SyncSettings, ZoneSync
from tests.pzp._support import enrolledCredentials


class FakeLink:
    connected = True
    localId = "me"

    def __init__(self, readRate):
        self.readRate = readRate
        self.sent = []

    def sendString(self, data):
        envelope = decodeEnvelope(data)
        self.sent.append((envelope.to, envelope.payload))


def frame(size: int) -> dict:
    """
    A payload whose JSON is about C{size} bytes.
    """
    return {"status": "Update_Data", "chunks": "x" * (size - 40)}


class PacedUploadTests(SynchronousTestCase):
    def test_withinRate(self):
        """
        Frames cost one token per started 64 KiB, as the hub counts them;
        past the burst they go out at the hub's rate times the share, in
        order, and never faster.
        """
        clock = Clock()
        link = FakeLink((10.0, 20))
        send = PacedUpload(clock, link, "zone")
        payloads = [dict(frame(5 * COST_UNIT), n=i) for i in range(10)]  # 6 tokens each
        for p in payloads:
            send(p)
        burst = int(20 * RATE_SHARE)
        self.assertEqual(len(link.sent), burst // 6)
        spent = 0.0
        while len(link.sent) < len(payloads):
            clock.advance(0.05)
            spent += 0.05
            self.assertLess(spent, 60)
        self.assertEqual([p["n"] for _, p in link.sent], list(range(10)))
        self.assertEqual({to for to, _ in link.sent}, {"zone"})
        cost = sum(-(-len(json.dumps(p)) // COST_UNIT) for p in payloads)
        # What went beyond the burst took at least (cost - burst) / rate.
        self.assertGreaterEqual(spent + 0.05, (cost - 20 * RATE_SHARE) / (10.0 * RATE_SHARE))

    def test_frameOverBurst(self):
        """
        A frame costing more than the (shared) burst is not held back for
        ever: it goes once the bucket is full, as the hub takes it.
        """
        clock = Clock()
        link = FakeLink((10.0, 2))
        send = PacedUpload(clock, link, "zone")
        send(frame(5 * COST_UNIT))
        send(frame(5 * COST_UNIT))
        self.assertEqual(len(link.sent), 1)
        clock.advance(1)
        self.assertEqual(len(link.sent), 2)

    def test_noRateAnnounced(self):
        """
        A hub that announced no rate (an older one) is sent to at once.
        """
        link = FakeLink(None)
        send = PacedUpload(Clock(), link, "zone")
        for i in range(50):
            send(frame(COST_UNIT * 3))
        self.assertEqual(len(link.sent), 50)

    def test_linkGone(self):
        """
        Frames still waiting when the link closes are dropped, not sent on
        a dead link, and nothing stays scheduled.
        """
        clock = Clock()
        link = FakeLink((1.0, 1))
        send = PacedUpload(clock, link, "zone")
        for i in range(5):
            send(frame(100))
        self.assertEqual(len(link.sent), 1)
        link.connected = False
        clock.advance(10)
        self.assertEqual(len(link.sent), 1)
        self.assertEqual(clock.getDelayedCalls(), [])


@implementer(IIdentity)
@attrs.define
class _Identity:
    current: object

    def replaceIdentity(self, key, cert) -> None:
        raise AssertionError("not used")

    def replaceCRL(self, crl) -> None:
        raise AssertionError("not used")


@implementer(IRevocation)
class _Revocation:
    def crlReceived(self, crl) -> None:
        raise AssertionError("not used")

    def refusedAsRevoked(self, evidence) -> None:
        raise AssertionError("not used")

    def status(self) -> dict:
        return {}


class CRLCheckTests(SynchronousTestCase):
    """
    A C{crl.pem} from the hub's sync is kept only if the zone CA signed it
    and its number does not go back; anything else is C{SYNC_BAD_ITEM}
    (and the engine then writes nothing).
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.fixture.enrolDevice("laptop")
        self.older = self.fixture.crl
        self.fixture.revoke(self.fixture.deviceId("laptop"))
        creds = enrolledCredentials(self.fixture, "phone")
        self.sync = ZoneSync(Clock(), None, SyncSettings())
        self.sync.wire(_Identity(creds), _Revocation())

    def refused(self, data: bytes) -> str:
        error = self.assertRaises(ZoneError, self.sync._checkCRL, "crl.pem", data)
        self.assertEqual(error.code, "SYNC_BAD_ITEM")
        return error.message

    def test_currentAccepted(self):
        self.sync._checkCRL("crl.pem", pki.crlPEM(self.fixture.crl))

    def test_olderRefused(self):
        self.assertIn("below", self.refused(pki.crlPEM(self.older)))

    def test_foreignRefused(self):
        other = MemoryHub(self, user="mallory")
        self.assertIn("zone CA", self.refused(pki.crlPEM(other.crl)))

    def test_garbageRefused(self):
        self.assertIn("zone CA", self.refused(b"-----BEGIN X509 CRL-----\nnot one\n-----END X509 CRL-----\n"))


class _ZoneDir:
    def __init__(self, path: str) -> None:
        self.path = path


class VersionTimeTests(SynchronousTestCase):
    """
    L{ZoneSync.versionTime}: the time of this device's version of an item,
    what peer sync compares policies by.
    """

    def setUp(self):
        fixture = MemoryHub(self)
        creds = enrolledCredentials(fixture, "phone")
        self.clock = Clock()
        self.clock.advance(fixture.clock.seconds())
        self.sync = ZoneSync(self.clock, _ZoneDir(self.mktemp()), SyncSettings())
        self.sync.wire(_Identity(creds), _Revocation())

    def test_notStarted(self):
        """
        Before the engine runs there is no version.
        """
        self.assertIsNone(self.sync.versionTime("policies/policy.xml"))

    def test_edit(self):
        """
        An edit not scanned yet is recorded with the file's time; a missing
        item has none.
        """
        self.sync.start()
        self.addCleanup(self.sync.stop)
        tree = self.sync._tree
        tree.write("policies/policy.xml", tree.read("policies/policy.xml").replace(
            b"Permit every request of this zone's own devices.", b"Edited."))
        os.utime(tree.resolve("policies/policy.xml"), (1000, 1000))
        self.assertEqual(self.sync.versionTime("policies/policy.xml"), 1000)
        self.assertIsNone(self.sync.versionTime("context/none.json"))
