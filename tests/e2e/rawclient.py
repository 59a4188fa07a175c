"""
A bare TLS client for end-to-end tests: it connects to a real hub, sends
whatever frames the test gives it, and collects every frame the hub sends
until the hub closes the link.  It is how the tests play a stranger, a
device with a foreign certificate, or a device that lies.
"""

import json

from twisted.internet import defer, reactor
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.protocols.basic import Int32StringReceiver
from zope.interface import implementer


@implementer(IHandshakeListener)
class _Collector(Int32StringReceiver):
    def __init__(self, toSend, waitFor) -> None:
        self._toSend = toSend
        self._waitFor = waitFor
        self.frames = []
        self.done = defer.Deferred()
        self.handshaken = False

    def handshakeCompleted(self) -> None:
        self.handshaken = True
        if self._waitFor is None:
            self._sendAll()

    def _sendAll(self) -> None:
        for frame in self._toSend:
            self.sendString(json.dumps(frame).encode("utf-8"))

    def stringReceived(self, data: bytes) -> None:
        frame = json.loads(data)
        self.frames.append(frame)
        if self._waitFor is not None and frame["payload"].get("status") == self._waitFor:
            self._waitFor = None
            self._sendAll()

    def connectionLost(self, reason) -> None:
        self.done.callback(self.frames)


@defer.inlineCallbacks
def exchange(port: int, options, frames=(), waitFor=None, timeout: float = 10.0):
    """
    Connect to 127.0.0.1:C{port} with TLS C{options}; after the handshake
    (or after a frame whose status is C{waitFor}) send C{frames}; fire with
    every frame received before the hub closed the link (or C{timeout}).
    """
    protocol = _Collector(list(frames), waitFor)
    endpoint = wrapClientTLS(options, HostnameEndpoint(reactor, "127.0.0.1", port))
    yield connectProtocol(endpoint, protocol)
    timer = reactor.callLater(timeout, protocol.transport.loseConnection)
    frames = yield protocol.done
    if timer.active():
        timer.cancel()
    return frames


def envelope(status: str, to: str = "", sender: str = "", **payload) -> dict:
    """
    A frame as a test wants to send it.
    """
    return {"type": "prop", "from": sender, "to": to, "id": "t1",
            "payload": dict(status=status, **payload)}
