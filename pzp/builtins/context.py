# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The built-in C{context} service: read and write the device's context
objects, the synced items C{items/context/NAME.json}.

Each object is a JSON object in its own item, so two devices that change
different objects never conflict, and synchronisation carries each change
to the rest of the zone.  Writes go through L{pz.sync.items.ItemTree}, so
they are atomic and confined to the items folder like every other item.
"""

import json
import os
import stat

from pz.errors import ZoneError
from pz.zoneservice import NAME, ZoneService, checkName, exposed

__all__ = ["ContextService", "MAX_OBJECT_BYTES"]

#: The largest context object accepted, encoded: context objects are small
#: records (a location, a preference), not files, which C{files} carries.
MAX_OBJECT_BYTES = 64 * 1024


def _path(name) -> str:
    try:
        checkName("context object", name)
    except ZoneError as e:
        raise ZoneError("BAD_ARGUMENTS", e.message) from None
    return f"context/{name}.json"


class ContextService(ZoneService):
    """
    Context objects by name (a letter then letters, digits, C{_} or C{-}).

    @ivar _items: the device's L{pz.sync.items.ItemTree}.
    """

    name = "context"
    version = "1.0"

    def __init__(self, items) -> None:
        self._items = items

    @exposed
    def list(self) -> list:
        """
        The names of the context objects, sorted.  Only regular files at a
        context item location count; a linked folder is refused as the
        item tree refuses it.
        """
        folder = os.path.join(self._items.root, "context")
        try:
            mode = os.lstat(folder).st_mode
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(mode):
            raise ZoneError("SYNC_BAD_PATH", f"{folder} is not a folder")
        names = []
        for entry in os.scandir(folder):
            base = entry.name[: -len(".json")]
            if entry.name.endswith(".json") and NAME.match(base) and entry.is_file(follow_symlinks=False):
                names.append(base)
        return sorted(names)

    @exposed
    def read(self, name: str):
        """
        The object called C{name}, or C{null} if there is none.

        @raise ZoneError: C{SYNC_BAD_ITEM} if the stored item is not a
            JSON object (it came from elsewhere, damaged).
        """
        data = self._items.read(_path(name))
        if data is None:
            return None
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ZoneError("SYNC_BAD_ITEM", f"context object {name!r} is not valid JSON")
        if not isinstance(value, dict):
            raise ZoneError("SYNC_BAD_ITEM", f"context object {name!r} is not a JSON object")
        return value

    @exposed
    def write(self, name: str, value: dict) -> None:
        """
        Replace (or create) the object called C{name}.

        @raise ZoneError: C{BAD_ARGUMENTS} for a bad name or an object that
            is larger than L{MAX_OBJECT_BYTES} or not strict JSON.
        """
        path = _path(name)
        try:
            data = json.dumps(value, allow_nan=False, sort_keys=True, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise ZoneError("BAD_ARGUMENTS", f"context object {name!r} is not JSON: {e}")
        if len(data) > MAX_OBJECT_BYTES:
            raise ZoneError(
                "BAD_ARGUMENTS",
                f"context object {name!r} is {len(data)} bytes, more than {MAX_OBJECT_BYTES}",
            )
        self._items.write(path, data)

    @exposed
    def remove(self, name: str) -> bool:
        """
        Remove the object called C{name}.

        @return: whether there was one.
        """
        path = _path(name)
        if self._items.read(path) is None:
            return False
        self._items.remove(path)
        return True
