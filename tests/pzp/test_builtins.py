"""
Tests for L{pzp.builtins}: the C{get42} sample and the C{context} service,
called as the zone calls them, through L{pz.calls.serve}.
"""

import base64
import json
import os

from twisted.trial.unittest import SynchronousTestCase

from pz.calls import makeRequest, parseAnswer, serve
from pz.sync.items import ItemTree
from pz.zoneservice import IZoneService, ServiceRegistry
from pzp.builtins import ContextService, Get42Service, builtinServices
from pzp.builtins.context import MAX_OBJECT_BYTES
from pzp.builtins.files import MAX_PIECE


class _Served(SynchronousTestCase):
    """
    Calls through a registry holding the built-ins of a fresh item tree.
    """

    def setUp(self) -> None:
        self.items = ItemTree(os.path.abspath(self.mktemp()))
        self.items.create()
        self.registry = ServiceRegistry()
        for service in builtinServices(self.items):
            self.registry.register(service)

    def call(self, service, method, params=None):
        """
        The answer to one call, parsed.
        """
        return parseAnswer(self.successResultOf(serve(self.registry, makeRequest("t", service, method, params))))

    def result(self, service, method, params=None):
        answer = self.call(service, method, params)
        self.assertIsNone(answer.error, answer)
        return answer.result

    def assertCode(self, code, service, method, params=None) -> None:
        answer = self.call(service, method, params)
        self.assertIsNotNone(answer.error, answer)
        self.assertEqual(answer.error.code, code)


class Get42Tests(_Served):
    """
    The webinos sample.
    """

    def test_get42(self) -> None:
        """
        C{get42.get42} answers 42.
        """
        self.assertEqual(self.result("get42", "get42"), 42)

    def test_described(self) -> None:
        """
        The built-ins are described as the zone announces them.
        """
        self.assertTrue(IZoneService.providedBy(Get42Service()))
        self.assertEqual(
            self.registry.describe(),
            [
                {"service": "context", "version": "1.0", "methods": ["list", "read", "remove", "write"]},
                {"service": "files", "version": "1.0", "methods": ["list", "read"]},
                {"service": "get42", "version": "1.0", "methods": ["get42"]},
            ],
        )

    def test_noArguments(self) -> None:
        """
        C{get42} takes no argument.
        """
        self.assertCode("BAD_ARGUMENTS", "get42", "get42", [1])


class ContextTests(_Served):
    """
    The C{context} service reads and writes C{items/context/NAME.json}.
    """

    def test_writeRead(self) -> None:
        """
        A written object reads back, is the item C{context/NAME.json}, and
        is listed.
        """
        self.assertIsNone(self.result("context", "write", ["place", {"city": "Bonn"}]))
        self.assertEqual(self.result("context", "read", {"name": "place"}), {"city": "Bonn"})
        self.assertEqual(json.loads(self.items.read("context/place.json")), {"city": "Bonn"})
        self.assertIn("context/place.json", self.items.scan())
        self.assertEqual(self.result("context", "list"), ["place"])

    def test_readMissing(self) -> None:
        """
        An object that does not exist reads as C{null}.
        """
        self.assertIsNone(self.result("context", "read", ["nothing"]))

    def test_remove(self) -> None:
        """
        A removed object is gone; removing it again says there was none.
        """
        self.result("context", "write", ["a", {}])
        self.assertTrue(self.result("context", "remove", ["a"]))
        self.assertFalse(self.result("context", "remove", ["a"]))
        self.assertEqual(self.result("context", "list"), [])

    def test_badNames(self) -> None:
        """
        A name that could leave the context folder or is not a plain name
        is C{BAD_ARGUMENTS}, and nothing is written.
        """
        for bad in ("../preferences", "a/b", "", "a.b", "x" * 65):
            self.assertCode("BAD_ARGUMENTS", "context", "write", [bad, {}])
            self.assertCode("BAD_ARGUMENTS", "context", "read", [bad])
        self.assertEqual(self.result("context", "list"), [])

    def test_badValues(self) -> None:
        """
        A value that is not an object, or too large, is C{BAD_ARGUMENTS}
        and the old object is kept.
        """
        self.result("context", "write", ["a", {"v": 1}])
        self.assertCode("BAD_ARGUMENTS", "context", "write", ["a", [1]])
        self.assertCode("BAD_ARGUMENTS", "context", "write", ["a", {"v": "x" * MAX_OBJECT_BYTES}])
        self.assertEqual(self.result("context", "read", ["a"]), {"v": 1})

    def test_damagedItem(self) -> None:
        """
        A stored item that is not a JSON object is C{SYNC_BAD_ITEM}.
        """
        self.items.write("context/bad.json", b"\xff not json")
        self.items.write("context/list.json", b"[1]")
        self.assertCode("SYNC_BAD_ITEM", "context", "read", ["bad"])
        self.assertCode("SYNC_BAD_ITEM", "context", "read", ["list"])

    def test_listSkipsOthers(self) -> None:
        """
        Only regular files with a valid name are listed.
        """
        folder = os.path.join(self.items.root, "context")
        os.mkdir(os.path.join(folder, "sub.json"))
        os.symlink("/etc/passwd", os.path.join(folder, "link.json"))
        with open(os.path.join(folder, "notes.txt"), "w") as f:
            f.write("x")
        self.result("context", "write", ["b", {}])
        self.assertEqual(self.result("context", "list"), ["b"])
        self.assertCode("SYNC_BAD_PATH", "context", "read", ["link"])

    def test_instance(self) -> None:
        """
        L{ContextService} provides L{IZoneService}.
        """
        self.assertTrue(IZoneService.providedBy(ContextService(self.items)))


class FilesTests(_Served):
    """
    The C{files} service lists and reads C{items/userdata/} in bounded pieces.
    """

    def setUp(self) -> None:
        super().setUp()
        self.userdata = os.path.join(self.items.root, "userdata")
        os.makedirs(os.path.join(self.userdata, "photos"))
        self.big = bytes(range(256)) * 400  # 102400 bytes: three pieces
        with open(os.path.join(self.userdata, "photos", "big.bin"), "wb") as f:
            f.write(self.big)
        with open(os.path.join(self.userdata, "a.txt"), "wb") as f:
            f.write(b"hello")

    def test_list(self) -> None:
        """
        Files are listed with their sizes; links are skipped.
        """
        os.symlink("/etc/passwd", os.path.join(self.userdata, "link"))
        self.assertEqual(
            self.result("files", "list"),
            [{"path": "a.txt", "size": 5}, {"path": "photos/big.bin", "size": len(self.big)}],
        )

    def test_fetchInPieces(self) -> None:
        """
        A file larger than a piece comes back whole, piece by piece, none
        larger than L{MAX_PIECE}.
        """
        data, offset, pieces = b"", 0, 0
        while True:
            piece = self.result("files", "read", ["photos/big.bin", offset])
            chunk = base64.b64decode(piece["data"])
            self.assertLessEqual(len(chunk), MAX_PIECE)
            self.assertEqual((piece["offset"], piece["size"]), (offset, len(self.big)))
            data += chunk
            offset += len(chunk)
            pieces += 1
            if piece["eof"]:
                break
        self.assertEqual((data, pieces), (self.big, 3))

    def test_badPaths(self) -> None:
        """
        Paths leaving the user data folder, through a link, or missing are
        C{BAD_ARGUMENTS}.
        """
        os.symlink("/etc", os.path.join(self.userdata, "etc"))
        for bad in ("../preferences.json", "/etc/passwd", "etc/passwd", "missing", "", "photos"):
            self.assertCode("BAD_ARGUMENTS", "files", "read", [bad])

    def test_badRanges(self) -> None:
        """
        A negative offset, an offset past the end, or a length of zero or
        above L{MAX_PIECE} is C{BAD_ARGUMENTS}.
        """
        for params in (["a.txt", -1], ["a.txt", 6], ["a.txt", 0, 0], ["a.txt", 0, MAX_PIECE + 1], ["a.txt", "0"]):
            self.assertCode("BAD_ARGUMENTS", "files", "read", params)
        self.assertEqual(self.result("files", "read", ["a.txt", 5])["eof"], True)
