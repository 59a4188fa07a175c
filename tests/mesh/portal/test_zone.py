"""
Tests for L{pzh.portal.zone} and the Mesh route into the zone: a device an
administration device accepts gets its zone certificate with the signed
result; refused, or refused by the zone, it gets nothing.
"""

from cryptography.hazmat.primitives import serialization
from twisted.application.service import MultiService
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz import pki
from pz.errors import ZoneError
from pz.mesh.device import makeDeviceKeys
from pz.mesh.messages import (
    ConnectCompleteRequest,
    ConnectStartRequest,
    ConnectStatusRequest,
    CreateRequest,
)
from pz.mesh.signing import sign, unverifiedPayload
from pz.services import StoreService
from pz.testing import ZONE, MemoryHub
from pzh.portal.interfaces import IZoneEnroller
from pzh.portal.tap import hubPortal
from pzh.portal.zone import HubZoneEnroller
from pzh.store import DeviceRecord

from tests.mesh.portal._support import T0, Device, PortalFixture, makeDevice, makePerson

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _csr(name="tablet", key=None) -> str:
    return pki.csrPEM(pki.makeCSR(key or pki.newKey(), name)).decode("ascii")


class EnrollerTests(SynchronousTestCase):
    """
    L{HubZoneEnroller} alone.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.enroller = HubZoneEnroller(self.hub)

    def test_interface(self):
        """
        It provides L{IZoneEnroller}.
        """
        self.assertTrue(verifyObject(IZoneEnroller, self.enroller))

    def test_enrol(self):
        """
        A device is certified for the key in its request, under the zone's
        id for its name, and recorded like a paired device; what it needs to
        join is returned.
        """
        key = pki.newKey()
        issued = self.enroller.enrolFromMesh("tablet", _csr(key=key), "MUDF")
        self.assertEqual(set(issued), {"certificate", "ca", "crl", "hub", "device", "zone"})
        cert = pki.loadCertificate(issued["certificate"].encode())
        ca = pki.loadCertificate(issued["ca"].encode())
        crl = pki.loadCRL(issued["crl"].encode())
        self.assertEqual(pki.verifyPeerCertificate(cert, ca, crl, self.fixture.now()), f"{ZONE}/tablet")
        self.assertEqual(cert.public_key().public_bytes(*_SPKI), key.public_key().public_bytes(*_SPKI))
        self.assertEqual((issued["device"], issued["zone"], issued["hub"]),
                         (f"{ZONE}/tablet", ZONE, "127.0.0.1:8000"))
        record = self.hub.store.getDevice(f"{ZONE}/tablet")
        self.assertEqual((record.name, record.serial, record.revoked), ("tablet", cert.serial_number, None))

    def test_enrolEvent(self):
        """
        The hub's listeners (the admin page's event stream) hear of the
        device enrolled; of a refused one, nothing.
        """
        heard = []
        self.hub.events.subscribe(lambda kind, data: heard.append((kind, data)))
        self.enroller.enrolFromMesh("tablet", _csr(), "MUDF")
        self.assertRaises(ZoneError, self.enroller.enrolFromMesh, "tablet", _csr(), "M2")
        self.assertEqual(heard, [("device", f"{ZONE}/tablet")])

    def test_nameTaken(self):
        """
        A name an unrevoked device has is NAME_TAKEN, and nothing is issued;
        once that device is revoked the name is free again.
        """
        self.enroller.enrolFromMesh("tablet", _csr(), "M1")
        before = self.fixture.storeState()
        error = self.assertRaises(ZoneError, self.enroller.enrolFromMesh, "tablet", _csr(), "M2")
        self.assertEqual(error.code, "NAME_TAKEN")
        self.assertEqual(self.fixture.storeState(), before)
        self.hub.revoke(f"{ZONE}/tablet")
        self.enroller.enrolFromMesh("tablet", _csr(), "M3")

    def test_refusals(self):
        """
        A bad name is BAD_REQUEST; a request that is not PEM, or not for a
        P-256 key, CERT_INVALID; nothing is stored.
        """
        before = self.fixture.storeState()
        cases = [("bad name!", _csr(), "BAD_REQUEST"), ("", _csr(), "BAD_REQUEST"),
                 ("tablet", "not a csr", "CERT_INVALID")]
        from cryptography.hazmat.primitives.asymmetric import ed25519

        edKey = ed25519.Ed25519PrivateKey.generate()
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        edCSR = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])).sign(edKey, None)
        cases.append(("tablet", pki.csrPEM(edCSR).decode(), "CERT_INVALID"))
        for name, csr, code in cases:
            self.assertEqual(self.assertRaises(ZoneError, self.enroller.enrolFromMesh, name, csr, "M").code,
                             code)
        self.assertEqual(self.fixture.storeState(), before)


class MeshRouteTests(SynchronousTestCase):
    """
    The portal with the hub's enroller: ConnectStart, ConnectComplete,
    ConnectStatus.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.portal = PortalFixture(self, enroller=HubZoneEnroller(self.hub))
        self.alice = makePerson()
        response = self.portal.service.dispatch(CreateRequest(Account="alice", Profile=self.alice.personal))
        self.assertEqual(response.Status, 201)

    def start(self, device):
        request = self.alice.request(device)
        response = self.portal.service.dispatch(ConnectStartRequest(AccountID="alice", SignedRequest=request))
        return request, response

    def complete(self, request, answer="Accepted"):
        return self.portal.service.dispatch(
            ConnectCompleteRequest(AccountID="alice", Result=self.alice.result(request, answer)))

    def status(self, device):
        return self.portal.service.dispatch(ConnectStatusRequest(AccountID="alice", DeviceID=device.udf))

    def test_accepted(self):
        """
        Accepted, the device's ConnectStatus carries the signed result and
        its zone certificate, for its authentication key and its name.
        """
        device = makeDevice("tablet")
        request, response = self.start(device)
        self.assertEqual(response.Status, 201)
        self.assertEqual(self.complete(request).Status, 201)
        status = self.status(device)
        self.assertEqual(unverifiedPayload(status.Result).Result, "Accepted")
        zone = status.Zone
        self.assertEqual((zone.Device, zone.Zone, zone.Hub), (f"{ZONE}/tablet", ZONE, "127.0.0.1:8000"))
        cert = pki.loadCertificate(zone.Certificate.encode())
        key = device.keys.authentication.privateKey
        self.assertEqual(cert.public_key().public_bytes(*_SPKI), key.public_key().public_bytes(*_SPKI))
        self.assertEqual(zone.CA.encode(), self.fixture.zone.caPEM)
        self.assertIsNotNone(self.hub.store.getDevice(f"{ZONE}/tablet"))

    def test_refused(self):
        """
        Refused, the device gets no certificate and the zone has no device.
        """
        device = makeDevice("tablet")
        request, _ = self.start(device)
        self.assertEqual(self.complete(request, "Refused").Status, 201)
        self.assertIsNone(self.status(device).Zone)
        self.assertEqual(self.hub.store.listDevices(), [])

    def test_nameTaken(self):
        """
        If the zone already has a device of that name, ConnectComplete is 409,
        the portal stores nothing, the request stays pending, and the zone
        issues nothing.
        """
        self.hub.store.putDevice(DeviceRecord(f"{ZONE}/tablet", "tablet", 1, 0.0, 2e9))
        device = makeDevice("tablet")
        request, _ = self.start(device)
        before, hubBefore = self.portal.tables(), self.fixture.storeState()
        response = self.complete(request)
        self.assertEqual(response.Status, 409, response.StatusDescription)
        self.assertIn("NAME_TAKEN", response.StatusDescription)
        self.assertEqual(self.portal.tables(), before)
        self.assertEqual(self.fixture.storeState(), hubBefore)
        self.assertIsNotNone(self.portal.store.pendingRequest("alice", device.udf))

    def test_noCertificateRequest(self):
        """
        A device that asked for no zone certificate is connected without one.
        """
        keys = makeDeviceKeys()
        profile = sign(keys.profile(updated=T0, description="plain"), keys.signature)
        device = Device(keys, "plain", profile)
        request, _ = self.start(device)
        self.assertEqual(self.complete(request).Status, 201)
        self.assertIsNone(self.status(device).Zone)
        self.assertEqual(self.hub.store.listDevices(), [])

    def test_badNameRefusedEarly(self):
        """
        A device asking for a certificate with a name the zone cannot use is
        refused at ConnectStart (400), before anyone is asked to approve it.
        """
        device = makeDevice("no good")
        _, response = self.start(device)
        self.assertEqual(response.Status, 400)
        self.assertEqual(self.portal.store.countPending("alice"), 0)


class HubPortalTests(SynchronousTestCase):
    """
    L{hubPortal}: the hub's wiring.
    """

    def test_hubPortal(self):
        """
        The hub's portal keeps its log in the hub's data directory, enrols
        through the hub, reports the hub's web address, and its store is
        closed now and when the parent stops.
        """
        fixture = MemoryHub(self)
        parent = MultiService()
        portal = hubPortal(fixture.hub, fixture.clock, parent)
        self.addCleanup(portal.store.close)
        self.assertEqual(portal.store._path, fixture.zone.path("portal.db"))
        self.assertIsNone(portal.store._connection)
        self.assertIsInstance(portal._enroller, HubZoneEnroller)
        self.assertEqual(portal.settings.uri, "https://127.0.0.1:9000/.well-known/mmm/")
        [closer] = list(parent)
        self.assertIsInstance(closer, StoreService)
        portal.store.head()
        parent.startService()
        parent.stopService()
        self.assertIsNone(portal.store._connection)

    def test_meshEvents(self):
        """
        Each connection request the hub's portal stores or answers is a
        C{mesh} event on the hub's events, for the admin page.
        """
        from pz.mesh.messages import ConnectStartRequest, CreateRequest

        from tests.mesh.portal._support import makeDevice, makePerson

        fixture = MemoryHub(self)
        portal = hubPortal(fixture.hub, fixture.clock, MultiService())
        self.addCleanup(portal.store.close)
        heard = []
        fixture.hub.events.subscribe(lambda kind, data: heard.append((kind, data)))
        alice, tablet = makePerson("alice"), makeDevice("tablet")
        portal.dispatch(CreateRequest(Account="alice", Profile=alice.personal))
        portal.dispatch(ConnectStartRequest(AccountID="alice",
                                            SignedRequest=alice.request(tablet)))
        self.assertEqual(heard, [("mesh", {"id": tablet.udf, "account": "alice",
                                           "state": "pending"})])
