"""
Tests for L{pz.ids}: which strings are device ids.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.ids import checkDeviceId, validDeviceName


class CheckDeviceIdTests(SynchronousTestCase):
    """
    L{checkDeviceId} accepts C{ZONE/NAME} and refuses what would address
    the hub or nothing.
    """

    def test_accepts(self):
        """
        A zone id, a slash and a valid device name make a device id.
        """
        for deviceId in ("alice@127.0.0.1/laptop", "a@h.example/tv-2", "b.c@[::1]:8000/x_y"):
            self.assertEqual(checkDeviceId(deviceId), deviceId)

    def test_refuses(self):
        """
        The empty id, a zone id (the hub's address), a bare name, a missing
        zone or name, a name enrolment would refuse, and a non-string are
        C{BAD_REQUEST} with a sentence that shows the form.
        """
        for bad in ("", "alice@127.0.0.1", "laptop", "/laptop", "alice@127.0.0.1/",
                    "@127.0.0.1/laptop", "alice/laptop", "alice@127.0.0.1/.hidden", None, 5):
            error = self.assertRaises(ZoneError, checkDeviceId, bad)
            self.assertEqual(error.code, "BAD_REQUEST")
            self.assertIn("is not a device id: give ZONE/NAME, such as alice@127.0.0.1/laptop",
                          error.message)

    def test_namesAsEnrolment(self):
        """
        The name part follows L{validDeviceName}, the rule enrolment gives
        names by.
        """
        self.assertTrue(validDeviceName("phone"))
        self.assertFalse(validDeviceName("x" * 64))
