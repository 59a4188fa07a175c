"""
Tests for L{pzh.tap}: the options of C{twistd pzh} and the services they
build.
"""

import json
import os
import time

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent
from twisted.plugin import getPlugins
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

import pzh.tap
from pz.admin import AdminService
from pz.services import StoreService
from pzh.protocol import HubFactory
from pzh.store import SQLiteHubStore
from pzh.tap import Options, makeService
from pzh.weblimits import ConnectionCaps, GuardedSite, WebLimits
from pzh.zone import loadZone
from tests.support import takenPort


def _hubOf(top):
    """
    The hub a built service tree serves (its device port's).
    """
    [device] = [s for s in top if isinstance(s, StreamServerEndpointService)
                and isinstance(s.factory, TLSMemoryBIOFactory)]
    return device.factory.wrappedFactory.hub


class OptionsTests(SynchronousTestCase):
    """
    L{Options} validates the command line.
    """

    def parse(self, *args) -> Options:
        options = Options()
        options.parseOptions(list(args))
        return options

    def assertUsage(self, *args) -> str:
        """
        Parsing C{args} fails with a usage error; return its text.
        """
        return str(self.assertRaises(usage.UsageError, self.parse, *args))

    def test_defaults(self):
        """
        With only a data directory, the hub listens on 127.0.0.1 ports 8000
        and 9000, calls itself by that address, and has the documented
        limits.
        """
        options = self.parse("--data-dir", "zone", "--name", "anna")
        self.assertEqual(options["data-dir"], os.path.abspath("zone"))
        self.assertEqual((options["interface"], options["hostname"]), ("127.0.0.1", "127.0.0.1"))
        self.assertEqual((options["port"], options["web-port"]), (8000, 9000))
        self.assertEqual(options["idle-timeout"], 90.0)
        self.assertEqual(options["code-lifetime"], 600.0)
        self.assertEqual(options["cert-lifetime"], 90.0)
        self.assertEqual(options["max-frame"], 1024 * 1024)
        self.assertEqual((options["sync-interval"], options["sync-max-item"]),
                         (2.0, 64 * 1024 * 1024))
        self.assertEqual((options["queue-expiry"], options["queue-max-messages"],
                          options["queue-max-bytes"]), (7 * 24 * 3600.0, 1000, 16 * 1024 * 1024))

    def test_webLimits(self):
        """
        The web port's limits default to L{WebLimits}'s and are options; one
        that is too small is a usage error naming it.
        """
        self.assertEqual(self.parse("-d", "z", "-n", "a")["web-limits"], WebLimits())
        options = self.parse("-d", "z", "-n", "a", "--web-max-body", "4096",
                             "--web-request-timeout", "2.5", "--web-max-connections", "100",
                             "--web-max-per-address", "10")
        self.assertEqual(options["web-limits"], WebLimits(4096, 2.5, 100, 10))
        self.assertIn("--web-max-body", self.assertUsage("-d", "z", "--web-max-body", "100"))
        for name in ("--web-request-timeout", "--web-max-connections", "--web-max-per-address"):
            self.assertIn(name, self.assertUsage("-d", "z", name, "0"))

    def test_dataDirRequired(self):
        """
        C{--data-dir} is required.
        """
        self.assertIn("--data-dir", self.assertUsage("--name", "anna"))

    def test_shortOptions(self):
        """
        The short forms set the same options, with types converted.
        """
        options = self.parse("-d", "z", "-n", "bob", "-i", "127.0.0.2", "-p", "8443", "-w", "0")
        self.assertEqual((options["name"], options["interface"], options["port"],
                          options["web-port"]), ("bob", "127.0.0.2", 8443, 0))
        self.assertEqual(options["hostname"], "127.0.0.2")

    def test_hostname(self):
        """
        An explicit host name wins over the interface.
        """
        options = self.parse("-d", "z", "-n", "a", "--hostname", "hub.example")
        self.assertEqual(options["hostname"], "hub.example")

    def test_wildcardHostname(self):
        """
        Listening on every address, the hub calls itself by this machine's
        name.
        """
        self.patch(pzh.tap.socket, "getfqdn", lambda: "box.example")
        for interface in ("0.0.0.0", "::"):
            options = self.parse("-d", "z", "-n", "a", "-i", interface)
            self.assertEqual(options["hostname"], "box.example")

    def test_defaultUser(self):
        """
        Without C{--name} the name is left to L{makeService}: the existing
        zone's, or the login name for a new zone.
        """
        self.assertIsNone(self.parse("-d", "z")["name"])

    def test_badName(self):
        """
        A user name that cannot be part of a zone id is refused.
        """
        for name in ("a@b", "a b", "a/b", "x" * 65):
            self.assertIn("--name", self.assertUsage("-d", "z", "-n", name))

    def test_ports(self):
        """
        Ports must be 0-65535 (0 turns the web side off).
        """
        for flag in ("--port", "--web-port"):
            for bad in ("-1", "65536"):
                self.assertIn(flag, self.assertUsage("-d", "z", "-n", "a", flag, bad))
            self.parse("-d", "z", "-n", "a", flag, "65535")
        self.assertRaises(usage.UsageError, self.parse, "-d", "z", "-n", "a", "-p", "http")

    def test_listenDefaults(self):
        """
        Without C{--listen} or C{--web-listen}, neither lists a description
        (the ports come from C{--interface}, C{--port} and C{--web-port}).
        """
        options = self.parse("-d", "z", "-n", "a")
        self.assertEqual((options["listen"], options["web-listen"]), ([], []))

    def test_listen(self):
        """
        C{--listen} and C{--web-listen} may each be given more than once and
        keep their descriptions in order; C{--port} stays as given.
        """
        options = self.parse("-d", "z", "-n", "a", "--listen", "tcp:8100:interface=127.0.0.1",
                             "--web-listen", "unix:/run/pz/web.sock", "--listen", "tcp6:8100",
                             "-p", "8100")
        self.assertEqual(options["listen"], ["tcp:8100:interface=127.0.0.1", "tcp6:8100"])
        self.assertEqual(options["web-listen"], ["unix:/run/pz/web.sock"])
        self.assertEqual(options["port"], 8100)

    def test_badListen(self):
        """
        A description that cannot work, or an C{ssl:} one (the hub's ports
        have their own TLS), is a usage error of one line naming the
        option; so is C{--web-listen} with the web side disabled.
        """
        for argv, words in (
            (["--listen", "tcp:abc"], "--listen 'tcp:abc' is not an endpoint"),
            (["--web-listen", "nosuch:1"], "--web-listen 'nosuch:1' is not an endpoint"),
            (["--listen", "ssl:8443"], "--listen 'ssl:8443'"),
            (["--web-listen", "tcp:9100", "-w", "0"], "--web-listen needs a --web-port"),
        ):
            message = self.assertUsage("-d", "z", "-n", "a", *argv)
            self.assertIn(words, message)
            self.assertNotIn("\n", message)

    def test_listenInHelp(self):
        """
        C{--help} names both options and says what a description looks like.
        """
        text = str(Options())
        self.assertIn("--listen=", text)
        self.assertIn("--web-listen=", text)
        self.assertIn("systemd:domain=INET:index=N", " ".join(text.split()))

    def test_positive(self):
        """
        Timeouts and lifetimes must be positive.
        """
        names = [name for name, _, _, _, kind in
                 (p + [None] * (5 - len(p)) for p in Options.optParameters)
                 if kind is float]
        self.assertIn("idle-timeout", names)
        for name in names:
            for bad in ("0", "-1"):
                self.assertIn(f"--{name}", self.assertUsage("-d", "z", "-n", "a",
                                                            f"--{name}", bad))
            self.assertEqual(self.parse("-d", "z", "-n", "a", f"--{name}", "0.5")[name], 0.5)

    def test_maxFrame(self):
        """
        The frame limit must be at least 1 KiB.
        """
        self.assertIn("--max-frame", self.assertUsage("-d", "z", "-n", "a", "--max-frame", "1023"))
        self.assertEqual(self.parse("-d", "z", "-n", "a", "--max-frame", "1024")["max-frame"], 1024)

    def test_flowOptions(self):
        """
        The burst is at least one frame, a link's queue holds at least one
        frame, and the budget at least one link's queue.
        """
        base = ("-d", "z", "-n", "a")
        self.assertIn("--burst", self.assertUsage(*base, "--burst", "0"))
        self.assertIn("--link-queue", self.assertUsage(*base, "--link-queue", "1000"))
        self.assertIn("--queue-budget", self.assertUsage(*base, "--link-queue", "2000000",
                                                         "--queue-budget", "1999999"))
        options = self.parse(*base, "--rate", "50", "--burst", "10", "--link-queue", "2000000",
                             "--queue-budget", "2000000")
        self.assertEqual((options["rate"], options["burst"], options["link-queue"],
                          options["queue-budget"]), (50.0, 10, 2000000, 2000000))

    def test_queueBounds(self):
        """
        The bounds of the queue kept for an offline device must be positive.
        """
        base = ("-d", "z", "-n", "a")
        for name in ("queue-max-messages", "queue-max-bytes"):
            self.assertIn(f"--{name}", self.assertUsage(*base, f"--{name}", "0"))
            self.assertEqual(self.parse(*base, f"--{name}", "3")[name], 3)


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService} builds the hub's services, without starting them.
    """

    def build(self, *args):
        options = Options()
        options.parseOptions(["-d", self.mktemp(), "-n", "anna", *args])
        reactor = MemoryReactorClock()
        reactor.advance(time.time())
        top = makeService(options, reactor)
        store = [s for s in top if isinstance(s, StoreService) and isinstance(s.store, SQLiteHubStore)]
        self.addCleanup(store[0].stopService)
        self.addCleanup(top.lock.release)
        return options, top

    def test_services(self):
        """
        The hub is a L{MultiService} with the device port (mutual TLS around
        the hub protocol), the web site and the admin socket, over a zone
        created in the data directory.
        """
        options, top = self.build("-p", "8001", "-w", "9001", "--max-frame", "4096",
                                  "--rate", "50", "--burst", "7", "--link-queue", "8192",
                                  "--slow-link-timeout", "5", "--queue-budget", "65536",
                                  "--sync-interval", "7", "--sync-max-item", "5000",
                                  "--queue-expiry", "60", "--queue-max-messages", "9",
                                  "--queue-max-bytes", "4096")
        self.assertIsInstance(top, MultiService)
        servers = [s for s in top if isinstance(s, StreamServerEndpointService)]
        admin = [s for s in servers if isinstance(s, AdminService)]
        ports = [s for s in servers if not isinstance(s, AdminService)]
        self.assertEqual(len(admin), 1)
        self.assertEqual(len(ports), 2)
        device, web = ports
        self.assertIsInstance(device.factory, TLSMemoryBIOFactory)
        self.assertIsInstance(device.factory.wrappedFactory, HubFactory)
        hub = device.factory.wrappedFactory.hub
        self.assertEqual(hub.maxFrame, 4096)
        self.assertEqual((hub.settings.rate, hub.settings.burst, hub.settings.linkQueue,
                          hub.settings.slowTimeout, hub.settings.queueBudget),
                         (50.0, 7, 8192, 5.0, 65536))
        self.assertEqual((hub.settings.synchronise, hub.settings.syncInterval,
                          hub.settings.syncMaxItem), (True, 7.0, 5000))
        self.assertEqual((hub.settings.queueExpiry, hub.settings.queueMaxMessages,
                          hub.settings.queueMaxBytes), (60.0, 9, 4096))
        self.assertIn(hub.sync, list(top))
        self.assertTrue(os.path.isdir(hub.zone.path(os.path.join("zone", "items"))))
        self.assertEqual(hub.zone.zoneId, "anna@127.0.0.1")
        self.assertIsInstance(web.factory, ConnectionCaps)
        self.assertIsInstance(web.factory.wrappedFactory, TLSMemoryBIOFactory)
        self.assertIsInstance(web.factory.wrappedFactory.wrappedFactory, GuardedSite)
        self.assertEqual(device.endpoint._port, 8001)
        self.assertEqual(device.endpoint._interface, "127.0.0.1")
        self.assertEqual(web.endpoint._port, 9001)
        self.assertEqual(web.factory.limits.maxBody, WebLimits().maxBody)
        self.assertEqual(web.factory.wrappedFactory.wrappedFactory.limits, web.factory.limits)
        self.assertEqual(loadZone(options["data-dir"]).port, 8001)

    def test_listenServices(self):
        """
        With C{--listen} and C{--web-listen} the hub listens on each
        description instead of C{--interface}/C{--port}: device links
        still in the hub's mutual TLS, the web side still its own; the
        zone still tells devices C{--port}.
        """
        socketPath = os.path.abspath(self.mktemp())
        options, top = self.build("-p", "8001", "--listen", "tcp:8002:interface=127.0.0.1",
                                  "--listen", "tcp:8003:interface=127.0.0.1",
                                  "--web-listen", f"unix:{socketPath}")
        servers = [s for s in top if isinstance(s, StreamServerEndpointService)
                   and not isinstance(s, AdminService)]
        first, second, web = servers
        for device, port in ((first, 8002), (second, 8003)):
            self.assertIsInstance(device.factory, TLSMemoryBIOFactory)
            self.assertIsInstance(device.factory.wrappedFactory, HubFactory)
            self.assertEqual((device.endpoint._port, device.endpoint._interface),
                             (port, "127.0.0.1"))
        self.assertIs(first.factory, second.factory)
        self.assertIsInstance(web.endpoint, UNIXServerEndpoint)
        self.assertEqual(web.endpoint._address, socketPath)
        self.assertIsInstance(web.factory, ConnectionCaps)
        self.assertIsInstance(web.factory.wrappedFactory, TLSMemoryBIOFactory)
        self.assertEqual(loadZone(options["data-dir"]).port, 8001)

    def test_noWeb(self):
        """
        With C{--web-port 0} there is no web side.
        """
        _, top = self.build("-w", "0")
        servers = [s for s in top if isinstance(s, StreamServerEndpointService)
                   and not isinstance(s, AdminService)]
        self.assertEqual(len(servers), 1)

    def test_storeClosedOnStop(self):
        """
        The store is left closed when the service is built (twistd may fork
        after that), reopens on use, and is closed when the hub stops.
        """
        _, top = self.build()
        [store] = [s for s in top if isinstance(s, StoreService) and isinstance(s.store, SQLiteHubStore)]
        hub = _hubOf(top)
        self.assertIs(store.store, hub.store)
        self.assertIsNone(hub.store._connection)
        store.startService()
        hub.store.putSetting("x", "y")
        self.assertIsNotNone(hub.store._connection)
        store.stopService()
        self.assertIsNone(hub.store._connection)

    def test_crlTimer(self):
        """
        A timer re-signs the CRL when it is due; another drops expired
        queued messages, both hourly.
        """
        _, top = self.build()
        timers = [s for s in top if isinstance(s, TimerService)]
        hub = _hubOf(top)
        self.assertEqual(sorted((t.call[0].__name__, t.step) for t in timers),
                         [("expireQueued", 3600.0), ("refreshCRL", 3600.0)])
        self.assertEqual({t.call[0] for t in timers}, {hub.refreshCRL, hub.expireQueued})


class StartupRefusalTests(SynchronousTestCase):
    """
    A hub that cannot start says why in one line (C{SystemExit}, which
    twistd prints before it daemonises) and writes nothing.
    """

    def setUp(self):
        self.dataDir = os.path.abspath(self.mktemp())
        self.tops = []

    def tearDown(self):
        for top in self.tops:
            self.stop(top)

    def stop(self, top) -> None:
        """
        What stopping the hub's process does to its data directory: the
        store closed, the lock released.
        """
        [store] = [s for s in top if isinstance(s, StoreService) and isinstance(s.store, SQLiteHubStore)]
        store.stopService()
        top.lock.release()

    def start(self, *args):
        """
        Build a hub on C{self.dataDir}; fail with the C{SystemExit} text if
        it refuses.
        """
        options = Options()
        options.parseOptions(["-d", self.dataDir, *args])
        reactor = MemoryReactorClock()
        reactor.advance(time.time())
        top = makeService(options, reactor)
        self.tops.append(top)
        return top

    def refused(self, *args) -> str:
        return str(self.assertRaises(SystemExit, self.start, *args))

    def zoneFile(self) -> bytes:
        with open(os.path.join(self.dataDir, "zone.json"), "rb") as f:
            return f.read()

    def test_portTaken(self):
        """
        A device port that something else listens on stops the hub before
        it creates anything: one line naming the address.
        """
        port = takenPort(self)
        message = self.refused("-n", "anna", "-p", str(port), "-w", "0")
        self.assertEqual(message, f"pzh: cannot listen on 127.0.0.1:{port}: address already in use")
        self.assertFalse(os.path.exists(os.path.join(self.dataDir, "zone.json")))

    def test_listenPortTaken(self):
        """
        A C{--listen} or C{--web-listen} TCP port that something else
        listens on is refused like C{--port}, before anything is created.
        """
        port = takenPort(self)
        for other, option in ((["-w", "0"], "--listen"), (["-p", "0"], "--web-listen")):
            message = self.refused("-n", "anna", *other, option, f"tcp:{port}:interface=127.0.0.1")
            self.assertEqual(message,
                             f"pzh: cannot listen on 127.0.0.1:{port}: address already in use")
            self.assertFalse(os.path.exists(os.path.join(self.dataDir, "zone.json")))

    def test_webPortTaken(self):
        """
        The web port is checked too, and an existing zone keeps its ports.
        """
        self.stop(self.start("-n", "anna", "-p", "0", "-w", "0"))
        before = self.zoneFile()
        port = takenPort(self)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}",
                      self.refused("-n", "anna", "-p", "0", "-w", str(port)))
        self.assertEqual(self.zoneFile(), before)

    def test_dataDirInUse(self):
        """
        A second hub on a data directory that a running hub holds is refused
        in one line, and the first hub's C{zone.json} (its ports) is not
        rewritten.
        """
        self.start("-n", "anna", "-p", "0", "-w", "0")
        before = self.zoneFile()
        message = self.refused("-n", "anna", "-p", "0", "-w", "0", "--hostname", "other.example")
        self.assertEqual(message, "pzh: another process is already using the data directory "
                                  f"{self.dataDir}")
        self.assertEqual(self.zoneFile(), before)

    def test_defaultUserForNewZone(self):
        """
        A new zone without C{--name} takes the login name if it is a valid
        user part, C{owner} otherwise; a restart without C{--name} keeps the
        zone's name whoever starts it.
        """
        import getpass

        self.patch(getpass, "getuser", lambda: "carol")
        top = self.start("-p", "0", "-w", "0")
        self.assertEqual(json.loads(self.zoneFile())["zone"], "carol@127.0.0.1")
        self.stop(top)
        self.patch(getpass, "getuser", lambda: "dave")
        self.start("-p", "0", "-w", "0")
        self.assertEqual(json.loads(self.zoneFile())["zone"], "carol@127.0.0.1")
        for name, expected in (("carol smith", "owner"), (OSError, "owner")):
            def user(name=name):
                if name is OSError:
                    raise OSError("no user")
                return name
            self.patch(getpass, "getuser", user)
            self.assertEqual(pzh.tap._defaultUser(), expected)

    def test_renameRefused(self):
        """
        A restart with another C{--name} is refused in one line: the zone id
        is in every certificate of the zone, so it cannot change, and
        nothing is rewritten.
        """
        top = self.start("-n", "anna", "-p", "0", "-w", "0")
        self.stop(top)
        before = self.zoneFile()
        message = self.refused("-n", "bob", "-p", "0", "-w", "0")
        self.assertTrue(message.startswith("pzh: BAD_REQUEST: the zone in "), message)
        self.assertIn("is anna@127.0.0.1; a zone cannot be renamed: start with --name anna",
                      message)
        self.assertNotIn("\n", message)
        self.assertEqual(self.zoneFile(), before)
        self.start("-n", "anna", "-p", "0", "-w", "0")

    def test_startupLog(self):
        """
        The hub's start-up log names the zone and its CA fingerprint.
        """
        from twisted.logger import globalLogPublisher

        top = self.start("-n", "anna", "-p", "0", "-w", "0")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        [startupLog] = [s for s in top if type(s).__name__ == "_StartupLog"]
        startupLog.startService()
        zone = loadZone(self.dataDir)
        text = [formatEvent(e) for e in events]
        self.assertIn(f"zone anna@127.0.0.1, CA fingerprint {zone.caFingerprint}, device port 0",
                      text)


class PluginTests(SynchronousTestCase):
    """
    The C{twistd pzh} plugin is found.
    """

    def test_plugin(self):
        """
        C{getPlugins(IServiceMaker)} lists C{pzh}, lazily naming this
        module.
        """
        [maker] = [p for p in getPlugins(IServiceMaker) if p.tapname == "pzh"]
        self.assertIs(maker.options, Options)
