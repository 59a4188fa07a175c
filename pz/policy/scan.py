# -*- test-case-name: tests.pz.policy.test_parse -*-
"""
Reading a policy file's XML safely into a small tree that remembers where
each element is.

C{defusedxml}'s parser does the reading with DTDs, entities and external
references forbidden, so a billion-laughs document or an external DTD is
refused before anything expands.  The size is checked before parsing and
the depth and rule count while parsing, so a hostile file costs at most
one bounded pass.  Every element keeps its line (for the error naming it)
and its byte span (so L{pz.policy.edit} changes a file by splicing text
and leaves the rest of a hand-written file as it was).
"""

from typing import Optional

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from pz.policy.model import MAX_DEPTH, MAX_POLICY_BYTES, MAX_RULES, PolicyError

__all__ = ["Node", "scan", "endOfStartTag"]


class Node:
    """
    One element: its namespace and local name, attributes, the text
    directly inside it, its children, the line it starts on and the byte
    span C{[start, end)} of the whole element in the file.
    """

    __slots__ = ("namespace", "name", "attrs", "text", "children", "line", "start", "end")

    def __init__(self, namespace, name, attrs, line, start):
        self.namespace = namespace
        self.name = name
        self.attrs = attrs
        self.text = []
        self.children = []
        self.line = line
        self.start = start
        self.end = start


def _split(tag: str):
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def endOfStartTag(data: bytes, start: int) -> int:
    """
    The offset just past the C{>} closing the start tag at C{start},
    skipping quoted attribute values (which may hold C{>}).
    """
    quote = None
    for i in range(start + 1, len(data)):
        c = data[i]
        if quote is not None:
            if c == quote:
                quote = None
        elif c in (0x22, 0x27):
            quote = c
        elif c == 0x3E:
            return i + 1
    return len(data)


class _Builder:
    """
    The parser's target: builds L{Node}s, reading positions from the
    parser as it goes, and stops at the depth and rule limits.
    """

    def __init__(self, raw: bytes):
        self.raw = raw
        self.parser = None
        self.stack = []
        self.root = None
        self.rules = 0

    def start(self, tag, attrib):
        expat = self.parser
        line, offset = expat.CurrentLineNumber, expat.CurrentByteIndex
        if len(self.stack) >= MAX_DEPTH:
            raise PolicyError(line, f"elements are nested deeper than {MAX_DEPTH} levels")
        namespace, name = _split(tag)
        if name == "Rule":
            self.rules += 1
            if self.rules > MAX_RULES:
                raise PolicyError(line, f"more than {MAX_RULES} rules")
        attrs = {}
        for key, value in attrib.items():
            attrNamespace, attrName = _split(key)
            attrs[attrName if attrNamespace is None else key] = value
        node = Node(namespace, name, attrs, line, offset)
        if self.stack:
            self.stack[-1].children.append(node)
        else:
            self.root = node
        self.stack.append(node)

    def end(self, tag):
        node = self.stack.pop()
        offset = self.parser.CurrentByteIndex
        if self.raw.startswith(b"</", offset):
            node.end = self.raw.index(b">", offset) + 1
        else:
            node.end = endOfStartTag(self.raw, node.start)

    def data(self, text):
        if self.stack:
            self.stack[-1].text.append(text)

    def close(self):
        return self.root


def _lineOf(parser) -> Optional[int]:
    try:
        return parser.CurrentLineNumber
    except (AttributeError, ValueError):
        return None


def scan(data: bytes) -> Node:
    """
    Parse C{data} into L{Node}s.

    @raise PolicyError: the file is too large, not well-formed XML, has a
        DTD, entity or external reference, or is nested too deep or holds
        too many rules; the message names the line.
    """
    if not isinstance(data, bytes):
        raise TypeError("a policy is bytes")
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(None, f"the file is {len(data)} bytes, more than the "
                          f"{MAX_POLICY_BYTES} a policy may have")
    if not data.strip():
        raise PolicyError(None, "the file is empty")
    builder = _Builder(data)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    builder.parser = parser.parser
    expat = parser.parser
    try:
        parser.feed(data)
        root = parser.close()
    except PolicyError:
        raise
    except ParseError as e:
        line = e.position[0] if getattr(e, "position", None) else None
        message = str(e).split(": line", 1)[0]
        raise PolicyError(line, f"not well-formed XML ({message})") from None
    except DefusedXmlException as e:
        kind = type(e).__name__
        problem = {
            "DTDForbidden": "a document type declaration (DTD) is not allowed",
            "EntitiesForbidden": "entity declarations are not allowed",
            "ExternalReferenceForbidden": "external references are not allowed",
        }.get(kind, "forbidden XML construct")
        raise PolicyError(_lineOf(expat), f"{problem}; a policy is plain XML") from None
    except (ValueError, UnicodeError, LookupError) as e:
        # LookupError: an XML declaration naming an encoding Python lacks.
        raise PolicyError(_lineOf(expat), f"not readable XML ({e})") from None
    if root is None:
        raise PolicyError(None, "the file holds no element")
    return root
