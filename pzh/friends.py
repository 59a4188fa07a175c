# -*- test-case-name: tests.pzh.test_friends -*-
"""
Friend zones: the other zones this hub trusts, how trust is made and how
it is unmade.

Zone A's owner makes a one-time invitation (C{pzctl invite-zone}), in the
pairing code's form C{pz://HOST:PORT/TOKEN#CAFINGERPRINT}.  Zone B's hub,
given it (C{pzctl accept-zone CODE}), dials A's device port, checks A's
CA against the fingerprint and A's hub certificate against that CA, and
only then sends the token with B's own CA certificate and hub address
(L{pzh.befriend}).  A checks the token as it checks pairing tokens (kept
hashed, single use, expiring, compared in constant time, wrong guesses
rate-limited: L{pz.tokens.TokenGate}), checks that B's CA is a CA
naming the zone it claims, and records B.  Both hubs then hold the other's
CA among the trusted PZH certificates
(C{items/certificates/trusted-pzh/ZONE.pem}, a one-way item the hub writes
and its devices receive).

The store is where trust is kept; the items folder mirrors it at every
start and change (L{pzh.zonesync.HubSync.trustZones}).  Whoever is told
of friends coming and going (the zone links, L{pzh.zonelink}) observes
this object.
"""

import re
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from twisted.logger import Logger

from pz import pki
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.pki import CertificateError
from pz.tokens import TokenGate, codeId, tokenHash
from pzh.store import FriendRecord, IHubStore, TokenRecord

__all__ = ["Friends", "checkZoneCA", "validZoneId", "zoneOf"]

_ZONE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}@[A-Za-z0-9.:_\[\]-]{1,253}\Z")

#: The largest CA certificate accepted from another zone, PEM.
MAX_CA_PEM = 16 * 1024


def validZoneId(zoneId) -> bool:
    """
    Whether C{zoneId} has the form of a zone id, C{user@host}.
    """
    return isinstance(zoneId, str) and bool(_ZONE_ID.match(zoneId))


def zoneOf(identity: str) -> str:
    """
    The zone id part of a device id (C{ZONE/NAME}), or the id itself for a
    zone id.
    """
    zone, slash, _ = identity.rpartition("/")
    return zone if slash else identity


def checkZoneCA(caPEM, zoneId: str, now: datetime) -> x509.Certificate:
    """
    Check that C{caPEM} is the CA certificate of zone C{zoneId}: one PEM
    certificate, self-signed, a CA, valid at C{now}, naming C{pz:ZONEID}.

    @raise ZoneError: C{CERT_INVALID} saying what is wrong.
    """
    if not isinstance(caPEM, str) or len(caPEM) > MAX_CA_PEM:
        raise ZoneError("CERT_INVALID", "the zone's CA certificate must be PEM text")
    try:
        ca = pki.loadCertificate(caPEM.encode("ascii"))
    except (CertificateError, ValueError, UnicodeEncodeError):
        raise ZoneError("CERT_INVALID", "the zone's CA certificate is not a PEM certificate")
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ZoneError("CERT_INVALID", "the zone's CA certificate is not a CA")
    try:
        ca.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ZoneError("CERT_INVALID", "the zone's CA certificate is not self-signed")
    if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
        raise ZoneError("CERT_INVALID", "the zone's CA certificate is not valid now")
    if pki.identityOf(ca) != zoneId:
        raise ZoneError("CERT_INVALID", f"the CA certificate is not zone {zoneId}'s")
    return ca


class Friends:
    """
    The friend zones of one hub: invitations, trust records and the
    trusted PZH certificates.
    """

    _log = Logger()

    def __init__(self, zone, store: IHubStore, clock, codeLifetime: float = 600.0,
                 sync=None, events=None, limiter=None, zoneLimiter=None) -> None:
        """
        @param sync: the L{pzh.zonesync.HubSync} the trusted certificates
            are written through, or None (a hub that does not synchronise
            keeps trust in its store only).
        @param events: a L{pzh.events.ZoneEvents} told C{zone} with the
            friend's id when a friend comes or goes, or None.
        @param limiter: per-address L{pz.tokens.RateLimiter} of wrong
            invitations (and C{zoneLimiter} for the whole zone).
        """
        self._zone = zone
        self._store = IHubStore(store)
        self._clock = clock
        self.codeLifetime = codeLifetime
        self._sync = sync
        self._events = events
        self._gate = TokenGate(clock, self._store.getInvitation, limiter, zoneLimiter,
                               what="zone invitations")
        self._observers: list = []
        self._cas = {}
        for record in self._store.listFriends():
            self._cas[record.zoneId] = pki.loadCertificate(record.caPEM)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    def observe(self, observer) -> None:
        """
        Tell C{observer} C{friendAdded(record)} and C{friendRemoved(zoneId)}.
        """
        self._observers.append(observer)

    def publish(self) -> None:
        """
        Make the trusted PZH certificates among the items say what the
        store does (at start, and after every change).
        """
        if self._sync is not None:
            self._sync.trustZones({r.zoneId: r.caPEM for r in self._store.listFriends()})

    # -- making trust ---------------------------------------------------------

    def invite(self) -> dict:
        """
        A fresh one-time invitation for another zone's hub.

        @return: C{{"code", "id", "expires"}}: the code to hand over, the
            id the log names it by, and its expiry (POSIX seconds).
        """
        import base64
        import os

        token = base64.urlsafe_b64encode(os.urandom(24)).decode("ascii")
        record = TokenRecord(tokenHash(token), "", self._clock.seconds() + self.codeLifetime)
        self._store.addInvitation(record)
        code = PairingCode(self._zone.host, self._zone.port, token, self._zone.caFingerprint)
        self._log.info("made zone invitation {id}", id=codeId(record.tokenHash))
        return {"code": str(code), "id": codeId(record.tokenHash), "expires": record.expires}

    def befriend(self, token, zoneId, caPEM, host, port, source: str) -> FriendRecord:
        """
        Another zone's hub presents an invitation's token, its CA and where
        it is reached (the inviting side).  Nothing is written unless every
        check passes; the token is consumed atomically.

        @raise ZoneError: the token's refusal (C{TOKEN_*}, C{RATE_LIMITED}),
            C{BAD_REQUEST} for a bad zone id or address, C{CERT_INVALID}
            for a CA that is not that zone's.
        """
        record = self._gate.check(token, source)
        ca = self._checkFriend(zoneId, caPEM, host, port)
        if not self._store.useInvitation(record.tokenHash, self._clock.seconds()):
            raise ZoneError("TOKEN_USED")
        self._log.info("zone {zone} accepted invitation {id} from {source}",
                       zone=zoneId, id=codeId(record.tokenHash), source=source)
        return self._add(zoneId, ca, host, port, dials=False)

    def accepted(self, zoneId, caCert, host: str, port: int) -> FriendRecord:
        """
        This hub accepted zone C{zoneId}'s invitation (L{pzh.befriend}
        checked its CA and hub): trust it, and dial its hub from now on.
        """
        ca = self._checkFriend(zoneId, pki.certificatePEM(caCert).decode("ascii"), host, port)
        return self._add(zoneId, ca, host, port, dials=True)

    def _checkFriend(self, zoneId, caPEM, host, port) -> x509.Certificate:
        if not validZoneId(zoneId):
            raise ZoneError("BAD_REQUEST", "the zone id must be USER@HOST")
        if zoneId == self._zone.zoneId:
            raise ZoneError("BAD_REQUEST", "a zone cannot befriend itself")
        if zoneId in self._cas:
            raise ZoneError("BAD_REQUEST", f"zone {zoneId} is trusted already; "
                                           "untrust it first to make the trust again")
        if (not isinstance(host, str) or not 0 < len(host) <= 253
                or not isinstance(port, int) or isinstance(port, bool)
                or not 0 < port <= 65535):
            raise ZoneError("BAD_REQUEST", "the hub address must be a host and a port")
        ca = checkZoneCA(caPEM, zoneId, self._now())
        if pki.caFingerprint(ca) == self._zone.caFingerprint:
            raise ZoneError("BAD_REQUEST", "that is this zone's own CA")
        return ca

    def _add(self, zoneId, ca, host, port, dials: bool) -> FriendRecord:
        record = FriendRecord(zoneId, pki.caFingerprint(ca), host, port, self._clock.seconds(),
                              dials, pki.certificatePEM(ca))
        self._store.putFriend(record)
        self._cas[zoneId] = ca
        self.publish()
        self._log.info("now trusting zone {zone} (CA {fingerprint})", zone=zoneId,
                       fingerprint=record.fingerprint)
        for observer in self._observers:
            observer.friendAdded(record)
        self._emit(zoneId)
        return record

    def _emit(self, zoneId: str) -> None:
        if self._events is not None:
            self._events.emit("zone", zoneId)

    # -- unmaking it ----------------------------------------------------------

    def untrust(self, zoneId) -> dict:
        """
        Stop trusting zone C{zoneId}: its CA leaves the trusted PZH
        certificates (here and, with the next sync, on every device), and
        its live links are closed at once (the observers).

        @raise ZoneError: C{BAD_REQUEST} if it is not a friend.
        """
        if not isinstance(zoneId, str) or zoneId not in self._cas:
            raise ZoneError("BAD_REQUEST", f"zone {zoneId!r} is not trusted by this zone "
                                           "(pzctl --hub-dir DIR zones lists them)")
        self._store.removeFriend(zoneId)
        del self._cas[zoneId]
        self.publish()
        self._log.info("no longer trusting zone {zone}", zone=zoneId)
        for observer in self._observers:
            observer.friendRemoved(zoneId)
        self._emit(zoneId)
        return {"zone": zoneId}

    # -- reading it -----------------------------------------------------------

    def get(self, zoneId: str):
        """
        The L{FriendRecord} of C{zoneId}, or None.
        """
        return self._store.getFriend(zoneId) if zoneId in self._cas else None

    def records(self) -> list:
        """
        Every friend zone's L{FriendRecord}, by zone id.
        """
        return self._store.listFriends()

    def trusts(self, zoneId: str) -> bool:
        """
        Whether C{zoneId} is a friend zone.
        """
        return zoneId in self._cas

    def caFor(self, zoneId: str):
        """
        The friend zone's CA certificate, or None.
        """
        return self._cas.get(zoneId)

    def hubIdentity(self, cert):
        """
        The friend zone whose hub C{cert} (a TLS client certificate)
        proves, or None if no friend zone's CA issued it.

        Only a friend's I{hub} certificate (its identity is the bare zone
        id) opens a zone link: a device of a friend zone may not, and a
        certificate cannot name one zone while another zone's CA signed it.

        @raise CertificateError: for a certificate a friend CA issued that
            does not identify that friend's hub (C{CERT_INVALID}), or that
            is not valid now (C{CERT_EXPIRED}).
        """
        if cert is None:
            return None
        now = self._now()
        for zoneId, ca in self._cas.items():
            try:
                identity = pki.verifyPeerCertificate(cert, ca, None, now)
            except CertificateError as e:
                if e.code == "CERT_UNTRUSTED":
                    continue
                raise
            if identity != zoneId:
                raise CertificateError(
                    "CERT_INVALID", f"{identity} is not the hub of zone {zoneId}: only a "
                                    "friend zone's hub may open a zone link")
            return zoneId
        return None
