# -*- test-case-name: tests.pz.test_admin -*-
"""
The local admin socket through which C{pzctl} talks to a running hub or
proxy.

A UNIX socket in the process's data directory (mode 0600, so only the
owner can use it) carries one JSON request per line,
C{{"command": NAME, "args": {...}}}, and one JSON answer per line,
C{{"ok": true, "result": ...}} or C{{"ok": false, "code": CODE, "message":
TEXT}}.  The server side is a Twisted protocol; the client side is a plain
blocking function, because C{pzctl} is a short-lived command.
"""

import json
import os
import socket
from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver
from zope.interface import Attribute, Interface

from pz.dispatch import MessageTable
from pz.errors import CODES, ZoneError

__all__ = ["IAdminCommands", "AdminFactory", "AdminService", "adminCall", "commandTable",
           "SOCKET_NAME"]

SOCKET_NAME = "admin.sock"


class IAdminCommands(Interface):
    """
    What a process offers on its admin socket: a table of its commands
    (L{commandTable}), each a method declared with the command's name,
    taking the request's C{args} as keyword arguments and returning a
    JSON-ready value or a Deferred of one.
    """

    name = Attribute("a short label for logs")
    commands = Attribute("the L{commandTable} of its commands, read from the instance")


def commandTable() -> MessageTable:
    """
    A new, empty table of admin commands: an unknown command, or arguments
    a command does not take, are C{BAD_REQUEST}.

    Declare each command beside its method::

        commands = commandTable()

        @commands.handler("revoke")
        def command_revoke(self, device): ...

    A hyphen in a requested name is read as an underscore.
    """
    return MessageTable(
        unknown=lambda name: ZoneError("BAD_REQUEST", f"unknown command {name!r}"),
        refusal="BAD_REQUEST", keywords=True)


class AdminProtocol(LineOnlyReceiver):
    """
    One admin client.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1024 * 1024
    _log = Logger()

    def __init__(self, commands) -> None:
        self._commands = commands

    def lineReceived(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            name = request["command"]
            args = request.get("args", {})
            if not isinstance(name, str) or not isinstance(args, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError, RecursionError):
            self._answer(ZoneError("BAD_REQUEST", "not an admin request"))
            return
        d = maybeDeferred(self._commands.commands.dispatch, name.replace("-", "_"), args)
        d.addCallbacks(lambda result: self._answer(None, result), self._failed)

    def _failed(self, failure) -> None:
        if failure.check(ZoneError):
            self._answer(failure.value)
        elif failure.check(TypeError):
            self._answer(ZoneError("BAD_REQUEST", "wrong arguments for that command"))
        else:
            self._log.failure("admin command failed", failure)
            self._answer(ZoneError("INTERNAL"))

    def _answer(self, error: Optional[ZoneError], result: Any = None) -> None:
        if error is None:
            answer = {"ok": True, "result": result}
        else:
            answer = {"ok": False, "code": error.code, "message": error.message}
        try:
            line = json.dumps(answer)
        except (TypeError, ValueError):
            # A command answered something JSON cannot carry: a bug, but
            # pzctl must hear of it rather than wait for its timeout.
            self._log.failure("an admin answer could not be encoded")
            line = json.dumps({"ok": False, "code": "INTERNAL", "message": CODES["INTERNAL"]})
        self.sendLine(line.encode("utf-8"))

    def lineLengthExceeded(self, line) -> None:
        self._answer(ZoneError("BAD_REQUEST", "request too long"))
        self.transport.loseConnection()


class AdminFactory(Factory):
    """
    Serves L{IAdminCommands} on the admin socket.
    """

    def __init__(self, commands) -> None:
        self._commands = IAdminCommands(commands)

    def buildProtocol(self, addr):
        return AdminProtocol(self._commands)


def _removeStaleSocket(path: str) -> None:
    """
    Remove the socket file a crashed process left behind; refuse to steal
    one that a live process still answers on.
    """
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise ZoneError("BAD_REQUEST", f"another process already serves {path}")
    finally:
        probe.close()


class AdminService(StreamServerEndpointService):
    """
    Serves the admin socket in a data directory while running.
    """

    def __init__(self, reactor, dataDir: str, commands) -> None:
        self._path = os.path.join(dataDir, SOCKET_NAME)
        super().__init__(UNIXServerEndpoint(reactor, self._path, mode=0o600),
                         AdminFactory(commands))
        self._raiseSynchronously = True

    def privilegedStartService(self) -> None:
        # twistd listens here, before daemonising; startService listens
        # only if this did not run.
        _removeStaleSocket(self._path)
        super().privilegedStartService()


def adminCall(dataDir: str, command: str, args: Optional[dict] = None,
              timeout: float = 30.0) -> Any:
    """
    Ask the process that owns C{dataDir} to run C{command}.

    @raise ZoneError: C{NOT_RUNNING} if nothing listens there, or the code
        the process answered with.
    """
    path = os.path.join(dataDir, SOCKET_NAME)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ZoneError("NOT_RUNNING", f"no running process owns {dataDir}")
        except OSError as e:
            raise ZoneError("NOT_RUNNING", f"cannot reach {path}: {e.strerror or e}")
        sock.sendall(json.dumps({"command": command, "args": args or {}}).encode("utf-8") + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                raise ZoneError("TIMEOUT", f"{command} did not answer within {timeout:g}s")
            if not chunk:
                raise ZoneError("NOT_RUNNING", "the process closed the admin socket")
            data += chunk
    finally:
        sock.close()
    answer = json.loads(data)
    if not answer.get("ok"):
        raise ZoneError(answer.get("code", "INTERNAL"), answer.get("message", ""))
    return answer.get("result")
