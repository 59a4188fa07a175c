# -*- test-case-name: tests.mesh.portal.test_tap -*-
"""
C{twistd meshportal}: a Mesh portal on its own, and L{hubPortal}, the same
portal wired into C{twistd pzh}.

Standalone, it serves plain HTTP, or HTTPS when given a certificate and
key, and keeps its state in C{DATA_DIR/portal.db}. With C{--follow URL} it
is a read-only replica of the portal at URL (L{pzh.portal.replica}); with
C{--moved-to URL} it only tells clients where the portal went (303).

Inside the hub it is mounted on the hub's HTTPS web port, keeps its state
in the hub's data directory (C{portal.db}), and gives devices that an
administration device accepts a zone certificate (L{HubZoneEnroller}).
"""

import os

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.ssl import Certificate, PrivateCertificate
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Site

from pzh.portal.resource import MAX_BODY, PATH, wellKnown
from pzh.portal.service import PortalService, PortalSettings
from pzh.portal.store import SQLitePortalStore

__all__ = ["Options", "makeService", "hubPortal", "PortalStoreService", "PORTAL_DB"]

#: The portal's SQLite file in its (or the hub's) data directory.
PORTAL_DB = "portal.db"


class Options(usage.Options):
    """
    Command line of C{twistd meshportal}.
    """

    synopsis = "--data-dir DIR [--port P] [--interface I] [--cert PEM --key PEM]"
    longdesc = ("Run a Mathematical Mesh portal: accounts, profiles and device connections "
                "over HTTP(S) at /.well-known/mmm/, kept in a hash-chained log.")

    optParameters = [
        ["data-dir", "d", None, "Directory holding the portal's state (created on first start)."],
        ["port", "p", 8080, "Port to listen on.", int],
        ["interface", "i", "127.0.0.1", "Address to listen on."],
        ["cert", None, None, "PEM certificate: serve HTTPS (needs --key)."],
        ["key", None, None, "PEM private key of --cert."],
        ["uri", None, None, "URL clients reach the portal at, reported by Hello."],
        ["max-body", None, MAX_BODY, "Largest request body accepted, in bytes.", int],
        ["max-pending", None, 32, "Connection requests that may wait on one account.", int],
        ["follow", None, None, "URL of a portal to follow: this one becomes its read-only replica."],
        ["follow-ca", None, None, "PEM CA certificate to trust for an https --follow portal."],
        ["follow-interval", None, 5.0, "Seconds between replays of the followed portal's log.", float],
        ["moved-to", None, None, "Answer every request 303 RedirectPermanent with this URL."],
    ]

    def postOptions(self) -> None:
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        self["data-dir"] = os.path.abspath(self["data-dir"])
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError("--port must be a port number")
        if bool(self["cert"]) != bool(self["key"]):
            raise usage.UsageError("--cert and --key go together")
        if self["max-body"] < 1024:
            raise usage.UsageError("--max-body must be at least 1024")
        if self["max-pending"] < 1:
            raise usage.UsageError("--max-pending must be at least 1")
        if self["follow-interval"] <= 0:
            raise usage.UsageError("--follow-interval must be positive")
        if self["follow"] and self["moved-to"]:
            raise usage.UsageError("--follow and --moved-to exclude each other")
        if self["follow"]:
            from pz.mesh.client import portalEndpoint

            try:
                self["follow"] = portalEndpoint(self["follow"])
            except ValueError as e:
                raise usage.UsageError(f"--follow: {e}")
        if not self["uri"]:
            scheme = "https" if self["cert"] else "http"
            host = f"[{self['interface']}]" if ":" in self["interface"] else self["interface"]
            self["uri"] = f"{scheme}://{host}:{self['port']}{PATH}"


class PortalStoreService(service.Service):
    """
    Closes the portal's store when the service stops (it reopens on use).
    """

    def __init__(self, store) -> None:
        self.store = store

    def stopService(self):
        self.store.close()
        return service.Service.stopService(self)


def _endpoint(reactor, port: int, interface: str, tls=None):
    if tls is not None:
        return SSL4ServerEndpoint(reactor, port, tls, interface=interface)
    if ":" in interface:
        return TCP6ServerEndpoint(reactor, port, interface=interface)
    return TCP4ServerEndpoint(reactor, port, interface=interface)


def _tlsOptions(certFile: str, keyFile: str):
    try:
        with open(certFile, "rb") as f:
            certPEM = f.read()
        with open(keyFile, "rb") as f:
            keyPEM = f.read()
        return PrivateCertificate.loadPEM(keyPEM + certPEM).options()
    except Exception as e:
        raise usage.UsageError(f"cannot use --cert {certFile} / --key {keyFile}: {e}")


def _followClient(reactor, url: str, caFile):
    from treq.client import HTTPClient
    from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

    from pz.mesh.client import MeshClient

    trustRoot = None
    if caFile:
        with open(caFile, "rb") as f:
            trustRoot = Certificate.loadPEM(f.read())
    agent = Agent(
        reactor, contextFactory=BrowserLikePolicyForHTTPS(trustRoot=trustRoot),
        pool=HTTPConnectionPool(reactor, persistent=True),
    )
    return MeshClient(url, HTTPClient(agent), timeout=30.0, reactor=reactor)


def makeService(options, reactor=None):
    """
    Build C{twistd meshportal}: the store, the portal, its web site, and the
    replica if it follows another portal.
    """
    if reactor is None:
        from twisted.internet import reactor
    from pzh.portal.replica import PortalReplica

    os.makedirs(options["data-dir"], mode=0o700, exist_ok=True)
    store = SQLitePortalStore(os.path.join(options["data-dir"], PORTAL_DB))
    portal = PortalService(store, reactor, PortalSettings(
        uri=options["uri"],
        maxPending=options["max-pending"],
        primary=options["follow"],
        movedTo=options["moved-to"],
    ))
    root = Resource()
    root.putChild(b".well-known", wellKnown(portal, options["max-body"]))
    tls = _tlsOptions(options["cert"], options["key"]) if options["cert"] else None

    top = service.MultiService()
    PortalStoreService(store).setServiceParent(top)
    StreamServerEndpointService(
        _endpoint(reactor, options["port"], options["interface"], tls),
        # No form bodies: the portal reads JSON only (see pzh.web.makeSite).
        Site(root, parsePOSTFormSubmission=False),
    ).setServiceParent(top)
    if options["follow"]:
        PortalReplica(
            portal, _followClient(reactor, options["follow"], options["follow-ca"]), reactor,
            options["follow-interval"],
        ).setServiceParent(top)
    # twistd may fork to daemonise after this returns: no database
    # connection may cross that, so the store reopens in the child.
    store.close()
    return top


def hubPortal(hub, clock, parent) -> PortalService:
    """
    The portal of a personal zone hub: its state in the hub's data
    directory, accepted devices enrolled in the zone, the store closed when
    C{parent} stops. Mount it with C{pzh.web.makeSite(hub, portal)}.
    """
    from pzh.portal.zone import HubZoneEnroller

    store = SQLitePortalStore(hub.zone.path(PORTAL_DB))
    zone = hub.zone
    portal = PortalService(
        store, clock,
        PortalSettings(uri=f"https://{zone.host}:{zone.webPort}{PATH}"),
        enroller=HubZoneEnroller(hub),
    )
    PortalStoreService(store).setServiceParent(parent)
    store.close()
    return portal
