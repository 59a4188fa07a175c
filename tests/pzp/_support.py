"""
What the device's tests share beyond L{pz.testing}: a stand-in for the
proxy as the hub link sees it, credentials as a device keeps them, a large CRL, and a record of what the hub receives.
"""

from twisted.internet.defer import Deferred
from zope.interface import implementer

from pz import pki
from pz.testing import HOST, HUB_PORT, ZONE, flushPumps, prop as _prop
from pzh.protocol import HubProtocol
from pz.zoneservice import ServiceRegistry
from pzp.calls import CallWorker
from pzp.interfaces import IHubLinkOwner
from pzp.proxy import ProxySettings
from pzp.zonedir import Credentials

__all__ = [
    "FakeProxy", "RecordingHubInputs", "SMALL_FRAME", "enrolledCredentials", "growCRL", "recordHubEnvelopes", "prop", "flush",
]

#: A frame limit for devices in tests with a large CRL: room for one piece
#: (L{pz.crlparts.PIECE}) and its envelope, not for the whole CRL.
SMALL_FRAME = 70 * 1024


def prop(payload: dict, to: str = "", sender: str = ZONE, msgId: str = "m1") -> dict:
    """
    A C{prop} envelope, from the hub unless told otherwise.
    """
    return _prop(payload, to, sender, msgId)


def flush(*pumps) -> None:
    """
    Pump every connection until none moves.
    """
    flushPumps(pumps)


def enrolledCredentials(fixture, name: str) -> Credentials:
    """
    Enrol a device with C{fixture}'s hub and return what its zone
    directory would hold.
    """
    key, cert = fixture.enrolDevice(name, HOST)
    return Credentials(
        zoneId=fixture.zoneId, deviceId=fixture.deviceId(name), hubHost=HOST, hubPort=HUB_PORT,
        key=key, cert=cert, caCert=fixture.zone.caCert, crl=fixture.crl,
    )


def growCRL(fixture, count: int = 3000):
    """
    Revoke C{count} certificates of a device long gone and publish the CRL,
    now larger than L{SMALL_FRAME} (some 130 KB); return it.
    """
    notAfter = fixture.clock.seconds() + 86400
    for i in range(count):
        serial = 10 ** 30 + i * 7919
        fixture.store.addCertificate(f"{ZONE}/gone", serial, notAfter)
        fixture.store.addRevocation(f"{ZONE}/gone", serial, fixture.clock.seconds())
    crl = fixture.hub.authority.publishCRL()
    assert len(pki.crlPEM(crl)) > 1.5 * SMALL_FRAME
    return crl


def recordHubEnvelopes(testCase) -> list:
    """
    Record the name of every envelope the hub's protocol receives.
    """
    seen = []
    original = HubProtocol.envelopeReceived

    def envelopeReceived(self, envelope):
        seen.append(envelope.name)
        return original(self, envelope)

    testCase.patch(HubProtocol, "envelopeReceived", envelopeReceived)
    return seen


class RecordingHubInputs:
    """
    The one Hub machine input a link feeds: C{lost}.
    """

    def __init__(self) -> None:
        self.lostReasons = []

    def lost(self, reason) -> None:
        self.lostReasons.append(reason)


@implementer(IHubLinkOwner)
class FakeProxy:
    """
    What L{HubLinkProtocol} uses of the proxy (L{IHubLinkOwner}), recording
    what it is told.
    """

    def __init__(self, clock, credentials, inbox, settings=ProxySettings()) -> None:
        self.clock = clock
        self.settings = settings
        self.credentials = credentials
        self.inbox = inbox
        self.calls = CallWorker(ServiceRegistry(), clock)
        self.hubInputs = RecordingHubInputs()
        self.meshApprovals = None
        self.updates = []
        self.crls = []
        self.renewals = []
        self.synced = []

    def peersUpdated(self, update) -> None:
        self.updates.append(update)

    def crlReceived(self, crl) -> None:
        self.crls.append(crl)

    def syncReceived(self, payload) -> None:
        self.synced.append(payload)

    def renew(self, link) -> Deferred:
        d = Deferred()
        self.renewals.append((link, d))
        return d
