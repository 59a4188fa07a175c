"""
The memory test's client: one Twisted process that opens C{--count}
mutual-TLS device links and keeps them open, idle.

Each link uses its own device certificate, with the project's own device
TLS options (L{pz.tls.pzpClientOptions}: trust only the zone CA, check the
server's address, present the device certificate).  Links are opened with
at most C{--inflight} connecting at once; a link is I{up} when, with
C{--mode hub}, the hub's first frame says C{registered}, or, with
C{--mode tls}, when the TLS handshake has completed.  The client keeps
reading every socket and discards what arrives (the hub sends each device
C{pzpUpdate} frames as the others join), and sends nothing.

It reports on standard output, one JSON object a line:

  - C{{"event": "up", ...}} once every link is up (or C{--ramp-timeout}
    passed), with counts and the ramp time;
  - C{{"event": "final", ...}} when a line C{stop} arrives on standard
    input, or C{--max-time} passed, after which it closes everything and
    exits.

    python -m bench.hold --port P --certs DIR --count 5000 [--mode hub|tls]
"""

import argparse
import json
import os
import struct
import time

from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from bench.serve import raiseFileLimit
from pz import pki
from pz.tls import pzpClientOptions


@implementer(IHandshakeListener)
class Link(Protocol):
    """
    One idle device link.
    """

    def __init__(self, holder, name: str) -> None:
        self.holder = holder
        self.name = name
        self.up = False
        self.settled = False
        self.buffer = b""

    def handshakeCompleted(self) -> None:
        if self.holder.mode == "tls":
            self.holder.linkUp(self)

    def dataReceived(self, data: bytes) -> None:
        self.holder.bytesReceived += len(data)
        if self.up or self.holder.mode != "hub":
            return
        self.buffer += data
        if len(self.buffer) < 4:
            return
        (length,) = struct.unpack(">I", self.buffer[:4])
        if len(self.buffer) < 4 + length:
            return
        frame = json.loads(self.buffer[4 : 4 + length])
        self.buffer = b""
        payload = frame.get("payload", {})
        if payload.get("status") == "registered" and str(payload.get("device", "")).endswith(
            "/" + self.name
        ):
            self.holder.linkUp(self)
        else:
            self.holder.linkFailed(self, f"not registered: {payload}")
            self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        self.holder.linkLost(self, reason)


class Holder:
    """
    Opens the links, counts them, reports.
    """

    def __init__(self, reactor, args) -> None:
        self.reactor = reactor
        self.args = args
        self.mode = args.mode
        self.pending = [f"dev{index:05d}" for index in range(args.count)]
        self.pending.reverse()
        self.attempts = {}
        self.inflight = 0
        self.upCount = 0
        self.failed = 0
        self.lostAfterUp = 0
        self.bytesReceived = 0
        self.firstError = None
        self.links = []
        self.started = time.monotonic()
        self.upAt = None
        self.rampOver = False
        self.stopping = False
        self.caCert = pki.readCertificate(os.path.join(args.certs, "ca.pem"))

    def options(self, name: str):
        base = os.path.join(self.args.certs, name)
        return pzpClientOptions(
            self.caCert, pki.readPrivateKey(base + ".key"), pki.readCertificate(base + ".pem"),
            self.args.host,
        )

    def fill(self) -> None:
        while self.pending and self.inflight < self.args.inflight and not self.rampOver:
            name = self.pending.pop()
            self.attempts[name] = self.attempts.get(name, 0) + 1
            self.inflight += 1
            endpoint = wrapClientTLS(
                self.options(name),
                TCP4ClientEndpoint(self.reactor, self.args.host, self.args.port, timeout=30),
            )
            link = Link(self, name)
            d = endpoint.connect(Factory.forProtocol(lambda link=link: link))
            d.addErrback(lambda f, link=link: self.linkFailed(link, f.getErrorMessage()))
        if not self.rampOver and not self.pending and self.inflight == 0:
            self.endRamp()

    def linkUp(self, link: Link) -> None:
        if link.up or link.settled:
            return
        link.up = link.settled = True
        self.links.append(link)
        self.inflight -= 1
        self.upCount += 1
        self.fill()

    def linkFailed(self, link: Link, why: str) -> None:
        if link.settled:
            return
        link.settled = True
        self.inflight -= 1
        if self.firstError is None:
            self.firstError = f"{link.name}: {why}"
        if self.attempts.get(link.name, 0) < 3 and not self.rampOver:
            self.pending.append(link.name)
        else:
            self.failed += 1
        self.fill()

    def linkLost(self, link: Link, reason) -> None:
        if not link.up:
            self.linkFailed(link, f"closed before it was up: {reason.getErrorMessage()}")
        elif not self.stopping:
            self.lostAfterUp += 1
            if self.firstError is None:
                self.firstError = f"{link.name} lost: {reason.getErrorMessage()}"

    def endRamp(self) -> None:
        if self.rampOver:
            return
        self.rampOver = True
        self.upAt = time.monotonic()
        self.report("up")

    def report(self, event: str) -> None:
        now = time.monotonic()
        print(json.dumps({
            "event": event,
            "mode": self.mode,
            "up": self.upCount,
            "failed": self.failed,
            "lost_after_up": self.lostAfterUp,
            "open": sum(1 for link in self.links if link.transport.connected),
            "ramp_seconds": round((self.upAt or now) - self.started, 3),
            "bytes_received": self.bytesReceived,
            "first_error": self.firstError,
        }), flush=True)

    def stop(self) -> None:
        if self.stopping:
            return
        self.endRamp()
        self.stopping = True
        self.report("final")
        if self.reactor.running:
            self.reactor.stop()


class Control(LineReceiver):
    delimiter = b"\n"

    def __init__(self, holder) -> None:
        self.holder = holder

    def lineReceived(self, line: bytes) -> None:
        if line.strip() == b"stop":
            self.holder.stop()

    def connectionLost(self, reason) -> None:
        self.holder.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hold")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--mode", choices=["hub", "tls"], default="tls")
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--ramp-timeout", type=float, default=120.0)
    parser.add_argument("--max-time", type=float, default=240.0)
    args = parser.parse_args(argv)
    limit = raiseFileLimit()
    if limit < args.count + 100:
        raise SystemExit(f"the open-file limit {limit} is too low for {args.count} links")

    from twisted.internet import reactor, stdio

    holder = Holder(reactor, args)
    stdio.StandardIO(Control(holder))
    reactor.callWhenRunning(holder.fill)
    reactor.callLater(args.ramp_timeout, holder.endRamp)
    reactor.callLater(args.max_time, holder.stop)
    reactor.run()


if __name__ == "__main__":
    main()
