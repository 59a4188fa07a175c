"""
Tests for L{pz.link}: the base every zone link is built on, as client and
as server, over an in-memory connection.
"""

from twisted.internet.interfaces import ITCPTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pz.dispatch import MessageTable, Text
from pz.errors import ZoneError
from pz.link import ClockOwner, ILinkOwner, Link, noDelay, zoneErrorFrom


@implementer(ILinkOwner)
class _Owner:
    def __init__(self, clock) -> None:
        self.clock = clock


class _Echo(Link):
    """
    A link that answers C{ask} with C{told}, or with an error when asked
    to, and matches answers to its own requests.
    """

    messages = MessageTable()
    requestTimeout = 5.0

    def connectionMade(self) -> None:
        self.setTimeout(60)

    @messages.handler("ask", word=Text())
    def _ask(self, envelope, word):
        if word == "no":
            raise ZoneError("NOT_AUTHORISED", "not that word")
        self.sendMessage(envelope.sender, {"status": "told", "ref": envelope.id, "word": word})

    @messages.handler("told")
    @messages.handler("error")
    def _answer(self, envelope):
        self.answered(envelope.payload)


class LinkTests(SynchronousTestCase):
    """
    Requests and answers by id, in both directions; timeouts; the end.
    """

    def setUp(self):
        self.clock = Clock()
        owner = _Owner(self.clock)

        def make(name):
            link = _Echo(owner)
            link.localId = name
            link.peerId = "server" if name == "client" else "client"
            return link

        self.client, self.server, self.pump = connectedServerAndClient(
            lambda: make("server"), lambda: make("client"), clock=self.clock)

    def test_ownerChecked(self):
        """
        A link refuses, when it is made, an owner that does not provide its
        owner interface.
        """
        self.assertRaises(TypeError, _Echo, self.clock)
        self.assertTrue(verifyObject(ILinkOwner, ClockOwner(self.clock)))
        self.assertIs(_Echo(ClockOwner(self.clock)).clock, self.clock)

    def test_requestBothWays(self):
        """
        Either end's request fires with the answer that names it.
        """
        fromClient = self.client.request("server", {"status": "ask", "word": "hi"})
        fromServer = self.server.request("client", {"status": "ask", "word": "ho"})
        self.pump.flush()
        self.assertEqual(self.successResultOf(fromClient)["word"], "hi")
        self.assertEqual(self.successResultOf(fromServer)["word"], "ho")

    def test_errorAnswer(self):
        """
        An error answering a request fails it with the error's code;
        refusals of the declared fields come back the same way.
        """
        refused = self.client.request("server", {"status": "ask", "word": "no"})
        malformed = self.client.request("server", {"status": "ask", "word": 5})
        self.pump.flush()
        self.assertEqual(self.failureResultOf(refused, ZoneError).value.code, "NOT_AUTHORISED")
        error = self.failureResultOf(malformed, ZoneError).value
        self.assertEqual(error.code, "BAD_ENVELOPE")
        self.assertIn("'word'", error.message)

    def test_timeout(self):
        """
        A request nobody answers fails with C{TIMEOUT} after the link's
        request timeout, and a late answer is dropped.
        """
        d = self.client.request("server", {"status": "ask", "word": "hi"})
        self.clock.advance(5)
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "TIMEOUT")
        self.pump.flush()
        self.assertEqual(self.client._pending, {})

    def test_unmatched(self):
        """
        An answer naming no waiting request is reported as such.
        """
        self.assertFalse(self.client.answered({"status": "told", "ref": "nothing"}))
        self.assertFalse(self.client.answered({"status": "told", "ref": 5}))

    def test_lost(self):
        """
        Requests still waiting when the link closes fail with
        C{NOT_CONNECTED}, and their timers are cancelled.
        """
        d = self.client.request("server", {"status": "ask", "word": "hi"})
        self.client.transport.loseConnection()
        self.pump.flush()
        self.assertEqual(self.failureResultOf(d, ZoneError).value.code, "NOT_CONNECTED")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idleTimeout(self):
        """
        Every frame resets the idle timer; a silent peer is dropped.
        """
        self.clock.advance(50)
        self.server.sendMessage("client", {"status": "told", "ref": "x"})
        self.pump.flush()
        self.clock.advance(50)
        self.assertFalse(self.client.transport.disconnected)
        self.clock.advance(10)
        self.pump.flush()
        self.assertTrue(self.client.transport.disconnected)

    def test_zoneErrorFrom(self):
        """
        An error payload becomes its L{ZoneError}; an unknown code becomes
        C{INTERNAL} naming it.
        """
        self.assertEqual(zoneErrorFrom({"code": "TIMEOUT", "message": "m"}).code, "TIMEOUT")
        error = zoneErrorFrom({"code": "NEW_CODE", "message": "m"})
        self.assertEqual((error.code, error.message), ("INTERNAL", "NEW_CODE: m"))


@implementer(ITCPTransport)
class _TCP(StringTransport):
    """
    The TCP connection at the bottom: records whether Nagle's algorithm was
    turned off.
    """

    noDelay = False

    def setTcpNoDelay(self, enabled) -> None:
        self.noDelay = enabled

    def getTcpNoDelay(self) -> bool:
        return self.noDelay


class _Layer:
    """
    A layer over another transport (as TLS and a link's queue are).
    """

    def __init__(self, transport) -> None:
        self.transport = transport


class NoDelayTests(SynchronousTestCase):
    """
    A link turns Nagle's algorithm off on the TCP connection under it: a
    forwarded message otherwise waited in the kernel for the peer's next
    message (the under-attack benchmark's 20 ms round trips).
    """

    def test_underLayers(self):
        """
        The TCP connection below the TLS and queueing layers is told.
        """
        tcp = _TCP()
        noDelay(_Layer(_Layer(tcp)))
        self.assertTrue(tcp.noDelay)

    def test_linkTurnsItOff(self):
        """
        A link made over a TCP connection turns Nagle's algorithm off when
        the connection is made.
        """
        tcp = _TCP()
        link = _Echo(_Owner(Clock()))
        link.makeConnection(_Layer(tcp))
        self.assertTrue(tcp.noDelay)

    def test_notTCP(self):
        """
        A transport that is not TCP (a UNIX socket, a test's transport) is
        left alone.
        """
        transport = StringTransport()
        noDelay(_Layer(transport))
        self.assertFalse(hasattr(transport, "noDelay"))
