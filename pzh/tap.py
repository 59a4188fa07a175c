# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{twistd pzh}: options and service wiring for the hub.
"""

import os
import socket
from datetime import timedelta

from twisted.application import service
from twisted.logger import Logger
from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage

from pz.admin import AdminService
from pz.endpoints import (
    EXAMPLES, checkCanListenOn, checkDescription, listeningService, tcpEndpoint,
)
from pz.process import (
    DataDirLock, ProcessRoot, checkCanListen, exitOnStartupError, logObserverFor, placeTwistdFiles,
)
from pz.services import StoreService
from pz.sync.engine import MAX_ITEM_SIZE
from pz.tls import hubServerOptions, serverOptions
from pzh.admin import HubAdmin
from pzh.hub import Hub, HubSettings
from pzh.metrics import metricsTokenFromOptions
from pzh.portal.tap import hubPortal
from pzh.protocol import HubFactory
from pzh.store import SQLiteHubStore
from pzh.web import makeSite
from pzh.weblimits import (
    limitOptions,
    limitsFromOptions,
    raiseFileLimit,
    sizedForFileLimit,
    webFactory,
)
from pzh.zone import loadOrCreateZone, validUser, zoneExists
from pzh.zonelink import tlsConnector

__all__ = ["Options", "makeService"]


def _defaultUser() -> str:
    try:
        import getpass

        name = getpass.getuser()
    except Exception:
        name = "owner"
    return name if validUser(name) else "owner"


class Options(usage.Options):
    """
    Command line of C{twistd pzh}.
    """

    synopsis = ("--data-dir DIR [--name USER] [--interface 127.0.0.1] [--port 8000] [--web-port 9000] "
                "[--listen DESCRIPTION ...] [--web-listen DESCRIPTION ...]")
    longdesc = ("Run a personal zone hub: the zone's CA, router and admin web side. "
                "Each port listens on --interface, or on the endpoint descriptions given with "
                "--listen (device links) and --web-listen (the web side): a TCP port, a UNIX "
                "socket, or a socket systemd passed; --port and --web-port remain the ports "
                "devices and pages are told to use.")

    optParameters = [
        ["data-dir", "d", None, "Directory holding the zone (created on first start)."],
        ["name", "n", None, "User part of the zone id (default: the existing zone's, or your "
                            "login name for a new zone; a zone is never renamed)."],
        ["interface", "i", "127.0.0.1", "Address to listen on."],
        ["hostname", None, None, "Host name devices use to reach the hub "
                                 "(default: the interface, or this machine's name)."],
        ["port", "p", 8000, "Port for device links (mutual TLS); with --listen, the port "
                            "devices are told.", int],
        ["web-port", "w", 9000, "Port for the HTTPS admin side (0 to disable); with "
                                "--web-listen, the port pages are told.", int],
        ["idle-timeout", None, 90.0, "Seconds of silence after which a device link is dropped.", float],
        ["code-lifetime", None, 600.0, "Seconds a pairing code stays valid.", float],
        ["cert-lifetime", None, 90.0, "Days a device certificate is valid.", float],
        ["grace-period", None, 30.0, "Days after expiry a device may still renew instead of "
                                     "pairing again.", float],
        ["max-frame", None, 1024 * 1024, "Largest frame accepted, in bytes.", int],
        ["rate", None, 200.0, "Frames a second each device may send (one per started 64 KiB).",
         float],
        ["burst", None, 400, "Frames a device may send at once before --rate applies.", int],
        ["link-queue", None, 4 * 1024 * 1024, "Bytes that may wait to be sent to one device "
                                              "before its senders are paused.", int],
        ["slow-link-timeout", None, 30.0, "Seconds a device's queue may stay full before it is "
                                          "dropped.", float],
        ["queue-budget", None, 64 * 1024 * 1024, "Bytes that may wait to be sent to all devices "
                                                 "together.", int],
        ["sync-interval", None, 2.0, "Seconds between scans of DATA_DIR/zone/items/ for "
                                     "changes made on the hub's machine.", float],
        ["sync-max-item", None, MAX_ITEM_SIZE, "Largest item synchronised, in bytes.", int],
        ["queue-expiry", None, 7 * 24 * 3600.0, "Seconds a message queued for an offline device "
                                                "is kept before it is dropped.", float],
        ["queue-max-messages", None, 1000, "Messages that may be queued for one device.", int],
        ["queue-max-bytes", None, 16 * 1024 * 1024, "Bytes that may be queued for one device.",
         int],
        ["metrics-token", None, None, "Bearer token that opens /metrics on the web port "
                                      "(visible to other local users: prefer --metrics-token-file)."],
        ["metrics-token-file", None, None, "File holding the bearer token that opens /metrics."],
    ] + limitOptions("web-")

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["web-listen"] = []

    def opt_listen(self, description: str) -> None:
        self["listen"].append(description)

    opt_listen.__doc__ = (f"Endpoint to listen on for device links instead of --interface and "
                          f"--port (repeatable): {EXAMPLES}. Mutual TLS is the hub's own.")

    def opt_web_listen(self, description: str) -> None:
        self["web-listen"].append(description)

    opt_web_listen.__doc__ = (f"Endpoint to listen on for the web side instead of --interface "
                              f"and --web-port (repeatable): {EXAMPLES}.")

    def postOptions(self) -> None:
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        self["data-dir"] = os.path.abspath(self["data-dir"])
        if self["name"] is not None and not validUser(self["name"]):
            raise usage.UsageError("--name may hold only letters, digits, '.', '_' and '-'")
        if not self["hostname"]:
            wildcard = self["interface"] in ("0.0.0.0", "::", "")
            self["hostname"] = socket.getfqdn() if wildcard else self["interface"]
        for name in ("port", "web-port"):
            if not 0 <= self[name] <= 65535:
                raise usage.UsageError(f"--{name} must be a port number")
        for name in ("listen", "web-listen"):
            self[name] = [checkDescription(d, name, ownTLS=True) for d in self[name]]
        if self["web-listen"] and not self["web-port"]:
            raise usage.UsageError("--web-listen needs a --web-port other than 0: the port "
                                   "the web side is announced at")
        for name in ("idle-timeout", "code-lifetime", "cert-lifetime", "grace-period", "rate",
                     "slow-link-timeout", "sync-interval", "sync-max-item", "queue-expiry",
                     "queue-max-messages", "queue-max-bytes"):
            if self[name] <= 0:
                raise usage.UsageError(f"--{name} must be positive")
        if self["max-frame"] < 1024:
            raise usage.UsageError("--max-frame must be at least 1024")
        if self["burst"] < 1:
            raise usage.UsageError("--burst must be at least 1")
        if self["link-queue"] < self["max-frame"]:
            raise usage.UsageError("--link-queue must be at least --max-frame")
        if self["queue-budget"] < self["link-queue"]:
            raise usage.UsageError("--queue-budget must be at least --link-queue")
        self["web-limits"] = limitsFromOptions(self, "web-")
        self["metrics-token"] = metricsTokenFromOptions(self["metrics-token"],
                                                        self["metrics-token-file"])
        placeTwistdFiles(self, self["data-dir"], "pzh")


#: Seconds between checks whether the CRL needs re-signing.
_CRL_CHECK_INTERVAL = 3600.0

#: Seconds between sweeps of the messages queued for offline devices that
#: have expired.
_QUEUE_EXPIRY_INTERVAL = 3600.0


class _StartupLog(service.Service):
    """
    Names the zone, its CA fingerprint and its device port in the log when
    the hub starts (after twistd daemonised, so it reaches the log file).
    """

    _log = Logger()

    def __init__(self, zone) -> None:
        self._zone = zone

    def startService(self):
        zone = self._zone
        self._log.info("zone {zone}, CA fingerprint {fingerprint}, device port {port}",
                       zone=zone.zoneId, fingerprint=zone.caFingerprint, port=zone.port)
        return service.Service.startService(self)


#: The option of endpoint descriptions that replaces each port option.
_LISTEN = {"port": "listen", "web-port": "web-listen"}


def _listen(reactor, options, name: str, factory, parent) -> None:
    """
    Listen for the port C{--NAME} with C{factory}, under C{parent}: on
    C{--interface} and that port, or on each description given with its
    C{--listen} option.
    """
    descriptions = options[_LISTEN[name]]
    if not descriptions:
        StreamServerEndpointService(
            tcpEndpoint(reactor, options[name], options["interface"]), factory
        ).setServiceParent(parent)
    for description in descriptions:
        listeningService(reactor, description, factory).setServiceParent(parent)


def makeService(options, reactor=None):
    """
    Build the hub: zone on disk, store, device port, web port, admin socket.

    A hub that cannot start (its data directory in use, a port taken, a
    zone it would rename) exits with one line before writing anything.
    """
    with exitOnStartupError("pzh"):
        return _makeService(options, reactor)


def _makeService(options, reactor):
    if reactor is None:
        from twisted.internet import reactor
    lock = DataDirLock(options["data-dir"]).acquire()
    try:
        for name in ("port", "web-port"):
            if options[_LISTEN[name]]:
                for description in options[_LISTEN[name]]:
                    checkCanListenOn(reactor, description)
            else:
                checkCanListen(options["interface"], options[name])
        user = options["name"]
        if user is None and not zoneExists(options["data-dir"]):
            user = _defaultUser()
        zone = loadOrCreateZone(
            options["data-dir"], user, options["hostname"], options["interface"],
            options["port"], options["web-port"],
        )
    except BaseException:
        lock.release()
        raise
    store = SQLiteHubStore(zone.path("hub.db"))
    settings = HubSettings(
        certLifetime=timedelta(days=options["cert-lifetime"]),
        gracePeriod=timedelta(days=options["grace-period"]),
        codeLifetime=options["code-lifetime"],
        idleTimeout=options["idle-timeout"],
        maxFrame=options["max-frame"],
        rate=options["rate"],
        burst=options["burst"],
        linkQueue=options["link-queue"],
        slowTimeout=options["slow-link-timeout"],
        queueBudget=options["queue-budget"],
        synchronise=True,
        syncInterval=options["sync-interval"],
        syncMaxItem=options["sync-max-item"],
        queueExpiry=options["queue-expiry"],
        queueMaxMessages=options["queue-max-messages"],
        queueMaxBytes=options["queue-max-bytes"],
    )
    hub = Hub(zone, store, reactor, settings, connectZone=tlsConnector(reactor, zone))

    top = ProcessRoot(lock, logObserverFor(getattr(options, "parent", None)))
    _StartupLog(zone).setServiceParent(top)
    StoreService(store, drain=hub.registry.cancel).setServiceParent(top)
    hub.sync.setServiceParent(top)
    hub.zoneLinks.setServiceParent(top)
    portal = hubPortal(hub, reactor, top)
    crlTimer = TimerService(_CRL_CHECK_INTERVAL, hub.refreshCRL)
    crlTimer.clock = reactor
    crlTimer.setServiceParent(top)
    queueTimer = TimerService(_QUEUE_EXPIRY_INTERVAL, hub.expireQueued)
    queueTimer.clock = reactor
    queueTimer.setServiceParent(top)
    tlsFactory = TLSMemoryBIOFactory(
        hubServerOptions(zone.caCert, zone.hubKey, zone.hubCert), False, HubFactory(hub)
    )
    _listen(reactor, options, "port", tlsFactory, top)
    adminAuth = None
    if options["web-port"]:
        webTLS = serverOptions(zone.hubKey, zone.hubCert, [zone.caCert])
        site = makeSite(hub, portal, sizedForFileLimit(options["web-limits"], raiseFileLimit()),
                        reactor, metricsToken=options["metrics-token"])
        adminAuth = site.adminAuth
        _listen(reactor, options, "web-port", webFactory(site, webTLS), top)
    AdminService(reactor, zone.dataDir, HubAdmin(hub, adminAuth)).setServiceParent(top)
    # twistd may fork to daemonise after this returns: no database
    # connection may cross that, so the store reopens in the child.
    store.close()
    hub.sync.state.close()
    return top
