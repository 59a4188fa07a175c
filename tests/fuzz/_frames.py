"""
Hypothesis strategies for what a peer can send the device port: valid
envelopes with fields mutated in value, type and size; random JSON and
JSON edge cases; random bytes; length prefixes that lie; all cut into
pieces at random points, as TCP may deliver them.

Each strategy draws a list of L{Unit}s: one frame's bytes (or a run of
raw bytes) and whether the sender meant it to be well formed.
"""

import copy
import json
import random
import struct

import attrs
from hypothesis import strategies as st

from tests.support import changeType

__all__ = ["Unit", "units", "chunked", "variants", "jsonValues", "mutatedObject", "text",
           "GROWN_BYTES"]


@attrs.frozen
class Unit:
    """
    One thing a peer sends: C{data} on the wire; C{frames} how many
    frames the generator meant it as (0 for raw bytes).
    """

    data: bytes
    frames: int = 1


#: Any text, weighted towards what breaks encoders: lone surrogates,
#: controls, non-BMP characters, the JSON escapes' own characters.
text = st.one_of(
    st.text(max_size=24),
    st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE00F), max_size=4),
    st.text(st.sampled_from("\x00\n\r\"\\/\u2028\u2029\ufeff\U0001F600"), max_size=6),
    st.sampled_from(["", "ping", "enrol", "renew", "error", "x" * 70, "y" * 600]),
)

_numbers = st.one_of(
    st.integers(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.sampled_from([0, -0.0, 1e308, -1e-308, 2**63, -(2**63) - 1]),
)

jsonValues = st.recursive(
    st.none() | st.booleans() | _numbers | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)

#: Bodies that are JSON only nearly, or JSON that strains a parser.
_edgeBodies = st.one_of(
    st.integers(1, 4000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 4000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 4000).map(lambda n: b"[" * n),
    st.integers(4000, 6000).map(lambda n: b'{"type":"prop","id":' + b"9" * n + b"}"),
    st.sampled_from([
        b"", b" ", b"null", b"[]", b"{}", b"NaN", b"-Infinity", b'{"a":NaN}', b"1e999999",
        b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", b"\xc0\xaf", b"\xed\xa0\x80",
        b'{"type":"prop","type":"JSONRPC"}', b'"\\ud800"', b'{"\\ud800":1}',
        b'{"type":"prop","from":"","to":"","id":"\\udfff","payload":{"status":"ping"}}',
        b'{"type":"prop","to":"","id":"1","payload":{"status":"ping"}}trailing',
    ]),
)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


#: The most a grown field may reach, in bytes of JSON: over the device
#: port's frame limit in the fuzz runs (64 KiB) and over the web port's
#: body limit (1 MiB), which is all a grown field has to reach to test
#: them.  Growth compounds (a certificate request grown 1,000 times
#: inside a list grown 1,000 times is 900 MB): without this bound 3 of
#: 1,000 random examples were over a megabyte, one 40 MB, and a long run
#: was killed at 23 GB by the copies of one such input.
GROWN_BYTES = 1024 * 1024 + 64 * 1024


def _grown(value, times: int, largest: int):
    """
    C{value} grown C{times} times, or fewer, so that its JSON stays at
    most C{largest} bytes (or twice its own size, whichever is larger):
    a string or list repeated, anything else made a list of copies.  The
    copies are deep: a later mutation of one must not grow them all.
    """
    size = len(_dumps(value or "z"))
    times = max(2, min(times, largest // max(1, size)))
    if isinstance(value, str) or value == []:
        return (value or "z") * times
    items = value if isinstance(value, list) else [value]
    return [copy.deepcopy(item) for _ in range(times) for item in items]


def mutatedObject(draw, base: dict, values=jsonValues, largest: int = GROWN_BYTES):
    """
    A copy of C{base} with none to three of its fields (at any depth)
    deleted, replaced, retyped, resized (up to C{largest} bytes of JSON,
    see L{GROWN_BYTES}) or added.  C{draw} is a Hypothesis draw function
    (plain calls are cheaper than building a strategy per base).
    """
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        paths = []

        def walk(node, prefix):
            if isinstance(node, dict):
                for key, value in node.items():
                    paths.append(prefix + (key,))
                    walk(value, prefix + (key,))
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    paths.append(prefix + (i,))
                    walk(value, prefix + (i,))

        walk(obj, ())
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["delete", "replace", "retype", "grow", "add"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(values)
        elif action == "retype":
            parent[key] = changeType(parent[key])
        elif action == "grow":
            parent[key] = _grown(parent[key], draw(st.sampled_from([2, 10, 100, 1000])),
                                 largest)
        elif isinstance(parent, dict):
            parent[draw(text)] = draw(values)
        else:
            parent.append(draw(values))
    return obj


def _dumps(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _framedWithLie(draw, body: bytes) -> Unit:
    how = draw(st.sampled_from(["true"] * 6 + ["short", "long", "huge", "zero"]))
    if how == "true":
        return Unit(_frame(body))
    length = {
        "short": lambda: draw(st.integers(0, max(0, len(body) - 1))),
        "long": lambda: len(body) + draw(st.integers(1, 64)),
        "huge": lambda: draw(st.integers(1024 * 1024, 2**32 - 1)),
        "zero": lambda: 0,
    }[how]()
    return Unit(struct.pack(">I", length) + body)


_otherBody = st.one_of(jsonValues.map(_dumps), _edgeBodies, st.binary(max_size=300))
_raw = st.binary(min_size=1, max_size=64)


@st.composite
def units(draw, bases, largest: int = GROWN_BYTES) -> list:
    """
    A list of up to 8 L{Unit}s, most of them built from one of C{bases}
    (valid envelopes) mutated, with fields grown up to C{largest} bytes,
    the rest random.
    """
    out = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.integers(0, 5))
        if kind == 5:
            out.append(Unit(draw(_raw), 0))
            continue
        if kind < 3:
            body = _dumps(mutatedObject(draw, bases[draw(st.integers(0, len(bases) - 1))],
                                           largest=largest))
        else:
            body = draw(_otherBody)
        out.append(_framedWithLie(draw, body))
    return out


@st.composite
def chunked(draw, data: bytes) -> list:
    """
    C{data} cut at up to six random points.
    """
    if not data:
        return []
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=6)))
    pieces, start = [], 0
    for cut in cuts + [len(data)]:
        if cut > start:
            pieces.append(data[start:cut])
            start = cut
    return pieces


def variants(seed: int, data: bytes, count: int) -> list:
    """
    C{count} byte-level mutants of C{data} (bytes flipped, inserted,
    deleted, duplicated, cut short), made by a generator seeded with
    C{seed}: cheap extra inputs around each structured one.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            where = rng.randint(0, len(buf))
            if op == 0 and buf:
                buf[min(where, len(buf) - 1)] = rng.randrange(256)
            elif op == 1:
                buf[where:where] = rng.randbytes(rng.randint(1, 16))
            elif op == 2:
                del buf[where:where + rng.randint(1, 64)]
            elif op == 3:
                buf[where:where] = buf[where:where + rng.randint(1, 256)]
            else:
                del buf[where:]
        out.append(bytes(buf))
    return out
