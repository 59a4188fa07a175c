"""
Tests for L{pz.cli.main} (C{pzctl}), run in-process: argument handling,
the hub-store commands that work without a running hub, the device inbox,
and the one-line errors and exit status of commands that need a running
process when none runs.
"""

import argparse
import io
import json
import os
import re
import time

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
import pz.cli.main
from pz.cli.main import _parser
from pz.cli.verb import VERB_GROUP, Verb
from pz.errors import ZoneError
from pz.pairing import PairingCode
from pz.tokens import tokenHash
from pzh.hub import Hub
from pzh.store import SQLiteHubStore
from pzh.zone import loadOrCreateZone
from pzp.inbox import Inbox
from pzp.zonedir import ZoneDirectory
from tests.support import runPzctl

HOST = "127.0.0.1"
ZONE = f"alice@{HOST}"
DEVICE_KEYS = {"id", "serial", "state", "last_seen", "address", "not_after"}


class PzctlTestBase(SynchronousTestCase):
    """
    Runs C{pzctl} in-process with its output captured.
    """

    def setUp(self):
        self.hubDir = self.mktemp()
        self.zone = loadOrCreateZone(self.hubDir, "alice", HOST, HOST, 8000, 9000)

    def pzctl(self, *argv):
        """
        Run C{pzctl argv}: its exit status, standard output and error.
        """
        return runPzctl(self, *argv)

    def assertError(self, result, code: str, *phrases):
        """
        C{pzctl} failed with exit status 1 and one line on standard error
        naming C{code}, nothing on standard output.
        """
        status, out, err = result
        self.assertEqual(status, 1)
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith(f"pzctl: {code}: "), err)
        for phrase in phrases:
            self.assertIn(phrase, err)
        self.assertNotIn("Traceback", err)

    def hub(self):
        """
        The hub's objects over the same store C{pzctl} reads.
        """
        store = SQLiteHubStore(self.zone.path("hub.db"))
        self.addCleanup(store.close)
        clock = Clock()
        clock.advance(time.time())
        return Hub(self.zone, store, clock), clock

    def enrol(self, hub, name):
        key = pki.newKey()
        code = hub.enrolment.newCode(name)
        csr = pki.csrPEM(pki.makeCSR(key, name)).decode("ascii")
        device, cert = hub.enrolment.enrol(code.token, csr, HOST)
        return device, cert


class ArgumentTests(PzctlTestBase):
    """
    What C{pzctl} does with a wrong command line.
    """

    def test_noCommand(self):
        """
        Without a command: one C{BAD_REQUEST} line naming what is missing
        and where help is, exit status 1, as every other error.
        """
        self.assertError(self.pzctl(), "BAD_REQUEST", "COMMAND", "pzctl --help")

    def test_unknownCommand(self):
        """
        An unknown command is one C{BAD_REQUEST} line naming it.
        """
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "frobnicate"),
                         "BAD_REQUEST", "frobnicate", "pzctl --help")

    def test_pairNeedsDevice(self):
        """
        C{pair} without C{--device} is one C{BAD_REQUEST} line naming the
        option and the command's help.
        """
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "pair"),
                         "BAD_REQUEST", "--device", "pzctl pair --help")

    def test_usageErrors(self):
        """
        Every kind of usage error, at every level (an unknown option, a bad
        value, a bad choice, a missing mesh verb or argument), is one
        C{BAD_REQUEST} line and exit status 1, and nothing was done.
        """
        for argv, phrase in (
            (["--hub-dir", self.hubDir, "devices", "--frob"], "--frob"),
            (["--hub-dir", self.hubDir, "pair", "--device", "tv", "--lifetime", "soon"], "soon"),
            (["--pzp-dir", self.hubDir, "wait", "--mode", "Sleepy"], "Sleepy"),
            (["mesh"], "VERB"),
            (["mesh", "connect"], "ACCOUNT"),
            (["--hub-dir"], "--hub-dir"),
        ):
            self.assertError(self.pzctl(*argv), "BAD_REQUEST", phrase)
        hub, _ = self.hub()
        self.assertEqual(hub.store.listDevices(), [])

    def test_asTheReadmeSays(self):
        """
        The README's promise for errors, a wrong command line included (its
        exit status and one line C{pzctl: CODE: sentence}), is what pzctl
        does with one.
        """
        readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
        with open(readme, encoding="utf-8") as f:
            text = " ".join(f.read().split())
        promise = re.search(r"Errors exit with status (\d+) and print one line, "
                            r"`pzctl: CODE: sentence`, on stderr; a wrong command line is one "
                            r"too \(`([A-Z_]+)`\)", text)
        self.assertIsNotNone(promise, "the README no longer says how pzctl reports errors")
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "pair", "--lifetime", "soon")
        self.assertEqual(status, int(promise.group(1)))
        self.assertRegex(err, rf"\Apzctl: {promise.group(2)}: [^\n]+\n\Z")

    def test_help(self):
        """
        C{--help}, of pzctl or of a command, prints help on standard output
        and exits 0.
        """
        for argv in (["--help"], ["pair", "--help"], ["mesh", "connect", "--help"]):
            status, out, err = self.pzctl(*argv)
            self.assertEqual((status, err), (0, ""), argv)
            self.assertIn("usage: pzctl", out)

    def test_commandHelpDescribes(self):
        """
        Every command's and mesh verb's C{--help} says what it does (a
        description), and every argument it takes has a help text.
        """
        def subcommands(parser):
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        yield name, sub
                        yield from subcommands(sub)

        commands = dict(subcommands(_parser()))
        self.assertIn("send", commands)
        self.assertIn("approve", commands)
        for name, parser in commands.items():
            self.assertTrue(parser.description, name)
            self.assertIn(" ".join(parser.description.split()[:4]), parser.format_help(), name)
            for action in parser._actions:
                self.assertTrue(action.help, f"{name} {action.option_strings or action.dest}")
        status, out, _ = self.pzctl("send", "--help")
        self.assertIn("Send a text message", out)

    def test_globalOptionsAnywhere(self):
        """
        C{--hub-dir}, C{--pzp-dir} and C{--json} work before or after the
        command, and an option given before is not reset by the command.
        """
        expected = self.pzctl("--hub-dir", self.hubDir, "--json", "zone")
        self.assertEqual(expected[0], 0)
        self.assertEqual(json.loads(expected[1])["zone"], ZONE)
        for argv in (["zone", "--hub-dir", self.hubDir, "--json"],
                     ["--hub-dir", self.hubDir, "zone", "--json"],
                     ["--json", "zone", "--hub-dir", self.hubDir]):
            self.assertEqual(self.pzctl(*argv), expected, argv)
        pzpDir = self.mktemp()
        self.assertError(self.pzctl("status", "--pzp-dir", pzpDir), "NOT_RUNNING", pzpDir)
        self.assertError(self.pzctl("mesh", "pending", "--pzp-dir", self.hubDir, "--json"),
                         "BAD_REQUEST", f"{self.hubDir} is a hub's data directory")

    def test_hubCommandsNeedHubDir(self):
        """
        Hub commands without C{--hub-dir} fail with C{BAD_REQUEST} naming
        the flag.
        """
        for argv in (["pair", "--device", "phone"], ["devices"], ["zone"],
                     ["revoke", f"{ZONE}/phone"], ["admin-link"], ["admin-logout"]):
            self.assertError(self.pzctl(*argv), "BAD_REQUEST", "--hub-dir")

    def test_adminVerbsNeedRunningHub(self):
        """
        C{admin-link} and C{admin-logout} ask the running hub: with none,
        C{NOT_RUNNING} naming the directory.
        """
        for verb in ("admin-link", "admin-logout"):
            self.assertError(self.pzctl("--hub-dir", self.hubDir, verb), "NOT_RUNNING",
                             self.hubDir)

    def test_deviceCommandsNeedPzpDir(self):
        """
        Device commands without C{--pzp-dir} fail with C{BAD_REQUEST}
        naming the flag.
        """
        for argv in (["status"], ["send", f"{ZONE}/tablet", "hi"], ["inbox"]):
            self.assertError(self.pzctl(*argv), "BAD_REQUEST", "--pzp-dir")

    def test_hubDirAsPzpDir(self):
        """
        A hub's data directory given as C{--pzp-dir}, before or after the
        command, is refused with C{BAD_REQUEST} saying to use
        C{--hub-dir}, instead of asking the hub a device command.
        """
        for argv in (["status"], ["send", f"{ZONE}/tablet", "hi"], ["inbox"],
                     ["wait", "--timeout", "0"], ["mesh", "pending"]):
            self.assertError(self.pzctl("--pzp-dir", self.hubDir, *argv), "BAD_REQUEST",
                             f"{self.hubDir} is a hub's data directory", f"use --hub-dir {self.hubDir}")
            self.assertError(self.pzctl(*argv, "--pzp-dir", self.hubDir), "BAD_REQUEST",
                             "use --hub-dir")
        self.assertFalse(os.path.exists(os.path.join(self.hubDir, "mesh")))

    def test_hubMarker(self):
        """
        pzctl knows a hub's data directory by the file the hub writes.
        """
        from pz.cli.main import _HUB_MARKER
        from pzh.zone import ZONE_FILE

        self.assertEqual(_HUB_MARKER, ZONE_FILE)
        self.assertTrue(os.path.isfile(os.path.join(self.hubDir, _HUB_MARKER)))

    def test_pzpDirAsHubDir(self):
        """
        A device's data directory (one that holds a zone or Mesh directory)
        given as C{--hub-dir} is refused with C{BAD_REQUEST} saying to use
        C{--pzp-dir}.
        """
        enrolled, meshOnly = self.mktemp(), self.mktemp()
        os.makedirs(ZoneDirectory(enrolled).path)
        os.makedirs(os.path.join(meshOnly, "mesh"))
        for pzpDir in (enrolled, meshOnly):
            for argv in (["pair", "--device", "tv"], ["devices"], ["zone"],
                         ["revoke", f"{ZONE}/tv"], ["wait", "--timeout", "0"]):
                self.assertError(self.pzctl("--hub-dir", pzpDir, *argv), "BAD_REQUEST",
                                 f"{pzpDir} is a device's data directory",
                                 f"use --pzp-dir {pzpDir}")

    def test_noHubZone(self):
        """
        A hub directory that holds no zone: C{NOT_RUNNING}, saying so.
        """
        empty = self.mktemp()
        os.makedirs(empty)
        for argv in (["pair", "--device", "phone"], ["devices"], ["zone"]):
            self.assertError(self.pzctl("--hub-dir", empty, *argv), "NOT_RUNNING", empty)


def _echo(args) -> None:
    print(f"echo {args.word} json={args.json}")


def _echoArguments(parser, parents) -> None:
    parser.add_argument("word", help="what to print")


#: A verb that is not one of pzctl's, registered by the dispatcher tests.
echoVerb = Verb("echo", "print a word", "Print WORD and whether --json was given.", _echo,
                _echoArguments)

#: A verb registered under another name than its own.
misnamedVerb = Verb("other", "a verb", "A verb registered under another name.", _echo)


class DispatcherTests(PzctlTestBase):
    """
    The dispatcher finds every verb in the C{pzctl.verbs} entry-point group,
    each beside what it drives, and runs one added there like the others.
    """

    def useEntryPoints(self, *entries) -> None:
        """
        Make the dispatcher see only C{entries} (C{(name, value)} pairs).
        """
        from importlib.metadata import EntryPoint

        points = [EntryPoint(name, value, VERB_GROUP) for name, value in entries]
        self.patch(pz.cli.main, "entry_points",
                   lambda group: [p for p in points if p.group == group])

    def test_installedVerbs(self):
        """
        The installed entry points name every verb of C{pzctl}, each in the
        module beside what it drives, and C{--help} lists them in the order
        of hub, wait, device and Mesh verbs.
        """
        from importlib.metadata import entry_points

        where = {e.name: e.value for e in entry_points(group=VERB_GROUP)}
        self.assertEqual(where, {
            "pair": "pzh.commands:pair", "codes": "pzh.commands:codes",
            "cancel-code": "pzh.commands:cancelCode", "devices": "pzh.commands:devices",
            "revoke": "pzh.commands:revoke", "zone": "pzh.commands:zone",
            "admin-link": "pzh.commands:adminLink", "admin-logout": "pzh.commands:adminLogout",
            "invite-zone": "pzh.friendcommands:inviteZone",
            "accept-zone": "pzh.friendcommands:acceptZone",
            "zones": "pzh.friendcommands:zones", "untrust-zone": "pzh.friendcommands:untrustZone",
            "wait": "pz.cli.wait:wait", "status": "pzp.commands:status",
            "send": "pzp.commands:send", "inbox": "pzp.commands:inbox",
            "sync": "pzp.commands:sync", "conflicts": "pzp.commands:conflicts",
            "services": "pzp.commands:services", "call": "pzp.commands:call",
            "peers": "pzp.commands:peers", "mesh": "pzp.meshcommands:mesh",
            "policy": "pzp.policycommands:policy", "prompts": "pzp.policycommands:prompts",
            "answer": "pzp.policycommands:answer",
            "peer-invite": "pzp.exchangecommands:peerInvite",
            "peer-exchange": "pzp.exchangecommands:peerExchange",
            "peer-close": "pzp.exchangecommands:peerClose",
        })
        status, out, _ = self.pzctl("--help")
        self.assertEqual(status, 0)
        listed = re.findall(r"^    ([\w-]+)\s", out, re.M)
        self.assertEqual(listed, ["pair", "codes", "cancel-code", "devices", "revoke", "zone",
                                  "admin-link", "admin-logout", "invite-zone", "accept-zone",
                                  "zones", "untrust-zone", "wait", "status", "send", "inbox",
                                  "sync", "conflicts", "services", "call", "peers",
                                  "peer-invite", "peer-exchange", "peer-close", "policy",
                                  "prompts", "answer", "mesh"])

    def test_newVerb(self):
        """
        A verb registered in the group is listed after pzctl's own, takes
        the global options before or after it, and runs.
        """
        self.useEntryPoints(("echo", "tests.pz.test_cli:echoVerb"),
                            ("zone", "pzh.commands:zone"))
        self.assertEqual(self.pzctl("--json", "echo", "hi"), (0, "echo hi json=True\n", ""))
        self.assertEqual(self.pzctl("echo", "hi", "--json"), (0, "echo hi json=True\n", ""))
        status, out, _ = self.pzctl("--help")
        self.assertEqual(re.findall(r"^    (\w+) ", out, re.M), ["zone", "echo"])
        self.assertError(self.pzctl("echo"), "BAD_REQUEST", "the following arguments are required")

    def test_brokenVerb(self):
        """
        A verb that cannot be loaded, or is not the verb its entry point
        names, stops pzctl with one C{INTERNAL} line naming it.
        """
        self.useEntryPoints(("gone", "pz.nosuchmodule:verb"))
        self.assertError(self.pzctl("zone"), "INTERNAL", "the pzctl verb gone", "cannot be loaded")
        self.useEntryPoints(("echo", "tests.pz.test_cli:misnamedVerb"))
        self.assertError(self.pzctl("--help"), "INTERNAL", "the pzctl verb echo",
                         "not a pz.cli.verb.Verb of that name")

    def test_deviceMarkers(self):
        """
        pzctl knows a device's data directory by the folders the proxy and
        the Mesh verbs make.
        """
        from pz.cli.main import _DEVICE_MARKERS
        from pz.mesh.device import MeshDevice

        self.assertEqual(_DEVICE_MARKERS, (os.path.basename(ZoneDirectory("d").path),
                                           os.path.basename(MeshDevice("d").path)))


class HubStoreTests(PzctlTestBase):
    """
    Hub commands answered from the store, with no hub running.
    """

    def test_pair(self):
        """
        C{pair} prints one pairing code for this hub, pinning the zone CA,
        whose token the store now holds (as a hash) for the device name.
        """
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "phone")
        self.assertEqual((status, err), (0, ""))
        code = PairingCode.parse(out.strip())
        self.assertEqual((code.host, code.port, code.caFingerprint),
                         (HOST, 8000, self.zone.caFingerprint))
        hub, clock = self.hub()
        record = hub.store.getToken(tokenHash(code.token))
        self.assertEqual(record.deviceName, "phone")
        self.assertIsNone(record.used)
        self.assertLess(abs(record.expires - (time.time() + 600)), 60)

    def test_pairLifetime(self):
        """
        C{--lifetime} sets how long the code stays valid.
        """
        _, out, _ = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv",
                               "--lifetime", "60")
        hub, _ = self.hub()
        record = hub.store.getToken(tokenHash(PairingCode.parse(out.strip()).token))
        self.assertLess(abs(record.expires - (time.time() + 60)), 30)

    def test_pairBadName(self):
        """
        A device name that cannot be one is refused with C{BAD_REQUEST}.
        """
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "my phone!"),
                         "BAD_REQUEST", "device names")

    def test_pairNameTaken(self):
        """
        A name an enrolled device has is refused with C{NAME_TAKEN}.
        """
        hub, _ = self.hub()
        self.enrol(hub, "phone")
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "phone"),
                         "NAME_TAKEN", f"{ZONE}/phone")

    def test_devicesEmpty(self):
        """
        With no device enrolled, C{devices --json} prints an empty list and
        C{devices} says how to pair one.
        """
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "devices", "--json")
        self.assertEqual((status, json.loads(out)), (0, []))
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "devices")
        self.assertEqual(status, 0)
        self.assertIn("pair", out)

    def test_devicesJSON(self):
        """
        C{devices --json} lists every enrolled device with exactly the
        documented keys: id, hex serial, state, last_seen (ISO time or
        null), address and not_after.
        """
        hub, clock = self.hub()
        phone, phoneCert = self.enrol(hub, "phone")
        tablet, _ = self.enrol(hub, "tablet")
        hub.store.touchDevice(phone.id, 1700000000, "127.0.0.1:40000")
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "devices", "--json")
        self.assertEqual((status, err), (0, ""))
        rows = json.loads(out)
        for row in rows:
            self.assertEqual(set(row), DEVICE_KEYS)
        byId = {row["id"]: row for row in rows}
        self.assertEqual(sorted(byId), [f"{ZONE}/phone", f"{ZONE}/tablet"])
        phoneRow = byId[f"{ZONE}/phone"]
        self.assertEqual(phoneRow["serial"], format(phoneCert.serial_number, "x"))
        self.assertEqual(phoneRow["state"], "disconnected")
        self.assertEqual(phoneRow["last_seen"], "2023-11-14T22:13:20+00:00")
        self.assertEqual(phoneRow["address"], "127.0.0.1:40000")
        self.assertEqual(byId[f"{ZONE}/tablet"]["address"], HOST)

    def test_devicesRevoked(self):
        """
        A device revoked with C{revoke} (no hub running: the CRL is signed
        by C{pzctl} itself) shows as revoked.
        """
        hub, _ = self.hub()
        self.enrol(hub, "phone")
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "revoke", f"{ZONE}/phone",
                                      "--json")
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(len(json.loads(out)["serials"]), 1)
        _, out, _ = self.pzctl("--hub-dir", self.hubDir, "devices", "--json")
        [row] = json.loads(out)
        self.assertEqual(row["state"], "revoked")

    def test_revokeUnknown(self):
        """
        Revoking a device the zone never had fails with a clear code.
        """
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "revoke", f"{ZONE}/ghost"),
                         "UNKNOWN_DESTINATION", "ghost")

    def test_devicesHuman(self):
        """
        Without C{--json}, one line per device with its id and state.
        """
        hub, _ = self.hub()
        self.enrol(hub, "phone")
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "devices")
        self.assertEqual(status, 0)
        [line] = out.splitlines()
        self.assertIn(f"{ZONE}/phone", line)
        self.assertIn("disconnected", line)

    def test_zone(self):
        """
        C{zone} prints the zone id; with C{--json}, the id, the CA
        fingerprint and the hub address.
        """
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "zone")
        self.assertEqual((status, out), (0, ZONE + "\n"))
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "zone", "--json")
        self.assertEqual(json.loads(out), {"zone": ZONE,
                                           "ca_fingerprint": self.zone.caFingerprint,
                                           "hub": f"{HOST}:8000", "uptime": None,
                                           "devices": {"enrolled": 0, "connected": 0,
                                                       "disconnected": 0, "revoked": 0},
                                           "codes": 0})

    def test_codes(self):
        """
        C{codes} lists the outstanding pairing codes by id, with the device
        each names and its expiry, never the code itself; used ones are
        not listed.
        """
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "codes", "--json")
        self.assertEqual((status, json.loads(out)), (0, []))
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "codes")
        self.assertIn("no pairing codes outstanding", out)
        _, made, _ = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv", "--json")
        made = json.loads(made)
        hub, _ = self.hub()
        self.enrol(hub, "phone")
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "codes", "--json")
        self.assertEqual((status, err), (0, ""))
        [row] = json.loads(out)
        self.assertEqual(row, {"id": made["id"], "device": f"{ZONE}/tv",
                               "expires": made["expires"]})
        status, out, _ = self.pzctl("--hub-dir", self.hubDir, "codes")
        self.assertIn(made["id"], out)
        self.assertIn(f"{ZONE}/tv", out)
        self.assertNotIn(made["code"], out)

    def test_cancelCode(self):
        """
        C{cancel-code ID} cancels the code: it is no longer listed and can
        no longer enrol a device.
        """
        _, made, _ = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv", "--json")
        made = json.loads(made)
        status, out, err = self.pzctl("--hub-dir", self.hubDir, "cancel-code", made["id"])
        self.assertEqual((status, err), (0, ""))
        self.assertIn(f"cancelled pairing code {made['id']} for {ZONE}/tv", out)
        self.assertEqual(json.loads(self.pzctl("--hub-dir", self.hubDir, "codes", "--json")[1]),
                         [])
        hub, _ = self.hub()
        key = pki.newKey()
        csr = pki.csrPEM(pki.makeCSR(key, "tv")).decode("ascii")
        token = PairingCode.parse(made["code"]).token
        error = self.assertRaises(ZoneError, hub.enrolment.enrol, token, csr, HOST)
        self.assertEqual(error.code, "TOKEN_INVALID")

    def test_cancelCodeRefused(self):
        """
        C{cancel-code} of no outstanding code (unknown, or already
        cancelled) is C{TOKEN_INVALID}; of what is not an id,
        C{BAD_REQUEST}; the outstanding codes stay.
        """
        _, made, _ = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv", "--json")
        made = json.loads(made)
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "cancel-code", "0" * 16),
                         "TOKEN_INVALID", "0" * 16)
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "cancel-code", "../x"),
                         "BAD_REQUEST", "16 hexadecimal digits")
        self.assertEqual(len(json.loads(self.pzctl("--hub-dir", self.hubDir, "codes",
                                                   "--json")[1])), 1)

    def test_pairQR(self):
        """
        C{pair --qr} prints the code, then the same code as a QR code made
        of block characters for a terminal.
        """
        import segno

        status, out, err = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv", "--qr")
        self.assertEqual((status, err), (0, ""))
        code, _, qr = out.partition("\n")
        PairingCode.parse(code)
        expected = io.StringIO()
        segno.make(code).terminal(out=expected, compact=True)
        self.assertEqual(qr, expected.getvalue())
        self.assertIn("\u2588", qr)
        _, plain, _ = self.pzctl("--hub-dir", self.hubDir, "pair", "--device", "tv2")
        self.assertEqual(plain.count("\n"), 1)


class DeviceTests(PzctlTestBase):
    """
    Device commands.
    """

    def setUp(self):
        super().setUp()
        self.pzpDir = self.mktemp()
        os.makedirs(self.pzpDir)

    def test_inboxEmpty(self):
        """
        A device with no messages (not even a zone yet) has an empty inbox.
        """
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "inbox", "--json")
        self.assertEqual((status, json.loads(out)), (0, {"dropped": 0, "messages": []}))
        self.assertEqual(self.pzctl("--pzp-dir", self.pzpDir, "inbox")[:2], (0, ""))

    def test_inbox(self):
        """
        C{inbox --json} prints the stored messages, oldest first, as
        written by the running proxy; without C{--json}, one line each.
        """
        zoneDir = ZoneDirectory(self.pzpDir)
        os.makedirs(zoneDir.path)
        clock = Clock()
        clock.advance(1700000000)
        inbox = Inbox(zoneDir.file("inbox.jsonl"), clock)
        first = inbox.add(f"{ZONE}/tablet", "hello")
        second = inbox.add(f"{ZONE}/tv", "b\u00e4r")
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "inbox", "--json")
        self.assertEqual((status, json.loads(out)),
                         (0, {"dropped": 0, "messages": [first, second]}))
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "inbox")
        self.assertEqual(out.splitlines(), [
            f"{first['received']}  {ZONE}/tablet: hello",
            f"{second['received']}  {ZONE}/tv: b\u00e4r",
        ])

    def test_inboxDropped(self):
        """
        When the inbox dropped old messages, C{inbox} says how many, in
        C{--json} and as a first line.
        """
        zoneDir = ZoneDirectory(self.pzpDir)
        os.makedirs(zoneDir.path)
        inbox = Inbox(zoneDir.file("inbox.jsonl"), Clock(), maxMessages=10)
        for i in range(12):
            inbox.add(f"{ZONE}/tablet", f"m{i}")
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "inbox", "--json")
        result = json.loads(out)
        self.assertEqual(result["dropped"], 2)
        self.assertEqual([m["text"] for m in result["messages"]], [f"m{i}" for i in range(2, 12)])
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "inbox")
        self.assertEqual(out.splitlines()[0], "(2 older messages dropped: the inbox is full)")
        self.assertEqual(len(out.splitlines()), 11)

    def test_statusNotRunning(self):
        """
        C{status} of a device whose proxy does not run: C{NOT_RUNNING},
        exit status 1.
        """
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "status"), "NOT_RUNNING",
                         self.pzpDir)
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "status", "--json"),
                         "NOT_RUNNING")

    def test_sendNotRunning(self):
        """
        C{send} through a proxy that does not run: C{NOT_RUNNING}.
        """
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "send", f"{ZONE}/tablet", "hi"),
                         "NOT_RUNNING")

    def test_sendQueue(self):
        """
        C{send --queue} asks the proxy to have the message queued, and says
        whether it was delivered or queued; without it nothing asks for a
        queue.
        """
        import pz.admin

        asked = []
        answers = [{"to": f"{ZONE}/tablet", "delivered": False, "queued": True},
                   {"to": f"{ZONE}/tablet", "delivered": True, "queued": False}]

        def adminCall(directory, command, args, *a, **kw):
            asked.append((command, args))
            return answers.pop(0)

        self.patch(pz.admin, "adminCall", adminCall)
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "send", "--queue",
                                    f"{ZONE}/tablet", "hi")
        self.assertEqual(status, 0)
        self.assertIn(f"queued for {ZONE}/tablet", out)
        status, out, _ = self.pzctl("--pzp-dir", self.pzpDir, "send", f"{ZONE}/tablet", "hi")
        self.assertEqual(out.strip(), f"delivered to {ZONE}/tablet")
        self.assertEqual(asked, [
            ("send", {"to": f"{ZONE}/tablet", "text": "hi", "queue": True}),
            ("send", {"to": f"{ZONE}/tablet", "text": "hi"}),
        ])

    def test_sendToNoDevice(self):
        """
        C{send} to something that is not a device id (empty, the zone id, a
        bare name) is refused with C{BAD_REQUEST} naming the form, before
        the proxy is asked (the hub would answer C{UNKNOWN_MESSAGE}).
        """
        for to in ("", ZONE, "tablet", f"{ZONE}/"):
            self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "send", to, "hi"),
                             "BAD_REQUEST", "is not a device id: give ZONE/NAME")

    def test_waitTimesOut(self):
        """
        C{wait} for a process that does not run gives up after its timeout
        with C{TIMEOUT} (a zero timeout: one check, no sleeping).
        """
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "wait", "--timeout", "0"),
                         "TIMEOUT", "Hub/Connected")
        self.assertError(self.pzctl("--hub-dir", self.hubDir, "wait", "--timeout", "0"),
                         "TIMEOUT", "hub")

    def test_waitShowsLastError(self):
        """
        C{wait} that times out on a running device gives the device's last
        error with the C{TIMEOUT}.
        """
        import pz.admin

        status = {"mode": "Hub", "state": "NotConnected",
                  "error": {"code": "NOT_CONNECTED", "message": "connection refused"}}
        self.patch(pz.admin, "adminCall", lambda *a, **kw: status)
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "wait", "--timeout", "0"),
                         "TIMEOUT", "Hub/Connected not reached",
                         "the device's last error: NOT_CONNECTED: connection refused")

    def test_waitStoppedProxy(self):
        """
        C{wait} on a proxy that gave up (its reason left in its data
        directory) answers at once with that reason, not C{TIMEOUT}.
        """
        from pz.process import ProcessExit

        os.makedirs(self.pzpDir, exist_ok=True)
        ProcessExit(MemoryReactorClock(), "pzp", self.pzpDir, lambda f: None).fail(
            ZoneError("TOKEN_USED", "the pairing code has already been used"))
        started = time.monotonic()
        self.assertError(self.pzctl("--pzp-dir", self.pzpDir, "wait", "--timeout", "5"),
                         "TOKEN_USED", "the proxy stopped: the pairing code has already been used")
        self.assertLess(time.monotonic() - started, 4)
