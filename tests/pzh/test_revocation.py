"""
Tests for revocation at the hub: L{pzh.authority.ZoneAuthority}'s CRL (its
number only grows, across restarts too), L{pzh.store.SQLiteHubStore}'s
record of every certificate a device holds, and L{pzh.hub.Hub.revoke}
(CRL on disk first, then the device's link dropped, then the CRL pushed to
every other device), with devices connected over TLS in memory.
"""

import errno
import os
from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from pz import pki
from pz.crlparts import PIECE, CRLAssembler
from pz.errors import ZoneError
from pz.testing import RENEWAL_DUE, ZONE, MemoryHub
from pzh.authority import ZoneAuthority
from pzh.hub import HubSettings
from pzh.store import SQLiteHubStore



def crlOnDisk(fixture):
    """
    The CRL the hub's zone directory holds now.
    """
    return pki.readCRL(fixture.zone.path("crl.pem"))


class _RevocationTestCase(SynchronousTestCase):
    """
    A hub for each test; every link must close cleanly and leave nothing
    on the clock.
    """

    def setUp(self):
        self.fixture = MemoryHub(self, HubSettings())
        self.hub = self.fixture.hub
        self.authority = self.hub.authority
        self.caCert = self.fixture.zone.caCert
        self.addCleanup(self.fixture.close)

    def device(self, name: str):
        """
        Enrol a device and connect it; its key, certificate and link (the
        C{registered} frame and the first C{pzpUpdate} taken).
        """
        key, cert = self.fixture.enrolDevice(name)
        link = self.fixture.connectDevice(key, cert)
        self.assertEqual(link.client.statuses(), ["registered"])
        self.fixture.coalesce()
        link.client.take()
        return key, cert, link

    def pushedCRLs(self, link) -> list:
        """
        The CRLs the hub pushed to C{link} since the last look.
        """
        return [pki.loadCRL(f["payload"]["crl"].encode("ascii"))
                for f in link.client.take() if f["payload"].get("status") == "crlUpdate"]


class CRLNumberTests(_RevocationTestCase):
    """
    The CRL Number only grows.
    """

    def failCRLWrites(self):
        """
        Make writing C{crl.pem} fail as on a full disk; return the real
        L{pki.writePEM} to restore it with.
        """
        original = pki.writePEM

        def writePEM(path, data, *args, **kwargs):
            if os.path.basename(path) == "crl.pem":
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(path, data, *args, **kwargs)

        self.patch(pki, "writePEM", writePEM)
        return original

    def restart(self) -> ZoneAuthority:
        """
        A new authority on the same zone directory and a new connection to
        the same store file, as after the hub restarts.
        """
        store = SQLiteHubStore(self.fixture.storePath)
        self.addCleanup(store.close)
        return ZoneAuthority(self.fixture.zone, store, self.fixture.clock,
                             timedelta(days=90))

    def test_strictlyIncreasing(self):
        """
        Every C{publishCRL} and every C{revoke} that revokes something signs
        a CRL with a higher number than the one before, and each is the one
        on disk when the call returns.
        """
        self.fixture.enrolDevice("phone")
        self.fixture.enrolDevice("laptop")
        numbers = [pki.crlNumber(self.authority.crl)]
        steps = [
            self.authority.publishCRL,
            lambda: self.authority.revoke(self.fixture.deviceId("phone")),
            self.authority.publishCRL,
            lambda: self.authority.revoke(self.fixture.deviceId("laptop")),
            self.authority.publishCRL,
        ]
        for step in steps:
            self.fixture.clock.advance(1)
            step()
            numbers.append(pki.crlNumber(self.authority.crl))
            self.assertEqual(pki.crlNumber(crlOnDisk(self.fixture)), numbers[-1])
        self.assertEqual(numbers, sorted(set(numbers)))
        self.assertEqual(len(numbers), len(steps) + 1)

    def test_survivesRestart(self):
        """
        A hub restarted on the same store and zone directory serves the CRL
        it last published (same number, same revocations) and its next CRL
        is numbered higher still.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.authority.revoke(self.fixture.deviceId("phone"))
        self.authority.publishCRL()
        last = pki.crlNumber(self.authority.crl)
        restarted = self.restart()
        self.assertEqual(pki.crlNumber(restarted.crl), last)
        self.assertTrue(pki.crlListsSerial(restarted.crl, self.caCert, cert.serial_number))
        self.assertGreater(pki.crlNumber(restarted.publishCRL()), last)

    def test_restartWithoutCRLFile(self):
        """
        A restart that finds no C{crl.pem} publishes a new CRL numbered above
        the last one, listing every revocation the store holds.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.authority.revoke(self.fixture.deviceId("phone"))
        last = pki.crlNumber(self.authority.crl)
        os.unlink(self.fixture.zone.path("crl.pem"))
        restarted = self.restart()
        self.assertGreater(pki.crlNumber(restarted.crl), last)
        self.assertTrue(pki.crlListsSerial(restarted.crl, self.caCert, cert.serial_number))
        self.assertEqual(pki.crlNumber(crlOnDisk(self.fixture)), pki.crlNumber(restarted.crl))

    def test_restartWithOlderCRLFile(self):
        """
        An older C{crl.pem} put back on disk (a restored backup) does not
        bring the number down: the restarted hub signs one above the last.
        """
        oldPEM = self.authority.crlPEM
        self.authority.publishCRL()
        self.authority.publishCRL()
        last = pki.crlNumber(self.authority.crl)
        pki.writePEM(self.fixture.zone.path("crl.pem"), oldPEM)
        restarted = self.restart()
        self.assertGreater(pki.crlNumber(restarted.crl), last)

    def test_restartWithNewerCRLFile(self):
        """
        A C{crl.pem} numbered above what the store remembers (the store
        lost its last write) is not undercut: the next number is higher
        than the file's.
        """
        self.authority.publishCRL()
        onDisk = pki.crlNumber(self.authority.crl)
        self.fixture.store.putSetting("crl_number", "1")
        restarted = self.restart()
        self.assertGreater(pki.crlNumber(restarted.crl), onDisk)

    def test_failedPublishHealsOnRestart(self):
        """
        If writing the CRL fails after the store recorded the revocation
        (a full disk, a crash), the revocation is not lost: the restarted
        hub does not serve the stale CRL file but a new one that lists the
        device.
        """
        key, cert = self.fixture.enrolDevice("phone")
        before = pki.crlNumber(self.authority.crl)
        original = self.failCRLWrites()
        self.assertRaises(OSError, self.authority.revoke, self.fixture.deviceId("phone"))
        self.patch(pki, "writePEM", original)
        self.assertEqual(pki.crlNumber(crlOnDisk(self.fixture)), before)
        restarted = self.restart()
        self.assertGreater(pki.crlNumber(restarted.crl), before)
        self.assertTrue(pki.crlListsSerial(restarted.crl, self.caCert, cert.serial_number))
        e = self.assertRaises(pki.CertificateError, restarted.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_REVOKED")

    def test_failedPublishHealsOnRetry(self):
        """
        If writing the CRL failed, the admin's second C{revoke} (which
        revokes nothing new) still publishes a CRL listing the device, so
        retrying the command is enough.
        """
        key, cert = self.fixture.enrolDevice("phone")
        original = self.failCRLWrites()
        self.assertRaises(OSError, self.hub.revoke, self.fixture.deviceId("phone"))
        self.patch(pki, "writePEM", original)
        result = self.hub.revoke(self.fixture.deviceId("phone"))
        self.assertEqual(result["serials"], [])
        self.assertTrue(pki.crlListsSerial(crlOnDisk(self.fixture), self.caCert,
                                           cert.serial_number))
        self.assertEqual(result["crl_number"], pki.crlNumber(crlOnDisk(self.fixture)))
        e = self.assertRaises(pki.CertificateError, self.authority.verifyDevice, cert)
        self.assertEqual(e.code, "CERT_REVOKED")


class HubRevokeTests(_RevocationTestCase):
    """
    L{Hub.revoke} as the admin command runs it.
    """

    def test_persistedFirst(self):
        """
        By the time the device's link is aborted and the CRL is pushed, the
        CRL listing the device is already on disk with the new number, and
        it is what the call reports.
        """
        key, cert, phone = self.device("phone")
        self.device("laptop")
        before = pki.crlNumber(self.authority.crl)
        seen = []
        server = self.hub.registry.get(self.fixture.deviceId("phone"))
        abort = server.transport.abortConnection
        sendPaced = self.hub.registry.sendPaced

        def onDisk():
            crl = crlOnDisk(self.fixture)
            return pki.crlNumber(crl), pki.crlListsSerial(crl, self.caCert, cert.serial_number)

        def recordAbort():
            seen.append(("abort", onDisk()))
            abort()

        def recordPush(links, payloads):
            seen.append(("push", onDisk()))
            sendPaced(links, payloads)

        server.transport.abortConnection = recordAbort
        self.patch(self.hub.registry, "sendPaced", recordPush)
        result = self.hub.revoke(self.fixture.deviceId("phone"))
        self.assertEqual(result["crl_number"], before + 1)
        self.assertEqual(seen, [("abort", (before + 1, True)), ("push", (before + 1, True))])
        self.assertEqual(onDisk(), (before + 1, True))
        self.fixture.flush()

    def test_dropsLiveLink(self):
        """
        The revoked device's live link is closed and it leaves the
        registry; the others stay connected.
        """
        key, cert, phone = self.device("phone")
        _, _, laptop = self.device("laptop")
        self.hub.revoke(self.fixture.deviceId("phone"))
        self.fixture.flush()
        self.assertTrue(phone.closed)
        self.assertIsNone(self.hub.registry.get(self.fixture.deviceId("phone")))
        self.assertFalse(laptop.closed)
        self.assertIsNotNone(self.hub.registry.get(self.fixture.deviceId("laptop")))

    def test_pushesToEveryOther(self):
        """
        Every other connected device gets one C{crlUpdate} carrying the new
        CRL, signed by the zone CA and listing the revoked serial; the
        revoked device gets none.
        """
        key, cert, phone = self.device("phone")
        others = [self.device(name)[2] for name in ("laptop", "tablet", "tv")]
        for link in others:
            link.client.take()
        phone.client.take()
        result = self.hub.revoke(self.fixture.deviceId("phone"))
        self.fixture.flush()
        for link in others:
            [crl] = self.pushedCRLs(link)
            self.assertEqual(pki.crlNumber(crl), result["crl_number"])
            self.assertTrue(pki.crlListsSerial(crl, self.caCert, cert.serial_number))
        self.assertEqual(self.pushedCRLs(phone), [])

    def test_everyValidSerial(self):
        """
        A device that renewed holds two valid certificates: revoking it
        revokes both (the one from before the renewal included), and each
        is then refused with C{CERT_REVOKED}.
        """
        oldKey, oldCert = self.fixture.enrolDevice("phone")
        self.fixture.clock.advance(RENEWAL_DUE)
        newKey = pki.newKey()
        newCert, _ = self.authority.renew(self.fixture.deviceId("phone"),
                                          pki.makeCSR(newKey, "phone"))
        result = self.hub.revoke(self.fixture.deviceId("phone"))
        self.assertEqual(sorted(result["serials"]),
                         sorted(format(c.serial_number, "x") for c in (oldCert, newCert)))
        crl = crlOnDisk(self.fixture)
        for key, cert in ((oldKey, oldCert), (newKey, newCert)):
            self.assertTrue(pki.crlListsSerial(crl, self.caCert, cert.serial_number))
            link = self.fixture.connectDevice(key, cert)
            self.assertEqual(link.client.codes(), ["CERT_REVOKED"])
            self.assertTrue(link.closed)

    def test_idempotent(self):
        """
        Revoking a revoked device again revokes nothing, signs no new CRL,
        pushes nothing, and reports the current number.
        """
        _, _, laptop = self.device("laptop")
        self.fixture.enrolDevice("phone")
        first = self.hub.revoke(self.fixture.deviceId("phone"))
        self.fixture.flush()
        laptop.client.take()
        diskBefore = open(self.fixture.zone.path("crl.pem"), "rb").read()
        stateBefore = self.fixture.storeState()
        second = self.hub.revoke(self.fixture.deviceId("phone"))
        self.fixture.flush()
        self.assertEqual(second, {"device": self.fixture.deviceId("phone"), "serials": [],
                                  "crl_number": first["crl_number"]})
        self.assertEqual(open(self.fixture.zone.path("crl.pem"), "rb").read(), diskBefore)
        self.assertEqual(self.fixture.storeState(), stateBefore)
        self.assertEqual(laptop.client.take(), [])

    def test_unknownDevice(self):
        """
        Revoking a device the zone never enrolled is C{UNKNOWN_DESTINATION}
        and changes neither the CRL nor the store.
        """
        before = self.fixture.storeState()
        crl = self.authority.crl
        e = self.assertRaises(ZoneError, self.hub.revoke, f"{ZONE}/ghost")
        self.assertEqual(e.code, "UNKNOWN_DESTINATION")
        self.assertIs(self.authority.crl, crl)
        self.assertEqual(self.fixture.storeState(), before)

    def test_revokedDeviceGetsEvidence(self):
        """
        When the revoked device connects again, the hub completes the
        handshake, answers C{CERT_REVOKED} with the signed CRL that lists
        its serial, registers nothing and closes.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.hub.revoke(self.fixture.deviceId("phone"))
        link = self.fixture.connectDevice(key, cert)
        self.assertTrue(link.client.handshook)
        [frame] = link.client.received
        payload = frame["payload"]
        self.assertEqual((payload["status"], payload["code"]), ("error", "CERT_REVOKED"))
        crl = pki.loadCRL(payload["crl"].encode("ascii"))
        self.assertTrue(pki.crlListsSerial(crl, self.caCert, cert.serial_number))
        self.assertEqual(pki.crlNumber(crl), pki.crlNumber(self.authority.crl))
        self.assertTrue(link.closed)
        self.assertEqual(len(self.hub.registry), 0)

    def test_otherRefusalsCarryNoCRL(self):
        """
        Only C{CERT_REVOKED} carries a CRL: a foreign certificate is refused
        with C{CERT_UNTRUSTED} and nothing else.
        """
        key, cert = self.fixture.foreignDevice("phone")
        link = self.fixture.connectDevice(key, cert)
        [frame] = link.client.received
        self.assertEqual(frame["payload"]["code"], "CERT_UNTRUSTED")
        self.assertNotIn("crl", frame["payload"])
        self.assertTrue(link.closed)

    def test_refreshPushesHigherNumber(self):
        """
        C{refreshCRL} once the CRL is half-used re-signs it with a higher
        number, still listing the revoked serials, and pushes it.
        """
        key, cert = self.fixture.enrolDevice("phone")
        self.hub.revoke(self.fixture.deviceId("phone"))
        number = pki.crlNumber(self.authority.crl)
        self.fixture.clock.advance(timedelta(days=4).total_seconds())
        _, _, laptop = self.device("laptop")
        self.hub.refreshCRL()
        self.fixture.flush()
        [crl] = self.pushedCRLs(laptop)
        self.assertGreater(pki.crlNumber(crl), number)
        self.assertTrue(pki.crlListsSerial(crl, self.caCert, cert.serial_number))
        self.assertEqual(pki.crlNumber(crlOnDisk(self.fixture)), pki.crlNumber(crl))


class StoreCertificateTests(SynchronousTestCase):
    """
    L{SQLiteHubStore.addCertificate} and L{SQLiteHubStore.revokeDevice}.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.store = self.fixture.store

    def test_expiredNotListed(self):
        """
        A device's older certificate that had already expired when the
        device was revoked is not listed again; its current one is, even if
        it expired too.
        """
        deviceId = self.fixture.deviceId("phone")
        key, cert = self.fixture.enrolDevice("phone")
        now = self.fixture.clock.seconds()
        self.store.addCertificate(deviceId, 12345, now - 10)
        self.store.addCertificate(deviceId, 67890, now + 10)
        serials = self.store.revokeDevice(deviceId, now)
        self.assertEqual(sorted(serials), sorted([cert.serial_number, 67890]))
        self.assertIsNotNone(self.store.getDevice(deviceId).revoked)

    def test_otherDevicesUntouched(self):
        """
        Revoking one device revokes none of another device's certificates.
        """
        self.fixture.enrolDevice("phone")
        key, cert = self.fixture.enrolDevice("laptop")
        self.store.revokeDevice(self.fixture.deviceId("phone"), self.fixture.clock.seconds())
        listed = {serial for serial, _ in self.store.revocations()}
        self.assertNotIn(cert.serial_number, listed)
        self.assertIsNone(self.store.getDevice(self.fixture.deviceId("laptop")).revoked)


class CRLDeliveryTests(_RevocationTestCase):
    """
    The CRL reaches devices whatever its size, and on every connection.
    """

    def crlFrames(self, link) -> list:
        """
        The payloads of the C{crlUpdate} frames C{link} received since the
        last look.
        """
        return [f["payload"] for f in link.client.take()
                if f["payload"].get("status") == "crlUpdate"]

    def test_largePushInPieces(self):
        """
        A CRL far larger than one piece is pushed as numbered pieces of at
        most L{PIECE} characters that join into the hub's CRL.
        """
        _, _, laptop = self.device("laptop")
        self.fixture.revokeMany(3000, self.fixture.clock.seconds() + 86400)
        self.device("phone")
        laptop.client.take()
        self.hub.revoke(self.fixture.deviceId("phone"))
        self.fixture.flush()
        pieces = self.crlFrames(laptop)
        self.assertGreater(len(pieces), 1)
        self.assertTrue(all(len(p["crl"]) <= PIECE for p in pieces))
        assembler = CRLAssembler()
        results = [assembler.add(p) for p in pieces]
        self.assertEqual(pki.crlPEM(results[-1]), self.authority.crlPEM)
        self.assertIsNone(laptop.client.lost)

    def test_crlRequestOncePerLink(self):
        """
        C{crlRequest} is answered with the current CRL once per link and
        CRL: asking again is C{BAD_REQUEST}, as is asking for one the hub
        already pushed; a newer CRL may be asked for again.
        """
        _, _, phone = self.device("phone")
        phone.client.sendProp(ZONE, {"status": "crlRequest"}, "q1")
        self.fixture.flush()
        [payload] = self.crlFrames(phone)
        self.assertEqual(pki.loadCRL(payload["crl"].encode("ascii")), self.authority.crl)
        phone.client.sendProp(ZONE, {"status": "crlRequest"}, "q2")
        self.fixture.flush()
        self.assertEqual(phone.client.codes(), ["BAD_REQUEST"])
        self.device("laptop")
        phone.client.take()
        self.hub.revoke(self.fixture.deviceId("laptop"))
        self.fixture.flush()
        self.assertEqual(len(self.crlFrames(phone)), 1)
        phone.client.sendProp(ZONE, {"status": "crlRequest"}, "q3")
        self.fixture.flush()
        self.assertEqual(phone.client.codes(), ["BAD_REQUEST"])
        self.assertIsNone(phone.client.lost)
