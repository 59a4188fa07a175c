"""
The devices of the revocation benchmark: real device proxies (L{pzp.proxy.Proxy},
the code C{twistd pzp} runs), many in one process, each in Hub mode with a
certificate issued by the benchmark.

It prints one JSON line per event on stdout: C{{"ready": N}} once all N
are connected, then C{{"device": ID, "crl": NUMBER, "t": MONOTONIC}} each
time a device has verified and stored a newer CRL.  C{time.monotonic()} is
the system-wide monotonic clock, so the orchestrator can compare it with
its own.  It stops when its standard input closes.
"""

import argparse
import json
import os
import sys
import time

from twisted.internet import reactor, stdio, task
from twisted.internet.protocol import Protocol

from pz import pki
from pzp.proxy import Proxy, ProxySettings
from pzp.zonedir import Credentials, ZoneDirectory


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class TimedProxy(Proxy):
    """
    A proxy that says when it stored a new CRL.
    """

    def crlReceived(self, crl) -> None:
        before = pki.crlNumber(self.credentials.crl)
        super().crlReceived(crl)
        number = pki.crlNumber(self.credentials.crl)
        if number > before:
            emit({"device": self.credentials.deviceId, "crl": number, "t": time.monotonic()})


class _StopOnEOF(Protocol):
    def connectionLost(self, reason) -> None:
        if reactor.running:
            reactor.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hub-dir", required=True)
    parser.add_argument("--certs", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)

    with open(os.path.join(args.hub_dir, "zone.json")) as f:
        zoneId = json.load(f)["zone"]
    caCert = pki.readCertificate(os.path.join(args.hub_dir, "ca.pem"))
    crl = pki.readCRL(os.path.join(args.hub_dir, "crl.pem"))
    proxies = []
    for index in range(args.count):
        name = f"dev{index:05d}"
        dataDir = os.path.join(args.work, name)
        ZoneDirectory(dataDir).store(Credentials(
            zoneId=zoneId, deviceId=f"{zoneId}/{name}", hubHost="127.0.0.1", hubPort=args.port,
            key=pki.readPrivateKey(os.path.join(args.certs, name + ".key")),
            cert=pki.readCertificate(os.path.join(args.certs, name + ".pem")),
            caCert=caCert, crl=crl,
        ))
        proxy = TimedProxy(dataDir, reactor, name, settings=ProxySettings(keepalive=600))
        proxies.append(proxy)
        proxy.startService()

    def ready():
        connected = sum(p.hubInputs.state() == "Connected" for p in proxies)
        if connected == len(proxies):
            emit({"ready": connected})
            poll.stop()

    poll = task.LoopingCall(ready)
    poll.start(0.05)
    stdio.StandardIO(_StopOnEOF())
    reactor.run()


if __name__ == "__main__":
    main()
