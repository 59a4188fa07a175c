# -*- test-case-name: tests.pz.test_files -*-
"""
State that only its owner may read: data directories 0700, state files
0600, whatever the umask and whatever an older version left behind.
"""

import os

__all__ = ["privateDirectory", "privateFile"]


def privateDirectory(path: str) -> None:
    """
    Create C{path} (and its parents) if missing, and make it 0700 even if it
    existed with wider permissions.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.stat(path).st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def privateFile(path: str) -> None:
    """
    Create C{path} empty if missing, mode 0600 from the first instant (so
    no other user can open it before a chmod), and make an existing one
    0600.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o777 != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
