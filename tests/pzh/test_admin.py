"""
Tests for L{pzh.admin}: the running hub's admin commands.
"""

import json

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pz.admin import AdminFactory, IAdminCommands
from pz.errors import ZoneError
from pz.testing import ZONE, MemoryHub
from pzh.admin import HubAdmin



class HubAdminTests(SynchronousTestCase):
    """
    L{HubAdmin} answers what only the running process knows.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.admin = HubAdmin(self.fixture.hub)
        self.addCleanup(self.fixture.close)

    def test_interface(self):
        """
        It provides L{IAdminCommands}.
        """
        self.assertTrue(verifyObject(IAdminCommands, self.admin))
        self.assertEqual(self.admin.name, "pzh")

    def test_ping(self):
        """
        C{ping} names the zone, also over the admin socket's protocol.
        """
        self.assertEqual(self.admin.command_ping(), {"zone": ZONE})
        protocol = AdminFactory(self.admin).buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(b'{"command": "ping"}\n')
        self.assertEqual(json.loads(transport.value()), {"ok": True, "result": {"zone": ZONE}})

    def test_connected(self):
        """
        C{connected} lists the devices connected now, with address and the
        time of their last frame.
        """
        self.assertEqual(self.admin.command_connected(), {})
        key, cert = self.fixture.enrolDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(
            self.admin.command_connected(),
            {f"{ZONE}/phone": {"address": link.server.address,
                               "last_seen": self.fixture.clock.seconds()}},
        )

    def test_revoke(self):
        """
        C{revoke} revokes the device and reports its serials and the new
        CRL number; an unknown device is C{UNKNOWN_DESTINATION}.
        """
        key, cert = self.fixture.enrolDevice("phone")
        result = self.admin.command_revoke(device=f"{ZONE}/phone")
        self.assertEqual(result["device"], f"{ZONE}/phone")
        self.assertEqual(result["serials"], [format(cert.serial_number, "x")])
        self.assertEqual(result["crl_number"], 2)
        self.assertIsNotNone(self.fixture.store.getDevice(f"{ZONE}/phone").revoked)
        e = self.assertRaises(ZoneError, self.admin.command_revoke, device=f"{ZONE}/ghost")
        self.assertEqual(e.code, "UNKNOWN_DESTINATION")
