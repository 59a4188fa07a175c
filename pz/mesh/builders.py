# -*- test-case-name: tests.mesh.test_builders -*-
"""
Making new Mesh identities: the key sets a master and a device hold, and
the profiles that describe them.

The profile classes in L{pz.mesh.model} are plain values; these helpers
fill them in consistently (the Identifier is the right key's UDF, every key
names itself by its UDF) so that a client does not have to repeat the rules
that L{pz.mesh.signing} checks. Nothing here reads a clock: pass C{updated}
(a timezone-aware C{datetime}) in.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Iterable

import attrs

from pz.mesh.keys import KeyPair, generateEncryptionKey, generateSignatureKey
from pz.mesh.model import (
    ApplicationProfileEntry,
    DevicePrivateProfile,
    DeviceProfile,
    EscrowedKeySet,
    MasterProfile,
    PersonalProfile,
    SignedDeviceProfile,
    SignedMasterProfile,
)
from pz.mesh.signing import sign, unverifiedPayload
from pz.udf import fingerprint

__all__ = [
    "DeviceKeys",
    "MasterKeys",
    "makePersonalProfile",
    "newApplicationIdentifier",
]


def newApplicationIdentifier() -> str:
    """
    Return a fresh random application profile identifier (the draft: "Randomly
    chosen"), shaped like a UDF so that it reads like every other Mesh
    identifier.
    """
    return fingerprint("application/octet-stream", os.urandom(32))


@attrs.frozen
class DeviceKeys:
    """
    The three keys a device holds: it signs its own profile and connection
    requests with C{signature}, authenticates with C{authentication}, and
    reads data encrypted to it with C{encryption}.
    """

    signature: KeyPair
    authentication: KeyPair
    encryption: KeyPair

    @classmethod
    def generate(
        cls, signatureCurve: str = "Ed25519", encryptionCurve: str = "X25519"
    ) -> DeviceKeys:
        """
        Make a new set of device keys.
        """
        return cls(
            signature=generateSignatureKey(signatureCurve),
            authentication=generateSignatureKey(signatureCurve),
            encryption=generateEncryptionKey(encryptionCurve),
        )

    @classmethod
    def fromPrivateProfile(cls, private: DevicePrivateProfile) -> DeviceKeys:
        """
        Load the keys from a L{DevicePrivateProfile} (see L{privateProfile}).
        """
        return cls(
            signature=KeyPair.fromKey(private.DeviceSignatureKey),
            authentication=KeyPair.fromKey(private.DeviceAuthenticationKey),
            encryption=KeyPair.fromKey(private.DeviceEncryptiontionKey),
        )

    @property
    def identifier(self) -> str:
        """
        The device profile's Identifier: the UDF of its signature key.
        """
        return self.signature.udf

    def profile(
        self,
        *,
        updated: datetime | None = None,
        description: str | None = None,
        names: Iterable[str] | None = None,
    ) -> DeviceProfile:
        """
        Return the public L{DeviceProfile} for these keys.
        """
        return DeviceProfile(
            Identifier=self.identifier,
            Names=None if names is None else tuple(names),
            Updated=updated,
            Description=description,
            DeviceSignatureKey=self.signature.publicKey(),
            DeviceAuthenticationKey=self.authentication.publicKey(),
            DeviceEncryptiontionKey=self.encryption.publicKey(),
        )

    def signedProfile(
        self,
        *,
        updated: datetime | None = None,
        description: str | None = None,
        names: Iterable[str] | None = None,
    ) -> SignedDeviceProfile:
        """
        Return L{profile} signed by the device signature key, as the draft
        requires.
        """
        profile = self.profile(updated=updated, description=description, names=names)
        return SignedDeviceProfile(
            Identifier=profile.Identifier, SignedData=sign(profile, self.signature).SignedData
        )

    def privateProfile(self) -> DevicePrivateProfile:
        """
        Return the private halves as a L{DevicePrivateProfile}, for the
        device's own storage or for escrow. Never publish it.
        """
        return DevicePrivateProfile(
            DeviceSignatureKey=self.signature.privateParameters(),
            DeviceAuthenticationKey=self.authentication.privateParameters(),
            DeviceEncryptiontionKey=self.encryption.privateParameters(),
        )


@attrs.frozen
class MasterKeys:
    """
    The keys behind a master profile: the master C{signature} key (the root
    of trust, kept offline), the C{online} signature keys that sign the
    personal profile and administer devices, and the C{escrow} keys.
    """

    signature: KeyPair
    online: tuple[KeyPair, ...] = attrs.field(converter=tuple)
    escrow: tuple[KeyPair, ...] = attrs.field(converter=tuple, default=())

    @classmethod
    def generate(
        cls, onlineKeys: int = 1, escrowKeys: int = 0, curve: str = "Ed25519"
    ) -> MasterKeys:
        """
        Make a new master key, C{onlineKeys} online signature keys and
        C{escrowKeys} escrow (encryption) keys.
        """
        encryptionCurve = "P-256" if curve == "P-256" else "X25519"
        return cls(
            signature=generateSignatureKey(curve),
            online=[generateSignatureKey(curve) for _ in range(onlineKeys)],
            escrow=[generateEncryptionKey(encryptionCurve) for _ in range(escrowKeys)],
        )

    @property
    def identifier(self) -> str:
        """
        The master (and personal) profile's Identifier: the UDF of the master
        signature key.
        """
        return self.signature.udf

    def profile(
        self, *, updated: datetime | None = None, names: Iterable[str] | None = None
    ) -> MasterProfile:
        """
        Return the public L{MasterProfile} for these keys.
        """
        return MasterProfile(
            Identifier=self.identifier,
            Names=None if names is None else tuple(names),
            Updated=updated,
            MasterSignatureKey=self.signature.publicKey(),
            MasterEscrowKeys=tuple(key.publicKey() for key in self.escrow),
            OnlineSignatureKeys=tuple(key.publicKey() for key in self.online),
        )

    def signedProfile(
        self, *, updated: datetime | None = None, names: Iterable[str] | None = None
    ) -> SignedMasterProfile:
        """
        Return L{profile} signed by the master signature key, as the draft
        requires.
        """
        profile = self.profile(updated=updated, names=names)
        return SignedMasterProfile(
            Identifier=profile.Identifier, SignedData=sign(profile, self.signature).SignedData
        )

    def escrowedKeySet(self) -> EscrowedKeySet:
        """
        Return every private key here as an L{EscrowedKeySet}, to be
        encrypted to escrow keys (L{pz.mesh.encryption.encryptTo}).
        """
        keys = (self.signature, *self.online, *self.escrow)
        return EscrowedKeySet(PrivateKeys=tuple(key.privateParameters() for key in keys))


def makePersonalProfile(
    master: SignedMasterProfile,
    *,
    devices: Iterable[SignedDeviceProfile] = (),
    applications: Iterable[ApplicationProfileEntry] = (),
    updated: datetime | None = None,
    names: Iterable[str] | None = None,
) -> PersonalProfile:
    """
    Return a L{PersonalProfile} for C{master} (its Identifier is the
    master's) listing C{devices} and C{applications}. Sign it with one of
    the master's online keys: C{sign(profile, masterKeys.online[0])}.
    """
    return PersonalProfile(
        Identifier=unverifiedPayload(master).Identifier,
        Names=None if names is None else tuple(names),
        Updated=updated,
        SignedMasterProfile=master,
        Devices=tuple(devices),
        Applications=tuple(applications),
    )
