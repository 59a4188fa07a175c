"""
Tests for L{pzh.enrolment}: pairing codes, token checks and rate limits.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.errors import ZoneError
from pz.testing import HOST, ZONE, MemoryHub
from pz.tokens import ZONE_GUESSES, RateLimiter, tokenHash
from pzh.enrolment import validDeviceName



class ValidDeviceNameTests(SynchronousTestCase):
    """
    L{validDeviceName} decides what the last part of a device id may be.
    """

    def test_valid(self):
        """
        Letters, digits, '.', '_' and '-', starting with a letter or digit,
        up to 63 characters.
        """
        for name in ("phone", "a", "0", "my-phone_2.local", "x" * 63):
            self.assertTrue(validDeviceName(name), name)

    def test_invalid(self):
        """
        Empty, too long, leading punctuation, separators, spaces and
        non-strings are refused.
        """
        for name in ("", "x" * 64, "-a", ".a", "_a", "a/b", "a b", "a@b", "a\n", "é",
                     None, 5, b"phone"):
            self.assertFalse(validDeviceName(name), repr(name))


class TokenHashTests(SynchronousTestCase):
    """
    L{tokenHash} is what the store keeps of a token.
    """

    def test_sha256(self):
        """
        It is the hex SHA-256 of the token's UTF-8.
        """
        self.assertEqual(
            tokenHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        )

    def test_anyString(self):
        """
        Any string hashes, even one that is not valid Unicode.
        """
        self.assertEqual(len(tokenHash("\ud800")), 64)
        self.assertNotEqual(tokenHash("\ud800"), tokenHash("\ud801"))


class RateLimiterTests(SynchronousTestCase):
    """
    L{RateLimiter} counts failures per source in a sliding window.
    """

    def setUp(self):
        self.clock = Clock()
        self.limiter = RateLimiter(self.clock, limit=3, window=60.0, maxSources=4)

    def test_blockedAfterLimit(self):
        """
        A source is blocked once it has C{limit} failures, others are not.
        """
        for _ in range(2):
            self.limiter.failed("127.0.0.1")
        self.assertFalse(self.limiter.blocked("127.0.0.1"))
        self.limiter.failed("127.0.0.1")
        self.assertTrue(self.limiter.blocked("127.0.0.1"))
        self.assertFalse(self.limiter.blocked("127.0.0.2"))

    def test_window(self):
        """
        A source is unblocked when its oldest failure leaves the window.
        """
        self.limiter.failed("127.0.0.1")
        self.clock.advance(30)
        self.limiter.failed("127.0.0.1")
        self.limiter.failed("127.0.0.1")
        self.assertTrue(self.limiter.blocked("127.0.0.1"))
        self.clock.advance(29)
        self.assertTrue(self.limiter.blocked("127.0.0.1"))
        self.clock.advance(1)
        self.assertFalse(self.limiter.blocked("127.0.0.1"))
        self.clock.advance(30)
        self.assertFalse(self.limiter.blocked("127.0.0.1"))
        self.assertEqual(self.limiter._failures, {})

    def test_boundedMemory(self):
        """
        At most C{maxSources} sources are tracked; the oldest is forgotten.
        """
        for i in range(10):
            for _ in range(3):
                self.limiter.failed(f"127.0.0.{i}")
        self.assertEqual(len(self.limiter._failures), 4)
        self.assertTrue(self.limiter.blocked("127.0.0.9"))
        self.assertFalse(self.limiter.blocked("127.0.0.0"))

    def test_defaults(self):
        """
        By default five failures in a minute block a source.
        """
        limiter = RateLimiter(self.clock)
        for _ in range(4):
            limiter.failed("127.0.0.1")
        self.assertFalse(limiter.blocked("127.0.0.1"))
        limiter.failed("127.0.0.1")
        self.assertTrue(limiter.blocked("127.0.0.1"))
        self.clock.advance(60)
        self.assertFalse(limiter.blocked("127.0.0.1"))


class EnrolmentTests(SynchronousTestCase):
    """
    L{pzh.enrolment.Enrolment} turns a valid code and CSR into a
    certificate, and nothing else into anything.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.enrolment = self.fixture.hub.enrolment
        self.store = self.fixture.store
        self.clock = self.fixture.clock

    def csr(self, key=None) -> str:
        return pki.csrPEM(pki.makeCSR(key or pki.newKey(), "anything")).decode("ascii")

    def assertRefused(self, code: str, token, csr=None, source: str = HOST) -> None:
        """
        Enrolling fails with C{code} and leaves the store unchanged.
        """
        before = self.fixture.storeState()
        e = self.assertRaises(ZoneError, self.enrolment.enrol, token,
                              self.csr() if csr is None else csr, source)
        self.assertEqual(e.code, code)
        self.assertEqual(self.fixture.storeState(), before)

    def test_newCode(self):
        """
        A pairing code names the hub, the zone CA fingerprint and a fresh
        token, of which the store keeps only the hash, for the named device,
        expiring after the code lifetime.
        """
        code = self.enrolment.newCode("phone")
        self.assertEqual((code.host, code.port), (HOST, 8000))
        self.assertEqual(code.caFingerprint, self.fixture.zone.caFingerprint)
        self.assertGreaterEqual(len(code.token), 32)
        record = self.store.getToken(tokenHash(code.token))
        self.assertEqual(record.deviceName, "phone")
        self.assertEqual(record.expires, self.clock.seconds() + 600.0)
        self.assertIsNone(record.used)
        self.assertNotIn(code.token, repr(self.fixture.storeState()))
        self.assertNotEqual(self.enrolment.newCode("phone").token, code.token)

    def test_newCodeBadName(self):
        """
        A code for an invalid device name is C{BAD_REQUEST}.
        """
        e = self.assertRaises(ZoneError, self.enrolment.newCode, "a/b")
        self.assertEqual(e.code, "BAD_REQUEST")

    def test_newCodeNameTaken(self):
        """
        A code for the name of an enrolled device is C{NAME_TAKEN}; once that
        device is revoked, the name is free again.
        """
        key, cert = self.fixture.enrolDevice("phone")
        e = self.assertRaises(ZoneError, self.enrolment.newCode, "phone")
        self.assertEqual(e.code, "NAME_TAKEN")
        self.store.addRevocation(f"{ZONE}/phone", cert.serial_number, self.clock.seconds())
        self.enrolment.newCode("phone")

    def test_deviceId(self):
        """
        A device's id is the zone id, a slash and its name.
        """
        self.assertEqual(self.enrolment.deviceId("phone"), f"{ZONE}/phone")

    def test_enrol(self):
        """
        A valid token and CSR give a certificate for the token's device name
        and the CSR's key; the device is recorded and the token used.
        """
        code = self.enrolment.newCode("phone")
        key = pki.newKey()
        device, cert = self.enrolment.enrol(code.token, self.csr(key), "127.0.0.7")
        self.assertEqual(device.id, f"{ZONE}/phone")
        self.assertEqual(device.name, "phone")
        self.assertEqual(device.serial, cert.serial_number)
        self.assertEqual(device.address, "127.0.0.7")
        self.assertEqual(device.enrolled, self.clock.seconds())
        self.assertEqual(device.notAfter, cert.not_valid_after_utc.timestamp())
        self.assertIsNone(device.revoked)
        self.assertEqual(self.store.getDevice(device.id), device)
        self.assertEqual(cert.public_key(), key.public_key())
        self.assertEqual(self.fixture.hub.authority.verifyDevice(cert), f"{ZONE}/phone")
        self.assertEqual(self.store.getToken(tokenHash(code.token)).used, self.clock.seconds())

    def test_unknownToken(self):
        """
        An unknown token is C{TOKEN_INVALID}.
        """
        self.enrolment.newCode("phone")
        self.assertRefused("TOKEN_INVALID", "not-the-token-at-all")

    def test_nonStringToken(self):
        """
        A token that is not a string is C{TOKEN_INVALID}.
        """
        for token in (None, 5, ["x"], {"a": 1}):
            self.assertRefused("TOKEN_INVALID", token)

    def test_usedToken(self):
        """
        A token is good for one device only.
        """
        code = self.enrolment.newCode("phone")
        self.enrolment.enrol(code.token, self.csr(), HOST)
        self.assertRefused("TOKEN_USED", code.token)

    def test_expiredToken(self):
        """
        A token is refused from the moment it expires.
        """
        code = self.enrolment.newCode("phone")
        self.clock.advance(599.9)
        self.enrolment.newCode("other")
        self.clock.advance(0.1)
        self.assertRefused("TOKEN_EXPIRED", code.token)

    def test_badCSR(self):
        """
        A request that is not a PEM CSR, or whose signature does not verify,
        is C{CERT_INVALID} and does not use the token.
        """
        code = self.enrolment.newCode("phone")
        csr = self.csr()
        broken = csr.replace(csr.splitlines()[3], "A" * 64)
        for bad in ("", "junk", 5, ["x"], "é", broken):
            self.assertRefused("CERT_INVALID", code.token, bad)
        self.enrolment.enrol(code.token, csr, HOST)

    def test_nameTakenMeanwhile(self):
        """
        If another device took the token's name since the code was made,
        enrolling is C{NAME_TAKEN} and the token is not used.
        """
        code = self.enrolment.newCode("phone")
        self.fixture.enrolDevice("phone")
        self.assertRefused("NAME_TAKEN", code.token)

    def test_rateLimited(self):
        """
        After five failed attempts from one address, further wrong codes
        from that address are C{RATE_LIMITED}; other addresses are not.
        """
        self.enrolment.newCode("phone")
        for _ in range(5):
            self.assertRefused("TOKEN_INVALID", "wrong", source="127.0.0.5")
        self.assertRefused("RATE_LIMITED", "wrong", source="127.0.0.5")
        self.assertRefused("TOKEN_INVALID", "wrong", source="127.0.0.6")

    def test_validTokenFromLimitedAddress(self):
        """
        A valid code gets through from an address that is over its limit:
        the person who shares an address with a guesser is not locked out.
        """
        code = self.enrolment.newCode("phone")
        for _ in range(5):
            self.assertRefused("TOKEN_INVALID", "wrong", source="127.0.0.5")
        self.assertRefused("RATE_LIMITED", "wrong", source="127.0.0.5")
        device, _ = self.enrolment.enrol(code.token, self.csr(), "127.0.0.5")
        self.assertEqual(device.id, f"{ZONE}/phone")

    def test_zoneBudget(self):
        """
        Wrong codes from addresses rotated so that none reaches its own
        limit still run out the zone's budget: after L{ZONE_GUESSES} in a
        minute every wrong code is C{RATE_LIMITED}, whatever its address,
        until the minute has passed.  A valid code still gets through.
        """
        code = self.enrolment.newCode("phone")
        for i in range(ZONE_GUESSES):
            self.assertRefused("TOKEN_INVALID", f"guess{i}", source=f"127.1.{i // 250}.{i % 250}")
        for i in range(50):
            self.assertRefused("RATE_LIMITED", f"more{i}", source=f"127.2.0.{i}")
        self.enrolment.enrol(code.token, self.csr(), "127.2.0.99")
        self.clock.advance(60)
        self.assertRefused("TOKEN_INVALID", "later", source="127.3.0.1")

    def test_blockedGuessesNotCounted(self):
        """
        Wrong codes refused as C{RATE_LIMITED} do not extend the block: an
        address over its limit is heard again a minute after its first
        counted failure, however often it kept guessing.
        """
        for _ in range(5):
            self.assertRefused("TOKEN_INVALID", "wrong", source="127.0.0.5")
        for _ in range(20):
            self.clock.advance(2.5)
            self.assertRefused("RATE_LIMITED", "wrong", source="127.0.0.5")
        self.clock.advance(10)
        self.assertRefused("TOKEN_INVALID", "wrong", source="127.0.0.5")

    def test_usedAndExpiredCountAsFailures(self):
        """
        Trying used or expired tokens counts towards the rate limit too.
        """
        used = self.enrolment.newCode("phone")
        self.enrolment.enrol(used.token, self.csr(), HOST)
        expired = self.enrolment.newCode("laptop")
        self.clock.advance(600)
        for token in (used.token, expired.token) * 2 + (used.token,):
            self.assertRaises(ZoneError, self.enrolment.enrol, token, self.csr(), "127.0.0.5")
        self.assertRefused("RATE_LIMITED", used.token, source="127.0.0.5")
        fresh = self.enrolment.newCode("tablet")
        self.enrolment.enrol(fresh.token, self.csr(), "127.0.0.5")

    def test_badCSRNotCounted(self):
        """
        A good token with a bad CSR is the device's mistake, not a guess: it
        does not count towards the rate limit.
        """
        code = self.enrolment.newCode("phone")
        for _ in range(6):
            self.assertRefused("CERT_INVALID", code.token, "junk")
        self.enrolment.enrol(code.token, self.csr(), HOST)
