# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The set of built-in services a device runs unless
C{--no-builtin-services} is given.
"""

from pzp.builtins.context import ContextService
from pzp.builtins.files import FilesService
from pzp.builtins.get42 import Get42Service

__all__ = ["builtinServices"]


def builtinServices(items) -> list:
    """
    A fresh instance of every built-in service, for one device.

    @param items: the device's L{pz.sync.items.ItemTree}.
    """
    return [Get42Service(), ContextService(items), FilesService(items)]
