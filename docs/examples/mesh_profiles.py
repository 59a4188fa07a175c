"""
A walk through the Mesh data model: make a master profile and two devices,
publish a personal profile with a password application readable by one
device only, connect a third device, and watch the signature rules refuse a
forgery and a replay.

Run it with C{python docs/examples/mesh_profiles.py}; C{tests.mesh.test_docs}
runs it too, so it cannot drift from the code.
"""

from datetime import datetime, timedelta, timezone

from pz.mesh import (
    ApplicationProfileEntry,
    ConnectionRequest,
    ConnectionResult,
    DeviceKeys,
    MasterKeys,
    MeshEncryptionError,
    MeshSignatureError,
    PasswordEntry,
    PasswordProfile,
    PasswordProfilePrivate,
    SignedPersonalProfile,
    decryptApplicationPrivate,
    encryptApplicationPrivate,
    makePersonalProfile,
    newApplicationIdentifier,
    sign,
    verifyApplicationProfile,
    verifyConnectionRequest,
    verifyConnectionResult,
    verifyPersonalProfile,
)


def main() -> None:
    now = datetime(2016, 9, 20, 12, 0, tzinfo=timezone.utc)

    # 1. The master profile: the root of trust, signed by its own key.
    master = MasterKeys.generate(onlineKeys=1)
    signedMaster = master.signedProfile(updated=now)
    print("profile", master.identifier)

    # 2. Two devices, each profile signed by the device's own key.
    laptop, phone = DeviceKeys.generate(), DeviceKeys.generate()
    devices = [
        laptop.signedProfile(updated=now, description="laptop"),
        phone.signedProfile(updated=now, description="phone"),
    ]

    # 3. A password application: both devices may sign it, only the laptop
    #    may read its private part.
    entry = ApplicationProfileEntry(
        Identifier=newApplicationIdentifier(),
        Type="PasswordProfile",
        SignID=[laptop.identifier, phone.identifier],
        DecryptID=[laptop.identifier],
    )

    # 4. The personal profile, signed by an online key of the master.
    personal = makePersonalProfile(signedMaster, devices=devices, applications=[entry], updated=now)
    signedPersonal = sign(personal, master.online[0])
    wire = signedPersonal.toJSON()  # {"SignedPersonalProfile": {...}}
    received = SignedPersonalProfile.fromJSON(wire)
    verifyPersonalProfile(received)
    print("personal profile verified,", len(wire), "bytes")

    # 5. The application profile: private part encrypted to DecryptID,
    #    the whole signed by a device in SignID.
    secrets = PasswordProfilePrivate(
        Entries=[PasswordEntry(Sites=["example.com"], Username="alice", Password="s3cret")]
    )
    application = encryptApplicationPrivate(
        PasswordProfile(Identifier=entry.Identifier, Updated=now), secrets, received
    )
    signedApplication = sign(application, phone.signature)
    checked = verifyApplicationProfile(signedApplication, received)
    print(
        "laptop reads:", decryptApplicationPrivate(checked, laptop.encryption).Entries[0].Username
    )
    try:
        decryptApplicationPrivate(checked, phone.encryption)
    except MeshEncryptionError as error:
        print("phone refused:", error.status)

    # 6. A forgery: the master's own key is not an online key.
    try:
        verifyPersonalProfile(sign(personal, master.signature))
    except MeshSignatureError as error:
        print("forgery refused:", error.status)

    # 7. A replay: the held profile is newer than the one offered.
    newer = sign(
        makePersonalProfile(
            signedMaster, devices=devices, applications=[entry], updated=now + timedelta(hours=1)
        ),
        master.online[0],
    )
    verifyPersonalProfile(newer, previous=signedPersonal)
    try:
        verifyPersonalProfile(signedPersonal, previous=newer)
    except MeshSignatureError as error:
        print("replay refused:", error.status)

    # 8. Connecting a third device through a portal.
    tablet = DeviceKeys.generate()
    request = sign(
        ConnectionRequest(ParentUDF=master.identifier, Device=tablet.signedProfile(updated=now)),
        tablet.signature,
    )
    pending = verifyConnectionRequest(request)
    result = sign(
        ConnectionResult(ParentUDF=pending.ParentUDF, Device=pending.Device, Result="Accepted"),
        master.online[0],
    )
    print("connection", verifyConnectionResult(result, newer).Result)


if __name__ == "__main__":
    main()
