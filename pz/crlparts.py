# -*- test-case-name: tests.pz.test_crlparts -*-
"""
A CRL of any size over frames of bounded size.

A zone's CRL grows with its revocations, while every frame has a limit
(1 MiB by default, and a device may choose less).  A CRL that does not fit
L{PIECE} characters of PEM travels as several C{crlUpdate} messages, each
with the next slice of the PEM text, numbered C{part} of C{parts}; the
receiver joins them in order and only then parses the CRL and checks its
signature, exactly as for a CRL that came whole.  A CRL that fits travels
as one C{crlUpdate} with C{crl} and no numbering, or inside the message
that needs it (an enrolment answer, a revocation notice).
"""

from typing import Optional

from pz import pki
from pz.errors import ZoneError

__all__ = ["PIECE", "MAX_PARTS", "crlUpdates", "fitsInline", "CRLAssembler", "parseInline"]

#: Characters of PEM per C{crlUpdate} frame: far below any frame limit a
#: device may set, and small enough to pace among other traffic.
PIECE = 64 * 1024

#: The most pieces a receiver accepts for one CRL (64 MiB of PEM, some
#: 1.5 million serials), so a broken sender cannot make it buffer without
#: end.
MAX_PARTS = 1024


def fitsInline(pem: bytes, piece: int = PIECE) -> bool:
    """
    Whether a CRL of this PEM can ride whole inside another message.
    """
    return len(pem) <= piece


def crlUpdates(pem: bytes, piece: int = PIECE) -> list:
    """
    The C{crlUpdate} payloads that carry the CRL C{pem}: one with the whole
    CRL if it fits, else its slices numbered C{part} of C{parts}.
    """
    text = pem.decode("ascii")
    if fitsInline(pem, piece):
        return [{"status": "crlUpdate", "crl": text}]
    slices = [text[i:i + piece] for i in range(0, len(text), piece)]
    return [{"status": "crlUpdate", "crl": chunk, "part": number, "parts": len(slices)}
            for number, chunk in enumerate(slices, 1)]


class CRLAssembler:
    """
    Joins the C{crlUpdate} payloads of one link into whole CRLs.

    Pieces must come in order, all of one CRL, each at most C{piece}
    characters; anything else drops what was gathered and is refused.  A
    first piece or a whole CRL starts over: the hub only ever sends a newer
    one after an older one.
    """

    def __init__(self, piece: int = PIECE, maxParts: int = MAX_PARTS) -> None:
        self._piece = piece
        self._maxParts = maxParts
        self._chunks: list = []
        self._parts = 0

    @property
    def pending(self) -> bool:
        """
        Whether some pieces of a CRL have come and others are still due.
        """
        return bool(self._chunks)

    def _refuse(self, why: str) -> ZoneError:
        self._chunks, self._parts = [], 0
        return ZoneError("CRL_INVALID", why)

    def add(self, payload: dict):
        """
        Take one C{crlUpdate} payload.

        @return: the parsed CRL once it is whole (not yet checked against
            any CA: that is for the caller), or None while pieces are due.
        @raise ZoneError: C{CRL_INVALID} for a piece that does not belong
            or a whole that is not a CRL.
        """
        chunk = payload.get("crl")
        if not isinstance(chunk, str):
            raise self._refuse("crlUpdate carries no CRL text")
        if "part" not in payload and "parts" not in payload:
            # A whole CRL replaces one still in pieces: it is newer.
            self._chunks, self._parts = [], 0
            return _parse(chunk)
        part, parts = payload.get("part"), payload.get("parts")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (part, parts)):
            raise self._refuse("crlUpdate 'part' and 'parts' must be integers")
        if not 1 <= parts <= self._maxParts:
            raise self._refuse(f"a CRL in {parts} pieces is beyond the limit of {self._maxParts}")
        if len(chunk) > self._piece:
            raise self._refuse(f"a CRL piece longer than {self._piece} characters")
        if part == 1:
            self._chunks = []  # a newer CRL started over
        if part != len(self._chunks) + 1 or (self._chunks and parts != self._parts):
            raise self._refuse(f"CRL piece {part} of {parts} came out of order")
        self._chunks.append(chunk)
        self._parts = parts
        if part < parts:
            return None
        text, self._chunks, self._parts = "".join(self._chunks), [], 0
        return _parse(text)


def _parse(text: str):
    try:
        return pki.loadCRL(text.encode("ascii"))
    except (UnicodeEncodeError, pki.CertificateError, ValueError):
        raise ZoneError("CRL_INVALID", "crlUpdate carries no readable CRL")


def parseInline(pem) -> Optional[object]:
    """
    The CRL carried whole in another message's C{crl}, or None if what is
    there is not one.
    """
    try:
        return _parse(pem) if isinstance(pem, str) else None
    except ZoneError:
        return None
