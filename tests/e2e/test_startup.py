"""
What real C{twistd} processes do when they cannot start: one line, status
1, nothing written.
"""

import json
import os
import signal

from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from tests.e2e.harness import TWISTD, Twistd, Zone, freePort, pzctl, shortTempDir, waitFor
from tests.support import takenPort


def _oneLine(test, proc, expected: str) -> None:
    """
    The process's whole output is C{expected} on one line: no traceback,
    no paragraph.
    """
    output = b"".join(proc._proc.output).decode("utf-8", "replace")
    test.assertEqual(output, expected + "\n")


class StartupTests(TestCase):
    """
    C{twistd -n pzh}, C{twistd -n pzp} and C{twistd -n meshportal} refusing
    to start.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_hubRefusals(self):
        """
        A second hub on a running hub's data directory, a hub whose port is
        taken and a hub restarted with another C{--name} each exit with
        status 1 and one line, and the running hub's C{zone.json} is not
        rewritten.
        """
        zone = Zone(self)
        yield zone.startHub()
        zoneFile = os.path.join(zone.hubDir, "zone.json")
        with open(zoneFile, "rb") as f:
            before = f.read()

        second = Twistd(self, "pzh", ["--data-dir", zone.hubDir, "--name", zone.user,
                                      "--port", "0", "--web-port", "0"],
                        os.path.join(zone.root, "second.log")).start()
        self.assertEqual((yield second.exited()), 1)
        _oneLine(self, second,
                 f"pzh: another process is already using the data directory {zone.hubDir}")
        with open(zoneFile, "rb") as f:
            self.assertEqual(f.read(), before)

        other = Twistd(self, "pzh", ["--data-dir", os.path.join(zone.root, "other"),
                                     "--port", str(zone.port), "--web-port", "0"],
                       os.path.join(zone.root, "other.log")).start()
        self.assertEqual((yield other.exited()), 1)
        _oneLine(self, other, f"pzh: cannot listen on 127.0.0.1:{zone.port}: "
                              "address already in use")
        self.assertFalse(os.path.exists(os.path.join(zone.root, "other", "zone.json")))

        yield zone.hub.stop()
        renamed = Twistd(self, "pzh", ["--data-dir", zone.hubDir, "--name", "bob",
                                       "--port", str(zone.port), "--web-port", "0"],
                         os.path.join(zone.root, "renamed.log")).start()
        self.assertEqual((yield renamed.exited()), 1)
        _oneLine(self, renamed, f"pzh: BAD_REQUEST: the zone in {zone.hubDir} is "
                                f"{zone.zoneId}; a zone cannot be renamed: start with "
                                f"--name {zone.user} or without --name")
        with open(zoneFile, "rb") as f:
            self.assertEqual(json.loads(f.read())["zone"], zone.zoneId)

    @defer.inlineCallbacks
    def test_proxyRefusals(self):
        """
        A proxy with no code and no zone, and a second proxy on a running
        one's data directory, exit with status 1 and one line.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("phone")
        second = zone.startDevice("phone")
        self.assertEqual((yield second.exited()), 1)
        _oneLine(self, second, "pzp: another process is already using the data directory "
                               f"{zone.deviceDir('phone')}")
        status = yield zone.status("phone")
        self.assertEqual(status["state"], "Connected")

        lost = zone.startDevice("lost")
        self.assertEqual((yield lost.exited()), 1)
        _oneLine(self, lost, f"pzp: {zone.deviceDir('lost')} is in no zone yet: start with "
                             "--pair CODE (get one with: pzctl --hub-dir HUB_DIR pair "
                             "--device NAME)")

    @defer.inlineCallbacks
    def test_proxyHubUntrusted(self):
        """
        A code whose fingerprint is not the hub's CA: the proxy refuses the
        hub (C{HUB_UNTRUSTED}), says so in one log line and exits with
        status 1; C{pzctl wait} gives the reason.
        """
        zone = Zone(self)
        yield zone.startHub()
        code = yield zone.pairCode("phone")
        other = Zone(self, "bob")
        yield other.startHub()
        otherCode = yield other.pairCode("phone")
        forged = code.split("#")[0] + "#" + otherCode.split("#")[1]
        zone.startDevice("phone", forged)
        status = yield zone.devices["phone"].exited()
        self.assertEqual(status, 1)
        log = zone.devices["phone"].log()
        self.assertEqual(len([l for l in log.splitlines() if "pzp: HUB_UNTRUSTED: " in l]), 1, log)
        _, err, exitCode = yield pzctl("--pzp-dir", zone.deviceDir("phone"), "wait", check=False)
        self.assertEqual(exitCode, 1)
        self.assertTrue(err.startswith("pzctl: HUB_UNTRUSTED: the proxy stopped: "), err)

    @defer.inlineCallbacks
    def test_portalPortTaken(self):
        """
        A Mesh portal whose port is taken exits with status 1 and one line.
        """
        port = takenPort(self)
        root = self.mktemp()
        portal = Twistd(self, "meshportal", ["--data-dir", os.path.join(root, "portal"),
                                             "--port", str(port)],
                        os.path.join(os.path.abspath(self.mktemp()) + ".log")).start()
        self.assertEqual((yield portal.exited()), 1)
        _oneLine(self, portal, f"meshportal: cannot listen on 127.0.0.1:{port}: "
                               "address already in use")


def _killFromPidFile(path: str) -> None:
    try:
        with open(path) as f:
            os.kill(int(f.read()), signal.SIGTERM)
    except (OSError, ValueError):
        pass


class DaemonTests(TestCase):
    """
    Daemonised services started from one folder, as docs/mesh-portal.md's
    example does.
    """

    timeout = 90

    @defer.inlineCallbacks
    def test_portalAndMirrorInOneFolder(self):
        """
        C{twistd meshportal --data-dir portal ...} and C{twistd meshportal
        --data-dir mirror --follow ...}, run as printed from one folder, both
        start, each with its pid and log file in its data directory, and the
        mirror answers.
        """
        work = shortTempDir(self)
        port, mirrorPort = freePort(), freePort()
        commands = [
            ["meshportal", "--data-dir", "portal", "--port", str(port)],
            ["meshportal", "--data-dir", "mirror", "--port", str(mirrorPort), "--follow",
             f"http://127.0.0.1:{port}/", "--follow-interval", "1"],
        ]
        for argv in commands:
            name = argv[2]
            self.addCleanup(_killFromPidFile, os.path.join(work, name, "twistd.pid"))
            out, err, code = yield getProcessOutputAndValue(TWISTD, argv, env=dict(os.environ),
                                                            path=work)
            self.assertEqual(code, 0, (out + err).decode("utf-8", "replace"))
        for name in ("portal", "mirror"):
            self.assertTrue(os.path.exists(os.path.join(work, name, "twistd.pid")))
            yield waitFor(lambda name=name: os.path.exists(os.path.join(work, name, "twistd.log")),
                          what=f"{name}'s log")
        self.assertEqual(sorted(n for n in os.listdir(work) if n.startswith("twistd")), [])

        @defer.inlineCallbacks
        def answers():
            _, _, code = yield pzctl("mesh", "status", "--portal",
                                     f"http://127.0.0.1:{mirrorPort}/", check=False)
            return code == 0

        yield waitFor(answers, what="the mirror to answer")
