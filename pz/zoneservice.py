# -*- test-case-name: tests.pz.test_zoneservice -*-
"""
Zone services: what an integrator writes once so that every device of the
zone can find it and call it.

A zone service is any object providing L{IZoneService}.  Most integrators
subclass L{ZoneService} and mark the methods they offer with L{exposed}:

    class Answer(ZoneService):
        name = "get42"
        version = "1.0"

        @exposed
        def get42(self):
            return 42

A decorator rather than a naming rule (say, every method starting with
C{remote_}) because exposure to the whole zone should be a visible, deliberate
choice on the method itself: a helper added later is never callable by
accident, and the name the zone sees is the Python name, with no prefix to
strip or forget.

A L{ServiceRegistry} holds the services of one device;
L{loadFactory} finds a factory named on the command line
(C{twistd pzp --service module:factory}).
"""

import importlib
import inspect
import re
from typing import Callable, Optional

from zope.interface import Attribute, Interface, implementer
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from pz.errors import ZoneError

__all__ = [
    "IZoneService",
    "ZoneService",
    "exposed",
    "ServiceRegistry",
    "loadFactory",
    "buildService",
    "checkName",
]

#: Service and method names: a letter, then letters, digits, C{_} or C{-}.
#: No dot, so C{"SERVICE.METHOD"} always splits one way.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class IZoneService(Interface):
    """
    A service that devices of the zone can call.
    """

    name = Attribute("str: the service's name, unique on its device (see L{NAME})")
    version = Attribute("str: the service's version, shown to whoever looks for it")

    def methods():
        """
        @return: the names of the methods callable through L{call}, a list of str.
        """

    def call(method, params):
        """
        Run one method.

        @param method: one of L{methods}.
        @param params: the call's JSON arguments: a list (positional) or a
            dict (by name).
        @return: a JSON value, or a L{Deferred} firing with one.
        @raise ZoneError: C{NO_SUCH_METHOD}, C{BAD_ARGUMENTS}, or any code the
            service chooses; any other exception becomes C{REMOTE_ERROR}.
        """


def checkName(kind: str, name) -> str:
    """
    @return: C{name} when it is a valid service or method name.
    @raise ZoneError: C{BAD_REQUEST} naming the bad name.
    """
    if not isinstance(name, str) or not NAME.match(name):
        raise ZoneError(
            "BAD_REQUEST",
            f"{kind} name {name!r} must be a letter then up to 63 letters, digits, '_' or '-'",
        )
    return name


def exposed(function: Callable) -> Callable:
    """
    Mark a method of a L{ZoneService} subclass as callable by the zone.
    """
    function._zoneExposed = True
    return function


#: The JSON types an annotation may ask for, and what satisfies each.
_JSON_TYPES = {
    str: (str,),
    int: (int,),
    float: (int, float),
    bool: (bool,),
    list: (list,),
    dict: (dict,),
}


def _typeOk(annotation, value) -> bool:
    """
    Whether C{value} fits a plain JSON-type annotation (other annotations
    are not checked; C{True} is not an C{int} here).
    """
    accepted = _JSON_TYPES.get(annotation)
    if accepted is None:
        return True
    if isinstance(value, bool) and annotation is not bool:
        return False
    return isinstance(value, accepted)


@implementer(IZoneService)
class ZoneService:
    """
    A base class for zone services: subclasses set C{name} and C{version}
    and decorate their methods with L{exposed}.

    Arguments are checked against the method's signature before it runs,
    so a caller's mistake is C{BAD_ARGUMENTS} and never confused with a
    C{TypeError} raised inside the method; parameters annotated with a
    JSON type (C{str}, C{int}, C{float}, C{bool}, C{list}, C{dict}) are
    type-checked too.
    """

    name: str = ""
    version: str = "1.0"

    def __init_subclass__(cls, **kwargs) -> None:
        """
        Work out once per class which methods are exposed, and remember
        each one's signature when first called: both depend on the class
        alone, and a call should not pay for them again.
        """
        super().__init_subclass__(**kwargs)
        cls._zoneMethods = tuple(sorted(
            attribute for attribute in dir(cls)
            if not attribute.startswith("_")
            and getattr(getattr(cls, attribute, None), "_zoneExposed", False)
        ))
        cls._zoneSignatures = {}

    _zoneMethods: tuple = ()

    def methods(self) -> list:
        """
        The names of the methods marked with L{exposed}, sorted.
        """
        return list(self._zoneMethods)

    def _signature(self, method: str, function) -> inspect.Signature:
        signature = self._zoneSignatures.get(method)
        if signature is None:
            signature = self._zoneSignatures[method] = inspect.signature(function)
        return signature

    def call(self, method: str, params):
        """
        Run an exposed method with the call's arguments.
        """
        if method not in self._zoneMethods:
            raise ZoneError("NO_SUCH_METHOD", f"service {self.name!r} has no method {method!r}")
        function = getattr(self, method)
        if isinstance(params, list):
            args, kwargs = params, {}
        elif isinstance(params, dict):
            args, kwargs = [], params
        else:
            raise ZoneError("BAD_ARGUMENTS", "params must be a list or an object")
        signature = self._signature(method, function)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise ZoneError("BAD_ARGUMENTS", f"{self.name}.{method}: {e}")
        for key, value in bound.arguments.items():
            parameter = signature.parameters[key]
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if not _typeOk(parameter.annotation, value):
                raise ZoneError(
                    "BAD_ARGUMENTS",
                    f"{self.name}.{method}: argument {key!r} must be "
                    f"{parameter.annotation.__name__}, not {type(value).__name__}",
                )
        return function(*bound.args, **bound.kwargs)


class ServiceRegistry:
    """
    The services one device offers, by name.

    @ivar _services: name -> L{IZoneService} provider.
    @ivar _watchers: called with no arguments after every change, so the
        device can announce its services again.
    """

    def __init__(self) -> None:
        self._services = {}
        self._watchers = []

    def watch(self, callback: Callable[[], None]) -> None:
        """
        Call C{callback} after each registration or removal.
        """
        self._watchers.append(callback)

    def _changed(self) -> None:
        for callback in list(self._watchers):
            callback()

    def register(self, service) -> None:
        """
        Add a service.

        @raise ZoneError: C{BAD_REQUEST} if it does not provide
            L{IZoneService}, its name or a method name is invalid, or a
            service of that name is already registered.
        """
        try:
            verifyObject(IZoneService, service)
        except Invalid as e:
            raise ZoneError("BAD_REQUEST", f"{service!r} is not a zone service: {e}")
        name = checkName("service", service.name)
        if not isinstance(service.version, str):
            raise ZoneError("BAD_REQUEST", f"service {name!r}: version must be a string")
        for method in service.methods():
            checkName("method", method)
        if name in self._services:
            raise ZoneError("BAD_REQUEST", f"a service named {name!r} is already registered")
        self._services[name] = service
        self._changed()

    def unregister(self, name: str) -> None:
        """
        Remove the service called C{name}.

        @raise ZoneError: C{NO_SUCH_SERVICE} if there is none.
        """
        self.get(name)
        del self._services[name]
        self._changed()

    def get(self, name: str):
        """
        @return: the service called C{name}.
        @raise ZoneError: C{NO_SUCH_SERVICE} if there is none.
        """
        try:
            return self._services[name]
        except (KeyError, TypeError):
            raise ZoneError("NO_SUCH_SERVICE", f"no service named {name!r} on this device")

    def __contains__(self, name) -> bool:
        return name in self._services

    def describe(self) -> list:
        """
        What this device offers, as announced to the zone: a list of
        C{{"service", "version", "methods"}}, sorted by name.
        """
        return [
            {"service": name, "version": service.version, "methods": list(service.methods())}
            for name, service in sorted(self._services.items())
        ]


def loadFactory(spec: str) -> Callable:
    """
    Find the factory that C{twistd pzp --service module:factory} names.

    @param spec: C{"package.module:callable"}; the callable may be a
        dotted attribute path (C{"module:Class.create"}).
    @return: the callable.
    @raise ZoneError: C{BAD_REQUEST} naming what is wrong: the form, the
        module that cannot be imported (and why), the missing attribute, or
        a value that is not callable.
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: expected MODULE:FACTORY")
    moduleName, attributePath = spec.split(":")
    if not moduleName or not attributePath:
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: expected MODULE:FACTORY")
    try:
        module = importlib.import_module(moduleName)
    except ImportError as e:
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: cannot import {moduleName!r}: {e}")
    except Exception as e:
        raise ZoneError(
            "BAD_REQUEST",
            f"service {spec!r}: importing {moduleName!r} failed: {type(e).__name__}: {e}",
        )
    found = module
    for part in attributePath.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ZoneError("BAD_REQUEST", f"service {spec!r}: {moduleName!r} has no {attributePath!r}")
    if not callable(found):
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: {attributePath!r} is not callable")
    return found


def buildService(spec: str, factory: Optional[Callable] = None):
    """
    Make the service C{spec} names: load its factory, call it with no
    arguments and check that the result is a zone service.

    @param factory: the factory already loaded, if it was.
    @raise ZoneError: C{BAD_REQUEST} naming what is wrong.
    """
    if factory is None:
        factory = loadFactory(spec)
    try:
        service = factory()
    except Exception as e:
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: the factory failed: {type(e).__name__}: {e}")
    try:
        verifyObject(IZoneService, service)
    except Invalid as e:
        raise ZoneError("BAD_REQUEST", f"service {spec!r}: the factory's result is not a zone service: {e}")
    return service
