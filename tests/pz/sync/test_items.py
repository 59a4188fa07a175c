"""
Tests for L{pz.sync.items}: item paths, the items folder, atomic writes,
scans, conflict copies, the default items and the per-device selection.
"""

import json
import os

from defusedxml import ElementTree
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.sync import items
from pz.sync.items import (
    ALWAYS, CATEGORIES, CONSTRAINED, DEFAULTS, ItemTree, Signature, classify, selection,
)

#: Paths refused by L{classify}, with what the refusal says.
BAD_PATHS = [
    ("", "it is empty"),
    ("/preferences.json", "absolute"),
    ("/etc/passwd", "absolute"),
    ("userdata/../crl.pem", "'..' part"),
    ("../outside", "'..' part"),
    ("userdata/..", "'..' part"),
    ("userdata/./a", "'..' part"),
    ("userdata/a\\..\\..\\x", "backslash"),
    ("userdata/a\x00.txt", "NUL"),
    ("userdata//a.txt", "empty part"),
    ("userdata/a/", "empty part"),
    ("userdata", "item locations"),
    ("notes.txt", "item locations"),
    ("keys/device.key", "item locations"),
    ("certificates/trusted-pzh/a.txt", "item locations"),
    ("certificates/trusted-pzh/.pem", "item locations"),
    ("certificates/other/a.pem", "item locations"),
    ("certificates/trusted-pzh/x/a.pem", "item locations"),
    ("context/a/b.json", "item locations"),
    ("context/a.txt", "item locations"),
    ("policies/other.xml", "item locations"),
    ("userdata/" + "a" * 1020, "longer than 1024 characters"),
    ("userdata/" + "\u00e9" * 128, "longer than 255 bytes"),
    ("userdata/\udc80", "UTF-8"),
]


def _snapshot(top: str) -> dict:
    """
    Every file and folder under C{top} with its content (files) or None
    (folders), symbolic links as their target.
    """
    seen = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                seen[path] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                seen[path] = None
            else:
                with open(path, "rb") as f:
                    seen[path] = f.read()
    return seen


def _mode(path: str) -> int:
    return os.lstat(path).st_mode & 0o777


class ClassifyTests(SynchronousTestCase):
    """
    L{classify}: the item locations and nothing else.
    """

    def test_locations(self):
        """
        Each known location has its kind, category and direction.
        """
        expected = {
            "certificates/trusted-pzh/hub.pem": ("pem", "certificates", True),
            "certificates/trusted-pzp/laptop.pem": ("pem", "certificates", True),
            "crl.pem": ("pem", "crl", True),
            "policies/policy.xml": ("xacml", "policies", False),
            "preferences.json": ("json", "preferences", False),
            "userdetails.json": ("json", "userdetails", False),
            "servicecache.json": ("json", "servicecache", True),
            "context/location.json": ("json", "context", False),
            "userdata/a.txt": ("data", "userdata", False),
            "userdata/deep/er/still/photo.jpg": ("data", "userdata", False),
            "userdata/caf\u00e9 menu": ("data", "userdata", False),
        }
        for path, (kind, category, oneWay) in expected.items():
            rule = classify(path)
            self.assertEqual((rule.path, rule.kind, rule.category, rule.oneWay),
                             (path, kind, category, oneWay), path)
            self.assertIn(rule.category, CATEGORIES)

    def test_badPaths(self):
        """
        Every path that could leave the folder or is not an item location
        is refused with C{SYNC_BAD_PATH} and a sentence.
        """
        for path, why in BAD_PATHS:
            e = self.assertRaises(ZoneError, classify, path)
            self.assertEqual(e.code, "SYNC_BAD_PATH", why)
            self.assertIn(why, e.message)

    def test_notAString(self):
        """
        Something that is not a string is refused, not crashed on.
        """
        for path in (None, 3, b"preferences.json", ["crl.pem"]):
            self.assertEqual(self.assertRaises(ZoneError, classify, path).code, "SYNC_BAD_PATH")

    def test_longestAccepted(self):
        """
        A path of exactly the limit is accepted; one more is not.
        """
        path = "userdata/" + "/".join(["a" * 100] * 10)
        path = path + "b" * (items.MAX_PATH - len(path))
        self.assertEqual(classify(path).category, "userdata")
        self.assertRaises(ZoneError, classify, path + "c")


class _Tree(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(os.umask, os.umask(0o022))
        self.base = os.path.abspath(self.mktemp())
        os.mkdir(self.base)
        self.tree = ItemTree(os.path.join(self.base, "zone"))
        self.tree.create(DEFAULTS)
        self.outside = os.path.join(self.base, "outside")
        os.mkdir(self.outside)

    def path(self, *parts) -> str:
        return os.path.join(self.tree.root, *parts)

    def assertRefused(self, code, f, *args):
        """
        C{f(*args)} raises C{ZoneError(code)} and changes no file of the
        zone or outside it.
        """
        before = _snapshot(self.base)
        e = self.assertRaises(ZoneError, f, *args)
        self.assertEqual(e.code, code)
        self.assertEqual(_snapshot(self.base), before)
        return e


class CreateTests(_Tree):
    """
    L{ItemTree.create}: the layout and the defaults.
    """

    def test_layout(self):
        """
        The items, conflicts and working folders and every item folder
        exist, 0700, and the defaults are written 0600.
        """
        for folder in (self.tree.zonePath, self.tree.root, self.tree.conflictsRoot,
                       self.tree.workPath, self.tree.tmpPath,
                       self.path("certificates", "trusted-pzh"),
                       self.path("certificates", "trusted-pzp"),
                       self.path("policies"), self.path("context"), self.path("userdata")):
            self.assertEqual(_mode(folder), 0o700, folder)
        for path, data in DEFAULTS.items():
            self.assertEqual(self.tree.read(path), data)
            self.assertEqual(_mode(self.tree.resolve(path)), 0o600, path)
        self.assertEqual(self.tree.statePath, os.path.join(self.tree.workPath, "state.db"))

    def test_neverOverwrites(self):
        """
        Creating again writes only what is missing: the person's changes
        stay.
        """
        self.tree.write("preferences.json", b'{"slave": "yes"}\n')
        os.unlink(self.path("userdetails.json"))
        self.tree.create(DEFAULTS)
        self.assertEqual(self.tree.read("preferences.json"), b'{"slave": "yes"}\n')
        self.assertEqual(self.tree.read("userdetails.json"), DEFAULTS["userdetails.json"])

    def test_badDefault(self):
        """
        A default at a path that is not an item location is refused.
        """
        self.assertRefused("SYNC_BAD_PATH", self.tree.create, {"../x": b""})


class PathTests(_Tree):
    """
    Nothing is read or written outside the items folder, whatever the path.
    """

    def test_badPathsWriteNothing(self):
        """
        Every bad path is refused by write, install, read, remove and
        keepConflict with C{SYNC_BAD_PATH}, and no file changes.
        """
        for path, why in BAD_PATHS:
            self.assertRefused("SYNC_BAD_PATH", self.tree.write, path, b"x")
            self.assertRefused("SYNC_BAD_PATH", self.tree.read, path)
            self.assertRefused("SYNC_BAD_PATH", self.tree.remove, path)
            self.assertRefused("SYNC_BAD_PATH", self.tree.keepConflict, path, b"x", "o", 0)
            before = _snapshot(self.base)
            f, temp = self.tree.tempFile()
            f.close()
            e = self.assertRaises(ZoneError, self.tree.install, path, temp)
            self.assertEqual(e.code, "SYNC_BAD_PATH", why)
            self.assertEqual(_snapshot(self.base), before, why)
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_symlinkedParent(self):
        """
        A folder on the way that is a symbolic link (to a folder outside)
        is refused: nothing is written through it.
        """
        os.symlink(self.outside, self.path("userdata", "link"))
        e = self.assertRefused("SYNC_BAD_PATH", self.tree.write, "userdata/link/x.txt", b"x")
        self.assertIn("userdata/link is a symbolic link", e.message)
        self.assertRefused("SYNC_BAD_PATH", self.tree.write, "userdata/link/deeper/x.txt", b"x")
        self.assertRefused("SYNC_BAD_PATH", self.tree.read, "userdata/link/x.txt")
        self.assertEqual(os.listdir(self.outside), [])

    def test_symlinkedCategoryFolder(self):
        """
        The same for a category folder right below items/.
        """
        os.rmdir(self.path("context"))
        os.symlink(self.outside, self.path("context"))
        e = self.assertRefused("SYNC_BAD_PATH", self.tree.write, "context/a.json", b"{}")
        self.assertIn("context is a symbolic link", e.message)
        self.assertEqual(os.listdir(self.outside), [])

    def test_symlinkedFile(self):
        """
        An item that is a symbolic link is neither read, written nor
        removed: the file it points to stays as it was.
        """
        target = os.path.join(self.outside, "secret")
        with open(target, "wb") as f:
            f.write(b"secret")
        os.unlink(self.path("preferences.json"))
        os.symlink(target, self.path("preferences.json"))
        e = self.assertRefused("SYNC_BAD_PATH", self.tree.write, "preferences.json", b"{}")
        self.assertIn("preferences.json is a symbolic link", e.message)
        self.assertRefused("SYNC_BAD_PATH", self.tree.read, "preferences.json")
        self.assertRefused("SYNC_BAD_PATH", self.tree.remove, "preferences.json")
        self.assertRefused("SYNC_BAD_PATH", self.tree.resolve, "preferences.json")

    def test_danglingSymlink(self):
        """
        A symbolic link to nothing is refused too: writing through it would
        create a file outside.
        """
        os.symlink(os.path.join(self.outside, "new"), self.path("userdata", "new.txt"))
        self.assertRefused("SYNC_BAD_PATH", self.tree.write, "userdata/new.txt", b"x")
        self.assertEqual(os.listdir(self.outside), [])

    def test_symlinkedRoot(self):
        """
        An items folder that is itself a symbolic link is refused.
        """
        os.rename(self.tree.root, os.path.join(self.outside, "items"))
        os.symlink(os.path.join(self.outside, "items"), self.tree.root)
        self.assertRefused("SYNC_BAD_PATH", self.tree.write, "preferences.json", b"{}")
        self.assertRefused("SYNC_BAD_PATH", self.tree.read, "preferences.json")

    def test_folderSwappedAfterCheck(self):
        """
        A folder swapped for a symbolic link after it was checked, just
        before the rename, is still not written through: each folder is
        opened without following links, and the folder opened is the one
        written to.
        """
        os.mkdir(self.path("userdata", "sub"))
        realReplace = os.replace

        def swapThenReplace(src, dst, **kwargs):
            os.rename(self.path("userdata", "sub"), self.path("userdata", "old"))
            os.symlink(self.outside, self.path("userdata", "sub"))
            return realReplace(src, dst, **kwargs)

        self.patch(os, "replace", swapThenReplace)
        self.tree.write("userdata/sub/x.txt", b"x")
        self.assertEqual(os.listdir(self.outside), [])
        with open(self.path("userdata", "old", "x.txt"), "rb") as f:
            self.assertEqual(f.read(), b"x")

    def test_symlinkedConflictsFolder(self):
        """
        A conflict copy is not written through a symbolic link in the
        conflicts folder either.
        """
        os.symlink(self.outside, os.path.join(self.tree.conflictsRoot, "userdata"))
        self.assertRefused("SYNC_BAD_PATH", self.tree.keepConflict, "userdata/x", b"x", "o", 0)
        self.assertEqual(os.listdir(self.outside), [])

    def test_parentIsAFile(self):
        """
        A path through an existing file is refused.
        """
        self.tree.write("userdata/a", b"file")
        self.assertRefused("SYNC_BAD_PATH", self.tree.write, "userdata/a/b", b"x")

    def test_itemIsAFolder(self):
        """
        A path naming an existing folder is refused.
        """
        os.mkdir(self.path("userdata", "folder"))
        self.assertRefused("SYNC_BAD_PATH", self.tree.write, "userdata/folder", b"x")

    def test_rootMissing(self):
        """
        Writing with no items folder is refused as C{SYNC_ITEMS_MISSING}:
        the folder is not silently made again on an unmounted disk.
        """
        os.rename(self.tree.root, self.tree.root + ".gone")
        self.assertRefused("SYNC_ITEMS_MISSING", self.tree.write, "preferences.json", b"{}")


class WriteTests(_Tree):
    """
    L{ItemTree.write} and L{ItemTree.install}: atomic and durable.
    """

    def test_roundTrip(self):
        """
        What is written is read back; missing folders are made 0700 and the
        file is 0600.
        """
        data = bytes(range(256)) * 10
        self.tree.write("userdata/a/b/c.bin", data)
        self.assertEqual(self.tree.read("userdata/a/b/c.bin"), data)
        self.assertEqual(_mode(self.path("userdata", "a")), 0o700)
        self.assertEqual(_mode(self.path("userdata", "a", "b")), 0o700)
        self.assertEqual(_mode(self.path("userdata", "a", "b", "c.bin")), 0o600)
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_readMissing(self):
        """
        A missing item reads as None.
        """
        self.assertIsNone(self.tree.read("userdata/none.txt"))
        self.assertIsNone(self.tree.read("context/none.json"))

    def test_replace(self):
        """
        Writing an existing item replaces it whole.
        """
        self.tree.write("userdata/a.txt", b"old content, long")
        self.tree.write("userdata/a.txt", b"new")
        self.assertEqual(self.tree.read("userdata/a.txt"), b"new")

    def test_failureBeforeRenameKeepsOld(self):
        """
        If the rename fails (the process dies before it), the old item is
        whole and the temporary file is gone.
        """
        self.tree.write("userdata/a.txt", b"old")

        def fail(src, dst, **kwargs):
            raise OSError(5, "Input/output error")

        self.patch(os, "replace", fail)
        self.assertRaises(OSError, self.tree.write, "userdata/a.txt", b"new")
        self.assertEqual(self.tree.read("userdata/a.txt"), b"old")
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_failureWhileFillingKeepsOld(self):
        """
        A failure while the temporary file is written leaves the old item
        and no temporary file.
        """
        self.tree.write("userdata/a.txt", b"old")

        def fail(fd):
            raise OSError(28, "No space left on device")

        self.patch(os, "fsync", fail)
        self.assertRaises(OSError, self.tree.write, "userdata/a.txt", b"new")
        self.assertEqual(self.tree.read("userdata/a.txt"), b"old")
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_fsyncFileThenRenameThenFolder(self):
        """
        The temporary file is fsynced before the rename, and the folder
        holding the item after it, so the new name survives a power cut.
        """
        events = []
        realFsync, realReplace = os.fsync, os.replace

        def fsync(fd):
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            return realFsync(fd)

        def replace(src, dst, **kwargs):
            events.append(("replace", src, dst))
            return realReplace(src, dst, **kwargs)

        self.patch(os, "fsync", fsync)
        self.patch(os, "replace", replace)
        self.tree.write("userdata/a.txt", b"new")
        [at] = [i for i, e in enumerate(events) if e[0] == "replace"]
        temp = events[at][1]
        self.assertEqual(events[at][2], "a.txt")
        self.assertEqual(os.path.dirname(temp), self.tree.tmpPath)
        self.assertIn(("fsync", temp), events[:at])
        self.assertIn(("fsync", self.path("userdata")), events[at:])

    def test_newFoldersFsynced(self):
        """
        A folder made for an item is made durable too: its parent is
        fsynced.
        """
        synced = []
        realFsync = os.fsync

        def fsync(fd):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            return realFsync(fd)

        self.patch(os, "fsync", fsync)
        self.tree.write("userdata/new/a.txt", b"x")
        self.assertIn(self.path("userdata"), synced)
        self.assertIn(self.path("userdata", "new"), synced)

    def test_install(self):
        """
        A temporary file the caller filled becomes the item; the
        temporary file is used up.
        """
        f, temp = self.tree.tempFile()
        self.assertEqual(os.path.dirname(temp), self.tree.tmpPath)
        self.assertEqual(_mode(temp), 0o600)
        with f:
            f.write(b"streamed")
        self.tree.install("userdata/big.bin", temp)
        self.assertEqual(self.tree.read("userdata/big.bin"), b"streamed")
        self.assertFalse(os.path.exists(temp))

    def test_installOnlyOwnTemps(self):
        """
        Installing a file that is not one of the tree's temporary files is
        a programming error: nothing moves.
        """
        other = os.path.join(self.outside, "x")
        with open(other, "wb") as f:
            f.write(b"x")
        self.assertRaises(ValueError, self.tree.install, "userdata/x", other)
        self.assertTrue(os.path.exists(other))
        self.assertIsNone(self.tree.read("userdata/x"))

    def test_discardTemps(self):
        """
        Temporary files left by a dead process are removed.
        """
        for _ in range(3):
            self.tree.tempFile()[0].close()
        self.tree.discardTemps()
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_readUnderMissingFolder(self):
        """
        An item under folders that do not exist reads as None, and no
        folder is made.
        """
        self.assertIsNone(self.tree.read("userdata/no/such/file"))
        self.assertFalse(os.path.exists(self.path("userdata", "no")))

    def test_remove(self):
        """
        Removing deletes the file and fsyncs its folder; removing a missing
        item, or one under a missing folder, is fine and makes nothing.
        """
        self.tree.write("context/a.json", b"{}")
        synced = []
        realFsync = os.fsync

        def fsync(fd):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            return realFsync(fd)

        self.patch(os, "fsync", fsync)
        self.tree.remove("context/a.json")
        self.assertEqual(synced, [self.path("context")])
        self.assertIsNone(self.tree.read("context/a.json"))
        self.tree.remove("context/a.json")
        self.tree.remove("userdata/no/such/file")
        self.assertFalse(os.path.exists(self.path("userdata", "no")))


class CheckTests(_Tree):
    """
    L{ItemTree.check}: a missing, replaced or empty items folder is an error.
    """

    def assertMissing(self):
        e = self.assertRaises(ZoneError, self.tree.check)
        self.assertEqual(e.code, "SYNC_ITEMS_MISSING")
        e = self.assertRaises(ZoneError, self.tree.scan)
        self.assertEqual(e.code, "SYNC_ITEMS_MISSING")
        return e

    def test_fine(self):
        """
        A created tree passes.
        """
        self.tree.check()

    def test_missing(self):
        """
        No items folder.
        """
        os.rename(self.tree.root, self.tree.root + ".gone")
        self.assertIn("missing", self.assertMissing().message)

    def test_notAFolder(self):
        """
        A file where the folder should be.
        """
        os.rename(self.tree.root, self.tree.root + ".gone")
        with open(self.tree.root, "wb"):
            pass
        self.assertIn("not a folder", self.assertMissing().message)

    def test_symlink(self):
        """
        A symbolic link where the folder should be.
        """
        os.rename(self.tree.root, os.path.join(self.outside, "items"))
        os.symlink(os.path.join(self.outside, "items"), self.tree.root)
        self.assertIn("symbolic link", self.assertMissing().message)

    def test_empty(self):
        """
        A folder with no file at all, however many folders (an unmounted
        disk, a wiped folder).
        """
        for path in DEFAULTS:
            os.unlink(self.tree.resolve(path))
        self.assertIn("no file", self.assertMissing().message)

    def test_onlySymlinks(self):
        """
        Symbolic links are not files of the tree.
        """
        for path in DEFAULTS:
            os.unlink(self.tree.resolve(path))
        with open(os.path.join(self.outside, "f"), "wb"):
            pass
        os.symlink(self.outside, self.path("userdata", "x"))
        os.symlink(os.path.join(self.outside, "f"), self.path("userdata", "f"))
        self.assertMissing()

    def test_oneNestedFile(self):
        """
        One file deep down is enough.
        """
        for path in DEFAULTS:
            os.unlink(self.tree.resolve(path))
        self.tree.write("userdata/a/b/c", b"")
        self.tree.check()


class ScanTests(_Tree):
    """
    L{ItemTree.scan}.
    """

    def setUp(self):
        super().setUp()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def test_findsEverything(self):
        """
        Every item at a known location, nested user data included, with its
        signature.
        """
        self.tree.write("userdata/a/b/c.bin", b"12345")
        self.tree.write("certificates/trusted-pzh/hub.pem", b"pem")
        self.tree.write("context/where.json", b"{}")
        found = self.tree.scan()
        self.assertEqual(
            set(found),
            set(DEFAULTS) | {"userdata/a/b/c.bin", "certificates/trusted-pzh/hub.pem",
                             "context/where.json"})
        st = os.lstat(self.path("userdata", "a", "b", "c.bin"))
        self.assertEqual(found["userdata/a/b/c.bin"],
                         Signature(5, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))

    def test_signatureChanges(self):
        """
        Rewriting a file changes its signature.
        """
        self.tree.write("userdata/a", b"1")
        before = self.tree.scan()["userdata/a"]
        self.tree.write("userdata/a", b"1")
        self.assertNotEqual(self.tree.scan()["userdata/a"], before)

    def test_skipsSymlinksAndUnknown(self):
        """
        Symbolic links (to files or folders) and files at no item location
        are skipped, each logged once however often the scan runs.
        """
        with open(os.path.join(self.outside, "f.txt"), "wb") as f:
            f.write(b"x")
        os.symlink(os.path.join(self.outside, "f.txt"), self.path("userdata", "link.txt"))
        os.symlink(self.outside, self.path("userdata", "linkdir"))
        with open(self.path("notes.txt"), "wb"):
            pass
        with open(self.path("context", "a.txt"), "wb"):
            pass
        os.mkdir(self.path("policies", "sub"))
        with open(self.path("policies", "sub", "x.xml"), "wb"):
            pass
        for _ in range(3):
            found = self.tree.scan()
        self.assertEqual(set(found), set(DEFAULTS))
        skipped = sorted(e["path"] for e in self.events if "path" in e)
        self.assertEqual(skipped, ["context/a.txt", "notes.txt", "policies/sub/x.xml",
                                   "userdata/link.txt", "userdata/linkdir"])


class KeepConflictTests(_Tree):
    """
    L{ItemTree.keepConflict}: losing versions kept outside items/.
    """

    def test_name(self):
        """
        The copy is C{conflicts/PATH.ORIGIN.TIME}: the origin's C{/} and
        C{@} made file-safe, the time in UTC, the content as given, 0600.
        """
        kept = self.tree.keepConflict("userdata/a/b.txt", b"lost", "alice@127.0.0.1/laptop",
                                      1700000000.5)
        self.assertEqual(kept, "conflicts/userdata/a/b.txt.alice_127.0.0.1_laptop.20231114T221320Z")
        full = os.path.join(self.tree.zonePath, kept)
        with open(full, "rb") as f:
            self.assertEqual(f.read(), b"lost")
        self.assertEqual(_mode(full), 0o600)
        self.assertEqual(_mode(os.path.dirname(full)), 0o700)
        self.assertFalse(full.startswith(self.tree.root + os.sep))
        self.assertNotIn("userdata/a/b.txt", self.tree.scan())
        self.assertEqual(os.listdir(self.tree.tmpPath), [])

    def test_utcWhateverTheZone(self):
        """
        The time in the name is UTC, whatever the local time zone.
        """
        self.patch(os, "environ", dict(os.environ, TZ="Asia/Kolkata"))
        kept = self.tree.keepConflict("preferences.json", b"{}", "z", 0)
        self.assertTrue(kept.endswith(".19700101T000000Z"), kept)

    def test_collisions(self):
        """
        A second and third copy with the same name get C{.1} and C{.2};
        none overwrites another.
        """
        names = [self.tree.keepConflict("crl.pem", bytes([i]), "hub", 0) for i in range(3)]
        self.assertEqual(names, ["conflicts/crl.pem.hub.19700101T000000Z",
                                 "conflicts/crl.pem.hub.19700101T000000Z.1",
                                 "conflicts/crl.pem.hub.19700101T000000Z.2"])
        for i, name in enumerate(names):
            with open(os.path.join(self.tree.zonePath, name), "rb") as f:
                self.assertEqual(f.read(), bytes([i]))

    def test_fromFile(self):
        """
        The losing version may be given as a file, copied and left in place.
        """
        f, temp = self.tree.tempFile()
        with f:
            f.write(b"spooled")
        kept = self.tree.keepConflict("userdata/x", temp, "o", 0)
        with open(os.path.join(self.tree.zonePath, kept), "rb") as f:
            self.assertEqual(f.read(), b"spooled")
        self.assertTrue(os.path.exists(temp))

    def test_fsynced(self):
        """
        The copy and its folder are fsynced.
        """
        synced = []
        realFsync = os.fsync

        def fsync(fd):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            return realFsync(fd)

        self.patch(os, "fsync", fsync)
        self.tree.keepConflict("userdata/x", b"x", "o", 0)
        self.assertIn(os.path.join(self.tree.conflictsRoot, "userdata"), synced)
        self.assertTrue(any(os.path.dirname(p) == self.tree.tmpPath for p in synced))


class DefaultsTests(SynchronousTestCase):
    """
    L{DEFAULTS}: the seed's preferences and user details, an empty service
    cache and a permissive XACML policy.
    """

    def test_preferences(self):
        """
        The webinos user preferences with their defaults.
        """
        prefs = json.loads(DEFAULTS["preferences.json"])
        self.assertEqual(prefs["ports"], {
            "provider": 8000, "provider_webServer": 9000, "pzp_webSocket": 8081,
            "pzp_web_webSocket": 8080, "pzp_tlsServer": 8040, "pzp_zeroConf": 4321,
        })
        self.assertEqual(prefs["defaultServices"], ["context", "events", "get42"])
        self.assertEqual(set(prefs["certConfiguration"]),
                         {"country", "state", "city", "orgname", "orgunit", "cn", "email"})
        self.assertEqual(
            (prefs["peer_connection"], prefs["slave"], prefs["apply_acrossPZ"],
             prefs["only_device"], prefs["service_cache"]),
            ("yes", "no", "yes", "no", "yes"))
        sync = prefs["synchronise"]
        self.assertEqual(sync["user data"], "yes")
        self.assertEqual(sync["application_manifest"], "yes")
        for category in CATEGORIES:
            key = "user data" if category == "userdata" else category
            self.assertEqual(sync[key], "yes", category)

    def test_jsonForm(self):
        """
        JSON items are in the form the JSON chunker joins to.
        """
        for path in ("preferences.json", "userdetails.json", "servicecache.json"):
            value = json.loads(DEFAULTS[path])
            self.assertEqual(DEFAULTS[path],
                             (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode())

    def test_userDetails(self):
        """
        The webinos user details, empty.
        """
        self.assertEqual(json.loads(DEFAULTS["userdetails.json"]), dict.fromkeys(
            ["name", "email", "image", "country", "serverName", "authenticationProvider",
             "social_contacts"], ""))

    def test_serviceCache(self):
        """
        An empty service cache.
        """
        self.assertEqual(json.loads(DEFAULTS["servicecache.json"]), {})

    def test_policy(self):
        """
        A well-formed XACML 3.0 PolicySet whose one Policy has one Rule
        that permits, parsed without entities.
        """
        ns = "{urn:oasis:names:tc:xacml:3.0:core:schema:wd-17}"
        root = ElementTree.fromstring(DEFAULTS["policies/policy.xml"])
        self.assertEqual(root.tag, ns + "PolicySet")
        for name in ("PolicySetId", "Version", "PolicyCombiningAlgId"):
            self.assertIn(name, root.attrib)
        self.assertIsNotNone(root.find(ns + "Target"))
        [policy] = root.findall(ns + "Policy")
        for name in ("PolicyId", "Version", "RuleCombiningAlgId"):
            self.assertIn(name, policy.attrib)
        self.assertIsNotNone(policy.find(ns + "Target"))
        [rule] = policy.findall(ns + "Rule")
        self.assertEqual(rule.get("Effect"), "Permit")
        self.assertEqual(root.findall(".//" + ns + "Rule"), [rule])

    def test_allClassified(self):
        """
        Every default is at an item location.
        """
        for path in DEFAULTS:
            classify(path)


class SelectionTests(SynchronousTestCase):
    """
    L{selection}: which categories a device synchronises.
    """

    def prefs(self, **sync):
        prefs = json.loads(DEFAULTS["preferences.json"])
        prefs["synchronise"].update(sync)
        return prefs

    def test_defaultsAll(self):
        """
        With the default preferences a device gets every category.
        """
        self.assertEqual(selection(self.prefs(), "z/a", False), frozenset(CATEGORIES))

    def test_perCategory(self):
        """
        C{"no"} leaves a category out, each on its own.
        """
        for category in CATEGORIES:
            if category in ALWAYS:
                continue
            key = "user data" if category == "userdata" else category
            chosen = selection(self.prefs(**{key: "no"}), "z/a", False)
            self.assertEqual(chosen, frozenset(CATEGORIES) - {category}, category)

    def test_userDataKey(self):
        """
        The seed's C{"user data"} key selects the user data category.
        """
        self.assertNotIn("userdata", selection(self.prefs(**{"user data": "no"}), "z/a", False))
        self.assertIn("userdata", selection(self.prefs(**{"user data": "yes"}), "z/a", False))

    def test_missingMeansYes(self):
        """
        No preferences, or no C{synchronise} map, or a malformed one:
        everything.
        """
        for prefs in ({}, {"synchronise": None}, {"synchronise": []}, None, "x",
                      {"synchronise": {"policies": "maybe"}}):
            self.assertEqual(selection(prefs, "z/a", False), frozenset(CATEGORIES), repr(prefs))

    def test_perDevice(self):
        """
        C{synchronise.devices[id]} overrides the zone's choice for that
        device only.
        """
        prefs = self.prefs(**{"user data": "no",
                              "devices": {"z/phone": {"context": "no"},
                                          "z/laptop": {"user data": "yes"}}})
        self.assertEqual(selection(prefs, "z/phone", False),
                         frozenset(CATEGORIES) - {"userdata", "context"})
        self.assertEqual(selection(prefs, "z/laptop", False), frozenset(CATEGORIES))
        self.assertEqual(selection(prefs, "z/other", False), frozenset(CATEGORIES) - {"userdata"})

    def test_always(self):
        """
        Certificates and CRL are in whatever the preferences say.
        """
        prefs = self.prefs(certificates="no", crl="no",
                           devices={"z/a": {"certificates": "no"}})
        chosen = selection(prefs, "z/a", False)
        for category in ALWAYS:
            self.assertIn(category, chosen)

    def test_constrained(self):
        """
        A constrained device gets certificates and CRL only, whatever the
        preferences say.
        """
        self.assertEqual(selection(self.prefs(), "z/a", True), frozenset(CONSTRAINED))
        self.assertEqual(CONSTRAINED, ("certificates", "crl"))
