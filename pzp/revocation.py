# -*- test-case-name: tests.pzp.test_revocation -*-
"""
Revocation: the zone's CRL as this device holds it, and the one thing that
makes a device erase itself.

A CRL the hub pushes is kept only if the zone CA signed it and it is newer
than the one held.  The zone is erased only when the hub, over the
authenticated link, refuses this device as revoked with a CRL that
verifies under our own zone CA and lists our own certificate; anything
less is logged and ignored.

The Revocation machine::

    Member --crlPushed / unproven--> Member
    Member --proven--> Erased
    Erased --crlPushed / proven / unproven--> Erased   (ignored)

L{Revocation} owns it; it checks the evidence and feeds C{proven} or
C{unproven}.
"""

from typing import Protocol

from automat import TypeMachineBuilder, pep614
from twisted.logger import Logger
from zope.interface import Interface, implementer

from pz import pki
from pz.errors import ZoneError
from pzp.seams import IIdentity, IProxyEvents, IRevocation

__all__ = ["Revocation", "RevocationMachine", "RevocationInputs", "RevocationCore",
           "IRevocationActions"]


class IRevocationActions(Interface):
    """
    What the Revocation machine asks its worker to do.
    """

    def keepIfNewer(crl) -> None:
        """
        Store C{crl} if the zone CA signed it and it is newer than ours.
        """

    def ignoreEvidence() -> None:
        """
        Report a revocation notice that proves nothing.
        """

    def erase() -> None:
        """
        Erase the zone directory and leave the zone.
        """


class RevocationInputs(Protocol):
    def crlPushed(self, crl: object) -> None:
        "The hub pushed a CRL over the registered link."

    def proven(self) -> None:
        "The hub refused us as revoked with a CRL that proves it."

    def unproven(self) -> None:
        "The hub refused us as revoked without proof."

    def state(self) -> str:
        "The name of the current state."


class RevocationCore:
    """
    The Revocation machine's dependencies.
    """

    def __init__(self, actions) -> None:
        self.actions = IRevocationActions(actions)


def _buildRevocation():
    builder = TypeMachineBuilder(RevocationInputs, RevocationCore)
    Member = builder.state("Member")
    Erased = builder.state("Erased")

    Member.upon(RevocationInputs.state).loop().returns("Member")
    Erased.upon(RevocationInputs.state).loop().returns("Erased")

    @pep614(Member.upon(RevocationInputs.crlPushed).loop())
    def keep(inputs: RevocationInputs, core: RevocationCore, crl: object) -> None:
        core.actions.keepIfNewer(crl)

    @pep614(Member.upon(RevocationInputs.unproven).loop())
    def ignore(inputs: RevocationInputs, core: RevocationCore) -> None:
        core.actions.ignoreEvidence()

    @pep614(Member.upon(RevocationInputs.proven).to(Erased))
    def erase(inputs: RevocationInputs, core: RevocationCore) -> None:
        core.actions.erase()

    # Once erased there is nothing left to update or erase.
    Erased.upon(RevocationInputs.crlPushed).loop().returns(None)
    Erased.upon(RevocationInputs.proven).loop().returns(None)
    Erased.upon(RevocationInputs.unproven).loop().returns(None)
    return builder.build()


RevocationMachine = _buildRevocation()


@implementer(IRevocation, IRevocationActions)
class Revocation:
    """
    Keeps the zone's CRL and erases the zone on proof of revocation.
    """

    _log = Logger()

    def __init__(self, zoneDir) -> None:
        self._zoneDir = zoneDir
        self._machine = RevocationMachine(RevocationCore(self))
        self._observers = []

    def observeCRL(self, callback) -> None:
        """
        Call C{callback(crl)} with each newer CRL kept (checked against the
        zone CA), whoever brought it: the hub's push, synchronisation or a
        peer.  Peer mode closes revoked devices' links on it.
        """
        self._observers.append(callback)

    def wire(self, events, identity) -> None:
        self._events = IProxyEvents(events)
        self._identity = IIdentity(identity)

    # --- IRevocation ------------------------------------------------------------

    def crlReceived(self, crl) -> None:
        self._machine.crlPushed(crl)

    def refusedAsRevoked(self, evidence) -> None:
        creds = self._identity.current
        crl = getattr(evidence, "crl", None)
        if crl is not None and pki.crlListsSerial(crl, creds.caCert, creds.cert.serial_number):
            self._machine.proven()
        else:
            self._machine.unproven()

    def status(self) -> dict:
        return {"number": pki.crlNumber(self._identity.current.crl)}

    # --- IRevocationActions -------------------------------------------------------

    def keepIfNewer(self, crl) -> None:
        creds = self._identity.current
        try:
            number = pki.checkCRLUpdate(crl, creds.caCert, creds.crl)
        except pki.StaleCRL as e:
            self._log.info("ignored CRL number {number}: already hold {held}",
                           number=e.number, held=e.held)
            return
        except pki.CertificateError as e:
            self._log.warn("ignored a CRL: {message}", message=e.message)
            return
        self._identity.replaceCRL(crl)
        self._log.info("stored CRL number {number}", number=number)
        for callback in list(self._observers):
            callback(crl)

    def ignoreEvidence(self) -> None:
        self._events.reportError(ZoneError(
            "CRL_INVALID", "a revocation notice without valid evidence was ignored; "
            "nothing was erased"))
        self._log.warn("ignored a CERT_REVOKED whose CRL does not prove it: nothing erased")

    def erase(self) -> None:
        zoneId = self._identity.current.zoneId
        self._zoneDir.wipe()
        self._events.reportError(ZoneError(
            "CERT_REVOKED", f"this device was revoked from {zoneId}; its zone data was "
            "erased. Pair it again to rejoin."))
        self._log.warn("revoked from {zone}: zone data erased, back in Virgin mode", zone=zoneId)
        self._events.leftZone()
