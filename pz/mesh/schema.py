# -*- test-case-name: tests.mesh.test_schema -*-
"""
The Mesh's JSON encoding, declared once per structure.

The Reference draft describes every structure as a list of fields, each of
type String, Integer, Boolean, DateTime, Binary, another structure, or a list
of one of those (C{[0..Many]}), and sends an object as JSON tagged with its
type name: C{{"DeviceProfile": {...}}}. This module turns such a declaration
into a frozen C{attrs} class whose constructor checks every value, and into an
encoder and decoder that refuse anything the declaration does not allow
(unknown fields, wrong types, C{null}, missing required fields, duplicate JSON
keys) with a L{MeshFormatError} naming the path of the offending field.
Decoding checks each value once, as it reads it, and builds the structure
from the checked values without running the constructor's checks again.

Refusing rather than ignoring matters because these objects are signed: a
field one side does not understand is a field whose meaning a signer and a
verifier could disagree on.

Declaring a structure::

    @meshStructure
    class Connection(Structure):
        '''Describes network connection parameters for an application.'''
        ServiceName: str | None = meshField(String)
        Port: int | None = meshField(Integer)
        Security: tuple[str, ...] | None = meshField(List(Choice("Direct", "Upgrade", "None")))

Every field is optional, as in the draft, and C{None} means "absent"; a list
field that is present is a tuple (possibly empty), so C{[]} and an absent
field stay distinct and every object round-trips exactly:
C{fromJSON(toJSON(x)) == x}, and C{toJSON(fromJSON(b)) == b} for every C{b}
this module produced.

Encoding rules:
    - String: a JSON string (valid UTF-8, no lone surrogates).
    - Integer: a JSON integer in the signed 64-bit range (not a boolean,
      not C{1.0}).
    - Boolean: C{true} or C{false}.
    - DateTime: RFC 3339, emitted in UTC as C{2016-09-20T12:00:00Z}, or
      with six fraction digits when there is a fraction; read in every form
      RFC 3339 section 5.6 allows (C{t}/C{z} in lower case, any number of
      fraction digits, truncated to microseconds, any offset, converted to
      UTC, and a leap second, C{23:59:60} UTC, read as C{23:59:59.999999}). Python values
      are timezone-aware C{datetime}s, normalised to UTC.
    - Binary: base64url without padding (RFC 4648 section 5), canonical
      only, except that the line breaks the Mesh reference implementation
      puts inside long values are ignored when reading; Python values are
      C{bytes}.
    - Struct: the nested object's fields, untagged (its type is the
      field's); when reading, the same object tagged with that one type is
      accepted too, as the reference implementation sends some.
    - A structure may declare C{readForms(data, path)}, a class method that
      rewrites another accepted JSON form of itself into its own before
      decoding (JWS flattened forms, the reference's RSA key form).
    - Tagged: a nested object tagged with its type name, for fields that
      may hold any subclass of a base.
    - JSONObject: any JSON object; used only for JOSE header parameters,
      which RFC 7515 leaves open and C{jwcrypto} checks.
"""

from __future__ import annotations

import abc
import binascii
import json
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import attrs

from pz.mesh.errors import MeshFormatError, withArticle

__all__ = [
    "FieldType",
    "String",
    "Choice",
    "Integer",
    "Boolean",
    "DateTime",
    "Binary",
    "JSONObject",
    "Struct",
    "Tagged",
    "List",
    "FieldSpec",
    "Structure",
    "meshStructure",
    "meshField",
    "fieldsOf",
    "structureType",
    "registeredTypes",
    "encode",
    "decode",
    "toJSON",
    "fromJSON",
    "parseJSON",
    "encodeDateTime",
    "encodeBinary",
    "decodeBinary",
    "withoutLineBreaks",
]

_REGISTRY: dict[str, type] = {}
#: The declared fields of each structure class, as L{_specsOf} found them.
_SPECS: dict[type, dict] = {}
#: How L{_decodeBody} builds each structure class, as L{_builderOf} made it.
_BUILDERS: dict[type, Any] = {}
#: The fields of each structure class as L{_decodeBody} visits them.
_LAYOUTS: dict[type, tuple] = {}
_META = "pz.mesh.schema"
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1


def _describe(value: object) -> str:
    """
    Name the JSON (or Python) type of C{value} for an error message.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return withArticle(type(value).__name__)


class FieldType(abc.ABC):
    """
    How one draft type is checked in Python and carried in JSON.

    Subclasses implement L{check} (the Python value is acceptable), L{encode}
    (Python to JSON) and L{decode} (JSON to Python, refusing what is not
    acceptable); L{convert} may normalise a Python value first.

    @ivar name: the type's name as the draft writes it, for messages.
    """

    name = "?"

    def convert(self, value: Any) -> Any:
        """
        Normalise a Python value given to a constructor (e.g. list to tuple).
        Values that cannot be normalised are returned unchanged, for
        L{check} to refuse.
        """
        return value

    @abc.abstractmethod
    def check(self, value: Any, path: str) -> None:
        """
        Raise L{MeshFormatError} unless C{value} is acceptable.
        """

    @abc.abstractmethod
    def encode(self, value: Any) -> Any:
        """
        Return the JSON form of an acceptable Python value.
        """

    @abc.abstractmethod
    def decode(self, data: Any, path: str) -> Any:
        """
        Return the Python value of the JSON C{data}, or raise
        L{MeshFormatError} naming C{path}.
        """

    def _expected(self, what: str, value: Any, path: str) -> MeshFormatError:
        return MeshFormatError(f"{path}: expected {what}, got {_describe(value)}")


class _String(FieldType):
    """
    A draft C{String}, optionally restricted to the values the draft lists.
    """

    name = "String"

    def __init__(self, choices: tuple[str, ...] = ()) -> None:
        self.choices = choices

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise self._expected("a string", value, path)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise MeshFormatError(f"{path}: the string is not valid Unicode") from None
        if self.choices and value not in self.choices:
            allowed = ", ".join(self.choices)
            raise MeshFormatError(f"{path}: {value!r} is not one of {allowed}")

    def encode(self, value: str) -> str:
        return value

    def decode(self, data: Any, path: str) -> str:
        self.check(data, path)
        return data


String = _String()


def Choice(*values: str) -> FieldType:
    """
    A C{String} that must be one of C{values}, for the fields whose valid
    values the draft enumerates (Account C{Status}, ConnectionResult
    C{Result}, Connection C{Security}).
    """
    return _String(tuple(values))


class _Integer(FieldType):
    """
    A draft C{Integer}: a signed 64-bit JSON integer.
    """

    name = "Integer"

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._expected("an integer", value, path)
        if not _INT_MIN <= value <= _INT_MAX:
            raise MeshFormatError(f"{path}: {value} is outside the 64-bit integer range")

    def encode(self, value: int) -> int:
        return value

    def decode(self, data: Any, path: str) -> int:
        self.check(data, path)
        return data


Integer = _Integer()


class _Boolean(FieldType):
    """
    A draft C{Boolean}.
    """

    name = "Boolean"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise self._expected("a boolean", value, path)

    def encode(self, value: bool) -> bool:
        return value

    def decode(self, data: Any, path: str) -> bool:
        self.check(data, path)
        return data


Boolean = _Boolean()

# RFC 3339 section 5.6, whole: "T" and "Z" in either case (its ABNF strings
# are case-insensitive), one or more fraction digits, "Z" or a numeric offset
# ("-00:00" included), and a leap second (":60"). ASCII digits only.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def encodeDateTime(value: datetime) -> str:
    """
    Format a timezone-aware C{datetime} as the canonical RFC 3339 UTC string.
    """
    value = value.astimezone(timezone.utc)
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


class _DateTime(FieldType):
    """
    A draft C{DateTime}: an RFC 3339 string; a timezone-aware UTC
    C{datetime} in Python.
    """

    name = "DateTime"

    def convert(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            try:
                return value.astimezone(timezone.utc)
            except OverflowError:
                return value
        return value

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, datetime):
            raise self._expected("a datetime", value, path)
        if value.tzinfo is None or value.utcoffset() != timedelta(0):
            raise MeshFormatError(f"{path}: a DateTime must be timezone-aware (UTC)")

    def encode(self, value: datetime) -> str:
        return encodeDateTime(value)

    def decode(self, data: Any, path: str) -> datetime:
        if not isinstance(data, str):
            raise self._expected("an RFC 3339 date-time string", data, path)
        match = _RFC3339.match(data)
        if match is None:
            raise MeshFormatError(
                f"{path}: {data!r} is not an RFC 3339 date-time "
                "(YYYY-MM-DDTHH:MM:SS[.fraction]Z or an offset such as +01:00)"
            )
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        # Python has no 60th second: a leap second is read as the last
        # microsecond before the next minute, so order is kept. Fractions
        # finer than a microsecond are truncated.
        microsecond = int((fraction or "0")[:6].ljust(6, "0"))
        leap = second == "60"
        if leap:
            second, microsecond = "59", 999999
        if zone in ("Z", "z"):
            offset = timedelta(0)
        else:
            sign = -1 if zone[0] == "-" else 1
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if hours > 23 or minutes > 59:
                raise MeshFormatError(f"{path}: {data!r} has an invalid UTC offset")
            offset = sign * timedelta(hours=hours, minutes=minutes)
        try:
            value = datetime(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second),
                microsecond,
                tzinfo=timezone(offset),
            ).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise MeshFormatError(f"{path}: {data!r} is not a valid date-time") from None
        if leap and (value.hour, value.minute) != (23, 59):
            # RFC 3339 section 5.7: leap seconds are inserted at 23:59:60 UTC.
            raise MeshFormatError(f"{path}: {data!r} has a leap second that is not at 23:59 UTC")
        return value


DateTime = _DateTime()

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
#: base64url's two letters that differ from base64's, each way.
_TO_BASE64 = bytes.maketrans(b"-_", b"+/")
_FROM_BASE64 = bytes.maketrans(b"+/", b"-_")
#: The characters that may end a canonical encoding, by its length modulo
#: 4: those whose bits past the last whole byte are zero (4 of them when
#: the last character carries 2 bits of data, 16 when it carries 4).
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def encodeBinary(value: bytes) -> str:
    """
    Encode bytes as base64url without padding.
    """
    return binascii.b2a_base64(value, newline=False).rstrip(b"=").translate(_FROM_BASE64).decode("ascii")


def decodeBinary(data: str, path: str = "Binary") -> bytes:
    """
    Decode canonical unpadded base64url, refusing padding, whitespace, other
    alphabets and encodings whose unused trailing bits are not zero (which
    would let two texts stand for the same bytes).

    Canonical means that encoding the bytes again gives C{data} back; for
    text in the alphabet, of a length that is not 1 more than a multiple of
    4, that holds exactly when the last character's bits past the last
    whole byte are zero, which is checked on that character rather than by
    encoding everything again.
    """
    if not isinstance(data, str):
        raise MeshFormatError(f"{path}: expected a base64url string, got {_describe(data)}")
    size = len(data) % 4
    if size == 1 or not _BASE64URL.match(data):
        raise MeshFormatError(f"{path}: not unpadded base64url")
    if size and data[-1] not in _CANONICAL_LAST[size]:
        raise MeshFormatError(f"{path}: not canonical base64url")
    try:
        return binascii.a2b_base64((data + "=" * (-size % 4)).encode("ascii").translate(_TO_BASE64))
    except (binascii.Error, ValueError):
        raise MeshFormatError(f"{path}: not unpadded base64url") from None


class _Binary(FieldType):
    """
    A draft C{Binary}: base64url in JSON, C{bytes} in Python.
    """

    name = "Binary"

    def convert(self, value: Any) -> Any:
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return value

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bytes):
            raise self._expected("bytes", value, path)

    def encode(self, value: bytes) -> str:
        return encodeBinary(value)

    def decode(self, data: Any, path: str) -> bytes:
        if isinstance(data, str) and "\n" in data:
            data = withoutLineBreaks(data)
        return decodeBinary(data, path)


Binary = _Binary()


def withoutLineBreaks(data: str) -> str:
    """
    Remove the line breaks (C{\\n}, C{\\r\\n}) that the Mesh reference
    implementation puts inside long base64url values (one before the value
    and one after every 64 characters). Nothing else is tolerated: the rest
    must still be canonical base64url.
    """
    return data.replace("\r\n", "").replace("\n", "")


def _checkJSONValue(value: Any, path: str) -> None:
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MeshFormatError(f"{path}: not a finite number")
        return
    if isinstance(value, str):
        String.check(value, path)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _checkJSONValue(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MeshFormatError(f"{path}: object keys must be strings")
            _checkJSONValue(item, f"{path}.{key}")
        return
    raise MeshFormatError(f"{path}: {_describe(value)} is not a JSON value")


class _JSONObject(FieldType):
    """
    Any JSON object. Used only for JOSE header parameters, whose set RFC 7515
    leaves open; C{jwcrypto} checks them when it verifies or decrypts.
    """

    name = "JSONObject"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise self._expected("an object", value, path)
        _checkJSONValue(value, path)

    def encode(self, value: dict) -> dict:
        return value

    def decode(self, data: Any, path: str) -> dict:
        self.check(data, path)
        return data


JSONObject = _JSONObject()


class Struct(FieldType):
    """
    A nested structure of one exact type, encoded untagged.

    @param target: the structure class, or its draft name for a type
        declared later in the module.
    """

    def __init__(self, target: type | str) -> None:
        self._target = target

    @property
    def target(self) -> type:
        """
        The structure class, resolved through the registry if it was named.
        """
        if isinstance(self._target, str):
            self._target = structureType(self._target)
        return self._target

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._target if isinstance(self._target, str) else self._target.__name__

    def check(self, value: Any, path: str) -> None:
        if type(value) is not self.target:
            raise self._expected(withArticle(self.target.__name__), value, path)

    def encode(self, value: Structure) -> dict:
        return _encodeBody(value)

    def decode(self, data: Any, path: str) -> Structure:
        # Read liberally: the Mesh reference implementation sometimes tags a
        # nested object with its own type (CreateRequest.Profile is sent as
        # {"SignedPersonalProfile": {...}}). Only the field's own type is
        # accepted; no structure has a field named after its own type, so
        # this cannot be confused with an untagged body.
        name = self.target.__name__
        if isinstance(data, dict) and len(data) == 1 and isinstance(data.get(name), dict):
            data = data[name]
        return _decodeBody(self.target, data, path)


class Tagged(FieldType):
    """
    A nested structure of any registered type derived from C{base}, encoded
    with its type tag (C{{"PasswordProfile": {...}}}) so the decoder knows
    which one it is.
    """

    def __init__(self, base: type | str) -> None:
        self._base = base

    @property
    def base(self) -> type:
        """
        The base class, resolved through the registry if it was named.
        """
        if isinstance(self._base, str):
            self._base = structureType(self._base)
        return self._base

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._base if isinstance(self._base, str) else self._base.__name__

    def check(self, value: Any, path: str) -> None:
        registered = _REGISTRY.get(type(value).__name__) is type(value)
        if not isinstance(value, self.base) or not registered:
            raise self._expected(withArticle(self.base.__name__), value, path)

    def encode(self, value: Structure) -> dict:
        return encode(value)

    def decode(self, data: Any, path: str) -> Structure:
        return _decodeTagged(data, self.base, path)


class List(FieldType):
    """
    A draft C{[0..Many]} field: a JSON array; a tuple in Python (lists given
    to a constructor are converted).
    """

    def __init__(self, item: FieldType) -> None:
        self.item = item

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.item.name} [0..Many]"

    def convert(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(self.item.convert(item) for item in value)
        return value

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, tuple):
            raise self._expected("a list", value, path)
        for index, item in enumerate(value):
            self.item.check(item, f"{path}[{index}]")

    def encode(self, value: tuple) -> list:
        return [self.item.encode(item) for item in value]

    def decode(self, data: Any, path: str) -> tuple:
        if not isinstance(data, list):
            raise self._expected("a list", data, path)
        return tuple(self.item.decode(item, f"{path}[{index}]") for index, item in enumerate(data))


@attrs.frozen
class FieldSpec:
    """
    What L{meshField} records about one field.

    @ivar type: the field's L{FieldType}.
    @ivar required: whether decoding and construction refuse its absence.
        The draft marks every Mesh field optional; C{required} is used for
        the members that JOSE (RFC 7515, 7516, 7517) makes mandatory.
    """

    type: FieldType
    required: bool = False


def meshField(fieldType: FieldType, *, required: bool = False) -> Any:
    """
    Declare one field of a L{meshStructure}: its value defaults to C{None}
    (absent), is normalised by C{fieldType.convert} and checked by
    C{fieldType.check} on construction.
    """

    def convert(value: Any) -> Any:
        return None if value is None else fieldType.convert(value)

    def validate(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        path = f"{type(instance).__name__}.{attribute.name}"
        if value is None:
            if required:
                raise MeshFormatError(f"{path}: required field is missing")
            return
        fieldType.check(value, path)

    return attrs.field(
        default=None,
        kw_only=True,
        converter=convert,
        validator=validate,
        metadata={_META: FieldSpec(fieldType, required)},
    )


class Structure:
    """
    Base of every Mesh structure: a frozen value whose fields are declared
    with L{meshField}, with its JSON encoding as methods.
    """

    __slots__ = ()

    def toDict(self) -> dict:
        """
        Return the tagged JSON value, C{{"TypeName": {...}}}.
        """
        return encode(self)

    def toJSON(self) -> bytes:
        """
        Return the tagged JSON text as UTF-8 bytes (compact, fields in
        declaration order, base class fields first).
        """
        return toJSON(self)

    @classmethod
    def fromDict(cls, data: Any) -> Any:
        """
        Decode a tagged JSON value that must hold this type or a subclass.
        """
        return decode(data, cls)

    @classmethod
    def fromJSON(cls, data: bytes | str) -> Any:
        """
        Decode tagged JSON text that must hold this type or a subclass.
        """
        return fromJSON(data, cls)


def meshStructure(cls: type) -> Any:
    """
    Class decorator: make C{cls} a frozen, keyword-only C{attrs} class and
    register it under its name, which is its JSON tag. Names are the draft's
    and must be unique.
    """
    name = cls.__name__
    if name in _REGISTRY:
        raise TypeError(f"a Mesh structure named {name} is already registered")
    built = attrs.frozen(kw_only=True)(cls)
    _REGISTRY[name] = built
    return built


def fieldsOf(cls: type) -> Iterator[tuple[str, FieldSpec]]:
    """
    Yield C{(name, spec)} for the declared fields of a structure class, base
    class fields first, in declaration order.
    """
    return iter(_specsOf(cls).items())


def _specsOf(cls: type) -> dict[str, FieldSpec]:
    """
    The declared fields of a structure class, C{{name: spec}} in
    declaration order, worked out once per class: a class's fields never
    change once it is built, and every encode and decode of every nested
    structure asks for them (a portal does so for each request).
    """
    specs = _SPECS.get(cls)
    if specs is None:
        specs = {}
        for attribute in attrs.fields(cls):
            spec = attribute.metadata.get(_META)
            if spec is not None:
                specs[attribute.name] = spec
        _SPECS[cls] = specs
    return specs


def structureType(name: str) -> type:
    """
    Return the registered structure class named C{name}.

    @raise MeshFormatError: if there is none.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MeshFormatError(f"unknown type {name!r}") from None


def registeredTypes() -> dict[str, type]:
    """
    Return a copy of the registry: every structure name mapped to its class.
    """
    return dict(_REGISTRY)


def _encodeBody(obj: Structure) -> dict:
    body = {}
    for name, spec in _specsOf(type(obj)).items():
        value = getattr(obj, name)
        if value is not None:
            body[name] = spec.type.encode(value)
    return body


def _decodeBody(cls: type, data: Any, path: str) -> Any:
    reader = getattr(cls, "readForms", None)
    if reader is not None:
        data = reader(data, path)
    if not isinstance(data, dict):
        raise MeshFormatError(f"{path}: expected an object, got {_describe(data)}")
    fields, required = _layoutOf(cls)
    # Only the members present are visited (a Key declares every JWK
    # parameter, and most are absent), in declaration order, so that the
    # first problem reported is the one the declaration order meets first,
    # a missing required field included.
    present = []
    for key in data:
        field = fields.get(key)
        if field is None:
            raise MeshFormatError(f"{path}: unknown field {key!r} in {withArticle(cls.__name__)}")
        present.append(field)
    present.sort()
    missing = next((field for field in required if field[1] not in data), None)
    values = {}
    for index, name, spec in present:
        if missing is not None and index > missing[0]:
            break
        raw = data[name]
        if raw is None:
            raise MeshFormatError(
                f"{path}.{name}: null is not {withArticle(spec.type.name)}; omit the field instead"
            )
        values[name] = spec.type.decode(raw, f"{path}.{name}")
    if missing is not None:
        raise MeshFormatError(f"{path}.{missing[1]}: required field is missing")
    return _builderOf(cls)(values)


def _layoutOf(cls: type) -> tuple:
    """
    A structure class's fields for decoding, worked out once per class:
    C{{name: (position, name, spec)}} in declaration order, and the
    required ones' entries.
    """
    layout = _LAYOUTS.get(cls)
    if layout is None:
        fields = {
            name: (index, name, spec) for index, (name, spec) in enumerate(_specsOf(cls).items())
        }
        layout = (fields, tuple(field for field in fields.values() if field[2].required))
        _LAYOUTS[cls] = layout
    return layout


def _builderOf(cls: type) -> Any:
    """
    Build C{cls} from decoded values without checking them a second time.

    Every value L{_decodeBody} passes on has just been checked by its
    field type's C{decode}, which calls that type's C{check} or builds the
    value itself (a tuple, a UTC C{datetime}, C{bytes}, a nested structure
    decoded the same way), so it is already what C{convert} would make of
    it and what the constructor's validators would accept. Running them
    again doubled the work of every decode (a portal decodes each request
    and each signed payload). The object is the one the constructor would
    make: every declared field set, absent ones to C{None}, through
    C{object.__setattr__} as C{attrs}' own initialiser does for frozen
    classes. A class that is not exactly a L{meshStructure} (a field that
    is not a L{meshField}, or its own initialisation hooks) is built by its
    constructor, with every check.
    """
    builder = _BUILDERS.get(cls)
    if builder is None:
        names = tuple(attribute.name for attribute in attrs.fields(cls))
        plain = (
            set(names) == set(_specsOf(cls))
            and not hasattr(cls, "__attrs_pre_init__")
            and not hasattr(cls, "__attrs_post_init__")
        )
        if plain:
            new, setField = object.__new__, object.__setattr__

            def builder(values: dict) -> Any:
                obj = new(cls)
                for name in names:
                    setField(obj, name, values.get(name))
                return obj

        else:

            def builder(values: dict) -> Any:
                return cls(**values)

        _BUILDERS[cls] = builder
    return builder


def _decodeTagged(data: Any, expected: type | None, path: str | None) -> Any:
    where = "" if path is None else f"{path}: "
    if not isinstance(data, dict) or len(data) != 1:
        got = f"{len(data)} members" if isinstance(data, dict) else _describe(data)
        raise MeshFormatError(
            f"{where}expected an object with exactly one member, the type tag, got {got}"
        )
    [(name, body)] = data.items()
    if name not in _REGISTRY:
        raise MeshFormatError(f"{where}unknown type {name!r}")
    cls = _REGISTRY[name]
    if expected is not None and not issubclass(cls, expected):
        raise MeshFormatError(
            f"{where}expected {withArticle(expected.__name__)}, got {withArticle(name)}"
        )
    return _decodeBody(cls, body, name if path is None else f"{path}.{name}")


def encode(obj: Structure) -> dict:
    """
    Return the tagged JSON value of a structure, C{{"TypeName": {...}}}.
    """
    name = type(obj).__name__
    if _REGISTRY.get(name) is not type(obj):
        raise TypeError(f"{obj!r} is not a registered Mesh structure")
    return {name: _encodeBody(obj)}


def decode(data: Any, expected: type | None = None) -> Any:
    """
    Decode a tagged JSON value.

    @param expected: if given, the decoded type must be this class or a
        subclass of it.
    @raise MeshFormatError: naming the path of the first problem found.
    """
    return _decodeTagged(data, expected, None)


def toJSON(obj: Structure) -> bytes:
    """
    Return the tagged JSON text of a structure as UTF-8 bytes.
    """
    return json.dumps(encode(obj), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _refuseDuplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise MeshFormatError(f"duplicate JSON member {key!r}")
        result[key] = value
    return result


def _refuseConstant(name: str) -> Any:
    raise MeshFormatError(f"{name} is not valid JSON")


def _parseInteger(text: str) -> int:
    # No draft Integer exceeds 64 bits (20 characters with the sign); refusing
    # longer digit strings here also keeps the parser from spending quadratic
    # time converting huge ones.
    if len(text) > 20:
        raise MeshFormatError("JSON integer is too large")
    return int(text)


def parseJSON(data: bytes | str) -> Any:
    """
    Parse JSON text strictly: UTF-8 only, no duplicate member names (which
    two parsers could resolve differently), no C{NaN} or C{Infinity}, no
    integer longer than 20 characters.

    @raise MeshFormatError: if the text is not such JSON.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MeshFormatError("JSON text is not valid UTF-8") from None
    if not isinstance(data, str):
        raise MeshFormatError(f"expected JSON text, got {_describe(data)}")
    try:
        return json.loads(
            data,
            # The reference implementation writes its base64url line breaks
            # as raw newlines inside JSON strings; read them as an escaped
            # newline would be (the same string, so nothing new gets in).
            strict=False,
            object_pairs_hook=_refuseDuplicates,
            parse_constant=_refuseConstant,
            parse_int=_parseInteger,
        )
    except json.JSONDecodeError as error:
        raise MeshFormatError(f"malformed JSON: {error}") from None
    except RecursionError:
        raise MeshFormatError("JSON is nested too deeply") from None


def fromJSON(data: bytes | str, expected: type | None = None) -> Any:
    """
    Parse and decode tagged JSON text (see L{parseJSON} and L{decode}).
    """
    return decode(parseJSON(data), expected)
