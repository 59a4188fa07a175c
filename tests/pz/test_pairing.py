"""
Tests for L{pz.pairing}.
"""

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.pairing import PairingCode

FINGERPRINT = "MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM"
TOKEN = "abcdefghijklmnop_-0123"


class ParseTests(SynchronousTestCase):
    """
    L{PairingCode.parse} reads what C{pzctl pair} prints and refuses the
    rest with C{BAD_REQUEST}.
    """

    def test_parse(self):
        """
        Host, port, token and fingerprint are read from their places.
        """
        code = PairingCode.parse(f"pz://hub.example:8000/{TOKEN}#{FINGERPRINT}")
        self.assertEqual(code, PairingCode("hub.example", 8000, TOKEN, FINGERPRINT))

    def test_whitespace(self):
        """
        Whitespace around a pasted code is ignored.
        """
        code = PairingCode.parse(f"  pz://127.0.0.1:8000/{TOKEN}#{FINGERPRINT}\n")
        self.assertEqual(code.host, "127.0.0.1")

    def test_ipv6(self):
        """
        An IPv6 host is written in brackets and read without them.
        """
        code = PairingCode("::1", 8000, TOKEN, FINGERPRINT)
        self.assertEqual(str(code), f"pz://[::1]:8000/{TOKEN}#{FINGERPRINT}")
        self.assertEqual(PairingCode.parse(str(code)), code)

    def test_str(self):
        """
        A code prints as C{pz://HOST:PORT/TOKEN#FINGERPRINT}.
        """
        self.assertEqual(str(PairingCode("localhost", 1, TOKEN, FINGERPRINT)),
                         f"pz://localhost:1/{TOKEN}#{FINGERPRINT}")

    def assertBad(self, text: str) -> None:
        """
        C{text} is refused with C{BAD_REQUEST}.
        """
        e = self.assertRaises(ZoneError, PairingCode.parse, text)
        self.assertEqual(e.code, "BAD_REQUEST")

    def test_refused(self):
        """
        Wrong scheme, missing host or port, bad port, short or strange
        tokens and malformed fingerprints are all refused.
        """
        for text in [
            "",
            "hello",
            f"https://h:1/{TOKEN}#{FINGERPRINT}",
            f"pz://h/{TOKEN}#{FINGERPRINT}",
            f"pz://:8000/{TOKEN}#{FINGERPRINT}",
            f"pz://h:99999/{TOKEN}#{FINGERPRINT}",
            f"pz://h:port/{TOKEN}#{FINGERPRINT}",
            f"pz://[::1:8000/{TOKEN}#{FINGERPRINT}",
            f"pz://h:1/short#{FINGERPRINT}",
            f"pz://h:1/{'a' * 129}#{FINGERPRINT}",
            f"pz://h:1/{TOKEN}!#{FINGERPRINT}",
            f"pz://h:1/{TOKEN}/more#{FINGERPRINT}",
            f"pz://h:1/{TOKEN}",
            f"pz://h:1/{TOKEN}#{FINGERPRINT.lower()}",
            f"pz://h:1/{TOKEN}#{FINGERPRINT[:-1]}",
            f"pz://h:1/{TOKEN}#{FINGERPRINT}-AAAAA",
            f"pz://h:1/{TOKEN}#{FINGERPRINT.replace('-', '')}",
        ]:
            self.assertBad(text)

    @settings(max_examples=100, deadline=None)
    @given(
        host=st.one_of(
            st.from_regex(r"\A[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,20}){0,3}\Z"),
            st.ip_addresses().map(str),
        ),
        port=st.integers(1, 65535),
        token=st.from_regex(r"\A[A-Za-z0-9_-]{16,128}\Z"),
        fingerprint=st.from_regex(r"\A[A-Z2-7]{5}(-[A-Z2-7]{5}){5}\Z"),
    )
    def test_roundTrip(self, host, port, token, fingerprint):
        """
        Every well-formed code prints to text that parses back to it.
        """
        code = PairingCode(host, port, token, fingerprint)
        self.assertEqual(PairingCode.parse(str(code)), code)

    @settings(max_examples=200, deadline=None)
    @given(st.text())
    def test_anyTextParsesOrRefuses(self, text):
        """
        Arbitrary text either parses or gets C{BAD_REQUEST}; nothing else
        escapes.
        """
        try:
            PairingCode.parse(text)
        except ZoneError as e:
            self.assertEqual(e.code, "BAD_REQUEST")
