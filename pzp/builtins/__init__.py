# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The zone services every device runs unless C{--no-builtin-services} is
given: the webinos C{get42} sample, C{context} and C{files}.
"""

from pzp.builtins.context import ContextService
from pzp.builtins.defaults import builtinServices
from pzp.builtins.files import FilesService
from pzp.builtins.get42 import Get42Service

__all__ = ["ContextService", "FilesService", "Get42Service", "builtinServices"]
