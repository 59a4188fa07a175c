# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{twistd pzp}: options and service wiring for a device's proxy.
"""

import os
import re
import socket
import sys

from twisted.python import usage

from pz.admin import AdminService
from pz.process import (
    DataDirLock, ProcessExit, ProcessRoot, StartupError, clearExitRecord, exitOnStartupError,
    logObserverFor, placeTwistdFiles,
)
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.sync.engine import MAX_ITEM_SIZE
from pzp.admin import ProxyAdmin
from pzp.inbox import MAX_BYTES, MAX_MESSAGES, MIN_BYTES
from pzp.proxy import Proxy, ProxySettings
from pzp.sync import SyncSettings
from pzp.zonedir import ZoneDirectory

__all__ = ["Options", "makeService"]


def _defaultDeviceName() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:63]
    return name.lstrip("._-") or "device"


class Options(usage.Options):
    """
    Command line of C{twistd pzp}.
    """

    synopsis = "--data-dir DIR [--pair CODE | --pair - | --pair-file PATH] [--name DEVICE]"
    longdesc = ("Run the personal zone proxy of this device. The first start needs a "
                "pairing code from the hub; later starts reuse the stored certificate. "
                "A code given as --pair CODE stays visible to every user of this machine "
                "(ps) for the life of the process: prefer --pair - (read from standard "
                "input) or --pair-file PATH. The proxy opens no port (it connects out to its "
                "hub); its admin socket is DATA_DIR/admin.sock, where pzctl --pzp-dir finds it.")

    optParameters = [
        ["data-dir", "d", None, "Directory holding this device's zone data."],
        ["pair", None, None, "Pairing code (pz://HOST:PORT/TOKEN#FINGERPRINT) to enrol with, "
                             "or - to read it from standard input."],
        ["pair-file", None, None, "File holding the pairing code to enrol with."],
        ["name", "n", None, "Device name to ask for (default: this machine's host name)."],
        ["keepalive", None, 30.0, "Seconds between pings to the hub.", float],
        ["max-backoff", None, 30.0, "Longest wait between reconnection attempts, in seconds.", float],
        ["inbox-max-messages", None, MAX_MESSAGES, "Messages the inbox keeps; the oldest are "
                                                   "dropped (and counted) past it.", int],
        ["inbox-max-bytes", None, MAX_BYTES, "Largest size of the inbox file, in bytes "
                                             f"(at least {MIN_BYTES}).", int],
        ["sync-interval", None, 2.0, "Seconds between scans of DATA_DIR/zone/items/ for "
                                     "local changes.", float],
        ["sync-max-item", None, MAX_ITEM_SIZE, "Largest item synchronised, in bytes.", int],
    ]

    optFlags = [
        ["constrained", None, "Synchronise only the certificates and the CRL (a device with "
                              "little memory, power or bandwidth)."],
    ]

    def postOptions(self) -> None:
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        self["data-dir"] = os.path.abspath(self["data-dir"])
        code = self._pairingCode()
        if code is not None:
            try:
                self["pair"] = PairingCode.parse(code)
            except ZoneError as e:
                raise usage.UsageError(e.message)
        self["name"] = self["name"] or _defaultDeviceName()
        if self["keepalive"] <= 0 or self["max-backoff"] <= 0:
            raise usage.UsageError("--keepalive and --max-backoff must be positive")
        if self["inbox-max-messages"] < 1:
            raise usage.UsageError("--inbox-max-messages must be positive")
        if self["sync-interval"] <= 0 or self["sync-max-item"] < 1:
            raise usage.UsageError("--sync-interval and --sync-max-item must be positive")
        if self["inbox-max-bytes"] < MIN_BYTES:
            raise usage.UsageError(f"--inbox-max-bytes must be at least {MIN_BYTES}")
        placeTwistdFiles(self, self["data-dir"], "pzp")

    def _pairingCode(self):
        """
        The pairing code's text from C{--pair}, standard input (C{--pair -})
        or C{--pair-file}; L{None} without any.
        """
        if self["pair"] and self["pair-file"]:
            raise usage.UsageError("give --pair or --pair-file, not both")
        if self["pair-file"]:
            try:
                with open(self["pair-file"], encoding="utf-8") as f:
                    return _firstLine(f.read(4096), f"--pair-file {self['pair-file']}")
            except (OSError, UnicodeDecodeError) as e:
                raise usage.UsageError(f"cannot read --pair-file {self['pair-file']}: {e}")
        if self["pair"] == "-":
            return _firstLine(sys.stdin.readline(4096), "standard input (--pair -)")
        return self["pair"]


def _firstLine(text: str, where: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    raise usage.UsageError(f"no pairing code in {where}")


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
    settings = ProxySettings(keepalive=options["keepalive"], maxBackoff=options["max-backoff"],
                             inboxMessages=options["inbox-max-messages"],
                             inboxBytes=options["inbox-max-bytes"],
                             sync=SyncSettings(interval=options["sync-interval"],
                                               maxItem=options["sync-max-item"],
                                               constrained=bool(options["constrained"])))
    exit = ProcessExit(reactor, "pzp", dataDir)
    proxy = Proxy(dataDir, reactor, options["name"], options["pair"], settings, giveUp=exit.fail)
    top = ProcessRoot(lock, logObserverFor(getattr(options, "parent", None)))
    proxy.setServiceParent(top)
    AdminService(reactor, options["data-dir"], ProxyAdmin(proxy)).setServiceParent(top)
    return top
