"""
Tests for L{pzh.protocol} and L{pzh.hub}: real TLS at both ends, in
memory, between test clients and a hub built on a temporary zone.
"""

import json
import struct
from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz import pki, tls, udf
from pz.testing import HOST, RENEWAL_DUE, ZONE, MemoryHub
from pz.tokens import tokenHash
from pzh.hub import Hub, HubSettings
from pzh.interfaces import IDeviceLinkOwner, IZoneLink
from pzh.protocol import HubFactory, HubProtocol



class _HubTestCase(SynchronousTestCase):
    """
    Gives each test a L{MemoryHub} and checks, at the end, that every
    link closes cleanly and nothing is left on the clock.
    """

    settings = HubSettings()

    def setUp(self) -> None:
        self.fixture = MemoryHub(self, self.settings)
        self.hub = self.fixture.hub
        self.addCleanup(self.fixture.close)

    def device(self, name: str):
        """
        Enrol a device called C{name} and connect it; return its link,
        with the C{registered} frame already taken.
        """
        key, cert = self.fixture.enrolDevice(name)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        link.client.take()
        return link


class WiringTests(_HubTestCase):
    """
    What a device link needs of the hub, and what the hub needs of a
    registered link, are interfaces checked when the parts are wired.
    """

    def test_interfaces(self):
        """
        The hub provides L{IDeviceLinkOwner} and a registered link
        L{IZoneLink}.
        """
        self.assertTrue(verifyObject(IDeviceLinkOwner, self.hub))
        link = self.device("phone")
        self.assertTrue(verifyObject(IZoneLink, link.server))

    def test_wrongOwner(self):
        """
        A device link made with something that is not the hub fails at
        once, as does registering something that is not a link.
        """
        self.assertRaises(TypeError, HubProtocol, self.hub.registry)
        self.assertRaises(TypeError, self.hub.registry.register, self.hub)
        self.assertEqual(len(self.hub.registry), 0)


class RegistrationTests(_HubTestCase):
    """
    A device presenting a valid certificate of the zone is registered.
    """

    def test_registered(self):
        """
        The device gets C{registered} naming the id its certificate proves
        and the zone, and the hub's registry holds its link.
        """
        key, cert = self.fixture.enrolDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        self.assertTrue(link.client.handshook)
        [frame] = link.client.received
        self.assertEqual(frame["from"], ZONE)
        self.assertEqual(frame["to"], f"{ZONE}/phone")
        self.assertEqual(
            frame["payload"],
            {"status": "registered", "device": f"{ZONE}/phone", "zone": ZONE,
             "crlNumber": pki.crlNumber(self.hub.authority.crl),
             "rate": self.hub.settings.rate, "burst": self.hub.settings.burst,
             "maxFrame": self.hub.maxFrame},
        )
        self.assertIs(self.hub.registry.get(f"{ZONE}/phone"), link.server)
        self.assertEqual(link.server.deviceId, f"{ZONE}/phone")
        self.assertEqual(link.server.address, f"{HOST}:40000")
        self.assertEqual(link.server.fingerprint, udf.key_fingerprint(key.public_key()))
        self.assertIsNone(link.client.lost)

    def test_registrationTouchesStore(self):
        """
        Registering records when and from where the device was seen, in
        the store by the time the join's pzpUpdate went out.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.fixture.connectDevice(key, cert)
        registered = self.fixture.clock.seconds()
        self.fixture.advance(self.hub.settings.coalesce)
        record = self.hub.store.getDevice(f"{ZONE}/phone")
        self.assertEqual(record.lastSeen, registered)
        self.assertEqual(record.address, f"{HOST}:40000")

    def test_connectedDevices(self):
        """
        L{Hub.connectedDevices} lists each live link with its address and
        the time of its last frame.
        """
        link = self.device("phone")
        self.fixture.advance(5)
        link.client.sendProp(ZONE, {"status": "ping"})
        self.fixture.flush()
        self.assertEqual(
            self.hub.connectedDevices(),
            {f"{ZONE}/phone": {"address": f"{HOST}:40000",
                               "last_seen": self.fixture.clock.seconds()}},
        )

    def test_connectTwiceReplacesOlderLink(self):
        """
        A device that connects again replaces its older link, which the hub
        closes; the older link's loss does not unregister the new one.
        """
        key, cert = self.fixture.enrolDevice("phone")
        first = self.fixture.connectDevice(key, cert)
        second = self.fixture.connectDevice(key, cert)
        self.assertEqual(second.client.statuses(), ["registered"])
        self.assertTrue(first.closed)
        self.assertTrue(first.server.replaced)
        self.assertIsNone(second.client.lost)
        self.assertIs(self.hub.registry.get(f"{ZONE}/phone"), second.server)
        self.assertEqual(len(self.hub.registry), 1)

    def test_hubCertificateIsNotADevice(self):
        """
        A client presenting the hub's own certificate (valid, of this zone,
        but naming the zone rather than a device) is refused with
        C{CERT_INVALID} and closed.
        """
        zone = self.fixture.zone
        link = self.fixture.connect(
            tls.pzpClientOptions(zone.caCert, zone.hubKey, zone.hubCert, HOST)
        )
        self.assertEqual(link.client.codes(), ["CERT_INVALID"])
        self.assertTrue(link.closed)
        self.assertEqual(len(self.hub.registry), 0)


class CertificateRefusalTests(_HubTestCase):
    """
    Certificates that do not prove a device of this zone get an error with
    a stable code over the encrypted link, then the link closes.
    """

    def test_foreignCA(self):
        """
        A certificate from another CA, even one with this zone's name and
        for an id of this zone, gets C{CERT_UNTRUSTED}.
        """
        key, cert = self.fixture.foreignDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        self.assertTrue(link.client.handshook)
        self.assertEqual(link.client.codes(), ["CERT_UNTRUSTED"])
        self.assertNotIn("crl", link.client.received[0]["payload"])
        self.assertTrue(link.closed)
        self.assertEqual(len(self.hub.registry), 0)

    def test_revoked(self):
        """
        A revoked certificate gets C{CERT_REVOKED} with the signed CRL,
        which lists its serial and verifies under the zone CA.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.hub.store.addRevocation(f"{ZONE}/phone", cert.serial_number,
                                     self.fixture.clock.seconds())
        self.hub.authority.publishCRL()
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.codes(), ["CERT_REVOKED"])
        crl = pki.loadCRL(link.client.received[0]["payload"]["crl"].encode("ascii"))
        self.assertTrue(pki.crlListsSerial(crl, self.fixture.zone.caCert, cert.serial_number))
        self.assertTrue(link.closed)
        self.assertEqual(len(self.hub.registry), 0)

    def test_expired(self):
        """
        A certificate past its validity (and past any grace period for
        renewal) gets C{CERT_EXPIRED}.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(timedelta(days=90 + 365).total_seconds())
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.codes(), ["CERT_EXPIRED"])
        self.assertTrue(link.closed)


class RoutingTests(_HubTestCase):
    """
    Messages from a registered device are routed by C{to}, with C{from}
    taken from its certificate.
    """

    def test_forwardedWithCertifiedSender(self):
        """
        A message to another connected device arrives with C{from}
        rewritten to the sender's certificate identity, though the sender
        claimed to be someone else; the rest is passed on unchanged.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        phone.client.take()
        phone.client.sendProp(
            f"{ZONE}/laptop", {"status": "message", "text": "hi"}, msgId="m42",
            sender=f"{ZONE}/laptop",
        )
        self.fixture.flush()
        [frame] = [f for f in laptop.client.take() if f["payload"]["status"] == "message"]
        self.assertEqual(frame["from"], f"{ZONE}/phone")
        self.assertEqual(frame["to"], f"{ZONE}/laptop")
        self.assertEqual(frame["id"], "m42")
        self.assertEqual(frame["payload"], {"status": "message", "text": "hi"})
        self.assertEqual(phone.client.take(), [])

    def test_forwardedServiceCall(self):
        """
        A C{JSONRPC} call keeps its type and C{resp_to} when forwarded.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        laptop.client.take()
        phone.client.send({
            "type": "JSONRPC", "from": "someone", "to": f"{ZONE}/laptop", "id": "c1",
            "resp_to": f"{ZONE}/phone",
            "payload": {"jsonrpc": "2.0", "method": "get42", "id": 1},
        })
        self.fixture.flush()
        [frame] = laptop.client.take()
        self.assertEqual(frame["type"], "JSONRPC")
        self.assertEqual(frame["from"], f"{ZONE}/phone")
        self.assertEqual(frame["resp_to"], f"{ZONE}/phone")

    def test_ping(self):
        """
        C{ping} to the hub, named by the zone id or left empty, is answered
        with C{pong} referring to it.
        """
        link = self.device("phone")
        self.fixture.coalesce()
        link.client.take()
        link.client.sendProp(ZONE, {"status": "ping"}, msgId="p1")
        link.client.sendProp("", {"status": "ping"}, msgId="p2")
        self.fixture.flush()
        answers = link.client.take()
        self.assertEqual([f["payload"] for f in answers],
                         [{"status": "pong", "ref": "p1"}, {"status": "pong", "ref": "p2"}])
        self.assertEqual({f["from"] for f in answers}, {ZONE})

    def test_unknownHubMessage(self):
        """
        A message to the hub that it does not handle gets C{UNKNOWN_MESSAGE}.
        """
        link = self.device("phone")
        link.client.sendProp(ZONE, {"status": "dance"}, msgId="d1")
        self.fixture.flush()
        [error] = [f for f in link.client.take() if f["payload"]["status"] == "error"]
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")
        self.assertEqual(error["payload"]["ref"], "d1")

    def test_unknownDestination(self):
        """
        A message to an id no device of the zone has gets
        C{UNKNOWN_DESTINATION} naming it, and the link stays up.
        """
        link = self.device("phone")
        link.client.sendProp(f"{ZONE}/nobody", {"status": "message"}, msgId="u1")
        self.fixture.flush()
        [error] = [f for f in link.client.take() if f["payload"]["status"] == "error"]
        self.assertEqual(error["payload"]["code"], "UNKNOWN_DESTINATION")
        self.assertEqual(error["payload"]["ref"], "u1")
        self.assertEqual(error["to"], f"{ZONE}/phone")
        self.assertIsNone(link.client.lost)

    def test_deviceOffline(self):
        """
        A message to an enrolled device that is not connected gets
        C{DEVICE_OFFLINE}.
        """
        self.fixture.enrolDevice("laptop")
        link = self.device("phone")
        link.client.sendProp(f"{ZONE}/laptop", {"status": "message"}, msgId="o1")
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["DEVICE_OFFLINE"])

    def test_routingErrorsDoNotDisconnect(self):
        """
        Undeliverable but well-formed messages are not garbage: many of
        them do not get the device dropped.
        """
        link = self.device("phone")
        for i in range(10):
            link.client.sendProp(f"{ZONE}/nobody", {"status": "message"}, msgId=str(i))
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["UNKNOWN_DESTINATION"] * 10)
        self.assertIsNone(link.client.lost)
        self.assertIs(self.hub.registry.get(f"{ZONE}/phone"), link.server)


class PzpUpdateTests(_HubTestCase):
    """
    Every join and leave sends one C{pzpUpdate} to every connected device,
    changes within the coalesce window sharing one.
    """

    def updates(self, link) -> list:
        """
        The C{pzpUpdate} payloads C{link} received since last asked.
        """
        return [f["payload"] for f in link.client.take()
                if f["payload"]["status"] == "pzpUpdate"]

    def test_joinAndLeave(self):
        """
        A joining device gets the full list; those already there hear who
        joined, and later who left.
        """
        phone = self.device("phone")
        self.fixture.coalesce()
        [first] = self.updates(phone)
        self.assertEqual([d["id"] for d in first["devices"]], [f"{ZONE}/phone"])

        laptop = self.device("laptop")
        self.fixture.coalesce()
        [toLaptop] = self.updates(laptop)
        self.assertEqual(sorted(d["id"] for d in toLaptop["devices"]),
                         [f"{ZONE}/laptop", f"{ZONE}/phone"])
        [toPhone] = self.updates(phone)
        self.assertEqual([d["id"] for d in toPhone["joined"]], [f"{ZONE}/laptop"])
        self.assertEqual(toPhone["joined"][0]["address"], laptop.server.address)
        self.assertEqual(toPhone["joined"][0]["fingerprint"], laptop.server.fingerprint)

        laptop.client.transport.loseConnection()
        self.fixture.flush()
        self.assertEqual(self.updates(phone), [])
        self.fixture.coalesce()
        [left] = self.updates(phone)
        self.assertEqual(left["left"], [f"{ZONE}/laptop"])
        self.assertEqual(left["joined"], [])

    def test_coalesced(self):
        """
        Two devices joining within the coalesce window make one update per
        device, not one per join.
        """
        phone = self.device("phone")
        laptop = self.device("laptop")
        self.fixture.coalesce()
        for link in (phone, laptop):
            [update] = self.updates(link)
            self.assertEqual(sorted(d["id"] for d in update["devices"]),
                             [f"{ZONE}/laptop", f"{ZONE}/phone"])
        self.fixture.advance(10)
        self.assertEqual(self.updates(phone) + self.updates(laptop), [])


class PeerEndpointTests(_HubTestCase):
    """
    A device's C{peerEndpoint}, over the wire: the others learn its peer
    host and port from the next C{pzpUpdate}; a bad one is refused.
    """

    def updates(self, link) -> list:
        return [f["payload"] for f in link.client.take()
                if f["payload"]["status"] == "pzpUpdate"]

    def test_othersInformed(self):
        """
        After C{peerEndpoint}, the laptop gets the phone's entry again,
        with C{peer}: the host the hub sees the phone at, and its port.
        The phone gets no answer and no update of its own entry.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        self.updates(phone), self.updates(laptop)
        phone.client.sendProp(ZONE, {"status": "peerEndpoint", "port": 8040}, msgId="p1")
        self.fixture.flush()
        self.fixture.coalesce()
        [delta] = self.updates(laptop)
        self.assertEqual(delta["left"], [])
        [entry] = delta["joined"]
        host = phone.server.address.rpartition(":")[0]
        self.assertEqual(entry, {"id": f"{ZONE}/phone", "address": phone.server.address,
                                 "fingerprint": phone.server.fingerprint,
                                 "peer": {"host": host, "port": 8040}})
        self.assertEqual(phone.client.take(), [])

    def test_badPortRefused(self):
        """
        A port out of range is C{BAD_REQUEST} naming the message, the
        phone's entry has no C{peer}, and nobody is sent an update.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        self.updates(phone), self.updates(laptop)
        phone.client.sendProp(ZONE, {"status": "peerEndpoint", "port": 70000}, msgId="p2")
        self.fixture.flush()
        self.fixture.coalesce()
        [error] = phone.client.take()
        self.assertEqual((error["payload"]["code"], error["payload"]["ref"]), ("BAD_REQUEST", "p2"))
        self.assertEqual(laptop.client.take(), [])
        self.assertEqual([e for e in self.hub.registry.snapshot() if "peer" in e], [])


class TimeoutTests(_HubTestCase):
    """
    Silent links are dropped; links that talk stay.
    """

    settings = HubSettings(idleTimeout=90.0, handshakeTimeout=30.0)

    def test_idleDeviceDropped(self):
        """
        A registered device silent for the idle timeout is dropped and
        unregistered; one that sends a frame in time stays.
        """
        link = self.device("phone")
        self.fixture.advance(80)
        link.client.sendProp(ZONE, {"status": "ping"})
        self.fixture.flush()
        self.fixture.advance(80)
        self.assertIsNone(link.client.lost)
        self.fixture.advance(11)
        self.assertTrue(link.closed)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/phone"))

    def test_silentVirginDropped(self):
        """
        A client without a certificate that never enrols is dropped after
        the handshake timeout.
        """
        link = self.fixture.connectVirgin()
        self.fixture.advance(29)
        self.assertIsNone(link.client.lost)
        self.fixture.advance(1)
        self.assertTrue(link.closed)


class FramingTests(_HubTestCase):
    """
    Oversized and malformed frames are refused and repeated garbage drops
    the link.
    """

    settings = HubSettings(maxFrame=4096)

    def test_frameTooLarge(self):
        """
        A length prefix above the limit gets C{FRAME_TOO_LARGE} and the link
        closes at once: the hub does not wait for (or keep) the body.
        """
        link = self.device("phone")
        link.client.transport.write(struct.pack(">I", 4097) + b"{")
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["FRAME_TOO_LARGE"])
        self.assertTrue(link.closed)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/phone"))

    def test_frameAtLimit(self):
        """
        A frame exactly at the limit is read.
        """
        link = self.device("phone")
        self.fixture.coalesce()
        link.client.take()
        body = b'{"type":"prop","to":"","id":"x","payload":{"status":"ping","pad":"'
        body += b"a" * (4096 - len(body) - 3) + b'"}}'
        self.assertEqual(len(body), 4096)
        link.client.sendString(body)
        self.fixture.flush()
        self.assertEqual(link.client.statuses(), ["pong"])

    def test_forwardedFrameFitsAfterRewrite(self):
        """
        A frame at the limit as its sender wrote it, which the hub would
        forward over the limit once it fills in C{from}, is refused to the
        sender with C{FRAME_TOO_LARGE}; the receiver gets nothing too large
        and keeps its link, and so does the sender.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        phone.client.take()
        laptop.client.take()
        body = (b'{"type":"prop","to":"' + f"{ZONE}/laptop".encode() +
                b'","id":"big","payload":{"status":"message","text":"')
        body += b"a" * (4096 - len(body) - 3) + b'"}}'
        self.assertEqual(len(body), 4096)
        phone.client.sendString(body)
        self.fixture.flush()
        [error] = phone.client.take()
        self.assertEqual((error["payload"]["code"], error["payload"]["ref"]),
                         ("FRAME_TOO_LARGE", "big"))
        self.assertIn("over the receiver's limit of 4096", error["payload"]["message"])
        self.assertEqual(laptop.client.take(), [])
        self.assertLessEqual(max(laptop.client.sizes), 4096)
        self.assertIsNone(phone.client.lost)
        self.assertIsNone(laptop.client.lost)

    def test_emojiForwardedAtItsSize(self):
        """
        Text of emoji sent as UTF-8 near the limit reaches the receiver
        intact and no larger: it is not re-encoded as escapes three times
        its size.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        phone.client.take()
        laptop.client.take()
        text = "\U0001F600" * 900
        body = json.dumps({"type": "prop", "to": f"{ZONE}/laptop", "id": "e1",
                           "payload": {"status": "message", "text": text}},
                          ensure_ascii=False).encode("utf-8")
        self.assertLess(len(body), 4096 - 100)
        phone.client.sendString(body)
        self.fixture.flush()
        [frame] = laptop.client.take()
        self.assertEqual(frame["payload"]["text"], text)
        self.assertLessEqual(laptop.client.sizes[-1], len(body) + 100)
        self.assertEqual(phone.client.take(), [])

    def test_frameTooLargeWhileEnrolling(self):
        """
        The limit holds before a client is authenticated too.
        """
        link = self.fixture.connectVirgin()
        link.client.transport.write(struct.pack(">I", 2**31))
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["FRAME_TOO_LARGE"])
        self.assertTrue(link.closed)

    def test_garbageDisconnects(self):
        """
        Five malformed frames get five errors, then C{TOO_MANY_ERRORS} and
        the device is dropped.
        """
        link = self.device("phone")
        for junk in (b"nope", b"[]", b"\xff\xfe", b'{"type":"prop"}', b"{}"):
            link.client.sendString(junk)
        self.fixture.flush()
        self.assertEqual(
            link.client.codes(),
            ["BAD_FRAME", "BAD_FRAME", "BAD_FRAME", "BAD_ENVELOPE", "BAD_ENVELOPE",
             "TOO_MANY_ERRORS"],
        )
        self.assertTrue(link.closed)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/phone"))

    def test_fourBadFramesTolerated(self):
        """
        Fewer bad frames than the limit only get errors.
        """
        link = self.device("phone")
        for _ in range(4):
            link.client.sendString(b"nope")
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["BAD_FRAME"] * 4)
        self.assertIsNone(link.client.lost)

    def test_nothingRoutedAfterDisconnect(self):
        """
        Frames that follow the one that got a link dropped, even in the same
        read, are not acted on.
        """
        phone, laptop = self.device("phone"), self.device("laptop")
        self.fixture.coalesce()
        laptop.client.take()
        for _ in range(5):
            phone.client.sendString(b"nope")
        phone.client.sendProp(f"{ZONE}/laptop", {"status": "message", "text": "late"})
        self.fixture.flush()
        self.assertTrue(phone.closed)
        self.assertEqual(
            [f for f in laptop.client.take() if f["payload"]["status"] == "message"], []
        )

    def test_garbageWhileEnrolling(self):
        """
        A client without a certificate that sends garbage is dropped too.
        """
        link = self.fixture.connectVirgin()
        link.client.take()
        for _ in range(5):
            link.client.sendString(b"\x00")
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["BAD_FRAME"] * 5 + ["TOO_MANY_ERRORS"])
        self.assertTrue(link.closed)


class EnrolmentTests(_HubTestCase):
    """
    A client without a certificate may only enrol.
    """

    def enrolFrame(self, token: str, key=None, msgId: str = "e1") -> dict:
        """
        The C{enrol} message a virgin device sends.
        """
        key = key or pki.newKey()
        return {
            "type": "prop", "from": "", "to": ZONE, "id": msgId,
            "payload": {
                "status": "enrol", "token": token, "name": "ignored",
                "csr": pki.csrPEM(pki.makeCSR(key, "tablet")).decode("ascii"),
            },
        }

    def attempt(self, frame: dict):
        """
        Connect without a certificate, send C{frame}, and return the link
        with the C{hello} taken.
        """
        link = self.fixture.connectVirgin()
        [hello] = link.client.take()
        self.assertEqual(hello["payload"]["status"], "hello")
        link.client.send(frame)
        self.fixture.flush()
        return link

    def test_hello(self):
        """
        The hub greets a client without a certificate with the zone id and
        the CA certificate, whose fingerprint is the zone's and under which
        the hub's TLS certificate verifies.
        """
        link = self.fixture.connectVirgin()
        [hello] = link.client.received
        self.assertEqual(hello["payload"]["zone"], ZONE)
        ca = pki.loadCertificate(hello["payload"]["ca"].encode("ascii"))
        self.assertEqual(pki.caFingerprint(ca), self.fixture.zone.caFingerprint)
        tls.verifyHubCertificate(
            link.client.transport.getPeerCertificate(), ca, HOST, self.fixture.now(),
            zoneId=ZONE,
        )
        self.assertFalse(link.server.deviceId)
        self.assertTrue(link.server.enrolling)
        self.assertEqual(len(self.hub.registry), 0)

    def test_enrol(self):
        """
        A valid token and CSR get C{enrolled} with the device's certificate,
        the CA, the CRL and the hub address; the hub records the device,
        consumes the token, and the certificate then registers the device.
        """
        code = self.hub.enrolment.newCode("tablet")
        key = pki.newKey()
        link = self.attempt(self.enrolFrame(code.token, key))
        [enrolled] = link.client.received
        payload = enrolled["payload"]
        self.assertEqual(payload["status"], "enrolled")
        self.assertEqual(payload["ref"], "e1")
        self.assertEqual(payload["device"], f"{ZONE}/tablet")
        self.assertEqual(payload["zone"], ZONE)
        self.assertEqual(payload["hub"], f"{HOST}:8000")
        self.assertEqual(payload["ca"].encode("ascii"), self.fixture.zone.caPEM)
        cert = pki.loadCertificate(payload["certificate"].encode("ascii"))
        crl = pki.loadCRL(payload["crl"].encode("ascii"))
        self.assertEqual(
            pki.verifyPeerCertificate(cert, self.fixture.zone.caCert, crl, self.fixture.now()),
            f"{ZONE}/tablet",
        )
        self.assertEqual(cert.public_key(), key.public_key())
        self.assertTrue(link.closed)
        self.assertEqual(self.hub.store.getDevice(f"{ZONE}/tablet").serial, cert.serial_number)
        self.assertIsNotNone(self.hub.store.getToken(tokenHash(code.token)).used)

        device = self.fixture.connectDevice(key, cert)
        self.assertEqual(device.client.statuses(), ["registered"])

    def test_otherMessageNeedsCertificate(self):
        """
        Any other message from a client without a certificate gets
        C{CERT_REQUIRED} and the link closes.
        """
        link = self.fixture.connectVirgin()
        link.client.take()
        link.client.sendProp(f"{ZONE}/phone", {"status": "message"}, msgId="x1")
        self.fixture.flush()
        [error] = link.client.received
        self.assertEqual(error["payload"]["code"], "CERT_REQUIRED")
        self.assertEqual(error["payload"]["ref"], "x1")
        self.assertTrue(link.closed)

    def test_pingNeedsCertificate(self):
        """
        Not even C{ping} is answered without a certificate.
        """
        link = self.fixture.connectVirgin()
        link.client.take()
        link.client.sendProp(ZONE, {"status": "ping"})
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["CERT_REQUIRED"])

    def assertRefused(self, frame: dict, code: str) -> None:
        """
        C{frame} gets C{code}, the link closes, and the store is unchanged.
        """
        before = self.fixture.storeState()
        link = self.attempt(frame)
        self.assertEqual(link.client.codes(), [code])
        self.assertTrue(link.closed)
        self.assertEqual(self.fixture.storeState(), before)

    def test_wrongToken(self):
        """
        An unknown token gets C{TOKEN_INVALID}.
        """
        self.hub.enrolment.newCode("tablet")
        self.assertRefused(self.enrolFrame("A" * 32), "TOKEN_INVALID")

    def test_missingToken(self):
        """
        An enrol message without a token, or with one that is not a string,
        gets C{TOKEN_INVALID}.
        """
        frame = self.enrolFrame("x")
        del frame["payload"]["token"]
        self.assertRefused(frame, "TOKEN_INVALID")
        frame["payload"]["token"] = ["not", "a", "string"]
        self.assertRefused(frame, "TOKEN_INVALID")

    def test_unencodableToken(self):
        """
        A token holding a lone surrogate (valid JSON, not valid Unicode)
        is refused with the frame, before anything looks at it.
        """
        before = self.fixture.storeState()
        link = self.attempt(self.enrolFrame("\ud800"))
        self.assertEqual(link.client.codes(), ["BAD_FRAME"])
        self.assertEqual(self.fixture.storeState(), before)

    def test_usedToken(self):
        """
        A token that has enrolled a device gets C{TOKEN_USED} the second
        time.
        """
        code = self.hub.enrolment.newCode("tablet")
        self.hub.enrolment.enrol(
            code.token, pki.csrPEM(pki.makeCSR(pki.newKey(), "t")).decode("ascii"), HOST
        )
        self.assertRefused(self.enrolFrame(code.token), "TOKEN_USED")

    def test_expiredToken(self):
        """
        A token past its lifetime gets C{TOKEN_EXPIRED}.
        """
        code = self.hub.enrolment.newCode("tablet")
        self.fixture.clock.advance(self.hub.settings.codeLifetime)
        self.assertRefused(self.enrolFrame(code.token), "TOKEN_EXPIRED")

    def test_badCSR(self):
        """
        A request that is not a PEM CSR gets C{CERT_INVALID} and does not
        consume the token.
        """
        code = self.hub.enrolment.newCode("tablet")
        frame = self.enrolFrame(code.token)
        frame["payload"]["csr"] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
        self.assertRefused(frame, "CERT_INVALID")
        self.assertIsNone(self.hub.store.getToken(tokenHash(code.token)).used)

    def test_rateLimited(self):
        """
        After five failures from one address, further wrong tokens from it
        get C{RATE_LIMITED} until the window has passed, but the right
        token gets through at once.
        """
        code = self.hub.enrolment.newCode("tablet")
        for i in range(5):
            link = self.attempt(self.enrolFrame(f"wrong-token-{i:04d}-xxxxxxxx"))
            self.assertEqual(link.client.codes(), ["TOKEN_INVALID"])
        self.assertRefused(self.enrolFrame("wrong-token-again-xxxxxxxx"), "RATE_LIMITED")
        link = self.attempt(self.enrolFrame(code.token))
        self.assertEqual(link.client.statuses(), ["enrolled"])
        self.fixture.clock.advance(61)
        link = self.attempt(self.enrolFrame("wrong-token-later-xxxxxxxx"))
        self.assertEqual(link.client.codes(), ["TOKEN_INVALID"])

    def test_enrolOnlyWithoutCertificate(self):
        """
        A registered device that sends C{enrol} is routed like any message
        to the hub, which does not handle it there.
        """
        link = self.device("phone")
        code = self.hub.enrolment.newCode("tablet")
        link.client.send(self.enrolFrame(code.token))
        self.fixture.flush()
        self.assertIn("UNKNOWN_MESSAGE", link.client.codes())
        self.assertIsNone(self.hub.store.getToken(tokenHash(code.token)).used)


class LifecycleTests(_HubTestCase):
    """
    Revocation and renewal as the devices see them.
    """

    def renewFrame(self, key, msgId: str = "r1") -> dict:
        """
        A C{renew} request for C{key}.
        """
        return {"type": "prop", "from": "", "to": ZONE, "id": msgId,
                "payload": {"status": "renew",
                            "csr": pki.csrPEM(pki.makeCSR(key, "x")).decode("ascii")}}

    def test_revokeConnected(self):
        """
        Revoking a connected device drops its link, pushes the new CRL to
        the others, and refuses the device when it comes back.
        """
        key, cert = self.fixture.enrolDevice("phone")
        phone = self.fixture.connectDevice(key, cert)
        laptop = self.device("laptop")
        self.fixture.coalesce()
        laptop.client.take()
        result = self.hub.revoke(f"{ZONE}/phone")
        self.assertEqual(result["serials"], [format(cert.serial_number, "x")])
        self.assertEqual(result["crl_number"], pki.crlNumber(self.hub.authority.crl))
        self.fixture.flush()
        self.assertTrue(phone.closed)
        self.assertIsNone(self.hub.registry.get(f"{ZONE}/phone"))
        [push] = [f["payload"] for f in laptop.client.take()
                  if f["payload"]["status"] == "crlUpdate"]
        crl = pki.loadCRL(push["crl"].encode("ascii"))
        self.assertTrue(pki.crlListsSerial(crl, self.fixture.zone.caCert, cert.serial_number))
        again = self.fixture.connectDevice(key, cert)
        self.assertEqual(again.client.codes(), ["CERT_REVOKED"])

    def test_refreshCRL(self):
        """
        Once the CRL has used half its life, the hub re-signs it with a
        higher number and pushes it; before that it does nothing.
        """
        before = self.hub.authority.crl
        self.hub.refreshCRL()
        self.assertIs(self.hub.authority.crl, before)
        self.fixture.clock.advance(timedelta(days=4).total_seconds())
        link = self.device("phone")
        self.fixture.coalesce()
        link.client.take()
        self.hub.refreshCRL()
        self.fixture.flush()
        [push] = link.client.take()
        self.assertEqual(push["payload"]["status"], "crlUpdate")
        crl = pki.loadCRL(push["payload"]["crl"].encode("ascii"))
        self.assertEqual(pki.crlNumber(crl), pki.crlNumber(self.hub.authority.crl))
        self.assertGreater(pki.crlNumber(crl), pki.crlNumber(before))

    def test_renewConnected(self):
        """
        A registered device may renew over its link: it gets C{renewed}
        with a new certificate for its new key and the CRL, stays
        connected, and the new certificate registers it.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(RENEWAL_DUE)
        link = self.fixture.connectDevice(key, cert)
        self.fixture.coalesce()
        link.client.take()
        key = pki.newKey()
        link.client.send(self.renewFrame(key))
        self.fixture.flush()
        [renewed] = link.client.take()
        payload = renewed["payload"]
        self.assertEqual((payload["status"], payload["ref"]), ("renewed", "r1"))
        cert = pki.loadCertificate(payload["certificate"].encode("ascii"))
        self.assertEqual(cert.public_key(), key.public_key())
        self.assertNotIn("crl", payload)
        self.assertIsNone(link.client.lost)
        self.assertEqual(self.fixture.connectDevice(key, cert).client.statuses(), ["registered"])

    def test_expiredMayRenew(self):
        """
        A device whose certificate expired within the grace period is told
        to renew, may renew, and is then closed; the new certificate works.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(timedelta(days=95).total_seconds())
        link = self.fixture.connectDevice(oldKey, oldCert)
        self.assertEqual(link.client.take()[0]["payload"],
                         {"status": "renewRequired", "device": f"{ZONE}/phone"})
        self.assertEqual(len(self.hub.registry), 0)
        key = pki.newKey()
        link.client.send(self.renewFrame(key))
        self.fixture.flush()
        [renewed] = link.client.take()
        self.assertEqual(renewed["payload"]["status"], "renewed")
        self.assertTrue(link.closed)
        cert = pki.loadCertificate(renewed["payload"]["certificate"].encode("ascii"))
        self.assertEqual(self.fixture.connectDevice(key, cert).client.statuses(), ["registered"])

    def test_expiredMayOnlyRenew(self):
        """
        Anything but C{renew} from an expired certificate gets
        C{CERT_EXPIRED} and the link closes, without routing.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(timedelta(days=95).total_seconds())
        laptop = self.device("laptop")
        self.fixture.coalesce()
        laptop.client.take()
        link = self.fixture.connectDevice(oldKey, oldCert)
        link.client.take()
        link.client.sendProp(f"{ZONE}/laptop", {"status": "message", "text": "x"})
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["CERT_EXPIRED"])
        self.assertTrue(link.closed)
        self.assertEqual(laptop.client.take(), [])

    def test_expiredBadRenewal(self):
        """
        A renewal with a bad request gets C{CERT_INVALID} and the link
        closes; the device record is unchanged.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(timedelta(days=95).total_seconds())
        link = self.fixture.connectDevice(oldKey, oldCert)
        link.client.take()
        before = self.fixture.storeState()
        link.client.sendProp(ZONE, {"status": "renew", "csr": "junk"})
        self.fixture.flush()
        self.assertEqual(link.client.codes(), ["CERT_INVALID"])
        self.assertTrue(link.closed)
        self.assertEqual(self.fixture.storeState(), before)


class HubTests(SynchronousTestCase):
    """
    L{Hub} wires its parts around one zone, store and clock.
    """

    def test_wiring(self):
        """
        The hub's settings reach its parts, and every part shares the one
        store, so a device enrolled is one the router knows.
        """
        fixture = MemoryHub(self, HubSettings(idleTimeout=7.0, handshakeTimeout=3.0,
                                               maxFrame=2048, codeLifetime=5.0))
        hub = fixture.hub
        self.assertEqual((hub.idleTimeout, hub.handshakeTimeout, hub.maxFrame),
                         (7.0, 3.0, 2048))
        self.assertEqual(hub.enrolment.codeLifetime, 5.0)
        self.assertEqual(hub.authority.certLifetime, timedelta(days=90))
        protocol = HubFactory(hub).buildProtocol(None)
        self.assertIsInstance(protocol, HubProtocol)
        self.assertEqual(protocol.MAX_LENGTH, 2048)
        self.assertEqual(protocol.localId, ZONE)

    def test_defaultSettings(self):
        """
        The defaults are the documented ones.
        """
        settings = HubSettings()
        self.assertEqual(settings.certLifetime, timedelta(days=90))
        self.assertEqual(settings.maxFrame, 1024 * 1024)
        self.assertEqual(settings.idleTimeout, 90.0)

    def test_noDevices(self):
        """
        A new hub has nobody connected.
        """
        fixture = MemoryHub(self)
        self.assertEqual(fixture.hub.connectedDevices(), {})
        self.assertEqual(len(fixture.hub.registry), 0)

    def test_restart(self):
        """
        A hub built again on the same zone and store serves the same CRL
        and knows the same devices.
        """
        fixture = MemoryHub(self)
        fixture.enrolDevice("phone")
        again = Hub(fixture.zone, fixture.store, fixture.clock)
        self.assertEqual(again.authority.crl, fixture.hub.authority.crl)
        self.assertIsNotNone(again.store.getDevice(f"{ZONE}/phone"))
