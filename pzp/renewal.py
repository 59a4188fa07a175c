# -*- test-case-name: tests.pzp.test_renewal -*-
"""
Certificate renewal: a connected device renews over its hub link once two
thirds of its certificate's life have passed.

The Renewal machine::

    Idle --linkUp--> Waiting --due--> Renewing --renewed--> Waiting
                                      Renewing --failed--> Retrying --due--> Renewing
    Waiting, Retrying, Renewing --linkLost / stop--> Idle

L{Renewal} owns it; the Hub mode worker feeds it the link's coming and
going, and the timers it sets feed C{due}.  A device told to renew before
its link is registered (its certificate expired within the grace period)
renews at once through L{Renewal.renew}, outside the machine: that link
closes right after, and the next one is registered with the new
certificate.
"""

from datetime import datetime, timezone
from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz import pki
from pz.errors import ZoneError
from pzp.seams import IIdentity, IProxyEvents, IRenewal, asZoneError

__all__ = ["Renewal", "RenewalMachine", "RenewalInputs", "RenewalCore", "IRenewalActions",
           "renewalTime"]


def renewalTime(cert) -> float:
    """
    When C{cert} should be renewed: once two thirds of its life (from
    issue, not counting the back-dating for clock skew) have passed.
    """
    issued = (cert.not_valid_before_utc + pki.CLOCK_SKEW).timestamp()
    expires = cert.not_valid_after_utc.timestamp()
    return issued + (expires - issued) * 2 / 3


class IRenewalActions(Interface):
    """
    What the Renewal machine asks its worker.
    """

    def untilRenewal() -> float:
        """
        Seconds from now to the current certificate's renewal time (0 if
        it has passed).
        """

    def untilRetry() -> float:
        """
        Seconds to wait after a failed renewal: a tenth of the
        certificate's remaining life, at least ten.
        """

    def renew(link) -> Deferred:
        """
        Renew over C{link}; fires once the new identity is stored.
        """

    def renewalFailed(error, retry) -> None:
        """
        A renewal failed; another is tried in C{retry} seconds if the link
        stays.
        """


class RenewalInputs(Protocol):
    def linkUp(self, link: object) -> None:
        "A registered hub link."

    def due(self, link: object) -> None:
        "The renewal (or retry) time came."

    def renewed(self, link: object) -> None:
        "The renewed identity is stored."

    def failed(self, link: object, error: object) -> None:
        "The renewal failed (refused, unanswered, unusable, link closed)."

    def linkLost(self) -> None:
        "The hub link is gone."

    def stop(self) -> None:
        "The proxy stops or leaves the zone."

    def state(self) -> str:
        "The name of the current state."


class RenewalCore:
    """
    The Renewal machine's dependencies.
    """

    def __init__(self, clock, actions) -> None:
        self.clock = clock
        self.actions = IRenewalActions(actions)


def _waitForRenewalTime(inputs: RenewalInputs, core: RenewalCore, link: object) -> IDelayedCall:
    return core.clock.callLater(core.actions.untilRenewal(), inputs.due, link)


def _retryLater(inputs: RenewalInputs, core: RenewalCore, link: object,
                error: object) -> IDelayedCall:
    retry = core.actions.untilRetry()
    core.actions.renewalFailed(error, retry)
    return core.clock.callLater(retry, inputs.due, link)


def _buildRenewal():
    builder = TypeMachineBuilder(RenewalInputs, RenewalCore)
    Idle = builder.state("Idle")
    Waiting = builder.state("Waiting", _waitForRenewalTime)
    Renewing = builder.state("Renewing")
    Retrying = builder.state("Retrying", _retryLater)

    Idle.upon(RenewalInputs.state).loop().returns("Idle")
    Renewing.upon(RenewalInputs.state).loop().returns("Renewing")
    Waiting.upon(RenewalInputs.state, nodata=True).loop().returns("Waiting")
    Retrying.upon(RenewalInputs.state, nodata=True).loop().returns("Retrying")

    Idle.upon(RenewalInputs.linkUp).to(Waiting).returns(None)
    Renewing.upon(RenewalInputs.renewed).to(Waiting).returns(None)
    Renewing.upon(RenewalInputs.failed).to(Retrying).returns(None)

    @pep614(Waiting.upon(RenewalInputs.due).to(Renewing))
    @pep614(Retrying.upon(RenewalInputs.due).to(Renewing))
    def renewNow(inputs: RenewalInputs, core: RenewalCore, timer: IDelayedCall,
                 link: object) -> None:
        core.actions.renew(link).addCallbacks(
            lambda _: inputs.renewed(link), lambda f: inputs.failed(link, asZoneError(f)))

    @pep614(Waiting.upon(RenewalInputs.linkLost).to(Idle))
    @pep614(Retrying.upon(RenewalInputs.linkLost).to(Idle))
    @pep614(Waiting.upon(RenewalInputs.stop).to(Idle))
    @pep614(Retrying.upon(RenewalInputs.stop).to(Idle))
    def cancel(inputs: RenewalInputs, core: RenewalCore, timer: IDelayedCall) -> None:
        if timer.active():
            timer.cancel()

    # The link closing fails the request in flight before the link is
    # reported lost; whatever the order, an answer that comes after the
    # link or the proxy stopped schedules nothing.
    Renewing.upon(RenewalInputs.linkLost).to(Idle).returns(None)
    Renewing.upon(RenewalInputs.stop).to(Idle).returns(None)
    Idle.upon(RenewalInputs.linkLost).loop().returns(None)
    Idle.upon(RenewalInputs.stop).loop().returns(None)
    Idle.upon(RenewalInputs.renewed).loop().returns(None)

    @pep614(Idle.upon(RenewalInputs.failed).loop())
    def failedLate(inputs: RenewalInputs, core: RenewalCore, link: object,
                   error: object) -> None:
        core.actions.renewalFailed(error, None)

    return builder.build()


RenewalMachine = _buildRenewal()


@implementer(IRenewal, IRenewalActions)
class Renewal:
    """
    Renews this device's certificate over its hub link.
    """

    _log = Logger()

    def __init__(self, clock) -> None:
        self._clock = clock
        self._machine = RenewalMachine(RenewalCore(clock, self))

    def wire(self, events, identity) -> None:
        self._events = IProxyEvents(events)
        self._identity = IIdentity(identity)

    # --- IRenewal -------------------------------------------------------------

    def linkUp(self, link) -> None:
        self._machine.linkUp(link)

    def linkLost(self) -> None:
        self._machine.linkLost()

    def stop(self) -> None:
        self._machine.stop()

    def renew(self, link):
        """
        Renew over C{link}: a new key, a CSR, the hub's new certificate
        checked and stored with the key in one atomic swap.  Fires when
        the new identity is in use for the next connection.
        """
        creds = self._identity.current
        key = pki.newKey()
        csr = pki.makeCSR(key, creds.deviceId)
        d = link.request(creds.zoneId, {"status": "renew", "csr": pki.csrPEM(csr).decode("ascii")})

        def renewed(payload):
            now = datetime.fromtimestamp(self._clock.seconds(), timezone.utc)
            try:
                cert = pki.loadCertificate(str(payload.get("certificate", "")).encode("ascii"))
                deviceId = pki.verifyPeerCertificate(cert, creds.caCert, creds.crl, now)
            except (pki.CertificateError, UnicodeEncodeError) as e:
                raise ZoneError("CERT_INVALID", f"the hub's renewed certificate is unusable: {e}")
            if deviceId != creds.deviceId or cert.public_key() != key.public_key():
                raise ZoneError("CERT_INVALID", "the renewed certificate is not for this device's new key")
            self._identity.replaceIdentity(key, cert)
            self._log.info("renewed the certificate: serial {serial}, valid until {until}",
                           serial=format(cert.serial_number, "x"), until=cert.not_valid_after_utc)
            return cert

        return d.addCallback(renewed)

    # --- IRenewalActions ------------------------------------------------------

    def untilRenewal(self) -> float:
        return max(0.0, renewalTime(self._identity.current.cert) - self._clock.seconds())

    def untilRetry(self) -> float:
        expires = self._identity.current.cert.not_valid_after_utc.timestamp()
        return max(10.0, (expires - self._clock.seconds()) / 10)

    def renewalFailed(self, error, retry) -> None:
        self._events.reportError(error)
        if retry is None:
            self._log.warn("certificate renewal failed ({code}: {message})",
                           code=error.code, message=error.message)
        else:
            self._log.warn("certificate renewal failed ({code}: {message}); retrying in "
                           "{retry:.0f}s", code=error.code, message=error.message, retry=retry)
