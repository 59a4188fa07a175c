# -*- test-case-name: tests.pz.test_link -*-
"""
The base of every zone link: one TLS connection carrying envelopes.

What every link does is here, once: framing and refusing bad frames
(L{pz.wire.FrameProtocol}), the peer's certificate read when the handshake
completes (C{IHandshakeListener}), an idle timeout reset by every frame
(C{TimeoutMixin}), dispatch of each envelope through the link's message
table (L{pz.dispatch}), and requests matched to their answers by id, with a
timeout, in either direction.  A link knows its owner only through the
interface it declares (L{Link.ownerInterface}), which is checked when the
link is made, so a wrong owner fails there rather than at the first message
(as magic-wormhole's C{wire()} adapts each collaborator).

A kind of link is a subclass that declares its owner's interface and its
C{messages}, and decides, in L{Link.certificateReceived}, what the peer's
certificate admits.
"""

from typing import Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, ITCPTransport
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import Attribute, Interface, implementer

from pz.dispatch import BoundTable, MessageTable
from pz.errors import ZoneError
from pz.tls import peerCertificate
from pz.wire import Envelope, FrameProtocol

__all__ = ["ILinkOwner", "Link", "ClockOwner", "NoAnswer", "noDelay", "zoneErrorFrom"]


class ILinkOwner(Interface):
    """
    What every link needs from whoever owns it.
    """

    clock = Attribute("an IReactorTime: idle and request timeouts run on it")


class NoAnswer(ZoneError):
    """
    A request got no answer at all: C{TIMEOUT}, or C{NOT_CONNECTED} when
    the link closed first.  (An answer that is an error is a plain
    L{ZoneError}, with the code the other end sent.)
    """


@implementer(ILinkOwner)
@attrs.frozen
class ClockOwner:
    """
    The owner of a link that reports to its caller through Deferreds and
    needs nothing of anybody but a clock (an enrolment attempt).
    """

    clock: object


def noDelay(transport) -> None:
    """
    Turn Nagle's algorithm off on the TCP connection under C{transport} (and
    its TLS and queueing layers), if there is one.

    A zone link carries small messages each waiting for an answer.  With
    Nagle's algorithm a small write waits while an earlier one is still
    unacknowledged, and the peer's acknowledgement may itself be delayed
    until it next sends: a forwarded message then sat in the kernel until
    the sender's next message came, about 20 ms for a device sending every
    20 ms, whatever the hub was doing.
    """
    # The TLS and queueing layers pass TCP's methods through, so only the
    # bottom transport is asked.
    for _ in range(4):
        below = getattr(transport, "transport", None)
        if below is None:
            break
        transport = below
    if ITCPTransport.providedBy(transport):
        transport.setTcpNoDelay(True)


@implementer(IHandshakeListener)
class Link(FrameProtocol, TimeoutMixin):
    """
    One end of a zone link.

    @cvar ownerInterface: the interface the owner must provide.
    @cvar messages: the message table of this kind of link.
    @cvar requestTimeout: seconds a L{request} waits for its answer.
    @ivar owner: the owner, as its interface.
    """

    ownerInterface = ILinkOwner
    messages = MessageTable()
    requestTimeout = 30.0
    _log = Logger()

    #: Why requests still waiting fail when the link closes.
    lostBeforeAnswer = "the link closed before an answer came"

    def __init__(self, owner) -> None:
        self.owner = self.ownerInterface(owner)
        self.clock = self.owner.clock
        self.callLater = self.clock.callLater
        self._pending: dict = {}

    def makeConnection(self, transport) -> None:
        noDelay(transport)
        super().makeConnection(transport)

    # -- identity -------------------------------------------------------------

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is done: the peer's certificate (or None) goes to
        L{certificateReceived}.
        """
        self.certificateReceived(peerCertificate(self.transport))

    def certificateReceived(self, certificate) -> None:
        """
        Decide what the peer's certificate admits; a subclass that trusts
        only some peers closes the link here.
        """

    # -- frames and messages --------------------------------------------------

    def stringReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self.frameReceived(data)

    def frameReceived(self, data: bytes) -> None:
        """
        One frame's body, after the idle timer was reset: decoded and
        dispatched (or refused) by L{FrameProtocol}.
        """
        FrameProtocol.stringReceived(self, data)

    def envelopeReceived(self, envelope: Envelope) -> None:
        self.currentMessages().dispatchEnvelope(envelope)

    def currentMessages(self) -> BoundTable:
        """
        The table this link dispatches through now; a link whose peer may
        send different messages before and after some event (registration)
        answers with the table of its state.
        """
        return self.messages

    # -- requests -------------------------------------------------------------

    def request(self, to: str, payload: dict, timeout: Optional[float] = None) -> Deferred:
        """
        Send C{payload} to C{to}; the result fires with the payload of the
        answer naming it (C{ref}), or fails with the L{ZoneError} an error
        answer carries, or a L{NoAnswer}: C{TIMEOUT}, or C{NOT_CONNECTED}
        if the link closes first.
        """
        msgId = self.sendMessage(to, payload)
        d: Deferred = Deferred()

        def expire() -> None:
            self._pending.pop(msgId, None)
            d.errback(NoAnswer("TIMEOUT", f"{to} did not answer"))

        delay = self.requestTimeout if timeout is None else timeout
        self._pending[msgId] = (d, self.clock.callLater(delay, expire))
        return d

    def answered(self, payload: dict) -> bool:
        """
        Fire the request C{payload} answers (by its C{ref}), with it or, for
        an C{error}, with its L{ZoneError}.

        @return: whether a request was waiting for it.
        """
        ref = payload.get("ref")
        waiting = self._pending.pop(ref, None) if isinstance(ref, str) else None
        if waiting is None:
            return False
        d, timer = waiting
        timer.cancel()
        if payload.get("status") == "error":
            d.errback(zoneErrorFrom(payload))
        else:
            d.callback(payload)
        return True

    # -- the end --------------------------------------------------------------

    def timeoutConnection(self) -> None:
        self._log.info("link to {peer} went silent; closing it", peer=self.peerId or "?")
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.setTimeout(None)
        pending, self._pending = self._pending, {}
        for d, timer in pending.values():
            timer.cancel()
            d.errback(NoAnswer("NOT_CONNECTED", self.lostBeforeAnswer))


def zoneErrorFrom(payload: dict) -> ZoneError:
    """
    The L{ZoneError} an error payload describes (C{INTERNAL} for a code
    this version does not know).
    """
    code = payload.get("code")
    message = str(payload.get("message", ""))
    try:
        return ZoneError(code, message)
    except (ValueError, TypeError):
        return ZoneError("INTERNAL", f"{code}: {message}")
