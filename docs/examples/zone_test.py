"""
An integrator's trial test on the in-memory zone of pz.testing: a hub and
two devices, real certificates and real TLS, no sockets, one clock.

Run it with: trial docs/examples/zone_test.py (tests.pz.test_testing runs
it too, so it cannot drift from the code).
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.testing import MemoryZone


class MessageTests(SynchronousTestCase):
    """
    What an application on two devices of one zone would check.
    """

    def setUp(self):
        # Enrols, starts and connects both devices; stops them and checks
        # that nothing is left scheduled when the test ends.
        self.zone = MemoryZone(self, devices=["phone", "laptop"])

    def test_hello(self):
        """
        A text sent from the phone lands in the laptop's inbox.
        """
        phone = self.zone.device("phone")
        laptop = self.zone.device("laptop")
        d = phone.send(self.zone.deviceId("laptop"), "hello")
        self.zone.flush()
        self.successResultOf(d)
        [message] = laptop.inbox.messages()
        self.assertEqual((message["from"], message["text"]),
                         (self.zone.deviceId("phone"), "hello"))

    def test_backAfterOutage(self):
        """
        A device whose link dropped is back once its retry is due.
        """
        self.zone.disconnect("phone")
        self.assertEqual(self.zone.device("phone").status()["state"], "NotConnected")
        self.zone.advance(60)
        self.assertEqual(self.zone.device("phone").status()["state"], "Connected")
