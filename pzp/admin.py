# -*- test-case-name: tests.pzp.test_proxy -*-
"""
The proxy's admin commands, served on its admin socket to C{pzctl}.
"""

from zope.interface import implementer

from pz.admin import IAdminCommands, commandTable
from pz.errors import ZoneError

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

    @commands.handler("services")
    def command_services(self) -> dict:
        """
        Every service this device can see, and by which path.
        """
        return {"services": self._proxy.findServices()}

    @commands.handler("call")
    def command_call(self, to: str, service: str, method: str, params=None,
                     timeout: float = None):
        """
        Call a service of a device of the zone; answers with its result
        and the path it took.
        """
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ZoneError("BAD_REQUEST", "call's 'timeout' must be a positive number")
        return self._proxy.callVia(to, service, method, params, timeout)

    @commands.handler("peers")
    def command_peers(self) -> dict:
        """
        Each known device's Peer machine state.
        """
        return {"peers": self._proxy.peerStatus()}

    @commands.handler("peer_invite")
    def command_peerInvite(self, host: str = None) -> dict:
        """
        A one-time peer-exchange code for this device.
        """
        if host is not None and (not isinstance(host, str) or not host or len(host) > 253):
            raise ZoneError("BAD_REQUEST", "peer-invite's 'host' must be a host name or address")
        return self._proxy.peerInvite(host)

    @commands.handler("peer_exchange")
    def command_peerExchange(self, code: str):
        """
        Link once with the device of another zone a peer-exchange code
        names.
        """
        return self._proxy.peerExchange(code)

    @commands.handler("peer_close")
    def command_peerClose(self, device: str) -> dict:
        """
        Close a one-time peer link.
        """
        if not isinstance(device, str):
            raise ZoneError("BAD_REQUEST", "peer-close needs a device id")
        return self._proxy.peerClose(device)

    @commands.handler("prompts")
    def command_prompts(self) -> dict:
        """
        The prompts waiting for an answer.
        """
        return {"prompts": self._proxy.waitingPrompts()}

    @commands.handler("answer")
    def command_answer(self, id: str, permit: bool, scope: str = None) -> dict:
        """
        Answer a waiting prompt: permit or deny, for this call, the
        session or always.
        """
        return self._proxy.answerPrompt(id, permit, scope)
