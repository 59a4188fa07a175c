"""
Tests for L{pzp.tap}: the command line of C{twistd pzp}.
"""

import io
import os

from twisted.application import service
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from pz.pairing import PairingCode
from pz.process import ProcessExit
from pzp import tap
from pzp.proxy import Proxy

CODE = "pz://127.0.0.1:8000/abcdefghijklmnopqrstuv#MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM"


class OptionsTests(SynchronousTestCase):
    """
    Tests for L{tap.Options}.
    """

    def parse(self, *argv):
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def refused(self, *argv) -> str:
        return str(self.assertRaises(usage.UsageError, self.parse, *argv))

    def test_dataDirRequired(self):
        """
        Without C{--data-dir} the options are refused, naming it.
        """
        self.assertIn("--data-dir", self.refused())
        self.assertIn("--data-dir", self.refused("--pair", CODE))

    def test_dataDirAbsolute(self):
        """
        The data directory is made absolute (twistd may chdir later).
        """
        options = self.parse("--data-dir", "relative/dir")
        self.assertEqual(options["data-dir"], os.path.abspath("relative/dir"))

    def test_defaults(self):
        """
        Without the optional settings: no pairing code, 30 s keepalive and
        backoff, and a device name.
        """
        options = self.parse("-d", "x")
        self.assertIsNone(options["pair"])
        self.assertEqual((options["keepalive"], options["max-backoff"]), (30.0, 30.0))
        self.assertTrue(options["name"])

    def test_pairParsed(self):
        """
        A valid pairing code is parsed into a L{PairingCode}.
        """
        options = self.parse("--data-dir", "x", "--pair", CODE)
        self.assertEqual(options["pair"], PairingCode.parse(CODE))

    def test_badPairRefused(self):
        """
        A malformed pairing code is refused with a sentence saying what is
        wrong, not a traceback.
        """
        for bad in ("http://127.0.0.1:8000/abcdefghijklmnopqrstuv#X",
                    "pz://127.0.0.1:8000/short#MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM",
                    "pz://127.0.0.1:8000/abcdefghijklmnopqrstuv#nope",
                    "pz://127.0.0.1/abcdefghijklmnopqrstuv#MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM"):
            self.assertIn("pairing code", self.refused("--data-dir", "x", "--pair", bad))

    def test_pairFile(self):
        """
        C{--pair-file PATH} reads the code from the first non-blank line of
        a file, so it never shows in the process's command line.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("\n  " + CODE + "  \nignored\n")
        options = self.parse("--data-dir", "x", "--pair-file", path)
        self.assertEqual(options["pair"], PairingCode.parse(CODE))

    def test_pairStdin(self):
        """
        C{--pair -} reads the code from standard input.
        """
        self.patch(tap.sys, "stdin", io.StringIO(CODE + "\n"))
        options = self.parse("--data-dir", "x", "--pair", "-")
        self.assertEqual(options["pair"], PairingCode.parse(CODE))

    def test_pairFileRefused(self):
        """
        A missing or empty file, empty standard input, a bad code in the
        file, and both C{--pair} and C{--pair-file} are refused with one
        sentence.
        """
        empty = self.mktemp()
        with open(empty, "w") as f:
            f.write("\n \n")
        bad = self.mktemp()
        with open(bad, "w") as f:
            f.write("pz://nope\n")
        self.assertIn("cannot read --pair-file", self.refused("-d", "x", "--pair-file", "/nonexistent/c"))
        self.assertIn("no pairing code in --pair-file", self.refused("-d", "x", "--pair-file", empty))
        self.assertIn("pairing code", self.refused("-d", "x", "--pair-file", bad))
        self.assertIn("not both", self.refused("-d", "x", "--pair", CODE, "--pair-file", empty))
        self.patch(tap.sys, "stdin", io.StringIO(""))
        self.assertIn("standard input", self.refused("-d", "x", "--pair", "-"))

    def test_inboxBounds(self):
        """
        The inbox bounds default to 10,000 messages and 16 MiB; a bound
        that could not hold the longest message is refused.
        """
        options = self.parse("-d", "x")
        self.assertEqual((options["inbox-max-messages"], options["inbox-max-bytes"]),
                         (10_000, 16 * 1024 * 1024))
        self.assertIn("positive", self.refused("-d", "x", "--inbox-max-messages", "0"))
        self.assertIn("at least", self.refused("-d", "x", "--inbox-max-bytes", "1000"))

    def test_syncOptions(self):
        """
        Synchronisation scans every 2 s and takes items up to 64 MiB unless
        told otherwise; a device is not constrained unless asked; a scan
        interval or size limit that is not positive is refused.
        """
        options = self.parse("-d", "x")
        self.assertEqual((options["sync-interval"], options["sync-max-item"],
                          options["constrained"]), (2.0, 64 * 1024 * 1024, 0))
        options = self.parse("-d", "x", "--sync-interval", "0.5", "--sync-max-item", "1000",
                             "--constrained")
        self.assertEqual((options["sync-interval"], options["sync-max-item"],
                          options["constrained"]), (0.5, 1000, 1))
        self.assertIn("positive", self.refused("-d", "x", "--sync-interval", "0"))
        self.assertIn("positive", self.refused("-d", "x", "--sync-max-item", "0"))

    def test_name(self):
        """
        C{--name} is the device name asked for.
        """
        self.assertEqual(self.parse("-d", "x", "--name", "phone")["name"], "phone")

    def test_defaultName(self):
        """
        Without C{--name}, the host name's first label is used, with
        characters a device name cannot have replaced.
        """
        self.patch(tap.socket, "gethostname", lambda: "my laptop!.example.org")
        self.assertEqual(self.parse("-d", "x")["name"], "my-laptop-")
        self.patch(tap.socket, "gethostname", lambda: "...")
        self.assertEqual(self.parse("-d", "x")["name"], "device")

    def test_numbers(self):
        """
        C{--keepalive} and C{--max-backoff} are numbers.
        """
        options = self.parse("-d", "x", "--keepalive", "5", "--max-backoff", "2.5")
        self.assertEqual((options["keepalive"], options["max-backoff"]), (5.0, 2.5))
        self.assertRaises(usage.UsageError, self.parse, "-d", "x", "--keepalive", "soon")

    def test_positive(self):
        """
        Zero or negative timings are refused.
        """
        for flag in ("--keepalive", "--max-backoff"):
            for value in ("0", "-1"):
                self.assertIn("positive", self.refused("-d", "x", flag, value))


    def test_serviceOption(self):
        """
        C{--service module:factory} (repeatable) builds each service when
        the options are read; a factory that cannot be loaded, or two
        services of one name, are refused in one line naming the option.
        """
        options = self.parse("-d", "x", "--service", "pzp.builtins.get42:Get42Service",
                             "--service", "tests.pz.test_testingservices:Echo")
        self.assertEqual([s.name for s in options["services"]], ["get42", "echo"])
        self.assertEqual(self.parse("-d", "x")["services"], [])
        message = self.refused("-d", "x", "--service", "no.such.module:make")
        self.assertIn("--service no.such.module:make", message)
        self.assertNotIn("\n", message)
        self.assertIn("MODULE:FACTORY", self.refused("-d", "x", "--service", "nocolon"))
        self.assertIn("same name", self.refused(
            "-d", "x", "--service", "pzp.builtins.get42:Get42Service",
            "--service", "pzp.builtins.get42:Get42Service"))

    def test_peerOptions(self):
        """
        The peer port defaults to the preference (read when the service is
        made); C{--peer-port} must be a port number; C{--no-peer} and
        C{--no-builtin-services} are off unless given.
        """
        options = self.parse("-d", "x")
        self.assertEqual((options["peer-port"], options["no-peer"], options["no-builtin-services"],
                          options["call-timeout"]), (None, 0, 0, 30.0))
        self.assertEqual(self.parse("-d", "x", "--peer-port", "0")["peer-port"], 0)
        for bad in ("-1", "65536"):
            self.assertIn("port number", self.refused("-d", "x", "--peer-port", bad))
        self.assertIn("positive", self.refused("-d", "x", "--call-timeout", "0"))

    def test_promptTimeout(self):
        """
        C{--prompt-timeout} is 20 s unless given, and must be positive.
        """
        self.assertEqual(self.parse("-d", "x")["prompt-timeout"], 20.0)
        self.assertEqual(self.parse("-d", "x", "--prompt-timeout", "2.5")["prompt-timeout"], 2.5)
        for bad in ("0", "-1"):
            self.assertIn("--prompt-timeout must be positive",
                          self.refused("-d", "x", "--prompt-timeout", bad))


class MakeServiceTests(SynchronousTestCase):
    """
    Tests for L{tap.makeService}.
    """

    def test_service(self):
        """
        C{makeService} creates the data directory and returns a
        L{service.MultiService} holding the proxy, configured from the
        options, and its admin socket; nothing runs yet.
        """
        dataDir = self.mktemp()
        options = tap.Options()
        options.parseOptions(["-d", dataDir, "--pair", CODE, "--name", "phone",
                              "--keepalive", "7", "--max-backoff", "9",
                              "--inbox-max-messages", "50", "--inbox-max-bytes", "2000000",
                              "--sync-interval", "5", "--constrained"])
        reactor = MemoryReactorClock()
        top = tap.makeService(options, reactor)
        self.addCleanup(top.lock.release)
        self.assertIsInstance(top, service.MultiService)
        self.assertTrue(os.path.isdir(dataDir))
        [proxy] = [s for s in top if isinstance(s, Proxy)]
        self.assertEqual(proxy.deviceName, "phone")
        self.assertEqual((proxy.settings.keepalive, proxy.settings.maxBackoff), (7.0, 9.0))
        self.assertEqual((proxy.settings.inboxMessages, proxy.settings.inboxBytes),
                         (50, 2000000))
        self.assertEqual((proxy.settings.sync.interval, proxy.settings.sync.constrained),
                         (5.0, True))
        self.assertEqual(len(list(top)), 2)
        self.assertEqual(reactor.tcpClients, [])
        self.assertEqual(reactor.unixServers, [])
        self.assertEqual(proxy.settings.peerPort, 8040)
        self.assertTrue(proxy.settings.peerConnection)
        self.assertEqual(sorted(s.name for s in proxy.registry._services.values()), [])

    def test_peerSettings(self):
        """
        C{--no-peer} means no peer server and no dialling;
        C{--no-builtin-services} and C{--service} reach the proxy; without
        C{--peer-port} the device's C{ports} preference is the port;
        C{--mesh-approvals} (off by default) reaches the proxy.
        """
        def proxyFor(*argv):
            dataDir = self.mktemp()
            options = tap.Options()
            options.parseOptions(["-d", dataDir, "--pair", CODE, *argv])
            top = tap.makeService(options, MemoryReactorClock())
            self.addCleanup(top.lock.release)
            return dataDir, [s for s in top if isinstance(s, Proxy)][0]

        _, proxy = proxyFor("--no-peer", "--no-builtin-services", "--service",
                            "pzp.builtins.get42:Get42Service", "--peer-interface", "127.0.0.1")
        self.assertEqual((proxy.settings.peerPort, proxy.settings.peerConnection,
                          proxy.settings.builtinServices, proxy.settings.peerInterface),
                         (None, False, False, "127.0.0.1"))
        self.assertIn("get42", proxy.registry)
        _, proxy = proxyFor("--peer-port", "0")
        self.assertEqual(proxy.settings.peerPort, 0)
        self.assertFalse(proxy.settings.meshApprovals)
        _, proxy = proxyFor("--mesh-approvals")
        self.assertTrue(proxy.settings.meshApprovals)
        _, proxy = proxyFor("--prompt-timeout", "4")
        self.assertEqual((proxy.settings.promptTimeout, proxy.prompts.timeout), (4.0, 4.0))

    def test_peerPortPreference(self):
        """
        A device whose synced preferences name another C{pzp_tlsServer}
        port listens there.
        """
        dataDir = self.mktemp()
        items = os.path.join(dataDir, "zone", "items")
        os.makedirs(items)
        with open(os.path.join(items, "preferences.json"), "w") as f:
            f.write('{"ports": {"pzp_tlsServer": 8123}}')
        options = tap.Options()
        options.parseOptions(["-d", dataDir, "--pair", CODE])
        top = tap.makeService(options, MemoryReactorClock())
        self.addCleanup(top.lock.release)
        [proxy] = [s for s in top if isinstance(s, Proxy)]
        self.assertEqual(proxy.settings.peerPort, 8123)

    def test_dataDirTightened(self):
        """
        A data directory left 0755 is 0700 once the proxy is built.
        """
        dataDir = self.mktemp()
        os.mkdir(dataDir, 0o755)
        os.chmod(dataDir, 0o755)
        options = tap.Options()
        options.parseOptions(["-d", dataDir, "--pair", CODE])
        top = tap.makeService(options, MemoryReactorClock())
        self.addCleanup(top.lock.release)
        self.assertEqual(os.stat(dataDir).st_mode & 0o777, 0o700)


class StartupRefusalTests(SynchronousTestCase):
    """
    A proxy that cannot start says why in one line and writes nothing.
    """

    def build(self, *args):
        options = tap.Options()
        options.parseOptions(list(args))
        return tap.makeService(options, MemoryReactorClock())

    def test_noCodeNoZone(self):
        """
        No C{--pair} and no zone: one line saying how to start it.
        """
        dataDir = os.path.abspath(self.mktemp())
        error = self.assertRaises(SystemExit, self.build, "-d", dataDir)
        self.assertEqual(str(error), f"pzp: {dataDir} is in no zone yet: start with --pair CODE "
                                     "(get one with: pzctl --hub-dir HUB_DIR pair --device NAME)")
        self.assertEqual(os.listdir(dataDir), [])

    def test_dataDirInUse(self):
        """
        A second proxy on one data directory is refused in one line; the
        first one's files are untouched.
        """
        dataDir = os.path.abspath(self.mktemp())
        top = self.build("-d", dataDir, "--pair", CODE)
        self.addCleanup(top.lock.release)
        before = sorted(os.listdir(dataDir))
        error = self.assertRaises(SystemExit, self.build, "-d", dataDir, "--pair", CODE)
        self.assertEqual(str(error),
                         f"pzp: another process is already using the data directory {dataDir}")
        self.assertEqual(sorted(os.listdir(dataDir)), before)

    def test_givesUpByExiting(self):
        """
        The proxy's hopeless errors end the process (L{ProcessExit}).
        """
        dataDir = os.path.abspath(self.mktemp())
        top = self.build("-d", dataDir, "--pair", CODE)
        self.addCleanup(top.lock.release)
        [proxy] = [s for s in top if isinstance(s, Proxy)]
        self.assertIsInstance(proxy._giveUp.__self__, ProcessExit)
