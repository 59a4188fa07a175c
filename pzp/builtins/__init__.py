# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The zone services every device runs unless C{--no-builtin-services} is
given: the webinos C{get42} sample and C{context}.
"""

from pzp.builtins.context import ContextService
from pzp.builtins.get42 import Get42Service, builtinServices

__all__ = ["ContextService", "Get42Service", "builtinServices"]
