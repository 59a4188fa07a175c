# -*- test-case-name: tests.pz.test_pairing -*-
"""
Pairing codes: what a person carries from the hub to a new device.

A code names where the hub is, a one-time token, and the fingerprint of the
zone CA, so the new device can refuse an impostor hub before it sends the
token anywhere::

    pz://HOST:PORT/TOKEN#CAFINGERPRINT
"""

import re
from urllib.parse import urlsplit

import attrs

from pz.errors import ZoneError

__all__ = ["PairingCode"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_UDF = re.compile(r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")


@attrs.frozen
class PairingCode:
    """
    A parsed pairing code.

    @ivar host: hub host name or IP address, as its certificate names it.
    @ivar port: hub port.
    @ivar token: the one-time secret.
    @ivar caFingerprint: UDF of the zone CA's public key.
    """

    host: str
    port: int
    token: str
    caFingerprint: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"pz://{host}:{self.port}/{self.token}#{self.caFingerprint}"

    @classmethod
    def parse(cls, text: str) -> "PairingCode":
        """
        Parse a code as printed by C{pzctl pair}.

        @raise ZoneError: C{BAD_REQUEST} naming what is wrong with it.
        """
        text = text.strip()
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ZoneError("BAD_REQUEST", "pairing code is not a pz:// address")
        if parts.scheme != "pz" or not parts.hostname or port is None:
            raise ZoneError(
                "BAD_REQUEST", "pairing code must look like pz://HOST:PORT/TOKEN#FINGERPRINT"
            )
        token = parts.path.lstrip("/")
        if not _TOKEN.match(token):
            raise ZoneError("BAD_REQUEST", "pairing code has no valid token")
        if not _UDF.match(parts.fragment):
            raise ZoneError("BAD_REQUEST", "pairing code has no valid CA fingerprint")
        return cls(parts.hostname, port, token, parts.fragment)
