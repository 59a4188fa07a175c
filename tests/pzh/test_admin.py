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

    def test_adminLinkWithoutWebPort(self):
        """
        Without a web port there is no admin page: C{admin-link} and
        C{admin-logout} are C{BAD_REQUEST} saying so.
        """
        for command in (self.admin.command_admin_link, self.admin.command_admin_logout):
            e = self.assertRaises(ZoneError, command)
            self.assertEqual(e.code, "BAD_REQUEST")
            self.assertIn("--web-port 0", e.message)


class HubAdminAuthTests(SynchronousTestCase):
    """
    The admin page's sign-in commands.
    """

    def setUp(self):
        from pzh.adminauth import LINK_LIFETIME, AdminAuth

        self.fixture = MemoryHub(self)
        self.addCleanup(self.fixture.close)
        self.lifetime = LINK_LIFETIME
        self.auth = AdminAuth(self.fixture.clock, "hub.example", 9443)
        self.admin = HubAdmin(self.fixture.hub, self.auth)

    def call(self, line: bytes) -> dict:
        protocol = AdminFactory(self.admin).buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(line)
        return json.loads(transport.value())

    def test_adminLink(self):
        """
        C{admin-link} (over the socket, with its hyphen) answers a new
        sign-in URL on the zone's host and web port, the link's id and
        its expiry; each call a new link.
        """
        answer = self.call(b'{"command": "admin-link"}\n')
        self.assertTrue(answer["ok"], answer)
        result = answer["result"]
        self.assertTrue(result["url"].startswith("https://hub.example:9443/signin?token="))
        self.assertIn(f"token={result['id']}.", result["url"])
        self.assertEqual(result["expires"], self.fixture.clock.seconds() + self.lifetime)
        self.assertNotEqual(self.call(b'{"command": "admin-link"}\n')["result"]["url"],
                            result["url"])

    def test_adminLogout(self):
        """
        C{admin-logout} ends every session and says how many there were.
        """
        class Request:
            def addCookie(self, *args, **kwargs):
                pass

        for _ in range(2):
            _, url = self.auth.newLink()
            self.auth.signIn(Request(), url.split("token=")[1])
        self.assertEqual(self.call(b'{"command": "admin-logout"}\n'),
                         {"ok": True, "result": {"sessions": 2}})
        self.assertEqual(self.admin.command_admin_logout(), {"sessions": 0})


class FriendCommandTests(SynchronousTestCase):
    """
    The friend zone commands of L{HubAdmin}, over the admin socket's
    protocol as C{pzctl} sends them.
    """

    def setUp(self):
        from pzh.hub import HubSettings

        self.alice = MemoryHub(self, HubSettings(synchronise=True), user="alice")
        self.bob = MemoryHub(self, HubSettings(synchronise=True), clock=self.alice.clock,
                             user="bob")
        self.admin = HubAdmin(self.alice.hub)

    def ask(self, line: bytes) -> dict:
        protocol = AdminFactory(self.admin).buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(line + b"\n")
        return json.loads(transport.value())

    def test_inviteListUntrust(self):
        """
        C{invite-zone} makes a code; once a zone accepted it, C{zones}
        lists it with its fingerprint and link state, and C{untrust-zone}
        removes it.
        """
        from pz.pairing import PairingCode

        made = self.ask(b'{"command": "invite-zone"}')["result"]
        token = PairingCode.parse(made["code"]).token
        self.alice.hub.friends.befriend(token, self.bob.zoneId,
                                        self.bob.zone.caPEM.decode("ascii"), "127.0.0.1", 8000,
                                        "127.0.0.1")
        [row] = self.ask(b'{"command": "zones"}')["result"]
        self.assertEqual((row["zone"], row["fingerprint"], row["link"], row["hub"]),
                         (self.bob.zoneId, self.bob.zone.caFingerprint, "waiting",
                          "127.0.0.1:8000"))
        answer = self.ask(json.dumps({"command": "untrust-zone",
                                      "args": {"zone": self.bob.zoneId}}).encode())
        self.assertEqual(answer, {"ok": True, "result": {"zone": self.bob.zoneId}})
        self.assertEqual(self.ask(b'{"command": "zones"}')["result"], [])

    def test_badInput(self):
        """
        Untrusting a zone that is no friend, or accepting a malformed
        code, is one clear C{BAD_REQUEST}, and nothing changes.
        """
        answer = self.ask(b'{"command": "untrust-zone", "args": {"zone": "x@y"}}')
        self.assertEqual((answer["ok"], answer["code"]), (False, "BAD_REQUEST"))
        answer = self.ask(b'{"command": "accept-zone", "args": {"code": "pz://h"}}')
        self.assertEqual((answer["ok"], answer["code"]), (False, "BAD_REQUEST"))
        answer = self.ask(b'{"command": "accept-zone", "args": {"code": 5}}')
        self.assertEqual((answer["ok"], answer["code"]), (False, "BAD_REQUEST"))
        self.assertEqual(self.alice.hub.friends.records(), [])
