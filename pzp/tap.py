# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{twistd pzp}: options and service wiring for a device's proxy.
"""

import os
import re
import socket

from twisted.application import service
from twisted.python import usage

from pz.admin import AdminService
from pz.process import (
    DataDirLock, ProcessExit, ProcessRoot, StartupError, clearExitRecord, exitOnStartupError,
    logObserverFor, placeTwistdFiles,
)
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pzp.admin import ProxyAdmin
from pzp.proxy import Proxy, ProxySettings
from pzp.zonedir import ZoneDirectory

__all__ = ["Options", "makeService"]


def _defaultDeviceName() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:63]
    return name.lstrip("._-") or "device"


class Options(usage.Options):
    """
    Command line of C{twistd pzp}.
    """

    synopsis = "--data-dir DIR [--pair CODE] [--name DEVICE]"
    longdesc = ("Run the personal zone proxy of this device. The first start needs a "
                "pairing code from the hub; later starts reuse the stored certificate.")

    optParameters = [
        ["data-dir", "d", None, "Directory holding this device's zone data."],
        ["pair", None, None, "Pairing code (pz://HOST:PORT/TOKEN#FINGERPRINT) to enrol with."],
        ["name", "n", None, "Device name to ask for (default: this machine's host name)."],
        ["keepalive", None, 30.0, "Seconds between pings to the hub.", float],
        ["max-backoff", None, 30.0, "Longest wait between reconnection attempts, in seconds.", float],
    ]

    def postOptions(self) -> None:
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        self["data-dir"] = os.path.abspath(self["data-dir"])
        if self["pair"]:
            try:
                self["pair"] = PairingCode.parse(self["pair"])
            except ZoneError as e:
                raise usage.UsageError(e.message)
        self["name"] = self["name"] or _defaultDeviceName()
        if self["keepalive"] <= 0 or self["max-backoff"] <= 0:
            raise usage.UsageError("--keepalive and --max-backoff must be positive")
        placeTwistdFiles(self, self["data-dir"], "pzp")


def makeService(options, reactor=None):
    """
    Build the proxy and its admin socket.

    A proxy that cannot start (its data directory in use, no pairing code
    and no zone) exits with one line; one that meets a hopeless error
    while running (a refused code, a hub that is not its zone's) exits
    with status 1 and leaves the reason for C{pzctl wait}.
    """
    with exitOnStartupError("pzp"):
        return _makeService(options, reactor)


def _makeService(options, reactor):
    if reactor is None:
        from twisted.internet import reactor
    dataDir = options["data-dir"]
    lock = DataDirLock(dataDir).acquire()
    if options["pair"] is None and not ZoneDirectory(dataDir).enrolled():
        lock.release()
        raise StartupError(f"{dataDir} is in no zone yet: start with --pair CODE "
                           "(get one with: pzctl --hub-dir HUB_DIR pair --device NAME)")
    clearExitRecord(dataDir)
    settings = ProxySettings(keepalive=options["keepalive"], maxBackoff=options["max-backoff"])
    exit = ProcessExit(reactor, "pzp", dataDir)
    proxy = Proxy(dataDir, reactor, options["name"], options["pair"], settings, giveUp=exit.fail)
    top = ProcessRoot(lock, logObserverFor(getattr(options, "parent", None)))
    proxy.setServiceParent(top)
    AdminService(reactor, options["data-dir"], ProxyAdmin(proxy)).setServiceParent(top)
    return top
