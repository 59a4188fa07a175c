# -*- test-case-name: tests.pz.test_ids -*-
"""
The form of the names the zone gives its devices.

A device id is C{ZONE/NAME}: the zone id (C{user@host}) and the device's
name, which the person chose when asking for its pairing code.  The empty
id and the bare zone id address the hub itself, so an id that is not of
this form must be refused before it is sent as a destination: the hub would
take the message as meant for itself and answer C{UNKNOWN_MESSAGE}.
"""

import re

from pz.errors import ZoneError

__all__ = ["validDeviceName", "checkDeviceId"]

_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


def validDeviceName(name: str) -> bool:
    """
    Whether C{name} may be a device name (the last part of a device id).
    """
    return isinstance(name, str) and bool(_DEVICE_NAME.match(name))


def checkDeviceId(deviceId) -> str:
    """
    Check that C{deviceId} is the id of a device, C{ZONE/NAME}, as a
    destination.

    @return: C{deviceId}.
    @raise ZoneError: C{BAD_REQUEST}, naming the form, if it is not.
    """
    if isinstance(deviceId, str):
        zone, _, name = deviceId.rpartition("/")
        user, at, host = zone.partition("@")
        if user and at and host and validDeviceName(name):
            return deviceId
    shown = repr(deviceId) if isinstance(deviceId, str) else "nothing"
    raise ZoneError(
        "BAD_REQUEST",
        f"{shown} is not a device id: give ZONE/NAME, such as alice@127.0.0.1/laptop "
        "(pzctl --hub-dir DIR devices lists them)",
    )
