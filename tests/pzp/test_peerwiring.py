"""
The proxy's Peer mode and services wired together, in an in-memory zone
(L{pz.testing.MemoryZone}: real hub, real proxies, TLS in memory, one
clock): devices link directly once the hub told them where, calls and
messages take the peer link when it is Connected and the hub link
otherwise, the peer link outlives the hub, and a revocation closes it at
once.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.testing import MemoryZone
from pzp.peermode import MAX_REDIAL, REDIAL
from pzp.proxy import ProxySettings


class PeerWiringTests(SynchronousTestCase):
    def zone(self, settings=None):
        zone = MemoryZone(self, ["phone", "laptop"], deviceSettings=settings)
        zone.coalesce()
        return zone

    def via(self, zone, caller="phone", device="laptop"):
        d = zone.device(caller).callVia(zone.deviceId(device), "get42", "get42")
        zone.flush()
        return self.successResultOf(d)

    def test_linkedOnPzpUpdate(self):
        """
        Once the hub announced both devices with their peer endpoints, each
        has a Connected peer link to the other, and exactly one link is
        left open between them.
        """
        zone = self.zone()
        self.assertEqual(zone.device("phone").peerStatus(), {zone.deviceId("laptop"): "Connected"})
        self.assertEqual(zone.device("laptop").peerStatus(), {zone.deviceId("phone"): "Connected"})
        phoneLink = zone.device("phone").route(zone.deviceId("laptop"))
        laptopLink = zone.device("laptop").route(zone.deviceId("phone"))
        self.assertEqual((phoneLink.outgoing, laptopLink.outgoing).count(True), 1)
        open_ = [link for link in zone.peerLinks if not link.closed]
        self.assertEqual(len(open_), 1)

    def test_callsTakeThePeerLink(self):
        self.assertEqual(self.via(self.zone()), {"result": 42, "via": "peer"})

    def test_messagesTakeThePeerLink(self):
        """
        A text message goes over the peer link too: it is delivered and
        acknowledged with the hub gone.
        """
        zone = self.zone()
        zone.hubDown()
        d = zone.device("phone").send(zone.deviceId("laptop"), "hello")
        zone.flush()
        self.assertEqual(self.successResultOf(d)["status"], "ack")
        inbox = zone.device("laptop").inbox.contents().messages
        self.assertEqual([(m["from"], m["text"]) for m in inbox],
                         [(zone.deviceId("phone"), "hello")])

    def test_hubPathWithoutPeerConnection(self):
        """
        With peer connection off, nothing is dialled and calls go through
        the hub.
        """
        zone = self.zone(ProxySettings(peerConnection=False))
        self.assertEqual(zone.device("phone").peerStatus(),
                         {zone.deviceId("laptop"): "NotConnected"})
        self.assertEqual(self.via(zone), {"result": 42, "via": "hub"})

    def test_noPeerServer(self):
        """
        Devices without a peer server announce none, so nobody dials.
        """
        zone = self.zone(ProxySettings(peerPort=None))
        self.assertEqual(zone.device("phone").status()["peer_port"], 0)
        self.assertEqual(self.via(zone), {"result": 42, "via": "hub"})

    def test_hubDown(self):
        """
        With the hub gone, the peer link carries calls and the services
        list still names the laptop's services; a device with no peer link
        is NOT_CONNECTED.
        """
        zone = self.zone()
        zone.hubDown()
        zone.advance(5, step=1)
        self.assertNotEqual(zone.device("phone").status()["state"], "Connected")
        self.assertEqual(self.via(zone), {"result": 42, "via": "peer"})
        found = {(s["device"], s["service"], s["via"])
                 for s in zone.device("phone").findServices()}
        self.assertIn((zone.deviceId("laptop"), "get42", "peer"), found)
        d = zone.device("phone").call(f"{zone.zoneId}/tablet", "get42", "get42")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")
        zone.hubBack()
        zone.advance(35, step=1)
        self.assertEqual(zone.device("phone").status()["state"], "Connected")

    def test_revokedPeerClosedAtOnce(self):
        """
        When the hub revokes the laptop, the phone closes its peer link to
        it as soon as the new CRL arrives, and calls to it are refused.
        """
        zone = self.zone()
        zone.revoke("laptop")
        self.assertEqual(zone.device("phone").peerStatus().get(zone.deviceId("laptop")),
                         "NotConnected")
        self.assertTrue(all(link.closed for link in zone.peerLinks))
        d = zone.device("phone").call(zone.deviceId("laptop"), "get42", "get42")
        zone.flush()
        self.assertIn(self.failureResultOf(d, ZoneError).value.code,
                      ("UNKNOWN_DESTINATION", "DEVICE_OFFLINE"))

    def test_peerLostRedialled(self):
        """
        A dropped peer link leaves calls to the hub until the redial a
        couple of seconds later links the devices again.
        """
        zone = self.zone()
        for link in zone.peerLinks:
            if not link.closed:
                link.server.transport.loseConnection()
        zone.flush()
        self.assertEqual(self.via(zone)["via"], "hub")
        zone.advance(REDIAL, step=REDIAL)
        self.assertEqual(zone.device("phone").peerStatus(), {zone.deviceId("laptop"): "Connected"})
        self.assertEqual(self.via(zone)["via"], "peer")

    def test_leftDeviceNotRedialled(self):
        """
        A device that left the hub is not dialled again once its link is
        gone.
        """
        zone = self.zone()
        zone.stopDevice("laptop")
        zone.coalesce()
        zone.advance(MAX_REDIAL, step=REDIAL)
        self.assertEqual(zone.device("phone").peerStatus(),
                         {zone.deviceId("laptop"): "NotConnected"})
        self.assertEqual(zone.reactor.tcpClients, [])
