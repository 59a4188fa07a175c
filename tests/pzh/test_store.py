"""
Tests for L{pzh.store}.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pzh.store import DeviceRecord, IHubStore, QueuedMessage, SQLiteHubStore, TokenRecord

BIG_SERIAL = 2**158 + 12345


def _device(name: str = "phone", serial: int = BIG_SERIAL, **kw) -> DeviceRecord:
    return DeviceRecord(id=f"anna@h/{name}", name=name, serial=serial, enrolled=100.0,
                        notAfter=200.0, **kw)


class SQLiteHubStoreTests(SynchronousTestCase):
    """
    L{SQLiteHubStore} keeps devices, tokens, revocations and settings.
    """

    def setUp(self):
        self.path = self.mktemp()
        self.store = SQLiteHubStore(self.path)
        self.addCleanup(self.store.close)

    def test_interface(self):
        """
        It provides L{IHubStore}.
        """
        self.assertTrue(verifyObject(IHubStore, self.store))

    def test_tokens(self):
        """
        A token is found by its hash, unknown hashes give None.
        """
        token = TokenRecord("h1", "phone", 500.0)
        self.store.addToken(token)
        self.assertEqual(self.store.getToken("h1"), token)
        self.assertIsNone(self.store.getToken("h2"))

    def test_duplicateToken(self):
        """
        Adding a token whose hash is already known fails.
        """
        self.store.addToken(TokenRecord("h1", "phone", 500.0))
        self.assertRaises(Exception, self.store.addToken, TokenRecord("h1", "other", 1.0))
        self.assertEqual(self.store.getToken("h1").deviceName, "phone")

    def test_useTokenOnce(self):
        """
        A token can be used once: the first call wins and records when,
        later ones get False and change nothing.
        """
        self.store.addToken(TokenRecord("h1", "phone", 500.0))
        self.assertTrue(self.store.useToken("h1", 10.0))
        self.assertFalse(self.store.useToken("h1", 20.0))
        self.assertEqual(self.store.getToken("h1").used, 10.0)
        self.assertFalse(self.store.useToken("unknown", 1.0))

    def test_outstandingTokens(self):
        """
        The outstanding tokens are those neither used nor expired, soonest
        expiry first.
        """
        for name, expires in (("b", 300.0), ("a", 200.0), ("gone", 50.0), ("used", 400.0)):
            self.store.addToken(TokenRecord(name, name, expires))
        self.store.useToken("used", 60.0)
        self.assertEqual(self.store.outstandingTokens(100.0),
                         [TokenRecord("a", "a", 200.0), TokenRecord("b", "b", 300.0)])
        self.assertEqual(self.store.outstandingTokens(250.0), [TokenRecord("b", "b", 300.0)])

    def test_cancelToken(self):
        """
        Cancelling forgets a token not used yet, so it can never be used;
        a used or unknown token is not cancelled and stays as it was.
        """
        self.store.addToken(TokenRecord("h1", "phone", 500.0))
        self.store.addToken(TokenRecord("h2", "tv", 500.0))
        self.store.useToken("h2", 10.0)
        self.assertTrue(self.store.cancelToken("h1"))
        self.assertIsNone(self.store.getToken("h1"))
        self.assertFalse(self.store.useToken("h1", 20.0))
        self.assertFalse(self.store.cancelToken("h1"))
        self.assertFalse(self.store.cancelToken("h2"))
        self.assertEqual(self.store.getToken("h2").used, 10.0)

    def test_useTokenAcrossConnections(self):
        """
        Two store objects on one file (the hub and C{pzctl}) cannot both use
        a token.
        """
        other = SQLiteHubStore(self.path)
        self.addCleanup(other.close)
        self.store.addToken(TokenRecord("h1", "phone", 500.0))
        self.assertEqual([self.store.useToken("h1", 1.0), other.useToken("h1", 2.0)],
                         [True, False])

    def test_devices(self):
        """
        Devices round-trip, serials beyond 64 bits included, and are listed
        by id.
        """
        laptop, phone = _device("laptop", 3), _device("phone", address="127.0.0.1:1")
        self.store.putDevice(phone)
        self.store.putDevice(laptop)
        self.assertEqual(self.store.getDevice("anna@h/phone"), phone)
        self.assertEqual(self.store.listDevices(), [laptop, phone])
        self.assertIsNone(self.store.getDevice("anna@h/none"))

    def test_putReplaces(self):
        """
        Putting a device again replaces its record.
        """
        self.store.putDevice(_device(serial=1))
        self.store.putDevice(_device(serial=2))
        self.assertEqual([d.serial for d in self.store.listDevices()], [2])

    def test_deviceBySerial(self):
        """
        A device is found by its current serial only.
        """
        self.store.putDevice(_device(serial=BIG_SERIAL))
        self.assertEqual(self.store.deviceBySerial(BIG_SERIAL).name, "phone")
        self.assertIsNone(self.store.deviceBySerial(BIG_SERIAL + 1))

    def test_touch(self):
        """
        Touching records when a device was seen, and where if given; without
        an address the last one is kept.
        """
        self.store.putDevice(_device())
        self.store.touchDevice("anna@h/phone", 150.0, "127.0.0.1:5")
        self.store.touchDevice("anna@h/phone", 160.0, None)
        device = self.store.getDevice("anna@h/phone")
        self.assertEqual((device.lastSeen, device.address), (160.0, "127.0.0.1:5"))

    def test_touchNotSynced(self):
        """
        A last-seen time is committed without waiting for the disk
        (C{synchronous=NORMAL}), and every other write still waits for it
        (C{synchronous=FULL}, restored after the touch).
        """
        self.store.putDevice(_device())
        seen = []

        def trace(statement):
            if statement.startswith("UPDATE devices SET last_seen"):
                seen.append(self.store._db.execute("PRAGMA synchronous").fetchone()[0])

        self.store._db.set_trace_callback(trace)
        self.addCleanup(self.store._db.set_trace_callback, None)
        self.store.touchDevice("anna@h/phone", 150.0, "127.0.0.1:5")
        self.assertEqual(seen, [1])  # NORMAL
        self.assertEqual(self.store._db.execute("PRAGMA synchronous").fetchone()[0], 2)  # FULL

    def test_touchUnknown(self):
        """
        Touching an unknown device does nothing.
        """
        self.store.touchDevice("anna@h/ghost", 1.0, "127.0.0.1:1")
        self.assertEqual(self.store.listDevices(), [])

    def test_revocation(self):
        """
        Revoking a device's current serial marks it revoked; revocations are
        listed oldest first, and revoking a serial twice lists it once, with
        the first date.
        """
        self.store.putDevice(_device(serial=BIG_SERIAL))
        self.store.addRevocation("anna@h/phone", BIG_SERIAL, 300.0)
        self.assertEqual(self.store.getDevice("anna@h/phone").revoked, 300.0)
        self.store.addRevocation("anna@h/old", 5, 250.0)
        self.store.addRevocation("anna@h/phone", BIG_SERIAL, 400.0)
        self.assertEqual(self.store.revocations(), [(5, 250.0), (BIG_SERIAL, 300.0)])

    def test_revokeOldSerial(self):
        """
        Revoking a serial the device no longer uses leaves the device
        unrevoked.
        """
        self.store.putDevice(_device(serial=2))
        self.store.addRevocation("anna@h/phone", 1, 300.0)
        self.assertIsNone(self.store.getDevice("anna@h/phone").revoked)
        self.assertEqual(self.store.revocations(), [(1, 300.0)])

    def test_revokeDevice(self):
        """
        Revoking a device revokes its current certificate and every other
        one of it still valid, marks it revoked, and returns the serials
        newly revoked; certificates already expired are left out.
        """
        self.store.putDevice(_device(serial=BIG_SERIAL))
        self.store.addCertificate("anna@h/phone", BIG_SERIAL, 1000.0)
        self.store.addCertificate("anna@h/phone", 11, 600.0)
        self.store.addCertificate("anna@h/phone", 10, 400.0)
        self.store.addCertificate("anna@h/laptop", 12, 1000.0)
        self.assertEqual(sorted(self.store.revokeDevice("anna@h/phone", 500.0)),
                         [11, BIG_SERIAL])
        self.assertEqual(self.store.getDevice("anna@h/phone").revoked, 500.0)
        self.assertEqual(sorted(self.store.revocations()), [(11, 500.0), (BIG_SERIAL, 500.0)])

    def test_revokeDeviceTwice(self):
        """
        Revoking a device again revokes nothing new and keeps the first
        date.
        """
        self.store.putDevice(_device(serial=5))
        self.assertEqual(self.store.revokeDevice("anna@h/phone", 500.0), [5])
        self.assertEqual(self.store.revokeDevice("anna@h/phone", 600.0), [])
        self.assertEqual(self.store.getDevice("anna@h/phone").revoked, 500.0)
        self.assertEqual(self.store.revocations(), [(5, 500.0)])

    def test_liveCertificates(self):
        """
        A device's certificates not expired at a time, revoked or not,
        oldest expiry first; other devices' are left out.
        """
        self.store.addCertificate("anna@h/phone", BIG_SERIAL, 1000.0)
        self.store.addCertificate("anna@h/phone", 11, 600.0)
        self.store.addCertificate("anna@h/phone", 10, 400.0)
        self.store.addCertificate("anna@h/laptop", 12, 1000.0)
        self.store.addRevocation("anna@h/phone", 11, 300.0)
        self.assertEqual(self.store.liveCertificates("anna@h/phone", 500.0),
                         [(11, 600.0), (BIG_SERIAL, 1000.0)])
        self.assertEqual(self.store.liveCertificates("anna@h/phone", 1000.0), [])

    def test_activeRevocations(self):
        """
        Revocations whose certificate has expired are left out; one with
        no recorded certificate stays.  L{revocations} still lists all,
        and L{serialRevoked} still knows them.
        """
        self.store.addCertificate("anna@h/phone", BIG_SERIAL, 1000.0)
        self.store.addCertificate("anna@h/phone", 11, 600.0)
        for serial in (BIG_SERIAL, 11, 7):
            self.store.addRevocation("anna@h/phone", serial, 300.0)
        self.assertEqual(sorted(self.store.activeRevocations(700.0)),
                         [(7, 300.0), (BIG_SERIAL, 300.0)])
        self.assertEqual(len(self.store.revocations()), 3)
        self.assertTrue(self.store.serialRevoked(11))
        self.assertFalse(self.store.serialRevoked(12))

    def test_revokeUnknownDevice(self):
        """
        Revoking a device never enrolled revokes nothing.
        """
        self.store.addCertificate("anna@h/ghost", 3, 1000.0)
        self.assertEqual(self.store.revokeDevice("anna@h/ghost", 1.0), [])
        self.assertEqual(self.store.revocations(), [])

    def test_settings(self):
        """
        Settings are stored, replaced and read back; unknown ones are None.
        """
        self.assertIsNone(self.store.getSetting("crl_number"))
        self.store.putSetting("crl_number", "1")
        self.store.putSetting("crl_number", "2")
        self.assertEqual(self.store.getSetting("crl_number"), "2")

    def test_persistent(self):
        """
        Everything survives closing and reopening the file.
        """
        self.store.putDevice(_device())
        self.store.addToken(TokenRecord("h1", "phone", 500.0))
        self.store.addRevocation("anna@h/phone", BIG_SERIAL, 1.0)
        self.store.putSetting("s", "v")
        self.store.close()
        store = SQLiteHubStore(self.path)
        self.addCleanup(store.close)
        self.assertEqual(store.getDevice("anna@h/phone").revoked, 1.0)
        self.assertEqual(store.getToken("h1").deviceName, "phone")
        self.assertEqual(store.revocations(), [(BIG_SERIAL, 1.0)])
        self.assertEqual(store.getSetting("s"), "v")

    def test_reopensAfterClose(self):
        """
        A closed store reopens its file on next use.
        """
        self.store.putSetting("s", "v")
        self.store.close()
        self.assertEqual(self.store.getSetting("s"), "v")

    def test_memory(self):
        """
        An in-memory store works for tests.
        """
        store = SQLiteHubStore(":memory:")
        store.putSetting("a", "b")
        self.assertEqual(store.getSetting("a"), "b")
        store.close()


class QueuedMessageTests(SynchronousTestCase):
    """
    L{SQLiteHubStore} keeps messages for offline devices: per device, in
    order, bounded in count and bytes, until delivered or expired.
    """

    phone = "anna@h/phone"
    laptop = "anna@h/laptop"

    def setUp(self):
        self.path = self.mktemp()
        self.store = SQLiteHubStore(self.path)
        self.addCleanup(self.store.close)

    def put(self, frame: bytes, to: str = None, when: float = 10.0,
            maxMessages: int = 10, maxBytes: int = 1000):
        return self.store.queueMessage(to or self.phone, self.laptop, "m-" + frame.decode(),
                                       frame, when, maxMessages, maxBytes)

    def test_roundTrip(self):
        """
        A queued message comes back with everything it was stored with.
        """
        seq = self.put(b"hello", when=12.5)
        [message] = self.store.queuedFor(self.phone)
        self.assertEqual(message, QueuedMessage(seq, "m-hello", self.phone, self.laptop, 12.5,
                                                5, b"hello"))
        self.assertEqual(self.store.queuedFor(self.laptop), [])

    def test_order(self):
        """
        Messages come back in the order they were queued, per device.
        """
        for frame in (b"a", b"b", b"c"):
            self.put(frame)
            self.put(frame.upper(), to=self.laptop)
        self.assertEqual([m.frame for m in self.store.queuedFor(self.phone)], [b"a", b"b", b"c"])
        self.assertEqual([m.frame for m in self.store.queuedFor(self.laptop)],
                         [b"A", b"B", b"C"])

    def test_remove(self):
        """
        A removed message is not returned again; the others stay.
        """
        first = self.put(b"a")
        self.put(b"b")
        self.store.removeQueued(first)
        self.assertEqual([m.frame for m in self.store.queuedFor(self.phone)], [b"b"])

    def test_countBound(self):
        """
        Past C{maxMessages} for one device nothing is stored; other devices
        have their own bound.
        """
        self.assertIsNotNone(self.put(b"a", maxMessages=2))
        self.assertIsNotNone(self.put(b"b", maxMessages=2))
        self.assertIsNone(self.put(b"c", maxMessages=2))
        self.assertIsNotNone(self.put(b"d", to=self.laptop, maxMessages=2))
        self.assertEqual([m.frame for m in self.store.queuedFor(self.phone)], [b"a", b"b"])

    def test_byteBound(self):
        """
        A message that would put the device's queue past C{maxBytes} is
        refused; one that fits exactly is kept.
        """
        self.assertIsNotNone(self.put(b"x" * 6, maxBytes=10))
        self.assertIsNone(self.put(b"y" * 5, maxBytes=10))
        self.assertIsNotNone(self.put(b"z" * 4, maxBytes=10))
        self.assertEqual([m.size for m in self.store.queuedFor(self.phone)], [6, 4])

    def test_expiry(self):
        """
        L{SQLiteHubStore.expireQueued} drops what was queued before the
        time given, for one device or all, and says how many.
        """
        self.put(b"old", when=1.0)
        self.put(b"new", when=5.0)
        self.put(b"old2", to=self.laptop, when=1.0)
        self.assertEqual(self.store.expireQueued(3.0, self.phone), 1)
        self.assertEqual([m.frame for m in self.store.queuedFor(self.phone)], [b"new"])
        self.assertEqual(len(self.store.queuedFor(self.laptop)), 1)
        self.assertEqual(self.store.expireQueued(3.0), 1)
        self.assertEqual(self.store.queuedFor(self.laptop), [])

    def test_persistent(self):
        """
        Queued messages survive closing and reopening the file, and keep
        their order after it.
        """
        self.put(b"a")
        self.store.close()
        store = SQLiteHubStore(self.path)
        self.addCleanup(store.close)
        store.queueMessage(self.phone, self.laptop, "m-b", b"b", 11.0, 10, 1000)
        self.assertEqual([m.frame for m in store.queuedFor(self.phone)], [b"a", b"b"])
