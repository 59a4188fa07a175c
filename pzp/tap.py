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
from pz.sync.items import ItemTree
from pz.zoneservice import buildService
from pzp.admin import ProxyAdmin
from pzp.calls import DEFAULT_TIMEOUT
from pzp.inbox import MAX_BYTES, MAX_MESSAGES, MIN_BYTES
from pzp.prompts import DEFAULT_PROMPT_TIMEOUT
from pzp.proxy import Proxy, ProxySettings
from pzp.preferences import DEFAULT_PEER_PORT, peerPort, readPreferences
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
                "input) or --pair-file PATH. The proxy connects out to its hub and listens on "
                "its peer port (--peer-port) for direct links from the zone's other devices; "
                "its admin socket is DATA_DIR/admin.sock, where pzctl --pzp-dir finds it.")

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
        ["peer-port", None, None, "Port of the peer server, where the zone's other devices "
                                  "link directly (default: the ports preference pzp_tlsServer, "
                                  f"{DEFAULT_PEER_PORT}; 0: any free port).", int],
        ["peer-interface", None, "", "Address the peer server listens on (default: all)."],
        ["call-timeout", None, DEFAULT_TIMEOUT, "Seconds a service call waits for its answer.",
         float],
        ["prompt-timeout", None, DEFAULT_PROMPT_TIMEOUT, "Seconds a prompt (a policy rule that "
                                                         "asks first) waits for pzctl answer "
                                                         "before the call is denied.", float],
    ]

    optFlags = [
        ["constrained", None, "Synchronise only the certificates and the CRL (a device with "
                              "little memory, power or bandwidth)."],
        ["no-peer", None, "Run no peer server and dial no other device: everything goes "
                          "through the hub."],
        ["no-builtin-services", None, "Do not run the built-in services (get42, context, "
                                      "files)."],
        ["mesh-approvals", None, "Answer the hub's admin page's Mesh approvals: tell the hub "
                                 "which Mesh accounts this device administers (its keys in "
                                 "DATA_DIR/mesh/, from pzctl mesh create) and answer the "
                                 "connection requests the hub asks it to approve or refuse, "
                                 "signed here."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["services"] = []

    def opt_service(self, spec: str) -> None:
        """
        A zone service to run, as module:factory (the factory is called
        with no arguments and returns the service); repeatable.
        """
        try:
            self["services"].append(buildService(spec))
        except ZoneError as e:
            raise usage.UsageError(f"--service {spec}: {e.message}")

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
        if self["peer-port"] is not None and not 0 <= self["peer-port"] <= 65535:
            raise usage.UsageError("--peer-port must be a port number, 0 to 65535")
        if self["call-timeout"] <= 0:
            raise usage.UsageError("--call-timeout must be positive")
        if self["prompt-timeout"] <= 0:
            raise usage.UsageError("--prompt-timeout must be positive")
        names = [s.name for s in self["services"]]
        if len(set(names)) != len(names):
            raise usage.UsageError("two --service options give services of the same name")
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


def _peerPort(options) -> int:
    """
    The peer server's port: C{--peer-port}, else the device's C{ports}
    preference (C{pzp_tlsServer}), else its default.
    """
    if options["peer-port"] is not None:
        return options["peer-port"]
    return peerPort(readPreferences(ItemTree(ZoneDirectory(options["data-dir"]).path)))


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
                             peerPort=None if options["no-peer"] else _peerPort(options),
                             peerInterface=options["peer-interface"],
                             peerConnection=not options["no-peer"],
                             builtinServices=not options["no-builtin-services"],
                             callTimeout=options["call-timeout"],
                             promptTimeout=options["prompt-timeout"],
                             meshApprovals=bool(options["mesh-approvals"]),
                             inboxMessages=options["inbox-max-messages"],
                             inboxBytes=options["inbox-max-bytes"],
                             sync=SyncSettings(interval=options["sync-interval"],
                                               maxItem=options["sync-max-item"],
                                               constrained=bool(options["constrained"])))
    exit = ProcessExit(reactor, "pzp", dataDir)
    proxy = Proxy(dataDir, reactor, options["name"], options["pair"], settings, giveUp=exit.fail,
                  services=options["services"])
    top = ProcessRoot(lock, logObserverFor(getattr(options, "parent", None)))
    proxy.setServiceParent(top)
    AdminService(reactor, options["data-dir"], ProxyAdmin(proxy)).setServiceParent(top)
    return top
