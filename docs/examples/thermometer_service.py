"""
An integrator's zone service and its trial test: a thermometer that other
devices of the zone can read.

Run it with: trial docs/examples/thermometer_service.py
(tests.pz.test_zoneservice runs it too, so it cannot drift from the code).
"""

from twisted.trial.unittest import SynchronousTestCase

from pz.calls import makeRequest, parseAnswer, serve
from pz.zoneservice import ServiceRegistry, ZoneService, exposed


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
    Calls as the zone makes them, through a registry.
    """

    def setUp(self):
        self.registry = ServiceRegistry()
        self.registry.register(makeThermometer())

    def call(self, method, params=None):
        request = makeRequest("t1", "thermometer", method, params)
        return parseAnswer(self.successResultOf(serve(self.registry, request)))

    def test_read(self):
        """
        A room with a sensor answers its reading.
        """
        self.assertEqual(self.call("read", ["kitchen"]).result, 21.5)

    def test_wrongType(self):
        """
        A room that is not a string is the caller's mistake.
        """
        self.assertEqual(self.call("read", [3]).error.code, "BAD_ARGUMENTS")

    def test_notExposed(self):
        """
        A method without @exposed cannot be called.
        """
        self.assertEqual(self.call("calibrate").error.code, "NO_SUCH_METHOD")
