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

import gc
import os

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.ssl import Certificate, PrivateCertificate
from twisted.python import usage
from twisted.web.resource import Resource

from pz.endpoints import (
    EXAMPLES, checkCanListenOn, checkDescription, listeningService, tcpEndpoint,
)
from pz.process import (
    DataDirLock, ProcessRoot, checkCanListen, exitOnStartupError, logObserverFor, placeTwistdFiles,
)
from pz.services import StoreService
from pz.tls import serverOptions
from pzh.portal.commit import ThreadedCommit
from pzh.portal.resource import MAX_BODY, PATH, refusalBody, wellKnown
from pzh.portal.service import PortalService, PortalSettings
from pzh.portal.store import SQLitePortalStore
from pzh.weblimits import (
    GuardedSite,
    limitOptions,
    limitsFromOptions,
    raiseFileLimit,
    sizedForFileLimit,
    webFactory,
)

__all__ = ["Options", "makeService", "hubPortal", "FrozenHeapService", "PORTAL_DB"]

#: The portal's SQLite file in its (or the hub's) data directory.
PORTAL_DB = "portal.db"


class Options(usage.Options):
    """
    Command line of C{twistd meshportal}.
    """

    synopsis = ("--data-dir DIR [--port P] [--interface I] [--listen DESCRIPTION ...] "
                "[--cert PEM --key PEM]")
    longdesc = ("Run a Mathematical Mesh portal: accounts, profiles and device connections "
                "over HTTP(S) at /.well-known/mmm/, kept in a hash-chained log. It listens on "
                "--interface and --port, or on the endpoint descriptions given with --listen "
                "(a TCP port, a UNIX socket, or a socket systemd passed; give --uri then).")

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
        ["commit-delay", None, 0.0,
         "Seconds a batch of writes waits for more before its one commit (0: what arrived "
         "in the same turn).", float],
    ] + limitOptions(withBody=False)

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        self["listen"].append(description)

    opt_listen.__doc__ = (f"Endpoint to listen on instead of --interface and --port "
                          f"(repeatable): {EXAMPLES}.")

    def postOptions(self) -> None:
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        self["data-dir"] = os.path.abspath(self["data-dir"])
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError("--port must be a port number")
        if bool(self["cert"]) != bool(self["key"]):
            raise usage.UsageError("--cert and --key go together")
        self["listen"] = [checkDescription(d, "listen", ownTLS=bool(self["cert"]))
                          for d in self["listen"]]
        self["limits"] = limitsFromOptions(self)
        if self["max-pending"] < 1:
            raise usage.UsageError("--max-pending must be at least 1")
        if not 0 <= self["commit-delay"] <= 1:
            raise usage.UsageError("--commit-delay must be between 0 and 1 second")
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
        placeTwistdFiles(self, self["data-dir"], "meshportal")


class FrozenHeapService(service.Service):
    """
    Once the portal has started, moves what the process then holds (its
    modules, classes, options and service tree, all kept until it exits)
    out of the garbage collector's sight with C{gc.freeze}, after one full
    collection so that no garbage is kept.

    Every request makes and drops many small containers (the decoded JSON,
    the structures, the Deferreds), so the collector runs often, and each
    of its older-generation passes used to walk the whole heap of Twisted
    and the portal again: about a tenth of the instructions a served
    Publish cost. Frozen objects are only skipped by the collector, never
    freed while referenced, and what the portal makes afterwards is
    collected as before.
    """

    def __init__(self, freeze=gc.freeze, collect=gc.collect) -> None:
        self._freeze = freeze
        self._collect = collect

    def startService(self):
        service.Service.startService(self)
        self._collect()
        self._freeze()


def _tlsOptions(certFile: str, keyFile: str):
    try:
        with open(certFile, "rb") as f:
            certPEM = f.read()
        with open(keyFile, "rb") as f:
            keyPEM = f.read()
        pair = PrivateCertificate.loadPEM(keyPEM + certPEM)
        return serverOptions(pair.privateKey.original, pair.original)
    except Exception as e:
        raise usage.UsageError(f"cannot use --cert {certFile} / --key {keyFile}: {e}")


def _followClient(reactor, url: str, caFile):
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    from pz.mesh.client import MeshClient
    from pz.tls import httpsClientPolicy

    trustRoot = None
    if caFile:
        with open(caFile, "rb") as f:
            trustRoot = Certificate.loadPEM(f.read())
    agent = Agent(
        reactor, contextFactory=httpsClientPolicy(trustRoot),
        pool=HTTPConnectionPool(reactor, persistent=True),
    )
    return MeshClient(url, HTTPClient(agent), timeout=30.0, reactor=reactor)


def makeService(options, reactor=None):
    """
    Build C{twistd meshportal}: the store, the portal, its web site, and the
    replica if it follows another portal.  A portal that cannot start (its
    data directory in use, its port taken) exits with one line before
    writing anything.
    """
    with exitOnStartupError("meshportal"):
        return _makeService(options, reactor)


def _makeService(options, reactor):
    if reactor is None:
        from twisted.internet import reactor
    from pzh.portal.replica import PortalReplica

    lock = DataDirLock(options["data-dir"]).acquire()
    try:
        for description in options["listen"]:
            checkCanListenOn(reactor, description)
        if not options["listen"]:
            checkCanListen(options["interface"], options["port"])
    except BaseException:
        lock.release()
        raise
    store = SQLitePortalStore(os.path.join(options["data-dir"], PORTAL_DB))
    writer = ThreadedCommit(reactor)
    portal = PortalService(store, reactor, PortalSettings(
        uri=options["uri"],
        maxPending=options["max-pending"],
        primary=options["follow"],
        movedTo=options["moved-to"],
        commitDelay=options["commit-delay"],
    ), commit=writer)
    root = Resource()
    limits = sizedForFileLimit(options["limits"], raiseFileLimit())
    root.putChild(b".well-known", wellKnown(portal, limits.maxBody))
    tls = _tlsOptions(options["cert"], options["key"]) if options["cert"] else None

    top = ProcessRoot(lock, logObserverFor(getattr(options, "parent", None)))
    StoreService(store, drain=portal.drain, workers=[writer]).setServiceParent(top)
    site = webFactory(GuardedSite(root, limits, reactor=reactor,
                                  refusalBodies={PATH.encode("ascii"): refusalBody}), tls)
    for description in options["listen"]:
        listeningService(reactor, description, site).setServiceParent(top)
    if not options["listen"]:
        StreamServerEndpointService(
            tcpEndpoint(reactor, options["port"], options["interface"]), site
        ).setServiceParent(top)
    if options["follow"]:
        PortalReplica(
            portal, _followClient(reactor, options["follow"], options["follow-ca"]), reactor,
            options["follow-interval"],
        ).setServiceParent(top)
    # Last: the others have started, and what they hold is kept for good.
    FrozenHeapService().setServiceParent(top)
    # twistd may fork to daemonise after this returns: no database
    # connection may cross that, so the store reopens in the child.
    store.close()
    return top


def hubPortal(hub, clock, parent) -> PortalService:
    """
    The portal of a personal zone hub: its state in the hub's data
    directory, accepted devices enrolled in the zone, each connection
    request stored or answered told to the admin page (a C{mesh} event on
    the hub's events), the store closed when C{parent} stops. Mount it
    with C{pzh.web.makeSite(hub, portal)}.
    """
    from pzh.portal.zone import HubZoneEnroller

    store = SQLitePortalStore(hub.zone.path(PORTAL_DB))
    zone = hub.zone
    portal = PortalService(
        store, clock,
        PortalSettings(uri=f"https://{zone.host}:{zone.webPort}{PATH}"),
        enroller=HubZoneEnroller(hub),
        connections=lambda account, device, state: hub.events.emit(
            "mesh", {"id": device, "account": account, "state": state}),
    )
    StoreService(store, drain=portal.drain).setServiceParent(parent)
    store.close()
    return portal
