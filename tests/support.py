"""
Helpers every protocol test needs: a clock at the present and the frames
a protocol wrote.
"""

import json
import struct
import time

from twisted.internet.task import Clock

__all__ = ["nowClock", "frames", "changeType"]


def nowClock() -> Clock:
    """
    A L{Clock} that reads the present time, so that certificates made with
    the real time are valid by it.
    """
    clock = Clock()
    clock.advance(time.time())
    return clock


def frames(data: bytes) -> list:
    """
    Split the bytes a protocol wrote into the JSON objects of its frames.
    """
    out = []
    while data:
        (length,) = struct.unpack(">I", data[:4])
        out.append(json.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


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
