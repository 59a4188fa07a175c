"""
A small Mesh world for tests: one person's master keys, three devices, a
signed personal profile with a password application, and helpers to forge
what an attacker would send.
"""

from datetime import datetime, timedelta, timezone

import attrs

from pz.mesh.builders import DeviceKeys, MasterKeys, makePersonalProfile
from pz.mesh.model import (
    ApplicationProfileEntry,
    JoseSignature,
    JoseWebSignature,
    PasswordEntry,
    PasswordProfile,
    PasswordProfilePrivate,
    SignedProfile,
)
from pz.mesh.encryption import encryptApplicationPrivate
from pz.mesh.signing import sign

T0 = datetime(2016, 9, 20, 12, 0, tzinfo=timezone.utc)
APPLICATION_ID = "MAPPL-ICATI-ONIDE-NTIFI-ER000-00000"


@attrs.define
class World:
    """
    Everything a signature or encryption test needs, made consistently.

    C{laptop} and C{phone} are connected devices: both may sign the password
    application, only the laptop may read it. C{tablet} is not connected.
    """

    master: MasterKeys
    laptop: DeviceKeys
    phone: DeviceKeys
    tablet: DeviceKeys
    signedMaster: object
    entry: ApplicationProfileEntry
    personal: object
    signedPersonal: object
    secrets: PasswordProfilePrivate
    application: PasswordProfile
    signedApplication: object

    def personalAt(self, when, master=None, devices=None, applications=None):
        """
        A personal profile like ours, updated at C{when}.
        """
        return makePersonalProfile(
            self.signedMaster if master is None else master,
            devices=self.personal.Devices if devices is None else devices,
            applications=[self.entry] if applications is None else applications,
            updated=when,
        )


def makeWorld(signatureCurve="Ed25519", encryptionCurve="X25519"):
    """
    Build a L{World}, with the given curves for every key.
    """
    master = MasterKeys.generate(onlineKeys=2, escrowKeys=1, curve=signatureCurve)
    laptop, phone, tablet = (DeviceKeys.generate(signatureCurve, encryptionCurve) for _ in range(3))
    signedMaster = master.signedProfile(updated=T0)
    entry = ApplicationProfileEntry(
        Identifier=APPLICATION_ID,
        Type="PasswordProfile",
        Friendly="passwords",
        SignID=[laptop.identifier, phone.identifier],
        DecryptID=[laptop.identifier],
    )
    personal = makePersonalProfile(
        signedMaster,
        devices=[
            laptop.signedProfile(updated=T0, description="laptop"),
            phone.signedProfile(updated=T0, description="phone"),
        ],
        applications=[entry],
        updated=T0,
    )
    signedPersonal = sign(personal, master.online[0])
    secrets = PasswordProfilePrivate(
        AutoGenerate=True,
        Entries=[PasswordEntry(Sites=["*.example.com"], Username="alice", Password="pw")],
        NeverAsk=["bank.example"],
    )
    application = encryptApplicationPrivate(
        PasswordProfile(Identifier=APPLICATION_ID, Updated=T0), secrets, personal
    )
    return World(
        master=master,
        laptop=laptop,
        phone=phone,
        tablet=tablet,
        signedMaster=signedMaster,
        entry=entry,
        personal=personal,
        signedPersonal=signedPersonal,
        secrets=secrets,
        application=application,
        signedApplication=sign(application, laptop.signature),
    )


def later(hours):
    """
    A time C{hours} after L{T0}.
    """
    return T0 + timedelta(hours=hours)


def withPayload(signed: SignedProfile, payload: bytes) -> SignedProfile:
    """
    The same signed object with its payload replaced and its signatures
    kept: what tampering in transit looks like.
    """
    return attrs.evolve(signed, SignedData=attrs.evolve(signed.SignedData, payload=payload))


def withProtected(signed: SignedProfile, protected: bytes) -> SignedProfile:
    """
    The same signed object with its first signature's protected header
    replaced.
    """
    [entry] = signed.SignedData.signatures
    return attrs.evolve(
        signed,
        SignedData=JoseWebSignature(
            payload=signed.SignedData.payload,
            signatures=[JoseSignature(protected=protected, signature=entry.signature)],
        ),
    )
