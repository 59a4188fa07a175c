# -*- test-case-name: tests.pz.test_pairing -*-
"""
Pairing codes: what a person carries from the hub to a new device.

A code names where the hub is, a one-time token, and the fingerprint of the
zone CA, so the new device can refuse an impostor hub before it sends the
token anywhere::

    pz://HOST:PORT/TOKEN#CAFINGERPRINT

A peer-exchange code (L{PeerCode}) has the same form for one device's
peer port, pinning that device's own certificate instead of a CA::

    pzp://HOST:PORT/TOKEN#CERTSHA256
"""

import re
from urllib.parse import urlsplit

import attrs

from pz.errors import ZoneError

__all__ = ["PairingCode", "PeerCode"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
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


@attrs.frozen
class PeerCode:
    """
    A parsed peer-exchange code (C{pzctl peer-invite}): where a device's
    peer server is, a one-time token, and the SHA-256 of that device's
    certificate (L{pz.pki.certificateDigest}), the only certificate the
    exchanging device will accept there.
    """

    host: str
    port: int
    token: str
    certDigest: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"pzp://{host}:{self.port}/{self.token}#{self.certDigest}"

    @classmethod
    def parse(cls, text: str) -> "PeerCode":
        """
        Parse a code as printed by C{pzctl peer-invite}.

        @raise ZoneError: C{BAD_REQUEST} naming what is wrong with it.
        """
        if not isinstance(text, str):
            raise ZoneError("BAD_REQUEST", "a peer-exchange code is a text")
        text = text.strip()
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ZoneError("BAD_REQUEST", "peer-exchange code is not a pzp:// address")
        if parts.scheme != "pzp" or not parts.hostname or not port:
            raise ZoneError("BAD_REQUEST",
                            "peer-exchange code must look like pzp://HOST:PORT/TOKEN#CERTSHA256")
        token = parts.path.lstrip("/")
        if not _TOKEN.match(token):
            raise ZoneError("BAD_REQUEST", "peer-exchange code has no valid token")
        if not _SHA256.match(parts.fragment):
            raise ZoneError("BAD_REQUEST", "peer-exchange code has no valid certificate SHA-256")
        return cls(parts.hostname, port, token, parts.fragment)
