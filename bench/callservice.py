"""
The service device B runs in the calls benchmark (L{bench.calls}):
C{twistd pzp --service bench.callservice:Echo}.

An echo returns its argument, so a call's answer is as large as its
request and the round trip measures the links and the call machinery, not
the work of a method.
"""

from pz.zoneservice import ZoneService, exposed

__all__ = ["Echo"]


class Echo(ZoneService):
    """
    C{echo.echo(value)}: returns C{value} unchanged.
    """

    name = "echo"
    version = "1.0"

    @exposed
    def echo(self, value):
        """
        The caller's own value back: any JSON the call layer admits.
        """
        return value
