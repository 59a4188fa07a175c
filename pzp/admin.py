# -*- test-case-name: tests.pzp.test_proxy -*-
"""
The proxy's admin commands, served on its admin socket to C{pzctl}.
"""

from zope.interface import implementer

from pz.admin import IAdminCommands, commandTable

__all__ = ["ProxyAdmin"]


@implementer(IAdminCommands)
class ProxyAdmin:
    """
    Admin commands of a running proxy.
    """

    name = "pzp"

    commands = commandTable()

    def __init__(self, proxy) -> None:
        self._proxy = proxy

    @commands.handler("status")
    def command_status(self) -> dict:
        """
        Mode, state, zone and hub of this device.
        """
        return self._proxy.status()

    @commands.handler("sync")
    def command_sync(self):
        """
        Scan the items and synchronise with the hub now; answers once
        every transfer this started has finished.
        """
        return self._proxy.syncNow()

    @commands.handler("conflicts")
    def command_conflicts(self) -> dict:
        """
        The losing versions kept under C{zone/conflicts/}.
        """
        return {"conflicts": self._proxy.conflicts()}

    @commands.handler("send")
    def command_send(self, to: str, text: str, queue: bool = False):
        """
        Send a text message; answers once the other device acknowledged it
        or, with C{queue} and that device offline, once the hub kept it.
        """
        d = self._proxy.send(to, text, queue)
        return d.addCallback(lambda answer: {
            "to": to,
            "delivered": answer.get("status") != "queued",
            "queued": answer.get("status") == "queued",
        })
