"""
Tests for L{pzp.peermode}'s machine: the Peer machine alone, driven
through its inputs against dummy actions that record what they are asked
to do, with a L{Clock} for the dial timeout.
"""

from automat import NoTransition
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki, tls, udf
from pz.errors import ZoneError
from pz.testing.loopback import address, connectPair, flushPumps, tlsFactory
from pzp.inbox import Inbox
from pzp.peerlink import PeerLinkProtocol
from pzp.peermode import (
    CONNECT_TIMEOUT, IPeerActions, PeerCore, PeerMachine, PeerMode, dialledByLower, tlsDialer,
)
from tests.pz.test_tls import NOW, ZONE, _zones
from tests.pzp.machines import stateNamed, transitions
from tests.pzp.test_peerlink import Credentials

LOW = "alice@127.0.0.1/a-laptop"
HIGH = "alice@127.0.0.1/b-phone"


@implementer(IPeerActions)
class PeerActions:
    """
    Records what the Peer machine asks for; each dial is a Deferred the
    test fires.
    """

    def __init__(self) -> None:
        self.calls = []
        self.dials = []

    def dial(self, endpoint):
        self.calls.append(("dial", endpoint))
        d = Deferred(lambda d: self.calls.append(("cancelled", endpoint)))
        self.dials.append(d)
        return d

    def linkUp(self, link) -> None:
        self.calls.append(("linkUp", link))

    def dropLink(self, link) -> None:
        self.calls.append(("dropLink", link))

    def cleanUp(self, reason) -> None:
        self.calls.append(("cleanUp", reason))

    def connectFailed(self, reason) -> None:
        self.calls.append(("connectFailed", reason))


ENDPOINT = {"host": "127.0.0.1", "port": 8040}


class PeerMachineTests(SynchronousTestCase):
    """
    Tests for L{PeerMachine} on the device with the smaller id (its own
    dial wins a simultaneous dial).
    """

    localId, remoteId = LOW, HIGH

    def setUp(self):
        self.clock = Clock()
        self.actions = PeerActions()
        self.machine = PeerMachine(PeerCore(self.clock, self.localId, self.remoteId, self.actions))

    def toConnecting(self):
        self.machine.pzpUpdate(ENDPOINT)
        self.actions.calls.clear()

    def toConnected(self, link="out-link"):
        self.toConnecting()
        self.actions.dials[-1].callback(link)
        self.actions.calls.clear()

    def test_diagram(self):
        """
        The machine has the seed's Peer edges, plus: a link the peer
        dialled taking NotConnected straight to Connected, the
        simultaneous-dial rule (C{connected} while dialling loops, C{kept}
        leads on), revocation, and repeated updates changing nothing.
        """
        states = ("NotConnected", "Connecting", "Connected", "Disconnecting")
        expected = {
            ("NotConnected", "pzpUpdate", "Connecting"),
            ("Connecting", "connectionFailed", "NotConnected"),
            ("Connecting", "kept", "Connected"),
            ("Connected", "lost", "Disconnecting"),
            ("Disconnecting", "cleanedUp", "NotConnected"),
            ("NotConnected", "connected", "Connected"),
            ("Connecting", "connected", "Connecting"),
            ("Connected", "connected", "Connected"),
            ("Connected", "revoked", "Disconnecting"),
            ("Connecting", "revoked", "NotConnected"),
            ("NotConnected", "revoked", "NotConnected"),
            ("Connecting", "pzpUpdate", "Connecting"),
            ("Connected", "pzpUpdate", "Connected"),
            ("Disconnecting", "pzpUpdate", "Disconnecting"),
            ("Connected", "stop", "Disconnecting"),
            ("Connecting", "stop", "NotConnected"),
            ("NotConnected", "stop", "NotConnected"),
            ("Disconnecting", "stop", "Disconnecting"),
        }
        expected |= {(s, "state", s) for s in states}
        expected |= {(s, "currentLink", s) for s in states}
        self.assertEqual(transitions(PeerMachine), expected)

    def test_initialState(self):
        """
        A new machine is NotConnected, has no link and has asked for
        nothing.
        """
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertIsNone(self.machine.currentLink())
        self.assertEqual(self.actions.calls, [])

    def test_pzpUpdate(self):
        """
        NotConnected --pzpUpdate--> Connecting dials the endpoint given.
        """
        self.machine.pzpUpdate(ENDPOINT)
        self.assertEqual(self.machine.state(), "Connecting")
        self.assertEqual(self.actions.calls, [("dial", ENDPOINT)])
        self.assertIsNone(self.machine.currentLink())

    def test_pzpUpdateAgain(self):
        """
        Another C{pzpUpdate} while dialling, connected or disconnecting
        dials nothing more.
        """
        self.toConnecting()
        self.machine.pzpUpdate(ENDPOINT)
        self.assertEqual(self.actions.calls, [])
        self.actions.dials[-1].callback("out-link")
        self.actions.calls.clear()
        self.machine.pzpUpdate(ENDPOINT)
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.actions.calls, [])
        machine = PeerMachine(PeerCore(self.clock, LOW, HIGH, self.actions),
                              stateNamed(PeerMachine, "Disconnecting"))
        machine.pzpUpdate(ENDPOINT)
        self.assertEqual(machine.state(), "Disconnecting")
        self.assertEqual(self.actions.calls, [])

    def test_connected(self):
        """
        Connecting --connected--> Connected once the dial fires: the link
        is the peer link.
        """
        self.toConnecting()
        self.actions.dials[-1].callback("out-link")
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.machine.currentLink(), "out-link")
        self.assertEqual(self.actions.calls, [("linkUp", "out-link")])
        self.clock.advance(CONNECT_TIMEOUT * 2)
        self.assertEqual(self.machine.state(), "Connected")

    def test_connectionFailed(self):
        """
        Connecting --connectionFailed--> NotConnected when the dial fails:
        the devices are not available.
        """
        self.toConnecting()
        self.actions.dials[-1].errback(ZoneError("NOT_CONNECTED", "refused"))
        self.assertEqual(self.machine.state(), "NotConnected")
        [(name, reason)] = self.actions.calls
        self.assertEqual((name, reason.code), ("connectFailed", "NOT_CONNECTED"))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionTimesOut(self):
        """
        A dial that does not finish within L{CONNECT_TIMEOUT} is given up:
        Connecting --connectionFailed--> NotConnected with C{TIMEOUT}.
        """
        self.toConnecting()
        self.clock.advance(CONNECT_TIMEOUT - 1)
        self.assertEqual(self.machine.state(), "Connecting")
        self.clock.advance(1)
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls[0], ("cancelled", ENDPOINT))
        [(name, reason)] = self.actions.calls[1:]
        self.assertEqual((name, reason.code), ("connectFailed", "TIMEOUT"))
        self.assertTrue(self.actions.dials[-1].called)

    def test_incomingWhileNotConnected(self):
        """
        NotConnected --connected--> Connected for a link the peer dialled.
        """
        self.machine.connected("in-link", False)
        self.assertEqual(self.machine.state(), "Connected")
        self.assertEqual(self.machine.currentLink(), "in-link")
        self.assertEqual(self.actions.calls, [("linkUp", "in-link")])

    def test_lost(self):
        """
        Connected --lost--> Disconnecting cleans up, and the clean-up
        finishing takes it on to NotConnected; a later pzpUpdate dials
        again.
        """
        self.toConnected()
        self.machine.lost("hangup")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertIsNone(self.machine.currentLink())
        self.assertEqual(self.actions.calls, [("cleanUp", "hangup")])
        self.machine.pzpUpdate(ENDPOINT)
        self.assertEqual(self.machine.state(), "Connecting")

    def test_disconnecting(self):
        """
        Disconnecting --cleanedUp--> NotConnected.
        """
        machine = PeerMachine(PeerCore(self.clock, LOW, HIGH, self.actions),
                              stateNamed(PeerMachine, "Disconnecting"))
        self.assertEqual(machine.state(), "Disconnecting")
        self.assertIsNone(machine.currentLink())
        machine.cleanedUp()
        self.assertEqual(machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [])

    def test_revokedWhileConnected(self):
        """
        A CRL listing the peer arriving while Connected closes the link at
        once and cleans up: Connected --revoked--> Disconnecting -->
        NotConnected.
        """
        self.toConnected()
        self.machine.revoked("the CRL")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertIsNone(self.machine.currentLink())
        self.assertEqual(self.actions.calls,
                         [("dropLink", "out-link"), ("cleanUp", "the CRL")])

    def test_revokedWhileDialling(self):
        """
        Connecting --revoked--> NotConnected gives the dial up; its late
        failure is ignored.
        """
        self.toConnecting()
        self.machine.revoked("the CRL")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("cancelled", ENDPOINT)])
        self.assertTrue(self.actions.dials[-1].called)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_revokedWhileNotConnected(self):
        """
        C{revoked} in NotConnected changes nothing.
        """
        self.machine.revoked("the CRL")
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [])

    def test_stopWhileConnected(self):
        """
        C{stop} while Connected closes the link and cleans up: Connected
        --stop--> Disconnecting --> NotConnected.
        """
        self.toConnected()
        self.machine.stop()
        self.assertEqual(self.machine.state(), "NotConnected")
        [drop, (name, reason)] = self.actions.calls
        self.assertEqual((drop, name, reason.code),
                         (("dropLink", "out-link"), "cleanUp", "NOT_CONNECTED"))

    def test_stopWhileDialling(self):
        """
        C{stop} while Connecting gives the dial up and cancels its timeout.
        """
        self.toConnecting()
        self.machine.stop()
        self.assertEqual(self.machine.state(), "NotConnected")
        self.assertEqual(self.actions.calls, [("cancelled", ENDPOINT)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopElsewhere(self):
        """
        C{stop} in NotConnected or Disconnecting changes nothing.
        """
        self.machine.stop()
        machine = PeerMachine(PeerCore(self.clock, LOW, HIGH, self.actions),
                              stateNamed(PeerMachine, "Disconnecting"))
        machine.stop()
        self.assertEqual((self.machine.state(), machine.state()),
                         ("NotConnected", "Disconnecting"))
        self.assertEqual(self.actions.calls, [])

    def test_lostWhenNotConnected(self):
        """
        C{lost} outside Connected is no transition: only the kept link's
        loss is reported.
        """
        self.assertRaises(NoTransition, self.machine.lost, "hangup")
        self.toConnecting()
        self.assertRaises(NoTransition, self.machine.lost, "hangup")

    def test_strayLinkWhileConnected(self):
        """
        A second link in the same direction as the kept one is dropped.
        """
        self.toConnected("out-link")
        self.machine.connected("out-again", True)
        self.assertEqual(self.machine.currentLink(), "out-link")
        self.assertEqual(self.actions.calls, [("dropLink", "out-again")])


class SimultaneousDialTests(SynchronousTestCase):
    """
    Both devices dial at once: whatever order the links come up in, both
    ends keep the link dialled by the smaller id and drop the other.
    """

    def machineFor(self, localId, remoteId):
        actions = PeerActions()
        machine = PeerMachine(PeerCore(Clock(), localId, remoteId, actions))
        machine.pzpUpdate(ENDPOINT)
        actions.calls.clear()
        return machine, actions

    def test_rule(self):
        """
        L{dialledByLower} gives both ends the same answer for each link.
        """
        # The link LOW dialled: outgoing on LOW, incoming on HIGH.
        self.assertTrue(dialledByLower(LOW, HIGH, True))
        self.assertTrue(dialledByLower(HIGH, LOW, False))
        # The link HIGH dialled.
        self.assertFalse(dialledByLower(HIGH, LOW, True))
        self.assertFalse(dialledByLower(LOW, HIGH, False))

    def test_lowerGetsIncomingWhileDialling(self):
        """
        On the smaller id, the peer's link arriving while dialling is
        dropped and the dial goes on.
        """
        machine, actions = self.machineFor(LOW, HIGH)
        machine.connected("high-dialled", False)
        self.assertEqual(machine.state(), "Connecting")
        self.assertEqual(actions.calls, [("dropLink", "high-dialled")])
        actions.dials[-1].callback("low-dialled")
        self.assertEqual(machine.currentLink(), "low-dialled")

    def test_higherGetsIncomingWhileDialling(self):
        """
        On the larger id, the peer's link arriving while dialling is kept
        and its own dial is given up.
        """
        machine, actions = self.machineFor(HIGH, LOW)
        machine.connected("low-dialled", False)
        self.assertEqual(machine.state(), "Connected")
        self.assertEqual(machine.currentLink(), "low-dialled")
        self.assertEqual(actions.calls, [("cancelled", ENDPOINT), ("linkUp", "low-dialled")])
        self.assertTrue(actions.dials[-1].called)
        self.assertEqual(machine.state(), "Connected")

    def test_lowerGetsIncomingWhenConnected(self):
        """
        On the smaller id, connected over its own dial, the peer's late
        link is dropped.
        """
        machine, actions = self.machineFor(LOW, HIGH)
        actions.dials[-1].callback("low-dialled")
        actions.calls.clear()
        machine.connected("high-dialled", False)
        self.assertEqual(machine.currentLink(), "low-dialled")
        self.assertEqual(actions.calls, [("dropLink", "high-dialled")])

    def test_higherDialFinishesFirst(self):
        """
        On the larger id, its own dial coming up first is replaced by the
        peer's link when that arrives.
        """
        machine, actions = self.machineFor(HIGH, LOW)
        actions.dials[-1].callback("high-dialled")
        actions.calls.clear()
        machine.connected("low-dialled", False)
        self.assertEqual(machine.state(), "Connected")
        self.assertEqual(machine.currentLink(), "low-dialled")
        self.assertEqual(actions.calls,
                         [("dropLink", "high-dialled"), ("linkUp", "low-dialled")])

    def test_bothEndsAgree(self):
        """
        Played on both ends in opposite orders, both keep the same link.
        """
        low, lowActions = self.machineFor(LOW, HIGH)
        high, highActions = self.machineFor(HIGH, LOW)
        # HIGH's dial reaches LOW first; LOW's dial reaches HIGH last.
        highActions.dials[-1].callback("high-dialled")
        low.connected("high-dialled", False)
        lowActions.dials[-1].callback("low-dialled")
        high.connected("low-dialled", False)
        self.assertEqual(low.currentLink(), "low-dialled")
        self.assertEqual(high.currentLink(), "low-dialled")
        self.assertIn(("dropLink", "high-dialled"), lowActions.calls)
        self.assertIn(("dropLink", "high-dialled"), highActions.calls)


class _Identity:
    def __init__(self, current) -> None:
        self.current = current


class PeerModeTests(SynchronousTestCase):
    """
    Two L{PeerMode} workers whose links run over real TLS in memory
    (C{iosim} pumps on one L{Clock}), no sockets.
    """

    def setUp(self):
        self.clock = Clock()
        self.zone, _ = _zones()
        self.pumps = []
        self.workers = {}
        for name in ("a-laptop", "b-phone"):
            key, cert = self.zone.device(name)
            creds = Credentials(f"{ZONE}/{name}", key, cert, self.zone.caCert)
            worker = PeerMode(self.clock, _Identity(creds), Inbox(self.mktemp(), self.clock),
                              self.dialer)
            self.workers[creds.deviceId] = worker
        self.low, self.high = (self.workers[f"{ZONE}/{n}"] for n in ("a-laptop", "b-phone"))

    def dialer(self, deviceId, endpoint, owner):
        target = self.workers[deviceId]
        mine, theirs = owner.credentials, target.credentials
        client = PeerLinkProtocol(owner, True, deviceId)
        server = target.buildIncoming()
        pair = connectPair(
            tlsFactory(tls.peerServerOptions(theirs.caCert, theirs.key, theirs.cert, None), False,
                       Factory.forProtocol(lambda: server), self.clock),
            tlsFactory(tls.peerClientOptions(mine.caCert, mine.key, mine.cert,
                                             endpoint["fingerprint"]),
                       True, Factory.forProtocol(lambda: client), self.clock),
            self.clock, address("127.0.0.1", endpoint["port"]), address("127.0.0.1", 50000))
        self.pumps.append(pair.pump)
        return client.ready

    def announce(self, worker, other):
        creds = other.credentials
        worker.peerAvailable(creds.deviceId, "127.0.0.1", 8040,
                             udf.key_fingerprint(creds.cert.public_key()))

    def flush(self):
        flushPumps(self.pumps)

    def lowId(self):
        return self.low.credentials.deviceId

    def highId(self):
        return self.high.credentials.deviceId

    def test_simultaneousDial(self):
        """
        Both devices dial at once: both end Connected over the same link,
        the one the smaller id dialled; the other link is closed.
        """
        self.announce(self.low, self.high)
        self.announce(self.high, self.low)
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "Connected"})
        self.assertEqual(self.high.status(), {self.lowId(): "Connected"})
        lowLink, highLink = self.low.linkFor(self.highId()), self.high.linkFor(self.lowId())
        self.assertTrue(lowLink.outgoing)
        self.assertFalse(highLink.outgoing)
        # The kept links are the two ends of one connection: a message goes through.
        d = lowLink.request(self.highId(), {"status": "message", "text": "hi"})
        self.flush()
        self.assertEqual(self.successResultOf(d)["status"], "ack")
        self.assertEqual(len(self.high.inbox.messages()), 1)
        # Of the two connections, exactly one is still open.
        self.assertEqual(sorted(p.clientIO.disconnected for p in self.pumps), [False, True])

    def test_oneDials(self):
        """
        Only the larger id dials: its link is kept on both ends.
        """
        self.announce(self.high, self.low)
        self.flush()
        self.assertTrue(self.high.linkFor(self.lowId()).outgoing)
        self.assertFalse(self.low.linkFor(self.highId()).outgoing)
        self.assertEqual(self.low.status(), {self.highId(): "Connected"})

    def test_revokedPeerClosedAtOnce(self):
        """
        A CRL listing the peer closes its link at once; the peer sees the
        loss and goes back to NotConnected; no link is left for routing.
        """
        self.announce(self.low, self.high)
        self.flush()
        crl = pki.buildCRL(self.zone.caKey, self.zone.caCert,
                           [(self.low.credentials.cert.serial_number, NOW)], 1, NOW)
        self.high.crlReceived(crl)
        self.assertEqual(self.high.status(), {self.lowId(): "NotConnected"})
        self.assertIsNone(self.high.linkFor(self.lowId()))
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "NotConnected"})
        self.assertIsNone(self.low.linkFor(self.highId()))

    def test_crlNotListingPeer(self):
        """
        A CRL that does not list the peer changes nothing.
        """
        self.announce(self.low, self.high)
        self.flush()
        crl = pki.buildCRL(self.zone.caKey, self.zone.caCert, [(12345, NOW)], 1, NOW)
        self.high.crlReceived(crl)
        self.assertEqual(self.high.status(), {self.lowId(): "Connected"})

    def test_stop(self):
        """
        Stopping a worker closes its peer links: both ends are back to
        NotConnected.
        """
        self.announce(self.low, self.high)
        self.flush()
        self.low.stop()
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "NotConnected"})
        self.assertEqual(self.high.status(), {self.lowId(): "NotConnected"})

    def test_ownIdIgnored(self):
        """
        The hub listing this very device starts no dial.
        """
        self.announce(self.low, self.low)
        self.assertEqual(self.low.status(), {})
        self.assertEqual(self.pumps, [])

    def test_lostLink(self):
        """
        A kept link that closes takes both machines back to NotConnected;
        a later update dials again.
        """
        self.announce(self.low, self.high)
        self.flush()
        self.low.linkFor(self.highId()).transport.loseConnection()
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "NotConnected"})
        self.assertEqual(self.high.status(), {self.lowId(): "NotConnected"})
        self.announce(self.low, self.high)
        self.flush()
        self.assertEqual(self.high.status(), {self.lowId(): "Connected"})


class _LoopbackEndpoint:
    """
    A client endpoint that connects to a factory in memory over an
    C{iosim} pump.
    """

    def __init__(self, test, serverFactory) -> None:
        self.test = test
        self.serverFactory = serverFactory
        self.dialled = []

    def __call__(self, host, port):
        self.dialled.append((host, port))
        return self

    def connect(self, factory):
        pair = connectPair(self.serverFactory, factory, self.test.clock,
                           address("127.0.0.1", 8040), address("127.0.0.1", 50000))
        self.test.pumps.append(pair.pump)
        return succeed(pair.clientTLS)


class TLSDialerTests(PeerModeTests):
    """
    L{tlsDialer} and L{PeerMode.serverFactory}: the real dialer's and peer
    server's TLS over a TCP connection (here an in-memory one): the tests
    of L{PeerModeTests} again, and the fingerprint given pinned.
    """

    def dialer(self, deviceId, endpoint, owner):
        self.endpoints = _LoopbackEndpoint(self, self.workers[deviceId].serverFactory())
        return tlsDialer(self.clock, self.endpoints)(deviceId, endpoint, owner)

    def test_dialsHostAndPort(self):
        """
        The dialer connects to the host and port the hub reported.
        """
        self.low.peerAvailable(self.highId(), "127.0.0.7", 8041,
                               udf.key_fingerprint(self.high.credentials.cert.public_key()))
        self.flush()
        self.assertEqual(self.endpoints.dialled, [("127.0.0.7", 8041)])
        self.assertEqual(self.low.status(), {self.highId(): "Connected"})

    def test_wrongFingerprint(self):
        """
        A peer whose key is not the one the hub reported is refused: the
        dial fails and the machine is back to NotConnected.
        """
        self.low.peerAvailable(self.highId(), "127.0.0.1", 8040,
                               udf.key_fingerprint(self.low.credentials.cert.public_key()))
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "NotConnected"})
        self.assertEqual(self.high.status(), {})

    def test_serverRefusesRevoked(self):
        """
        The peer server reads the CRL its device holds at each handshake:
        once it lists the dialler, the dialler's next link is refused.
        """
        self.high.credentials.crl = pki.buildCRL(
            self.zone.caKey, self.zone.caCert,
            [(self.low.credentials.cert.serial_number, NOW)], 1, NOW)
        self.announce(self.low, self.high)
        self.flush()
        self.assertEqual(self.low.status(), {self.highId(): "NotConnected"})
        self.assertEqual(self.high.status(), {})
