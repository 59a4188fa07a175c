"""
Tests for L{pz.zoneservice}: the service interface, the base class, the
registry and loading a factory named on the command line.
"""

import importlib.util
import os
import sys
from pathlib import Path

from twisted.trial.reporter import TestResult
from twisted.trial.runner import TestLoader
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz.errors import ZoneError
from pz.zoneservice import (
    IZoneService,
    ServiceRegistry,
    ZoneService,
    buildService,
    exposed,
    loadFactory,
)


class Sample(ZoneService):
    """
    A service with two exposed methods and one helper.
    """

    name = "sample"
    version = "2.1"

    @exposed
    def add(self, a: int, b: int = 1):
        return a + b

    @exposed
    def echo(self, value, *rest):
        return [value, *rest]

    def helper(self):
        return "not exposed"


@implementer(IZoneService)
class Plain:
    """
    A service written without the base class.
    """

    name = "plain"
    version = "1"

    def methods(self):
        return ["ping"]

    def call(self, method, params):
        return "pong"


def sampleFactory():
    """
    A factory for L{Sample}, found by L{loadFactory}.
    """
    return Sample()


notCallable = 42


def brokenFactory():
    raise RuntimeError("no disk")


def wrongFactory():
    return object()


class ZoneServiceTests(SynchronousTestCase):
    """
    L{ZoneService} exposes only decorated methods and checks arguments
    before running them.
    """

    def test_methods(self) -> None:
        """
        Only the methods marked with L{exposed} are offered.
        """
        self.assertEqual(Sample().methods(), ["add", "echo"])

    def test_providesInterface(self) -> None:
        """
        A subclass provides L{IZoneService}.
        """
        self.assertTrue(IZoneService.providedBy(Sample()))

    def test_callPositionalAndNamed(self) -> None:
        """
        A list is passed by position, an object by name.
        """
        self.assertEqual(Sample().call("add", [2, 3]), 5)
        self.assertEqual(Sample().call("add", {"a": 2}), 3)
        self.assertEqual(Sample().call("echo", [1, 2, 3]), [1, 2, 3])

    def test_unexposedMethod(self) -> None:
        """
        A method that is not exposed is C{NO_SUCH_METHOD}, as is a name
        that does not exist.
        """
        for name in ("helper", "missing", "call", "__init__"):
            e = self.assertRaises(ZoneError, Sample().call, name, [])
            self.assertEqual(e.code, "NO_SUCH_METHOD")
            self.assertIn(repr(name), e.message)

    def test_badArguments(self) -> None:
        """
        Too few, too many or unknown arguments, and a value of the wrong
        JSON type for an annotated parameter, are C{BAD_ARGUMENTS}.
        """
        for params in ([], [1, 2, 3], {"c": 1}, ["1", 2], [True], {"a": 1, "b": 1.5}):
            e = self.assertRaises(ZoneError, Sample().call, "add", params)
            self.assertEqual(e.code, "BAD_ARGUMENTS", params)
            self.assertIn("sample.add", e.message)

    def test_paramsShape(self) -> None:
        """
        Params that are neither a list nor an object are C{BAD_ARGUMENTS}.
        """
        e = self.assertRaises(ZoneError, Sample().call, "add", 3)
        self.assertEqual(e.code, "BAD_ARGUMENTS")

    def test_typeErrorInsideIsNotBadArguments(self) -> None:
        """
        A C{TypeError} raised by the method's body is not mistaken for the
        caller's mistake: it propagates as it is.
        """

        class Faulty(ZoneService):
            name = "faulty"

            @exposed
            def run(self):
                return 1 + "1"

        self.assertRaises(TypeError, Faulty().call, "run", [])


class RegistryTests(SynchronousTestCase):
    """
    L{ServiceRegistry} holds services by unique name.
    """

    def test_registerGetDescribe(self) -> None:
        """
        Registered services are found by name and described sorted.
        """
        registry = ServiceRegistry()
        sample, plain = Sample(), Plain()
        registry.register(sample)
        registry.register(plain)
        self.assertIs(registry.get("sample"), sample)
        self.assertEqual(
            registry.describe(),
            [
                {"service": "plain", "version": "1", "methods": ["ping"]},
                {"service": "sample", "version": "2.1", "methods": ["add", "echo"]},
            ],
        )

    def test_duplicate(self) -> None:
        """
        A second service of the same name is refused and the first kept.
        """
        registry = ServiceRegistry()
        first = Sample()
        registry.register(first)
        e = self.assertRaises(ZoneError, registry.register, Sample())
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn("'sample'", e.message)
        self.assertIs(registry.get("sample"), first)

    def test_unregister(self) -> None:
        """
        An unregistered service is gone; unregistering it again is
        C{NO_SUCH_SERVICE}.
        """
        registry = ServiceRegistry()
        registry.register(Sample())
        registry.unregister("sample")
        self.assertEqual(registry.describe(), [])
        self.assertEqual(self.assertRaises(ZoneError, registry.unregister, "sample").code, "NO_SUCH_SERVICE")

    def test_getUnknown(self) -> None:
        """
        An unknown name, or one that is not a string, is C{NO_SUCH_SERVICE}.
        """
        registry = ServiceRegistry()
        for name in ("nope", None, ["x"]):
            self.assertEqual(self.assertRaises(ZoneError, registry.get, name).code, "NO_SUCH_SERVICE")

    def test_notAService(self) -> None:
        """
        An object that does not provide L{IZoneService} is refused.
        """
        registry = ServiceRegistry()
        e = self.assertRaises(ZoneError, registry.register, object())
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertEqual(registry.describe(), [])

    def test_badNames(self) -> None:
        """
        A service or method name with a dot, a space, empty or not a string
        is refused, so C{SERVICE.METHOD} splits one way.
        """
        registry = ServiceRegistry()
        for bad in ("a.b", "", "a b", 3, "1abc"):
            service = Plain()
            service.name = bad
            e = self.assertRaises(ZoneError, registry.register, service)
            self.assertEqual(e.code, "BAD_REQUEST", bad)
        service = Plain()
        service.methods = lambda: ["x.y"]
        self.assertEqual(self.assertRaises(ZoneError, registry.register, service).code, "BAD_REQUEST")
        service = Plain()
        service.version = 1
        self.assertEqual(self.assertRaises(ZoneError, registry.register, service).code, "BAD_REQUEST")
        self.assertEqual(registry.describe(), [])

    def test_watch(self) -> None:
        """
        Watchers hear of each registration and removal, not of refusals.
        """
        registry = ServiceRegistry()
        heard = []
        registry.watch(lambda: heard.append(len(registry.describe())))
        registry.register(Sample())
        self.assertRaises(ZoneError, registry.register, Sample())
        registry.unregister("sample")
        self.assertEqual(heard, [1, 0])


class LoadFactoryTests(SynchronousTestCase):
    """
    L{loadFactory} and L{buildService} turn C{module:factory} into a
    service, or say in one line what is wrong.
    """

    here = __name__

    def assertBad(self, spec, fragment) -> None:
        e = self.assertRaises(ZoneError, loadFactory, spec)
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn(fragment, e.message)

    def test_found(self) -> None:
        """
        A module and a (dotted) attribute name the factory.
        """
        self.assertIs(loadFactory(f"{self.here}:sampleFactory"), sampleFactory)
        self.assertIs(loadFactory(f"{self.here}:Sample.add"), Sample.add)

    def test_form(self) -> None:
        """
        Anything but one C{MODULE:FACTORY} is refused.
        """
        for spec in ("nocolon", "a:b:c", ":f", "m:", ""):
            self.assertBad(spec, "expected MODULE:FACTORY")

    def test_noModule(self) -> None:
        """
        A module that cannot be imported is named.
        """
        self.assertBad("no_such_module_here:f", "cannot import 'no_such_module_here'")

    def test_moduleFails(self) -> None:
        """
        A module that raises while imported is named with the error.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        with open(os.path.join(folder, "pz_broken_for_test.py"), "w") as f:
            f.write("raise ValueError('bad setting')\n")
        sys.path.insert(0, folder)
        self.addCleanup(sys.path.remove, folder)
        self.addCleanup(sys.modules.pop, "pz_broken_for_test", None)
        self.assertBad("pz_broken_for_test:f", "ValueError: bad setting")

    def test_noAttribute(self) -> None:
        """
        A missing factory is named.
        """
        self.assertBad(f"{self.here}:nothing", "has no 'nothing'")

    def test_notCallable(self) -> None:
        """
        A value that is not callable is refused.
        """
        self.assertBad(f"{self.here}:notCallable", "not callable")

    def test_build(self) -> None:
        """
        L{buildService} calls the factory and returns the service.
        """
        self.assertIsInstance(buildService(f"{self.here}:sampleFactory"), Sample)

    def test_buildFails(self) -> None:
        """
        A factory that raises, or returns something that is not a zone
        service, is C{BAD_REQUEST} with the reason.
        """
        e = self.assertRaises(ZoneError, buildService, f"{self.here}:brokenFactory")
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn("RuntimeError: no disk", e.message)
        e = self.assertRaises(ZoneError, buildService, f"{self.here}:wrongFactory")
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertIn("not a zone service", e.message)


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "thermometer_service.py"


class ExampleTests(SynchronousTestCase):
    """
    The integrator's example in C{docs/examples/thermometer_service.py}.
    """

    def test_runs(self) -> None:
        """
        Every test in the example runs and passes.
        """
        spec = importlib.util.spec_from_file_location("thermometer_example", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = TestResult()
        TestLoader().loadModule(module).run(result)
        self.assertEqual((result.testsRun, result.errors, result.failures), (8, [], []))

    def test_guideShowsTheExample(self) -> None:
        """
        The copy of the example in C{docs/integrators.md} is the file the
        test above runs.
        """
        guide = (EXAMPLE.parents[1] / "integrators.md").read_text(encoding="utf-8")
        marker = "<!-- example: docs/examples/thermometer_service.py -->\n```python\n"
        start = guide.index(marker) + len(marker)
        end = guide.index("```", start)
        self.assertEqual(guide[start:end], EXAMPLE.read_text(encoding="utf-8"))
