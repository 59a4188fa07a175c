"""
Tests for L{pzp.peerlink}: two devices' ends of a peer link over real TLS
in memory (L{pz.testing}'s loopback helpers), and one end fed frames
directly over a L{StringTransport}.
"""

from twisted.internet.defer import CancelledError
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pz import tls, udf
from pz.errors import ZoneError
from pz.testing import PeerCertTransport, frame, frames, prop
from pz.testing.loopback import address, connectPair, tlsFactory
from pz.zoneservice import ServiceRegistry
from pzp.calls import CallWorker
from pzp.inbox import Inbox
from pzp.peerlink import IPeerLinkOwner, PeerLinkProtocol
from tests.pz.test_tls import ZONE, _zones


class Credentials:
    def __init__(self, deviceId, key, cert, caCert) -> None:
        self.deviceId, self.zoneId = deviceId, ZONE
        self.key, self.cert, self.caCert = key, cert, caCert
        self.crl = None


@implementer(IPeerLinkOwner)
class Owner:
    """
    Records what a peer link tells its owner.
    """

    def __init__(self, clock, credentials, inbox) -> None:
        self.clock = clock
        self.credentials = credentials
        self.inbox = inbox
        self.calls = CallWorker(ServiceRegistry(), clock)
        self.keepalive = 30.0
        self.lost = []
        self.announced = []
        self.peerSync = []
        self.friends = set()

    def peerSyncReceived(self, link, payload) -> None:
        self.peerSync.append((link, payload))

    def peerLinkLost(self, link, reason) -> None:
        self.lost.append((link, reason))

    def peerServices(self, link, payload) -> None:
        self.announced.append((link, payload))

    def friendTrusted(self, zoneId) -> bool:
        return zoneId in self.friends

    exchangeTimeout = 10.0

    def redeemExchange(self, token, source) -> None:
        raise ZoneError("TOKEN_INVALID")


class PeerLinkTests(SynchronousTestCase):
    """
    Tests for L{PeerLinkProtocol}.
    """

    def setUp(self):
        self.clock = Clock()
        zone, _ = _zones()
        self.zone = zone
        self.laptop = self.owner("laptop")
        self.tablet = self.owner("tablet")

    def owner(self, name):
        key, cert = self.zone.device(name)
        creds = Credentials(f"{ZONE}/{name}", key, cert, self.zone.caCert)
        return Owner(self.clock, creds, Inbox(self.mktemp(), self.clock))

    def connect(self, dialler, server, expected, flush=True):
        """
        C{dialler} dials C{server}'s peer server expecting device
        C{expected}: both ends' links, handshake done (if C{flush}).
        """
        d, s = dialler.credentials, server.credentials
        client = PeerLinkProtocol(dialler, True, expected)
        accepted = PeerLinkProtocol(server, False)
        pair = connectPair(
            tlsFactory(tls.peerServerOptions(s.caCert, s.key, s.cert, None), False,
                       Factory.forProtocol(lambda: accepted), self.clock),
            tlsFactory(tls.peerClientOptions(d.caCert, d.key, d.cert,
                                             udf.key_fingerprint(s.cert.public_key())),
                       True, Factory.forProtocol(lambda: client), self.clock),
            self.clock, address("127.0.0.1", 8040), address("127.0.0.1", 50000))
        if flush:
            pair.flush()
        return client, accepted, pair

    def test_ownerInterface(self):
        """
        The test's owner provides what the link asks for.
        """
        verifyObject(IPeerLinkOwner, self.laptop)

    def test_readyBothEnds(self):
        """
        Both ends learn which device they reached; a message sent over the
        link lands in the other device's inbox and its C{ack} answers the
        request.
        """
        client, accepted, pair = self.connect(self.laptop, self.tablet, f"{ZONE}/tablet")
        self.assertIs(self.successResultOf(client.ready), client)
        self.assertIs(self.successResultOf(accepted.ready), accepted)
        self.assertEqual((client.peerId, accepted.peerId), (f"{ZONE}/tablet", f"{ZONE}/laptop"))
        self.assertEqual((client.outgoing, accepted.outgoing), (True, False))
        d = client.request(f"{ZONE}/tablet", {"status": "message", "text": "hello"})
        pair.flush()
        self.assertEqual(self.successResultOf(d)["status"], "ack")
        [message] = self.tablet.inbox.messages()
        self.assertEqual((message["from"], message["text"]), (f"{ZONE}/laptop", "hello"))

    def test_wrongDevice(self):
        """
        An outgoing link that reaches a device other than the one dialled
        fails C{ready} and closes, without reporting a loss.
        """
        client, accepted, pair = self.connect(self.laptop, self.tablet, f"{ZONE}/watch")
        self.assertEqual(self.failureResultOf(client.ready, ZoneError).value.code,
                         "CERT_UNTRUSTED")
        self.assertTrue(pair.pump.clientIO.disconnected)
        self.assertEqual(self.laptop.lost, [])

    def test_lostAfterReady(self):
        """
        A ready link's close is reported to its owner; a request waiting
        fails C{NOT_CONNECTED}.
        """
        client, accepted, pair = self.connect(self.laptop, self.tablet, f"{ZONE}/tablet")
        d = client.request(f"{ZONE}/tablet", {"status": "message", "text": "hello"})
        client.transport.loseConnection()
        pair.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")
        self.assertEqual([link for link, _ in self.laptop.lost], [client])
        self.assertEqual([link for link, _ in self.tablet.lost], [accepted])

    def test_cancelReady(self):
        """
        Cancelling C{ready} (a dial given up) during the handshake closes
        the link, and no loss is reported.
        """
        client, accepted, pair = self.connect(self.laptop, self.tablet, f"{ZONE}/tablet",
                                              flush=False)
        client.ready.cancel()
        self.failureResultOf(client.ready, CancelledError)
        pair.flush()
        self.assertTrue(pair.pump.clientIO.disconnected)
        self.assertEqual(self.failureResultOf(accepted.ready, ZoneError).value.code,
                         "NOT_CONNECTED")
        self.assertEqual((self.laptop.lost, self.tablet.lost), ([], []))

    def test_lostBeforeReady(self):
        """
        A link that closes before its handshake fails C{ready} and reports
        no loss.
        """
        link = PeerLinkProtocol(self.tablet, False)
        link.makeConnection(PeerCertTransport())
        link.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.failureResultOf(link.ready, ZoneError).value.code, "NOT_CONNECTED")
        self.assertEqual(self.tablet.lost, [])


class PeerLinkFramesTests(SynchronousTestCase):
    """
    A ready peer link fed frames directly: it takes messages from its peer
    for this device only.
    """

    def setUp(self):
        self.clock = Clock()
        zone, _ = _zones()
        key, cert = zone.device("tablet")
        _, self.laptopCert = zone.device("laptop")
        creds = Credentials(f"{ZONE}/tablet", key, cert, zone.caCert)
        self.owner = Owner(self.clock, creds, Inbox(self.mktemp(), self.clock))
        self.link = PeerLinkProtocol(self.owner, False)
        self.transport = PeerCertTransport(self.laptopCert)
        self.link.makeConnection(self.transport)
        self.link.handshakeCompleted()

    def send(self, envelope):
        self.transport.clear()
        self.link.dataReceived(frame(envelope))
        return frames(self.transport.value())

    def assertRefused(self, envelope, code):
        [answer] = self.send(envelope)
        self.assertEqual((answer["payload"]["status"], answer["payload"]["code"]), ("error", code))
        self.assertEqual(self.owner.inbox.messages(), [])

    def test_meshAnswerRefused(self):
        """
        A peer asking this device to answer a Mesh connection request is
        refused C{NOT_AUTHORISED}: only the hub may ask.
        """
        [answer] = self.send(prop({"status": "meshAnswer", "account": "alice",
                                   "request": "MABCD-EFGHI", "answer": "Accepted"},
                                  f"{ZONE}/tablet", f"{ZONE}/laptop", "q1"))
        self.assertEqual((answer["payload"]["status"], answer["payload"]["code"],
                          answer["payload"]["ref"]), ("error", "NOT_AUTHORISED", "q1"))
        self.assertIn("only the hub", answer["payload"]["message"])

    def test_message(self):
        """
        A message from the peer to this device is taken and acknowledged.
        """
        [ack] = self.send(prop({"status": "message", "text": "hi"}, f"{ZONE}/tablet",
                               f"{ZONE}/laptop"))
        self.assertEqual((ack["payload"]["status"], ack["to"]), ("ack", f"{ZONE}/laptop"))
        self.assertEqual(len(self.owner.inbox.messages()), 1)

    def test_errorNotAnswered(self):
        """
        An error from the peer is not answered (an error about an error
        would bounce between the devices for ever).
        """
        error = {"status": "error", "code": "BAD_REQUEST", "message": "no"}
        self.assertEqual(self.send(prop(error, f"{ZONE}/tablet", f"{ZONE}/laptop")), [])
        self.assertEqual(self.send(prop(dict(error, ref="nothing"), f"{ZONE}/tablet",
                                        f"{ZONE}/laptop")), [])

    def test_errorFailsRequest(self):
        """
        An error naming a request fails it with its code.
        """
        d = self.link.request(f"{ZONE}/laptop", {"status": "message", "text": "hi"})
        [sent] = frames(self.transport.value())
        self.send(prop({"status": "error", "code": "BAD_REQUEST", "message": "no",
                        "ref": sent["id"]}, f"{ZONE}/tablet", f"{ZONE}/laptop"))
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "BAD_REQUEST")

    def test_peerSync(self):
        """
        The three C{Update_*} messages go to the owner's
        C{peerSyncReceived} with their link, unanswered: the peer-sync
        worker checks them.
        """
        for name in ("Update_Hash", "Update_Change", "Update_Data"):
            payload = {"status": name, "anything": 1}
            self.assertEqual(self.send(prop(payload, f"{ZONE}/tablet", f"{ZONE}/laptop")), [])
            self.assertEqual(self.owner.peerSync[-1], (self.link, payload))
        self.assertEqual(len(self.owner.peerSync), 3)

    def test_spoofedSender(self):
        """
        A message claiming another sender is refused C{NOT_AUTHORISED}.
        """
        self.assertRefused(prop({"status": "message", "text": "hi"}, f"{ZONE}/tablet",
                                f"{ZONE}/watch"), "NOT_AUTHORISED")

    def test_noRelay(self):
        """
        A message for a third device is refused: a peer link relays
        nothing.
        """
        self.assertRefused(prop({"status": "message", "text": "hi"}, f"{ZONE}/watch",
                                f"{ZONE}/laptop"), "UNKNOWN_DESTINATION")

    def test_unknownMessage(self):
        """
        A message this device does not handle is refused.
        """
        self.assertRefused(prop({"status": "renewRequired"}, f"{ZONE}/tablet", f"{ZONE}/laptop"),
                           "UNKNOWN_MESSAGE")

    def test_garbage(self):
        """
        A frame that is not an envelope is refused and nothing changes.
        """
        self.transport.clear()
        self.link.dataReceived(b"\x00\x00\x00\x05hello")
        [answer] = frames(self.transport.value())
        self.assertEqual(answer["payload"]["status"], "error")
        self.assertEqual(self.owner.inbox.messages(), [])

    def test_beforeReady(self):
        """
        Before the handshake proved the peer, nothing is accepted.
        """
        link = PeerLinkProtocol(self.owner, False)
        transport = PeerCertTransport(self.laptopCert)
        link.makeConnection(transport)
        link.dataReceived(frame(prop({"status": "message", "text": "hi"}, f"{ZONE}/tablet")))
        [answer] = frames(transport.value())
        self.assertEqual(answer["payload"]["code"], "UNKNOWN_MESSAGE")
        self.assertEqual(self.owner.inbox.messages(), [])

    def test_ownCertificate(self):
        """
        A peer presenting this device's own certificate is refused.
        """
        link = PeerLinkProtocol(self.owner, False)
        link.makeConnection(PeerCertTransport(self.owner.credentials.cert))
        link.handshakeCompleted()
        self.assertEqual(self.failureResultOf(link.ready, ZoneError).value.code, "CERT_INVALID")


class FriendPeerLinkTests(SynchronousTestCase):
    """
    A device of a friend zone on this device's peer port: it may call
    services, nothing else, and only while its zone is a friend.
    """

    def setUp(self):
        from tests.pz.test_friendpeertls import FRIEND, _friendZone

        self.clock = Clock()
        zone, _ = _zones()
        friend = _friendZone()
        key, cert = zone.device("laptop")
        self.laptop = Owner(self.clock, Credentials(f"{ZONE}/laptop", key, cert, zone.caCert),
                            Inbox(self.mktemp(), self.clock))
        self.laptop.friends.add(FRIEND)
        fKey, fCert = friend.device("phone")
        creds = Credentials(f"{FRIEND}/phone", fKey, fCert, friend.caCert)
        creds.zoneId = FRIEND
        self.phone = Owner(self.clock, creds, Inbox(self.mktemp(), self.clock))
        self.phone.friends.add(ZONE)
        self.friendZone = FRIEND
        self.client = PeerLinkProtocol(self.phone, True, f"{ZONE}/laptop")
        self.accepted = PeerLinkProtocol(self.laptop, False)
        self.pair = connectPair(
            tlsFactory(tls.peerServerOptions(zone.caCert, key, cert, None,
                                             friendCAs=[friend.caCert]), False,
                       Factory.forProtocol(lambda: self.accepted), self.clock),
            tlsFactory(tls.peerClientOptions(zone.caCert, fKey, fCert,
                                             udf.key_fingerprint(cert.public_key())),
                       True, Factory.forProtocol(lambda: self.client), self.clock),
            self.clock, address("127.0.0.1", 8040), address("127.0.0.1", 50000))
        self.pair.flush()
        self.addCleanup(lambda: (self.accepted.transport.loseConnection(), self.pair.flush()))

    def test_friendIdentified(self):
        """
        The accepting link knows the caller as the friend zone's device.
        """
        self.assertEqual(self.successResultOf(self.accepted.ready), self.accepted)
        self.assertEqual((self.accepted.peerId, self.accepted.friendZone),
                         (f"{self.friendZone}/phone", self.friendZone))

    def test_callServed(self):
        """
        A call from the friend's device is served (here: no such service)
        and answered over the link.
        """
        d = self.phone.calls.call(self.client, f"{ZONE}/laptop", "get42", "get42")
        self.pair.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NO_SUCH_SERVICE")

    def test_onlyCalls(self):
        """
        A text message or a peer-sync message from the friend's device is
        C{NOT_AUTHORISED}; nothing reaches the inbox or the sync.
        """
        d = self.client.request(f"{ZONE}/laptop", {"status": "message", "text": "hi"})
        self.client.sendMessage(f"{ZONE}/laptop", {"status": "Update_Hash", "items": []})
        self.pair.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_AUTHORISED")
        self.assertEqual(self.laptop.inbox.messages(), [])
        self.assertEqual(self.laptop.peerSync, [])

    def test_untrustedCloses(self):
        """
        Once the friend zone is untrusted the link closes at the friend's
        next frame (its ping), saying C{ZONE_UNTRUSTED}.
        """
        self.laptop.friends.clear()
        d = self.phone.calls.call(self.client, f"{ZONE}/laptop", "get42", "get42")
        self.pair.flush()
        self.assertTrue(self.pair.closed)
        self.assertIn(self.failureResultOf(d, ZoneError).value.code,
                      ("ZONE_UNTRUSTED", "NOT_CONNECTED"))
