# -*- test-case-name: tests.mesh.portal.test_device -*-
"""
One device's Mesh identity and what it knows of its account, kept in the
C{mesh/} directory of the device's data directory (C{pzctl --pzp-dir DIR}).

Layout::

    mesh/device.json      this device's private keys, its name and its signed profile
    mesh/master.json      master, online and escrow private keys (only on the
                          device that created the account: the administration device)
    mesh/account.json     the account: name, portal, CA file, profile UDF
    mesh/profile.json     the latest signed personal profile the device made or verified
    mesh/connection.json  a connection request waiting for an answer

The directory is mode 0700 and every file 0600, written atomically (a
temporary file, fsync, rename: L{pz.pki.writePEM}), so a crash leaves the old
or the new version and another user cannot read the keys.

A device's authentication key is a P-256 key, and its signed profile carries,
as that key's C{X509CSR}, a certificate request for it: when a portal inside
a personal zone hub accepts the device, the hub certifies that key, and the
same key becomes the device's zone TLS key. Putting the request inside the
signed profile means the device's signature covers it; nobody on the way can
swap in their own.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Optional

import attrs
from cryptography.hazmat.primitives import serialization

from pz import pki
from pz.mesh.builders import DeviceKeys, MasterKeys
from pz.mesh.keys import KeyPair, generateEncryptionKey, generateSignatureKey
from pz.mesh.model import (
    DevicePrivateProfile,
    Key,
    SignedDeviceProfile,
    SignedPersonalProfile,
    SignedConnectionRequest,
)
from pz.mesh.schema import decode, encode, parseJSON
from pz.mesh.signing import sign, unverifiedPayload

__all__ = ["MeshDevice", "makeDeviceKeys", "signedDeviceProfile", "nextUpdate", "MESH_DIR"]

MESH_DIR = "mesh"


def makeDeviceKeys() -> DeviceKeys:
    """
    New device keys: Ed25519 to sign, P-256 to authenticate (so that the
    zone, whose TLS keys are P-256, can certify it), X25519 to decrypt.
    """
    return DeviceKeys(
        signature=generateSignatureKey("Ed25519"),
        authentication=generateSignatureKey("P-256"),
        encryption=generateEncryptionKey("X25519"),
    )


def signedDeviceProfile(keys: DeviceKeys, description: str, updated: datetime) -> SignedDeviceProfile:
    """
    The device's profile, signed by its own signature key, with a
    certificate request for its authentication key as that key's
    C{X509CSR}.
    """
    csr = pki.makeCSR(keys.authentication.privateKey, description)
    profile = keys.profile(updated=updated, description=description)
    authentication = attrs.evolve(
        profile.DeviceAuthenticationKey, X509CSR=csr.public_bytes(serialization.Encoding.DER)
    )
    return sign(attrs.evolve(profile, DeviceAuthenticationKey=authentication), keys.signature)


def nextUpdate(now: datetime, previous: Optional[datetime]) -> datetime:
    """
    The C{Updated} time for a new version of a profile last updated at
    C{previous}: now, or just after C{previous} if the clock says otherwise,
    since a portal refuses a version that is not strictly newer.
    """
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


def _keysToJSON(keys: tuple) -> list:
    return [encode(key.privateParameters()) for key in keys]


def _keysFromJSON(data: list) -> tuple:
    return tuple(KeyPair.fromKey(decode(item, Key)) for item in data)


class MeshDevice:
    """
    The C{mesh/} directory of one device's data directory.
    """

    def __init__(self, dataDir: str) -> None:
        self.dataDir = os.path.abspath(dataDir)
        self.path = os.path.join(self.dataDir, MESH_DIR)

    def file(self, name: str) -> str:
        """
        The path of a file in the C{mesh/} directory.
        """
        return os.path.join(self.path, name)

    def _write(self, name: str, value: dict) -> None:
        os.makedirs(self.dataDir, mode=0o700, exist_ok=True)
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        os.chmod(self.path, 0o700)
        data = json.dumps(value, indent=2, sort_keys=True).encode("utf-8")
        pki.writePEM(self.file(name), data, mode=0o600)

    def _read(self, name: str) -> Optional[dict]:
        try:
            with open(self.file(name), "rb") as f:
                return parseJSON(f.read())
        except FileNotFoundError:
            return None

    def _remove(self, name: str) -> None:
        try:
            os.unlink(self.file(name))
        except FileNotFoundError:
            pass

    # -- the device itself ----------------------------------------------------

    def keys(self) -> Optional[DeviceKeys]:
        """
        The device's keys, or None before L{create}.
        """
        data = self._read("device.json")
        if data is None:
            return None
        return DeviceKeys.fromPrivateProfile(decode(data["keys"], DevicePrivateProfile))

    def description(self) -> Optional[str]:
        """
        The name the device gave itself.
        """
        data = self._read("device.json")
        return None if data is None else data["description"]

    def signedProfile(self) -> Optional[SignedDeviceProfile]:
        """
        The device's signed profile, or None before L{create}.
        """
        data = self._read("device.json")
        return None if data is None else decode(data["profile"], SignedDeviceProfile)

    def create(self, description: str, now: datetime) -> DeviceKeys:
        """
        Make this device's keys and signed profile (replacing any).
        """
        keys = makeDeviceKeys()
        self._write("device.json", {
            "description": description,
            "keys": encode(keys.privateProfile()),
            "profile": encode(signedDeviceProfile(keys, description, now)),
        })
        return keys

    # -- the account ----------------------------------------------------------

    def master(self) -> Optional[MasterKeys]:
        """
        The master keys, on the administration device; None elsewhere.
        """
        data = self._read("master.json")
        if data is None:
            return None
        [signature] = _keysFromJSON([data["signature"]])
        return MasterKeys(
            signature=signature,
            online=_keysFromJSON(data["online"]),
            escrow=_keysFromJSON(data["escrow"]),
        )

    def saveMaster(self, master: MasterKeys) -> None:
        """
        Keep the master keys (mode 0600).
        """
        self._write("master.json", {
            "signature": encode(master.signature.privateParameters()),
            "online": _keysToJSON(master.online),
            "escrow": _keysToJSON(master.escrow),
        })

    def account(self) -> Optional[dict]:
        """
        C{{"account", "portal", "ca", "profile", "admin"}}, or None for a
        device of no account.
        """
        return self._read("account.json")

    def saveAccount(self, account: str, portal: str, ca: Optional[str], profile: str,
                    admin: bool) -> None:
        """
        Remember the account this device belongs to.
        """
        self._write("account.json", {
            "account": account, "portal": portal, "ca": ca, "profile": profile, "admin": admin,
        })

    def personal(self) -> Optional[SignedPersonalProfile]:
        """
        The latest signed personal profile this device made or verified.
        """
        data = self._read("profile.json")
        return None if data is None else decode(data, SignedPersonalProfile)

    def savePersonal(self, profile: SignedPersonalProfile) -> None:
        """
        Keep a signed personal profile (made here, or verified).
        """
        self._write("profile.json", encode(profile))

    def personalUpdated(self) -> Optional[datetime]:
        """
        When the held personal profile was last updated.
        """
        profile = self.personal()
        return None if profile is None else unverifiedPayload(profile).Updated

    # -- a connection in progress ---------------------------------------------

    def connection(self) -> Optional[dict]:
        """
        C{{"account", "portal", "ca", "profile", "request"}} of a request
        waiting for an answer (C{request} a L{SignedConnectionRequest}), or
        None.
        """
        data = self._read("connection.json")
        if data is not None:
            data["request"] = decode(data["request"], SignedConnectionRequest)
        return data

    def saveConnection(self, account: str, portal: str, ca: Optional[str], profile: str,
                       request: SignedConnectionRequest) -> None:
        """
        Remember a request sent, so that waiting can resume.
        """
        self._write("connection.json", {
            "account": account, "portal": portal, "ca": ca, "profile": profile,
            "request": encode(request),
        })

    def clearConnection(self) -> None:
        """
        Forget the request (answered).
        """
        self._remove("connection.json")

    def forget(self) -> None:
        """
        After a refusal: remove the request and, unless the device belongs to
        an account, the keys made for it, so nothing of it is left behind.
        """
        self._remove("connection.json")
        if self.account() is None:
            self._remove("device.json")
            self._remove("profile.json")
            try:
                os.rmdir(self.path)
            except OSError:
                pass

    def zoneKey(self):
        """
        The private key the zone certifies: the authentication key.
        """
        keys = self.keys()
        return None if keys is None else keys.authentication.privateKey
