"""
Tests for L{pz.testing.ServiceChecks} and the service helpers of
L{pz.testing.MemoryZone}: the checks pass for a service that behaves as the
zone expects, and each fails for a service that does not.
"""

import unittest as pyunit

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.testing import MemoryZone, ServiceChecks
from pz.zoneservice import IZoneService, ZoneService, exposed


class Echo(ZoneService):
    """
    Answers its argument.
    """

    name = "echo"
    version = "1.0"

    @exposed
    def echo(self, text: str) -> str:
        return text


@implementer(IZoneService)
class Sloppy:
    """
    Takes any arguments and answers methods it does not have.
    """

    name = "sloppy"
    version = "1.0"

    def methods(self):
        return ["echo"]

    def call(self, method, params):
        return params


@implementer(IZoneService)
class Silent:
    """
    Never answers.
    """

    name = "silent"
    version = "1.0"

    def methods(self):
        return ["echo"]

    def call(self, method, params):
        if method not in self.methods():
            raise ZoneError("NO_SUCH_METHOD", method)
        if params != {"text": "hi"}:
            raise ZoneError("BAD_ARGUMENTS", "text")
        return Deferred()


def _checksFor(serviceClass) -> type:
    """
    A test case of L{ServiceChecks} for C{serviceClass}, built here so that
    trial does not collect the checks of the bad services as this module's
    own tests.
    """
    class Checks(ServiceChecks, SynchronousTestCase):
        def makeService(self):
            return serviceClass()

        goodCall = ("echo", {"text": "hi"})

    return Checks


def _failing(case: type) -> set:
    """
    The names of C{case}'s checks that fail.
    """
    suite = pyunit.defaultTestLoader.loadTestsFromTestCase(case)
    result = pyunit.TestResult()
    suite.run(result)
    return {test._testMethodName for test, _ in result.failures + result.errors}


class ServiceChecksTests(SynchronousTestCase):
    """
    What the checks say of services good and bad.
    """

    def test_goodServicePasses(self):
        self.assertEqual(_failing(_checksFor(Echo)), set())

    def test_sloppyServiceFails(self):
        """
        A service that takes any argument fails that check (its answering
        methods it does not list is caught by the zone itself).
        """
        self.assertEqual(_failing(_checksFor(Sloppy)), {"test_zoneUnexpectedArgument"})

    def test_silentServiceFails(self):
        """
        A service that never answers fails the checks that need an answer.
        """
        self.assertEqual(_failing(_checksFor(Silent)),
                         {"test_zoneGoodCallAnswers", "test_zoneLateAnswerHarmless"})


class MemoryZoneServicesTests(SynchronousTestCase):
    """
    A service on an in-memory device, called from another, in a few lines.
    """

    def test_callThroughHub(self):
        zone = MemoryZone(self, ["phone", "laptop"])
        zone.register("laptop", Echo())
        d = zone.call("phone", "laptop", "echo", "echo", {"text": "hello"})
        self.assertEqual(self.successResultOf(d), "hello")

    def test_timeout(self):
        """
        A call never answered fails C{TIMEOUT} once the clock passes its
        timeout, and not before.
        """
        zone = MemoryZone(self, ["phone", "laptop"])
        zone.register("laptop", Silent())
        d = zone.call("phone", "laptop", "silent", "echo", {"text": "hi"}, 10.0)
        zone.advance(9.0, step=1.0)
        self.assertNoResult(d)
        zone.advance(2.0, step=1.0)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "TIMEOUT")

    def test_noSuchDevice(self):
        zone = MemoryZone(self, ["phone"])
        d = zone.device("phone").call(f"{zone.zoneId}/nobody", "echo", "echo", {"text": "x"})
        zone.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "UNKNOWN_DESTINATION")

    def test_deviceOffline(self):
        zone = MemoryZone(self, ["phone", "laptop"])
        zone.stopDevice("laptop")
        zone.coalesce()
        d = zone.call("phone", "laptop", "get42", "get42")
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "DEVICE_OFFLINE")

    def test_discovery(self):
        """
        The services the laptop runs reach the phone's list.
        """
        zone = MemoryZone(self, ["phone", "laptop"])
        zone.register("laptop", Echo())
        zone.coalesce()
        found = {(s["device"], s["service"]) for s in zone.device("phone").findServices()}
        self.assertIn((zone.deviceId("laptop"), "echo"), found)
