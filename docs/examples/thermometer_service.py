"""
An integrator's zone service and its trial tests: a thermometer that other
devices of the zone can read.

Run the service on a device:
    PYTHONPATH=docs/examples twistd pzp -d DIR --service thermometer_service:makeThermometer
Run its tests:
    trial docs/examples/thermometer_service.py
(tests.pz.test_zoneservice runs them too, so they cannot drift from the code.)
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.testing import MemoryZone, ServiceChecks
from pz.zoneservice import ZoneService, exposed


class Thermometer(ZoneService):
    """
    Readings in degrees Celsius, by room.
    """

    name = "thermometer"
    version = "1.0"

    def __init__(self):
        self.readings = {"kitchen": 21.5}

    @exposed
    def read(self, room: str):
        """
        The last reading of C{room}, or null if it has no sensor.
        """
        return self.readings.get(room)

    @exposed
    def rooms(self):
        """
        The rooms with a sensor.
        """
        return sorted(self.readings)

    def calibrate(self):
        """
        Not decorated: no other device can call it.
        """


def makeThermometer():
    """
    The factory `twistd pzp --service` names:
    --service thermometer_service:makeThermometer
    """
    return Thermometer()


class ThermometerTests(SynchronousTestCase):
    """
    The thermometer on the laptop of a zone held in memory (a real hub and
    real devices, no network), read from the phone.
    """

    def setUp(self):
        self.zone = MemoryZone(self, ["phone", "laptop"])
        self.zone.register("laptop", makeThermometer())

    def test_read(self):
        """
        A room with a sensor answers its reading.
        """
        d = self.zone.call("phone", "laptop", "thermometer", "read", ["kitchen"])
        self.assertEqual(self.successResultOf(d), 21.5)

    def test_notExposed(self):
        """
        A method without @exposed cannot be called.
        """
        d = self.zone.call("phone", "laptop", "thermometer", "calibrate")
        self.assertEqual(self.failureResultOf(d).value.code, "NO_SUCH_METHOD")


class ThermometerChecks(ServiceChecks, SynchronousTestCase):
    """
    The checks every zone service should pass.
    """

    def makeService(self):
        return makeThermometer()

    goodCall = ("read", {"room": "kitchen"})
