"""
Tests for L{pz.admin}: the admin socket's protocol and service, and the
blocking client C{pzctl} uses.
"""

import json
import os
import socket
import threading

from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from pz.admin import (
    SOCKET_NAME,
    AdminFactory,
    AdminService,
    IAdminCommands,
    adminCall,
    _removeStaleSocket,
    commandTable,
)
from pz.errors import ZoneError


@implementer(IAdminCommands)
class _Commands:
    """
    Admin commands for the tests.
    """

    name = "test"
    commands = commandTable()

    def __init__(self) -> None:
        self.later = Deferred()

    @commands.handler("echo")
    def command_echo(self, **kwargs):
        return kwargs

    @commands.handler("two_words")
    def command_two_words(self):
        return "hyphen"

    @commands.handler("later")
    def command_later(self):
        return self.later

    @commands.handler("refuse")
    def command_refuse(self):
        raise ZoneError("NAME_TAKEN", "already there")

    @commands.handler("refuseLater")
    def command_refuseLater(self):
        return fail(ZoneError("TOKEN_USED"))

    @commands.handler("crash")
    def command_crash(self):
        raise RuntimeError("secret detail")

    @commands.handler("unencodable")
    def command_unencodable(self):
        return {"hash": b"bytes are not JSON"}


class AdminProtocolTests(SynchronousTestCase):
    """
    One JSON request per line in, one JSON answer per line out.
    """

    def setUp(self):
        self.commands = _Commands()
        self.protocol = AdminFactory(self.commands).buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)

    def ask(self, line: bytes) -> list:
        """
        Send C{line} and return the answers written.
        """
        self.protocol.dataReceived(line + b"\n")
        out = [json.loads(a) for a in self.transport.value().splitlines()]
        self.transport.clear()
        return out

    def test_interface(self):
        """
        The test commands provide L{IAdminCommands}.
        """
        self.assertTrue(verifyObject(IAdminCommands, self.commands))

    def test_result(self):
        """
        A command's arguments come from C{args} and its value is the result.
        """
        request = json.dumps({"command": "echo", "args": {"a": 1, "b": [2]}}).encode()
        self.assertEqual(self.ask(request), [{"ok": True, "result": {"a": 1, "b": [2]}}])

    def test_noArgs(self):
        """
        C{args} may be left out, and hyphens in command names become
        underscores.
        """
        self.assertEqual(self.ask(b'{"command": "two-words"}'),
                         [{"ok": True, "result": "hyphen"}])

    def test_deferred(self):
        """
        A command may answer later with a Deferred.
        """
        self.assertEqual(self.ask(b'{"command": "later"}'), [])
        self.commands.later.callback(42)
        self.assertEqual(json.loads(self.transport.value()), {"ok": True, "result": 42})

    def test_unencodableAnswer(self):
        """
        An answer JSON cannot carry (a command's bug) is answered with
        C{INTERNAL} at once and logged, not left for C{pzctl} to time out.
        """
        self.assertEqual(self.ask(b'{"command": "unencodable"}'),
                         [{"ok": False, "code": "INTERNAL",
                           "message": "an unexpected error; see the log"}])
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_zoneError(self):
        """
        A L{ZoneError}, raised or failed, is answered with its code.
        """
        self.assertEqual(self.ask(b'{"command": "refuse"}'),
                         [{"ok": False, "code": "NAME_TAKEN", "message": "already there"}])
        [answer] = self.ask(b'{"command": "refuseLater"}')
        self.assertEqual(answer["code"], "TOKEN_USED")

    def test_wrongArguments(self):
        """
        Arguments the command does not take are C{BAD_REQUEST}.
        """
        [answer] = self.ask(b'{"command": "two_words", "args": {"x": 1}}')
        self.assertEqual(answer["code"], "BAD_REQUEST")

    def test_crash(self):
        """
        An unexpected exception is logged and answered with C{INTERNAL},
        never with its details.
        """
        [answer] = self.ask(b'{"command": "crash"}')
        self.assertEqual(answer["code"], "INTERNAL")
        self.assertNotIn("secret", json.dumps(answer))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unknownCommand(self):
        """
        A command the process does not offer is C{BAD_REQUEST}: only the
        names declared in its command table are found, never other
        attributes.
        """
        for name in ("nothing", "__class__", "name"):
            [answer] = self.ask(json.dumps({"command": name}).encode())
            self.assertEqual(answer["code"], "BAD_REQUEST")

    def test_malformed(self):
        """
        Lines that are not admin requests are C{BAD_REQUEST} and the
        connection stays open.
        """
        for line in (b"", b"nope", b"[1]", b"null", b"{}", b'{"command": 1}',
                     b'{"command": "echo", "args": []}', b"\xff", b"[" * 50000):
            self.assertEqual([a["code"] for a in self.ask(line)], ["BAD_REQUEST"])
        self.assertFalse(self.transport.disconnecting)

    def test_tooLong(self):
        """
        A line above the limit is refused and the connection closed.
        """
        self.protocol.dataReceived(b"x" * (self.protocol.MAX_LENGTH + 1))
        [answer] = [json.loads(a) for a in self.transport.value().splitlines()]
        self.assertEqual(answer["code"], "BAD_REQUEST")
        self.assertTrue(self.transport.disconnecting)


class AdminServiceTests(SynchronousTestCase):
    """
    L{AdminService} listens on the data directory's socket, owner only.
    """

    def setUp(self):
        self.dataDir = self.mktemp()
        os.makedirs(self.dataDir)
        self.path = os.path.join(self.dataDir, SOCKET_NAME)

    def test_listens(self):
        """
        Starting the service listens on C{admin.sock} with mode 0600.
        """
        reactor = MemoryReactor()
        service = AdminService(reactor, self.dataDir, _Commands())
        service.privilegedStartService()
        [(address, factory, backlog, mode, wantPID)] = reactor.unixServers
        self.assertEqual(address, self.path)
        self.assertEqual(mode, 0o600)
        self.assertIsInstance(factory, AdminFactory)

    def test_staleSocketRemoved(self):
        """
        A socket file that nothing answers on is removed first.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.close()
        self.assertTrue(os.path.exists(self.path))
        _removeStaleSocket(self.path)
        self.assertFalse(os.path.exists(self.path))

    def test_liveSocketKept(self):
        """
        A socket another process still answers on is not stolen.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(self.path)
        sock.listen(1)
        reactor = MemoryReactor()
        service = AdminService(reactor, self.dataDir, _Commands())
        e = self.assertRaises(ZoneError, service.privilegedStartService)
        self.assertEqual(e.code, "BAD_REQUEST")
        self.assertTrue(os.path.exists(self.path))
        self.assertEqual(reactor.unixServers, [])

    def test_noSocket(self):
        """
        Nothing to remove is fine.
        """
        _removeStaleSocket(self.path)
        self.assertFalse(os.path.exists(self.path))


class _OneShotServer:
    """
    A UNIX socket server in a thread that answers one connection with
    C{reply} (bytes, or None to close without answering, or "hang" to keep
    the connection open without answering) and records the request.
    """

    def __init__(self, path: str, reply) -> None:
        self.request = b""
        self._reply = reply
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(1)
        self._sock.settimeout(10)
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            conn.settimeout(10)
            while not self.request.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                self.request += chunk
            if self._reply == "hang":
                self._release.wait(10)
            elif self._reply is not None:
                conn.sendall(self._reply[:5])
                conn.sendall(self._reply[5:])

    def stop(self) -> None:
        self._release.set()
        self._thread.join(10)
        self._sock.close()


class AdminCallTests(SynchronousTestCase):
    """
    L{adminCall} asks a running process and turns its answer into a value
    or a L{ZoneError}.
    """

    def setUp(self):
        self.dataDir = self.mktemp()
        os.makedirs(self.dataDir)
        self.path = os.path.join(self.dataDir, SOCKET_NAME)

    def serve(self, reply) -> _OneShotServer:
        server = _OneShotServer(self.path, reply)
        self.addCleanup(server.stop)
        return server

    def test_notRunning(self):
        """
        Without a socket the answer is C{NOT_RUNNING}.
        """
        e = self.assertRaises(ZoneError, adminCall, self.dataDir, "ping")
        self.assertEqual(e.code, "NOT_RUNNING")

    def test_staleSocket(self):
        """
        A socket file nothing listens on is C{NOT_RUNNING} too.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.close()
        e = self.assertRaises(ZoneError, adminCall, self.dataDir, "ping")
        self.assertEqual(e.code, "NOT_RUNNING")

    def test_result(self):
        """
        The request is one JSON line with the command and its arguments;
        the result of an C{ok} answer is returned, even when it arrives in
        pieces.
        """
        server = self.serve(b'{"ok": true, "result": {"zone": "z"}}\n')
        self.assertEqual(adminCall(self.dataDir, "ping", {"a": 1}), {"zone": "z"})
        server.stop()
        self.assertEqual(json.loads(server.request), {"command": "ping", "args": {"a": 1}})

    def test_error(self):
        """
        A refusal is raised as a L{ZoneError} with its code and message.
        """
        self.serve(b'{"ok": false, "code": "NAME_TAKEN", "message": "taken"}\n')
        e = self.assertRaises(ZoneError, adminCall, self.dataDir, "pair")
        self.assertEqual((e.code, e.message), ("NAME_TAKEN", "taken"))

    def test_closed(self):
        """
        A process that closes without answering is C{NOT_RUNNING}.
        """
        self.serve(None)
        e = self.assertRaises(ZoneError, adminCall, self.dataDir, "ping")
        self.assertEqual(e.code, "NOT_RUNNING")

    def test_timeout(self):
        """
        A process that does not answer in time is C{TIMEOUT}.
        """
        self.serve("hang")
        e = self.assertRaises(ZoneError, adminCall, self.dataDir, "ping", timeout=0.05)
        self.assertEqual(e.code, "TIMEOUT")
