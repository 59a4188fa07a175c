# -*- test-case-name: tests.pz.sync.test_items -*-
"""
The zone's items: the one folder, C{DIR/zone/items/}, that holds exactly
what synchronises, at the same relative paths on the hub and every device.

The webinos Synchronisation specification makes synchronisation file
based: each item lives at a known place, and anything elsewhere is not
synchronised.  So a path is accepted only if it names one of those places
(L{classify}), and is confined to the folder: no C{..}, nothing absolute,
and never through a symbolic link, since a path that came over the wire
must not write outside the zone.  Writes open each folder relative to the
one above without following links, and rename into the folder they opened,
so a folder swapped for a link after the check is not written through
either.  Writes are atomic (a temporary file in
C{DIR/zone/sync/tmp}, on the same filesystem, fsynced, then renamed over
the old file, then the directory fsynced), so a link dropped or a process
killed in the middle leaves the old item or the new one, never a mix.  The
losing side of a conflict is kept under C{DIR/zone/conflicts/}, outside the
synchronised folder, for the person to see.
"""

import os
import re
import shutil
import stat
import tempfile
import time
from typing import Optional, Union

import attrs
from twisted.logger import Logger

from pz.errors import ZoneError
from pz.files import privateDirectory
from pz.sync.defaults import DEFAULTS

__all__ = [
    "ItemRule", "ItemTree", "Signature", "classify", "selection", "sharedRule",
    "CATEGORIES", "SHAREABLE", "ALWAYS", "CONSTRAINED", "DEFAULTS", "MAX_PATH",
]

#: Every category an item belongs to, in the order people read them.
CATEGORIES = (
    "certificates", "crl", "policies", "preferences", "userdetails",
    "servicecache", "context", "userdata", "friends",
)
#: The categories a zone may share with a friend zone, where its policy
#: lets it (L{sharedRule}): what the person keeps, not the zone's own
#: machinery (certificates, policy, service cache) nor what friends shared.
SHAREABLE = ("preferences", "userdetails", "context", "userdata")
#: Categories every device synchronises whatever its preferences: without
#: the trusted certificates and the revocation list a device cannot tell
#: a zone peer from a revoked one.
ALWAYS = ("certificates", "crl")
#: What a constrained device synchronises: the webinos Synchronisation
#: specification lets a device "with small processing power or memory
#: constraints" hold only the certificates and the revocation list.
CONSTRAINED = ("certificates", "crl")
#: The longest item path accepted, in characters.
MAX_PATH = 1024
#: The longest single path part, in UTF-8 bytes (the usual NAME_MAX).
_MAX_PART = 255
#: The webinos preferences name the user data category C{"user data"}.
_PREFERENCE_KEYS = {"userdata": "user data"}


@attrs.frozen
class ItemRule:
    """
    What an item path is: how its content is chunked (C{kind}), which
    preference selects it (C{category}) and whether it flows only from the
    hub (C{oneWay}).
    """

    path: str
    kind: str
    category: str
    oneWay: bool


@attrs.frozen
class Signature:
    """
    What a scan saw of a file, cheap to compare: when it differs from the
    last one recorded, the file may have changed and is hashed again.
    """

    size: int
    mtimeNs: int
    ctimeNs: int
    inode: int


def _bad(path, reason: str) -> ZoneError:
    shown = repr(path[:80]) if isinstance(path, str) else "nothing"
    return ZoneError("SYNC_BAD_PATH", f"{shown} is not an item path: {reason}")


def _rule(path: str, parts: list) -> Optional[ItemRule]:
    name = parts[-1]
    if parts[0] == "certificates" and len(parts) == 3 and parts[1] in ("trusted-pzh", "trusted-pzp"):
        if name.endswith(".pem") and len(name) > 4:
            return ItemRule(path, "pem", "certificates", True)
    elif len(parts) == 1:
        simple = {
            "crl.pem": ("pem", "crl", True),
            "preferences.json": ("json", "preferences", False),
            "userdetails.json": ("json", "userdetails", False),
            "servicecache.json": ("json", "servicecache", True),
        }.get(name)
        if simple:
            return ItemRule(path, *simple)
    elif parts == ["policies", "policy.xml"]:
        return ItemRule(path, "xacml", "policies", False)
    elif parts[0] == "context" and len(parts) == 2:
        if name.endswith(".json") and len(name) > 5:
            return ItemRule(path, "json", "context", False)
    elif parts[0] == "userdata":
        return ItemRule(path, "data", "userdata", False)
    elif parts[0] == "friends" and len(parts) >= 3 and _ZONE_FOLDER.fullmatch(parts[1]):
        # What a friend zone's hub shared with this zone (the hub's sharing):
        # its CRL, always, and the items its policy lets this zone have,
        # kept as they came.  Only the hub writes them.
        if parts[2:] == ["crl.pem"]:
            return ItemRule(path, "pem", "crl", True)
        if parts[2] == "items" and len(parts) > 3 and sharedRule("/".join(parts[3:])):
            return ItemRule(path, "data", "friends", True)
    return None


#: A friend zone's folder under C{friends/}: its id, made file-safe the way
#: L{pz.sync.zoneitems.friendFolder} does.
_ZONE_FOLDER = re.compile(r"[A-Za-z0-9_.@-]+")


def sharedRule(path: str) -> Optional[ItemRule]:
    """
    The rule of an item this zone may share with a friend zone (one of
    L{SHAREABLE}), or None for any other path, valid or not.
    """
    try:
        rule = classify(path)
    except ZoneError:
        return None
    return rule if rule.category in SHAREABLE else None


def classify(path: str) -> ItemRule:
    """
    The rule of an item path (relative, C{/}-separated), or
    C{ZoneError("SYNC_BAD_PATH")} if it could lead outside the items folder
    or is not one of the item locations.
    """
    if not isinstance(path, str) or not path:
        raise _bad(path, "it is empty")
    if len(path) > MAX_PATH:
        raise _bad(path, f"it is longer than {MAX_PATH} characters")
    if path.startswith("/"):
        raise _bad(path, "it is absolute")
    if "\\" in path or "\x00" in path:
        raise _bad(path, "it holds a backslash or a NUL")
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(path, "it is not valid UTF-8") from None
    parts = path.split("/")
    if "" in parts:
        raise _bad(path, "it has an empty part")
    if "." in parts or ".." in parts:
        raise _bad(path, "it has a '.' or '..' part")
    if any(len(part) > _MAX_PART for part in encoded.split(b"/")):
        raise _bad(path, f"a part is longer than {_MAX_PART} bytes")
    rule = _rule(path, parts)
    if rule is None:
        raise _bad(path, "it is not one of the zone's item locations")
    return rule


def _yes(value) -> Optional[bool]:
    if value is True or value == "yes":
        return True
    if value is False or value == "no":
        return False
    return None


def _choices(sync, into: dict) -> None:
    if not isinstance(sync, dict):
        return
    for category in CATEGORIES:
        for key in (category, _PREFERENCE_KEYS.get(category)):
            choice = _yes(sync.get(key)) if key else None
            if choice is not None:
                into[category] = choice


def selection(preferences: dict, deviceId: str, constrained: bool) -> frozenset:
    """
    The categories C{deviceId} synchronises: C{preferences["synchronise"]}
    says C{"yes"} or C{"no"} per category (C{"user data"} for user data;
    a category not named is synchronised, the specification's default),
    C{preferences["synchronise"]["devices"][deviceId]} overrides it for one
    device, L{ALWAYS} is always in, and a constrained device gets
    L{CONSTRAINED} only.
    """
    if constrained:
        return frozenset(CONSTRAINED)
    chosen = dict.fromkeys(CATEGORIES, True)
    sync = preferences.get("synchronise") if isinstance(preferences, dict) else None
    _choices(sync, chosen)
    devices = sync.get("devices") if isinstance(sync, dict) else None
    if isinstance(devices, dict):
        _choices(devices.get(deviceId), chosen)
    return frozenset(c for c, yes in chosen.items() if yes) | frozenset(ALWAYS)


def _fileSafe(origin: str) -> str:
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in origin)
    return safe[:64] or "unknown"


class ItemTree:
    """
    The items folder of one side, with its conflicts folder and its working
    folder (the sync state and temporary files).

    @ivar root: C{zonePath/items}, what synchronises.
    @ivar conflictsRoot: C{zonePath/conflicts}, the kept losing versions.
    @ivar workPath: C{zonePath/sync}, holding C{statePath} and C{tmpPath}.
    """

    _log = Logger()

    def __init__(self, zonePath: str) -> None:
        self.zonePath = os.path.abspath(zonePath)
        self.root = os.path.join(self.zonePath, "items")
        self.conflictsRoot = os.path.join(self.zonePath, "conflicts")
        self.workPath = os.path.join(self.zonePath, "sync")
        self.tmpPath = os.path.join(self.workPath, "tmp")
        self.statePath = os.path.join(self.workPath, "state.db")
        self._skipped = set()

    def create(self, defaults: dict = DEFAULTS) -> None:
        """
        Make the folders (0700) and write each default item that is
        missing; an existing item is never overwritten, so calling this
        again (a restart, a second enrolment) keeps what the person changed.
        """
        for path in (self.zonePath, self.root, self.conflictsRoot, self.workPath, self.tmpPath):
            privateDirectory(path)
        for folder in ("certificates/trusted-pzh", "certificates/trusted-pzp",
                       "policies", "context", "userdata"):
            os.close(self._openFolder(self.root, folder.split("/")))
        for path, data in defaults.items():
            target = self.resolve(path)
            if not os.path.lexists(target):
                self.write(path, data)

    def check(self) -> None:
        """
        Refuse (C{SYNC_ITEMS_MISSING}) an items folder that is missing, not
        a directory (a symbolic link included) or holds no file at all: an
        unmounted disk or a deleted folder must read as an error, never as
        every item deleted.
        """
        self._checkRoot("SYNC_ITEMS_MISSING")
        if not _holdsFile(self.root):
            raise ZoneError("SYNC_ITEMS_MISSING", f"{self.root} holds no file (is its disk mounted?)")

    def _checkRoot(self, linkCode: str = "SYNC_BAD_PATH") -> None:
        """
        Refuse an items folder that is missing or not a folder; one that is
        a symbolic link with C{linkCode}: for a path on its way it is a bad
        path, for the folder as a whole a missing one.
        """
        try:
            mode = os.lstat(self.root).st_mode
        except FileNotFoundError:
            raise ZoneError("SYNC_ITEMS_MISSING", f"{self.root} is missing") from None
        if stat.S_ISLNK(mode):
            raise ZoneError(linkCode, f"{self.root} is a symbolic link, not a folder")
        if not stat.S_ISDIR(mode):
            raise ZoneError("SYNC_ITEMS_MISSING", f"{self.root} is not a folder")

    def resolve(self, path: str) -> str:
        """
        The absolute file name of item C{path}, after L{classify} and after
        refusing (C{SYNC_BAD_PATH}) a symbolic link anywhere on the way:
        the items folder, each folder below it, and the file itself.  A
        part that does not exist yet is fine; it is created on write.
        Callers that read by name (the chunkers stream large items) use
        it; this tree's own writes also go through open folders.
        """
        classify(path)
        self._checkRoot()
        current = self.root
        parts = path.split("/")
        for index, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                break
            if stat.S_ISLNK(mode):
                raise _bad(path, f"{'/'.join(parts[:index + 1])} is a symbolic link")
            last = index == len(parts) - 1
            if not last and not stat.S_ISDIR(mode):
                raise _bad(path, f"{'/'.join(parts[:index + 1])} is not a folder")
            if last and not stat.S_ISREG(mode):
                raise _bad(path, "it is not a regular file")
        return os.path.join(self.root, *parts)

    def openItem(self, path: str) -> Optional[int]:
        """
        A read-only descriptor of item C{path}, opened without following a
        symbolic link at any level (each folder is opened in its parent,
        so none can be swapped for a link between the check and the open),
        or None if it does not exist.  The caller closes it.
        """
        self.resolve(path)
        parts = path.split("/")
        try:
            folder = self._openFolder(self.root, parts[:-1], create=False)
        except FileNotFoundError:
            return None
        try:
            return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise _bad(path, e.strerror) from None
        finally:
            os.close(folder)

    def read(self, path: str) -> Optional[bytes]:
        """
        The content of item C{path}, or None if it does not exist.
        """
        fd = self.openItem(path)
        if fd is None:
            return None
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def tempFile(self) -> tuple:
        """
        A new temporary file (0600) in C{sync/tmp}, open for binary
        writing, and its name: fill it, close it, then L{install} it.
        """
        privateDirectory(self.tmpPath)
        fd, name = tempfile.mkstemp(prefix="item-", dir=self.tmpPath)
        return os.fdopen(fd, "wb"), name

    def discardTemps(self) -> None:
        """
        Remove temporary files left by a process that died mid-transfer.
        """
        if os.path.isdir(self.tmpPath):
            for name in os.listdir(self.tmpPath):
                try:
                    os.unlink(os.path.join(self.tmpPath, name))
                except (FileNotFoundError, IsADirectoryError):
                    pass

    def write(self, path: str, data: bytes) -> None:
        """
        Replace item C{path} by C{data}, atomically and durably.
        """
        self.resolve(path)
        f, name = self.tempFile()
        try:
            with f:
                f.write(data)
        except BaseException:
            os.unlink(name)
            raise
        self.install(path, name)

    def install(self, path: str, tempPath: str) -> None:
        """
        Put the temporary file C{tempPath} (from L{tempFile}) in place as
        item C{path}: fsync it, rename it over the old item, fsync the
        folder.  The temporary file is used up either way: renamed into
        place, or removed if anything fails, leaving the old item whole.
        """
        if os.path.dirname(os.path.abspath(tempPath)) != self.tmpPath:
            raise ValueError(f"{tempPath} is not a temporary file of {self.tmpPath}")
        folder = None
        try:
            self.resolve(path)
            parts = path.split("/")
            folder = self._openFolder(self.root, parts[:-1])
            fd = os.open(tempPath, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fchmod(fd, 0o600)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tempPath, parts[-1], dst_dir_fd=folder)
        except BaseException:
            if folder is not None:
                os.close(folder)
            try:
                os.unlink(tempPath)
            except FileNotFoundError:
                pass
            raise
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def remove(self, path: str) -> None:
        """
        Delete item C{path} if it exists (the tombstone that records the
        deletion is the sync state's business).
        """
        self.resolve(path)
        parts = path.split("/")
        try:
            folder = self._openFolder(self.root, parts[:-1], create=False)
        except FileNotFoundError:
            return
        try:
            os.unlink(parts[-1], dir_fd=folder)
            os.fsync(folder)
        except FileNotFoundError:
            pass
        finally:
            os.close(folder)

    def _openFolder(self, base: str, parts: list, create: bool = True) -> int:
        """
        Open the folder C{parts} below C{base} one level at a time, each
        relative to the one above and never following a symbolic link, so
        that what was checked is what is written to, even if a folder is
        swapped for a link meanwhile.  Missing folders are made (0700, and
        their parent fsynced so the new name survives a crash) when
        C{create}, else C{FileNotFoundError}.  Returns a descriptor of the
        folder for the caller to close.
        """
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(base, flags)
        except FileNotFoundError:
            raise ZoneError("SYNC_ITEMS_MISSING", f"{base} is missing") from None
        except OSError as e:
            raise ZoneError("SYNC_BAD_PATH", f"{base} is not a folder ({e.strerror})") from None
        try:
            for index, part in enumerate(parts):
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                    except FileExistsError:
                        pass
                    else:
                        os.fsync(fd)
                    child = self._openChild(fd, part, flags, parts[:index + 1])
                except OSError:
                    child = self._openChild(fd, part, flags, parts[:index + 1])
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _openChild(fd: int, part: str, flags: int, shown: list) -> int:
        try:
            return os.open(part, flags, dir_fd=fd)
        except OSError as e:
            raise ZoneError(
                "SYNC_BAD_PATH",
                f"{'/'.join(shown)} is not a folder or is a symbolic link ({e.strerror})",
            ) from None

    def scan(self) -> dict:
        """
        Every regular file under the items folder at an item location, as
        C{{path: Signature}}.  Symbolic links and files elsewhere are
        skipped (and logged once each).  Raises C{SYNC_ITEMS_MISSING} (see
        L{check}) rather than answer with a partial or empty tree, which the
        caller would take for deletions.
        """
        self.check()
        found = {}
        pending = [(self.root, "")]
        while pending:
            folder, prefix = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as e:
                raise ZoneError("SYNC_ITEMS_MISSING", f"cannot read {folder}: {e.strerror}") from None
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_symlink():
                    self._skip(rel, "it is a symbolic link")
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    try:
                        classify(rel)
                    except ZoneError:
                        self._skip(rel, "it is not at an item location")
                        continue
                    st = entry.stat(follow_symlinks=False)
                    found[rel] = Signature(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        return found

    def _skip(self, rel: str, reason: str) -> None:
        if rel not in self._skipped:
            self._skipped.add(rel)
            self._log.warn("Not synchronising {path!r} in the items folder: {reason}",
                           path=rel, reason=reason)

    def keepConflict(self, path: str, source: Union[bytes, str], origin: str, time: float) -> str:
        """
        Keep a losing version of item C{path}, the bytes C{source} or the
        content of the file named C{source}, as
        C{conflicts/PATH.ORIGIN.TIME} (origin made file-safe, time in UTC;
        C{.1}, C{.2}... if that name is taken).  Never overwrites a kept
        version.  Returns the name relative to the zone folder.
        """
        parts = classify(path).path.split("/")
        privateDirectory(self.conflictsRoot)
        folder = self._openFolder(self.conflictsRoot, parts[:-1])
        try:
            name = f"{parts[-1]}.{_fileSafe(origin)}.{_utcStamp(time)}"
            f, temp = self.tempFile()
            try:
                with f:
                    if isinstance(source, bytes):
                        f.write(source)
                    else:
                        with open(source, "rb") as original:
                            shutil.copyfileobj(original, f)
                    f.flush()
                    os.fsync(f.fileno())
                kept = _linkFresh(temp, folder, name)
            finally:
                os.unlink(temp)
            os.fsync(folder)
        finally:
            os.close(folder)
        return "/".join(["conflicts"] + parts[:-1] + [kept])


def _holdsFile(top: str) -> bool:
    """
    Whether some regular file (not a link) is anywhere below C{top}; stops
    at the first one, so the check is cheap on a full tree.
    """
    pending = [top]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        return True
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError:
            continue
    return False


def _utcStamp(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def _linkFresh(temp: str, folder: int, base: str) -> str:
    """
    Give C{temp} the name C{base} in C{folder}, or C{base.1}, C{base.2}...
    whichever is free first: a hard link fails rather than replace an
    existing name.  Returns the name given.
    """
    for n in range(10000):
        candidate = base if n == 0 else f"{base}.{n}"
        try:
            os.link(temp, candidate, dst_dir_fd=folder)
        except FileExistsError:
            continue
        return candidate
    raise ZoneError("SYNC_BAD_PATH", f"too many conflict copies named {base}")
