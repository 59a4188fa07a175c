"""
Tests for L{pz.files} and the state files built on it: data directories
0700 and SQLite files (with their C{-wal} and C{-shm}) 0600, whatever the
umask and whatever was there before.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz.files import privateDirectory, privateFile
from pzh.portal.store import SQLitePortalStore
from pzh.store import SQLiteHubStore


def _mode(path: str) -> int:
    return os.stat(path).st_mode & 0o777


class _Umask(SynchronousTestCase):
    def setUp(self):
        # The widest usual umask: files 0644, directories 0755.
        self.addCleanup(os.umask, os.umask(0o022))
        self.root = self.mktemp()
        os.mkdir(self.root)


class PrivateTests(_Umask):
    """
    L{privateDirectory} and L{privateFile}.
    """

    def test_newDirectory(self):
        """
        A new directory, and its missing parents, are 0700.
        """
        path = os.path.join(self.root, "a", "b")
        privateDirectory(path)
        self.assertEqual(_mode(path), 0o700)

    def test_existingDirectory(self):
        """
        An existing 0755 directory is tightened to 0700; what is in it
        stays.
        """
        path = os.path.join(self.root, "data")
        os.mkdir(path, 0o755)
        with open(os.path.join(path, "keep"), "w") as f:
            f.write("x")
        privateDirectory(path)
        self.assertEqual(_mode(path), 0o700)
        self.assertEqual(os.listdir(path), ["keep"])

    def test_file(self):
        """
        A new file is created empty and 0600; an existing 0644 one is
        tightened and keeps its content.
        """
        new = os.path.join(self.root, "new")
        privateFile(new)
        self.assertEqual((_mode(new), os.path.getsize(new)), (0o600, 0))
        old = os.path.join(self.root, "old")
        with open(old, "w") as f:
            f.write("content")
        os.chmod(old, 0o644)
        privateFile(old)
        self.assertEqual(_mode(old), 0o600)
        with open(old) as f:
            self.assertEqual(f.read(), "content")


class SQLiteModeTests(_Umask):
    """
    The hub's and the portal's SQLite files are 0600.
    """

    def check(self, store, path: str) -> None:
        self.addCleanup(store.close)
        for name in (path, path + "-wal", path + "-shm"):
            self.assertTrue(os.path.exists(name), name)
            self.assertEqual(_mode(name), 0o600, name)

    def test_hubDB(self):
        """
        C{hub.db} and its C{-wal} and C{-shm} are created 0600.
        """
        path = os.path.join(self.root, "hub.db")
        store = SQLiteHubStore(path)
        store.listDevices()
        self.check(store, path)

    def test_portalDB(self):
        """
        C{portal.db} and its C{-wal} and C{-shm} are created 0600.
        """
        path = os.path.join(self.root, "portal.db")
        store = SQLitePortalStore(path)
        store.head()
        self.check(store, path)

    def test_existingTightened(self):
        """
        Files an older version left 0644 are 0600 once the store opens
        them again.
        """
        path = os.path.join(self.root, "hub.db")
        store = SQLiteHubStore(path)
        store.listDevices()
        for name in (path, path + "-wal", path + "-shm"):
            os.chmod(name, 0o644)
        store.close()
        store = SQLiteHubStore(path)
        self.check(store, path)
