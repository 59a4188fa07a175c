"""
Hypothesis strategies that build any Mesh structure from its declaration,
so that round-trip properties cover every field of every structure without
a hand-written generator per type.
"""

from datetime import timezone

from hypothesis import strategies as st

from pz.mesh import schema

_TEXT = st.text(max_size=12)
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=6,
)


def valuesFor(fieldType: schema.FieldType, depth: int) -> st.SearchStrategy:
    """
    A strategy for Python values that C{fieldType} accepts.
    """
    if isinstance(fieldType, schema.List):
        return st.lists(valuesFor(fieldType.item, depth), max_size=2).map(tuple)
    if isinstance(fieldType, schema.Struct):
        return structures(fieldType.target, depth + 1)
    if isinstance(fieldType, schema.Tagged):
        candidates = [
            cls for cls in schema.registeredTypes().values() if issubclass(cls, fieldType.base)
        ]
        return st.sampled_from(candidates).flatmap(lambda cls: structures(cls, depth + 1))
    if fieldType is schema.Integer:
        return st.integers(-(2**63), 2**63 - 1)
    if fieldType is schema.Boolean:
        return st.booleans()
    if fieldType is schema.DateTime:
        return st.datetimes(timezones=st.just(timezone.utc))
    if fieldType is schema.Binary:
        return st.binary(max_size=40)
    if fieldType is schema.JSONObject:
        return st.dictionaries(_TEXT, _JSON, max_size=3)
    if isinstance(fieldType, schema._String):
        if fieldType.choices:
            return st.sampled_from(fieldType.choices)
        return _TEXT
    raise AssertionError(f"no strategy for {fieldType!r}")


def structures(cls: type, depth: int = 0) -> st.SearchStrategy:
    """
    A strategy for instances of the structure class C{cls}; optional fields
    are sometimes absent, and below a few levels of nesting always absent,
    so that recursive structures stay small.
    """
    fields = {}
    for name, spec in schema.fieldsOf(cls):
        values = valuesFor(spec.type, depth)
        if spec.required:
            fields[name] = values
        elif depth >= 3:
            fields[name] = st.none()
        else:
            fields[name] = st.none() | values
    return st.builds(cls, **fields)
