"""
Tests for L{pzp.proxy} and L{pzp.admin}: the proxy's object graph on a
L{MemoryReactorClock}, its connections completed in memory (over TLS, to a
real hub) with L{twisted.test.iosim}.
"""

import os
import stat
import time

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, connect
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pz import pki
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.testing import HOST, HUB_PORT, ZONE, MemoryHub
from pzp.admin import ProxyAdmin
from pzp.inbox import MAX_TEXT
from pzp.hubmode import HubMode, _ObservedEndpoint
from pzp.mode import IHubWorkers
from pzp.peerdir import PeerDirectory
from pzp.proxy import Proxy, ProxySettings
from pzp.renewal import Renewal
from pzp.revocation import Revocation
from pzp.seams import (
    IHubMode, IIdentity, IPeerDirectory, IProxyEvents, IRenewal, IRevocation,
)
from pzp.virgin import VirginMode
from pzp.zonedir import Credentials, ZoneDirectory
from tests.pzp._support import enrolledCredentials, flush

STATUS_KEYS = {"device", "zone", "mode", "state", "hub"}


class ProxyTestBase(SynchronousTestCase):
    """
    A reactor at the present time and a real hub sharing it.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(time.time())
        self.fixture = MemoryHub(self, clock=self.reactor, onDisk=False)
        self.hub = self.fixture.hub
        self.pumps = []

    def proxy(self, pairCode=None, dataDir=None, name="phone", settings=ProxySettings(),
              start=True) -> Proxy:
        """
        A proxy on the memory reactor, started unless told otherwise, and
        stopped when the test ends.  What it gives up on lands in
        C{self.gaveUp}.
        """
        self.gaveUp = []
        proxy = Proxy(dataDir or self.mktemp(), self.reactor, name, pairCode, settings,
                      giveUp=self.gaveUp.append)
        if start:
            proxy.startService()
            self.addCleanup(self.stop, proxy)
        return proxy

    def stop(self, proxy):
        d = proxy.stopService()
        self.flush()
        self.successResultOf(d)

    def enrolledDir(self, name="phone") -> str:
        """
        A data directory holding the credentials of a device enrolled now.
        """
        dataDir = self.mktemp()
        ZoneDirectory(dataDir).store(enrolledCredentials(self.fixture, name))
        return dataDir

    def completeConnection(self, index=-1):
        """
        Connect a pending outgoing connection to the hub; return its pump.
        """
        host, port, factory, _, _ = self.reactor.tcpClients.pop(index)
        self.assertEqual((host, port), (HOST, HUB_PORT))
        pump = self.fixture.connectFactory(factory).pump
        self.pumps.append(pump)
        self.flush()
        return pump

    def flush(self):
        flush(*self.pumps)

    def connected(self, name="phone", dataDir=None) -> Proxy:
        """
        An enrolled proxy, started and linked to the hub.
        """
        proxy = self.proxy(dataDir=dataDir or self.enrolledDir(name), name=name)
        self.completeConnection()
        self.assertEqual(proxy.status()["state"], "Connected")
        return proxy


class VirginModeTests(ProxyTestBase):
    """
    A proxy that is in no zone yet.
    """

    def test_connectsToCodeAddress(self):
        """
        Started with a pairing code, the proxy connects to the host and
        port the code names and says so in its status.
        """
        code = PairingCode("127.0.0.1", 8123, "t" * 32, self.fixture.zone.caFingerprint)
        proxy = self.proxy(code)
        [(host, port, _, _, _)] = self.reactor.tcpClients
        self.assertEqual((host, port), ("127.0.0.1", 8123))
        status = proxy.status()
        self.assertLessEqual(STATUS_KEYS, set(status))
        self.assertEqual(
            {k: status[k] for k in STATUS_KEYS},
            {"device": None, "zone": None, "mode": "Virgin", "state": "Connecting",
             "hub": "127.0.0.1:8123"},
        )

    def test_noCode(self):
        """
        Without a code nothing is attempted: Virgin/NotConnected, no hub.
        """
        proxy = self.proxy()
        self.assertEqual(self.reactor.tcpClients, [])
        status = proxy.status()
        self.assertEqual((status["mode"], status["state"], status["hub"]),
                         ("Virgin", "NotConnected", None))

    def test_noCodeGivesUp(self):
        """
        With no code and no zone the proxy can do nothing: it gives up,
        saying how to start it.
        """
        proxy = self.proxy()
        [error] = self.gaveUp
        self.assertEqual(error.code, "BAD_REQUEST")
        self.assertIn("start it with --pair CODE", error.message)
        self.assertIs(proxy.lastError, error)

    def test_retryAfterRefusedConnection(self):
        """
        A refused connection is retryable: C{NOT_CONNECTED} is reported and
        another attempt is scheduled after a short backoff, which then
        connects again.
        """
        proxy = self.proxy(self.hub.enrolment.newCode("phone"))
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(ConnectionRefusedError()))
        self.reactor.advance(0.3)  # the host name endpoint gives up on its address list
        status = proxy.status()
        self.assertEqual((status["state"], status["error"]["code"]),
                         ("NotConnected", "NOT_CONNECTED"))
        retry = proxy._virgin.retryCall
        self.assertIn(retry, self.reactor.getDelayedCalls())
        self.assertTrue(0 < retry.getTime() - self.reactor.seconds() <= 0.75)
        self.reactor.advance(0.75)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.assertEqual(proxy.status()["state"], "Connecting")

    def test_retryAfterTimeout(self):
        """
        A hub that accepts the connection but never answers: after the
        enrolment timeout the attempt fails with C{TIMEOUT}, which is
        retried.
        """
        settings = ProxySettings(enrolTimeout=5)
        proxy = self.proxy(self.hub.enrolment.newCode("phone"), settings=settings)
        host, port, factory, _, _ = self.reactor.tcpClients.pop()
        address = IPv4Address("TCP", host, port)
        client, server = factory.buildProtocol(address), Protocol()
        pump = connect(server, FakeTransport(server, True, address, address),
                       client, FakeTransport(client, False, address, address),
                       clock=self.reactor)
        self.pumps.append(pump)
        self.reactor.advance(5)
        self.flush()
        self.assertEqual(proxy.status()["error"]["code"], "TIMEOUT")
        self.assertEqual(proxy.status()["state"], "NotConnected")
        self.reactor.advance(settings.maxBackoff)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(proxy.status()["state"], "Connecting")

    def test_tokenInvalidNotRetried(self):
        """
        A hub that refuses the token (C{TOKEN_INVALID}): the error is
        reported and nothing is retried, since only a new code can help.
        """
        good = self.hub.enrolment.newCode("phone")
        code = PairingCode(good.host, good.port, "z" * 32, good.caFingerprint)
        proxy = self.proxy(code)
        self.completeConnection()
        status = proxy.status()
        self.assertEqual((status["mode"], status["state"], status["error"]["code"]),
                         ("Virgin", "NotConnected", "TOKEN_INVALID"))
        self.reactor.advance(3600)
        self.assertEqual(self.reactor.tcpClients, [])
        self.assertFalse(proxy.zoneDir.enrolled())
        self.assertEqual([e.code for e in self.gaveUp], ["TOKEN_INVALID"])

    def test_tokenUsedGivesUp(self):
        """
        A code already used: the proxy gives up with C{TOKEN_USED}.
        """
        code = self.hub.enrolment.newCode("phone")
        self.proxy(code)
        self.completeConnection()
        self.proxy(code)
        self.completeConnection()
        self.assertEqual([e.code for e in self.gaveUp], ["TOKEN_USED"])

    def test_retryableDoesNotGiveUp(self):
        """
        A hub that is not up yet is worth retrying: the proxy does not give
        up.
        """
        self.proxy(self.hub.enrolment.newCode("phone"))
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(ConnectionRefusedError()))
        self.reactor.advance(0.3)
        self.assertEqual(self.gaveUp, [])

    def test_codeNameWins(self):
        """
        A code made for C{phone} used by a proxy asking for C{television}
        enrols as C{phone}, with a warning that says so and how to get
        another name.
        """
        from twisted.logger import formatEvent, globalLogPublisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        proxy = self.proxy(self.hub.enrolment.newCode("phone"), name="television")
        self.completeConnection()
        self.assertEqual(proxy.status()["device"], f"{ZONE}/phone")
        warnings = [formatEvent(e) for e in events if e.get("log_level") is not None
                    and e["log_level"].name == "warn"]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"enrolled as {ZONE}/phone, not 'television': the pairing code was made "
                      "for 'phone'", warnings[0])
        self.assertIn("pair it with a code made for that name", warnings[0])

    def test_enrolThenHub(self):
        """
        A successful enrolment stores the zone directory (complete, key
        0600, no staging copy left), moves the proxy to Hub mode, and the
        hub link then connects to the hub the answer named.
        """
        dataDir = self.mktemp()
        proxy = self.proxy(self.hub.enrolment.newCode("phone"), dataDir=dataDir)
        self.completeConnection()
        zoneDir = ZoneDirectory(dataDir)
        self.assertTrue(zoneDir.enrolled())
        self.assertEqual(os.listdir(dataDir), ["zone"])
        creds = zoneDir.load()
        self.assertEqual(creds.deviceId, f"{ZONE}/phone")
        self.assertEqual(creds.cert.public_key(), creds.key.public_key())
        for top, _, files in os.walk(zoneDir.path):
            if "key.pem" in files:
                mode = os.stat(os.path.join(top, "key.pem")).st_mode
                self.assertEqual(stat.S_IMODE(mode), 0o600)
        status = proxy.status()
        self.assertEqual(
            {k: status[k] for k in STATUS_KEYS},
            {"device": f"{ZONE}/phone", "zone": ZONE, "mode": "Hub", "state": "Connecting",
             "hub": f"{HOST}:{HUB_PORT}"},
        )
        self.completeConnection()
        self.assertEqual(proxy.status()["state"], "Connected")
        self.assertNotIn("error", proxy.status())

    def test_storeFails(self):
        """
        If the credentials cannot be stored, the attempt fails with
        C{INTERNAL}, the proxy stays in Virgin mode and writes no zone.
        """
        proxy = self.proxy(self.hub.enrolment.newCode("phone"))

        def store(credentials):
            raise OSError(28, "No space left on device")

        proxy.zoneDir.store = store
        self.completeConnection()
        status = proxy.status()
        self.assertEqual((status["mode"], status["state"], status["error"]["code"]),
                         ("Virgin", "NotConnected", "INTERNAL"))
        self.assertFalse(proxy.zoneDir.enrolled())

    def refuseConnection(self):
        """
        Refuse the proxy's pending enrolment connection.
        """
        [(_, _, factory, _, _)] = self.reactor.tcpClients
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(ConnectionRefusedError()))
        self.reactor.advance(0.3)

    def test_stopCancelsRetry(self):
        """
        Stopping the proxy cancels a scheduled enrolment retry.
        """
        proxy = self.proxy(self.hub.enrolment.newCode("phone"), start=False)
        proxy.startService()
        self.refuseConnection()
        retry = proxy._virgin.retryCall
        self.assertIn(retry, self.reactor.getDelayedCalls())
        proxy.stopService()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_notRunningNoRetry(self):
        """
        A retryable failure while the proxy is stopped schedules nothing.
        """
        proxy = self.proxy(self.hub.enrolment.newCode("phone"), start=False)
        proxy._virgin.start()
        self.refuseConnection()
        self.assertEqual(proxy.lastError.code, "NOT_CONNECTED")
        self.assertIsNone(proxy._virgin.retryCall)
        self.assertEqual(self.reactor.getDelayedCalls(), [])


class HubModeTests(ProxyTestBase):
    """
    An enrolled proxy and its hub link.
    """

    def setUp(self):
        super().setUp()
        self.addCleanup(self.assertNoTimers)

    def assertNoTimers(self):
        """
        Once every proxy stopped (its link closed, reconnection attempts
        cancelled), nothing is left scheduled, the hub's pending peer
        update aside.
        """
        self.hub.registry.cancel()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_enrolledIgnoresCode(self):
        """
        An enrolled device started with a pairing code ignores it and
        connects to its own hub.
        """
        code = PairingCode("127.0.0.1", 9999, "t" * 32, self.fixture.zone.caFingerprint)
        proxy = self.proxy(code, dataDir=self.enrolledDir())
        [(host, port, _, _, _)] = self.reactor.tcpClients
        self.assertEqual((host, port), (HOST, HUB_PORT))
        self.assertEqual((proxy.status()["mode"], proxy.status()["device"]),
                         ("Hub", f"{ZONE}/phone"))

    def test_connected(self):
        """
        Once the hub registered the device, the status says
        Hub/Connected and lists the peers the hub announced: none but
        itself, which is no peer.
        """
        proxy = self.connected()
        self.reactor.advance(self.hub.settings.coalesce)
        self.flush()
        status = proxy.status()
        self.assertEqual(
            {k: status[k] for k in STATUS_KEYS},
            {"device": f"{ZONE}/phone", "zone": ZONE, "mode": "Hub", "state": "Connected",
             "hub": f"{HOST}:{HUB_PORT}"},
        )
        self.assertEqual(status["peers"], {})

    def test_lostAndReconnected(self):
        """
        When the hub drops the link the proxy cleans up (peers forgotten),
        is NotConnected, and the reconnecting service tries again.
        """
        proxy = self.connected()
        self.reactor.advance(self.hub.settings.coalesce)
        self.flush()
        self.hub.registry.get(f"{ZONE}/phone").transport.loseConnection()
        self.flush()
        self.assertEqual(proxy.status()["state"], "NotConnected")
        self.assertEqual(proxy.status()["peers"], {})
        self.reactor.advance(proxy.settings.maxBackoff + 1)
        self.assertEqual(proxy.status()["state"], "Connecting")
        self.completeConnection()
        self.assertEqual(proxy.status()["state"], "Connected")

    def test_refusedLink(self):
        """
        A link the hub refuses before registration (a certificate from
        another CA: C{CERT_UNTRUSTED}) leaves the proxy NotConnected with
        that error, and the closing connection feeds the Hub machine
        nothing it has no transition for.
        """
        creds = enrolledCredentials(self.fixture, "phone")
        caKey, caCert = pki.createZoneCA(ZONE, self.fixture.now())
        foreign = pki.issueDeviceCertificate(
            caKey, caCert, pki.makeCSR(creds.key, "phone"), creds.deviceId, 5,
            self.fixture.now())
        dataDir = self.mktemp()
        ZoneDirectory(dataDir).store(Credentials(
            zoneId=ZONE, deviceId=creds.deviceId, hubHost=HOST, hubPort=HUB_PORT,
            key=creds.key, cert=foreign, caCert=creds.caCert, crl=creds.crl))
        proxy = self.proxy(dataDir=dataDir)
        pump = self.completeConnection()
        self.assertTrue(pump.clientIO.disconnected)
        status = proxy.status()
        self.assertEqual((status["state"], status["error"]["code"]),
                         ("NotConnected", "CERT_UNTRUSTED"))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_hubIdentityChecked(self):
        """
        After the handshake the link checks that the hub's certificate is
        for the device's own zone: a hub of a zone the device is not in is
        refused with C{HUB_UNTRUSTED}, even when the TLS layer accepted it.
        """
        creds = enrolledCredentials(self.fixture, "phone")
        dataDir = self.mktemp()
        ZoneDirectory(dataDir).store(Credentials(
            zoneId="bob@127.0.0.1", deviceId=creds.deviceId, hubHost=HOST, hubPort=HUB_PORT,
            key=creds.key, cert=creds.cert, caCert=creds.caCert, crl=creds.crl))
        proxy = self.proxy(dataDir=dataDir)
        pump = self.completeConnection()
        self.assertTrue(pump.clientIO.disconnected)
        status = proxy.status()
        self.assertEqual((status["state"], status["error"]["code"]),
                         ("NotConnected", "HUB_UNTRUSTED"))
        self.assertEqual([e.code for e in self.gaveUp], ["HUB_UNTRUSTED"])

    def test_sendAndReceive(self):
        """
        A text sent from one proxy is acknowledged (the admin command says
        delivered) and lands in the other proxy's inbox.
        """
        phone = self.connected("phone")
        tablet = self.connected("tablet")
        d = ProxyAdmin(phone).command_send(f"{ZONE}/tablet", "hello")
        self.flush()
        self.assertEqual(self.successResultOf(d),
                         {"to": f"{ZONE}/tablet", "delivered": True, "queued": False})
        [message] = tablet.inbox.messages()
        self.assertEqual((message["from"], message["text"]), (f"{ZONE}/phone", "hello"))

    def test_sendToUnknown(self):
        """
        Sending to a device the zone does not have fails with the hub's
        code.
        """
        phone = self.connected("phone")
        d = phone.send(f"{ZONE}/nobody", "hi")
        self.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "UNKNOWN_DESTINATION")

    def test_sendToNoDevice(self):
        """
        A destination that is not a device id (empty, the zone id, a bare
        name) is refused with C{BAD_REQUEST} naming the form, before
        anything is sent: the hub would take the message as meant for
        itself and answer C{UNKNOWN_MESSAGE}.
        """
        phone = self.connected("phone")
        for to in ("", ZONE, f"{ZONE}/", "tablet", "/tablet", f"{ZONE}/-x"):
            error = self.assertRaises(ZoneError, phone.send, to, "hi")
            self.assertEqual(error.code, "BAD_REQUEST", to)
            self.assertIn("is not a device id: give ZONE/NAME", error.message)
        self.flush()
        self.assertEqual(phone.status()["state"], "Connected")

    def test_sendWhileConnecting(self):
        """
        Before the link is up, C{send} fails with C{NOT_CONNECTED}.
        """
        proxy = self.proxy(dataDir=self.enrolledDir())
        d = proxy.send(f"{ZONE}/tablet", "hi")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")


class SendArgumentTests(SynchronousTestCase):
    """
    What L{Proxy.send} refuses before anything is sent.
    """

    def setUp(self):
        self.proxy = Proxy(self.mktemp(), MemoryReactorClock(), "phone")

    def test_badArguments(self):
        """
        A non-string destination or text, or a text over the limit, is
        refused with C{BAD_REQUEST}.
        """
        for to, text in ((5, "hi"), ("a/b", None), ("a/b", "x" * (MAX_TEXT + 1))):
            error = self.assertRaises(ZoneError, self.proxy.send, to, text)
            self.assertEqual(error.code, "BAD_REQUEST")

    def test_badQueue(self):
        """
        A C{queue} that is not a boolean is refused with C{BAD_REQUEST}.
        """
        for queue in ("yes", 1, None):
            error = self.assertRaises(ZoneError, self.proxy.send, "alice@127.0.0.1/b", "hi",
                                      queue)
            self.assertEqual(error.code, "BAD_REQUEST")
            self.assertIn("queue", error.message)

    def test_virgin(self):
        """
        A device in no zone refuses to send with C{NOT_CONNECTED}.
        """
        error = self.assertRaises(ZoneError, self.proxy.send, "alice@127.0.0.1/b", "hi")
        self.assertEqual(error.code, "NOT_CONNECTED")


class ProxyAdminTests(SynchronousTestCase):
    """
    Tests for L{ProxyAdmin}.
    """

    def test_status(self):
        """
        C{status} answers the proxy's status.
        """
        proxy = Proxy(self.mktemp(), MemoryReactorClock(), "phone")
        self.assertEqual(ProxyAdmin(proxy).command_status(), proxy.status())

    def test_sendError(self):
        """
        C{send} passes the proxy's refusal on.
        """
        proxy = Proxy(self.mktemp(), MemoryReactorClock(), "phone")
        self.assertRaises(ZoneError, ProxyAdmin(proxy).command_send, "a/b", "hi")


class RecordingInputs:
    def __init__(self) -> None:
        self.calls = []

    def attempt(self):
        self.calls.append(("attempt",))

    def failed(self, reason):
        self.calls.append(("failed", reason))


class ServiceProtocol:
    """
    Stands for what the reconnecting service builds: its proxy around a
    hub link, with the link's C{registered}.
    """

    def __init__(self, lose=None) -> None:
        self.registered = Deferred()
        self.events = []
        self._lose = lose

    def makeConnection(self, transport):
        self.events.append("makeConnection")

    def dataReceived(self, data):
        self.events.append(data)

    def handshakeCompleted(self):
        self.events.append("handshakeCompleted")

    def connectionLost(self, reason):
        self.events.append("connectionLost")
        if self._lose is not None:
            raise self._lose


class ServiceFactory:
    def __init__(self, protocol) -> None:
        self.protocol = protocol

    def buildProtocol(self, addr):
        return self.protocol


class FakeEndpoint:
    """
    Connects at once (building the protocol, as the TLS layer would wrap
    it) or fails with C{failure}.
    """

    def __init__(self, failure=None) -> None:
        self.failure = failure
        self.built = []

    def connect(self, factory):
        if self.failure is not None:
            return self.failure
        relay = factory.buildProtocol(IPv4Address("TCP", HOST, HUB_PORT))
        self.built.append(relay)
        return succeed(relay)


class ObservedEndpointTests(SynchronousTestCase):
    """
    Tests for L{pzp.hubmode._ObservedEndpoint}.
    """

    def setUp(self):
        self.inputs = RecordingInputs()

    def observe(self, failure=None):
        endpoint = FakeEndpoint(failure)
        return endpoint, _ObservedEndpoint(lambda: endpoint, self.inputs.attempt,
                                           self.inputs.failed)

    def test_success(self):
        """
        Each attempt is announced to the Hub machine, then the protocol the
        service built is what the attempt yields.
        """
        endpoint, observed = self.observe()
        protocol = ServiceProtocol()
        self.assertIs(self.successResultOf(observed.connect(ServiceFactory(protocol))),
                      protocol)
        self.assertEqual(self.inputs.calls, [("attempt",)])

    def test_failure(self):
        """
        A failed attempt is reported as C{NOT_CONNECTED} and still fails
        for the reconnecting service.
        """
        _, observed = self.observe(fail(ConnectionRefusedError()))
        self.failureResultOf(observed.connect(ServiceFactory(None)), ConnectionRefusedError)
        [attempt, (name, reason)] = self.inputs.calls
        self.assertEqual((name, reason.code), ("failed", "NOT_CONNECTED"))

    def test_zoneError(self):
        """
        A L{ZoneError} failure is reported as itself.
        """
        error = ZoneError("TIMEOUT")
        _, observed = self.observe(fail(error))
        self.failureResultOf(observed.connect(ServiceFactory(None)), ZoneError)
        self.assertIs(self.inputs.calls[1][1], error)

    def test_failureLater(self):
        """
        A failure that comes later is reported when it comes.
        """
        d = Deferred()
        _, observed = self.observe(d)
        result = observed.connect(ServiceFactory(None))
        self.assertEqual(self.inputs.calls, [("attempt",)])
        d.errback(ConnectionRefusedError())
        self.failureResultOf(result, ConnectionRefusedError)
        self.assertEqual(len(self.inputs.calls), 2)


@implementer(IIdentity)
class FakeIdentity:
    current = None

    def replaceIdentity(self, key, cert):
        pass

    def replaceCRL(self, crl):
        pass


class WiringTests(ProxyTestBase):
    """
    The proxy builds its workers in one place and each worker checks, when
    wired, that its collaborators are what it needs.
    """

    def test_hubWorkersWired(self):
        """
        An enrolled proxy's Hub workers provide their interfaces, and the
        hub link's names on the proxy lead to them.
        """
        proxy = self.connected()
        hub = proxy._mode.hub()
        verifyObject(IHubWorkers, hub)
        for interface, worker in ((IIdentity, hub.identity), (IHubMode, hub.hubMode),
                                  (IRenewal, hub.renewal), (IRevocation, hub.revocation),
                                  (IPeerDirectory, hub.directory)):
            verifyObject(interface, worker)
        verifyObject(IProxyEvents, proxy)
        self.assertIs(proxy.hubInputs, hub.hubMode)
        self.assertIs(proxy.inbox, hub.inbox)
        self.assertIs(proxy.credentials, hub.identity.current)

    def test_swappedCollaboratorsRefused(self):
        """
        Collaborators given in the wrong places fail at once, not when a
        message first arrives.
        """
        proxy = self.proxy(start=False)
        renewal, revocation = Renewal(self.reactor), Revocation(proxy.zoneDir)
        hubMode = HubMode(self.reactor, proxy.settings, None, proxy)
        self.assertRaises(TypeError, hubMode.wire, proxy, FakeIdentity(), revocation, renewal,
                          PeerDirectory())
        self.assertRaises(TypeError, renewal.wire, FakeIdentity(), proxy)
        self.assertRaises(TypeError, VirginMode(self.reactor, proxy.settings, proxy.zoneDir,
                                                "phone", None).wire, object())
