# -*- test-case-name: tests.pzp.test_builtins -*-
"""
The built-in C{files} service: list the files under C{items/userdata/} and
fetch them in bounded pieces.

A file is fetched by calling C{read} for one piece at a time (at most
L{MAX_PIECE} bytes, base64 in the answer), so no answer outgrows a frame
and a large file never sits whole in either device's memory; the caller
asks for the next piece when it has the last one.  Paths go through
L{pz.sync.items.ItemTree.resolve}: nothing outside the user data folder,
no C{..}, no symbolic link on the way.
"""

import base64
import os
import stat

from pz.errors import ZoneError
from pz.zoneservice import ZoneService, exposed

__all__ = ["FilesService", "MAX_PIECE", "MAX_LISTED"]

#: The largest piece one C{read} answers with, in bytes (before base64).
MAX_PIECE = 48 * 1024
#: The most files one C{list} names.
MAX_LISTED = 1000


class FilesService(ZoneService):
    """
    The device's user data files.

    @ivar _items: the device's L{pz.sync.items.ItemTree}.
    """

    name = "files"
    version = "1.0"

    def __init__(self, items) -> None:
        self._items = items

    def _open(self, path) -> int:
        """
        A descriptor of user file C{path}, no link followed on the way.
        """
        if not isinstance(path, str) or not path:
            raise ZoneError("BAD_ARGUMENTS", "path must be a non-empty string")
        try:
            fd = self._items.openItem("userdata/" + path)
        except ZoneError as e:
            raise ZoneError("BAD_ARGUMENTS", e.message) from None
        if fd is None:
            raise ZoneError("BAD_ARGUMENTS", f"no file {path!r}")
        return fd

    @exposed
    def list(self) -> list:
        """
        The files under C{items/userdata/}, as C{{"path", "size"}} sorted
        by path, at most L{MAX_LISTED}; symbolic links are skipped.
        """
        top = os.path.join(self._items.root, "userdata")
        try:
            if not stat.S_ISDIR(os.lstat(top).st_mode):
                return []
        except FileNotFoundError:
            return []
        found = []
        pending = [(top, "")]
        while pending and len(found) < MAX_LISTED:
            folder, prefix = pending.pop()
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, prefix + entry.name + "/"))
                elif entry.is_file(follow_symlinks=False) and len(found) < MAX_LISTED:
                    found.append({"path": prefix + entry.name, "size": entry.stat(follow_symlinks=False).st_size})
        return sorted(found, key=lambda f: f["path"])

    @exposed
    def read(self, path: str, offset: int = 0, length: int = MAX_PIECE) -> dict:
        """
        One piece of file C{path}: C{{"data": BASE64, "offset", "size",
        "eof"}}, C{size} being the whole file's.

        @raise ZoneError: C{BAD_ARGUMENTS} for a bad path, a missing file,
            or an offset or length out of range.
        """
        if offset < 0 or not 0 < length <= MAX_PIECE:
            raise ZoneError("BAD_ARGUMENTS", f"offset must be >= 0 and length 1 to {MAX_PIECE}")
        fd = self._open(path)
        try:
            size = os.fstat(fd).st_size
            if offset > size:
                raise ZoneError("BAD_ARGUMENTS", f"offset {offset} is beyond the end ({size} bytes)")
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return {
            "data": base64.b64encode(data).decode("ascii"),
            "offset": offset,
            "size": size,
            "eof": offset + len(data) >= size,
        }
