# -*- test-case-name: tests.pzh.test_admin -*-
"""
The hub's admin commands, served on its admin socket to C{pzctl}.

Only what needs the running process lives here (who is connected now);
what the store alone can answer, C{pzctl} reads from the store itself so it
works while the hub is stopped too.
"""

from zope.interface import implementer

from pz.admin import IAdminCommands, commandTable

__all__ = ["HubAdmin"]


@implementer(IAdminCommands)
class HubAdmin:
    """
    Admin commands of a running hub.
    """

    name = "pzh"

    commands = commandTable()

    def __init__(self, hub) -> None:
        self._hub = hub

    @commands.handler("ping")
    def command_ping(self) -> dict:
        """
        Answer that the hub runs, with its zone id.
        """
        return {"zone": self._hub.zone.zoneId}

    @commands.handler("connected")
    def command_connected(self) -> dict:
        """
        The devices connected now, with address and last frame time.
        """
        return self._hub.connectedDevices()

    @commands.handler("conflicts")
    def command_conflicts(self) -> dict:
        """
        The hub's own versions that lost a synchronisation conflict, kept
        under C{DATA/zone/conflicts/}.
        """
        return {"conflicts": self._hub.sync.engine.conflicts() if self._hub.sync else []}

    @commands.handler("revoke")
    def command_revoke(self, device: str) -> dict:
        """
        Revoke a device: CRL signed and stored, its link dropped, the CRL
        pushed to every connected device, all before this answers.
        """
        return self._hub.revoke(device)
