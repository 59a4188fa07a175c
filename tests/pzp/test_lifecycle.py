"""
Tests for the device's side of the certificate lifecycle (L{pzp.proxy} and
its workers L{pzp.renewal} and L{pzp.revocation}, L{pzp.hublink},
L{pzp.zonedir}): renewal at two thirds of the
certificate's life and within the grace period after expiry, keeping only
newer CRLs signed by the zone CA, and erasing the zone only on proof of
revocation.

The proxy runs on a L{MemoryReactorClock} set to the present; its hub is a
real one sharing that clock (or, to send what a real hub never would, a
scripted one holding the zone's hub certificate), reached over TLS in
memory with L{twisted.test.iosim}.
"""

import json
import os
import stat
import time
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.error import ConnectionRefusedError, TimeoutError
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki, tls
from pz.errors import ZoneError
from pz.testing import HOST, HUB_PORT, ZONE, MemoryHub, address, connectPair, frame
from pzp.proxy import Proxy, ProxySettings
from pzp.renewal import renewalTime
from pzp.zonedir import MARKER, ZoneDirectory
from tests.pzp._support import enrolledCredentials, prop

PHONE = f"{ZONE}/phone"


def snapshot(top: str) -> dict:
    """
    Everything under C{top}, symbolic links as links (never followed):
    path -> C{("link", target)}, C{("file", bytes, mode)} or C{("dir",)}.
    The synchronisation state (C{zone/sync/}) is left out: its bookkeeping
    changes with every scan, and it is no zone data a person would miss.
    """
    out = {}
    for directory, dirs, files in os.walk(top):
        if os.path.relpath(directory, top) == "zone":
            dirs[:] = [d for d in dirs if d != "sync"]
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir",)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(os.stat(path).st_mode))
    return out


@implementer(IHandshakeListener)
class ScriptedHub(Protocol):
    """
    A hub that, once TLS is up, sends the payloads it was given to the
    device (and closes, unless told to stay silent and open).
    """

    def __init__(self, payloads, close=True) -> None:
        self.payloads = payloads
        self.close = close

    def handshakeCompleted(self) -> None:
        for payload in self.payloads:
            self.transport.write(frame(prop(payload, to=PHONE)))
        if self.close:
            self.transport.loseConnection()


class LifecycleTestBase(SynchronousTestCase):
    """
    A reactor at the present time, a real hub sharing it, and helpers to
    run a proxy against it.
    """

    certLifetime = timedelta(days=90)

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(time.time())
        self.fixture = MemoryHub(self, clock=self.reactor, onDisk=False)
        self.hub = self.fixture.hub
        self.hub.authority.certLifetime = self.certLifetime
        self.pumps = []
        self.ports = iter(range(41000, 42000))
        self.addCleanup(self.assertQuiet)

    def assertQuiet(self):
        """
        Once the proxies stopped and the links settled, nothing is left
        scheduled on the clock.
        """
        self.flush()
        self.reactor.advance(self.hub.settings.coalesce)
        self.flush()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def flush(self):
        while any([pump.flush() for pump in self.pumps]):
            pass

    def advance(self, seconds: float, step: float = 30.0) -> None:
        """
        Move the clock on in steps no longer than C{step}, moving the bytes
        after each, as time passes for a live link (the keepalive flows).
        """
        end = self.reactor.seconds() + seconds
        while self.reactor.seconds() < end:
            self.reactor.advance(min(step, end - self.reactor.seconds()))
            self.flush()

    def advanceTo(self, when: float) -> None:
        """
        Step the clock on to C{when}.
        """
        self.advance(when - self.reactor.seconds())

    def enrolledDir(self, name="phone"):
        """
        A data directory holding a device enrolled now, with a file of the
        user's next to the zone directory; the directory and credentials.
        """
        dataDir = self.mktemp()
        creds = enrolledCredentials(self.fixture, name)
        ZoneDirectory(dataDir).store(creds)
        with open(os.path.join(dataDir, "keep.txt"), "w") as f:
            f.write("not zone data")
        return dataDir, creds

    def proxy(self, dataDir, settings=ProxySettings()) -> Proxy:
        """
        A started proxy, stopped when the test ends.
        """
        proxy = Proxy(dataDir, self.reactor, "phone", None, settings)
        proxy.startService()
        self.addCleanup(self.stop, proxy)
        return proxy

    def stop(self, proxy):
        d = proxy.stopService()
        self.flush()
        self.successResultOf(d)

    def connectTo(self, serverFactory):
        """
        Complete the proxy's pending connection against C{serverFactory}
        (a TLS server factory); the pump.
        """
        host, port, factory, _, _ = self.reactor.tcpClients.pop(0)
        self.assertEqual((host, port), (HOST, HUB_PORT))
        pump = connectPair(serverFactory, factory, self.reactor, address(HOST, HUB_PORT),
                           address(HOST, next(self.ports))).pump
        self.pumps.append(pump)
        self.flush()
        return pump

    def connectHub(self):
        """
        Complete the proxy's pending connection to the real hub.
        """
        return self.connectTo(self.fixture.serverFactory)

    def connectScripted(self, payloads, close=True, hubOptions=None):
        """
        Complete the proxy's pending connection to a L{ScriptedHub}.
        """
        zone = self.fixture.zone
        options = hubOptions or tls.hubServerOptions(zone.caCert, zone.hubKey, zone.hubCert)
        factory = TLSMemoryBIOFactory(
            options, False, Factory.forProtocol(lambda: ScriptedHub(payloads, close)),
            self.reactor)
        return self.connectTo(factory)

    def connected(self, settings=ProxySettings()):
        """
        An enrolled proxy linked to the real hub: the proxy, its data
        directory and its credentials.
        """
        dataDir, creds = self.enrolledDir()
        proxy = self.proxy(dataDir, settings)
        self.connectHub()
        self.assertEqual(proxy.status()["state"], "Connected")
        return proxy, dataDir, creds

    def renewRequests(self) -> list:
        """
        Record every C{renew} the hub's router is asked for; the list.
        """
        seen = []
        original = self.hub.router.renew

        def renew(link, envelope, *rest):
            seen.append(envelope)
            return original(link, envelope, *rest)

        self.patch(self.hub.router, "renew", renew)
        return seen

    def assertIdentity(self, proxy, cert, key=None):
        """
        The zone directory's identity link points at C{identity-SERIAL}
        of C{cert}, which is the only identity directory, holds C{cert}
        and a 0600 key matching it, and is what the proxy uses.
        """
        zoneDir = proxy.zoneDir
        name = f"identity-{cert.serial_number:x}"
        self.assertTrue(os.path.islink(zoneDir.file("identity")))
        self.assertEqual(os.readlink(zoneDir.file("identity")), name)
        self.assertEqual(sorted(n for n in os.listdir(zoneDir.path)
                                if n.startswith("identity")), ["identity", name])
        keyPath = zoneDir.file(name, "key.pem")
        self.assertEqual(stat.S_IMODE(os.stat(keyPath).st_mode), 0o600)
        loaded = zoneDir.load()
        self.assertEqual(loaded.cert, cert)
        self.assertEqual(loaded.key.public_key(), cert.public_key())
        self.assertEqual(proxy.credentials.cert, cert)
        if key is not None:
            self.assertEqual(pki.keyPEM(loaded.key), pki.keyPEM(key))

    def scheduledAt(self, when: float) -> list:
        """
        The delayed calls due at C{when} (to the millisecond).
        """
        return [c for c in self.reactor.getDelayedCalls() if abs(c.getTime() - when) < 1e-3]


class RenewalScheduleTests(LifecycleTestBase):
    """
    A connected device renews once two thirds of its certificate's life
    have passed.  (A one-hour certificate, so that the clock can step
    through it with the keepalive flowing.)
    """

    certLifetime = timedelta(hours=1)

    def expectedRenewal(self, cert) -> float:
        """
        notBefore + CLOCK_SKEW + 2/3 of the rest of the certificate's life.
        """
        issued = (cert.not_valid_before_utc + pki.CLOCK_SKEW).timestamp()
        return issued + (cert.not_valid_after_utc.timestamp() - issued) * 2 / 3

    def test_renewalTime(self):
        """
        L{renewalTime} is two thirds into the certificate's life counted
        from its issue (not its back-dated notBefore), and a timer is set
        for it as soon as the link is up.
        """
        proxy, _, creds = self.connected()
        expected = self.expectedRenewal(creds.cert)
        self.assertAlmostEqual(renewalTime(proxy.credentials.cert), expected, places=3)
        self.assertEqual(len(self.scheduledAt(expected)), 1)

    def test_renewsAtTwoThirds(self):
        """
        No C{renew} goes out before the renewal time; right after it one
        does, the hub's C{renewed} is stored by swapping the identity link
        to the new C{identity-SERIAL} (old one gone, key 0600), the link
        stays up, the next renewal is scheduled from the new certificate,
        and the next connection presents it.
        """
        seen = self.renewRequests()
        proxy, dataDir, creds = self.connected()
        server = self.hub.registry.get(PHONE)
        when = renewalTime(proxy.credentials.cert)
        self.advanceTo(when - 1)
        self.assertEqual(seen, [])
        self.assertIdentity(proxy, creds.cert, creds.key)
        self.advance(1)
        self.assertEqual(len(seen), 1)
        cert = proxy.credentials.cert
        self.assertNotEqual(cert.serial_number, creds.cert.serial_number)
        self.assertIdentity(proxy, cert)
        self.assertFalse(os.path.exists(
            proxy.zoneDir.file(f"identity-{creds.cert.serial_number:x}")))
        self.assertFalse(os.path.lexists(proxy.zoneDir.file("identity.new")))
        self.assertEqual(self.hub.store.getDevice(PHONE).serial, cert.serial_number)
        self.assertEqual(proxy.status()["state"], "Connected")
        self.assertIs(self.hub.registry.get(PHONE), server)
        self.assertEqual(proxy.status()["certificate"]["serial"], format(cert.serial_number, "x"))
        self.assertEqual(len(self.scheduledAt(self.expectedRenewal(cert))), 1)

        server.transport.loseConnection()
        self.flush()
        self.advance(proxy.settings.maxBackoff + 1)
        self.connectHub()
        self.assertEqual(proxy.status()["state"], "Connected")
        newServer = self.hub.registry.get(PHONE)
        self.assertEqual(newServer.serial, cert.serial_number)

    def test_failedRenewalRetries(self):
        """
        A renewal the hub refuses is reported, keeps the current identity
        and the link, and is retried a tenth of the remaining life later
        (not before), which then succeeds.
        """
        seen = self.renewRequests()
        proxy, _, creds = self.connected()
        server = self.hub.registry.get(PHONE)
        authorityRenew = self.hub.authority.renew

        def refuse(deviceId, csr, presented=None, grace=False):
            raise ZoneError("CERT_INVALID", "not today")

        self.patch(self.hub.authority, "renew", refuse)
        self.advanceTo(renewalTime(proxy.credentials.cert))
        self.assertEqual(len(seen), 1)
        self.assertEqual(proxy.status()["error"]["code"], "CERT_INVALID")
        self.assertEqual(proxy.status()["state"], "Connected")
        self.assertIs(self.hub.registry.get(PHONE), server)
        self.assertIdentity(proxy, creds.cert, creds.key)
        retry = (creds.cert.not_valid_after_utc.timestamp() - self.reactor.seconds()) / 10
        self.patch(self.hub.authority, "renew", authorityRenew)
        self.advance(retry - 1)
        self.assertEqual(len(seen), 1)
        self.advance(1)
        self.assertEqual(len(seen), 2)
        self.assertNotEqual(proxy.credentials.cert.serial_number, creds.cert.serial_number)
        self.assertIdentity(proxy, proxy.credentials.cert)
        self.assertIs(self.hub.registry.get(PHONE), server)

    def test_unansweredRenewalRetries(self):
        """
        A renewal the hub never answers times out after C{requestTimeout}
        and is retried later on the same link.
        """
        proxy, _, creds = self.connected()
        server = self.hub.registry.get(PHONE)
        asked = []
        self.patch(self.hub.router, "renew", lambda link, env, *rest: asked.append(env))
        self.advanceTo(renewalTime(proxy.credentials.cert))
        self.assertEqual(len(asked), 1)
        self.advance(proxy.settings.requestTimeout, step=1)
        self.assertEqual(proxy.status()["error"]["code"], "TIMEOUT")
        self.assertEqual(proxy.status()["state"], "Connected")
        self.assertIs(self.hub.registry.get(PHONE), server)
        retry = (creds.cert.not_valid_after_utc.timestamp() - self.reactor.seconds()) / 10
        self.advance(retry - 1)
        self.assertEqual(len(asked), 1)
        self.advance(1)
        self.assertEqual(len(asked), 2)
        self.assertIdentity(proxy, creds.cert, creds.key)

    def test_renewalRefusedAsRevokedWipesNothing(self):
        """
        A device revoked while its link stays up (by another hub process)
        sees its renewal fail with C{CERT_REVOKED}: an error reply, not
        evidence, so nothing is erased and it stays in Hub mode.
        """
        proxy, dataDir, creds = self.connected()
        self.hub.authority.revoke(PHONE)
        before = snapshot(dataDir)
        self.advanceTo(renewalTime(proxy.credentials.cert))
        self.assertEqual(proxy.status()["error"]["code"], "CERT_REVOKED")
        self.assertEqual(proxy.mode, "Hub")
        self.assertEqual(snapshot(dataDir), before)

    def test_lostLinkCancelsRenewal(self):
        """
        When the link goes, the renewal timer goes with it; a new one is
        set when the next link is up.
        """
        proxy, _, creds = self.connected()
        when = renewalTime(proxy.credentials.cert)
        self.hub.registry.get(PHONE).transport.loseConnection()
        self.flush()
        self.assertEqual(self.scheduledAt(when), [])
        self.advance(proxy.settings.maxBackoff + 1)
        self.connectHub()
        self.assertEqual(len(self.scheduledAt(when)), 1)


class GraceRenewalTests(LifecycleTestBase):
    """
    A device that slept past its certificate's expiry.
    """

    certLifetime = timedelta(hours=1)

    def test_renewsThenReconnects(self):
        """
        Started after its certificate expired (within the grace period),
        the device is told to renew, renews over that link (identity
        swapped on disk), the link closes, and the next connection
        registers with the new certificate; the zone stays.
        """
        dataDir, creds = self.enrolledDir()
        self.reactor.advance(timedelta(days=2).total_seconds())
        proxy = self.proxy(dataDir)
        self.connectHub()
        cert = proxy.credentials.cert
        self.assertNotEqual(cert.serial_number, creds.cert.serial_number)
        self.assertIdentity(proxy, cert)
        self.assertEqual(proxy.status()["state"], "NotConnected")
        self.assertEqual(proxy.status()["error"]["code"], "CERT_EXPIRED")
        self.advance(proxy.settings.maxBackoff + 1, step=1)
        self.connectHub()
        self.assertEqual(proxy.status()["state"], "Connected")
        self.assertNotIn("error", proxy.status())
        self.assertEqual(self.hub.registry.get(PHONE).serial,
                         cert.serial_number)
        self.assertEqual(sorted(os.listdir(dataDir)), ["keep.txt", "zone"])

    def test_afterGraceNothingErased(self):
        """
        Past the grace period the hub refuses with C{CERT_EXPIRED}; the
        device reports it and erases nothing.
        """
        dataDir, creds = self.enrolledDir()
        self.reactor.advance(timedelta(days=31).total_seconds())
        before = snapshot(dataDir)
        proxy = self.proxy(dataDir)
        self.connectHub()
        status = proxy.status()
        self.assertEqual((status["mode"], status["error"]["code"]), ("Hub", "CERT_EXPIRED"))
        self.assertIn("pair the device again", status["error"]["message"])
        self.assertEqual(snapshot(dataDir), before)


class CRLReceivedTests(LifecycleTestBase):
    """
    L{Proxy.crlReceived} (the revocation worker) keeps only newer CRLs
    signed by the zone CA.
    """

    def setUp(self):
        super().setUp()
        self.dataDir, self.creds = self.enrolledDir()
        self.proxy = self.proxy(self.dataDir)
        self.crlPath = self.proxy.zoneDir.file("items", "crl.pem")
        self.held = pki.crlNumber(self.creds.crl)

    def onDisk(self) -> bytes:
        with open(self.crlPath, "rb") as f:
            return f.read()

    def assertHolds(self, crl):
        """
        The proxy holds C{crl}, in memory, on disk and in its status.
        """
        self.assertEqual(self.onDisk(), pki.crlPEM(crl))
        self.assertEqual(pki.crlPEM(self.proxy.credentials.crl), pki.crlPEM(crl))
        self.assertEqual(self.proxy.status()["crl"]["number"], pki.crlNumber(crl))

    def test_newerStored(self):
        """
        A newer CRL from the zone CA replaces C{zone/crl.pem}.
        """
        newer = self.hub.authority.publishCRL()
        self.assertGreater(pki.crlNumber(newer), self.held)
        self.proxy.crlReceived(newer)
        self.assertHolds(newer)

    def test_replayIgnored(self):
        """
        Once a newer CRL is held, the older one replayed is ignored, and so
        is another genuine CRL carrying the same number as the one held.
        """
        old = self.creds.crl
        newer = self.hub.authority.publishCRL()
        self.proxy.crlReceived(newer)
        self.proxy.crlReceived(old)
        self.assertHolds(newer)
        zone = self.fixture.zone
        same = pki.buildCRL(zone.caKey, zone.caCert, [(12345, self.fixture.now())],
                            pki.crlNumber(newer), self.fixture.now())
        self.proxy.crlReceived(same)
        self.assertHolds(newer)
        self.proxy.crlReceived(newer)
        self.assertHolds(newer)

    def test_foreignIgnored(self):
        """
        A CRL with a far higher number, signed by another CA with the same
        zone name, is ignored.
        """
        caKey, caCert = pki.createZoneCA(ZONE, self.fixture.now())
        foreign = pki.buildCRL(caKey, caCert, [(self.creds.cert.serial_number,
                                                self.fixture.now())],
                               self.held + 1000, self.fixture.now())
        self.proxy.crlReceived(foreign)
        self.assertHolds(self.creds.crl)

    def test_pushedOverLink(self):
        """
        Revoking another device makes the hub push its CRL, which the
        connected proxy stores.
        """
        self.connectHub()
        self.fixture.enrolDevice("laptop")
        result = self.hub.revoke(f"{ZONE}/laptop")
        self.flush()
        self.assertEqual(pki.crlNumber(self.proxy.credentials.crl), result["crl_number"])
        self.assertHolds(self.hub.authority.crl)


class UnprovenRevocationTests(LifecycleTestBase):
    """
    Signals that do not prove this device was revoked erase nothing: the
    zone directory stays byte for byte, the proxy stays in Hub mode and
    keeps trying to reach its hub.
    """

    def setUp(self):
        super().setUp()
        self.older = self.hub.authority.crl
        self.hub.authority.publishCRL()
        self.dataDir, self.creds = self.enrolledDir()
        self.held = pki.crlNumber(self.creds.crl)
        self.before = snapshot(self.dataDir)
        self.proxy = self.proxy(self.dataDir)

    def assertNothingErased(self, code=None):
        """
        Zone unchanged, Hub mode, the error C{code} if given, and the
        reconnecting service still trying.
        """
        self.assertEqual(snapshot(self.dataDir), self.before)
        status = self.proxy.status()
        self.assertEqual((status["mode"], status["device"]), ("Hub", PHONE))
        if code is not None:
            self.assertEqual(status["error"]["code"], code)
        self.assertIsNotNone(self.proxy.credentials)
        self.reactor.tcpClients[:] = []
        self.advance(self.proxy.settings.maxBackoff + 1, step=1)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def revokedWith(self, crl):
        """
        A scripted hub answers C{CERT_REVOKED} carrying C{crl} (a CRL, a
        string, or nothing).
        """
        payload = {"status": "error", "code": "CERT_REVOKED", "message": "revoked"}
        if crl is not None:
            payload["crl"] = crl if isinstance(crl, str) else pki.crlPEM(crl).decode("ascii")
        self.connectScripted([payload])

    def test_garbageCRL(self):
        """
        C{CERT_REVOKED} with something that is not a CRL is no proof.
        """
        self.revokedWith("-----BEGIN X509 CRL-----\nbm90IGEgY3Js\n-----END X509 CRL-----\n")
        self.assertNothingErased("CRL_INVALID")

    def test_noCRL(self):
        """
        C{CERT_REVOKED} with no CRL at all is no proof.
        """
        self.revokedWith(None)
        self.assertNothingErased("CRL_INVALID")

    def test_tamperedSignature(self):
        """
        The zone's own CRL listing this device, its signature altered, is
        no proof.
        """
        zone = self.fixture.zone
        crl = pki.buildCRL(zone.caKey, zone.caCert,
                           [(self.creds.cert.serial_number, self.fixture.now())],
                           self.held + 1, self.fixture.now())
        der = bytearray(crl.public_bytes(serialization.Encoding.DER))
        at = bytes(der).rindex(crl.signature) + 10
        der[at] ^= 0x01
        tampered = x509.load_der_x509_crl(bytes(der))
        self.assertFalse(pki.crlListsSerial(tampered, zone.caCert, self.creds.cert.serial_number))
        self.revokedWith(tampered)
        self.assertNothingErased("CRL_INVALID")

    def test_foreignCA(self):
        """
        A CRL listing this device's serial, signed by another CA that
        carries the zone's name, is no proof.
        """
        caKey, caCert = pki.createZoneCA(ZONE, self.fixture.now())
        self.revokedWith(pki.buildCRL(caKey, caCert,
                                      [(self.creds.cert.serial_number, self.fixture.now())],
                                      self.held + 5, self.fixture.now()))
        self.assertNothingErased("CRL_INVALID")

    def test_genuineNotListingUs(self):
        """
        A genuine, newer zone CRL that lists another device but not this
        one is no proof.
        """
        self.fixture.enrolDevice("laptop")
        self.hub.authority.revoke(f"{ZONE}/laptop")
        self.revokedWith(self.hub.authority.crl)
        self.assertNothingErased("CRL_INVALID")

    def test_olderGenuine(self):
        """
        An older genuine CRL (from before this device enrolled), which
        does not list it, is no proof.
        """
        self.assertLess(pki.crlNumber(self.older), self.held)
        self.revokedWith(self.older)
        self.assertNothingErased("CRL_INVALID")

    def test_connectionRefused(self):
        """
        A refused connection is only a failed attempt.
        """
        _, _, factory, _, _ = self.reactor.tcpClients[0]
        factory.clientConnectionFailed(self.reactor.connectors[0],
                                       Failure(ConnectionRefusedError()))
        self.reactor.advance(0.3)
        self.assertNothingErased("NOT_CONNECTED")

    def test_connectTimeout(self):
        """
        A connection attempt that times out is only a failed attempt.
        """
        _, _, factory, _, _ = self.reactor.tcpClients[0]
        factory.clientConnectionFailed(self.reactor.connectors[0], Failure(TimeoutError()))
        self.reactor.advance(0.3)
        self.assertNothingErased("NOT_CONNECTED")

    def test_silentHub(self):
        """
        A hub that completes TLS but never says anything is given up on
        after three keepalive periods, and that is all.
        """
        self.connectScripted([], close=False)
        self.assertEqual(self.proxy.status()["state"], "Connecting")
        self.advance(self.proxy.settings.keepalive * 3, step=1)
        self.assertEqual(self.proxy.status()["state"], "NotConnected")
        self.assertNothingErased("NOT_CONNECTED")

    def test_tlsFailure(self):
        """
        A server whose certificate is not from the zone CA fails the TLS
        handshake; even if it then sent C{CERT_REVOKED}, nothing reaches
        the proxy and nothing is erased.
        """
        caKey, caCert = pki.createZoneCA(ZONE, self.fixture.now())
        hubKey = pki.newKey()
        hubCert = pki.issueHubCertificate(caKey, caCert, ZONE, [HOST], hubKey.public_key(),
                                          self.fixture.now())
        crl = pki.buildCRL(caKey, caCert, [(self.creds.cert.serial_number, self.fixture.now())],
                           self.held + 1, self.fixture.now())
        self.connectScripted(
            [{"status": "error", "code": "CERT_REVOKED", "crl": pki.crlPEM(crl).decode("ascii")}],
            hubOptions=tls.hubServerOptions(caCert, hubKey, hubCert))
        self.assertNothingErased("NOT_CONNECTED")

    def test_crlUpdateListingUs(self):
        """
        A genuine C{crlUpdate} listing this device, pushed over the
        registered link, is stored like any newer CRL but erases nothing:
        only the hub's refusal on connect, with its evidence, does.
        """
        self.connectHub()
        self.hub.authority.revoke(PHONE)
        self.hub.pushCRL()
        self.flush()
        crl = self.hub.authority.crl
        self.assertTrue(pki.crlListsSerial(crl, self.fixture.zone.caCert,
                                           self.creds.cert.serial_number))
        with open(self.proxy.zoneDir.file("items", "crl.pem"), "rb") as f:
            self.assertEqual(f.read(), pki.crlPEM(crl))
        self.before["zone/items/crl.pem"] = ("file", pki.crlPEM(crl),
                                             self.before["zone/items/crl.pem"][2])
        self.assertEqual(self.proxy.status()["state"], "Connected")
        self.assertEqual(snapshot(self.dataDir), self.before)
        self.assertEqual(self.proxy.mode, "Hub")

    def test_revokedAfterRegistration(self):
        """
        C{CERT_REVOKED}, with a genuine CRL listing this device, arriving
        on a link the hub already registered answers nothing pending and
        is not acted on as a revocation.
        """
        self.connectHub()
        self.hub.authority.revoke(PHONE)
        server = self.hub.registry.get(PHONE)
        server.sendMessage(PHONE, {"status": "error", "code": "CERT_REVOKED",
                                   "message": "revoked",
                                   "crl": self.hub.authority.crlPEM.decode("ascii")})
        self.flush()
        self.assertEqual(self.proxy.status()["state"], "Connected")
        self.assertEqual(snapshot(self.dataDir), self.before)
        self.assertEqual(self.proxy.mode, "Hub")


class ProvenRevocationTests(LifecycleTestBase):
    """
    The hub's refusal on connect with a CRL from our zone CA that lists our
    serial: the zone is erased and the device is back in Virgin mode.
    """

    def test_revokedWhileConnected(self):
        """
        Revoked while connected: the hub drops the link; on the next
        connection it answers C{CERT_REVOKED} with its CRL, and the proxy
        erases the zone directory (only it), stops the reconnecting
        service, returns to Virgin mode and says why.
        """
        proxy, dataDir, creds = self.connected()
        client = proxy.hubInputs.client
        self.hub.revoke(PHONE)
        self.flush()
        self.assertEqual(proxy.status()["state"], "NotConnected")
        self.assertTrue(proxy.zoneDir.enrolled())
        self.advance(proxy.settings.maxBackoff + 1, step=1)
        self.connectHub()
        self.reactor.advance(0)
        self.assertFalse(os.path.lexists(os.path.join(dataDir, "zone")))
        self.assertEqual(os.listdir(dataDir), ["keep.txt"])
        self.assertEqual(proxy.mode, "Virgin")
        status = proxy.status()
        self.assertEqual((status["mode"], status["state"], status["device"], status["zone"]),
                         ("Virgin", "NotConnected", None, None))
        self.assertEqual(status["error"]["code"], "CERT_REVOKED")
        self.assertFalse(client.running)
        self.assertNotIn(client, list(proxy))
        self.assertIsNone(proxy.credentials)
        self.reactor.tcpClients[:] = []
        self.advance(3600, step=60)
        self.assertEqual(self.reactor.tcpClients, [])

    def test_scriptedEvidence(self):
        """
        The same from a hub that only sends the refusal: a CRL signed by
        our zone CA listing our serial is enough, whatever else it lists.
        """
        dataDir, creds = self.enrolledDir()
        proxy = self.proxy(dataDir)
        zone = self.fixture.zone
        crl = pki.buildCRL(zone.caKey, zone.caCert,
                           [(7, self.fixture.now()),
                            (creds.cert.serial_number, self.fixture.now())],
                           pki.crlNumber(creds.crl) + 1, self.fixture.now())
        self.connectScripted([{"status": "error", "code": "CERT_REVOKED", "message": "gone",
                               "crl": pki.crlPEM(crl).decode("ascii")}])
        self.assertFalse(proxy.zoneDir.enrolled())
        self.assertEqual(os.listdir(dataDir), ["keep.txt"])
        self.assertEqual(proxy.status()["error"]["code"], "CERT_REVOKED")

    def test_neverThroughSymlink(self):
        """
        If C{zone/} is a symbolic link to a directory elsewhere, a proven
        revocation still ends Hub mode but erases nothing through the
        link: its target stays as it was.
        """
        elsewhere, creds = self.enrolledDir()
        before = snapshot(elsewhere)
        dataDir = self.mktemp()
        os.makedirs(dataDir)
        os.symlink(os.path.join(os.path.abspath(elsewhere), "zone"),
                   os.path.join(dataDir, "zone"))
        proxy = self.proxy(dataDir)
        self.hub.authority.revoke(PHONE)
        self.connectHub()
        self.assertEqual(proxy.mode, "Virgin")
        self.assertEqual(snapshot(elsewhere), before)
        self.assertTrue(os.path.islink(os.path.join(dataDir, "zone")))


class WipeTests(SynchronousTestCase):
    """
    L{ZoneDirectory.wipe} erases only a marked zone directory it created.
    """

    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.reactor.advance(time.time())
        self.fixture = MemoryHub(self, clock=self.reactor, onDisk=False)
        self.creds = enrolledCredentials(self.fixture, "phone")

    def stored(self) -> ZoneDirectory:
        zoneDir = ZoneDirectory(self.mktemp())
        zoneDir.store(self.creds)
        return zoneDir

    def test_wipes(self):
        """
        A marked zone directory is erased, and only it: the data
        directory stays.
        """
        zoneDir = self.stored()
        self.assertTrue(zoneDir.wipe())
        self.assertFalse(os.path.lexists(zoneDir.path))
        self.assertEqual(os.listdir(zoneDir.dataDir), [])

    def test_noMarker(self):
        """
        Without the marker nothing is erased.
        """
        zoneDir = self.stored()
        os.unlink(zoneDir.file(MARKER))
        before = snapshot(zoneDir.dataDir)
        self.assertFalse(zoneDir.wipe())
        self.assertEqual(snapshot(zoneDir.dataDir), before)

    def test_zoneIsSymlink(self):
        """
        When C{zone/} is a symbolic link to a marked zone directory
        elsewhere, nothing is erased: not the link, not its target.
        """
        target = self.stored()
        before = snapshot(target.dataDir)
        dataDir = self.mktemp()
        os.makedirs(dataDir)
        os.symlink(target.path, os.path.join(dataDir, "zone"))
        zoneDir = ZoneDirectory(dataDir)
        self.assertTrue(zoneDir.enrolled())
        self.assertFalse(zoneDir.wipe())
        self.assertEqual(snapshot(target.dataDir), before)
        self.assertTrue(os.path.islink(zoneDir.path))

    def test_innerSymlinkNotFollowed(self):
        """
        A symbolic link inside the zone directory pointing elsewhere is
        removed as a link; what it points at is untouched.
        """
        zoneDir = self.stored()
        outside = self.mktemp()
        os.makedirs(outside)
        with open(os.path.join(outside, "precious"), "w") as f:
            f.write("keep")
        os.symlink(os.path.abspath(outside), zoneDir.file("shortcut"))
        self.assertTrue(zoneDir.wipe())
        self.assertFalse(os.path.lexists(zoneDir.path))
        with open(os.path.join(outside, "precious")) as f:
            self.assertEqual(f.read(), "keep")

    def test_markerContents(self):
        """
        The marker the wipe depends on names this device and zone.
        """
        zoneDir = self.stored()
        with open(zoneDir.file(MARKER)) as f:
            marker = json.load(f)
        self.assertEqual((marker["zone"], marker["device"]), (ZONE, PHONE))
