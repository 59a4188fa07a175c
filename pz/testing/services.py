# -*- test-case-name: tests.pz.test_testingservices -*-
"""
Checks every zone service should pass, for an integrator's own trial suite.

Mix L{ServiceChecks} into a L{twisted.trial.unittest.SynchronousTestCase},
say how to build the service and give one call that works; the checks run
the service on a device of an in-memory zone (L{pz.testing.MemoryZone}) and
call it from another device, through the real hub, as the zone would::

    class ThermometerChecks(ServiceChecks, SynchronousTestCase):
        def makeService(self):
            return Thermometer()

        goodCall = ("read", {"unit": "C"})

Each check is one test method, named C{test_zone...}: an unknown method is
C{NO_SUCH_METHOD}; arguments a method does not take, or of the wrong kind,
are C{BAD_ARGUMENTS}; the good call answers before the caller's timeout (a
call that never answers is the caller's C{TIMEOUT}, never a hang), and an
answer that comes after the timeout harms nothing.
"""

from twisted.internet.defer import Deferred, maybeDeferred
from zope.interface import implementer

from pz.errors import ZoneError
from pz.testing.zone import MemoryZone
from pz.zoneservice import IZoneService

__all__ = ["ServiceChecks"]


class ServiceChecks:
    """
    A mixin of checks for one zone service.

    @cvar goodCall: C{(method, params)} of a call the service answers.
    @cvar callTimeout: seconds the caller waits in the timeout check.
    """

    goodCall: tuple = ()
    callTimeout: float = 30.0

    # The test case defines makeService(): it builds the service under test.

    def _zone(self):
        zone = MemoryZone(self, ["caller", "server"])
        self.service = self.makeService()
        zone.register("server", self.service)
        return zone

    def _refusal(self, d: Deferred) -> ZoneError:
        return self.failureResultOf(d, ZoneError).value

    def test_zoneProvidesInterface(self):
        """
        The service provides L{IZoneService}, with at least one method.
        """
        service = self.makeService()
        self.assertTrue(IZoneService.providedBy(service), f"{service!r} is not an IZoneService")
        self.assertTrue(list(service.methods()), f"{service.name} exposes no method")

    def test_zoneGoodCallAnswers(self):
        """
        The good call is answered, in time, over the zone.
        """
        method, params = self.goodCall
        zone = self._zone()
        d = zone.call("caller", "server", self.service.name, method, params, self.callTimeout)
        zone.advance(self.callTimeout / 2, step=self.callTimeout / 20)
        self.successResultOf(d)

    def test_zoneUnknownMethod(self):
        """
        A method the service does not expose is C{NO_SUCH_METHOD}.
        """
        zone = self._zone()
        d = zone.call("caller", "server", self.service.name, "noSuchMethodHere", {})
        self.assertEqual(self._refusal(d).code, "NO_SUCH_METHOD")

    def test_zoneUnexpectedArgument(self):
        """
        Every method refuses an argument it does not take with
        C{BAD_ARGUMENTS}.
        """
        zone = self._zone()
        for method in self.service.methods():
            d = zone.call("caller", "server", self.service.name, method,
                          {"an_argument_nobody_takes": 1})
            self.assertEqual(self._refusal(d).code, "BAD_ARGUMENTS", f"{method}")

    def test_zoneWrongKindOfArguments(self):
        """
        Arguments that are neither a JSON list nor object are refused
        C{BAD_ARGUMENTS} before the service sees them.
        """
        zone = self._zone()
        method, params = self.goodCall
        d = zone.call("caller", "server", self.service.name, method, "not a list or object")
        self.assertEqual(self._refusal(d).code, "BAD_ARGUMENTS")

    def test_zoneLateAnswerHarmless(self):
        """
        When the caller gave up first (C{TIMEOUT}), the answer arriving
        later is dropped and the next call works.
        """
        method, params = self.goodCall
        zone = self._zone()
        zone.device("server").registry.unregister(self.service.name)
        slow = _Slow(self.service)
        zone.register("server", slow)
        d = zone.call("caller", "server", self.service.name, method, params, 1.0)
        zone.advance(2.0, step=0.5)
        self.assertEqual(self._refusal(d).code, "TIMEOUT")
        slow.release()
        zone.flush()
        d = zone.call("caller", "server", self.service.name, method, params)
        zone.advance(self.callTimeout / 2, step=self.callTimeout / 20)
        self.successResultOf(d)


@implementer(IZoneService)
class _Slow:
    """
    The service under test, answering its first call only when released.
    """

    def __init__(self, service) -> None:
        self._service = service
        self.name = service.name
        self.version = service.version
        self._held = []

    def methods(self):
        return self._service.methods()

    def call(self, method, params):
        if self._held is None:
            return self._service.call(method, params)
        d = Deferred()
        self._held.append((d, method, params))
        return d

    def release(self) -> None:
        held, self._held = self._held, None
        for d, method, params in held:
            maybeDeferred(self._service.call, method, params).chainDeferred(d)
