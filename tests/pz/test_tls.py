"""
Tests for L{pz.tls}: both ends of each TLS link run in memory, wrapped by
L{TLSMemoryBIOFactory} and pumped by L{twisted.test.iosim}.
"""

from __future__ import annotations

import functools
import struct
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from service_identity import VerificationError
from zope.interface import implementer

from twisted.internet.interfaces import (
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    TLSVersion,
    optionsForClientTLS,
)
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase

from pz import pki, tls
from pz.pki import CertificateError
from pz.testing import tlsLoopback

NOW = datetime.now(timezone.utc)
ZONE = "anna@hub.example"
HUB_HOST = "hub.example"
HUB_IP = "127.0.0.1"


class _Zone:
    """
    A zone CA with a hub certificate (for L{HUB_HOST} and L{HUB_IP}) and
    device certificates, made once for all tests since keys are slow-ish.
    """

    def __init__(self, zoneId: str) -> None:
        self.zoneId = zoneId
        self.caKey, self.caCert = pki.createZoneCA(zoneId, NOW)
        self.hubKey = pki.newKey()
        self.hubCert = pki.issueHubCertificate(
            self.caKey,
            self.caCert,
            zoneId,
            [HUB_HOST, HUB_IP],
            self.hubKey.public_key(),
            NOW,
        )
        self._serial = 1

    def device(self, name: str):
        """
        Enrol a device called C{name}: return its key and certificate.
        """
        key = pki.newKey()
        self._serial += 1
        cert = pki.issueDeviceCertificate(
            self.caKey,
            self.caCert,
            pki.makeCSR(key, name),
            f"{self.zoneId}/{name}",
            self._serial,
            NOW,
        )
        return key, cert

    def serverOptions(self):
        """
        The hub's server options.
        """
        return tls.hubServerOptions(self.caCert, self.hubKey, self.hubCert)


_zone = None
_foreign = None


@functools.cache
def namedZone(zoneId: str) -> _Zone:
    """
    One L{_Zone} for C{zoneId}, made once for all tests (another zone than
    L{_zones}'s: a friend's, a stranger's).
    """
    return _Zone(zoneId)


def _zones() -> tuple[_Zone, _Zone]:
    """
    Our zone and a foreign zone whose CA has the very same name.
    """
    global _zone, _foreign
    if _zone is None:
        _zone = _Zone(ZONE)
        _foreign = _Zone(ZONE)
    return _zone, _foreign


class _RewritingTransport(FakeTransport):
    """
    The server's side of an in-memory connection, passing the bytes the
    client sends through C{rewrite} before the server's TLS layer sees them.
    """

    def __init__(self, protocol, rewrite):
        super().__init__(protocol, isServer=True)
        self._rewrite = rewrite

    def bufferReceived(self, buf):
        """
        Rewrite C{buf}, then deliver it.
        """
        super().bufferReceived(self._rewrite(buf))


def _uint24(n: int) -> bytes:
    """
    C{n} as a TLS 3-byte big-endian length.
    """
    return struct.pack(">I", n)[1:]


class _ReplaceClientCertificate:
    """
    A man in the middle of a TLS 1.2 handshake that swaps the certificate
    the client sends for another one.  In TLS 1.2 the client's Certificate
    message travels in clear, so this is what an attacker holding a copy of
    someone's certificate (but not their key) can do.
    """

    def __init__(self, certificate) -> None:
        self._leaf = certificate.public_bytes(serialization.Encoding.DER)
        self._buffer = b""
        self._encrypted = False
        self.replaced = 0

    def __call__(self, data: bytes) -> bytes:
        """
        Rewrite whole records in C{data}, holding back any partial one.
        """
        self._buffer += data
        out = []
        while len(self._buffer) >= 5:
            contentType, version, length = struct.unpack(">BHH", self._buffer[:5])
            if len(self._buffer) < 5 + length:
                break
            fragment = self._buffer[5 : 5 + length]
            self._buffer = self._buffer[5 + length :]
            if contentType == 20:
                self._encrypted = True
            elif contentType == 22 and not self._encrypted:
                fragment = self._rewriteHandshake(fragment)
            out.append(struct.pack(">BHH", contentType, version, len(fragment)))
            out.append(fragment)
        return b"".join(out)

    def _swapLeaf(self, body: bytes) -> bytes:
        """
        Replace the first certificate of a TLS 1.2 Certificate message body
        (a 3-byte length, then certificates each with a 3-byte length),
        keeping the rest of the chain the client sent.
        """
        (first,) = struct.unpack(">I", b"\0" + body[3:6])
        rest = body[6 + first :]
        entries = _uint24(len(self._leaf)) + self._leaf + rest
        return _uint24(len(entries)) + entries

    def _rewriteHandshake(self, fragment: bytes) -> bytes:
        """
        Replace the body of any Certificate message in C{fragment}.
        """
        messages = []
        while fragment:
            kind = fragment[0]
            (length,) = struct.unpack(">I", b"\0" + fragment[1:4])
            body = fragment[4 : 4 + length]
            fragment = fragment[4 + length :]
            if kind == 11:
                body = self._swapLeaf(body)
                self.replaced += 1
            messages.append(bytes([kind]) + _uint24(len(body)) + body)
        return b"".join(messages)


def _loopback(serverOptions, clientOptions, rewrite=None):
    """
    L{tlsLoopback}, the server's bytes passed through C{rewrite} if given.
    """
    factory = None if rewrite is None else (lambda p: _RewritingTransport(p, rewrite))
    return tlsLoopback(serverOptions, clientOptions, factory)


def _clientCertificate(key, cert) -> PrivateCertificate:
    """
    Twisted's form of a key and its certificate.
    """
    return PrivateCertificate.loadPEM(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + pki.certificatePEM(cert)
    )


@implementer(IOpenSSLClientConnectionCreator)
class _TLS11Client:
    """
    A client that speaks only TLS 1.1, with every cipher allowed, so that
    nothing but the server's minimum version can stop it.
    """

    def clientConnectionForTLS(self, tlsProtocol):
        """
        Make a TLS 1.1-only client connection.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_1_VERSION)
        context.set_max_proto_version(SSL.TLS1_1_VERSION)
        context.set_cipher_list(b"ALL:@SECLEVEL=0")
        return SSL.Connection(context, None)


@implementer(IOpenSSLClientConnectionCreator)
class _RecordingClient:
    """
    Client options that keep the OpenSSL connection they make, so that a
    test can ask it what was negotiated.

    @ivar connection: the last connection made.
    """

    connection = None

    def __init__(self, options):
        self._options = options

    def clientConnectionForTLS(self, tlsProtocol):
        """
        Make and keep a connection.
        """
        self.connection = self._options.clientConnectionForTLS(tlsProtocol)
        return self.connection


@implementer(IOpenSSLServerConnectionCreator)
class _TLS11Server:
    """
    A server that speaks only TLS 1.1, with every cipher allowed.
    """

    def __init__(self, key, cert):
        self._key = key
        self._cert = cert

    def serverConnectionForTLS(self, tlsProtocol):
        """
        Make a TLS 1.1-only server connection.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_1_VERSION)
        context.set_max_proto_version(SSL.TLS1_1_VERSION)
        context.set_cipher_list(b"ALL:@SECLEVEL=0")
        context.use_certificate(self._cert)
        context.use_privatekey(self._key)
        return SSL.Connection(context, None)


class HubServerTests(SynchronousTestCase):
    """
    Tests for L{tls.hubServerOptions}: who may complete a handshake with the
    hub, and what the hub then sees.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()

    def test_deviceWithZoneCertificate(self):
        """
        A device with a zone certificate connects; in C{handshakeCompleted}
        the hub sees that certificate, which proves the device's id, and the
        device sees the hub's.
        """
        key, cert = self.zone.device("phone")
        server, client = _loopback(
            self.zone.serverOptions(),
            tls.pzpClientOptions(self.zone.caCert, key, cert, HUB_HOST),
        )
        self.assertTrue(server.handshook)
        self.assertTrue(client.handshook)
        self.assertEqual(server.peer, cert)
        self.assertEqual(
            pki.verifyPeerCertificate(server.peer, self.zone.caCert, None, NOW),
            f"{ZONE}/phone",
        )
        self.assertEqual(client.peer, self.zone.hubCert)

    def test_clientWithoutCertificate(self):
        """
        A client with no certificate (a device coming to enrol) completes
        the handshake, and the hub sees no certificate.
        """
        server, client = _loopback(
            self.zone.serverOptions(), tls.enrolmentClientOptions(HUB_HOST)
        )
        self.assertTrue(server.handshook)
        self.assertTrue(client.handshook)
        self.assertIsNone(server.peer)
        with self.assertRaises(CertificateError) as e:
            pki.verifyPeerCertificate(server.peer, self.zone.caCert, None, NOW)
        self.assertEqual(e.exception.code, "CERT_REQUIRED")

    def test_foreignCertificateReachesApplication(self):
        """
        A client with a certificate from another CA completes the handshake,
        so that the hub can tell it why it is refused: L{verifyPeerCertificate}
        says C{CERT_UNTRUSTED}.
        """
        key, cert = self.foreign.device("phone")
        server, client = _loopback(
            self.zone.serverOptions(),
            tls.pzpClientOptions(self.zone.caCert, key, cert, HUB_HOST),
        )
        self.assertTrue(server.handshook)
        self.assertTrue(client.handshook)
        self.assertEqual(server.peer, cert)
        with self.assertRaises(CertificateError) as e:
            pki.verifyPeerCertificate(server.peer, self.zone.caCert, None, NOW)
        self.assertEqual(e.exception.code, "CERT_UNTRUSTED")

    def test_revokedDeviceReachesApplication(self):
        """
        A revoked device completes the handshake, so that the hub can send
        it C{CERT_REVOKED} with the signed CRL over the encrypted link.
        """
        key, cert = self.zone.device("stolen")
        crl = pki.buildCRL(
            self.zone.caKey, self.zone.caCert, [(cert.serial_number, NOW)], 2, NOW
        )
        server, client = _loopback(
            self.zone.serverOptions(),
            tls.pzpClientOptions(self.zone.caCert, key, cert, HUB_HOST),
        )
        self.assertTrue(server.handshook)
        with self.assertRaises(CertificateError) as e:
            pki.verifyPeerCertificate(server.peer, self.zone.caCert, crl, NOW)
        self.assertEqual(e.exception.code, "CERT_REVOKED")

    def test_presentsChainAndAsksForZoneCA(self):
        """
        The hub sends the zone CA certificate after its own, and names the
        zone CA as the issuer of the client certificates it wants.
        """
        recording = _RecordingClient(tls.enrolmentClientOptions(HUB_HOST))
        server, client = _loopback(self.zone.serverOptions(), recording)
        self.assertTrue(client.handshook)
        connection = recording.connection
        chain = connection.get_peer_cert_chain(as_cryptography=True)
        self.assertEqual(chain, [self.zone.hubCert, self.zone.caCert])
        self.assertEqual(
            connection.get_client_ca_list(as_cryptography=True),
            [self.zone.caCert.subject],
        )

    def test_keyPossessionChecked(self):
        """
        Presenting someone else's certificate without their key fails: even
        though the hub accepts any chain at the TLS layer, OpenSSL checks the
        client's CertificateVerify signature against the presented
        certificate.  The attacker holds a genuine zone certificate of its
        own, and swaps in the victim's on the wire (TLS 1.2, where the
        client's Certificate message is not encrypted).
        """
        victimKey, victimCert = self.zone.device("phone")
        malloryKey, malloryCert = self.zone.device("mallory")
        swap = _ReplaceClientCertificate(victimCert)
        options = optionsForClientTLS(
            HUB_HOST,
            trustRoot=Certificate.loadPEM(pki.certificatePEM(self.zone.caCert)),
            clientCertificate=_clientCertificate(malloryKey, malloryCert),
            extraCertificateOptions={"lowerMaximumSecurityTo": TLSVersion.TLSv1_2},
        )
        server, client = _loopback(self.zone.serverOptions(), options, swap)
        self.assertEqual(swap.replaced, 1)
        self.assertFalse(server.handshook)
        self.assertFalse(client.handshook)
        self.assertEqual(server.peer, "not seen")
        server.lost.trap(SSL.Error)
        self.assertIn("bad signature", str(server.lost.value))

    def test_keyPossessionControl(self):
        """
        The wire rewriting of L{test_keyPossessionChecked} is not what breaks
        that handshake: swapping the client's certificate for the very same
        certificate lets it complete.
        """
        malloryKey, malloryCert = self.zone.device("mallory")
        swap = _ReplaceClientCertificate(malloryCert)
        options = optionsForClientTLS(
            HUB_HOST,
            trustRoot=Certificate.loadPEM(pki.certificatePEM(self.zone.caCert)),
            clientCertificate=_clientCertificate(malloryKey, malloryCert),
            extraCertificateOptions={"lowerMaximumSecurityTo": TLSVersion.TLSv1_2},
        )
        server, client = _loopback(self.zone.serverOptions(), options, swap)
        self.assertEqual(swap.replaced, 1)
        self.assertTrue(server.handshook)
        self.assertEqual(server.peer, malloryCert)

    def test_tls11Refused(self):
        """
        A client that speaks only TLS 1.1 cannot connect to the hub.
        """
        server, client = _loopback(self.zone.serverOptions(), _TLS11Client())
        self.assertFalse(server.handshook)
        self.assertFalse(client.handshook)
        server.lost.trap(SSL.Error)
        self.assertIn("unsupported protocol", str(server.lost.value))

    def test_tls13Preferred(self):
        """
        A modern client and the hub agree on TLS 1.3.
        """
        recording = _RecordingClient(tls.enrolmentClientOptions(HUB_HOST))
        server, client = _loopback(self.zone.serverOptions(), recording)
        self.assertTrue(client.handshook)
        self.assertEqual(recording.connection.get_protocol_version_name(), "TLSv1.3")

    def test_shortRecords(self):
        """
        Whatever the hub writes at once, it goes out in TLS records of at
        most L{tls.MAX_WRITE} bytes of plaintext (records no larger than
        the handshake's own, so the link's memory BIO never grows past what
        the handshake needed), and arrives whole and in order.
        """
        clock = Clock()
        data = bytes(range(256)) * 400  # 100 KiB, more than Twisted's 16 KiB writes

        @implementer(IHandshakeListener)
        class Writer(Protocol):
            def handshakeCompleted(self):
                self.transport.write(data[:70000])
                self.transport.write(data[70000:])

        received = []

        class Reader(Protocol):
            def dataReceived(self, chunk):
                received.append(chunk)

        class Recording(FakeTransport):
            written = []

            def write(self, chunk):
                self.written.append(chunk)
                super().write(chunk)

        key, cert = self.zone.device("phone")
        serverFactory = TLSMemoryBIOFactory(
            self.zone.serverOptions(), False, Factory.forProtocol(Writer), clock
        )
        clientFactory = TLSMemoryBIOFactory(
            tls.pzpClientOptions(self.zone.caCert, key, cert, HUB_HOST),
            True, Factory.forProtocol(Reader), clock,
        )
        connectedServerAndClient(
            lambda: serverFactory.buildProtocol(None),
            lambda: clientFactory.buildProtocol(None),
            clock=clock,
            serverTransportFactory=lambda p: Recording(p, isServer=True),
        )
        self.assertEqual(b"".join(received), data)
        stream = b"".join(Recording.written)
        appRecords = []
        while stream:
            contentType, _, length = struct.unpack(">BHH", stream[:5])
            # TLS 1.3 hides every record after the ServerHello as
            # application data; its overhead is a type byte and a 16-byte tag.
            if contentType == 23:
                appRecords.append(length - 17)
            stream = stream[5 + length:]
        self.assertGreaterEqual(sum(appRecords), len(data))
        self.assertLessEqual(max(appRecords), tls.MAX_WRITE)


class PZPClientTests(SynchronousTestCase):
    """
    Tests for L{tls.pzpClientOptions}: an enrolled device trusts only a hub
    of its own zone, reached by the name in its certificate.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()
        self.key, self.cert = self.zone.device("phone")

    def _connect(self, serverOptions, host):
        """
        Connect the device to C{serverOptions}, dialling C{host}.
        """
        return _loopback(
            serverOptions,
            tls.pzpClientOptions(self.zone.caCert, self.key, self.cert, host),
        )

    def test_hubByIPAddress(self):
        """
        A hub reached by IP address is accepted when its certificate has
        that address as an IP SAN.
        """
        server, client = self._connect(self.zone.serverOptions(), HUB_IP)
        self.assertTrue(client.handshook)
        self.assertTrue(server.handshook)

    def test_foreignHubRefused(self):
        """
        A hub whose certificate comes from another CA (even one with the
        same name) is refused during the handshake.
        """
        server, client = self._connect(self.foreign.serverOptions(), HUB_HOST)
        self.assertFalse(client.handshook)
        self.assertFalse(server.handshook)
        client.lost.trap(SSL.Error)
        self.assertIn("certificate verify failed", str(client.lost.value))

    def test_wrongHostRefused(self):
        """
        A zone hub certificate that does not name the host the device dialled
        is refused.
        """
        server, client = self._connect(self.zone.serverOptions(), "other.example")
        self.assertFalse(client.handshook)
        self.assertFalse(server.handshook)
        client.lost.trap(VerificationError)

    def test_wrongIPAddressRefused(self):
        """
        A zone hub certificate that does not carry the IP address the device
        dialled is refused.
        """
        server, client = self._connect(self.zone.serverOptions(), "10.9.9.9")
        self.assertFalse(client.handshook)
        self.assertFalse(server.handshook)
        client.lost.trap(VerificationError)


class EnrolmentClientTests(SynchronousTestCase):
    """
    Tests for L{tls.enrolmentClientOptions}.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()

    def _serverNames(self, host):
        """
        Connect with enrolment options for C{host} to a server that records
        the SNI names it receives.
        """
        names = []

        def record(name):
            names.append(name)
            return None

        server = CertificateOptions(
            privateKey=PKey.from_cryptography_key(self.zone.hubKey),
            certificate=X509.from_cryptography(self.zone.hubCert),
            contextForServerName=record,
        )
        _, client = _loopback(server, tls.enrolmentClientOptions(host))
        self.assertTrue(client.handshook)
        return names

    def test_anyHubAtTLSLayer(self):
        """
        An enrolling device completes the handshake with a hub whose CA it
        does not know yet, sends no certificate, and can then check the hub's
        certificate itself.
        """
        server, client = _loopback(
            self.foreign.serverOptions(), tls.enrolmentClientOptions(HUB_HOST)
        )
        self.assertTrue(client.handshook)
        self.assertIsNone(server.peer)
        self.assertEqual(client.peer, self.foreign.hubCert)
        with self.assertRaises(CertificateError) as e:
            tls.verifyHubCertificate(client.peer, self.zone.caCert, HUB_HOST, NOW)
        self.assertEqual(e.exception.code, "CERT_UNTRUSTED")

    def test_sendsServerName(self):
        """
        The enrolling device names the hub by SNI when it has a DNS name.
        """
        self.assertEqual(self._serverNames(HUB_HOST), [HUB_HOST.encode("ascii")])

    def test_noServerNameForAddress(self):
        """
        No SNI is sent for a hub reached by IP address.
        """
        self.assertEqual(self._serverNames(HUB_IP), [None])

    def test_tls11Refused(self):
        """
        The enrolling device will not talk TLS 1.1 either: a server that
        offers only TLS 1.1 cannot complete a handshake with it.
        """
        server, client = _loopback(
            _TLS11Server(self.zone.hubKey, self.zone.hubCert),
            tls.enrolmentClientOptions(HUB_HOST),
        )
        self.assertFalse(client.handshook)
        self.assertFalse(server.handshook)
        client.lost.trap(SSL.Error)


class PeerCertificateTests(SynchronousTestCase):
    """
    Tests for L{tls.peerCertificate}.
    """

    def test_none(self):
        """
        A transport with no peer certificate gives C{None}.
        """

        class Transport:
            def getPeerCertificate(self):
                """
                Nothing was presented.
                """
                return None

        self.assertIsNone(tls.peerCertificate(Transport()))

    def test_converts(self):
        """
        A pyOpenSSL certificate comes back as a C{cryptography} one.
        """
        zone, _ = _zones()

        class Transport:
            def getPeerCertificate(self):
                """
                The hub's certificate, as pyOpenSSL gives it.
                """
                return X509.from_cryptography(zone.hubCert)

        self.assertEqual(tls.peerCertificate(Transport()), zone.hubCert)


class VerifyHubCertificateTests(SynchronousTestCase):
    """
    Tests for L{tls.verifyHubCertificate}.
    """

    def setUp(self):
        self.zone, self.foreign = _zones()

    def assertUntrusted(self, *args, **kwargs):
        """
        L{tls.verifyHubCertificate} refuses with C{CERT_UNTRUSTED}.
        """
        with self.assertRaises(CertificateError) as e:
            tls.verifyHubCertificate(*args, **kwargs)
        self.assertEqual(e.exception.code, "CERT_UNTRUSTED")
        return e.exception

    def test_accepts(self):
        """
        The zone's hub certificate is accepted for its DNS name and its IP
        address, with or without the zone id.
        """
        z = self.zone
        tls.verifyHubCertificate(z.hubCert, z.caCert, HUB_HOST, NOW)
        tls.verifyHubCertificate(z.hubCert, z.caCert, HUB_IP, NOW, zoneId=ZONE)

    def test_foreignCA(self):
        """
        A hub certificate from another CA is refused.
        """
        self.assertUntrusted(self.foreign.hubCert, self.zone.caCert, HUB_HOST, NOW)

    def test_expired(self):
        """
        An expired hub certificate is refused.
        """
        z = self.zone
        self.assertUntrusted(z.hubCert, z.caCert, HUB_HOST, NOW + timedelta(days=900))

    def test_wrongHost(self):
        """
        A hub certificate that does not name the host or address is refused.
        """
        z = self.zone
        self.assertUntrusted(z.hubCert, z.caCert, "other.example", NOW)
        self.assertUntrusted(z.hubCert, z.caCert, "10.9.9.9", NOW)

    def test_wrongZone(self):
        """
        A hub certificate for another zone id is refused when a zone id is
        expected.
        """
        z = self.zone
        self.assertUntrusted(
            z.hubCert, z.caCert, HUB_HOST, NOW, zoneId="bob@hub.example"
        )

    def test_deviceCertificateIsNoHub(self):
        """
        A device certificate, which names no host, does not pass as the
        hub's.
        """
        z = self.zone
        _, cert = z.device("phone")
        self.assertUntrusted(cert, z.caCert, HUB_HOST, NOW)

    def test_none(self):
        """
        No certificate at all is refused.
        """
        self.assertUntrusted(None, self.zone.caCert, HUB_HOST, NOW)
