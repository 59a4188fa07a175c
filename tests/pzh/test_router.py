"""
Tests for L{pzh.router}: what the hub does with a message from an
authenticated device.
"""

import attrs
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import ZoneError
from pz.testing import RENEWAL_DUE, MemoryHub
from pz.wire import Envelope, decodeEnvelope, encodeEnvelope
from pzh.router import Router
from pzh.services import ZoneServiceCache
from pzh.store import DeviceRecord, SQLiteHubStore


ZONE = "anna@127.0.0.1"


class _Link:
    """
    A link that records what it is asked to send.
    """

    def __init__(self, name: str) -> None:
        self.deviceId = f"{ZONE}/{name}"
        self.envelopes = []
        self.messages = []
        self.frames = []

    def sendEnvelope(self, envelope) -> None:
        self.envelopes.append(envelope)

    def deliver(self, data: bytes, sender) -> None:
        self.envelopes.append(decodeEnvelope(data))
        self.frames.append((data, sender))

    def sendMessage(self, to, payload, msgId=None) -> str:
        self.messages.append((to, payload))
        return "sent"


class _Registry:
    """
    Connected links by id.
    """

    def __init__(self, *links) -> None:
        self._links = {link.deviceId: link for link in links}
        self.peerPorts = []

    def get(self, deviceId):
        return self._links.get(deviceId)

    def setPeerPort(self, link, port: int) -> None:
        self.peerPorts.append((link.deviceId, port))


class RouterTests(SynchronousTestCase):
    """
    L{Router.dispatch} forwards by C{to}, answers for the hub, and refuses
    what it cannot deliver.
    """

    def setUp(self):
        self.store = SQLiteHubStore(":memory:")
        self.addCleanup(self.store.close)
        self.phone, self.laptop = _Link("phone"), _Link("laptop")
        for name, revoked in (("phone", None), ("laptop", None), ("tablet", None),
                              ("old", 5.0)):
            self.store.putDevice(DeviceRecord(f"{ZONE}/{name}", name, 1, 0.0, 1e10,
                                              revoked=revoked))
        self.router = Router(ZONE, _Registry(self.phone, self.laptop), self.store)

    def envelope(self, to, status="message", sender="", type="prop", **payload):
        payload["status"] = status
        return Envelope(type, sender, to, "m1", payload)

    def assertRefused(self, code: str, envelope) -> None:
        """
        Dispatching C{envelope} from the phone fails with C{code} and sends
        nothing anywhere.
        """
        e = self.assertRaises(ZoneError, self.router.dispatch, self.phone, envelope)
        self.assertEqual(e.code, code)
        self.assertEqual(self.phone.envelopes + self.laptop.envelopes, [])
        self.assertEqual(self.phone.messages + self.laptop.messages, [])

    def test_forward(self):
        """
        A message to a connected device is forwarded to its link unchanged
        but for C{from}, which becomes the sender link's device id.
        """
        envelope = Envelope("JSONRPC", f"{ZONE}/laptop", f"{ZONE}/laptop", "c1",
                            {"jsonrpc": "2.0"}, f"{ZONE}/laptop")
        self.router.dispatch(self.phone, envelope)
        [forwarded] = self.laptop.envelopes
        self.assertEqual(forwarded.sender, f"{ZONE}/phone")
        self.assertEqual((forwarded.type, forwarded.to, forwarded.id, forwarded.payload,
                          forwarded.respTo),
                         ("JSONRPC", f"{ZONE}/laptop", "c1", {"jsonrpc": "2.0"},
                          f"{ZONE}/laptop"))

    def test_forwardEvenWithoutFrom(self):
        """
        A message with no C{from} at all is forwarded with the sender's id.
        """
        self.router.dispatch(self.phone, self.envelope(f"{ZONE}/laptop"))
        self.assertEqual(self.laptop.envelopes[0].sender, f"{ZONE}/phone")

    def test_ping(self):
        """
        C{ping} to the zone id or to nobody is answered with C{pong} to the
        sender, referring to the ping's id.
        """
        for to in (ZONE, ""):
            self.router.dispatch(self.phone, self.envelope(to, "ping"))
        self.assertEqual(self.phone.messages,
                         [(f"{ZONE}/phone", {"status": "pong", "ref": "m1"})] * 2)

    def test_unknownHubMessage(self):
        """
        Any other message to the hub is C{UNKNOWN_MESSAGE}, as is a service
        call without a name.
        """
        self.assertRefused("UNKNOWN_MESSAGE", self.envelope(ZONE, "pzpUpdate"))
        self.assertRefused("UNKNOWN_MESSAGE", Envelope("JSONRPC", "", ZONE, "1", {}))

    def test_unknownDestination(self):
        """
        A message to an id no device has, in this zone or another, is
        C{UNKNOWN_DESTINATION}.
        """
        for to in (f"{ZONE}/nobody", "bob@elsewhere/phone", "anna@127.0.0.1x"):
            self.assertRefused("UNKNOWN_DESTINATION", self.envelope(to))

    def test_revokedDestination(self):
        """
        A revoked device is no longer a destination.
        """
        self.assertRefused("UNKNOWN_DESTINATION", self.envelope(f"{ZONE}/old"))

    def test_offline(self):
        """
        An enrolled device that is not connected is C{DEVICE_OFFLINE}.
        """
        self.assertRefused("DEVICE_OFFLINE", self.envelope(f"{ZONE}/tablet"))

    def test_measuredAfterRewrite(self):
        """
        The size that counts is the frame's as it will be forwarded, with
        C{from} filled in: one that would exceed the limit only then is
        C{FRAME_TOO_LARGE} and nothing is sent.
        """
        envelope = self.envelope(f"{ZONE}/laptop", text="a")
        size = len(encodeEnvelope(attrs.evolve(envelope, sender=self.phone.deviceId)))
        self.router = Router(ZONE, _Registry(self.phone, self.laptop), self.store,
                             maxFrame=size - 1)
        self.assertRefused("FRAME_TOO_LARGE", envelope)
        self.router = Router(ZONE, _Registry(self.phone, self.laptop), self.store,
                             maxFrame=size)
        self.router.dispatch(self.phone, envelope)
        [(data, sender)] = self.laptop.frames
        self.assertEqual((len(data), sender), (size, self.phone))

    def test_toSelf(self):
        """
        A device may send to itself through the hub.
        """
        self.router.dispatch(self.phone, self.envelope(f"{ZONE}/phone"))
        self.assertEqual(len(self.phone.envelopes), 1)


class PeerEndpointTests(SynchronousTestCase):
    """
    C{peerEndpoint}: the port of the device's peer server, handed to the
    registry (L{pzh.registry.Registry.setPeerPort}); no answer.
    """

    def setUp(self):
        self.store = SQLiteHubStore(":memory:")
        self.addCleanup(self.store.close)
        self.phone = _Link("phone")
        self.registry = _Registry(self.phone)
        self.router = Router(ZONE, self.registry, self.store)

    def endpoint(self, **payload) -> Envelope:
        return Envelope("prop", "", ZONE, "p1", {"status": "peerEndpoint", **payload})

    def test_port(self):
        """
        A port from 0 to 65535 goes to the registry for the sender's link,
        and nothing is answered.
        """
        for port in (0, 1, 8040, 65535):
            self.router.dispatch(self.phone, self.endpoint(port=port))
        self.assertEqual(self.registry.peerPorts,
                         [(self.phone.deviceId, p) for p in (0, 1, 8040, 65535)])
        self.assertEqual(self.phone.messages + self.phone.envelopes, [])

    def test_badPort(self):
        """
        Any other port, or none, is C{BAD_REQUEST}, and the registry is not
        told.
        """
        for bad in ({}, {"port": -1}, {"port": 65536}, {"port": "8040"}, {"port": 8040.0},
                    {"port": True}, {"port": None}, {"port": [8040]}):
            e = self.assertRaises(ZoneError, self.router.dispatch, self.phone,
                                  self.endpoint(**bad))
            self.assertEqual(e.code, "BAD_REQUEST", bad)
        self.assertEqual(self.registry.peerPorts, [])
        self.assertEqual(self.phone.messages, [])


class ServicesAnnounceTests(SynchronousTestCase):
    """
    C{servicesAnnounce}: checked, then the device's entry in the zone's
    service cache.
    """

    services = [{"service": "get42", "version": "1.0", "methods": ["get42"]}]

    def setUp(self):
        self.store = SQLiteHubStore(":memory:")
        self.addCleanup(self.store.close)
        self.phone = _Link("phone")
        self.cache = ZoneServiceCache.inMemory()
        self.router = Router(ZONE, _Registry(self.phone), self.store, services=self.cache)

    def announce(self, **payload) -> Envelope:
        return Envelope("prop", "", ZONE, "s1", {"status": "servicesAnnounce", **payload})

    def test_announce(self):
        """
        The announced services become the sender's entry; nothing is
        answered.
        """
        self.router.dispatch(self.phone, self.announce(services=self.services))
        self.assertEqual(self.cache.cache(), {self.phone.deviceId: {"services": self.services}})
        self.assertEqual(self.phone.messages, [])

    def test_badAnnounce(self):
        """
        A bad announce is C{BAD_REQUEST} and leaves the cache as it was.
        """
        self.router.dispatch(self.phone, self.announce(services=self.services))
        for bad in ({}, {"services": {}}, {"services": [{"service": "x"}]},
                    {"services": [{"service": "1bad", "version": "1", "methods": []}]},
                    {"services": self.services * 2}):
            e = self.assertRaises(ZoneError, self.router.dispatch, self.phone,
                                  self.announce(**bad))
            self.assertEqual(e.code, "BAD_REQUEST", bad)
        self.assertEqual(self.cache.cache(), {self.phone.deviceId: {"services": self.services}})

    def test_withoutCache(self):
        """
        A router built without a service cache (some tests') refuses
        announces as a message it does not handle.
        """
        router = Router(ZONE, _Registry(self.phone), self.store)
        e = self.assertRaises(ZoneError, router.dispatch, self.phone,
                              self.announce(services=self.services))
        self.assertEqual(e.code, "UNKNOWN_MESSAGE")


class RenewTests(SynchronousTestCase):
    """
    The hub answers C{renew} from a registered device when it has an
    authority.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.router = self.fixture.hub.router
        self.key, self.cert = self.fixture.enrolDevice("phone")
        self.link = _Link("phone")
        self.link.deviceId = self.fixture.deviceId("phone")
        self.fixture.clock.advance(RENEWAL_DUE)

    def renew(self, csr) -> Envelope:
        return Envelope("prop", "", self.fixture.zone.zoneId, "r1",
                        {"status": "renew", "csr": csr})

    def test_renew(self):
        """
        A C{renew} with a CSR is answered with a certificate for the
        sender's id (whatever it claims) and the CRL.
        """
        key = pki.newKey()
        envelope = attrs.evolve(self.renew(pki.csrPEM(pki.makeCSR(key, "x")).decode("ascii")),
                                sender=self.fixture.deviceId("laptop"))
        self.router.dispatch(self.link, envelope)
        [(to, payload)] = self.link.messages
        self.assertEqual(to, self.fixture.deviceId("phone"))
        self.assertEqual((payload["status"], payload["ref"]), ("renewed", "r1"))
        cert = pki.loadCertificate(payload["certificate"].encode("ascii"))
        self.assertEqual(pki.identityOf(cert), self.fixture.deviceId("phone"))
        self.assertEqual(cert.public_key(), key.public_key())

    def test_badRequest(self):
        """
        A missing, non-string or non-PEM CSR is C{CERT_INVALID}.
        """
        for csr in (None, 5, "junk", "é"):
            e = self.assertRaises(ZoneError, self.router.dispatch, self.link, self.renew(csr))
            self.assertEqual(e.code, "CERT_INVALID")
        self.assertEqual(self.link.messages, [])

    def test_withoutAuthority(self):
        """
        A router without an authority does not handle C{renew}.
        """
        store = SQLiteHubStore(":memory:")
        self.addCleanup(store.close)
        router = Router(ZONE, _Registry(), store)
        e = self.assertRaises(ZoneError, router.dispatch, self.link, self.renew("x"))
        self.assertEqual(e.code, "UNKNOWN_MESSAGE")
