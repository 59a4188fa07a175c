"""
Tests for L{pz.mesh.schema}: the field types and the tagged JSON encoding.
"""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh import schema
from pz.mesh.errors import MeshError, MeshFormatError
from pz.mesh.model import Account, Connection, DeviceProfile, Entry, Key, PublicKey
from pz.mesh.schema import (
    Binary,
    DateTime,
    List,
    String,
    Structure,
    Tagged,
    fromJSON,
    meshField,
    meshStructure,
    toJSON,
)


@meshStructure
class SchemaTestHolder(Structure):
    """
    A structure used only by these tests, with a field that may hold any
    L{Entry} subclass, tagged.
    """

    Item: Entry | None = meshField(Tagged(Entry))
    Items: tuple | None = meshField(List(Tagged("Entry")))


class _CountingString(schema._String):
    """
    A C{String} that counts how often a value is checked (a C{String} still,
    for the strategies that build any registered structure).
    """

    def __init__(self) -> None:
        super().__init__()
        self.checked: list = []

    def check(self, value, path):
        self.checked.append(value)
        super().check(value, path)


_COUNTING = _CountingString()


@meshStructure
class SchemaTestCounted(Structure):
    """
    A structure used only by these tests: its C{Name} counts its checks,
    and it nests one of its own kind.
    """

    Name: str | None = meshField(_COUNTING)
    Inner: object = meshField(Tagged("SchemaTestCounted"))
    When: datetime | None = meshField(DateTime)
    Data: bytes | None = meshField(Binary)
    Tags: tuple | None = meshField(List(String))


@meshStructure
class SchemaTestOrdered(Structure):
    """
    A structure used only by these tests: a required field between two
    optional ones.
    """

    First: str | None = meshField(String)
    Middle: str | None = meshField(String, required=True)
    Last: str | None = meshField(String)


UTC = timezone.utc


class DecodeRefusalTests(SynchronousTestCase):
    """
    Decoding refuses whatever the declaration does not allow, with a
    L{MeshFormatError} that names the offending field.
    """

    def assertRefused(self, text, *fragments, expected=None):
        """
        Decode C{text} and check that it is refused with a message containing
        each of C{fragments}.
        """
        error = self.assertRaises(MeshFormatError, fromJSON, text, expected)
        for fragment in fragments:
            self.assertIn(fragment, error.message)
        self.assertEqual(error.status, 400)
        return error

    def test_unknownField(self):
        """
        A field the structure does not declare is refused, not ignored.
        """
        self.assertRefused(
            b'{"DeviceProfile":{"Identifier":"a","Colour":"red"}}', "unknown field 'Colour'"
        )

    def test_unknownNestedField(self):
        """
        Unknown fields are refused at any depth, and the path says where.
        """
        self.assertRefused(
            b'{"DeviceProfile":{"DeviceSignatureKey":{"UDF":"x","Extra":1}}}',
            "DeviceProfile.DeviceSignatureKey",
            "'Extra'",
        )

    def test_wrongScalarTypes(self):
        """
        Each scalar type refuses the JSON types it is not.
        """
        cases = [
            b'{"DeviceProfile":{"Identifier":12}}',
            b'{"DeviceProfile":{"Names":"not a list"}}',
            b'{"DeviceProfile":{"Names":[1]}}',
            b'{"Connection":{"Port":"80"}}',
            b'{"Connection":{"Port":80.0}}',
            b'{"Connection":{"Port":true}}',
            b'{"Connection":{"Polling":"yes"}}',
            b'{"Connection":{"Polling":1}}',
            b'{"DeviceProfile":{"Updated":12}}',
            b'{"NetworkProfilePrivate":{"CTL":5}}',
            b'{"DeviceProfile":{"DeviceSignatureKey":"key"}}',
        ]
        for case in cases:
            self.assertRefused(case, "expected")

    def test_integerRange(self):
        """
        Integers beyond the signed 64-bit range are refused.
        """
        self.assertRefused(b'{"Connection":{"Port":9223372036854775808}}', "64-bit")
        self.assertEqual(fromJSON(b'{"Connection":{"Port":-9223372036854775808}}').Port, -(2**63))

    def test_null(self):
        """
        C{null} is not a value of any draft type; an absent field is omitted.
        """
        self.assertRefused(b'{"DeviceProfile":{"Identifier":null}}', "null")

    def test_choice(self):
        """
        Fields whose values the draft enumerates refuse other values.
        """
        self.assertRefused(b'{"Account":{"Status":"Deleted"}}', "Open, Closed, Suspended")
        self.assertRefused(b'{"ConnectionResult":{"Result":"Maybe"}}', "Accepted")
        self.assertRefused(b'{"Connection":{"Security":["TLS"]}}', "Direct")
        self.assertEqual(fromJSON(b'{"Account":{"Status":"Open"}}').Status, "Open")

    def test_missingRequired(self):
        """
        Members that JOSE makes mandatory are required.
        """
        self.assertRefused(b'{"Key":{"crv":"Ed25519"}}', "Key.kty", "missing")
        self.assertRefused(b'{"JoseWebSignature":{"payload":""}}', "signatures", "missing")

    def test_tagging(self):
        """
        The top level must be one member naming a registered type, and the
        type must be the one expected.
        """
        self.assertRefused(b'{"Nonesuch":{}}', "unknown type 'Nonesuch'")
        self.assertRefused(b'{"DeviceProfile":{},"MasterProfile":{}}', "exactly one member")
        self.assertRefused(b"{}", "exactly one member")
        self.assertRefused(b"[]", "exactly one member")
        self.assertRefused(b'{"DeviceProfile":[]}', "expected an object")
        self.assertRefused(
            b'{"MasterProfile":{}}', "expected a DeviceProfile", expected=DeviceProfile
        )

    def test_expectedAllowsSubclasses(self):
        """
        Expecting a base type accepts its subclasses.
        """
        self.assertIsInstance(fromJSON(b'{"DeviceProfile":{}}', Entry), DeviceProfile)

    def test_malformedJSON(self):
        """
        Text that is not strict JSON is refused: syntax errors, invalid
        UTF-8, duplicate members (which parsers resolve differently), NaN,
        nesting too deep, integers too long to convert cheaply.
        """
        self.assertRefused(b'{"DeviceProfile":', "malformed JSON")
        self.assertRefused(b'{"DeviceProfile":{"Identifier":"\xff"}}', "UTF-8")
        self.assertRefused(
            b'{"DeviceProfile":{"Identifier":"a","Identifier":"b"}}', "duplicate", "Identifier"
        )
        self.assertRefused(b'{"Connection":{"Port":NaN}}', "NaN")
        self.assertRefused(b"[" * 100000 + b"]" * 100000, "JSON")
        self.assertRefused(b'{"Connection":{"Port":' + b"1" * 5000 + b"}}", "too large")

    def test_loneSurrogate(self):
        """
        A string holding a lone surrogate, which cannot be UTF-8, is refused.
        """
        self.assertRefused(b'{"DeviceProfile":{"Identifier":"\\ud800"}}', "Unicode")

    def test_isMeshError(self):
        """
        L{MeshFormatError} is a L{MeshError} and a C{ValueError}.
        """
        self.assertTrue(issubclass(MeshFormatError, MeshError))
        self.assertTrue(issubclass(MeshFormatError, ValueError))


class DateTimeTests(SynchronousTestCase):
    """
    C{DateTime} is RFC 3339, canonically in UTC.
    """

    def test_canonical(self):
        """
        Whole seconds are written without a fraction; fractions with six
        digits; always in UTC with C{Z}.
        """
        self.assertEqual(
            DateTime.encode(datetime(2016, 9, 20, 12, 0, tzinfo=UTC)), "2016-09-20T12:00:00Z"
        )
        self.assertEqual(
            DateTime.encode(datetime(2016, 9, 20, 12, 0, 0, 500, tzinfo=UTC)),
            "2016-09-20T12:00:00.000500Z",
        )

    def test_offsets(self):
        """
        An RFC 3339 offset is accepted and converted to UTC.
        """
        self.assertEqual(
            DateTime.decode("2016-09-20T14:00:00.5+02:00", "t"),
            datetime(2016, 9, 20, 12, 0, 0, 500000, tzinfo=UTC),
        )

    def test_refused(self):
        """
        Dates that are not RFC 3339, or not real, are refused.
        """
        for text in [
            "2016-09-20",
            "2016-09-20 12:00:00Z",
            "2016-09-20T12:00:00",
            "2016-13-20T12:00:00Z",
            "2016-02-30T12:00:00Z",
            "2016-09-20T12:00:60Z",
            "2016-12-31T23:59:60+01:00",
            "2016-09-20T12:00:00.Z",
            "2016-09-20T12:00:00,5Z",
            "2016-09-20x12:00:00Z",
            "2016-09-20T12:00:00+24:00",
            "2016-09-20T12:00:00+0200",
            "\uff12016-09-20T12:00:00Z",
            "2016-09-20T12:00:0\u0661Z",
            "0001-01-01T00:00:00+01:00",
        ]:
            self.assertRaises(MeshFormatError, DateTime.decode, text, "t")

    def test_everyRFC3339Form(self):
        """
        Every form RFC 3339 section 5.6 allows is read, as the Mesh reference
        implementation and others send them: lower-case C{t} and C{z}, any
        number of fraction digits (truncated to microseconds), offsets
        including C{-00:00}, and a leap second at 23:59:60 UTC; what is
        written stays the canonical form.
        """
        noon = datetime(2016, 9, 20, 12, 0, tzinfo=UTC)
        for text, expected in [
            ("2016-09-20t12:00:00z", noon),
            ("2016-09-20T12:00:00z", noon),
            ("2016-09-20t12:00:00Z", noon),
            ("2016-09-20T12:00:00.5Z", noon.replace(microsecond=500000)),
            ("2016-09-20T12:00:00.1234567Z", noon.replace(microsecond=123456)),
            ("2016-09-20T12:00:00.123456789012345678901234567890z", noon.replace(microsecond=123456)),
            ("2016-09-20T12:00:00.000000000Z", noon),
            ("2016-09-20T12:00:00-00:00", noon),
            ("2016-09-20t17:30:00.25+05:30", noon.replace(microsecond=250000)),
            ("2016-09-20T07:00:00-05:00", noon),
            ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            ("2017-01-01T00:59:60+01:00", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ]:
            self.assertEqual(DateTime.decode(text, "t"), expected, text)
        self.assertEqual(
            DateTime.encode(DateTime.decode("2016-09-20t14:00:00.5000000+02:00", "t")),
            "2016-09-20T12:00:00.500000Z",
        )

    def test_construction(self):
        """
        A naive datetime is refused; an aware one is normalised to UTC.
        """
        self.assertRaises(MeshFormatError, DeviceProfile, Updated=datetime(2016, 1, 1))
        plus2 = timezone(timedelta(hours=2))
        profile = DeviceProfile(Updated=datetime(2016, 1, 1, 2, tzinfo=plus2))
        self.assertEqual(profile.Updated.utcoffset(), timedelta(0))
        self.assertEqual(profile.Updated, datetime(2016, 1, 1, tzinfo=UTC))

    @settings(max_examples=50, deadline=None)
    @given(st.datetimes(timezones=st.just(UTC)))
    def test_roundTrip(self, value):
        """
        Every UTC datetime round-trips through its text exactly.
        """
        text = DateTime.encode(value)
        self.assertEqual(DateTime.decode(text, "t"), value)
        self.assertEqual(DateTime.encode(DateTime.decode(text, "t")), text)


class BinaryTests(SynchronousTestCase):
    """
    C{Binary} is canonical unpadded base64url.
    """

    @settings(max_examples=50, deadline=None)
    @given(st.binary(max_size=64))
    def test_roundTrip(self, value):
        """
        Every byte string round-trips, without padding or other alphabets.
        """
        text = Binary.encode(value)
        self.assertNotIn("=", text)
        self.assertNotIn("+", text)
        self.assertNotIn("/", text)
        self.assertEqual(Binary.decode(text, "b"), value)

    def test_refused(self):
        """
        Padding, the standard alphabet, whitespace, impossible lengths and
        non-zero trailing bits (a second spelling of the same bytes) are
        refused.
        """
        for text in ["YQ==", "a+b/", "YW Jj", "Y", "YR", "\u00e9"]:
            self.assertRaises(MeshFormatError, Binary.decode, text, "b")
        self.assertEqual(Binary.decode("YQ", "b"), b"a")

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \u00e9",
                   max_size=12))
    def test_sameAsReencoding(self, text):
        """
        Canonical is decided on the last character: exactly the texts that
        decode and encode back to themselves with the standard library are
        accepted, with the same bytes, and the others refused with the same
        messages as when canonical meant encoding everything again.
        """
        import base64
        import binascii

        def reference(data):
            if not schema._BASE64URL.match(data) or len(data) % 4 == 1:
                return "not unpadded base64url"
            try:
                value = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            except (binascii.Error, ValueError):
                return "not unpadded base64url"
            if base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii") != data:
                return "not canonical base64url"
            return value

        expected = reference(text)
        if isinstance(expected, bytes):
            self.assertEqual(Binary.decode(text, "b"), expected)
            self.assertEqual(Binary.encode(expected), text)
        else:
            error = self.assertRaises(MeshFormatError, Binary.decode, text, "b")
            self.assertEqual(error.message, f"b: {expected}")

    def test_everyLastCharacter(self):
        """
        Every character of the alphabet at the end of a 2- and a 3-character
        text: accepted exactly when re-encoding gives the text back.
        """
        import base64

        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for prefix in ("Y", "YW"):
            for last in alphabet:
                text = prefix + last
                value = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
                canonical = base64.urlsafe_b64encode(value).rstrip(b"=").decode() == text
                if canonical:
                    self.assertEqual(Binary.decode(text, "b"), value)
                else:
                    self.assertRaises(MeshFormatError, Binary.decode, text, "b")

    def test_referenceLineBreaks(self):
        """
        The line breaks the Mesh reference implementation puts inside long
        values (one first, then one every 64 characters) are ignored when
        reading a Binary field; L{schema.decodeBinary} itself stays strict.
        """
        self.assertEqual(Binary.decode("\nYWJj\nZGVm", "b"), b"abcdef")
        self.assertEqual(Binary.decode("\r\nYWJj\r\nZGVm\n", "b"), b"abcdef")
        self.assertRaises(MeshFormatError, schema.decodeBinary, "\nYWJj", "b")
        for text in ["\tYWJj", "YW\vJj", "YWJj\n=", "\n\rYWJj"]:
            self.assertRaises(MeshFormatError, Binary.decode, text, "b")

    def test_rawNewlinesInStrings(self):
        """
        JSON strings with raw line breaks inside, as the reference writes
        its base64url, are read as if the newline were escaped.
        """
        self.assertEqual(schema.parseJSON('{"n": "\nYWJj\nZGVm"}'), {"n": "\nYWJj\nZGVm"})
        key = PublicKey.fromJSON('{"PublicKey": {"PublicParameters": {"kty": "OKP", "x": "\nYWJj"}}}')
        self.assertEqual(key.PublicParameters.x, b"abc")

    def test_construction(self):
        """
        Bytes-like values are converted to C{bytes}; text is refused.
        """
        self.assertEqual(Key(kty="OKP", x=bytearray(b"ab")).x, b"ab")
        self.assertRaises(MeshFormatError, Key, kty="OKP", x="YWI")


class LiberalFormTests(SynchronousTestCase):
    """
    Other forms of the same value, as the Mesh reference implementation
    writes them, are read; this project's form is written.
    """

    def test_structTaggedWithItsOwnType(self):
        """
        A structure field may come tagged with its own type, never with
        another.
        """
        plain = {"PublicKey": {"PublicParameters": {"kty": "OKP", "x": "YWJj"}}}
        tagged = {"PublicKey": {"PublicParameters": {"Key": {"kty": "OKP", "x": "YWJj"}}}}
        self.assertEqual(PublicKey.fromDict(tagged), PublicKey.fromDict(plain))
        self.assertEqual(PublicKey.fromDict(tagged).toDict(), plain)
        wrong = {"PublicKey": {"PublicParameters": {"PublicKey": {"kty": "OKP", "x": "YWJj"}}}}
        self.assertRaises(MeshFormatError, PublicKey.fromDict, wrong)

    def test_tagCannotBeAField(self):
        """
        Reading a tagged structure field is unambiguous because no structure
        that a field holds has a field named after its own type.
        """
        import pz.mesh.messages  # noqa: F401 - registers the portal's structures

        for cls in schema.registeredTypes().values():
            for _, spec in schema.fieldsOf(cls):
                fieldType = spec.type.item if isinstance(spec.type, schema.List) else spec.type
                if isinstance(fieldType, schema.Struct):
                    target = fieldType.target
                    names = [name for name, _ in schema.fieldsOf(target)]
                    self.assertNotIn(target.__name__, names)

    def test_publicKeyRSA(self):
        """
        C{{"PublicKeyRSA": {kid, n, e}}} is read as an RSA JWK and written
        so; with C{kty} or C{d} inside, or not an object, it is refused.
        """
        key = Key.fromDict({"Key": {"PublicKeyRSA": {"kid": "K", "n": "\nAQAB", "e": "AQAB"}}})
        self.assertEqual(key, Key(kty="RSA", kid="K", n=b"\x01\x00\x01", e=b"\x01\x00\x01"))
        self.assertEqual(key.toDict(), {"Key": {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "K"}})
        for body in [{"kty": "RSA", "n": "AQAB"}, {"n": "AQAB", "d": "AQAB"}, "AQAB"]:
            self.assertRaises(MeshFormatError, Key.fromDict, {"Key": {"PublicKeyRSA": body}})


class ConstructionTests(SynchronousTestCase):
    """
    Structures check their values when they are made, not only when decoded.
    """

    def test_wrongTypes(self):
        """
        Wrong Python types are refused with a message naming the field.
        """
        error = self.assertRaises(MeshFormatError, Connection, Port="80")
        self.assertIn("Connection.Port", error.message)
        self.assertRaises(MeshFormatError, Connection, Polling=1)
        self.assertRaises(MeshFormatError, Connection, Security=["Sometimes"])
        self.assertRaises(MeshFormatError, DeviceProfile, DeviceSignatureKey=Key(kty="OKP"))
        self.assertRaises(MeshFormatError, DeviceProfile, Names="abc")

    def test_structExact(self):
        """
        A struct field holds exactly its declared type, since an untagged
        subclass could not be decoded back.
        """
        self.assertRaises(MeshFormatError, Account, AccountID=Entry())

    def test_required(self):
        """
        A required field cannot be left out.
        """
        self.assertRaises(MeshFormatError, Key)

    def test_listsBecomeTuples(self):
        """
        Lists given to a constructor become tuples, so values stay immutable
        and compare equal to decoded ones.
        """
        profile = DeviceProfile(Names=["a", "b"])
        self.assertEqual(profile.Names, ("a", "b"))

    def test_frozen(self):
        """
        Structures cannot be changed after construction.
        """
        import attrs

        profile = DeviceProfile(Identifier="a")
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, profile, "Identifier", "b")

    def test_emptyListDistinctFromAbsent(self):
        """
        An empty list and an absent list field are different values, and
        both round-trip.
        """
        empty = PublicKey(X509Chain=[])
        absent = PublicKey()
        self.assertNotEqual(empty, absent)
        self.assertEqual(toJSON(empty), b'{"PublicKey":{"X509Chain":[]}}')
        self.assertEqual(toJSON(absent), b'{"PublicKey":{}}')
        self.assertEqual(fromJSON(toJSON(empty)), empty)


class CheckedOnceTests(SynchronousTestCase):
    """
    Decoding checks each value once, when its field type reads it, and
    builds the structure without checking it again; what it refused before
    it still refuses, with the same message.
    """

    def setUp(self):
        del _COUNTING.checked[:]

    def test_eachValueCheckedOnce(self):
        """
        Each decoded value, nested ones included, is checked exactly once.
        """
        decoded = fromJSON(
            b'{"SchemaTestCounted":{"Name":"outer",'
            b'"Inner":{"SchemaTestCounted":{"Name":"inner"}}}}'
        )
        self.assertEqual(decoded.Inner.Name, "inner")
        self.assertEqual(sorted(_COUNTING.checked), ["inner", "outer"])

    def test_sameAsConstructed(self):
        """
        The decoded structure is the one its constructor makes from the same
        values: equal, with the same hash, every absent field C{None}, and
        frozen.
        """
        import attrs

        when = datetime(2016, 9, 20, 12, 0, tzinfo=UTC)
        text = (
            b'{"SchemaTestCounted":{"Name":"a","When":"2016-09-20T13:00:00+01:00",'
            b'"Data":"AQI","Tags":["x","y"]}}'
        )
        decoded = fromJSON(text)
        made = SchemaTestCounted(Name="a", When=when, Data=b"\x01\x02", Tags=["x", "y"])
        self.assertEqual(decoded, made)
        self.assertEqual(hash(decoded), hash(made))
        self.assertIs(type(decoded), SchemaTestCounted)
        self.assertIsNone(decoded.Inner)
        self.assertEqual(toJSON(decoded), toJSON(made))
        self.assertRaises(attrs.exceptions.FrozenInstanceError, setattr, decoded, "Name", "b")
        profile = fromJSON(DeviceProfile(Names=["a"], Identifier="i").toJSON())
        self.assertEqual(profile, DeviceProfile(Names=("a",), Identifier="i"))

    def test_badValueStillRefused(self):
        """
        A value its field type refuses is refused once, with the message
        naming its path, as before.
        """
        error = self.assertRaises(
            MeshFormatError, fromJSON,
            b'{"SchemaTestCounted":{"Inner":{"SchemaTestCounted":{"Name":5}}}}',
        )
        self.assertEqual(
            error.message, "SchemaTestCounted.Inner.SchemaTestCounted.Name: "
            "expected a string, got an integer",
        )
        self.assertEqual(_COUNTING.checked, [5])
        error = self.assertRaises(
            MeshFormatError, fromJSON, b'{"SchemaTestCounted":{"Tags":["x",1]}}'
        )
        self.assertEqual(error.message, "SchemaTestCounted.Tags[1]: expected a string, got an integer")
        error = self.assertRaises(MeshFormatError, fromJSON, b'{"Key":{"kid":"k"}}')
        self.assertEqual(error.message, "Key.kty: required field is missing")

    def test_firstProblemInDeclarationOrder(self):
        """
        Only the members present are visited, yet the problem reported is
        the first in declaration order, whatever the members' order: an
        unknown member first of all, then a bad value before a missing
        required field, the missing field before a bad value after it.
        """
        cases = [
            ({"Last": 1, "Bogus": 1}, "SchemaTestOrdered: unknown field 'Bogus' in a SchemaTestOrdered"),
            ({"Last": 1, "First": 1}, "SchemaTestOrdered.First: expected a string, got an integer"),
            ({"Last": 1}, "SchemaTestOrdered.Middle: required field is missing"),
            ({"Last": None, "Middle": "m"},
             "SchemaTestOrdered.Last: null is not a String; omit the field instead"),
            ({"Middle": 2, "First": None},
             "SchemaTestOrdered.First: null is not a String; omit the field instead"),
        ]
        for body, message in cases:
            error = self.assertRaises(
                MeshFormatError, schema.decode, {"SchemaTestOrdered": body}
            )
            self.assertEqual(error.message, message)
        decoded = schema.decode({"SchemaTestOrdered": {"Last": "l", "Middle": "m"}})
        self.assertEqual(decoded, SchemaTestOrdered(Middle="m", Last="l"))

    def test_constructorStillChecks(self):
        """
        Making a structure in Python still checks every value, once.
        """
        self.assertRaises(MeshFormatError, SchemaTestCounted, Name=5)
        self.assertEqual(_COUNTING.checked, [5])

    def test_initHooksKept(self):
        """
        A structure class with its own initialisation hook is built by its
        constructor, so the hook runs.
        """
        import attrs

        seen = []

        @attrs.frozen(kw_only=True)
        class Hooked(Structure):
            Name: str | None = meshField(String)

            def __attrs_post_init__(self):
                seen.append(self.Name)

        self.assertEqual(schema._decodeBody(Hooked, {"Name": "n"}, "Hooked"), Hooked(Name="n"))
        self.assertEqual(seen, ["n", "n"])


class EncodingTests(SynchronousTestCase):
    """
    The encoding's shape: tagged at the top, untagged inside, declaration
    order, compact UTF-8.
    """

    def test_shape(self):
        """
        Fields appear in declaration order, base class first, nested structs
        untagged, absent fields omitted.
        """
        profile = DeviceProfile(
            Description="laptop",
            Identifier="MB",
            DeviceSignatureKey=PublicKey(UDF="MB"),
            Updated=datetime(2016, 9, 20, tzinfo=UTC),
        )
        self.assertEqual(
            profile.toJSON(),
            b'{"DeviceProfile":{"Identifier":"MB","Updated":"2016-09-20T00:00:00Z",'
            b'"Description":"laptop","DeviceSignatureKey":{"UDF":"MB"}}}',
        )
        self.assertEqual(DeviceProfile.fromJSON(profile.toJSON()), profile)
        self.assertEqual(profile.toDict(), schema.parseJSON(profile.toJSON()))
        self.assertEqual(DeviceProfile.fromDict(profile.toDict()), profile)

    def test_unicode(self):
        """
        Non-ASCII text is carried as UTF-8, not escaped.
        """
        text = toJSON(DeviceProfile(Description="T\u00e9l\u00e9phone"))
        self.assertIn("T\u00e9l\u00e9phone".encode("utf-8"), text)

    def test_tagged(self):
        """
        A L{Tagged} field carries any subclass of its base with its tag, and
        refuses types outside it.
        """
        holder = SchemaTestHolder(
            Item=DeviceProfile(Identifier="d"), Items=[Entry(Identifier="e"), DeviceProfile()]
        )
        text = toJSON(holder)
        self.assertIn(b'"Item":{"DeviceProfile":{"Identifier":"d"}}', text)
        self.assertEqual(fromJSON(text), holder)
        self.assertRaises(
            MeshFormatError, fromJSON, b'{"SchemaTestHolder":{"Item":{"Account":{}}}}'
        )
        self.assertRaises(MeshFormatError, SchemaTestHolder, Item=Account())

    def test_unregistered(self):
        """
        Encoding something that is not a registered structure is a
        programming error.
        """
        self.assertRaises(TypeError, schema.encode, object())

    def test_duplicateRegistration(self):
        """
        Two structures cannot share a name, since the name is the JSON tag.
        """

        def declare():
            @meshStructure
            class DeviceProfile(Structure):
                """
                A clash.
                """

                Identifier: str | None = meshField(String)

        self.assertRaises(TypeError, declare)

    def test_registry(self):
        """
        L{schema.structureType} finds a class by name and refuses unknown
        names.
        """
        self.assertIs(schema.structureType("DeviceProfile"), DeviceProfile)
        self.assertRaises(MeshFormatError, schema.structureType, "Nonesuch")
        self.assertIs(schema.registeredTypes()["Key"], Key)
