"""
Tests for L{pz.sync.chunkers}.
"""

import hashlib
import json
import os
import random
import types
from xml.etree import ElementTree

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.sync import chunkers
from pz.sync.chunkers import (
    CHUNKERS, Manifest, chunkerFor, chunkHash, chunksOfFile, decodeHash, encodeHash, manifestOf,
    manifestOfFile,
)
from pz.sync.hashlist import applyOps, diffOps

_XACML = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"

_PEM = (b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2Vy\ndGlmaWNhdGU=\n"
        b"-----END CERTIFICATE-----\n")

_POLICY = f"""<?xml version="1.0" encoding="UTF-8"?>
<PolicySet xmlns="{_XACML}" PolicySetId="zone" PolicyCombiningAlgId="first-applicable">
  <Description>The zone's policy</Description>
  <Target/>
  <Policy PolicyId="default" RuleCombiningAlgId="first-applicable">
    <Target/>
    <Rule RuleId="permit" Effect="Permit">
      <Description>Everything is allowed</Description>
    </Rule>
    <Rule RuleId="deny-camera" Effect="Deny"/>
  </Policy>
  <ObligationExpressions/>
</PolicySet>
""".encode()


def _write(case, data: bytes) -> str:
    path = case.mktemp()
    with open(path, "wb") as f:
        f.write(data)
    return path


class HashTests(SynchronousTestCase):
    """
    Tests for L{encodeHash}, L{decodeHash} and L{chunkHash}.
    """

    def test_roundTrip(self):
        """
        A SHA-256 digest encodes to 43 base64url characters and back.
        """
        digest = chunkHash(b"hello")
        self.assertEqual(digest, hashlib.sha256(b"hello").digest())
        text = encodeHash(digest)
        self.assertEqual(len(text), 43)
        self.assertNotIn("=", text)
        self.assertEqual(decodeHash(text), digest)

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(st.binary(min_size=32, max_size=32))
    def test_roundTripAny(self, digest):
        """
        Every 32-byte value survives encoding, and only URL-safe characters
        are used.
        """
        text = encodeHash(digest)
        self.assertRegex(text, r"\A[A-Za-z0-9_-]{43}\Z")
        self.assertEqual(decodeHash(text), digest)

    def test_badHashes(self):
        """
        Anything that is not the encoding of 32 bytes is C{SYNC_BAD_MESSAGE}:
        other lengths, padding, standard base64, non-canonical last
        characters, non-strings.
        """
        good = encodeHash(chunkHash(b"x"))
        last = good[-1]
        # The last character carries 4 bits of the digest and 2 zero bits;
        # one with a non-zero low bit decodes to the same bytes but is not
        # the canonical encoding.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        other = alphabet[alphabet.index(last) ^ 1]
        for bad in ("", good[:-1], good + "A", good + "=", good[:-1] + "+", good[:-1] + "/",
                    good[:-1] + other, encodeHash(b"\x00" * 31), encodeHash(b"\x00" * 33),
                    None, 3, chunkHash(b"x"), [good]):
            e = self.assertRaises(ZoneError, decodeHash, bad)
            self.assertEqual(e.code, "SYNC_BAD_MESSAGE")

    def test_unknownKind(self):
        """
        L{chunkerFor} knows the four kinds and refuses any other with
        C{SYNC_BAD_MESSAGE}.
        """
        self.assertEqual(set(CHUNKERS), {"data", "pem", "json", "xacml"})
        for kind in CHUNKERS:
            self.assertEqual(chunkerFor(kind).kind, kind)
        for bad in ("text", "", None, ["data"]):
            self.assertEqual(self.assertRaises(ZoneError, chunkerFor, bad).code,
                             "SYNC_BAD_MESSAGE")


class DataChunkerTests(SynchronousTestCase):
    """
    Tests for the C{data} chunker, its manifests and its file streaming.
    """

    chunker = CHUNKERS["data"]

    def test_empty(self):
        """
        An empty item has no chunks and the hash of no bytes.
        """
        self.assertEqual(self.chunker.split(b""), [])
        self.assertEqual(manifestOf("data", b""),
                         Manifest(hashlib.sha256(b"").digest(), 0, (), ()))

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(st.binary(max_size=70000))
    def test_roundTrip(self, data):
        """
        The chunks put together are the data, each is at most 16 KiB, and
        all but the last at least 1 KiB.
        """
        chunks = self.chunker.split(data)
        self.assertEqual(self.chunker.join(chunks), data)
        self.assertTrue(all(len(c) <= 16384 for c in chunks))
        self.assertTrue(all(len(c) >= 1024 for c in chunks[:-1]))

    def test_averageSize(self):
        """
        On random data the average chunk is near the configured 4 KiB plus
        the 1 KiB minimum (the library's skip), so a 10 MB file has about
        2,000 chunk hashes.
        """
        data = random.Random(1).randbytes(4 * 1024 * 1024)
        sizes = manifestOf("data", data).sizes
        self.assertTrue(4000 <= len(data) / len(sizes) <= 6500, len(data) / len(sizes))

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(st.integers(0, 2 ** 32), st.integers(0, 120000), st.integers(3000, 40000),
           st.booleans())
    def test_fileMatchesMemory(self, seed, size, block, parallel):
        """
        Cutting a file in bounded blocks gives exactly the chunks of cutting
        it whole, whatever the block size, with the whole item's hash
        computed beside the chunks on a helper thread or not, and
        L{chunksOfFile} streams them with their indexes.
        """
        self.patch(chunkers, "READ_BLOCK", block)
        self.patch(chunkers, "PARALLEL_SIZE", 0 if parallel else 2 ** 40)
        data = random.Random(seed).randbytes(size)
        path = _write(self, data)
        self.assertEqual(manifestOfFile("data", path, size), manifestOf("data", data))
        self.assertEqual(list(chunksOfFile("data", path)),
                         list(enumerate(self.chunker.split(data))))

    def test_manifest(self):
        """
        The manifest gives the whole item's hash and size and each chunk's
        hash and length in order.
        """
        data = random.Random(2).randbytes(100000)
        manifest = manifestOf("data", data)
        chunks = self.chunker.split(data)
        self.assertEqual(manifest.hash, hashlib.sha256(data).digest())
        self.assertEqual(manifest.size, len(data))
        self.assertEqual(manifest.chunks, tuple(hashlib.sha256(c).digest() for c in chunks))
        self.assertEqual(manifest.sizes, tuple(len(c) for c in chunks))

    @settings(max_examples=8, deadline=None, derandomize=True)
    @given(st.integers(0, 2 ** 32), st.integers(2, 10), st.floats(0.05, 0.95),
           st.sampled_from(["insert100", "change1k", "delete1k", "append1k"]))
    def test_localEditChangesFewChunks(self, seed, megabytes, where, edit):
        """
        An edit of a large random item (100 bytes inserted, 1 KB changed or
        deleted anywhere, 1 KB appended) makes at most 4 new chunk hashes,
        and the hash-list difference is a handful of ops.
        """
        rng = random.Random(seed)
        data = rng.randbytes(megabytes * 1024 * 1024)
        at = int(len(data) * where)
        if edit == "insert100":
            new = data[:at] + rng.randbytes(100) + data[at:]
        elif edit == "change1k":
            new = data[:at] + rng.randbytes(1024) + data[at + 1024:]
        elif edit == "delete1k":
            new = data[:at] + data[at + 1024:]
        else:
            new = data + rng.randbytes(1024)
        old = manifestOf("data", data)
        changed = manifestOf("data", new)
        self.assertLessEqual(len(set(changed.chunks) - set(old.chunks)), 4)
        ops = diffOps(old.chunks, changed.chunks)
        self.assertLessEqual(len(ops), 6)
        self.assertLess(len(json.dumps(ops)), 400)
        self.assertEqual(applyOps(old.chunks, ops, len(changed.chunks)), list(changed.chunks))

    def test_tooLarge(self):
        """
        A file over the size limit is C{SYNC_TOO_LARGE}, for every kind.
        """
        path = _write(self, b"x" * 1001)
        for kind in CHUNKERS:
            e = self.assertRaises(ZoneError, manifestOfFile, kind, path, 1000)
            self.assertEqual(e.code, "SYNC_TOO_LARGE")
        self.assertEqual(manifestOfFile("data", path, 1001).size, 1001)

    def test_grewWhileRead(self):
        """
        A file that is over the limit by the time it is read (it grew after
        its size was looked at) is C{SYNC_TOO_LARGE} too.
        """
        fakeOS = types.SimpleNamespace(fstat=lambda fd: os.stat_result((0,) * 10))
        self.patch(chunkers, "os", fakeOS)
        path = _write(self, random.Random(3).randbytes(50000))
        for kind in ("data", "json"):
            e = self.assertRaises(ZoneError, manifestOfFile, kind, path, 40000)
            self.assertEqual(e.code, "SYNC_TOO_LARGE")


class PEMChunkerTests(SynchronousTestCase):
    """
    Tests for the C{pem} chunker.
    """

    chunker = CHUNKERS["pem"]

    def test_wholeFile(self):
        """
        A PEM file is one chunk, the whole file, byte for byte.
        """
        data = _PEM + _PEM.replace(b"CERTIFICATE", b"X509 CRL")
        self.assertEqual(self.chunker.split(data), [data])
        self.assertEqual(self.chunker.join(self.chunker.split(data)), data)
        self.assertEqual(manifestOf("pem", data).hash, hashlib.sha256(data).digest())

    def test_noBlock(self):
        """
        A file without a PEM block is C{SYNC_BAD_ITEM}, and so is a block
        whose END does not match its BEGIN.
        """
        for bad in (b"", b"hello", _PEM.replace(b"END CERTIFICATE", b"END X509 CRL"),
                    b"-----BEGIN CERTIFICATE-----\n"):
            e = self.assertRaises(ZoneError, self.chunker.split, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM")
            path = _write(self, bad)
            e = self.assertRaises(ZoneError, manifestOfFile, "pem", path, 10000)
            self.assertEqual(e.code, "SYNC_BAD_ITEM")


_jsonScalars = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                         st.floats(allow_nan=False, allow_infinity=False),
                         st.text(st.characters(exclude_categories=["Cs"]), max_size=10))
_jsonValues = st.recursive(
    _jsonScalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=4),
    max_leaves=12)
_jsonObjects = st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
                               _jsonValues, max_size=8)


class JSONChunkerTests(SynchronousTestCase):
    """
    Tests for the C{json} chunker.
    """

    chunker = CHUNKERS["json"]

    def test_oneChunkPerKey(self):
        """
        Each top-level key is one chunk, C{[key, value]} in compact JSON, in
        file order; the canonical form is indented by two spaces.
        """
        data = '{"ports": {"provider": 80}, "name": "Ann\u00e9e"}'.encode()
        chunks = self.chunker.split(data)
        self.assertEqual(chunks, ['["ports",{"provider":80}]'.encode(),
                                  '["name","Ann\u00e9e"]'.encode()])
        self.assertEqual(self.chunker.join(chunks),
                         '{\n  "ports": {\n    "provider": 80\n  },\n  "name": "Ann\u00e9e"\n}\n'
                         .encode())
        self.assertEqual(self.chunker.split(b"{}"), [])
        self.assertEqual(self.chunker.join([]), b"{}\n")

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(_jsonObjects, st.integers(0, 3), st.booleans())
    def test_roundTrip(self, value, indent, asciiOnly):
        """
        For any object however formatted, C{split(join(split(x))) ==
        split(x)}, the canonical bytes hold the same object, and the manifest
        does not depend on the formatting.
        """
        data = json.dumps(value, indent=indent or None, ensure_ascii=asciiOnly).encode()
        chunks = self.chunker.split(data)
        self.assertEqual(len(chunks), len(value))
        canonical = self.chunker.join(chunks)
        self.assertEqual(json.loads(canonical), value)
        self.assertEqual(self.chunker.split(canonical), chunks)
        self.assertEqual(manifestOf("json", data), manifestOf("json", canonical))
        self.assertEqual(manifestOf("json", data).hash, hashlib.sha256(canonical).digest())

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(_jsonObjects.filter(bool), st.data(), _jsonValues)
    def test_changedKeyIsOneChunk(self, value, data, replacement):
        """
        A changed value of one top-level key changes that key's chunk only.
        """
        key = data.draw(st.sampled_from(sorted(value)))
        changed = dict(value)
        changed[key] = replacement
        before = self.chunker.split(json.dumps(value).encode())
        after = self.chunker.split(json.dumps(changed, indent=4).encode())
        differing = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        self.assertEqual(len(before), len(after))
        self.assertEqual(differing, [] if changed[key] == value[key] else [list(value).index(key)])

    def test_bad(self):
        """
        Malformed JSON, a top level that is not an object, duplicate keys,
        NaN or infinite numbers, bytes that are not UTF-8, lone surrogates and
        absurd nesting are each C{SYNC_BAD_ITEM}.
        """
        for bad in (b"", b"{", b'{"a": 1,}', b"[1, 2]", b'"text"', b"3", b"null",
                    b'{"a": 1, "a": 2}', b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}',
                    b'{"a": "\xff"}', b'{"a": "\\ud800"}', b'{"a": ' + b"[" * 100000 + b"]" * 100000
                    + b"}"):
            e = self.assertRaises(ZoneError, self.chunker.split, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM", bad[:30])
            self.assertEqual(self.assertRaises(ZoneError, manifestOf, "json", bad).code,
                             "SYNC_BAD_ITEM")

    def test_badChunks(self):
        """
        Chunks that are not C{[key, value]} pairs, or repeat a key, do not
        join.
        """
        for bad in ([b"1"], [b'["a"]'], [b'[1, 2]'], [b'["a",1,2]'], [b'["a",1]', b'["a",2]'],
                    [b"nope"]):
            e = self.assertRaises(ZoneError, self.chunker.join, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM")


def _renderPolicy(policySet, indent: str, reverseAttributes: bool, prefix: str) -> bytes:
    """
    C{policySet} (a list of policies, each a list of rules, each a dict of
    attributes) as XACML text, formatted one of several ways.
    """
    p = prefix + ":" if prefix else ""
    declaration = f' xmlns:{prefix}="{_XACML}"' if prefix else f' xmlns="{_XACML}"'
    lines = []

    def line(depth, text):
        lines.append(indent * depth + text)

    def attributes(values):
        return "".join(f' {k}="{v}"' for k, v in sorted(values.items(), reverse=reverseAttributes))

    line(0, f'<{p}PolicySet{declaration}{attributes({"PolicySetId": "zone", "PolicyCombiningAlgId": "fa"})}>')
    line(1, f"<{p}Target/>")
    for number, rules in enumerate(policySet):
        line(1, f'<{p}Policy{attributes({"PolicyId": f"p{number}", "RuleCombiningAlgId": "fa"})}>')
        line(2, f"<{p}Target></{p}Target>")
        for rule in rules:
            description = rule.get("Description")
            values = {k: v for k, v in rule.items() if k != "Description"}
            if description is None:
                line(2, f"<{p}Rule{attributes(values)}/>")
            else:
                line(2, f"<{p}Rule{attributes(values)}>")
                line(3, f"<{p}Description>{description}</{p}Description>")
                line(2, f"</{p}Rule>")
        line(1, f"</{p}Policy>")
    line(0, f"</{p}PolicySet>")
    return ("\n" if indent else "").join(lines).encode()


_words = st.text("abcdefghij", min_size=1, max_size=6)
_rules = st.fixed_dictionaries(
    {"RuleId": _words, "Effect": st.sampled_from(["Permit", "Deny"])},
    optional={"Description": _words})
_policySets = st.lists(st.lists(_rules, max_size=4), min_size=1, max_size=3)
_formats = st.tuples(st.sampled_from(["", "  ", "\t", "    "]), st.booleans(),
                     st.sampled_from(["", "xacml", "p"]))


_xmlText = st.none() | st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"])
                                | st.sampled_from(["\n", " ", "\t", "\r", "&", "<", ">", '"']),
                                max_size=6)
_xmlNamespaces = st.sampled_from([_XACML, _XACML, "urn:other", None])
_xmlAttributes = st.dictionaries(
    st.sampled_from(["Id", "Effect", "{urn:q}c", "{http://www.w3.org/XML/1998/namespace}lang"]),
    _xmlText.filter(lambda t: t is not None), max_size=3)


def _element(name, namespace, attributes, text, tail, children=()):
    element = ElementTree.Element(name if namespace is None else f"{{{namespace}}}{name}",
                                  attributes)
    element.text, element.tail = text, tail
    element.extend(children)
    return element


_xmlNames = st.sampled_from(["PolicySet", "Policy", "Rule", "Target", "Description", "Apply"])
_xmlTrees = st.recursive(
    st.builds(_element, _xmlNames, _xmlNamespaces, _xmlAttributes, _xmlText, _xmlText),
    lambda inner: st.builds(_element, _xmlNames, _xmlNamespaces, _xmlAttributes, _xmlText,
                            _xmlText, st.lists(inner, max_size=4)),
    max_leaves=12)


class XACMLChunkerTests(SynchronousTestCase):
    """
    Tests for the C{xacml} chunker.
    """

    chunker = CHUNKERS["xacml"]

    def test_onePerPart(self):
        """
        The policy set, its policy and each rule are one chunk each, in
        document order, after a line giving their depth.
        """
        chunks = self.chunker.split(_POLICY)
        self.assertEqual([c.split(b"\n", 1)[0] for c in chunks], [b"0", b"1", b"2", b"2"])
        self.assertIn(b'RuleId="deny-camera"', chunks[3])
        self.assertNotIn(b"Rule", chunks[1].replace(b"RuleCombiningAlgId", b""))
        self.assertIn(b"<ObligationExpressions>", chunks[0])

    def test_joinRebuilds(self):
        """
        Joining the chunks gives the document in canonical form, with every
        element in its place, and the same chunks again.
        """
        canonical = self.chunker.join(self.chunker.split(_POLICY))
        self.assertEqual(self.chunker.split(canonical), self.chunker.split(_POLICY))
        text = canonical.decode()
        self.assertIn(f'<PolicySet xmlns="{_XACML}"', text)
        order = ["<Description>The zone", "<Target>", '<Policy ', '<Rule Effect="Permit"',
                 "Everything is allowed", '<Rule Effect="Deny"', "</Policy>",
                 "<ObligationExpressions>", "</PolicySet>"]
        self.assertEqual(sorted(order, key=text.index), order)
        self.assertEqual(manifestOf("xacml", _POLICY).hash, hashlib.sha256(canonical).digest())

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(_policySets, _formats, _formats)
    def test_formattingIsNoChange(self, policySet, first, second):
        """
        The same policy indented differently, with its attributes in another
        order or another namespace prefix has the same chunks and manifest,
        and its canonical form splits into them again.
        """
        a = _renderPolicy(policySet, *first)
        b = _renderPolicy(policySet, *second)
        chunks = self.chunker.split(a)
        self.assertEqual(self.chunker.split(b), chunks)
        self.assertEqual(len(chunks), 1 + len(policySet) + sum(map(len, policySet)))
        self.assertEqual(manifestOf("xacml", a), manifestOf("xacml", b))
        self.assertEqual(self.chunker.split(self.chunker.join(chunks)), chunks)

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(_policySets.filter(lambda ps: any(ps)), st.data(), _rules, _formats)
    def test_changedRuleIsOneChunk(self, policySet, data, replacement, format):
        """
        A changed Rule changes exactly its own chunk (whatever the
        formatting); everything else is the same.
        """
        where = data.draw(st.sampled_from(
            [(p, r) for p, rules in enumerate(policySet) for r in range(len(rules))]))
        changed = [list(rules) for rules in policySet]
        changed[where[0]][where[1]] = replacement
        before = self.chunker.split(_renderPolicy(policySet, "  ", False, ""))
        after = self.chunker.split(_renderPolicy(changed, *format))
        self.assertEqual(len(before), len(after))
        differing = [i for i, (x, y) in enumerate(zip(before, after)) if x != y]
        same = policySet[where[0]][where[1]] == replacement
        self.assertEqual(len(differing), 0 if same else 1)

    @settings(max_examples=100, deadline=None, derandomize=True)
    @given(st.sampled_from(["PolicySet", "Policy"]), _xmlNamespaces, _xmlAttributes,
           st.lists(_xmlTrees, max_size=4), _xmlText)
    def test_roundTrip(self, name, namespace, attributes, children, text):
        """
        For any tree of PolicySets, Policies, Rules and other elements, in
        one namespace or several, with mixed content, attributes and
        characters that need escaping, C{split(join(split(x))) ==
        split(x)} and joining is stable.
        """
        root = _element(name, namespace, attributes, text, None, children)
        chunks = self.chunker.split(ElementTree.tostring(root))
        canonical = self.chunker.join(chunks)
        self.assertEqual(self.chunker.split(canonical), chunks)
        self.assertEqual(self.chunker.join(self.chunker.split(canonical)), canonical)

    def test_mixedContent(self):
        """
        Text after a nested part (mixed content) stays where it was through
        split and join.
        """
        data = b"<PolicySet>before<Policy/>after the policy<Target/>end</PolicySet>"
        canonical = self.chunker.join(self.chunker.split(data))
        self.assertEqual(
            ElementTree.canonicalize(canonical.decode(), strip_text=True),
            "<PolicySet>before<Policy></Policy>after the policy<Target></Target>end</PolicySet>")

    def test_webinosNames(self):
        """
        The webinos policy format's lower-case C{policy-set}, C{policy} and
        C{rule} without a namespace are chunked the same way.
        """
        data = (b'<policy-set combine="first-matching-target" id="s">'
                b'<policy combine="deny-overrides" id="p"><rule effect="permit"/>'
                b'<rule effect="deny"/></policy></policy-set>')
        chunks = self.chunker.split(data)
        self.assertEqual(len(chunks), 4)
        self.assertEqual(self.chunker.split(self.chunker.join(chunks)), chunks)

    def test_malformed(self):
        """
        Text that is not well-formed XML, or whose root is not a PolicySet
        or Policy, is C{SYNC_BAD_ITEM}.
        """
        for bad in (b"", b"<PolicySet>", _POLICY[:-20], b"not xml", b"<html/>",
                    b"<PolicySet><a></b></PolicySet>", b"\xff\xfe<PolicySet/>",
                    b"<PolicySet><slot xmlns='urn:x-pz:sync'/></PolicySet>"):
            e = self.assertRaises(ZoneError, self.chunker.split, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM", bad)

    def test_entitiesAndDTDRefused(self):
        """
        A DTD, an entity expansion bomb or an external entity is refused
        with C{SYNC_BAD_ITEM}, never expanded or fetched.
        """
        secret = _write(self, b"secret")
        bomb = (b'<?xml version="1.0"?><!DOCTYPE PolicySet [<!ENTITY a "aaaaaaaaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><PolicySet>&c;</PolicySet>')
        external = (f'<?xml version="1.0"?><!DOCTYPE PolicySet [<!ENTITY x SYSTEM '
                    f'"file://{os.path.abspath(secret)}">]><PolicySet>&x;</PolicySet>').encode()
        plain = b'<!DOCTYPE PolicySet><PolicySet PolicySetId="a"/>'
        for bad in (bomb, external, plain):
            e = self.assertRaises(ZoneError, self.chunker.split, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM")
            self.assertNotIn("secret", e.message)

    def test_badChunks(self):
        """
        Chunks that do not make one document (no depth line, two roots, a
        child without a parent or a place, a slot left empty, a nested part
        inside a chunk) do not join.
        """
        root, policy, permit, deny = self.chunker.split(_POLICY)
        for bad in ([], [root], [policy], [root, permit], [root, root],
                    [root, policy, permit, deny, deny], [root.split(b"\n", 1)[1]],
                    [b"x\n" + root.split(b"\n", 1)[1]], [b"00\n" + root.split(b"\n", 1)[1]],
                    [b"0\n" + _POLICY.split(b"\n", 1)[1]], [root, policy, b"2\n<oops"]):
            e = self.assertRaises(ZoneError, self.chunker.join, bad)
            self.assertEqual(e.code, "SYNC_BAD_ITEM")

    def test_tooDeep(self):
        """
        Absurdly nested XML is refused, not a crash.
        """
        deep = b"<PolicySet>" + b"<a>" * 50000 + b"</a>" * 50000 + b"</PolicySet>"
        e = self.assertRaises(ZoneError, self.chunker.split, deep)
        self.assertEqual(e.code, "SYNC_BAD_ITEM")


class TypedFileTests(SynchronousTestCase):
    """
    L{manifestOfFile} and L{chunksOfFile} for the typed kinds read the file
    and chunk it as L{manifestOf} does.
    """

    def test_sameAsMemory(self):
        """
        Each typed kind's file manifest and chunks are those of its bytes.
        """
        for kind, data in (("pem", _PEM), ("json", b'{"a": 1, "b": 2}'), ("xacml", _POLICY)):
            path = _write(self, data)
            self.assertEqual(manifestOfFile(kind, path, 10000), manifestOf(kind, data))
            self.assertEqual(list(chunksOfFile(kind, path)),
                             list(enumerate(CHUNKERS[kind].split(data))))
