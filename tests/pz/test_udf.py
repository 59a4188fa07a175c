"""
Tests for L{pz.udf}.
"""

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.udf import KEYINFO_TYPE, fingerprint, key_fingerprint

_FORMAT = re.compile(r"^[A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")


class FingerprintTests(SynchronousTestCase):
    """
    Tests for L{fingerprint}.
    """

    def test_checkValue(self):
        """
        The fingerprint of C{b"UDF Data Fingerprint\\n"} as C{text/plain} is
        the check value the design gives.
        """
        self.assertEqual(
            fingerprint("text/plain", b"UDF Data Fingerprint\n"),
            "MBSZQ-VM3XI-7JCHN-VQE7T-FT2HA-LUOGM",
        )

    def test_format(self):
        """
        A fingerprint is six groups of five base32 characters joined by
        dashes, and starts with C{M}, the SHA-2-512 version byte's mark.
        """
        value = fingerprint("application/octet-stream", b"")
        self.assertRegex(value, _FORMAT)
        self.assertTrue(value.startswith("M"))

    def test_typeMatters(self):
        """
        The same bytes under a different content type give a different
        fingerprint.
        """
        data = b"UDF Data Fingerprint\n"
        self.assertNotEqual(
            fingerprint("text/plain", data), fingerprint("text/html", data)
        )

    def test_dataMatters(self):
        """
        A one-byte change to the data changes the fingerprint.
        """
        self.assertNotEqual(
            fingerprint("text/plain", b"UDF Data Fingerprint\n"),
            fingerprint("text/plain", b"UDF Data Fingerprint\r"),
        )

    def test_refusesText(self):
        """
        Data must be bytes: text, whose encoding would be a guess, is refused.
        """
        self.assertRaises(TypeError, fingerprint, "text/plain", "text")

    @given(st.text(max_size=40), st.binary(max_size=256))
    def test_formatProperty(self, contentType, data):
        """
        Whatever the type and data, a fingerprint has the documented format
        and is a pure function of its inputs.
        """
        value = fingerprint(contentType, data)
        self.assertRegex(value, _FORMAT)
        self.assertTrue(value.startswith("M"))
        self.assertEqual(value, fingerprint(contentType, data))


class KeyFingerprintTests(SynchronousTestCase):
    """
    Tests for L{key_fingerprint}.
    """

    def test_stable(self):
        """
        A key's fingerprint is the same each time and the same from the
        private key as from its public half.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        self.assertEqual(key_fingerprint(key), key_fingerprint(key.public_key()))
        self.assertEqual(
            key_fingerprint(key.public_key()), key_fingerprint(key.public_key())
        )
        self.assertRegex(key_fingerprint(key), _FORMAT)

    def test_differsPerKey(self):
        """
        Two keys have different fingerprints.
        """
        one = ec.generate_private_key(ec.SECP256R1())
        two = ec.generate_private_key(ec.SECP256R1())
        self.assertNotEqual(key_fingerprint(one), key_fingerprint(two))

    def test_keyInfoType(self):
        """
        A key's fingerprint is the fingerprint of its DER SubjectPublicKeyInfo
        under the C{application/x509-keyinfo} type.
        """
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        der = key.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        self.assertEqual(KEYINFO_TYPE, "application/x509-keyinfo")
        self.assertEqual(key_fingerprint(key), fingerprint(KEYINFO_TYPE, der))
