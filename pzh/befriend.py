# -*- test-case-name: tests.pzh.test_friends -*-
"""
The accepting side of a zone invitation: this hub dials the inviting
hub's device port and presents the invitation's token, its own CA and
where it is reached.

As a device enrolling does (L{pzp.enrol}), it does not know the other
zone's CA yet, only its fingerprint from the code: TLS runs without chain
verification, the inviting hub's first frame (C{hello}) carries its CA
certificate, and the token goes out only after that CA matched the
fingerprint, issued the certificate the hub used in the handshake, and
that certificate names the host in the code and the zone.  An impostor
hub learns nothing.
"""

from datetime import datetime, timezone

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.logger import Logger

from pz import pki
from pz.dispatch import MessageTable
from pz.errors import ZoneError
from pz.link import ClockOwner, Link, zoneErrorFrom
from pz.pairing import PairingCode
from pz.tls import enrolmentClientOptions, peerCertificate, verifyHubCertificate
from pz.wire import Envelope

__all__ = ["InvitationProtocol", "Invited", "acceptInvitation"]


@attrs.frozen
class Invited:
    """
    What accepting an invitation proved: the inviting zone, its CA, and
    where its hub is.
    """

    zoneId: str
    caCert: object
    host: str
    port: int


def _unexpected(name: str) -> ZoneError:
    return ZoneError("UNKNOWN_MESSAGE", f"unexpected {name!r} while accepting an invitation")


class InvitationProtocol(Link):
    """
    One attempt to accept an invitation.  C{result} fires with an
    L{Invited} or fails with a L{ZoneError}.
    """

    _log = Logger()
    messages = MessageTable(unknown=_unexpected)

    def __init__(self, code: PairingCode, zone, clock, timeout: float = 30.0) -> None:
        """
        @param zone: this hub's zone (its id, CA, host and port are sent).
        """
        super().__init__(ClockOwner(clock))
        self._code = code
        self._zone = zone
        self._timeout = timeout
        self._invited = None
        self.result: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.setTimeout(self._timeout)

    def _finish(self, outcome) -> None:
        if not self.result.called:
            if isinstance(outcome, ZoneError):
                self.result.errback(outcome)
            else:
                self.result.callback(outcome)
        self.setTimeout(None)
        self.transport.loseConnection()

    @messages.handler("error")
    def _error(self, envelope: Envelope) -> None:
        self._finish(zoneErrorFrom(envelope.payload))

    @messages.handler("hello")
    def _hello(self, envelope: Envelope) -> None:
        if self._invited is not None:
            raise _unexpected(envelope.name)
        payload = envelope.payload
        try:
            caCert = pki.loadCertificate(str(payload.get("ca", "")).encode("ascii"))
        except (pki.CertificateError, ValueError, UnicodeEncodeError):
            self._finish(ZoneError("HUB_UNTRUSTED", "the hub sent no valid CA certificate"))
            return
        if pki.caFingerprint(caCert) != self._code.caFingerprint:
            self._finish(ZoneError(
                "HUB_UNTRUSTED",
                "the hub's CA fingerprint does not match the invitation; not sending the token"))
            return
        zoneId = payload.get("zone")
        if not isinstance(zoneId, str) or not zoneId:
            self._finish(ZoneError("HUB_UNTRUSTED", "the hub's hello names no zone"))
            return
        now = datetime.fromtimestamp(self.clock.seconds(), timezone.utc)
        try:
            verifyHubCertificate(peerCertificate(self.transport), caCert, self._code.host, now,
                                 zoneId=zoneId)
        except pki.CertificateError as e:
            self._finish(ZoneError("HUB_UNTRUSTED", e.message))
            return
        self._invited = Invited(zoneId, caCert, self._code.host, self._code.port)
        zone = self._zone
        self.sendMessage(zoneId, {
            "status": "befriend",
            "token": self._code.token,
            "zone": zone.zoneId,
            "ca": zone.caPEM.decode("ascii"),
            "host": zone.host,
            "port": zone.port,
        })

    @messages.handler("befriended")
    def _befriended(self, envelope: Envelope) -> None:
        if self._invited is None:
            raise _unexpected(envelope.name)
        self._finish(self._invited)

    def timeoutConnection(self) -> None:
        self._finish(ZoneError("TIMEOUT", "the other hub did not answer the invitation in time"))

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        if not self.result.called:
            self.result.errback(ZoneError(
                "NOT_CONNECTED", f"the connection to the other hub closed: "
                                 f"{reason.getErrorMessage()}"))


def acceptInvitation(reactor, zone, codeText: str, timeout: float = 30.0) -> Deferred:
    """
    Dial the hub C{codeText} names and accept its invitation.

    @return: a Deferred firing with an L{Invited}, or failing with a
        L{ZoneError} (C{BAD_REQUEST} for a malformed code, C{HUB_UNTRUSTED},
        the other hub's refusal, C{NOT_CONNECTED}, C{TIMEOUT}).
    """
    code = PairingCode.parse(codeText if isinstance(codeText, str) else "")
    protocol = InvitationProtocol(code, zone, reactor, timeout)
    endpoint = wrapClientTLS(enrolmentClientOptions(code.host),
                             HostnameEndpoint(reactor, code.host, code.port, timeout=timeout),
                             clock=reactor)
    d = connectProtocol(endpoint, protocol)

    def failed(failure):
        if failure.check(ZoneError):
            return failure
        raise ZoneError("NOT_CONNECTED", f"cannot reach the hub at {code.host}:{code.port}: "
                                         f"{failure.getErrorMessage()}")

    d.addCallback(lambda _: protocol.result)
    return d.addErrback(failed)
