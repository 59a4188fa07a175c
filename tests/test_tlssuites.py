"""
Every TLS endpoint of the project, server or client, accepts on TLS 1.2 only
ECDHE suites with authenticated encryption (AES-GCM, ChaCha20-Poly1305), and
TLS 1.3: a peer offering only CBC suites cannot complete a handshake, one
offering a single AEAD suite gets exactly that suite.

The servers are taken from the services C{twistd pzh} and C{twistd
meshportal} build (so the test follows their wiring), the clients from
L{pz.tls}; both ends run in memory, pumped by L{twisted.test.iosim}.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from zope.interface import implementer

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.ssl import Certificate
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

import pzh.portal.tap
import pzh.tap
from pz import pki, tls
from pz.admin import AdminService
from pz.services import StoreService
from pzh.store import SQLiteHubStore
from pz.testing import tlsLoopback

HOST = "127.0.0.1"

#: What a scanner found the hub accepting before, and the other CBC suites
#: an old client offers: SHA-1 and SHA-2 MACs, ECDHE and static RSA.
CBC_SUITES = (
    "ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:"
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-SHA:"
    "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA:AES256-SHA256:AES256-SHA:"
    "AES128-SHA256:AES128-SHA"
)

#: The TLS 1.2 suites the project accepts with its (EC P-256) keys.
AEAD_SUITES = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
)


def _tls12Context(suites: str) -> SSL.Context:
    """
    A TLS 1.2-at-most context offering only C{suites}, verifying nothing,
    so that nothing but the cipher suites can stop its handshake.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.set_cipher_list(suites.encode("ascii") + b":@SECLEVEL=0")
    context.set_verify(SSL.VERIFY_NONE, lambda *args: True)
    return context


@implementer(IOpenSSLClientConnectionCreator)
class _SuitesClient:
    """
    A TLS 1.2 client offering only C{suites}.

    @ivar connection: its last connection, to ask what was negotiated.
    """

    connection = None

    def __init__(self, suites: str) -> None:
        self._suites = suites

    def clientConnectionForTLS(self, tlsProtocol):
        self.connection = SSL.Connection(_tls12Context(self._suites), None)
        return self.connection


@implementer(IOpenSSLServerConnectionCreator)
class _SuitesServer:
    """
    A TLS 1.2 server with the hub's certificate offering only C{suites}.

    @ivar connection: its last connection, to ask what was negotiated.
    """

    connection = None

    def __init__(self, key, cert, suites: str) -> None:
        self._key, self._cert, self._suites = key, cert, suites

    def serverConnectionForTLS(self, tlsProtocol):
        context = _tls12Context(self._suites)
        context.use_certificate(X509.from_cryptography(self._cert))
        context.use_privatekey(PKey.from_cryptography_key(self._key))
        self.connection = SSL.Connection(context, None)
        return self.connection


@implementer(IOpenSSLServerConnectionCreator)
class _ServiceServer:
    """
    The server TLS connections of a listening factory a service built: the
    very creator the port would use.
    """

    def __init__(self, tlsFactory: TLSMemoryBIOFactory) -> None:
        self._tlsFactory = tlsFactory

    def serverConnectionForTLS(self, tlsProtocol):
        return self._tlsFactory._creatorCallable(tlsProtocol)


def _handshake(serverCreator, clientCreator) -> tuple[bool, bool]:
    """
    Whether the server and the client each completed the handshake, both
    in memory.
    """
    server, client = tlsLoopback(serverCreator, clientCreator)
    return server.handshook, client.handshook


def _hubIdentity(zoneId: str):
    """
    A fresh zone CA's certificate, and a hub key and certificate it signed.
    """
    now = datetime.now(timezone.utc)
    caKey, caCert = pki.createZoneCA(zoneId, now)
    key = pki.newKey()
    cert = pki.issueHubCertificate(caKey, caCert, zoneId, [HOST], key.public_key(), now)
    return caCert, key, cert


class _ServerChecks:
    """
    Checks for one server endpoint: the test case's C{server()} returns that
    endpoint's server connection creator.
    """

    def test_cbcRefused(self):
        """
        A TLS 1.2 client offering only CBC suites cannot complete a
        handshake.
        """
        self.assertEqual(_handshake(self.server(), _SuitesClient(CBC_SUITES)), (False, False))

    def test_aeadAccepted(self):
        """
        A TLS 1.2 client offering a single AEAD suite with ECDHE gets that
        suite, for each of them.
        """
        for suite in AEAD_SUITES:
            client = _SuitesClient(suite)
            self.assertEqual(_handshake(self.server(), client), (True, True), suite)
            self.assertEqual(client.connection.get_cipher_name(), suite)
            self.assertEqual(client.connection.get_protocol_version_name(), "TLSv1.2")

    def test_tls13(self):
        """
        A modern client still gets TLS 1.3.
        """
        client = _RecordingClient(tls.enrolmentClientOptions(HOST))
        self.assertEqual(_handshake(self.server(), client), (True, True))
        self.assertEqual(client.connection.get_protocol_version_name(), "TLSv1.3")


@implementer(IOpenSSLClientConnectionCreator)
class _RecordingClient:
    """
    Client options that keep the connection they make.
    """

    connection = None

    def __init__(self, options) -> None:
        self._options = options

    def clientConnectionForTLS(self, tlsProtocol):
        self.connection = self._options.clientConnectionForTLS(tlsProtocol)
        return self.connection


class _Hub:
    """
    The ports C{twistd pzh} builds, on a memory reactor.
    """

    def __init__(self, testCase) -> None:
        options = pzh.tap.Options()
        options.parseOptions(["-d", testCase.mktemp(), "-n", "anna", "-i", HOST])
        reactor = MemoryReactorClock()
        reactor.advance(time.time())
        top = pzh.tap.makeService(options, reactor)
        [store] = [s for s in top if isinstance(s, StoreService) and isinstance(s.store, SQLiteHubStore)]
        testCase.addCleanup(store.stopService)
        self.device, self.web = [
            s for s in top
            if isinstance(s, StreamServerEndpointService) and not isinstance(s, AdminService)
        ]


class HubDevicePortTests(_ServerChecks, SynchronousTestCase):
    """
    The hub's device port.
    """

    def server(self):
        return _ServiceServer(_Hub(self).device.factory)


class HubWebPortTests(_ServerChecks, SynchronousTestCase):
    """
    The hub's HTTPS web port (admin pages and the zone's Mesh portal).
    """

    def server(self):
        # The web port's outermost factory caps connections; TLS is inside it.
        return _ServiceServer(_Hub(self).web.factory.wrappedFactory)


class MeshPortalPortTests(_ServerChecks, SynchronousTestCase):
    """
    A standalone C{twistd meshportal --cert --key}.
    """

    def server(self):
        _, key, cert = _hubIdentity(f"portal@{HOST}")
        dataDir = self.mktemp()
        os.makedirs(dataDir)
        certFile, keyFile = os.path.join(dataDir, "c.pem"), os.path.join(dataDir, "k.pem")
        pki.writePEM(certFile, pki.certificatePEM(cert))
        pki.writePrivateKey(keyFile, key)
        options = pzh.portal.tap.Options()
        options.parseOptions(["--data-dir", dataDir, "--cert", certFile, "--key", keyFile])
        top = pzh.portal.tap.makeService(options, MemoryReactorClock())
        [web] = [s for s in top if isinstance(s, StreamServerEndpointService)]
        return _ServiceServer(web.factory.wrappedFactory)


class SharedServerOptionsTests(_ServerChecks, SynchronousTestCase):
    """
    L{tls.serverOptions}, the shape every new HTTPS port takes.
    """

    def server(self):
        caCert, key, cert = _hubIdentity(f"anna@{HOST}")
        return tls.serverOptions(key, cert, [caCert])


class ClientTests(SynchronousTestCase):
    """
    The project's TLS clients refuse a server that offers only CBC suites,
    and take the AEAD suite a server insists on.
    """

    def setUp(self):
        now = datetime.now(timezone.utc)
        zoneId = f"anna@{HOST}"
        self.caKey, self.caCert = pki.createZoneCA(zoneId, now)
        self.hubKey = pki.newKey()
        self.hubCert = pki.issueHubCertificate(
            self.caKey, self.caCert, zoneId, [HOST], self.hubKey.public_key(), now
        )
        deviceKey = pki.newKey()
        deviceCert = pki.issueDeviceCertificate(
            self.caKey, self.caCert, pki.makeCSR(deviceKey, "phone"), f"{zoneId}/phone", 2, now
        )
        self.clients = {
            "pzp": lambda: tls.pzpClientOptions(self.caCert, deviceKey, deviceCert, HOST),
            "enrolment": lambda: tls.enrolmentClientOptions(HOST),
            "https": lambda: tls.httpsClientPolicy(
                Certificate(X509.from_cryptography(self.caCert))
            ).creatorForNetloc(HOST.encode("ascii"), 443),
        }

    def test_cbcServerRefused(self):
        """
        No client completes a handshake with a TLS 1.2 server that offers
        only CBC suites.
        """
        for name, client in self.clients.items():
            server = _SuitesServer(self.hubKey, self.hubCert, CBC_SUITES)
            self.assertEqual(_handshake(server, client()), (False, False), name)

    def test_aeadServerAccepted(self):
        """
        Every client agrees with a TLS 1.2 server on each AEAD suite it
        insists on.
        """
        for name, client in self.clients.items():
            for suite in AEAD_SUITES:
                server = _SuitesServer(self.hubKey, self.hubCert, suite)
                self.assertEqual(_handshake(server, client()), (True, True), (name, suite))
                self.assertEqual(server.connection.get_cipher_name(), suite)
                self.assertEqual(server.connection.get_protocol_version_name(), "TLSv1.2")
