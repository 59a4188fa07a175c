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
        return f"pz://{_hostPort(self.host, self.port)}/{self.token}#{self.caFingerprint}"

    @classmethod
    def parse(cls, text: str) -> "PairingCode":
        """
        Parse a code as printed by C{pzctl pair}.

        @raise ZoneError: C{BAD_REQUEST} naming what is wrong with it.
        """
        return cls(*_parseCode(text, "pz", "pairing code", "FINGERPRINT", _UDF,
                               "CA fingerprint"))


def _hostPort(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parseCode(text, scheme: str, what: str, shown: str, fragment, fragmentWhat: str) -> tuple:
    """
    The C{(host, port, token, fragment)} of a code C{SCHEME://HOST:PORT/TOKEN#FRAGMENT}.

    @raise ZoneError: C{BAD_REQUEST}, naming C{what} and what is wrong.
    """
    if not isinstance(text, str):
        raise ZoneError("BAD_REQUEST", f"a {what} is a text")
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        raise ZoneError("BAD_REQUEST", f"{what} is not a {scheme}:// address")
    if parts.scheme != scheme or not parts.hostname or not port:
        raise ZoneError("BAD_REQUEST",
                        f"{what} must look like {scheme}://HOST:PORT/TOKEN#{shown}")
    token = parts.path.lstrip("/")
    if not _TOKEN.match(token):
        raise ZoneError("BAD_REQUEST", f"{what} has no valid token")
    if not fragment.match(parts.fragment):
        raise ZoneError("BAD_REQUEST", f"{what} has no valid {fragmentWhat}")
    return parts.hostname, port, token, parts.fragment


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
        return f"pzp://{_hostPort(self.host, self.port)}/{self.token}#{self.certDigest}"

    @classmethod
    def parse(cls, text: str) -> "PeerCode":
        """
        Parse a code as printed by C{pzctl peer-invite}.

        @raise ZoneError: C{BAD_REQUEST} naming what is wrong with it.
        """
        return cls(*_parseCode(text, "pzp", "peer-exchange code", "CERTSHA256", _SHA256,
                               "certificate SHA-256"))
