"""
The Mathematical Mesh data model (draft-hallambaker-mesh-reference-03,
sections 4-6 and 8): profiles, keys, signatures and encryption.

Where things are:
    - L{pz.mesh.model}: every structure of the draft, by its draft name
      (C{DeviceProfile}, C{SignedPersonalProfile}, C{Account}, ...).
    - L{pz.mesh.schema}: the field types and the tagged JSON encoding
      (C{{"DeviceProfile": {...}}}) that refuses unknown or ill-typed fields.
    - L{pz.mesh.keys}: key generation, UDF naming, PublicKey <-> JWK.
    - L{pz.mesh.signing}: JWS signing, and the draft's rule for who may sign
      each signed form; replay refusal (C{checkFresh}).
    - L{pz.mesh.encryption}: JWE of application private parts to the devices
      in C{DecryptID}; escrow.
    - L{pz.mesh.builders}: making new master and device identities.
    - L{pz.mesh.errors}: the errors, each with the status a portal reports.

See C{docs/mesh-model.md} for a guide.
"""

from pz.mesh.builders import DeviceKeys, MasterKeys, makePersonalProfile, newApplicationIdentifier
from pz.mesh.encryption import (
    decryptApplicationPrivate,
    decryptData,
    decryptStructure,
    decryptWith,
    encryptApplicationPrivate,
    encryptData,
    encryptTo,
    recipientsOf,
)
from pz.mesh.errors import (
    MeshEncryptionError,
    MeshError,
    MeshFormatError,
    MeshKeyError,
    MeshSignatureError,
    MeshStaleProfileError,
)
from pz.mesh.keys import (
    KeyPair,
    curveOf,
    generateEncryptionKey,
    generateSignatureKey,
    publicKeyFrom,
    udfOf,
)
from pz.mesh.model import *  # noqa: F401,F403 - every draft structure
from pz.mesh.model import __all__ as _modelNames
from pz.mesh.schema import decode, encode, fromJSON, structureType, toJSON
from pz.mesh.signing import (
    checkFresh,
    sign,
    signData,
    signPayload,
    unverifiedPayload,
    verify,
    verifyApplicationProfile,
    verifyConnectionRequest,
    verifyConnectionResult,
    verifyData,
    verifyDeviceProfile,
    verifyMasterProfile,
    verifyPayload,
    verifyPersonalProfile,
)

__all__ = [
    *_modelNames,
    # schema
    "encode",
    "decode",
    "toJSON",
    "fromJSON",
    "structureType",
    # errors
    "MeshError",
    "MeshFormatError",
    "MeshKeyError",
    "MeshSignatureError",
    "MeshStaleProfileError",
    "MeshEncryptionError",
    # keys
    "KeyPair",
    "generateSignatureKey",
    "generateEncryptionKey",
    "publicKeyFrom",
    "udfOf",
    "curveOf",
    # signing
    "sign",
    "signPayload",
    "verifyPayload",
    "signData",
    "verifyData",
    "unverifiedPayload",
    "verify",
    "verifyMasterProfile",
    "verifyDeviceProfile",
    "verifyPersonalProfile",
    "verifyApplicationProfile",
    "verifyConnectionRequest",
    "verifyConnectionResult",
    "checkFresh",
    # encryption
    "encryptTo",
    "decryptWith",
    "decryptStructure",
    "recipientsOf",
    "encryptData",
    "decryptData",
    "encryptApplicationPrivate",
    "decryptApplicationPrivate",
    # builders
    "DeviceKeys",
    "MasterKeys",
    "makePersonalProfile",
    "newApplicationIdentifier",
]
