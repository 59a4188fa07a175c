"""
An administration device and a Mesh portal in memory, for the tests of
answering connection requests on a device (L{pzp.meshanswer},
L{pzp.meshapprovals}).

The device's C{mesh/} directory is made by C{pzctl mesh create}'s own code
(L{pzp.meshcommands.CreateVerb}), against a portal reached through a
L{treq.testing.StubTreq}; new devices then ask to join its account.
"""

from datetime import datetime, timezone
from types import SimpleNamespace

from treq.testing import StubTreq
from twisted.internet.defer import ensureDeferred
from twisted.web.resource import Resource

from pz.mesh.client import MeshClient
from pz.mesh.device import MeshDevice
from pz.mesh.messages import ConnectStartRequest
from pz.mesh.model import ConnectionRequest
from pz.mesh.signing import sign
from pzh.portal.resource import wellKnown
from pzp.meshcommands import CreateVerb
from tests.mesh.portal._support import PortalFixture, makeDevice

__all__ = ["MeshAdmin", "PORTAL_URL"]

PORTAL_URL = "https://portal.example/"


class MeshAdmin:
    """
    A portal, and a device (C{device}, its L{MeshDevice}) that created
    the account C{alice} there and so administers it.
    """

    def __init__(self, testCase, account: str = "alice") -> None:
        self.testCase = testCase
        self.portal = PortalFixture(testCase)
        root = Resource()
        root.putChild(b".well-known", wellKnown(self.portal.service, maxBody=65536))
        self.stub = StubTreq(root)
        self.client = MeshClient(PORTAL_URL, self.stub)
        self.dataDir = testCase.mktemp()
        self.device = MeshDevice(self.dataDir)
        self.account = account
        context = SimpleNamespace(
            device=self.device, client=self.client, ca=None,
            args=SimpleNamespace(account=account, name="laptop"))
        self.resolve(ensureDeferred(CreateVerb().main(context)))

    def resolve(self, d, rounds: int = 50):
        """
        Pump the portal until C{d} fires; its result (or failure).
        """
        for _ in range(rounds):
            if d.called and not d.paused:
                break
            self.portal.flush(self.stub)
        return d

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.portal.clock.seconds(), timezone.utc)

    def ask(self, name: str = "tablet"):
        """
        A new device called C{name} asks to join the account; return it
        (its C{udf} names the request).
        """
        from pz.mesh.signing import unverifiedPayload

        device = makeDevice(name)
        profile = unverifiedPayload(self.device.personal())
        request = sign(ConnectionRequest(ParentUDF=profile.Identifier, Device=device.profile),
                       device.keys.signature)
        response = self.portal.service.dispatch(
            ConnectStartRequest(AccountID=self.account, SignedRequest=request))
        self.testCase.assertEqual(response.Status, 201, response.StatusDescription)
        return device

    def pending(self) -> list:
        """
        The UDFs of the requests pending on the portal.
        """
        return [r.device for r in self.portal.store.allPending(100)]
