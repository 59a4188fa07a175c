"""
What tests share beyond L{pz.testing} (the clock and frame helpers every
protocol test needs): the same content under another JSON type, a port
something else already listens on, and C{pzctl} run in the test's process.
"""

import io
import socket
import sys

__all__ = ["changeType", "runPzctl", "takenPort"]


def runPzctl(testCase, *argv) -> tuple:
    """
    Run C{pzctl argv} in-process with its output captured: its exit
    status, standard output and error.
    """
    from pz.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    testCase.patch(sys, "stdout", out)
    testCase.patch(sys, "stderr", err)
    try:
        status = main(list(argv))
    except SystemExit as e:
        status = e.code
    finally:
        testCase.patch(sys, "stdout", sys.__stdout__)
        testCase.patch(sys, "stderr", sys.__stderr__)
    return status, out.getvalue(), err.getvalue()


def takenPort(testCase) -> int:
    """
    A port on 127.0.0.1 that a socket listens on until C{testCase} ends:
    what a test of a refused start-up binds its service to.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    testCase.addCleanup(taken.close)
    return taken.getsockname()[1]


def changeType(value):
    """
    The same content under another JSON type: what a mutating test puts in
    a field to see a type check refuse it.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return str(value)
