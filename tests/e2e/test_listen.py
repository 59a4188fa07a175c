"""
End to end: C{twistd pzh} listening where C{--listen} and C{--web-listen}
say (the device port on a TCP description, the web side on a UNIX socket),
and refusing a taken or unusable description in one line.
"""

import os
import socket

from twisted.internet import defer, reactor
from twisted.internet.endpoints import UNIXClientEndpoint, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, readBody
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from tests.e2e.harness import Twistd, Zone, pzctl
from tests.support import takenPort


@implementer(IAgentEndpointFactory)
class _OverUNIXSocket:
    """
    Every request goes to the hub's web side on a UNIX socket, in TLS
    checked against the zone's CA.
    """

    def __init__(self, path: str, caPEM: bytes) -> None:
        self._path = path
        self._ca = Certificate.loadPEM(caPEM)

    def endpointForURI(self, uri):
        return wrapClientTLS(optionsForClientTLS(uri.host.decode("ascii"), trustRoot=self._ca),
                             UNIXClientEndpoint(reactor, self._path))


def _output(proc) -> str:
    return b"".join(proc._proc.output).decode("utf-8", "replace")


class ListenTests(TestCase):
    """
    C{twistd -n pzh --listen ... --web-listen ...}.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_listenDescriptions(self):
        """
        A hub whose device port is a C{--listen} TCP description and whose
        web side is a UNIX socket pairs a device over the first (in the
        hub's mutual TLS), answers C{/health} over the second (in its web
        TLS), and opens no port at C{--web-port}.
        """
        zone = Zone(self)
        webSocket = os.path.join(zone.root, "web.sock")
        yield zone.startHub("--listen", f"tcp:{zone.port}:interface=127.0.0.1",
                            "--web-listen", f"unix:{webSocket}")
        status = yield zone.pairDevice("phone")
        self.assertEqual(status["hub"], f"127.0.0.1:{zone.port}")
        devices = yield pzctl("--hub-dir", zone.hubDir, "devices")
        self.assertIn(f"{zone.deviceId('phone')}  connected", devices)

        with open(os.path.join(zone.hubDir, "ca.pem"), "rb") as f:
            agent = Agent.usingEndpointFactory(reactor, _OverUNIXSocket(webSocket, f.read()))
        response = yield agent.request(b"GET", b"https://127.0.0.1/health")
        body = yield readBody(response)
        self.assertEqual(response.code, 200, body)

        with socket.socket() as probe:
            self.assertNotEqual(probe.connect_ex(("127.0.0.1", zone.webPort)), 0)

    @defer.inlineCallbacks
    def test_refusals(self):
        """
        A C{--listen} TCP port that is taken stops the hub with the one line
        of a taken C{--port}; a description that cannot work ends the
        command line's check with one line naming it; both exit with
        status 1 and write no zone.
        """
        zone = Zone(self)
        port = takenPort(self)
        hubDir = os.path.join(zone.root, "hub")

        hub = Twistd(self, "pzh", ["--data-dir", hubDir, "--web-port", "0",
                                   "--listen", f"tcp:{port}:interface=127.0.0.1"],
                     os.path.join(zone.root, "taken.log")).start()
        self.assertEqual((yield hub.exited()), 1)
        self.assertEqual(_output(hub),
                         f"pzh: cannot listen on 127.0.0.1:{port}: address already in use\n")

        bad = Twistd(self, "pzh", ["--data-dir", hubDir, "--listen", "tcp:nonsense"],
                     os.path.join(zone.root, "bad.log")).start()
        self.assertEqual((yield bad.exited()), 1)
        lastLine = _output(bad).rstrip("\n").splitlines()[-1]
        self.assertTrue(lastLine.endswith("--listen 'tcp:nonsense' is not an endpoint this "
                                          "machine can listen on (invalid literal for int() "
                                          "with base 10: 'nonsense'); give "
                                          "tcp:PORT:interface=ADDRESS, unix:PATH or "
                                          "systemd:domain=INET:index=N"), lastLine)
        self.assertNotIn("Traceback", _output(bad))
        self.assertFalse(os.path.exists(os.path.join(hubDir, "zone.json")))
