# -*- test-case-name: tests.pzh.test_store -*-
"""
The SQLite file under each of the hub's stores.

One connection, opened on first use and again after L{SQLiteFile.close}:
twistd forks after makeService when it daemonises, and an SQLite
connection must not cross fork() (closing it in the child would drop the
child's own locks), so the services close their stores before that.  WAL
mode lets C{pzctl} read while the hub writes; C{synchronous=FULL} makes a
commit durable before the caller reports success.

The database file is created 0600 before SQLite opens it, and an older
one is tightened to 0600: SQLite gives its C{-wal} and C{-shm} files the
database's permissions, so they are 0600 too.
"""

import os
import sqlite3
from typing import Iterable, Optional

from pz.files import privateFile

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """
    Base for stores kept in one SQLite file with schema C{schema}.
    """

    schema = ""
    #: Whether only the thread that opened the connection may use it.
    checkSameThread = True

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection = None
        self._db.executescript(self.schema)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            if self._path != ":memory:":
                privateFile(self._path)
                for suffix in ("-wal", "-shm"):
                    if os.path.exists(self._path + suffix):
                        privateFile(self._path + suffix)
            self._connection = sqlite3.connect(
                self._path, isolation_level=None, timeout=10,
                check_same_thread=self.checkSameThread,
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
        return self._connection

    def _one(self, sql: str, args: Iterable = ()) -> Optional[tuple]:
        return self._db.execute(sql, tuple(args)).fetchone()

    def close(self) -> None:
        """
        Release the connection; the next call opens it again.
        """
        if self._connection is not None:
            self._connection.close()
            self._connection = None
