"""
Tests for L{pzp.hublink}: the device's end of its hub link, against a real
hub over TLS in memory and fed frames directly over a L{StringTransport}.

L{FakeProxy} (what the link needs of the proxy) is shared with the
property tests.
"""

import struct

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyClass, verifyObject

from pz import pki, tls
from pz.errors import ZoneError
from pz.testing import HOST, ZONE, MemoryHub, PeerCertTransport, frame, frames
from pzp.hublink import HubLinkProtocol, RevokedError, zoneErrorFrom
from pzp.inbox import MAX_TEXT, Inbox
from pzp.interfaces import IHubLinkOwner
from pzp.proxy import Proxy, ProxySettings
from tests.pzp._support import (
    SMALL_FRAME, FakeProxy, enrolledCredentials, flush, growCRL, prop, recordHubEnvelopes,
)


class HubLinkOverTLSTests(SynchronousTestCase):
    """
    L{HubLinkProtocol} connected to a real hub.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.pumps = []

    def link(self, name, settings=ProxySettings(), credentials=None, maxFrame=None):
        """
        Connect device C{name} (enrolled now unless C{credentials} are
        given) to the hub: its link and fake proxy.
        """
        creds = credentials or enrolledCredentials(self.fixture, name)
        proxy = FakeProxy(self.clock, creds, Inbox(self.mktemp(), self.clock), settings)
        link = HubLinkProtocol(proxy)
        if maxFrame is not None:
            link.MAX_LENGTH = maxFrame
        options = tls.pzpClientOptions(creds.caCert, creds.key, creds.cert, HOST)
        pump = self.fixture.connectProtocol(options, link).pump
        self.pumps.append(pump)
        return link, proxy

    def flush(self):
        flush(*self.pumps)

    def test_registered(self):
        """
        C{registered} fires with the link once the hub registered the
        device, which the hub's registry then lists.
        """
        link, proxy = self.link("phone")
        self.assertIs(self.successResultOf(link.registered), link)
        self.assertIsNotNone(self.fixture.hub.registry.get(f"{ZONE}/phone"))
        self.assertEqual(proxy.hubInputs.lostReasons, [])

    def test_revoked(self):
        """
        A revoked device's link fails C{registered} with the hub's
        C{CERT_REVOKED}, closes, and does not report a lost registered
        link (there never was one).
        """
        creds = enrolledCredentials(self.fixture, "phone")
        self.fixture.revoke(creds.deviceId)
        link, proxy = self.link("phone", credentials=creds)
        self.assertEqual(self.failureResultOf(link.registered, ZoneError).value.code,
                         "CERT_REVOKED")
        self.assertTrue(self.pumps[0].clientIO.disconnected)
        self.assertEqual(proxy.hubInputs.lostReasons, [])

    def test_largeCRLPushed(self):
        """
        A revocation whose CRL is larger than a connected device's frame
        limit reaches the device in pieces; the device joins them into
        the hub's CRL and stays connected.
        """
        growCRL(self.fixture)
        link, proxy = self.link("phone", maxFrame=SMALL_FRAME)
        enrolledCredentials(self.fixture, "laptop")
        self.fixture.hub.revoke(f"{ZONE}/laptop")
        self.clock.advance(0)
        self.flush()
        [crl] = proxy.crls
        self.assertEqual(pki.crlPEM(crl), self.fixture.hub.authority.crlPEM)
        self.assertFalse(self.pumps[0].clientIO.disconnected)

    def test_revokedLargeCRL(self):
        """
        A revoked device whose evidence is larger than its frame limit gets
        it in pieces ahead of C{CERT_REVOKED}, and the failure carries the
        joined CRL, which lists the device.
        """
        growCRL(self.fixture)
        creds = enrolledCredentials(self.fixture, "phone")
        self.fixture.revoke(creds.deviceId)
        link, proxy = self.link("phone", credentials=creds, maxFrame=SMALL_FRAME)
        self.flush()
        error = self.failureResultOf(link.registered, RevokedError).value
        self.assertTrue(pki.crlListsSerial(error.crl, creds.caCert, creds.cert.serial_number))

    def test_currentCRLOnConnect(self):
        """
        A device that holds an older CRL than the hub (it was away during
        a revocation) asks for the current one on connecting and gets it;
        one that holds the current CRL asks for nothing.
        """
        seen = recordHubEnvelopes(self)
        creds = enrolledCredentials(self.fixture, "phone")
        enrolledCredentials(self.fixture, "laptop")
        self.fixture.hub.revoke(f"{ZONE}/laptop")
        link, proxy = self.link("phone", credentials=creds)
        self.clock.advance(0)
        self.flush()
        [crl] = proxy.crls
        self.assertEqual(pki.crlNumber(crl), pki.crlNumber(self.fixture.hub.authority.crl))
        self.assertIn("crlRequest", seen)
        del seen[:]
        self.link("tablet")
        self.clock.advance(0)
        self.flush()
        self.assertNotIn("crlRequest", seen)

    def test_pzpUpdate(self):
        """
        The hub's C{pzpUpdate} after a join reaches the proxy.
        """
        link, proxy = self.link("phone")
        self.clock.advance(self.fixture.hub.settings.coalesce)
        self.flush()
        [update] = proxy.updates
        self.assertEqual([d["id"] for d in update["devices"]], [f"{ZONE}/phone"])

    def test_messageAndAck(self):
        """
        A request from one device to another lands in the other's inbox,
        with the sender the hub vouched for, and fires with the ack the
        other device sent back.
        """
        phone, phoneProxy = self.link("phone")
        tablet, tabletProxy = self.link("tablet")
        d = phone.request(f"{ZONE}/tablet", {"status": "message", "text": "hello"})
        self.flush()
        ack = self.successResultOf(d)
        self.assertEqual(ack["status"], "ack")
        [message] = tabletProxy.inbox.messages()
        self.assertEqual((message["from"], message["text"]), (f"{ZONE}/phone", "hello"))
        self.assertEqual(phoneProxy.inbox.messages(), [])

    def test_requestUnknownDestination(self):
        """
        A request to a device the zone does not have fails with the hub's
        C{UNKNOWN_DESTINATION}, matched by its reference.
        """
        phone, _ = self.link("phone")
        d = phone.request(f"{ZONE}/nobody", {"status": "message", "text": "hi"})
        self.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "UNKNOWN_DESTINATION")

    def test_requestOfflineDevice(self):
        """
        A request to an enrolled device that is not connected fails with
        C{DEVICE_OFFLINE}.
        """
        self.fixture.enrolDevice("tablet")
        phone, _ = self.link("phone")
        d = phone.request(f"{ZONE}/tablet", {"status": "message", "text": "hi"})
        self.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DEVICE_OFFLINE")

    def test_errorGoesToSender(self):
        """
        A device that refuses a forwarded message answers its sender, not
        the hub: the sender's request fails with that device's code.
        """
        phone, _ = self.link("phone")
        tablet, tabletProxy = self.link("tablet")
        d = phone.request(f"{ZONE}/tablet", {"status": "message"})
        self.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "BAD_ENVELOPE")
        self.assertEqual(tabletProxy.inbox.messages(), [])

    def test_keepalive(self):
        """
        The device pings every C{keepalive} seconds and the hub's pongs keep
        both ends up well past three silent periods.
        """
        settings = ProxySettings(keepalive=30)
        link, proxy = self.link("phone", settings)
        server = self.fixture.hub.registry.get(f"{ZONE}/phone")
        for _ in range(10):
            self.clock.advance(30)
            self.flush()
            self.assertEqual(server.lastSeen, self.clock.seconds())
        self.assertFalse(self.pumps[0].clientIO.disconnected)
        self.assertIs(self.fixture.hub.registry.get(f"{ZONE}/phone"), server)
        self.assertEqual(proxy.hubInputs.lostReasons, [])

    def test_lostAfterRegistration(self):
        """
        When the hub closes a registered link, the proxy is told once.
        """
        link, proxy = self.link("phone")
        self.fixture.hub.registry.get(f"{ZONE}/phone").transport.loseConnection()
        self.flush()
        self.assertEqual(len(proxy.hubInputs.lostReasons), 1)


class HubLinkProtocolTests(SynchronousTestCase):
    """
    L{HubLinkProtocol} fed frames directly.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.creds = enrolledCredentials(self.fixture, "phone")
        self.settings = ProxySettings(keepalive=10, requestTimeout=5)
        self.proxy = FakeProxy(self.clock, self.creds, Inbox(self.mktemp(), self.clock),
                               self.settings)
        self.link = HubLinkProtocol(self.proxy)
        self.transport = PeerCertTransport(self.fixture.zone.hubCert)
        self.link.makeConnection(self.transport)
        self.link.handshakeCompleted()

    def receive(self, payload, sender=ZONE, msgId="m1"):
        self.link.dataReceived(frame(prop(payload, to=self.creds.deviceId, sender=sender,
                                          msgId=msgId)))

    def register(self):
        self.receive({"status": "registered", "device": self.creds.deviceId, "zone": ZONE})
        self.successResultOf(self.link.registered)

    def sent(self) -> list:
        out = frames(self.transport.value())
        self.transport.clear()
        return out

    def lose(self, reason=ConnectionDone):
        self.link.connectionLost(Failure(reason()))

    def assertNoTimers(self):
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_registered(self):
        """
        The hub's C{registered} fires C{registered} with the link.
        """
        self.assertNoResult(self.link.registered)
        self.register()
        self.assertEqual(self.sent(), [])

    def test_errorBeforeRegistration(self):
        """
        An error before registration fails C{registered} with its code and
        closes the link; the proxy is not told of a lost registered link.
        """
        self.receive({"status": "error", "code": "CERT_REVOKED", "message": "revoked"})
        failure = self.failureResultOf(self.link.registered, ZoneError)
        self.assertEqual(failure.value.code, "CERT_REVOKED")
        self.assertTrue(self.transport.disconnecting)
        self.lose()
        self.assertEqual(self.proxy.hubInputs.lostReasons, [])
        self.assertNoTimers()

    def test_unknownErrorCodeBeforeRegistration(self):
        """
        An error code this version does not know (or that is not a string)
        fails C{registered} with C{INTERNAL}.
        """
        self.receive({"status": "error", "code": {"odd": 1}})
        self.assertEqual(self.failureResultOf(self.link.registered, ZoneError).value.code,
                         "INTERNAL")

    def test_revokedWithEvidence(self):
        """
        C{CERT_REVOKED} before registration fails C{registered} with a
        L{RevokedError} carrying the CRL the hub sent as evidence (or
        C{None} when what came is not a CRL); nothing else is decided here.
        """
        crlPEM = self.fixture.hub.authority.crlPEM.decode("ascii")
        self.receive({"status": "error", "code": "CERT_REVOKED", "crl": crlPEM})
        error = self.failureResultOf(self.link.registered, RevokedError).value
        self.assertEqual(error.code, "CERT_REVOKED")
        self.assertEqual(pki.crlPEM(error.crl).decode("ascii"), crlPEM)
        self.assertTrue(self.transport.disconnecting)

        self.setUp()
        self.receive({"status": "error", "code": "CERT_REVOKED", "crl": "forged"})
        self.assertIsNone(self.failureResultOf(self.link.registered, RevokedError).value.crl)

    def test_renewRequired(self):
        """
        A hub that admits the link only to renew an expired certificate
        gets the proxy's renewal; once it is done the link closes, failing
        C{registered} with C{CERT_EXPIRED} so the next connection uses the
        new certificate.
        """
        self.receive({"status": "renewRequired"})
        [(link, d)] = self.proxy.renewals
        self.assertIs(link, self.link)
        self.assertNoResult(self.link.registered)
        d.callback(None)
        self.assertEqual(self.failureResultOf(self.link.registered, ZoneError).value.code,
                         "CERT_EXPIRED")
        self.assertTrue(self.transport.disconnecting)

    def test_otherMessageBeforeRegistration(self):
        """
        Anything but C{registered} or an error before registration is
        refused with C{UNKNOWN_MESSAGE} and changes nothing.
        """
        self.receive({"status": "message", "text": "early"})
        [error] = self.sent()
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")
        self.assertNoResult(self.link.registered)
        self.assertEqual(self.proxy.inbox.messages(), [])

    def test_lostBeforeRegistration(self):
        """
        A hang-up before registration fails C{registered} with
        C{NOT_CONNECTED}; the proxy is not told of a lost link.
        """
        self.lose()
        self.assertEqual(self.failureResultOf(self.link.registered, ZoneError).value.code,
                         "NOT_CONNECTED")
        self.assertEqual(self.proxy.hubInputs.lostReasons, [])
        self.assertNoTimers()

    def test_wrongHubCertificate(self):
        """
        A peer whose certificate is not the zone's hub (a device's, or
        none) is refused with C{HUB_UNTRUSTED}.
        """
        for cert in (self.creds.cert, None):
            self.setUp()
            self.transport.peerCert = cert
            self.link.handshakeCompleted()
            self.assertEqual(self.failureResultOf(self.link.registered, ZoneError).value.code,
                             "HUB_UNTRUSTED")
            self.assertTrue(self.transport.disconnecting)

    def test_messageToInbox(self):
        """
        A message goes to the inbox with its sender, and an ack naming it
        goes back to that sender.
        """
        self.register()
        sender = f"{ZONE}/tablet"
        self.receive({"status": "message", "text": "hi"}, sender=sender, msgId="abc")
        [entry] = self.proxy.inbox.messages()
        self.assertEqual((entry["from"], entry["text"]), (sender, "hi"))
        [ack] = self.sent()
        self.assertEqual(ack["to"], sender)
        self.assertEqual(ack["from"], self.creds.deviceId)
        self.assertEqual(ack["payload"], {"status": "ack", "ref": "abc"})

    def test_badMessageAnsweredToSender(self):
        """
        A forwarded message without a valid text is refused with
        C{BAD_ENVELOPE}, addressed to its sender and naming it; the inbox
        is untouched.
        """
        self.register()
        sender = f"{ZONE}/tablet"
        for text in (5, None, "x" * (MAX_TEXT + 1)):
            payload = {"status": "message"}
            if text is not None:
                payload["text"] = text
            self.receive(payload, sender=sender, msgId="bad")
            [error] = self.sent()
            self.assertEqual(error["to"], sender)
            self.assertEqual(error["payload"]["code"], "BAD_ENVELOPE")
            self.assertEqual(error["payload"]["ref"], "bad")
        self.assertEqual(self.proxy.inbox.messages(), [])

    def test_oversizedFrameOneLine(self):
        """
        A frame over the limit whose body keeps arriving in hundreds of
        reads is refused, and logged, once; the link closes.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.register()
        self.link.dataReceived(struct.pack(">I", 1048599))
        for _ in range(512):
            self.link.dataReceived(b"x" * 2048)
        self.assertEqual([f["payload"]["code"] for f in self.sent()], ["FRAME_TOO_LARGE"])
        self.assertEqual(len([e for e in events if "refused" in (e.get("log_format") or "")]), 1)
        self.assertTrue(self.transport.disconnecting)
        self.lose()

    def test_hubErrorsLogBounded(self):
        """
        A flood of errors from the hub that answer nothing pending is
        logged a few lines at a time, not one line each.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.register()
        for i in range(500):
            self.receive({"status": "error", "code": "RATE_LIMITED", "message": "slow down",
                          "ref": f"gone{i}"})
        self.assertLessEqual(
            len([e for e in events if "hub reported" in (e.get("log_format") or "")]), 10)

    def test_errorWithoutSenderGoesToHub(self):
        """
        An unknown message with no C{from} is answered to the hub.
        """
        self.register()
        self.receive({"status": "frobnicate"}, sender="")
        [error] = self.sent()
        self.assertEqual(error["to"], ZONE)
        self.assertEqual(error["payload"]["code"], "UNKNOWN_MESSAGE")

    def test_pzpUpdate(self):
        """
        A C{pzpUpdate} with device lists is handed to the proxy; one
        without is refused with C{BAD_ENVELOPE}.
        """
        self.register()
        update = {"status": "pzpUpdate", "joined": [{"id": f"{ZONE}/tablet"}], "left": []}
        self.receive(update)
        self.assertEqual(self.proxy.updates, [update])
        for bad in ({"status": "pzpUpdate"}, {"status": "pzpUpdate", "devices": "all"},
                    {"status": "pzpUpdate", "joined": [], "left": None}):
            self.receive(bad)
            [error] = self.sent()
            self.assertEqual(error["payload"]["code"], "BAD_ENVELOPE")
        self.assertEqual(len(self.proxy.updates), 1)

    def test_crlUpdate(self):
        """
        A pushed CRL goes to the proxy (which checks and keeps it); a
        C{crlUpdate} without a readable CRL is refused with C{CRL_INVALID}.
        """
        self.register()
        crlPEM = self.fixture.hub.authority.crlPEM.decode("ascii")
        self.receive({"status": "crlUpdate", "crl": crlPEM})
        [crl] = self.proxy.crls
        self.assertEqual(pki.crlPEM(crl).decode("ascii"), crlPEM)
        for bad in ("not a crl", None, 5):
            self.receive({"status": "crlUpdate", "crl": bad})
            [error] = self.sent()
            self.assertEqual(error["payload"]["code"], "CRL_INVALID")
        self.assertEqual(len(self.proxy.crls), 1)

    def test_requestAck(self):
        """
        C{request} sends the payload to the device and fires with the ack
        that names it; the timer is cancelled.
        """
        self.register()
        d = self.link.request(f"{ZONE}/tablet", {"status": "message", "text": "hi"})
        [sent] = self.sent()
        self.assertEqual((sent["to"], sent["payload"]["text"]), (f"{ZONE}/tablet", "hi"))
        self.assertNoResult(d)
        self.receive({"status": "ack", "ref": sent["id"]}, sender=f"{ZONE}/tablet")
        self.assertEqual(self.successResultOf(d), {"status": "ack", "ref": sent["id"]})
        self.lose()
        self.assertNoTimers()

    def test_requestError(self):
        """
        An error with the request's reference fails it with that code; an
        error or ack naming nothing pending is ignored.
        """
        self.register()
        d = self.link.request(f"{ZONE}/tablet", {"status": "message", "text": "hi"})
        [sent] = self.sent()
        self.receive({"status": "ack", "ref": "other"})
        self.receive({"status": "error", "code": "DEVICE_OFFLINE", "ref": "other"})
        self.assertNoResult(d)
        self.receive({"status": "error", "code": "DEVICE_OFFLINE", "ref": sent["id"]})
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DEVICE_OFFLINE")
        self.assertEqual(self.sent(), [])

    def test_requestErrorOddCode(self):
        """
        An error for a pending request whose code is not a known string
        fails it with C{INTERNAL}.
        """
        self.register()
        d = self.link.request(f"{ZONE}/tablet", {"status": "message", "text": "hi"})
        [sent] = self.sent()
        self.receive({"status": "error", "code": [1, 2], "ref": sent["id"]})
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "INTERNAL")

    def test_requestTimeout(self):
        """
        A request unanswered for C{requestTimeout} seconds fails with
        C{TIMEOUT}; a late ack is then ignored.
        """
        self.register()
        d = self.link.request(f"{ZONE}/tablet", {"status": "message", "text": "hi"})
        [sent] = self.sent()
        self.clock.advance(self.settings.requestTimeout - 0.1)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "TIMEOUT")
        self.receive({"status": "ack", "ref": sent["id"]})
        self.assertEqual(self.sent(), [])

    def test_pendingFailOnLoss(self):
        """
        Requests still pending when the link closes fail with
        C{NOT_CONNECTED}, their timers stop, and the proxy is told of the
        loss once, with the reason.
        """
        self.register()
        first = self.link.request(f"{ZONE}/tablet", {"status": "message", "text": "1"})
        second = self.link.request(f"{ZONE}/tv", {"status": "message", "text": "2"})
        self.link.connectionLost(Failure(ConnectionLost("gone")))
        for d in (first, second):
            self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")
        [reason] = self.proxy.hubInputs.lostReasons
        reason.trap(ConnectionLost)
        self.assertNoTimers()

    def test_pings(self):
        """
        Once registered, the link pings the hub every C{keepalive}
        seconds, and not before registration.
        """
        self.clock.advance(self.settings.keepalive)
        self.assertEqual(self.sent(), [])
        self.register()
        self.clock.advance(self.settings.keepalive - 0.1)
        self.assertEqual(self.sent(), [])
        self.clock.advance(0.1)
        [ping] = self.sent()
        self.assertEqual((ping["to"], ping["payload"]), (ZONE, {"status": "ping"}))
        self.clock.advance(self.settings.keepalive)
        self.assertEqual(len(self.sent()), 1)

    def test_silentHubDropped(self):
        """
        A hub silent for three keepalive periods is dropped (aborted); the
        loss then reaches the proxy and leaves no timer behind.
        """
        self.register()
        self.clock.advance(3 * self.settings.keepalive - 0.1)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.disconnected)
        self.lose(ConnectionLost)
        self.assertEqual(len(self.proxy.hubInputs.lostReasons), 1)
        self.assertNoTimers()

    def test_pongKeepsLinkUp(self):
        """
        Any frame from the hub (a pong) restarts the silence count.
        """
        self.register()
        self.clock.advance(2.5 * self.settings.keepalive)
        self.receive({"status": "pong", "ref": "x"})
        self.clock.advance(2.5 * self.settings.keepalive)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.5 * self.settings.keepalive)
        self.assertTrue(self.transport.disconnecting)

    def test_silentBeforeRegistration(self):
        """
        A hub that never registers the device is dropped after three
        keepalive periods too, and C{registered} fails.
        """
        self.clock.advance(3 * self.settings.keepalive)
        self.assertTrue(self.transport.disconnected)
        self.lose(ConnectionLost)
        self.assertEqual(self.failureResultOf(self.link.registered, ZoneError).value.code,
                         "NOT_CONNECTED")
        self.assertEqual(self.proxy.hubInputs.lostReasons, [])
        self.assertNoTimers()


class ZoneErrorFromTests(SynchronousTestCase):
    """
    Tests for L{zoneErrorFrom}.
    """

    def test_known(self):
        """
        A known code keeps its code and message.
        """
        error = zoneErrorFrom({"status": "error", "code": "TIMEOUT", "message": "slow"})
        self.assertEqual((error.code, error.message), ("TIMEOUT", "slow"))

    def test_unknown(self):
        """
        An unknown, missing or non-string code becomes C{INTERNAL}, naming
        what came.
        """
        for code in ("FUTURE_CODE", None, ["L"], {"d": 1}, 3):
            error = zoneErrorFrom({"code": code, "message": "m"})
            self.assertEqual(error.code, "INTERNAL")
        self.assertIn("FUTURE_CODE", zoneErrorFrom({"code": "FUTURE_CODE"}).message)


class _Guarded(HubLinkProtocol):
    """
    A hub link whose policy hook records every message it is asked about
    and refuses the ones in C{refused}.
    """

    refused = frozenset({"message"})

    def __init__(self, proxy) -> None:
        super().__init__(proxy)
        self.asked = []

    def permitted(self, name, envelope):
        self.asked.append(name)
        if name in self.refused:
            raise ZoneError("NOT_AUTHORISED", f"{envelope.sender} may not send {name} here")


class HubLinkWiringTests(SynchronousTestCase):
    """
    What the hub link needs of its owner is L{IHubLinkOwner}, checked when
    the link is made; every message of a registered link passes its one
    hook first.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        self.pumps = []

    def test_ownerInterface(self):
        """
        The proxy and the test double both provide L{IHubLinkOwner}; a link
        given anything else fails when it is made.
        """
        creds = enrolledCredentials(self.fixture, "phone")
        proxy = FakeProxy(self.clock, creds, Inbox(self.mktemp(), self.clock))
        self.assertTrue(verifyObject(IHubLinkOwner, proxy))
        self.assertTrue(verifyClass(IHubLinkOwner, Proxy))
        self.assertRaises(TypeError, HubLinkProtocol, creds)

    def connectGuarded(self, name):
        creds = enrolledCredentials(self.fixture, name)
        proxy = FakeProxy(self.clock, creds, Inbox(self.mktemp(), self.clock))
        link = _Guarded(proxy)
        options = tls.pzpClientOptions(creds.caCert, creds.key, creds.cert, HOST)
        self.pumps.append(self.fixture.connectProtocol(options, link).pump)
        return link, proxy

    def test_hookBeforeEveryHandler(self):
        """
        The hook sees each message a registered link handles before its
        handler runs, and its refusal stops the message: the sender's
        request fails with the hook's code and nothing reaches the inbox.
        """
        tablet, tabletProxy = self.connectGuarded("tablet")
        creds = enrolledCredentials(self.fixture, "phone")
        phoneProxy = FakeProxy(self.clock, creds, Inbox(self.mktemp(), self.clock))
        phone = HubLinkProtocol(phoneProxy)
        options = tls.pzpClientOptions(creds.caCert, creds.key, creds.cert, HOST)
        self.pumps.append(self.fixture.connectProtocol(options, phone).pump)
        self.clock.advance(self.fixture.hub.settings.coalesce)
        flush(*self.pumps)
        d = phone.request(f"{ZONE}/tablet", {"status": "message", "text": "hello"})
        flush(*self.pumps)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_AUTHORISED")
        self.assertEqual(tabletProxy.inbox.messages(), [])
        self.assertTrue(tabletProxy.updates)
        self.assertEqual(tablet.asked, ["pzpUpdate"] * len(tabletProxy.updates) + ["message"])
