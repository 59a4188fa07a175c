# -*- test-case-name: tests.pzh.test_admin -*-
"""
The hub's admin commands, served on its admin socket to C{pzctl}.

Only what needs the running process lives here (who is connected now);
what the store alone can answer, C{pzctl} reads from the store itself so it
works while the hub is stopped too.
"""

from zope.interface import implementer

from pz.admin import IAdminCommands, commandTable
from pz.errors import ZoneError

__all__ = ["HubAdmin"]


@implementer(IAdminCommands)
class HubAdmin:
    """
    Admin commands of a running hub.
    """

    name = "pzh"

    commands = commandTable()

    def __init__(self, hub, auth=None) -> None:
        """
        @param auth: the web port's L{pzh.adminauth.AdminAuth}, or L{None}
            if the hub serves no web port.
        """
        self._hub = hub
        self._auth = auth

    def _adminAuth(self):
        if self._auth is None:
            raise ZoneError("BAD_REQUEST", "this hub serves no web port (it runs with "
                                           "--web-port 0), so there is no admin page")
        return self._auth

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

    @commands.handler("admin_link")
    def command_admin_link(self) -> dict:
        """
        A new one-time sign-in link to the admin page: its URL, the id
        the hub's log names it by, and when it expires.
        """
        auth = self._adminAuth()
        tokenId, url = auth.newLink()
        return {"url": url, "id": tokenId,
                "expires": self._hub.clock.seconds() + auth.linkLifetime}

    @commands.handler("invite_zone")
    def command_invite_zone(self) -> dict:
        """
        A one-time invitation for another zone's hub
        (L{pzh.friends.Friends.invite}).
        """
        return self._hub.friends.invite()

    @commands.handler("accept_zone")
    def command_accept_zone(self, code: str):
        """
        Accept another zone's invitation: dial its hub, check its CA
        against the code's fingerprint, trust it, and keep a link with it.
        """
        from pzh.befriend import acceptInvitation

        hub = self._hub
        d = acceptInvitation(hub.clock, hub.zone, code)

        def trusted(invited) -> dict:
            record = hub.friends.accepted(invited.zoneId, invited.caCert, invited.host,
                                          invited.port)
            return {"zone": record.zoneId, "fingerprint": record.fingerprint,
                    "hub": f"{record.host}:{record.port}"}

        return d.addCallback(trusted)

    @commands.handler("zones")
    def command_zones(self) -> list:
        """
        The friend zones, with their CA fingerprints and link states.
        """
        return self._hub.zoneLinks.listing()

    @commands.handler("untrust_zone")
    def command_untrust_zone(self, zone: str) -> dict:
        """
        Stop trusting a friend zone; its live links close before this
        answers.
        """
        return self._hub.friends.untrust(zone)

    @commands.handler("admin_logout")
    def command_admin_logout(self) -> dict:
        """
        Sign every admin session out and void the links not used yet.
        """
        return {"sessions": self._adminAuth().logout()}
