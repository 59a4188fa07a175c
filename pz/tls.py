# -*- test-case-name: tests.pz.test_tls -*-
"""
TLS settings for the zone's links, in one place so that every link is set up
the same way.

The hub listens on one port for two kinds of client: enrolled devices, which
present a certificate from the zone CA, and virgin devices, which have none
yet and come to enrol.  So the hub's TLS layer I{requests} a client
certificate but neither requires one nor judges its chain: OpenSSL still
checks that the client holds the private key of whatever certificate it
presents (the CertificateVerify signature), and the hub protocol then decides
in C{handshakeCompleted}, with L{pz.pki.verifyPeerCertificate}, which identity
the certificate proves or which stable error code (C{CERT_UNTRUSTED},
C{CERT_REVOKED}, ...) to answer with over the encrypted link.  A device that
learns why it was refused can act (re-enrol, wipe on a verified revocation)
instead of seeing a bare handshake failure.

Clients are strict: an enrolled device trusts only its zone CA and checks the
hub's host name or IP address against the certificate's SANs.  An enrolling
device does not have the CA yet; it accepts any server certificate at the TLS
layer and checks the hub's certificate afterwards against the CA whose
fingerprint the pairing code pinned (L{verifyHubCertificate}).

Peer links between two devices of a zone are strict at both ends
(L{peerServerOptions}, L{peerClientOptions}): the other end must present a
device certificate of the zone, checked during the handshake against the
zone CA and the CRL, and never the hub's; a dialling device also pins the
key the hub's C{pzpUpdate} gave for the device it dials.

Every link, and every TLS port of the project (the hub's device and web
ports, a standalone Mesh portal's HTTPS port, and the HTTPS clients that
talk to portals), is TLS 1.2 or later with forward secrecy and
authenticated encryption only: on TLS 1.2 the ECDHE suites with AES-GCM or
ChaCha20-Poly1305, never a CBC suite; TLS 1.3 suites are all of that kind.
L{tlsSettings} is that rule, given to every L{CertificateOptions} the
project makes; L{serverOptions} and L{httpsClientPolicy} are the shapes a
new port or client takes.
"""

from __future__ import annotations

import ipaddress
import weakref
from datetime import datetime, timezone

import idna
from cryptography import x509
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from service_identity import CertificateError as _PatternError
from service_identity import VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    KeyPair,
    PrivateCertificate,
    TLSVersion,
    optionsForClientTLS,
)
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from pz import pki, udf
from pz.pki import CertificateError

__all__ = [
    "MINIMUM_TLS_VERSION",
    "ACCEPTABLE_CIPHERS",
    "tlsSettings",
    "serverOptions",
    "httpsClientPolicy",
    "hubServerOptions",
    "pzpClientOptions",
    "enrolmentClientOptions",
    "peerCertificate",
    "verifyHubCertificate",
    "verifyZoneDevice",
    "verifyFriendDevice",
    "peerServerOptions",
    "peerClientOptions",
    "verifyExchangeDevice",
    "exchangeClientOptions",
]

#: The oldest TLS version any zone link accepts.
MINIMUM_TLS_VERSION = TLSVersion.TLSv1_2

#: The TLS 1.2 cipher suites any zone link accepts: ECDHE key exchange (so
#: forward secrecy) with an AEAD cipher, AES-GCM or ChaCha20-Poly1305.  CBC
#: suites are out (padding-oracle and Lucky 13 attacks on their
#: MAC-then-encrypt), and so are static RSA key exchange and finite-field
#: DHE.  TLS 1.3 suites are not chosen by this list: OpenSSL's TLS 1.3
#: defaults are all AEAD with (EC)DHE.
ACCEPTABLE_CIPHERS = AcceptableCiphers.fromOpenSSLCipherString(
    "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!PSK"
)


def tlsSettings() -> dict:
    """
    The keyword arguments of L{CertificateOptions} that make the project's
    TLS rule (L{MINIMUM_TLS_VERSION}, L{ACCEPTABLE_CIPHERS}): every TLS
    context of the project, server or client, is built with them, so that
    no port accepts what another refuses.
    """
    return {"raiseMinimumTo": MINIMUM_TLS_VERSION, "acceptableCiphers": ACCEPTABLE_CIPHERS}


def _x509(cert: x509.Certificate) -> X509:
    """
    The pyOpenSSL form of a C{cryptography} certificate, which Twisted's TLS
    options take.
    """
    if isinstance(cert, X509):
        return cert
    return X509.from_cryptography(cert)


def _pkey(key) -> PKey:
    """
    The pyOpenSSL form of a C{cryptography} private key.
    """
    if isinstance(key, PKey):
        return key
    return PKey.from_cryptography_key(key)


def _isIPAddress(host: str) -> bool:
    """
    Whether C{host} is an IPv4 or IPv6 address literal.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _acceptEveryCertificate(connection, certificate, errno, depth, ok) -> bool:
    """
    OpenSSL verify callback that accepts any client certificate chain: the
    hub protocol judges the certificate itself after the handshake.  (OpenSSL
    checks the client's proof of key possession regardless.)
    """
    return True


def _addClientCA(context: SSL.Context, caCert: x509.Certificate) -> None:
    """
    Name C{caCert} to clients as the CA whose certificates we want, so that
    a device holding several picks its zone certificate.
    """
    try:
        context.add_client_ca(caCert)
    except TypeError:
        # pyOpenSSL before 24.3 takes only its own X509 type.
        context.add_client_ca(_x509(caCert))


#: The most plaintext the hub hands OpenSSL in one write, so the most one TLS
#: record carries (a record of it is 2,070 bytes in TLS 1.3).
#:
#: The connections of Twisted's TLS layer write their records into an
#: OpenSSL memory BIO, and Twisted reads each write's record out of it at
#: once; but the BIO's buffer never shrinks: it keeps, for the life of the
#: link, room for the largest record it ever held (times 4/3).  The
#: handshake leaves it at about 2.9 KiB.  Twisted hands OpenSSL up to 16 KiB
#: of plaintext per write, so one burst of 16 KiB or more to a link (a
#: joining device's C{pzpUpdate} pages, a relayed message) left that link
#: 21.4 KiB of buffer instead of 2.9 for good, 18.5 KiB more per idle link.
#: Records of at most this size fit the buffer the handshake already made.
#: (C{SSL_MODE_RELEASE_BUFFERS} cannot help: it frees OpenSSL's own record
#: buffers, not the BIO's; pyOpenSSL offers no way to cap the record size
#: through the context, such as C{SSL_CTX_set_max_send_fragment}.)  The price
#: is CPU for bulk writes: eight records instead of one per 16 KiB, about
#: 2 us more per KiB written.
MAX_WRITE = 2048


class _ShortWriteConnection(SSL.Connection):
    """
    An OpenSSL connection whose C{send} encrypts at most L{MAX_WRITE} bytes
    per call and says how many it took, as a partial write: Twisted's TLS
    layer then reads that record out of the memory BIO and sends the rest
    in further calls.
    """

    def send(self, buf, flags: int = 0) -> int:
        if len(buf) > MAX_WRITE:
            buf = memoryview(buf)[:MAX_WRITE]
        return super().send(buf, flags)

    write = send


class _HubServerOptions(CertificateOptions):
    """
    L{CertificateOptions} whose server connections write short records
    (L{_ShortWriteConnection}).  It supports no ALPN: the hub needs none.
    """

    def serverConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        return _ShortWriteConnection(self.getContext(), None)


def hubServerOptions(caCert: x509.Certificate, hubKey, hubCert: x509.Certificate):
    """
    TLS options for the hub's listening port (and for a device that accepts
    peer links): present C{hubCert} with C{caCert} as its chain, request a
    client certificate from the zone CA, but let every client complete the
    handshake with or without one.  Its connections encrypt at most
    L{MAX_WRITE} bytes per TLS record, so that an idle link keeps no more
    buffer than its handshake needed, whatever was once written to it.

    The caller must check the client's certificate itself once the handshake
    completes (L{peerCertificate}, then L{pz.pki.verifyPeerCertificate}).

    @return: a L{CertificateOptions}, usable as the context factory of a
        L{twisted.protocols.tls.TLSMemoryBIOFactory} or C{listenSSL}.
    """
    options = _HubServerOptions(
        privateKey=_pkey(hubKey),
        certificate=_x509(hubCert),
        extraCertChain=[_x509(caCert)],
        **tlsSettings(),
    )
    # CertificateOptions builds its context once and caches it; adjust that
    # context before any connection uses (and so freezes) it.
    context = options.getContext()
    context.set_verify(
        SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, _acceptEveryCertificate
    )
    _addClientCA(context, caCert)
    # An idle link should not keep 16 KiB read and write buffers each: a hub
    # holds thousands of mostly silent links.
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    return options


def serverOptions(key, cert: x509.Certificate, chain=()) -> CertificateOptions:
    """
    TLS options for a plain HTTPS port (the hub's web port, a standalone
    Mesh portal): present C{cert}, with the certificates of C{chain} after
    it, under the project's TLS rule (L{tlsSettings}); no client
    certificate is asked for.

    @param key: the private key of C{cert} (C{cryptography} or pyOpenSSL).
    @param cert: the server certificate (C{cryptography} or pyOpenSSL).
    @param chain: the certificates that vouch for C{cert}, issuer first.
    """
    return CertificateOptions(
        privateKey=_pkey(key),
        certificate=_x509(cert),
        extraCertChain=[_x509(c) for c in chain],
        **tlsSettings(),
    )


@implementer(IPolicyForHTTPS)
class _HTTPSClientPolicy:
    """
    An HTTPS client policy like Twisted's C{BrowserLikePolicyForHTTPS}
    (verify the server's certificate and host name against C{trustRoot}, or
    the platform's roots), under the project's TLS rule.

    @ivar _trustRoot: what to trust, or C{None} for the platform's roots.
    """

    def __init__(self, trustRoot=None) -> None:
        self._trustRoot = trustRoot

    def creatorForNetloc(self, hostname: bytes, port: int) -> IOpenSSLClientConnectionCreator:
        """
        The client TLS options for a connection to C{hostname}.
        """
        return optionsForClientTLS(
            hostname.decode("ascii"),
            trustRoot=self._trustRoot,
            extraCertificateOptions=tlsSettings(),
        )


def httpsClientPolicy(trustRoot=None) -> IPolicyForHTTPS:
    """
    The policy an HTTPS client of the project (C{pzctl mesh}, a portal
    replica) gives Twisted's C{Agent}: trust C{trustRoot} (a L{Certificate},
    or C{None} for the platform's roots) and check the host name, TLS 1.2
    or later with AEAD suites only.
    """
    return _HTTPSClientPolicy(trustRoot)


def pzpClientOptions(
    caCert: x509.Certificate, key, cert: x509.Certificate, hubHost: str
) -> IOpenSSLClientConnectionCreator:
    """
    TLS options for an enrolled device connecting to its hub (or to a peer):
    trust only the zone CA, check that the server's certificate names
    C{hubHost} (a DNS name, or an IP address matched against IP SANs), and
    present the device certificate C{cert} with its C{key}.
    """
    clientCertificate = PrivateCertificate.fromCertificateAndKeyPair(
        Certificate(_x509(cert)), KeyPair(_pkey(key))
    )
    return optionsForClientTLS(
        hubHost,
        trustRoot=Certificate(_x509(caCert)),
        clientCertificate=clientCertificate,
        extraCertificateOptions=tlsSettings(),
    )


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedClientOptions:
    """
    Client TLS options that do not verify the server at the TLS layer, for a
    device that does not know its zone CA yet.  The application must check
    the server's certificate after the handshake (L{verifyHubCertificate}).

    @ivar _options: the L{CertificateOptions} making connections.
    @ivar _serverName: the SNI name to send, or C{None} for an IP address.
    """

    def __init__(self, hubHost: str) -> None:
        self._options = CertificateOptions(**tlsSettings())
        if _isIPAddress(hubHost):
            self._serverName = None
        else:
            try:
                self._serverName = hubHost.encode("ascii")
            except UnicodeEncodeError:
                self._serverName = idna.encode(hubHost, uts46=True)

    def clientConnectionForTLS(self, tlsProtocol) -> SSL.Connection:
        """
        Make the client side of a TLS connection, sending SNI if the hub was
        named by a DNS name.
        """
        connection = self._options.clientConnectionForTLS(tlsProtocol)
        if self._serverName is not None:
            connection.set_tlsext_host_name(self._serverName)
        return connection


def enrolmentClientOptions(hubHost: str) -> IOpenSSLClientConnectionCreator:
    """
    TLS options for a virgin device enrolling with the hub at C{hubHost}:
    TLS 1.2 or later, SNI if C{hubHost} is a DNS name, no client certificate,
    and no server verification at the TLS layer.  The caller must check the
    hub's certificate with L{verifyHubCertificate} against the CA certificate
    the hub sends, after checking that CA against the pinned fingerprint,
    before sending anything secret such as the pairing token.
    """
    return _UnverifiedClientOptions(hubHost)


def peerCertificate(transport) -> x509.Certificate | None:
    """
    The certificate the other end of a TLS C{transport} presented, or
    C{None}.  Call it from C{handshakeCompleted}, not C{connectionMade}.
    """
    cert = transport.getPeerCertificate()
    if cert is None:
        return None
    if isinstance(cert, x509.Certificate):
        return cert
    return cert.to_cryptography()


def _carriesIdentity(cert: x509.Certificate, identity: str) -> bool:
    """
    Whether C{cert} has the URI SAN C{pz:<identity>}.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    return pki.uriForIdentity(identity) in uris


def verifyHubCertificate(
    hubCert, caCert, hubHost: str, now: datetime, zoneId: str | None = None
) -> None:
    """
    Check that C{hubCert} is a hub certificate of the zone whose CA is
    C{caCert}, for the host C{hubHost}: issued directly by C{caCert}, valid
    at C{now}, with a SAN matching C{hubHost} (an IP address SAN if it is an
    address, else a DNS name) and, if C{zoneId} is given, the URI SAN
    C{pz:<zoneId>}.

    @raise CertificateError: C{CERT_UNTRUSTED}, whatever the reason.
    """
    if hubCert is None:
        raise CertificateError("CERT_UNTRUSTED", "The hub presented no certificate.")
    if isinstance(hubCert, X509):
        hubCert = hubCert.to_cryptography()
    try:
        pki.verifyPeerCertificate(hubCert, caCert, None, now)
    except CertificateError as e:
        raise CertificateError(
            "CERT_UNTRUSTED", f"The hub's certificate is refused: {e.message}"
        )
    try:
        if _isIPAddress(hubHost):
            verify_certificate_ip_address(hubCert, hubHost)
        else:
            verify_certificate_hostname(hubCert, hubHost)
    except (VerificationError, _PatternError, ValueError) as e:
        raise CertificateError(
            "CERT_UNTRUSTED", f"The hub's certificate is not for {hubHost}: {e}"
        )
    if zoneId is not None and not _carriesIdentity(hubCert, zoneId):
        raise CertificateError(
            "CERT_UNTRUSTED", f"The hub's certificate is not for zone {zoneId}."
        )


# Peer links: two devices of a zone, both ends verified at the TLS layer.


def _wallClock() -> datetime:
    return datetime.now(timezone.utc)


def verifyZoneDevice(cert, caCert, crl, now: datetime,
                     expectedFingerprint: str | None = None) -> str:
    """
    Check that C{cert} is a device certificate of the zone whose CA is
    C{caCert}, for a peer link: everything L{pz.pki.verifyPeerCertificate}
    checks (issued by the zone CA, valid at C{now}, not on C{crl}, a TLS
    leaf), and it names a device of this zone (C{ZONE/NAME}), not the hub
    (whose identity is the bare zone id) nor another zone's device.  With
    C{expectedFingerprint}, its key's fingerprint must be that one: the
    certificate the hub vouched for in C{pzpUpdate}.

    @return: the device id the certificate proves.
    @raise CertificateError: C{CERT_UNTRUSTED}, C{CERT_EXPIRED},
        C{CRL_INVALID}, C{CERT_REVOKED} or C{CERT_INVALID}, as
        L{pz.pki.verifyPeerCertificate} does; C{CERT_INVALID} for a hub or
        non-device certificate; C{CERT_UNTRUSTED} for an unexpected key.
    """
    identity = pki.verifyPeerCertificate(cert, caCert, crl, now)
    zoneId = pki.identityOf(caCert)
    zone, slash, _ = identity.rpartition("/")
    if not slash or zone != zoneId:
        raise CertificateError(
            "CERT_INVALID", f"{identity} is not a device of zone {zoneId}: a peer must be a PZP."
        )
    if expectedFingerprint is not None:
        if isinstance(cert, X509):
            cert = cert.to_cryptography()
        if udf.key_fingerprint(cert.public_key()) != expectedFingerprint:
            raise CertificateError(
                "CERT_UNTRUSTED", f"{identity} presented a certificate other than the one expected."
            )
    return identity


def verifyFriendDevice(cert, friendCA, now: datetime, crl=None) -> str:
    """
    Check that C{cert} is a device certificate of the friend zone whose CA
    is C{friendCA} (a trusted PZH certificate): issued by it, valid at
    C{now}, a TLS leaf naming a device C{ZONE/NAME} of that very zone,
    never its hub.  Its user is the one of that CA (the webinos PZP
    specification: "entities with PZP certificates from other zones are
    assumed to belong to the user connected to the PZH CA certificate in
    the chain").  With C{crl}, that zone's CRL (its hub shares it with
    this zone's hub, which syncs it to the devices), a revoked certificate
    is refused too.

    @return: the device id the certificate proves.
    @raise CertificateError: as L{pz.pki.verifyPeerCertificate};
        C{CERT_INVALID} for a certificate that is not a device of that zone.
    """
    identity = pki.verifyPeerCertificate(cert, friendCA, crl, now)
    zoneId = pki.identityOf(friendCA)
    zone, slash, _ = identity.rpartition("/")
    if not slash or zone != zoneId:
        raise CertificateError(
            "CERT_INVALID", f"{identity} is not a device of zone {zoneId}: a peer must be a PZP.")
    return identity


class _PeerVerifier:
    """
    The OpenSSL verify callback of a peer link: OpenSSL checks the chain up
    to the zone CA (or a friend zone's CA); at the leaf this adds the zone's
    own rules (L{verifyZoneDevice}), or a friend's (L{verifyFriendDevice}).
    A refused certificate fails the handshake.

    @ivar refusals: the L{CertificateError}s of refused certificates, most
        recent last (the last few only), for the link to report.
    """

    def __init__(self, caCert, crl, now, expectedFingerprint, friendCAs=(),
                 friendCRLs=()) -> None:
        self._caCert = caCert
        self._crl = crl
        self._now = now
        self._expected = expectedFingerprint
        self._friendCAs = list(friendCAs)
        self._friendCRLs = list(friendCRLs)
        self.refusals = []

    def __call__(self, connection, certificate, errno, depth, ok) -> bool:
        if not ok or depth != 0:
            return bool(ok)
        crl = self._crl() if callable(self._crl) else self._crl
        try:
            verifyZoneDevice(certificate, self._caCert, crl, self._now(), self._expected)
        except CertificateError as e:
            if e.code == "CERT_UNTRUSTED":
                e = self._friendRefusal(certificate, e)
                if e is None:
                    return True
            self.refusals = self.refusals[-9:] + [e]
            return False
        return True

    def _friendRefusal(self, certificate, refusal):
        """
        None if C{certificate} is a device of a friend zone, else why not:
        the friend zone's refusal if one of their CAs issued it, else
        C{refusal}.
        """
        for friendCA in self._friendCAs:
            crl = next((c for c in self._friendCRLs if c.issuer == friendCA.subject), None)
            try:
                verifyFriendDevice(certificate, friendCA, self._now(), crl)
            except CertificateError as e:
                if e.code != "CERT_UNTRUSTED":
                    return e
                continue
            return None
        return refusal


def _isZoneCA(cert) -> bool:
    """
    Whether C{cert} is a self-signed CA certificate naming a zone (a
    C{pz:} identity without a device name).
    """
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        cert.verify_directly_issued_by(cert)
    except Exception:
        return False
    identity = pki.identityOf(cert)
    return constraints.value.ca and identity is not None and "/" not in identity


def verifyExchangeDevice(cert, caCert, now: datetime, knownZones) -> str:
    """
    Check a certificate met in the peer-to-peer certificate exchange: a
    device certificate (C{ZONE/NAME}) of a zone this device does not know,
    verifying against the CA certificate C{caCert} that came with it, a
    self-signed CA naming that very zone, both valid at C{now}.  Its user
    is the one of that CA (the webinos PZP specification: "entities with
    PZP certificates from other zones are assumed to belong to the user
    connected to the PZH CA certificate in the chain").  A zone in
    C{knownZones} (this device's own, its friends') is never let in this
    way: its devices come in under that zone's own rules or not at all.

    @return: the device id the certificate proves.
    @raise CertificateError: C{CERT_UNTRUSTED} without a zone CA, else as
        L{pz.pki.verifyPeerCertificate}; C{CERT_INVALID} for a certificate
        that is not a device of that CA's zone, or of a known zone.
    """
    if isinstance(caCert, X509):
        caCert = caCert.to_cryptography()
    if caCert is None or not _isZoneCA(caCert):
        raise CertificateError("CERT_UNTRUSTED", "The certificate exchange needs the device's "
                                                 "zone CA certificate in its chain.")
    now = pki._utc(now)
    if not caCert.not_valid_before_utc <= now <= caCert.not_valid_after_utc:
        raise CertificateError("CERT_EXPIRED", "The zone CA certificate is not valid now.")
    identity = verifyFriendDevice(cert, caCert, now)
    zoneId = pki.identityOf(caCert)
    if zoneId in knownZones:
        raise CertificateError(
            "CERT_INVALID", f"zone {zoneId} is known here: its devices need no exchange.")
    return identity


class _ExchangeVerifier(_PeerVerifier):
    """
    The peer server's verify callback while it offers the peer-to-peer
    certificate exchange: as L{_PeerVerifier}, except that while
    C{exchangeOpen()} says a ticket is outstanding, a chain of an unknown
    zone is let through too, if its leaf is a device of the self-signed
    zone CA presented right above it (L{verifyExchangeDevice}): the link
    then asks for the ticket's token.  With no ticket outstanding it is
    L{_PeerVerifier} exactly.
    """

    def __init__(self, *args, exchangeOpen, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._exchangeOpen = exchangeOpen
        #: connection -> the untrusted zone CA its chain presented.
        self._presented = weakref.WeakKeyDictionary()

    def __call__(self, connection, certificate, errno, depth, ok) -> bool:
        if not self._exchangeOpen():
            return super().__call__(connection, certificate, errno, depth, ok)
        if depth != 0:
            if not ok and depth == 1:
                ca = certificate.to_cryptography()
                if _isZoneCA(ca):
                    # Judged with the leaf below it, which must be its device.
                    self._presented[connection] = ca
                    return True
            return super().__call__(connection, certificate, errno, depth, ok)
        presented = self._presented.get(connection)
        if presented is None:
            return super().__call__(connection, certificate, errno, depth, ok)
        try:
            verifyExchangeDevice(certificate, presented, self._now(), self._knownZones())
        except CertificateError as e:
            self.refusals = self.refusals[-9:] + [e]
            return False
        return True

    def _knownZones(self) -> set:
        return {pki.identityOf(ca) for ca in [self._caCert, *self._friendCAs]}


def _peerOptions(caCert, key, cert, crl, now, expectedFingerprint,
                 friendCAs=(), friendCRLs=(), exchangeOpen=None) -> CertificateOptions:
    options = CertificateOptions(
        privateKey=_pkey(key),
        certificate=_x509(cert),
        extraCertChain=[_x509(caCert)],
        verify=True,
        caCerts=[_x509(caCert)] + [_x509(ca) for ca in friendCAs],
        requireCertificate=True,
        **tlsSettings(),
    )
    if exchangeOpen is None:
        verifier = _PeerVerifier(caCert, crl, now or _wallClock, expectedFingerprint, friendCAs,
                                 friendCRLs)
    else:
        verifier = _ExchangeVerifier(caCert, crl, now or _wallClock, expectedFingerprint,
                                     friendCAs, friendCRLs, exchangeOpen=exchangeOpen)
    # CertificateOptions builds its context once and caches it; adjust that
    # context before any connection uses (and so freezes) it.
    context = options.getContext()
    context.set_verify(
        SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT | SSL.VERIFY_CLIENT_ONCE, verifier
    )
    options.verifier = verifier
    return options


def peerServerOptions(caCert: x509.Certificate, key, cert: x509.Certificate, crl,
                      now=None, friendCAs=(), friendCRLs=(),
                      exchangeOpen=None) -> CertificateOptions:
    """
    TLS options for a device's peer server (the PZP's C{pzp_tlsServer}
    port): present the device certificate C{cert}; require a client
    certificate and refuse, during the handshake, any that is not a device
    certificate of this zone (L{verifyZoneDevice}): another CA's, the hub's,
    a revoked one.  A device of a friend zone, whose CA is in
    C{friendCAs}, is accepted too (L{verifyFriendDevice}); a device in any
    other zone only while C{exchangeOpen()} says a peer-exchange ticket is
    outstanding (L{verifyExchangeDevice}), and then the link must still
    present the ticket's token.

    @param crl: the zone's CRL, or a callable returning the current one
        (so that a new CRL applies to the next handshake), or C{None}.
    @param now: a callable returning the current time (UTC), for tests.
    @param friendCAs: the CA certificates of the friend zones (the trusted
        PZH certificates other than this zone's), trust roots for this
        port only.
    @param friendCRLs: the friend zones' CRLs held (each checked against
        the friend CA that issued it); a friend without one is not
        checked for revocation.
    @param exchangeOpen: returns whether a peer-exchange ticket is
        outstanding now, or C{None}: no exchange ever.
    @return: options whose C{verifier.refusals} tells why handshakes failed.
    """
    return _peerOptions(caCert, key, cert, crl, now, None, friendCAs, friendCRLs, exchangeOpen)


def peerClientOptions(caCert: x509.Certificate, key, cert: x509.Certificate,
                      expectedFingerprint: str | None, crl=None,
                      now=None) -> CertificateOptions:
    """
    TLS options for a device dialling another device of its zone: present
    C{cert}, and accept only a device certificate of this zone
    (L{verifyZoneDevice}) whose key has the fingerprint
    C{expectedFingerprint}, the one the hub's C{pzpUpdate} gave for that
    device.  No host name is checked: devices are reached by the address
    they reported, and their certificates name the device, not a host.

    @param expectedFingerprint: the UDF key fingerprint expected
        (L{pz.udf.key_fingerprint}), or C{None} to accept any device of
        the zone.
    @param crl: as for L{peerServerOptions}.
    """
    return _peerOptions(caCert, key, cert, crl, now, expectedFingerprint)


class _PinnedVerifier:
    """
    The OpenSSL verify callback of a device dialling another zone's device
    with a peer-exchange code: the chain above the leaf is that zone's
    business; the leaf must be exactly the certificate whose SHA-256 the
    code carries (the webinos PZP specification: trust "just the
    certificate of the PZP we are contacting").
    """

    def __init__(self, certDigest: str) -> None:
        self._digest = certDigest
        self.refusals = []

    def __call__(self, connection, certificate, errno, depth, ok) -> bool:
        if depth != 0:
            return True
        if pki.certificateDigest(certificate.to_cryptography()) == self._digest:
            return True
        self.refusals = self.refusals[-9:] + [CertificateError(
            "CERT_UNTRUSTED", "the device presented a certificate other than the code's")]
        return False


def exchangeClientOptions(caCert: x509.Certificate, key, cert: x509.Certificate,
                          certDigest: str) -> CertificateOptions:
    """
    TLS options for the peer-to-peer certificate exchange, on the dialling
    side: present C{cert} with this zone's CA C{caCert} in the chain (the
    other device judges it by that CA), and accept only the certificate
    whose DER SHA-256 is C{certDigest}, nothing else.
    """
    options = CertificateOptions(
        privateKey=_pkey(key),
        certificate=_x509(cert),
        extraCertChain=[_x509(caCert)],
        verify=True,
        caCerts=[_x509(caCert)],
        **tlsSettings(),
    )
    verifier = _PinnedVerifier(certDigest)
    context = options.getContext()
    context.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verifier)
    options.verifier = verifier
    return options
