# -*- test-case-name: tests.pz.test_endpoints -*-
"""
Where a zone process listens: a port and an interface (C{--port},
C{--interface}), or endpoint descriptions (C{--listen}), as C{twistd web
--listen} takes them (L{twisted.internet.endpoints.serverFromString}):
C{tcp:8000:interface=127.0.0.1}, C{unix:/run/pz/web.sock}, or
C{systemd:domain=INET:index=0} for a socket systemd opened.

A description is checked when the command line is parsed (a bad one is a
usage error in one line); its port, when it is a TCP one, is checked free
before the process writes anything (L{pz.process.checkCanListen}), like
C{--port}'s.
"""

import os

from twisted.application import strports
from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.python import lockfile, usage

from pz.process import StartupError, checkCanListen

__all__ = [
    "tcpEndpoint", "checkDescription", "checkCanListenOn", "listeningService", "EXAMPLES",
]

#: What a description looks like, for error messages and C{--help}.
EXAMPLES = "tcp:PORT:interface=ADDRESS, unix:PATH or systemd:domain=INET:index=N"


def tcpEndpoint(reactor, port: int, interface: str):
    """
    The TCP endpoint for C{--port} and C{--interface}: IPv6 when the
    interface is an IPv6 address.
    """
    if ":" in interface:
        return TCP6ServerEndpoint(reactor, port, interface=interface)
    return TCP4ServerEndpoint(reactor, port, interface=interface)


def checkDescription(description: str, option: str, ownTLS: bool) -> str:
    """
    Check the endpoint description given as C{--option}; return it.

    The endpoint is built once (without a reactor: building one only reads
    its arguments, and for C{systemd:} checks the socket was passed) so a
    description that cannot work is refused before the process starts.

    @param ownTLS: the process wraps this port in its own TLS (the hub's
        device and web ports): an C{ssl:} description would wrap it twice,
        so it is refused.

    @raise usage.UsageError: one line naming the option and the reason.
    """
    def refuse(reason: str):
        return usage.UsageError(f"--{option} {description!r} is not an endpoint this machine "
                                f"can listen on ({reason}); give {EXAMPLES}")

    try:
        endpoint = serverFromString(None, description)
    except IndexError:
        raise refuse("systemd passed no socket of that index")
    except Exception as e:
        raise refuse(str(e) or type(e).__name__)
    if isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
        if not 0 <= endpoint._port <= 65535:
            raise refuse(f"{endpoint._port} is not a port number")
    elif isinstance(endpoint, UNIXServerEndpoint) and not endpoint._address:
        raise refuse("no socket path")
    if ownTLS and isinstance(endpoint, SSL4ServerEndpoint):
        raise usage.UsageError(f"--{option} {description!r}: this port has its own TLS; give "
                               f"{EXAMPLES}")
    return description


def checkCanListenOn(reactor, description: str) -> None:
    """
    For a TCP description, bind its port for a moment (as
    L{pz.process.checkCanListen} does for C{--port}); for a UNIX socket,
    check its folder can hold it and no running process holds its lock
    (the listener's C{lockfile}); a socket systemd passed is already open.

    @raise pz.process.StartupError: the port or socket cannot be used.
    """
    endpoint = serverFromString(reactor, description)
    if isinstance(endpoint, TCP6ServerEndpoint):
        checkCanListen(endpoint._interface or "::", endpoint._port)
    elif isinstance(endpoint, TCP4ServerEndpoint):
        checkCanListen(endpoint._interface or "0.0.0.0", endpoint._port)
    elif isinstance(endpoint, UNIXServerEndpoint):
        _checkUNIXSocket(endpoint._address)


def _checkUNIXSocket(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StartupError(f"cannot listen on {path}: no folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StartupError(f"cannot listen on {path}: permission denied")
    if lockfile.isLocked(path + ".lock"):
        raise StartupError(f"cannot listen on {path}: address already in use")


def listeningService(reactor, description: str, factory) -> StreamServerEndpointService:
    """
    The service listening on C{description} with C{factory}
    (L{twisted.application.strports.service}, as C{twistd web} builds its
    C{--listen} ports).
    """
    return strports.service(description, factory, reactor=reactor)
