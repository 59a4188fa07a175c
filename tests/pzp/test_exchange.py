"""
Tests for the peer-to-peer certificate exchange on a device: the tickets
(L{pzp.exchange}), and the one-time link they open (L{pzp.peerlink}) over
real TLS in memory.
"""

import attrs
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.errors import ZoneError
from pz.pairing import PeerCode
from pz.testing.loopback import address, connectPair, tlsFactory
from pzp.exchange import ExchangeTickets
from pzp.inbox import Inbox
from pzp.peerlink import PeerLinkProtocol
from pzp.proxy import ProxySettings
from tests.pz.test_exchangetls import STRANGER, _strangerZone
from tests.pz.test_tls import ZONE, _zones
from tests.pzp.test_peerlink import Credentials, Owner
from tests.pzp.test_proxy import ProxyTestBase


class TicketTests(SynchronousTestCase):
    """
    L{ExchangeTickets}: single use, expiring, rate-limited, in memory.
    """

    def setUp(self):
        self.clock = Clock()
        self.tickets = ExchangeTickets(self.clock, lifetime=600)

    def refusal(self, token, source="10.0.0.1"):
        return self.assertRaises(ZoneError, self.tickets.redeem, token, source).code

    def test_singleUse(self):
        """
        A ticket is outstanding until its token is used; then the token is
        C{TOKEN_USED} and nothing is outstanding.
        """
        self.assertFalse(self.tickets.outstanding())
        token, expires = self.tickets.issue()
        self.assertEqual(expires, 600)
        self.assertEqual(len(token), 22)  # 128 random bits
        self.assertTrue(self.tickets.outstanding())
        self.tickets.redeem(token, "10.0.0.1")
        self.assertFalse(self.tickets.outstanding())
        self.assertEqual(self.refusal(token), "TOKEN_USED")

    def test_badTokenConsumesNothing(self):
        """
        A wrong token is C{TOKEN_INVALID} and the ticket stays outstanding
        and usable.
        """
        token, _ = self.tickets.issue()
        self.assertEqual(self.refusal(token[:-1] + ("A" if token[-1] != "A" else "B")),
                         "TOKEN_INVALID")
        self.assertEqual(self.refusal(None), "TOKEN_INVALID")
        self.assertTrue(self.tickets.outstanding())
        self.tickets.redeem(token, "10.0.0.1")

    def test_expires(self):
        """
        After its lifetime a ticket is no longer outstanding and its token
        is C{TOKEN_EXPIRED}.
        """
        token, _ = self.tickets.issue()
        self.clock.advance(600)
        self.assertFalse(self.tickets.outstanding())
        self.assertEqual(self.refusal(token), "TOKEN_EXPIRED")

    def test_rateLimited(self):
        """
        After five wrong tokens from one address, its wrong tokens are only
        C{RATE_LIMITED}; the right token still gets through.
        """
        token, _ = self.tickets.issue()
        for i in range(5):
            self.assertEqual(self.refusal(f"wrong-token-{i:08d}"), "TOKEN_INVALID")
        self.assertEqual(self.refusal("wrong-token-99999999"), "RATE_LIMITED")
        self.tickets.redeem(token, "10.0.0.1")

    def test_badLifetime(self):
        """
        A lifetime must be positive.
        """
        self.assertRaises(ValueError, ExchangeTickets, self.clock, lifetime=0)


class PeerCodeTests(SynchronousTestCase):
    """
    L{PeerCode}: C{pzp://HOST:PORT/TOKEN#CERTSHA256}.
    """

    def test_roundTrip(self):
        """
        A code prints as it parses.
        """
        text = "pzp://127.0.0.1:8040/abcdefghijklmnopqrstuv#" + "ab" * 32
        code = PeerCode.parse(text)
        self.assertEqual((code.host, code.port, code.token), ("127.0.0.1", 8040,
                                                              "abcdefghijklmnopqrstuv"))
        self.assertEqual(str(code), text)

    def test_bad(self):
        """
        Another scheme, no port, a short token, a fingerprint that is not
        a SHA-256 in hex: C{BAD_REQUEST}.
        """
        for text in ["pz://127.0.0.1:8040/abcdefghijklmnopqrstuv#" + "ab" * 32,
                     "pzp://127.0.0.1/abcdefghijklmnopqrstuv#" + "ab" * 32,
                     "pzp://127.0.0.1:8040/short#" + "ab" * 32,
                     "pzp://127.0.0.1:8040/abcdefghijklmnopqrstuv#MBSZQ-VM3XI",
                     "pzp://127.0.0.1:99999/abcdefghijklmnopqrstuv#" + "ab" * 32, 42]:
            self.assertEqual(self.assertRaises(ZoneError, PeerCode.parse, text).code,
                             "BAD_REQUEST", text)


class GuestOwner(Owner):
    """
    A link owner with exchange tickets.
    """

    def __init__(self, clock, credentials, inbox) -> None:
        super().__init__(clock, credentials, inbox)
        self.tickets = ExchangeTickets(clock)
        self.exchangeTimeout = 10.0
        self.redeemed = []

    def redeemExchange(self, token, source) -> None:
        self.tickets.redeem(token, source)
        self.redeemed.append(source)


class ExchangeLinkTests(SynchronousTestCase):
    """
    A device of an unknown zone on the peer port with a peer-exchange
    code: admitted once, for calls only, after a valid token.
    """

    def setUp(self):
        self.clock = Clock()
        self.zone, _ = _zones()
        self.stranger = _strangerZone()
        self.key, self.cert = self.zone.device("laptop")
        self.laptop = GuestOwner(self.clock, Credentials(f"{ZONE}/laptop", self.key, self.cert,
                                                         self.zone.caCert),
                                 Inbox(self.mktemp(), self.clock))
        self.pairs = []
        self.addCleanup(self.closeAll)

    def closeAll(self):
        for pair, accepted, client in self.pairs:
            for link in (accepted, client):
                if link.transport is not None:
                    link.transport.loseConnection()
            pair.flush()

    def dial(self, token, name="phone", drop=False):
        """
        Dial the laptop's peer port as device C{name} of the unknown zone
        with C{token}; with C{drop}, the token is never sent.
        """
        key, cert = self.stranger.device(name)
        creds = Credentials(f"{STRANGER}/{name}", key, cert, self.stranger.caCert)
        creds.zoneId = STRANGER
        owner = GuestOwner(self.clock, creds, Inbox(self.mktemp(), self.clock))
        client = PeerLinkProtocol(owner, True, None, exchangeToken=token)
        if drop:
            client.sendMessage = lambda to, payload, msgId=None: "dropped"
        accepted = PeerLinkProtocol(self.laptop, False)
        server = tls.peerServerOptions(self.zone.caCert, self.key, self.cert, None,
                                       exchangeOpen=self.laptop.tickets.outstanding)
        options = tls.exchangeClientOptions(self.stranger.caCert, key, cert,
                                            pki.certificateDigest(self.cert))
        pair = connectPair(
            tlsFactory(server, False, Factory.forProtocol(lambda: accepted), self.clock),
            tlsFactory(options, True, Factory.forProtocol(lambda: client), self.clock),
            self.clock, address("127.0.0.1", 8040), address("127.0.0.1", 50000))
        self.pairs.append((pair, accepted, client))
        for link in (accepted, client):
            # Each test looks at the outcomes it is about; the rest of the
            # refusals are expected, not unhandled errors.
            self.addCleanup(link.ready.addErrback, lambda f: None)
        pair.flush()
        return pair, accepted, client, owner

    def refused(self, client) -> ZoneError:
        return self.failureResultOf(client.ready, ZoneError).value

    def test_exchanged(self):
        """
        With the code's token, both ends are up: each knows the other as
        a guest, and the ticket is used up.
        """
        token, _ = self.laptop.tickets.issue()
        pair, accepted, client, owner = self.dial(token)
        self.assertIs(self.successResultOf(accepted.ready), accepted)
        self.assertIs(self.successResultOf(client.ready), client)
        self.assertEqual((accepted.peerId, accepted.guest), (f"{STRANGER}/phone", True))
        self.assertEqual((client.peerId, client.guest), (f"{ZONE}/laptop", True))
        self.assertFalse(self.laptop.tickets.outstanding())
        self.assertEqual(self.laptop.redeemed, ["127.0.0.1"])

    def test_wrongTokenConsumesNothing(self):
        """
        A wrong token closes the link C{EXCHANGE_REFUSED}; the ticket is
        still there and the right token then works.
        """
        token, _ = self.laptop.tickets.issue()
        pair, accepted, client, _ = self.dial("x" * 22)
        error = self.refused(client)
        self.assertEqual(error.code, "EXCHANGE_REFUSED")
        self.assertIn("TOKEN_INVALID", error.message)
        self.failureResultOf(accepted.ready, ZoneError)
        self.assertTrue(self.laptop.tickets.outstanding())
        pair, accepted, client, _ = self.dial(token)
        self.successResultOf(client.ready)

    def test_usedCodeRefused(self):
        """
        A third device with the code after it was used is refused in the
        handshake (no ticket is outstanding); while another ticket is, the
        used token is refused C{EXCHANGE_REFUSED} naming C{TOKEN_USED}.
        """
        token, _ = self.laptop.tickets.issue()
        self.dial(token)
        pair, accepted, client, _ = self.dial(token, "third")
        self.assertFalse(accepted.peerId)
        self.failureResultOf(accepted.ready, ZoneError)
        self.assertEqual(self.refused(client).code, "NOT_CONNECTED")
        self.laptop.tickets.issue()
        pair, accepted, client, _ = self.dial(token, "fourth")
        error = self.refused(client)
        self.assertEqual(error.code, "EXCHANGE_REFUSED")
        self.assertIn("TOKEN_USED", error.message)
        self.assertTrue(self.laptop.tickets.outstanding())

    def test_expiredCodeRefused(self):
        """
        An expired code no longer opens the handshake, and its token is
        refused C{TOKEN_EXPIRED} while a newer ticket is outstanding.
        """
        token, _ = self.laptop.tickets.issue()
        self.clock.advance(601)
        pair, accepted, client, _ = self.dial(token)
        self.assertEqual(self.refused(client).code, "NOT_CONNECTED")
        self.laptop.tickets.issue()
        pair, accepted, client, _ = self.dial(token, "again")
        self.assertIn("TOKEN_EXPIRED", self.refused(client).message)

    def test_noTokenInTime(self):
        """
        A device that sends no token is dropped C{EXCHANGE_REFUSED} after
        the deadline; the ticket is not used up.
        """
        token, _ = self.laptop.tickets.issue()
        pair, accepted, client, _ = self.dial(token, drop=True)
        self.assertNoResult(accepted.ready)
        self.clock.advance(10)
        pair.flush()
        self.assertEqual(self.failureResultOf(accepted.ready, ZoneError).value.code,
                         "EXCHANGE_REFUSED")
        self.assertTrue(self.laptop.tickets.outstanding())

    def test_firstFrameMustBeToken(self):
        """
        Any other first message closes the link C{EXCHANGE_REFUSED}.
        """
        self.laptop.tickets.issue()
        pair, accepted, client, _ = self.dial("x" * 22, drop=True)
        del client.sendMessage
        client.sendMessage(f"{ZONE}/laptop", {"status": "message", "text": "hi"})
        pair.flush()
        self.assertEqual(self.failureResultOf(accepted.ready, ZoneError).value.code,
                         "EXCHANGE_REFUSED")
        self.assertEqual(self.laptop.inbox.messages(), [])
        self.assertTrue(self.laptop.tickets.outstanding())

    def test_onlyCalls(self):
        """
        Over the one-time link a text message is C{NOT_AUTHORISED}; a call
        is served (here: no such service).
        """
        token, _ = self.laptop.tickets.issue()
        pair, accepted, client, owner = self.dial(token)
        d = client.request(f"{ZONE}/laptop", {"status": "message", "text": "hi"})
        pair.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_AUTHORISED")
        self.assertEqual(self.laptop.inbox.messages(), [])
        d = owner.calls.call(client, f"{ZONE}/laptop", "get42", "get42")
        pair.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NO_SUCH_SERVICE")


class _Identity:
    """
    The credentials holder a L{PeerMode} reads.
    """

    def __init__(self, current) -> None:
        self.current = current


class PeerModeExchangeTests(SynchronousTestCase):
    """
    L{PeerMode}'s side of the exchange: a code dialled, the one-time link
    listed, routed to, closed, and gone with the worker.
    """

    def setUp(self):
        from pzp.peermode import PeerMode

        self.clock = Clock()
        zone, _ = _zones()
        stranger = _strangerZone()
        key, cert = zone.device("desk")
        self.aliceCreds = Credentials(f"{ZONE}/desk", key, cert, zone.caCert)
        key, cert = stranger.device("pad")
        self.bobCreds = Credentials(f"{STRANGER}/pad", key, cert, stranger.caCert)
        self.bobCreds.zoneId = STRANGER
        self.alice = PeerMode(self.clock, _Identity(self.aliceCreds),
                              Inbox(self.mktemp(), self.clock), None,
                              tickets=ExchangeTickets(self.clock))
        self.bob = PeerMode(self.clock, _Identity(self.bobCreds), Inbox(self.mktemp(), self.clock),
                            None, exchangeDialer=self.dialer)
        self.pairs = []
        self.addCleanup(self.stopAll)

    def stopAll(self):
        self.alice.stop()
        self.bob.stop()
        for pair in self.pairs:
            pair.flush()

    def dialer(self, code, owner):
        mine, theirs = owner.credentials, self.aliceCreds
        client = PeerLinkProtocol(owner, True, None, exchangeToken=code.token)
        server = self.alice.buildIncoming()
        pair = connectPair(
            tlsFactory(tls.peerServerOptions(theirs.caCert, theirs.key, theirs.cert, None,
                                             exchangeOpen=self.alice.exchangeOpen), False,
                       Factory.forProtocol(lambda: server), self.clock),
            tlsFactory(tls.exchangeClientOptions(mine.caCert, mine.key, mine.cert,
                                                 code.certDigest),
                       True, Factory.forProtocol(lambda: client), self.clock),
            self.clock, address("127.0.0.1", 8040), address("127.0.0.1", 50000))
        self.pairs.append(pair)
        pair.flush()
        return client.ready

    def code(self):
        token, _ = self.alice.invite()
        return PeerCode("127.0.0.1", 8040, token, pki.certificateDigest(self.aliceCreds.cert))

    def test_linkListedRoutedClosed(self):
        """
        C{exchange} fires with the other device's id; both list the link
        as one-time and route to it; C{closeGuest} closes it on both sides
        and a second close is C{NOT_CONNECTED}.
        """
        self.assertFalse(self.alice.exchangeOpen())
        code = self.code()
        self.assertTrue(self.alice.exchangeOpen())
        self.assertEqual(self.successResultOf(self.bob.exchange(code)), f"{ZONE}/desk")
        self.assertFalse(self.alice.exchangeOpen())
        self.assertEqual(self.bob.status(), {f"{ZONE}/desk": "Connected (one-time)"})
        self.assertEqual(self.alice.status(), {f"{STRANGER}/pad": "Connected (one-time)"})
        self.assertEqual(self.alice.guestIds(), {f"{STRANGER}/pad"})
        self.assertTrue(self.bob.linkFor(f"{ZONE}/desk").guest)
        self.bob.closeGuest(f"{ZONE}/desk")
        for pair in self.pairs:
            pair.flush()
        self.assertEqual((self.alice.status(), self.bob.status()), ({}, {}))
        self.assertIsNone(self.bob.linkFor(f"{ZONE}/desk"))
        self.assertEqual(self.assertRaises(ZoneError, self.bob.closeGuest, f"{ZONE}/desk").code,
                         "NOT_CONNECTED")
        # The used code does not open a second link.
        self.assertEqual(self.failureResultOf(self.bob.exchange(code), ZoneError).value.code,
                         "NOT_CONNECTED")

    def test_stopCloses(self):
        """
        A worker that stops closes its one-time links.
        """
        self.successResultOf(self.bob.exchange(self.code()))
        self.alice.stop()
        for pair in self.pairs:
            pair.flush()
        self.assertEqual((self.alice.status(), self.bob.status()), ({}, {}))

    def test_noTickets(self):
        """
        A worker without tickets issues no code and never opens its
        handshake to an unknown zone.
        """
        self.assertEqual(self.assertRaises(ZoneError, self.bob.invite).code, "BAD_REQUEST")
        self.assertFalse(self.bob.exchangeOpen())


class ProxyExchangeTests(ProxyTestBase):
    """
    The proxy's admin side of the exchange: C{peer-invite},
    C{peer-exchange}, C{peer-close}.
    """

    def enrolled(self, **settings):
        proxy = self.proxy(dataDir=self.enrolledDir(),
                           settings=attrs.evolve(ProxySettings(), **settings))
        self.completeConnection()
        return proxy

    def test_invite(self):
        """
        The code names the peer server's address and port, a token, and
        the SHA-256 of the device's certificate; it is valid 10 minutes.
        """
        proxy = self.enrolled(peerPort=8040, peerInterface="127.0.0.1")
        answer = proxy.peerInvite()
        code = PeerCode.parse(answer["code"])
        creds = proxy.credentials
        self.assertEqual((code.host, code.port, code.certDigest),
                         ("127.0.0.1", 8040, pki.certificateDigest(creds.cert)))
        self.assertEqual(answer["expires"], 600)
        self.assertEqual(PeerCode.parse(proxy.peerInvite("192.0.2.7")["code"]).host,
                         "192.0.2.7")

    def test_inviteNeedsAddress(self):
        """
        A peer server listening on every address needs C{--host}; a
        device without a peer server has nothing to invite to.
        """
        proxy = self.enrolled(peerPort=8040)
        self.assertEqual(self.assertRaises(ZoneError, proxy.peerInvite).code, "BAD_REQUEST")
        self.assertTrue(proxy.peerInvite("192.0.2.7")["code"].startswith("pzp://192.0.2.7:8040/"))

    def test_badArguments(self):
        """
        A malformed code is C{BAD_REQUEST}; closing a link there is not is
        C{NOT_CONNECTED}; a bad device id is refused.
        """
        proxy = self.enrolled(peerPort=8040, peerInterface="127.0.0.1")
        self.assertEqual(self.failureResultOf(proxy.peerExchange("pz://x:1/t#f"),
                                              ZoneError).value.code, "BAD_REQUEST")
        self.assertEqual(self.assertRaises(ZoneError, proxy.peerClose, f"{ZONE}/nobody").code,
                         "NOT_CONNECTED")
        self.assertRaises(ZoneError, proxy.peerClose, "not a device")
