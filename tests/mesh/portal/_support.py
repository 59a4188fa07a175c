"""
Shared fixtures for the portal's tests: a portal over a fresh store with a
L{Clock}, and people (master keys, an administration device, a signed
personal profile naming their account) and devices to act on it.
"""

import json
from datetime import datetime, timedelta, timezone

import attrs
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from pz.mesh.builders import MasterKeys, makePersonalProfile
from pz.mesh.device import makeDeviceKeys, signedDeviceProfile
from pz.mesh.messages import accountNameFingerprint
from pz.mesh.model import ConnectionRequest, ConnectionResult
from pz.mesh.signing import sign, unverifiedPayload
from pzh.portal.resource import wellKnown
from pzh.portal.service import PortalService, PortalSettings
from pzh.portal.store import SQLitePortalStore

__all__ = ["T0", "Person", "makePerson", "makeDevice", "PortalFixture", "EPOCH",
           "ResourceTestBase", "URL"]

T0 = datetime(2016, 9, 20, 12, 0, tzinfo=timezone.utc)
EPOCH = T0.timestamp()


@attrs.define
class Device:
    """
    A device: its keys and signed profile (carrying a zone CSR).
    """

    keys: object
    name: str
    profile: object

    @property
    def udf(self) -> str:
        return self.keys.identifier


def makeDevice(name: str = "tablet", updated=T0) -> Device:
    """
    A new device called C{name}.
    """
    keys = makeDeviceKeys()
    return Device(keys, name, signedDeviceProfile(keys, name, updated))


@attrs.define
class Person:
    """
    Someone with a Mesh profile: master keys, an administration device
    listed in the personal profile, and that profile signed, naming
    C{account}.
    """

    account: str
    master: object
    admin: Device
    signedMaster: object
    personal: object
    devices: list

    @property
    def udf(self) -> str:
        return self.master.identifier

    def profileAt(self, when, devices=None, applications=(), names=None, signer=None):
        """
        A new version of the personal profile, signed.
        """
        devices = self.devices if devices is None else devices
        names = [accountNameFingerprint(self.account)] if names is None else names
        profile = makePersonalProfile(
            self.signedMaster, devices=devices, applications=applications, updated=when,
            names=names,
        )
        return sign(profile, signer or self.master.online[0])

    def request(self, device: Device, signer=None):
        """
        C{device}'s signed request to join this profile.
        """
        return sign(
            ConnectionRequest(ParentUDF=self.udf, Device=device.profile),
            signer or device.keys.signature,
        )

    def result(self, request, answer: str = "Accepted", signer=None):
        """
        An administration key's answer to C{request}.
        """
        payload = unverifiedPayload(request)
        return sign(
            ConnectionResult(ParentUDF=payload.ParentUDF, Device=payload.Device, Result=answer),
            signer or self.master.online[0],
        )


def makePerson(account: str = "alice", when=T0) -> Person:
    """
    A person whose profile authorises C{account}.
    """
    master = MasterKeys.generate(onlineKeys=1)
    admin = makeDevice("laptop", when)
    signedMaster = master.signedProfile(updated=when)
    person = Person(account, master, admin, signedMaster, None, [admin.profile])
    person.personal = person.profileAt(when)
    return person


class PortalFixture:
    """
    A portal over a store in a temporary file, its clock at L{T0}.
    """

    def __init__(self, testCase, settings=PortalSettings(), enroller=None, path=None) -> None:
        self.clock = Clock()
        self.clock.advance(EPOCH)
        self.path = path or testCase.mktemp()
        self.store = SQLitePortalStore(self.path)
        testCase.addCleanup(self.store.close)
        self.service = PortalService(self.store, self.clock, settings, enroller)

    def flush(self, stub) -> None:
        """
        Deliver what C{stub} (a L{treq.testing.StubTreq} over this portal)
        holds, and let the portal commit the batches that opened (group
        commit waits for the reactor's next turn: C{callLater(0)} on the
        clock), until nothing is left.
        """
        stub.flush()
        while any(call.getTime() <= self.clock.seconds() for call in self.clock.getDelayedCalls()):
            self.clock.advance(0)
            stub.flush()

    def later(self, seconds: float = 1.0) -> datetime:
        """
        Move the clock on; return the new time.
        """
        self.clock.advance(seconds)
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    def tables(self) -> dict:
        """
        Every row of every portal table, to compare before and after
        something that must change nothing.
        """
        db = self.store._db
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'mesh_%'")]
        return {name: sorted(db.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
                for name in names}


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


URL = "https://portal.example/.well-known/mmm/"


class ResourceTestBase(SynchronousTestCase):
    """
    A portal mounted at /.well-known/mmm/ with a 32 KiB body limit.
    """

    settings = PortalSettings()

    def setUp(self):
        self.portal = PortalFixture(self, self.settings)
        root = Resource()
        root.putChild(b".well-known", wellKnown(self.portal.service, maxBody=32768))
        self.treq = StubTreq(root)

    def post(self, body: bytes, url: str = URL, method: str = "POST"):
        """
        Send C{body}; return the response, its status payload and headers.
        """
        d = self.treq.request(method, url, data=body, allow_redirects=False,
                              headers={b"Content-Type": [b"application/json"]})
        self.portal.flush(self.treq)
        response = self.successResultOf(d)
        content = self.successResultOf(response.content())
        return response, json.loads(content)

    def assertAnswer(self, body, status, tag="MeshResponse", contains=None, **kwargs):
        """
        C{body} is answered with C{status} as both HTTP status and payload
        Status, under C{tag}, storing nothing.
        """
        before = self.portal.tables()
        response, payload = self.post(body, **kwargs)
        self.assertEqual(list(payload), [tag])
        self.assertEqual(payload[tag]["Status"], status, payload)
        self.assertEqual(response.code, status)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"), [b"application/json"])
        if contains:
            self.assertIn(contains, payload[tag]["StatusDescription"])
        if status >= 300:
            self.assertEqual(self.portal.tables(), before)
        return response, payload
