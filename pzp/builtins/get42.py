# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The webinos sample service C{get42}, whose method C{get42} returns 42: the
smallest service there is, so it proves that a call reaches a device and
its answer comes back, and nothing else.
"""

from pz.zoneservice import ZoneService, exposed

__all__ = ["Get42Service"]


class Get42Service(ZoneService):
    """
    The webinos C{get42} test API as a zone service.
    """

    name = "get42"
    version = "1.0"

    @exposed
    def get42(self) -> int:
        """
        The answer.
        """
        return 42

