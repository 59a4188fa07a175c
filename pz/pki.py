# -*- test-case-name: tests.pz.test_pki -*-
"""
The zone's public key infrastructure: keys, the zone certificate authority,
hub and device certificates, the revocation list, and the checks that turn a
certificate presented over TLS into a zone identity.

Every link in a personal zone is mutual TLS, and a message's sender is the
identity its certificate proves, never what the message claims.  This module
is therefore the one place that decides what "this certificate proves id X"
means: the certificate was issued directly by our zone CA, is inside its
validity window, is not listed on a CRL that the same CA signed, is not a CA
itself, and carries exactly one kind of name we trust, a C{pz:} URI subject
alternative name.  Anything else is refused with a L{CertificateError} whose
C{code} is stable, so that the hub can send it over the wire and a device can
act on it.

All X.509 work uses C{cryptography.x509}; keys are ECDSA P-256 so that every
certificate can be used for TLS.  Files holding keys, certificates and CRLs
are written atomically (temporary file in the same directory, fsync, rename),
so that a crash leaves the old or the new file, never a mix; private keys are
created with mode 0600 from the start, never widened then narrowed.

Identities go into URI SANs as C{pz:} followed by the identity with
characters outside a conservative set percent-encoded (L{identityOf} decodes
them).  For ordinary ids such as C{anna@hub.example/phone} the SAN is simply
C{pz:anna@hub.example/phone}; the encoding only matters for colons, asterisks,
spaces and non-ASCII text, which C{service_identity} would otherwise reject
(it reads every URI SAN as C{scheme:host}) and which would make TLS hostname
checks of a hub certificate fail.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

import idna
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pz.udf import key_fingerprint

__all__ = [
    "CertificateError",
    "certificateDigest",
    "PZ_URI_PREFIX",
    "CLOCK_SKEW",
    "newKey",
    "writePrivateKey",
    "readPrivateKey",
    "writePEM",
    "certificatePEM",
    "loadCertificate",
    "readCertificate",
    "crlPEM",
    "loadCRL",
    "readCRL",
    "createZoneCA",
    "makeCSR",
    "issueHubCertificate",
    "issueDeviceCertificate",
    "buildCRL",
    "crlNumber",
    "verifyCRL",
    "checkCRLUpdate",
    "StaleCRL",
    "isRevoked",
    "crlListsSerial",
    "identityOf",
    "uriForIdentity",
    "verifyPeerCertificate",
    "caFingerprint",
]

#: The scheme of the URI subject alternative name that carries a zone id.
PZ_URI_PREFIX = "pz:"

#: How far before "now" an issued certificate starts to be valid, so that a
#: device whose clock is a little behind the hub's can use it at once.
CLOCK_SKEW = timedelta(minutes=5)

#: Organisation name written into every subject we issue.
_ORGANISATION = "Personal zone"

#: Characters left as they are in the identity part of a C{pz:} URI; the
#: rest are percent-encoded.  No ":" (service_identity splits URI SANs on it)
#: and no "*" (it would be read as a wildcard).
_URI_SAFE = "-._~!$&'()+,;=@/"

#: X.509 caps a common name at 64 characters; the URI SAN carries the full id.
_CN_LIMIT = 64

_HASH = hashes.SHA256


class CertificateError(Exception):
    """
    A certificate or CRL was refused.

    @ivar code: a stable code that may cross the wire: C{"CERT_REQUIRED"},
        C{"CERT_UNTRUSTED"}, C{"CERT_EXPIRED"}, C{"CERT_REVOKED"},
        C{"CERT_INVALID"} or C{"CRL_INVALID"}.
    @ivar message: one sentence naming the problem, safe to show a user.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Keys and files


def newKey() -> ec.EllipticCurvePrivateKey:
    """
    Make a new ECDSA P-256 private key.
    """
    return ec.generate_private_key(ec.SECP256R1())


def _fsPath(path) -> str:
    """
    Accept a C{str}, an C{os.PathLike} or a Twisted C{FilePath}.
    """
    return os.fspath(getattr(path, "path", path))


def _atomicWrite(path, data: bytes, mode: int) -> None:
    """
    Replace C{path} with C{data}: write a temporary file in the same
    directory, created with C{mode}, fsync it, rename it over C{path}, then
    fsync the directory so that the rename itself survives a crash.
    """
    path = _fsPath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    for _ in range(100):
        temporary = os.path.join(
            directory, f".{base}.{secrets.token_hex(8)}.tmp"
        )
        try:
            fd = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                mode,
            )
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        try:
            # The umask can only have narrowed the mode; make it exact.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    try:
        dirfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass
    finally:
        os.close(dirfd)


def writePrivateKey(path, key) -> None:
    """
    Write C{key} to C{path} as unencrypted PEM PKCS#8, atomically, readable
    only by its owner (mode 0600 from the moment the file exists).
    """
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomicWrite(path, data, 0o600)


def readPrivateKey(path):
    """
    Read a PEM private key written by L{writePrivateKey}.
    """
    with open(_fsPath(path), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def writePEM(path, data: bytes, mode: int = 0o644) -> None:
    """
    Write C{data} (a PEM certificate or CRL) to C{path} atomically, with
    C{mode}.
    """
    _atomicWrite(path, data, mode)


def certificatePEM(cert: x509.Certificate) -> bytes:
    """
    Encode C{cert} as PEM.
    """
    return cert.public_bytes(serialization.Encoding.PEM)


def loadCertificate(pem: bytes) -> x509.Certificate:
    """
    Parse a PEM certificate.

    @raise CertificateError: C{CERT_INVALID} if C{pem} is not one.
    """
    try:
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, TypeError) as e:
        raise CertificateError("CERT_INVALID", f"Not a PEM certificate: {e}")


def readCertificate(path) -> x509.Certificate:
    """
    Read a PEM certificate from C{path}.
    """
    with open(_fsPath(path), "rb") as f:
        return loadCertificate(f.read())


def crlPEM(crl: x509.CertificateRevocationList) -> bytes:
    """
    Encode C{crl} as PEM.
    """
    return crl.public_bytes(serialization.Encoding.PEM)


def loadCRL(pem: bytes) -> x509.CertificateRevocationList:
    """
    Parse a PEM CRL.  This does not check who signed it: see L{verifyCRL}.

    @raise CertificateError: C{CRL_INVALID} if C{pem} is not one.
    """
    try:
        return x509.load_pem_x509_crl(pem)
    except (ValueError, TypeError) as e:
        raise CertificateError("CRL_INVALID", f"Not a PEM CRL: {e}")


def readCRL(path) -> x509.CertificateRevocationList:
    """
    Read a PEM CRL from C{path}.
    """
    with open(_fsPath(path), "rb") as f:
        return loadCRL(f.read())


# Names


def uriForIdentity(identity: str) -> str:
    """
    The URI subject alternative name that proves C{identity}.
    """
    if not isinstance(identity, str) or not identity:
        raise ValueError("an identity is a non-empty string")
    return PZ_URI_PREFIX + quote(identity, safe=_URI_SAFE)


def _subject(identity: str) -> x509.Name:
    """
    The subject name for C{identity}.
    """
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, identity[:_CN_LIMIT]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANISATION),
        ]
    )


def _hostName(hostname: str) -> x509.GeneralName:
    """
    An IP address SAN if C{hostname} is an IP address, else a DNS name SAN.
    """
    literal = hostname
    if literal.startswith("[") and literal.endswith("]"):
        literal = literal[1:-1]
    try:
        return x509.IPAddress(ipaddress.ip_address(literal))
    except ValueError:
        pass
    if not hostname or not hostname.strip():
        raise ValueError("empty host name")
    try:
        hostname.encode("ascii")
    except UnicodeEncodeError:
        hostname = idna.encode(hostname, uts46=True).decode("ascii")
    return x509.DNSName(hostname)


def _utc(now: datetime) -> datetime:
    """
    C{now} as an aware UTC datetime; a naive one is taken to be UTC already.
    """
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def _asCryptography(cert):
    """
    Accept a C{cryptography} certificate or a pyOpenSSL C{X509}.
    """
    if cert is not None and hasattr(cert, "to_cryptography"):
        return cert.to_cryptography()
    return cert


# Issuing


def _authorityKeyIdentifier(caCert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """
    The authority key identifier naming C{caCert}'s key.
    """
    try:
        ski = caCert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            caCert.public_key()
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _leafBuilder(caCert, identity, publicKey, names, serial, now, lifetime):
    """
    A certificate builder for an end-entity (hub or device) certificate:
    not a CA, digital signature only, usable as TLS client and server.
    Its validity starts L{CLOCK_SKEW} before C{now} and never outlasts the CA.
    """
    now = _utc(now)
    notAfter = min(now + lifetime, caCert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_subject(identity))
        .issuer_name(caCert.subject)
        .public_key(publicKey)
        .serial_number(serial)
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(notAfter)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(publicKey), critical=False
        )
        .add_extension(_authorityKeyIdentifier(caCert), critical=False)
    )


def createZoneCA(
    zoneId: str, now: datetime, lifetime: timedelta = timedelta(days=3650)
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """
    Create the zone's certificate authority: a new P-256 key and a
    self-signed certificate (CA:TRUE, path length 0, may sign certificates
    and CRLs, URI SAN C{pz:<zoneId>}) valid from L{CLOCK_SKEW} before C{now}
    for C{lifetime}.

    @return: C{(key, certificate)}
    """
    now = _utc(now)
    key = newKey()
    publicKey = key.public_key()
    name = _subject(zoneId)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(publicKey)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(publicKey), critical=False
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uriForIdentity(zoneId))]
            ),
            critical=False,
        )
        .sign(key, _HASH())
    )
    return key, cert


def makeCSR(key, identity: str) -> x509.CertificateSigningRequest:
    """
    Make a certificate signing request for C{identity} (CN and URI SAN
    C{pz:<identity>}), signed with C{key}, which proves possession of it.
    """
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_subject(identity))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uriForIdentity(identity))]
            ),
            critical=False,
        )
        .sign(key, _HASH())
    )


def issueHubCertificate(
    caKey,
    caCert: x509.Certificate,
    zoneId: str,
    hostnames: list[str],
    publicKey,
    now: datetime,
    lifetime: timedelta = timedelta(days=825),
) -> x509.Certificate:
    """
    Issue the hub's TLS certificate: one SAN per host name by which devices
    reach the hub (an IP address SAN for an address, a DNS name otherwise)
    plus the URI SAN C{pz:<zoneId>}, since the hub's identity is the zone's.
    """
    if isinstance(hostnames, str):
        hostnames = [hostnames]
    if not hostnames:
        raise ValueError("a hub certificate needs at least one host name")
    names = [_hostName(h) for h in hostnames]
    names.append(x509.UniformResourceIdentifier(uriForIdentity(zoneId)))
    builder = _leafBuilder(
        caCert, zoneId, publicKey, names, x509.random_serial_number(), now, lifetime
    )
    return builder.sign(caKey, _HASH())


def issueDeviceCertificate(
    caKey,
    caCert: x509.Certificate,
    csr: x509.CertificateSigningRequest,
    deviceId: str,
    serial: int,
    now: datetime,
    lifetime: timedelta = timedelta(days=90),
) -> x509.Certificate:
    """
    Issue a device certificate for the key in C{csr}.

    The hub decides the device's id: the certificate names C{deviceId}
    (CN and URI SAN C{pz:<deviceId>}) whatever the CSR asked for.  It is
    valid from L{CLOCK_SKEW} before C{now} for C{lifetime} (but never past
    the CA's own expiry).

    @param serial: the serial number the hub recorded for this certificate,
        so that it can later be revoked.

    @raise CertificateError: C{CERT_INVALID} if the CSR's signature does not
        verify (the requester does not hold the key) or its key is not
        ECDSA P-256.
    """
    try:
        signatureValid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm):
        signatureValid = False
    if not signatureValid:
        raise CertificateError(
            "CERT_INVALID", "The certificate request's signature does not verify."
        )
    try:
        publicKey = csr.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        publicKey = None
    if not (
        isinstance(publicKey, ec.EllipticCurvePublicKey)
        and isinstance(publicKey.curve, ec.SECP256R1)
    ):
        raise CertificateError(
            "CERT_INVALID", "The certificate request's key is not ECDSA P-256."
        )
    names = [x509.UniformResourceIdentifier(uriForIdentity(deviceId))]
    builder = _leafBuilder(caCert, deviceId, publicKey, names, serial, now, lifetime)
    return builder.sign(caKey, _HASH())


# Revocation


def buildCRL(
    caKey,
    caCert: x509.Certificate,
    revoked: list[tuple[int, datetime]],
    number: int,
    now: datetime,
    nextUpdate: timedelta = timedelta(days=7),
) -> x509.CertificateRevocationList:
    """
    Build and sign the zone's CRL.

    @param revoked: C{(serial, revocationDate)} for every revoked
        certificate.
    @param number: the CRL Number; each new CRL must have a higher one,
        since devices never accept a lower one than they hold.
    """
    now = _utc(now)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(caCert.subject)
        .last_update(now)
        .next_update(now + nextUpdate)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_authorityKeyIdentifier(caCert), critical=False)
    )
    for serial, revocationDate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(_utc(revocationDate))
            .build()
        )
    return builder.sign(caKey, _HASH())


def crlNumber(crl: x509.CertificateRevocationList) -> int:
    """
    The CRL Number of C{crl}.

    @raise CertificateError: C{CRL_INVALID} if it has none.
    """
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (x509.ExtensionNotFound, ValueError) as e:
        raise CertificateError("CRL_INVALID", f"The CRL has no usable CRL number: {e}")


def verifyCRL(crl: x509.CertificateRevocationList, caCert) -> None:
    """
    Check that C{crl} was issued and signed by the zone CA C{caCert} and
    carries a CRL number.

    @raise CertificateError: C{CRL_INVALID} otherwise.
    """
    caCert = _asCryptography(caCert)
    if crl is None:
        raise CertificateError("CRL_INVALID", "No CRL.")
    if crl.issuer != caCert.subject:
        raise CertificateError("CRL_INVALID", "The CRL was not issued by the zone CA.")
    try:
        valid = crl.is_signature_valid(caCert.public_key())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise CertificateError(
            "CRL_INVALID", "The CRL's signature does not verify under the zone CA."
        )
    crlNumber(crl)


class StaleCRL(CertificateError):
    """
    A CRL of the zone CA that is not newer than the one held: CRL numbers
    only grow, so it would take back revocations.
    """

    def __init__(self, number: int, held: int) -> None:
        super().__init__("CRL_INVALID", f"The CRL has number {number}, not above the {held} held.")
        self.number = number
        self.held = held


def checkCRLUpdate(crl, caCert, held, allowSame: bool = False) -> int:
    """
    Check that C{crl} may replace the CRL C{held} (C{None}: none held): the
    zone CA C{caCert} issued and signed it (L{verifyCRL}) and its number is
    above the held one's (or equal to it, with C{allowSame}: the copy a
    synchronisation hands over may be the one already held).  Every place
    a device takes a CRL in (the hub's push, the hub's synchronisation, a
    peer's) uses this one rule.

    @return: the CRL's number.
    @raise CertificateError: C{CRL_INVALID}; a L{StaleCRL} when only its
        number is the problem.
    """
    verifyCRL(crl, caCert)
    number = crlNumber(crl)
    if held is not None:
        heldNumber = crlNumber(held)
        if number < heldNumber or (number == heldNumber and not allowSame):
            raise StaleCRL(number, heldNumber)
    return number


def isRevoked(crl: x509.CertificateRevocationList, serial: int) -> bool:
    """
    Whether C{crl} lists C{serial}.  This does not check the CRL's signature:
    see L{verifyCRL} and L{crlListsSerial}.
    """
    return crl.get_revoked_certificate_by_serial_number(serial) is not None


def crlListsSerial(crl, caCert, serial: int) -> bool:
    """
    Whether C{crl} is proof that certificate C{serial} was revoked: it
    verifies under the zone CA C{caCert} and lists C{serial}.  A CRL that
    does not verify, or is not a CRL at all, is no proof: the answer is then
    C{False}, never an exception.
    """
    try:
        verifyCRL(crl, caCert)
        return isRevoked(crl, serial)
    except (CertificateError, AttributeError, ValueError, TypeError):
        return False


# Verifying


def identityOf(cert) -> str | None:
    """
    The zone identity C{cert} names: the first URI SAN starting with
    C{pz:}, without that prefix and with percent-encoding undone; C{None} if
    it has none.  This does not check who issued C{cert}: see
    L{verifyPeerCertificate}.
    """
    cert = _asCryptography(cert)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return None
    for uri in san.value.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(PZ_URI_PREFIX) and len(uri) > len(PZ_URI_PREFIX):
            try:
                return unquote(uri[len(PZ_URI_PREFIX) :], errors="strict")
            except UnicodeDecodeError:
                return None
    return None


def _checkLeafUsage(cert: x509.Certificate) -> None:
    """
    Refuse CA certificates and certificates whose key usage does not allow
    them to authenticate a TLS peer.
    """
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        pass
    else:
        if constraints.value.ca:
            raise CertificateError(
                "CERT_INVALID", "A CA certificate cannot identify a device."
            )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound:
        raise CertificateError("CERT_INVALID", "The certificate has no key usage.")
    if not usage.value.digital_signature:
        raise CertificateError(
            "CERT_INVALID", "The certificate's key may not make signatures."
        )
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        pass
    else:
        if not (
            ExtendedKeyUsageOID.CLIENT_AUTH in extended.value
            or ExtendedKeyUsageOID.SERVER_AUTH in extended.value
        ):
            raise CertificateError(
                "CERT_INVALID", "The certificate is not for TLS authentication."
            )


def verifyPeerCertificate(cert, caCert, crl, now: datetime) -> str:
    """
    Decide which zone identity a certificate presented over TLS proves.

    Checks, in this order: a certificate was presented (C{CERT_REQUIRED});
    it was issued directly by C{caCert} with a valid signature
    (C{CERT_UNTRUSTED}); C{now} is inside its validity window
    (C{CERT_EXPIRED}); if C{crl} is given, the CRL verifies under C{caCert}
    (C{CRL_INVALID}) and does not list it (C{CERT_REVOKED}); it is not a CA,
    may sign, is for TLS authentication and names a C{pz:} identity
    (C{CERT_INVALID}).

    @param cert: a C{cryptography} certificate, a pyOpenSSL C{X509}, or
        C{None}.
    @param caCert: the zone CA certificate.
    @param crl: the zone's current CRL, or C{None} to skip revocation.

    @return: the identity the certificate proves.
    @raise CertificateError: naming the first check that failed.
    """
    if cert is None:
        raise CertificateError("CERT_REQUIRED", "No certificate was presented.")
    cert = _asCryptography(cert)
    caCert = _asCryptography(caCert)
    try:
        cert.verify_directly_issued_by(caCert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise CertificateError(
            "CERT_UNTRUSTED", "The certificate was not issued by this zone's CA."
        )
    now = _utc(now)
    if now < cert.not_valid_before_utc:
        raise CertificateError("CERT_EXPIRED", "The certificate is not valid yet.")
    if now > cert.not_valid_after_utc:
        raise CertificateError("CERT_EXPIRED", "The certificate has expired.")
    if crl is not None:
        verifyCRL(crl, caCert)
        if isRevoked(crl, cert.serial_number):
            raise CertificateError("CERT_REVOKED", "The certificate has been revoked.")
    _checkLeafUsage(cert)
    identity = identityOf(cert)
    if identity is None:
        raise CertificateError(
            "CERT_INVALID", "The certificate names no personal zone identity."
        )
    return identity


def certificateDigest(cert) -> str:
    """
    The SHA-256 of C{cert}'s DER encoding, in lower-case hex: the
    certificate a peer-exchange code pins.
    """
    return hashlib.sha256(_asCryptography(cert).public_bytes(serialization.Encoding.DER)).hexdigest()


def caFingerprint(caCert) -> str:
    """
    The UDF fingerprint of the zone CA's public key: what a pairing code
    carries and what a person compares.
    """
    return key_fingerprint(_asCryptography(caCert).public_key())


def keyPEM(key) -> bytes:
    """
    A private key as unencrypted PKCS#8 PEM, for handing to TLS libraries
    in memory (never written anywhere but a 0600 file).
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def csrPEM(csr: x509.CertificateSigningRequest) -> bytes:
    """
    A certificate signing request in PEM.
    """
    return csr.public_bytes(serialization.Encoding.PEM)
