# -*- test-case-name: tests.pz.test_testing -*-
"""
Find the hub and device ends of the in-memory zone through entry points.

The ends register themselves in their package's metadata (C{setup.cfg},
C{[options.entry_points]}), so the core reaches them without importing
them::

    pz.testing =
        hub = pzh.testing:hubEnd
        device = pzp.testing:deviceEnd
"""

from functools import cache
from importlib.metadata import entry_points

from zope.interface.verify import verifyObject

from pz.testing.interfaces import IMemoryDeviceEnd, IMemoryHubEnd

__all__ = ["GROUP", "NoEndInstalled", "hubEnd", "deviceEnd"]

#: The entry-point group the ends register under.
GROUP = "pz.testing"


class NoEndInstalled(LookupError):
    """
    No installed package registers the end asked for.
    """


@cache
def _installed(group: str) -> dict:
    """
    The entry points registered in C{group}, by name: read once per
    process, as scanning every installed package's metadata costs some
    milliseconds and the installed packages do not change while tests run.
    """
    return {point.name: point for point in entry_points(group=group)}


def _load(name: str, interface):
    """
    The object registered as C{name} in L{GROUP}, checked against
    C{interface}.
    """
    found = _installed(GROUP).get(name)
    if found is None:
        raise NoEndInstalled(
            f"no {name!r} end is registered under the entry-point group {GROUP!r}: "
            "install the personal-zone package (pip install -e .) so that its "
            f"metadata names one")
    end = found.load()
    verifyObject(interface, end)
    return end


def hubEnd() -> IMemoryHubEnd:
    """
    The installed hub end.

    @raise NoEndInstalled: if no package registers one.
    """
    return _load("hub", IMemoryHubEnd)


def deviceEnd() -> IMemoryDeviceEnd:
    """
    The installed device end.

    @raise NoEndInstalled: if no package registers one.
    """
    return _load("device", IMemoryDeviceEnd)
