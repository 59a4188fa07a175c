"""
The "under attack" benchmark's clients, one role per process, each bounded
in time (C{--seconds}) and in what it sends:

  - C{normal}: two devices, A and B.  A sends B a C{message} every
    1/C{--rate} s; B answers each with an C{ack}, as a device proxy does;
    the round trip is from A's send to A reading the ack.  Prints one JSON
    object: the samples (monotonic send time, round trip in ms), how many
    got no ack or an error, and how many times A or B lost its link.
  - C{flood}: one device that sends C{message} frames to C{--to} as fast
    as its socket takes them (it is the producer of its own TLS transport,
    so it writes only while the socket has room); when the hub drops it,
    it connects again.  Prints frames sent, error codes received, drops.
  - C{sink}: one device that, once registered, stops reading; dropped, it
    connects again and stops reading again.
  - C{slowweb}: C{--count} TLS connections to the hub's web port (at most
    100 connecting at once), each sending one byte of an HTTP request
    every C{--interval} s.  Prints how many opened and how many were still
    open at the end.

    python -m bench.attackclient ROLE --port P --certs DIR [options]
"""

import argparse
import json
import os
import time

from twisted.internet import ssl
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.protocols.basic import Int32StringReceiver
from zope.interface import implementer

from bench.serve import raiseFileLimit
from pz import pki
from pz.link import noDelay
from pz.tls import pzpClientOptions


def _options(certs: str, name: str):
    ca = pki.readCertificate(os.path.join(certs, "ca.pem"))
    key = pki.readPrivateKey(os.path.join(certs, name + ".key"))
    cert = pki.readCertificate(os.path.join(certs, name + ".pem"))
    return pzpClientOptions(ca, key, cert, "127.0.0.1")


def _abort(protocol) -> None:
    """
    Abort C{protocol}'s connection if it still has one.
    """
    try:
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abortConnection()
    except Exception:
        pass  # already gone with the reactor


def _connect(reactor, port: int, options, protocol):
    endpoint = wrapClientTLS(options, TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10))
    return connectProtocol(endpoint, protocol)


@implementer(IHandshakeListener)
class Device(Int32StringReceiver):
    """
    A device link: calls C{onFrame(self, payload, envelope)} for each frame
    and C{onLost(self)} when it closes.
    """

    MAX_LENGTH = 16 * 1024 * 1024

    def __init__(self, onFrame, onLost) -> None:
        self.onFrame = onFrame
        self.onLost = onLost
        self.registered = False

    def connectionMade(self) -> None:
        # as a device's own link does (pz.link.Link)
        noDelay(self.transport)

    def handshakeCompleted(self) -> None:
        pass

    def stringReceived(self, data: bytes) -> None:
        envelope = json.loads(data)
        payload = envelope.get("payload", {})
        if payload.get("status") == "registered":
            self.registered = True
        self.onFrame(self, payload, envelope)

    def send(self, to: str, payload: dict, msgId: str) -> None:
        self.sendString(json.dumps({"type": "prop", "to": to, "id": msgId,
                                    "payload": payload}).encode("utf-8"))

    def connectionLost(self, reason) -> None:
        self.onLost(self)


class Role:
    """
    What every role shares: the reactor, the end time, the result.
    """

    def __init__(self, reactor, args) -> None:
        self.reactor = reactor
        self.args = args
        self.deadline = time.monotonic() + args.seconds
        self.result = {"role": args.role}
        self.finished = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.stopAll()
        self.reactor.callLater(0.2, self.reactor.stop)

    def stopAll(self) -> None:
        pass


class Normal(Role):
    """
    A sends to B at a fixed pace; B acks; A times the round trips.
    """

    def start(self) -> None:
        self.samples = []
        self.pending = {}
        self.errors = 0
        self.lost = 0
        self.seq = 0
        self.zone = self.args.zone
        self.a = Device(self.frameA, self.lostLink)
        self.b = Device(self.frameB, self.lostLink)
        _connect(self.reactor, self.args.port, _options(self.args.certs, self.args.a), self.a)
        _connect(self.reactor, self.args.port, _options(self.args.certs, self.args.b), self.b)
        self.loop = LoopingCall(self.tick)
        self.loop.clock = self.reactor
        self.reactor.callLater(1.0, self.loop.start, 1.0 / self.args.rate)
        self.reactor.callLater(self.args.seconds, self.finish)

    def tick(self) -> None:
        if not (self.a.registered and self.b.registered):
            return
        self.seq += 1
        msgId = f"n{self.seq}"
        self.pending[msgId] = time.monotonic()
        self.a.send(f"{self.zone}/{self.args.b}", {"status": "message", "text": "ping " * 10},
                    msgId)

    def frameA(self, link, payload, envelope) -> None:
        ref = payload.get("ref")
        sent = self.pending.pop(ref, None) if isinstance(ref, str) else None
        if sent is None:
            return
        if payload.get("status") == "ack":
            now = time.monotonic()
            self.samples.append((round(sent, 4), round((now - sent) * 1000, 3)))
        else:
            self.errors += 1

    def frameB(self, link, payload, envelope) -> None:
        if payload.get("status") == "message":
            link.send(envelope["from"], {"status": "ack", "ref": envelope["id"]},
                      "a" + envelope["id"])

    def lostLink(self, link) -> None:
        if not self.finished:
            self.lost += 1

    def stopAll(self) -> None:
        if self.loop.running:
            self.loop.stop()
        self.result.update(samples=self.samples, unanswered=len(self.pending),
                           errors=self.errors, lost=self.lost)
        for link in (self.a, self.b):
            _abort(link)


@implementer(IPushProducer)
class _Pump:
    """
    Writes flood frames while the transport takes them.
    """

    def __init__(self, role, link) -> None:
        self.role = role
        self.link = link
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.role.reactor.callLater(0, self.write)

    def stopProducing(self) -> None:
        self.stopped = True

    def write(self) -> None:
        if self.link.transport is None or not self.link.transport.connected:
            return
        # A bounded batch per turn, so the reactor still reads answers.
        for _ in range(2000):
            if self.paused or self.stopped or self.role.finished:
                return
            if self.role.sent >= self.role.args.max_frames:
                return
            self.link.sendString(self.role.frame)
            self.role.sent += 1
        self.role.reactor.callLater(0, self.write)


class _Attacker(Role):
    """
    A paired device that comes straight back when dropped, as a persistent
    attacker would (at most 1,000 connections a run).
    """

    def start(self) -> None:
        self.drops = 0
        self.connects = 0
        self.link = None
        self.connect()
        self.reactor.callLater(self.args.seconds, self.finish)

    def connect(self) -> None:
        if self.finished or self.remaining() <= 0 or self.connects >= 1000:
            return
        self.connects += 1
        self.link = Device(self.frameIn, self.lostLink)
        d = _connect(self.reactor, self.args.port, _options(self.args.certs, self.args.device),
                     self.link)
        d.addErrback(lambda f: self.reactor.callLater(0.2, self.connect))

    def lostLink(self, link) -> None:
        if self.finished or link is not self.link:
            return
        self.drops += 1
        self.reactor.callLater(0.1, self.connect)


class Flood(_Attacker):
    """
    Full speed at C{--to}; reconnects when dropped.
    """

    def start(self) -> None:
        self.sent = 0
        self.registrations = 0
        self.codes = {}
        self.frame = json.dumps({"type": "prop", "to": self.args.to, "id": "f",
                                 "payload": {"status": "message",
                                             "text": "x" * self.args.size}}).encode("utf-8")
        super().start()

    def frameIn(self, link, payload, envelope) -> None:
        status = payload.get("status")
        if status == "registered":
            self.registrations += 1
            pump = _Pump(self, link)
            link.transport.registerProducer(pump, True)
            pump.resumeProducing()
        elif status == "error":
            code = payload.get("code", "?")
            self.codes[code] = self.codes.get(code, 0) + 1
            if code in ("TOO_MANY_ERRORS", "TOO_SLOW", "COOLING_OFF"):
                # dropped or refused: a persistent attacker does not wait
                # for the close, it comes straight back
                _abort(link)

    def stopAll(self) -> None:
        self.result.update(sent=self.sent, codes=self.codes, drops=self.drops,
                           connects=self.connects, registrations=self.registrations,
                           cpu_s=round(sum(os.times()[:2]), 2))
        _abort(self.link)


class Sink(_Attacker):
    """
    Registers, then reads nothing; reconnects when dropped.
    """

    def frameIn(self, link, payload, envelope) -> None:
        if payload.get("status") == "registered":
            link.transport.pauseProducing()

    def stopAll(self) -> None:
        self.result.update(drops=self.drops, connects=self.connects)
        _abort(self.link)


class _Slow(Protocol):
    """
    One slow web connection.
    """

    def __init__(self, role) -> None:
        self.role = role
        self.open = False
        self.offset = 0

    def connectionMade(self) -> None:
        self.open = True
        self.role.opened += 1
        self.role.conns.append(self)

    def drip(self) -> None:
        request = self.role.request
        if self.open and self.offset < len(request):
            self.transport.write(request[self.offset:self.offset + 1])
            self.offset += 1

    def connectionLost(self, reason) -> None:
        if self.open:
            self.open = False
            self.role.closedByServer += 0 if self.role.finished else 1


class SlowWeb(Role):
    """
    Many connections to the web port, each dripping one byte every
    C{--interval} s.
    """

    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 4096 + b"\r\n\r\n"

    def start(self) -> None:
        self.limit = raiseFileLimit()
        self.opened = 0
        self.failed = 0
        self.closedByServer = 0
        self.conns = []
        self.started = 0
        self.inflight = 0
        ca = ssl.Certificate.loadPEM(open(os.path.join(self.args.certs, "ca.pem"), "rb").read())
        self.tls = ssl.optionsForClientTLS("127.0.0.1", trustRoot=ca)
        self.rampStart = time.monotonic()
        self.rampSeconds = None
        self.reactor.callLater(60, self.rampDone)
        self.more()
        self.dripper = LoopingCall(self.drip)
        self.dripper.clock = self.reactor
        self.dripper.start(self.args.interval / 10.0, now=False)
        self.dripTurn = 0
        self.reactor.callLater(self.args.seconds, self.finish)

    def more(self) -> None:
        while (self.started < self.args.count and self.inflight < 100 and not self.finished
               and self.remaining() > 0):
            self.started += 1
            self.inflight += 1
            d = _connect(self.reactor, self.args.port, self.tls, _Slow(self))
            d.addCallbacks(self.done, self.fail)
        if self.started >= self.args.count and self.inflight == 0:
            self.rampDone()

    def rampDone(self) -> None:
        """
        Say, once, that the ramp is over (all connected, or 60 s passed).
        """
        if self.rampSeconds is not None:
            return
        self.rampSeconds = round(time.monotonic() - self.rampStart, 2)
        print(json.dumps({"event": "up", "opened": self.opened, "failed": self.failed,
                          "ramp_seconds": self.rampSeconds}), flush=True)

    def done(self, protocol) -> None:
        self.inflight -= 1
        self.reactor.callLater(0, self.more)

    def fail(self, failure) -> None:
        self.inflight -= 1
        self.failed += 1
        self.reactor.callLater(0, self.more)

    def drip(self) -> None:
        # Each tenth of the interval, a tenth of the connections drips.
        self.dripTurn = (self.dripTurn + 1) % 10
        for i in range(self.dripTurn, len(self.conns), 10):
            self.conns[i].drip()

    def stopAll(self) -> None:
        if self.dripper.running:
            self.dripper.stop()
        stillOpen = sum(1 for c in self.conns if c.open)
        self.result.update(opened=self.opened, failed=self.failed, still_open=stillOpen,
                           closed_by_server=self.closedByServer, fd_limit=self.limit,
                           ramp_seconds=self.rampSeconds)
        for c in self.conns:
            if c.open:
                _abort(c)


_ROLES = {"normal": Normal, "flood": Flood, "sink": Sink, "slowweb": SlowWeb}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.attackclient")
    parser.add_argument("role", choices=sorted(_ROLES))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--seconds", type=float, required=True, help="how long to run")
    parser.add_argument("--zone", default="")
    parser.add_argument("--a", default="dev00000")
    parser.add_argument("--b", default="dev00001")
    parser.add_argument("--rate", type=float, default=50.0, help="normal: messages a second")
    parser.add_argument("--device", default="dev00002")
    parser.add_argument("--to", default="")
    parser.add_argument("--size", type=int, default=100, help="flood: text bytes a frame")
    parser.add_argument("--max-frames", type=int, default=50_000_000)
    parser.add_argument("--count", type=int, default=1000, help="slowweb: connections")
    parser.add_argument("--interval", type=float, default=3.0, help="slowweb: s between bytes")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 600:
        parser.error("--seconds must be in (0, 600]")

    from twisted.internet import reactor

    role = _ROLES[args.role](reactor, args)
    reactor.callWhenRunning(role.start)
    # SIGTERM (the reactor's own handler) ends the run early: the result is
    # taken before the reactor closes the connections
    def early() -> None:
        if not role.finished:
            role.finished = True
            role.stopAll()

    reactor.addSystemEventTrigger("before", "shutdown", early)
    # a hard stop, whatever happens
    reactor.callLater(args.seconds + 30, reactor.stop)
    reactor.run()
    print(json.dumps(role.result), flush=True)


if __name__ == "__main__":
    main()
