"""
End to end: a message sent with C{pzctl send --queue} to a device that is
stopped reaches it when it starts again, across a restart of the hub too,
with real processes on 127.0.0.1.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from pz.admin import adminCall
from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor


class QueuedDeliveryTests(TestCase):
    """
    The hub keeps a queued message for a device that is off.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_queuedReachesStoppedDevice(self):
        """
        With the laptop stopped, a plain send is refused C{DEVICE_OFFLINE}
        while two sends with C{--queue}, one before and one after the hub
        restarts, are answered queued; once the laptop starts again both are
        in its inbox, in order, and the plain one is not.
        """
        zone = Zone(self)
        yield zone.startHub()
        yield zone.pairDevice("phone")
        yield zone.pairDevice("laptop")
        phone = zone.deviceDir("phone")
        laptopId = zone.deviceId("laptop")
        yield zone.devices["laptop"].stop()
        yield waitFor(lambda: laptopId not in adminCall(zone.hubDir, "connected", timeout=2),
                      what="the hub to see the laptop go")

        out, err, code = yield pzctl("--pzp-dir", phone, "send", laptopId, "plain", check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("DEVICE_OFFLINE", err)
        out = yield pzctl("--pzp-dir", phone, "send", "--queue", laptopId, "first")
        self.assertIn(f"queued for {laptopId}", out)

        yield zone.hub.stop()
        yield zone.startHub()
        yield zone.waitState("phone", "Hub", "Connected", timeout=30)
        answer = yield pzctlJSON("--pzp-dir", phone, "send", "--queue", "--json", laptopId,
                                 "second")
        self.assertEqual(answer, {"to": laptopId, "delivered": False, "queued": True})

        zone.startDevice("laptop")
        yield zone.waitState("laptop", "Hub", "Connected", timeout=30)

        @defer.inlineCallbacks
        def inbox():
            contents = yield pzctlJSON("--pzp-dir", zone.deviceDir("laptop"), "inbox", "--json")
            texts = [(m["from"], m["text"]) for m in contents["messages"]]
            return texts if len(texts) >= 2 else None

        texts = yield waitFor(inbox, timeout=20, what="the queued messages in the laptop's inbox")
        self.assertEqual(texts, [(zone.deviceId("phone"), "first"),
                                 (zone.deviceId("phone"), "second")])
        self.assertIn("delivering 2 queued message(s)", zone.hub.log())
