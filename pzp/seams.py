# -*- test-case-name: tests.pzp.test_proxy -*-
"""
The seams between the proxy's workers.

L{pzp.proxy.Proxy} builds one worker per job (Virgin mode, Hub mode,
renewal, revocation, the peer directory) and wires them in one place.  A
worker is told who it talks to in its C{wire()} method, which adapts each
collaborator to the interface below (as magic-wormhole's workers do), so an
argument given in the wrong place fails when the proxy is built, not when
a message first arrives.
"""

from zope.interface import Attribute, Interface

from pz.errors import ZoneError

__all__ = [
    "asZoneError", "IProxyEvents", "IVirginMode", "IHubMode", "IIdentity", "IRenewal", "IRevocation",
    "IPeerDirectory", "ISync",
]


def asZoneError(failure) -> ZoneError:
    """
    The L{ZoneError} a failed attempt stands for when it reaches a worker:
    itself if it is one, else C{NOT_CONNECTED} (a refused or broken
    connection).
    """
    if isinstance(failure.value, ZoneError):
        return failure.value
    return ZoneError("NOT_CONNECTED", failure.getErrorMessage())


class IProxyEvents(Interface):
    """
    What the workers tell the proxy: the mode changes and the error the
    status shows.  The proxy feeds its mode machine from these alone.
    """

    running = Attribute("Whether the proxy runs: a stopped one schedules no retries.")

    def enrolled() -> None:
        """
        The credentials are stored: leave Virgin mode for Hub mode.
        """

    def leftZone() -> None:
        """
        The hub proved this device revoked and the zone data is erased.
        """

    def reportError(error) -> None:
        """
        An attempt ended with this L{pz.errors.ZoneError}; the status shows it.
        """

    def clearError() -> None:
        """
        The hub link is up: the last error is history.
        """

    def giveUp(error) -> None:
        """
        Nothing the proxy retries can cure C{error}: C{twistd pzp} exits.
        """


class IVirginMode(Interface):
    """
    The worker that enrols a device in no zone yet.
    """

    def start() -> None:
        """
        Enrol with the pairing code, or give up if there is none.
        """

    def stop() -> None:
        """
        Cancel a scheduled retry.
        """

    def status() -> dict:
        """
        C{state} and C{hub} for the proxy's status.
        """


class IHubMode(Interface):
    """
    The worker that keeps the link to the hub.
    """

    def start() -> None:
        """
        Start the reconnecting service.
        """

    def stopReconnecting() -> None:
        """
        Stop reconnecting, once the current attempt's outcome is in.
        """

    def lost(reason) -> None:
        """
        The registered link failed (error, timeout or hang-up).
        """

    def send(to: str, payload: dict):
        """
        A request to another device over the link; fires with its answer.
        """

    def state() -> str:
        """
        The Hub machine's state name.
        """

    def currentLink():
        """
        The registered hub link, or None while not Connected.
        """

    def status() -> dict:
        """
        C{state} and C{hub} for the proxy's status.
        """


class IIdentity(Interface):
    """
    The zone credentials this device holds, kept in step with the disk.
    """

    current = Attribute("The L{pzp.zonedir.Credentials} in use.")

    def replaceIdentity(key, cert) -> None:
        """
        Store a renewed key and certificate (one atomic swap) and use them.
        """

    def replaceCRL(crl) -> None:
        """
        Store a newer CRL and use it.
        """


class IRenewal(Interface):
    """
    The worker that renews this device's certificate in time.
    """

    def linkUp(link) -> None:
        """
        A registered link: renew over it once the renewal time comes.
        """

    def linkLost() -> None:
        """
        The link is gone: nothing is renewed until the next one.
        """

    def renew(link):
        """
        Renew over C{link} now; fires once the new identity is stored.
        """

    def stop() -> None:
        """
        Cancel what is scheduled.
        """


class IRevocation(Interface):
    """
    The worker that keeps the zone's CRL and erases the zone on proof of
    this device's revocation.
    """

    def crlReceived(crl) -> None:
        """
        A CRL pushed by the hub: keep it if it is the zone's and newer.
        """

    def observeCRL(callback) -> None:
        """
        Call C{callback(crl)} with every newer, verified CRL kept.
        """

    def refusedAsRevoked(evidence) -> None:
        """
        The hub refused this device as revoked: erase the zone if the
        evidence proves it.
        """

    def status() -> dict:
        """
        The CRL held, for the proxy's status.
        """


class IPeerDirectory(Interface):
    """
    The worker that knows which devices of the zone are connected.
    """

    def update(payload: dict) -> None:
        """
        Apply a C{pzpUpdate}.
        """

    def clear() -> None:
        """
        Forget every peer (the hub link is gone).
        """

    def peers() -> dict:
        """
        Device id -> what the hub said of it.
        """


class ISync(Interface):
    """
    The worker that keeps the zone's items in step with the hub.
    """

    def start() -> None:
        """
        Start watching the items folder.
        """

    def stop() -> None:
        """
        Stop watching and release the sync state.
        """

    def linkUp(link) -> None:
        """
        A registered hub link: synchronise over it.
        """

    def linkLost() -> None:
        """
        The link is gone: transfers in flight are dropped, whole.
        """

    def received(payload: dict) -> None:
        """
        A synchronisation message from the hub.
        """

    def syncNow():
        """
        The person asked: scan and synchronise now; fires with a summary.
        """

    def status() -> dict:
        """
        Progress and state for the proxy's status.
        """

    def conflicts() -> list:
        """
        The losing versions kept under C{conflicts/}.
        """
