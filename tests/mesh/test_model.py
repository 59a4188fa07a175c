"""
Tests for L{pz.mesh.model}: every structure of the Reference draft's
sections 4-6 and 8 exists with the draft's names, fields and inheritance, and
round-trips through JSON exactly.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh import model
from pz.mesh.schema import fieldsOf, fromJSON, registeredTypes, toJSON

from .strategies import structures

#: The draft's structures (sections 4-6 and 8): parent, and own fields in
#: the draft's order, spelled as the draft spells them.
DRAFT = {
    # 4. Cryptographic Data Objects
    "PublicKey": (None, ["UDF", "X509Certificate", "X509Chain", "X509CSR"]),
    "SignedData": (None, ["Data"]),
    "EncryptedData": (None, ["Data"]),
    # 5.1
    "Entry": (None, ["Identifier"]),
    "SignedProfile": ("Entry", ["SignedData"]),
    "Profile": ("Entry", ["Names", "Updated", "NotaryToken"]),
    # 5.2
    "SignedDeviceProfile": ("SignedProfile", []),
    "DeviceProfile": (
        "Profile",
        ["Description", "DeviceSignatureKey", "DeviceAuthenticationKey", "DeviceEncryptiontionKey"],
    ),
    "DevicePrivateProfile": (
        None,
        ["DeviceSignatureKey", "DeviceAuthenticationKey", "DeviceEncryptiontionKey"],
    ),
    # 5.3
    "SignedMasterProfile": ("SignedProfile", []),
    "MasterProfile": ("Profile", ["MasterSignatureKey", "MasterEscrowKeys", "OnlineSignatureKeys"]),
    # 5.4
    "SignedPersonalProfile": ("SignedProfile", []),
    "PersonalProfile": ("Profile", ["SignedMasterProfile", "Devices", "Applications"]),
    # 5.5
    "SignedApplicationProfile": ("SignedProfile", []),
    "EncryptedProfile": ("Entry", ["EncryptedData"]),
    "ApplicationProfile": ("Profile", ["EncryptedData"]),
    "ApplicationProfileEntry": (None, ["Identifier", "Type", "Friendly", "SignID", "DecryptID"]),
    # 5.6
    "Connection": (
        None,
        [
            "ServiceName",
            "Port",
            "Prefix",
            "Security",
            "UserName",
            "Password",
            "URI",
            "Authentication",
            "TimeOut",
            "Polling",
        ],
    ),
    # 5.7
    "PasswordProfile": ("ApplicationProfile", []),
    "PasswordProfilePrivate": (None, ["AutoGenerate", "Entries", "NeverAsk"]),
    "PasswordEntry": (None, ["Sites", "Username", "Password"]),
    # 5.8
    "MailProfile": ("ApplicationProfile", ["EncryptionPGP", "EncryptionSMIME"]),
    "MailProfilePrivate": (
        None,
        [
            "EmailAddress",
            "ReplyToAddress",
            "DisplayName",
            "AccountName",
            "Inbound",
            "Outbound",
            "Sign",
            "Encrypt",
        ],
    ),
    # 5.9
    "NetworkProfile": ("ApplicationProfile", []),
    "NetworkProfilePrivate": (None, ["Sites", "DNS", "Prefix", "CTL", "WebPKI"]),
    # 5.10
    "EscrowEntry": ("Entry", ["EncryptedData"]),
    "OfflineEscrowEntry": ("EscrowEntry", []),
    "OnlineEscrowEntry": ("EscrowEntry", []),
    "EscrowedKeySet": (None, ["PrivateKeys"]),
    # 6.1
    "ConnectionRequest": (None, ["ParentUDF", "Device"]),
    "SignedConnectionRequest": ("SignedProfile", []),
    "ConnectionResult": ("ConnectionRequest", ["Result"]),
    "SignedConnectionResult": ("SignedProfile", []),
    # 8.1
    "PortalEntry": (None, ["Created", "Modified"]),
    "Account": ("PortalEntry", ["AccountID", "UserProfileUDF", "Status"]),
    "AccountProfile": ("Account", ["Profile"]),
    "ConnectionsPending": ("Account", ["Requests"]),
}

#: Fields this implementation adds, documented in the model's docstring.
EXTENSIONS = {"PublicKey": ["PublicParameters"]}

#: Structures this implementation adds: the JOSE objects the draft imports,
#: and the JWK type it names without defining.
SUPPORTING = ["Key", "JoseSignature", "JoseWebSignature", "JoseRecipient", "JoseWebEncryption"]

MODEL_TYPES = [cls for cls in registeredTypes().values() if cls.__module__ == model.__name__]


def _ownFields(cls):
    parents = [base for base in cls.__mro__[1:] if base.__name__ in registeredTypes()]
    inherited = {name for name, _ in fieldsOf(parents[0])} if parents else set()
    return [name for name, _ in fieldsOf(cls) if name not in inherited]


class DraftConformanceTests(SynchronousTestCase):
    """
    The classes are the draft's structures, spelled as the draft spells them.
    """

    def test_everyStructureExists(self):
        """
        Every structure of sections 4-6 and 8 is a registered class of the
        same name in L{pz.mesh.model}, and nothing else is there but the
        documented supporting types.
        """
        names = {cls.__name__ for cls in MODEL_TYPES}
        self.assertEqual(names, set(DRAFT) | set(SUPPORTING))
        for name in names:
            self.assertIn(name, model.__all__)
            self.assertIs(getattr(model, name), registeredTypes()[name])

    def test_inheritance(self):
        """
        Each structure inherits from the parent the draft names, so its
        parent's fields come first.
        """
        for name, (parent, _) in DRAFT.items():
            cls = registeredTypes()[name]
            bases = [base.__name__ for base in cls.__mro__[1:] if base.__name__ in DRAFT]
            self.assertEqual(bases[:1], [parent] if parent else [], name)

    def test_fields(self):
        """
        Each structure declares exactly the draft's fields in the draft's
        order (plus the documented extensions).
        """
        for name, (_, fields) in DRAFT.items():
            cls = registeredTypes()[name]
            self.assertEqual(_ownFields(cls), fields + EXTENSIONS.get(name, []), name)

    def test_signedForms(self):
        """
        Each signed form names the payload type it carries, and each payload
        type finds its signed form; application profiles of every kind share
        one signed form.
        """
        self.assertIs(model.payloadTypeOf(model.SignedDeviceProfile), model.DeviceProfile)
        self.assertIs(model.signedFormOf(model.MasterProfile), model.SignedMasterProfile)
        self.assertIs(model.signedFormOf(model.ConnectionResult), model.SignedConnectionResult)
        self.assertIs(model.signedFormOf(model.ConnectionRequest), model.SignedConnectionRequest)
        for application in (model.PasswordProfile, model.MailProfile, model.NetworkProfile):
            self.assertIs(model.signedFormOf(application), model.SignedApplicationProfile)
        self.assertRaises(TypeError, model.signedFormOf, model.Account)
        self.assertRaises(TypeError, model.payloadTypeOf, model.DeviceProfile)
        for signed, payload in model.SIGNED_PAYLOAD_TYPES.items():
            self.assertTrue(issubclass(signed, model.SignedProfile))
            self.assertIs(model.payloadTypeOf(signed), payload)


class RoundTripTests(SynchronousTestCase):
    """
    Every structure round-trips through JSON exactly, in both directions.
    """

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.sampled_from(MODEL_TYPES).flatmap(structures))
    def test_everyStructure(self, value):
        """
        For generated values of every structure: decoding the encoding gives
        an equal value, and encoding that gives the same bytes.
        """
        text = toJSON(value)
        decoded = fromJSON(text, type(value))
        self.assertEqual(decoded, value)
        self.assertIs(type(decoded), type(value))
        self.assertEqual(toJSON(decoded), text)

    def test_eachStructureOnce(self):
        """
        Each structure, one by one, round-trips for a few generated values,
        so that no type is left out by the luck of the draw above.
        """
        for cls in MODEL_TYPES:

            @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
            @given(structures(cls))
            def check(value):
                self.assertEqual(fromJSON(toJSON(value)), value)

            check()

    def test_referenceExample(self):
        """
        A personal profile in the shape the Mesh reference examples show
        (fields, nesting, an empty Applications list) decodes and re-encodes
        to the same JSON.
        """
        text = (
            b'{"PersonalProfile":{"Identifier":"MBV63-GDEL3-7M7WT-L4S2G-SD6OU-JQ2YF",'
            b'"SignedMasterProfile":{"Identifier":"MBV63-GDEL3-7M7WT-L4S2G-SD6OU-JQ2YF",'
            b'"SignedData":{"payload":"e30","signatures":[{"protected":"e30",'
            b'"header":{"kid":"MBV63-GDEL3-7M7WT-L4S2G-SD6OU-JQ2YF"},"signature":"AA"}]}},'
            b'"Devices":[{"Identifier":"MBAMF-X7YKI-KNCLB-HGRZI-MNS6R-4EYNE",'
            b'"SignedData":{"payload":"e30","signatures":[{"signature":"AA"}]}}],'
            b'"Applications":[]}}'
        )
        profile = model.PersonalProfile.fromJSON(text)
        self.assertEqual(profile.Applications, ())
        self.assertEqual(profile.Devices[0].Identifier, "MBAMF-X7YKI-KNCLB-HGRZI-MNS6R-4EYNE")
        self.assertEqual(profile.toJSON(), text)
