"""
Adding a message to both ends of the hub link: one handler per end, each
declared with the message's fields, and nothing else.  The C{sample}
message and its answer C{sampled} exist only here; they go through the
real dispatch path, a real hub and a real device link over TLS in memory.
"""

from twisted.trial.unittest import SynchronousTestCase

from pz import tls
from pz.dispatch import MessageTable, Text
from pz.errors import ZoneError
from pzh.router import Router
from pzp.hublink import HubLinkProtocol
from pzp.inbox import Inbox
from pz.testing import HOST, ZONE, MemoryHub
from tests.pzp._support import FakeProxy, enrolledCredentials, flush


class SampleRouter(Router):
    """
    The hub's end: C{sample} answered with its word in capitals.
    """

    messages = MessageTable(Router.messages)

    @messages.handler("sample", word=Text(maxLength=16))
    def _sample(self, link, envelope, word):
        link.sendMessage(link.deviceId, {"status": "sampled", "ref": envelope.id,
                                         "word": word.upper()})


class SampleLink(HubLinkProtocol):
    """
    The device's end: C{sampled} answers the request it names.
    """

    messages = MessageTable(HubLinkProtocol.messages)

    @messages.handler("sampled", word=Text())
    def _sampled(self, envelope, word):
        self.answered(envelope.payload)


class AddedMessageTests(SynchronousTestCase):
    """
    A message added at both ends works end to end, with its fields checked
    by its declarations, and the ends without it still refuse it.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, onDisk=False)
        self.clock = self.fixture.clock
        hub = self.fixture.hub
        self.plainRouter = hub.router
        hub.router = SampleRouter(ZONE, hub.registry, hub.store, hub.authority,
                                  maxFrame=hub.maxFrame, crlChanged=hub.pushCRL)
        self.pumps = []

    def connect(self, name, linkClass=SampleLink):
        creds = enrolledCredentials(self.fixture, name)
        link = linkClass(FakeProxy(self.clock, creds, Inbox(self.mktemp(), self.clock)))
        options = tls.pzpClientOptions(creds.caCert, creds.key, creds.cert, HOST)
        self.pumps.append(self.fixture.connectProtocol(options, link).pump)
        self.successResultOf(link.registered)
        return link

    def test_roundTrip(self):
        """
        The device's request reaches the hub's handler with the checked
        word, and the hub's answer reaches the device's handler, which
        fires the request.
        """
        phone = self.connect("phone")
        d = phone.request(ZONE, {"status": "sample", "word": "hello"})
        flush(*self.pumps)
        self.assertEqual(self.successResultOf(d)["word"], "HELLO")

    def test_declaredFields(self):
        """
        A C{sample} whose word is missing, not text or too long is refused
        by the hub with C{BAD_ENVELOPE} naming the field, before its
        handler runs.
        """
        phone = self.connect("phone")
        for payload in ({}, {"word": 5}, {"word": "x" * 17}):
            d = phone.request(ZONE, dict(payload, status="sample"))
            flush(*self.pumps)
            error = self.failureResultOf(d, ZoneError).value
            self.assertEqual(error.code, "BAD_ENVELOPE")
            self.assertIn("sample: field 'word'", error.message)
        self.assertFalse(phone.transport.disconnected)

    def test_endsWithoutIt(self):
        """
        The hub and the device link as shipped do not handle the message:
        C{UNKNOWN_MESSAGE}, as for any name nobody declared.
        """
        self.fixture.hub.router = self.plainRouter
        phone = self.connect("phone", HubLinkProtocol)
        d = phone.request(ZONE, {"status": "sample", "word": "hello"})
        flush(*self.pumps)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "UNKNOWN_MESSAGE")
        self.assertNotIn("sample", HubLinkProtocol.messages.names())
        self.assertNotIn("sample", Router.messages.names())
