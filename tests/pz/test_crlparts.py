"""
Tests for L{pz.crlparts}: a CRL of any size in frames of bounded size.
"""

from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.crlparts import CRLAssembler, crlUpdates, fitsInline, parseInline
from pz.errors import ZoneError

_NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
_CA = pki.createZoneCA("anna@127.0.0.1", _NOW)


def _crl(count: int, number: int = 1):
    """
    A CRL of the test CA listing C{count} serials, and its PEM.
    """
    crl = pki.buildCRL(_CA[0], _CA[1], [(10 ** 20 + i, _NOW) for i in range(count)], number, _NOW)
    return crl, pki.crlPEM(crl)


class CRLUpdatesTests(SynchronousTestCase):
    """
    L{crlUpdates} cuts a CRL into C{crlUpdate} payloads.
    """

    def test_small(self):
        """
        A CRL that fits is one payload with the whole PEM and no numbering.
        """
        _, pem = _crl(3)
        self.assertTrue(fitsInline(pem))
        self.assertEqual(crlUpdates(pem), [{"status": "crlUpdate", "crl": pem.decode("ascii")}])

    def test_pieces(self):
        """
        A larger CRL is cut into slices of at most C{piece} characters,
        numbered from 1, which joined give the PEM back.
        """
        _, pem = _crl(100)
        pieces = crlUpdates(pem, piece=1000)
        self.assertFalse(fitsInline(pem, 1000))
        self.assertEqual([p["part"] for p in pieces], list(range(1, len(pieces) + 1)))
        self.assertEqual({p["parts"] for p in pieces}, {len(pieces)})
        self.assertTrue(all(len(p["crl"]) <= 1000 for p in pieces))
        self.assertEqual("".join(p["crl"] for p in pieces).encode("ascii"), pem)


class CRLAssemblerTests(SynchronousTestCase):
    """
    L{CRLAssembler} joins pieces in order into a CRL, and refuses anything
    that does not fit.
    """

    def setUp(self):
        self.crl, self.pem = _crl(100)
        self.pieces = crlUpdates(self.pem, piece=1000)
        self.assembler = CRLAssembler(piece=1000, maxParts=50)

    def test_whole(self):
        """
        A whole CRL is parsed at once.
        """
        _, pem = _crl(1)
        crl = self.assembler.add(crlUpdates(pem)[0])
        self.assertEqual(pki.crlPEM(crl), pem)

    def test_joined(self):
        """
        Pieces give None until the last, which gives the joined CRL.
        """
        results = [self.assembler.add(p) for p in self.pieces]
        self.assertEqual(results[:-1], [None] * (len(self.pieces) - 1))
        self.assertFalse(self.assembler.pending)
        self.assertEqual(pki.crlPEM(results[-1]), self.pem)

    def assertRefused(self, payload) -> None:
        """
        C{payload} is C{CRL_INVALID}, and what was gathered is dropped.
        """
        e = self.assertRaises(ZoneError, self.assembler.add, payload)
        self.assertEqual(e.code, "CRL_INVALID")
        self.assertFalse(self.assembler.pending)

    def test_outOfOrder(self):
        """
        A piece out of order, or of another count, is refused.
        """
        self.assembler.add(self.pieces[0])
        self.assertRefused(self.pieces[2])
        self.assembler.add(self.pieces[0])
        self.assertRefused(dict(self.pieces[1], parts=99))

    def test_startOver(self):
        """
        A first piece or a whole CRL while pieces are pending starts over
        (the hub only sends a newer CRL after an older one).
        """
        self.assembler.add(self.pieces[0])
        self.assembler.add(self.pieces[1])
        results = [self.assembler.add(p) for p in self.pieces]
        self.assertEqual(pki.crlPEM(results[-1]), self.pem)
        self.assembler.add(self.pieces[0])
        _, pem = _crl(1, number=2)
        self.assertEqual(pki.crlPEM(self.assembler.add(crlUpdates(pem)[0])), pem)
        self.assertFalse(self.assembler.pending)

    def test_bad(self):
        """
        No text, numbering that is not integers, too many parts, a piece
        too long and a whole that is not a CRL are refused.
        """
        for payload in [
            {"status": "crlUpdate"},
            {"status": "crlUpdate", "crl": 5},
            {"status": "crlUpdate", "crl": "x", "part": "1", "parts": 2},
            {"status": "crlUpdate", "crl": "x", "part": True, "parts": 2},
            {"status": "crlUpdate", "crl": "x", "part": 1},
            {"status": "crlUpdate", "crl": "x", "part": 1, "parts": 51},
            {"status": "crlUpdate", "crl": "x", "part": 1, "parts": 0},
            {"status": "crlUpdate", "crl": "x" * 1001, "part": 1, "parts": 2},
            {"status": "crlUpdate", "crl": "not a CRL"},
            {"status": "crlUpdate", "crl": "é"},
        ]:
            self.assembler.add(self.pieces[0])
            self.assertRefused(payload)
        self.assertRefused({"status": "crlUpdate", "crl": "junk", "part": 1, "parts": 1})

    def test_parseInline(self):
        """
        L{parseInline} gives the CRL in a message's C{crl}, or None.
        """
        self.assertEqual(pki.crlPEM(parseInline(self.pem.decode("ascii"))), self.pem)
        for bad in (None, 5, "forged", "é"):
            self.assertIsNone(parseInline(bad))
