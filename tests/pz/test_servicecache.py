"""
Tests for L{pz.servicecache}: announces checked, the cache edited as a
value, read back tolerantly and searched.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.servicecache import (
    MAX_METHODS,
    MAX_SERVICES,
    decodeCache,
    encodeCache,
    findServices,
    parseAnnounce,
    withDevice,
    withoutDevice,
)
from pz.sync.chunkers import JSONChunker
from pz.zoneservice import ServiceRegistry, ZoneService, exposed


class Echo(ZoneService):
    name = "echo"
    version = "0.1"

    @exposed
    def say(self, text: str):
        return text


GET42 = {"service": "get42", "version": "1.0", "methods": ["get42"]}


class AnnounceTests(SynchronousTestCase):
    """
    L{parseAnnounce}.
    """

    def test_registryDescribes(self) -> None:
        """
        What a registry describes is a valid announce, unchanged.
        """
        registry = ServiceRegistry()
        registry.register(Echo())
        services = registry.describe()
        self.assertEqual(parseAnnounce({"services": services}), services)

    def test_bad(self) -> None:
        """
        Anything but a bounded list of well-formed, uniquely named services
        is C{BAD_REQUEST}.
        """
        for bad in (
            None,
            {},
            {"services": {}},
            {"services": [dict(GET42, service="a.b")]},
            {"services": [dict(GET42, version=1)]},
            {"services": [dict(GET42, version="v" * 65)]},
            {"services": [dict(GET42, methods="get42")]},
            {"services": [dict(GET42, methods=["x y"])]},
            {"services": [dict(GET42, methods=["a", "a"])]},
            {"services": [dict(GET42, methods=[f"m{i}" for i in range(MAX_METHODS + 1)])]},
            {"services": [GET42, GET42]},
            {"services": [dict(GET42, service=f"s{i}") for i in range(MAX_SERVICES + 1)]},
            {"services": [dict(GET42, extra=1)]},
        ):
            self.assertEqual(self.assertRaises(ZoneError, parseAnnounce, bad).code, "BAD_REQUEST", bad)

    @given(st.recursive(st.none() | st.integers() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)))
    @settings(max_examples=200, deadline=None)
    def test_randomNeverRaisesOthers(self, payload) -> None:
        """
        Random JSON is refused with a L{ZoneError} or accepted.
        """
        for candidate in (payload, {"services": payload}, {"services": [payload]}):
            try:
                parseAnnounce(candidate)
            except ZoneError:
                pass


class CacheTests(SynchronousTestCase):
    def test_canonical(self):
        """
        The item the hub writes is already in the form synchronisation
        writes on the devices: their copies are byte for byte the hub's.
        """
        services = [{"service": "échos", "version": "1.0", "methods": ["b", "a"]}]
        data = encodeCache(withDevice(withDevice({}, "z/b", services), "z/a", services))
        chunker = JSONChunker()
        self.assertEqual(chunker.join(chunker.split(data)), data)

    """
    Editing, encoding and searching the cache.
    """

    def test_editAndFind(self) -> None:
        """
        Devices are added, replaced and removed; the input is never changed.
        """
        empty = {}
        one = withDevice(empty, "B", [GET42])
        two = withDevice(one, "C", [GET42, {"service": "echo", "version": "0.1", "methods": ["say"]}])
        self.assertEqual(empty, {})
        self.assertEqual(
            findServices(two, "get42"),
            [dict(GET42, device="B"), dict(GET42, device="C")],
        )
        self.assertEqual(len(findServices(two)), 3)
        self.assertEqual(findServices(withoutDevice(two, "C")), [dict(GET42, device="B")])
        self.assertEqual(findServices(withDevice(two, "C", []), "echo"), [])

    def test_roundTrip(self) -> None:
        """
        An encoded cache decodes to itself.
        """
        cache = withDevice({}, "B", [GET42])
        self.assertEqual(decodeCache(encodeCache(cache)), cache)

    def test_decodeTolerant(self) -> None:
        """
        A missing or damaged item reads as empty; a damaged entry is dropped
        and the others kept.
        """
        self.assertEqual(decodeCache(None), {})
        self.assertEqual(decodeCache(b"\xff"), {})
        self.assertEqual(decodeCache(b"[1]"), {})
        data = json.dumps({"B": {"services": [GET42]}, "C": {"services": "junk"}, "D": 3}).encode()
        self.assertEqual(decodeCache(data), {"B": {"services": [GET42]}})

    def test_defaultItem(self) -> None:
        """
        The default item C{{}} is an empty cache.
        """
        self.assertEqual(decodeCache(b"{}"), {})
