"""
Tests for L{pz.testing}: the in-memory zone drives the real hub and real
proxies, finds them through entry points, and the example in
C{docs/testing.md} runs.
"""

import ast
import importlib.util
import os
from pathlib import Path

from twisted.trial.reporter import TestResult
from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.exceptions import Invalid

import pz.testing
from pz.errors import ZoneError
from pz.testing import GROUP, ZONE, MemoryHub, MemoryZone, NoEndInstalled, ends
from pz.testing.interfaces import IMemoryDeviceEnd, IMemoryHubEnd

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "zone_test.py"


class MemoryZoneTests(SynchronousTestCase):
    """
    A hub and two devices in memory.
    """

    def setUp(self):
        self.zone = MemoryZone(self, devices=["phone", "laptop"])

    def test_connected(self):
        """
        Both devices are enrolled in the zone and connected; once the hub
        announced its members each knows the other (and not itself as a
        peer).
        """
        self.zone.coalesce()
        for name, other in (("phone", "laptop"), ("laptop", "phone")):
            status = self.zone.device(name).status()
            self.assertEqual((status["mode"], status["state"], status["zone"], status["device"]),
                             ("Hub", "Connected", ZONE, f"{ZONE}/{name}"))
            self.assertEqual(list(status["peers"]), [f"{ZONE}/{other}"])
        self.assertEqual(len(self.zone.hub.registry), 2)

    def test_exchange(self):
        """
        A message goes from one device to the other through the hub, is
        acknowledged, and lands in the receiver's inbox only.
        """
        phone, laptop = self.zone.device("phone"), self.zone.device("laptop")
        d = phone.send(self.zone.deviceId("laptop"), "hello")
        self.assertNoResult(d)
        self.zone.flush()
        self.successResultOf(d)
        [message] = laptop.inbox.messages()
        self.assertEqual((message["from"], message["text"]), (f"{ZONE}/phone", "hello"))
        self.assertEqual(phone.inbox.messages(), [])

    def test_revokedIsWiped(self):
        """
        A device revoked at the hub loses its link, and on its next
        connection learns of it and erases its zone data; the other device
        stays connected.
        """
        phone = self.zone.device("phone")
        self.zone.revoke("phone")
        self.assertEqual(phone.status()["state"], "NotConnected")
        self.zone.advance(phone.settings.maxBackoff + 1)
        status = phone.status()
        self.assertEqual((status["mode"], status["zone"], status["error"]["code"]),
                         ("Virgin", None, "CERT_REVOKED"))
        self.assertFalse(os.path.lexists(os.path.join(self.zone.dataDir("phone"), "zone")))
        self.assertEqual(self.zone.device("laptop").status()["state"], "Connected")

    def test_reconnect(self):
        """
        A device whose link dropped is NotConnected, and connected again
        once the clock passed its retry delay; messages flow again.
        """
        phone = self.zone.device("phone")
        self.zone.disconnect("phone")
        self.assertEqual(phone.status()["state"], "NotConnected")
        d = phone.send(self.zone.deviceId("laptop"), "lost")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")
        self.zone.advance(phone.settings.maxBackoff + 1)
        self.assertEqual(phone.status()["state"], "Connected")
        d = phone.send(self.zone.deviceId("laptop"), "back")
        self.zone.flush()
        self.successResultOf(d)
        self.assertEqual([m["text"] for m in self.zone.device("laptop").inbox.messages()],
                         ["back"])

    def test_disconnectUnknown(self):
        """
        Disconnecting a device with no live link says so.
        """
        self.zone.disconnect("phone")
        error = self.assertRaises(KeyError, self.zone.disconnect, "phone")
        self.assertIn(f"{ZONE}/phone has no live link", str(error))
        self.assertRaises(KeyError, self.zone.disconnect, "tablet")

    def test_addDeviceTwice(self):
        """
        A name already in the zone is refused, and nothing changes.
        """
        self.assertRaises(ValueError, self.zone.addDevice, "phone")
        self.assertEqual(len(self.zone.hub.registry), 2)


class MemoryHubTests(SynchronousTestCase):
    """
    The hub under the zone, for protocol tests.
    """

    def test_storeInMemory(self):
        """
        A hub whose store is in memory has no file for a connection of the
        test's own: reading or writing through one says so, and the store
        still works.
        """
        fixture = MemoryHub(self, onDisk=False)
        self.assertIsNone(fixture.storePath)
        for call in (fixture.storeState, lambda: fixture.revokeMany(3, 0)):
            error = self.assertRaises(ValueError, call)
            self.assertIn("build the MemoryHub with onDisk=True", str(error))
        fixture.enrolDevice("phone")
        self.assertEqual([d.id for d in fixture.store.listDevices()], [f"{ZONE}/phone"])

    def test_storeOnDisk(self):
        """
        By default the store is a file, which a connection of the test's
        own reads.
        """
        fixture = MemoryHub(self)
        fixture.enrolDevice("phone")
        [row] = fixture.storeState()["devices"]
        self.assertIn(f"{ZONE}/phone", row)


class EndsTests(SynchronousTestCase):
    """
    The hub and device ends come from entry points, checked against their
    interfaces.
    """

    def test_registered(self):
        """
        The installed package registers both ends under C{pz.testing}.
        """
        self.assertEqual(GROUP, "pz.testing")
        self.assertTrue(IMemoryHubEnd.providedBy(ends.hubEnd()))
        self.assertTrue(IMemoryDeviceEnd.providedBy(ends.deviceEnd()))

    def test_noneInstalled(self):
        """
        With no end registered, building a hub fails at once, saying what
        to install.
        """
        self.patch(ends, "_installed", lambda group: {})
        error = self.assertRaises(NoEndInstalled, MemoryHub, self)
        self.assertIn("no 'hub' end is registered under the entry-point group 'pz.testing'",
                      str(error))
        self.assertRaises(NoEndInstalled, ends.deviceEnd)

    def test_brokenEnd(self):
        """
        An end that does not provide its interface is refused when loaded.
        """
        class EntryPoint:
            def load(self):
                return object()

        self.patch(ends, "_installed", lambda group: {"hub": EntryPoint()})
        self.assertRaises(Invalid, ends.hubEnd)


class ExampleTests(SynchronousTestCase):
    """
    The integrator's example in C{docs/examples/zone_test.py}.
    """

    def test_runs(self):
        """
        Every test in the example runs and passes.
        """
        spec = importlib.util.spec_from_file_location("zone_test_example", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = TestResult()
        TestLoader().loadModule(module).run(result)
        self.assertEqual((result.testsRun, result.errors, result.failures), (2, [], []))

    def test_guideShowsTheExample(self):
        """
        The copy of the example in C{docs/testing.md} is the file the test
        above runs.
        """
        guide = (EXAMPLE.parents[1] / "testing.md").read_text(encoding="utf-8")
        marker = "<!-- example: docs/examples/zone_test.py -->\n```python\n"
        start = guide.index(marker) + len(marker)
        end = guide.index("```", start)
        self.assertEqual(guide[start:end], EXAMPLE.read_text(encoding="utf-8"))


class LayerTests(SynchronousTestCase):
    """
    L{pz.testing} is core: it reaches the ends through entry points only.
    """

    def test_noEndImported(self):
        """
        No module of L{pz.testing} imports C{pzh} or C{pzp}, at the top or
        inside a function.
        """
        found = []
        for path in sorted(Path(pz.testing.__file__).parent.glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                found += [f"{path.name}: {name}" for name in names
                          if name.split(".")[0] in ("pzh", "pzp")]
        self.assertEqual(found, [])
