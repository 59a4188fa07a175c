# -*- test-case-name: tests.pz.test_testing -*-
"""
A real hub for one test, with its zone in a temporary directory, its store
in a file there and a clock, reached over TLS in memory: the lower-level
piece under L{pz.testing.zone.MemoryZone}, for tests that speak the
device protocol themselves (a L{FrameClient} that sends what a test
asks) or that bring their own device-side protocol.
"""

import itertools
import sqlite3
from datetime import datetime, timezone

from twisted.test.iosim import FakeTransport

from pz import pki, tls
from pz.testing.ends import hubEnd
from pz.testing.loopback import (
    FrameClient, Link, address, connectPair, flushPumps, nowClock, protocolFactory, tlsFactory,
)

__all__ = ["MemoryHub", "USER", "HOST", "ZONE", "HUB_PORT", "WEB_PORT", "RENEWAL_DUE"]

USER = "anna"
HOST = "127.0.0.1"
ZONE = f"{USER}@{HOST}"
HUB_PORT = 8000
WEB_PORT = 9000

#: Seconds after issue by which a certificate of the default 90-day lifetime
#: is in its renewal window (the last third of its life).
RENEWAL_DUE = 61 * 24 * 3600.0


class MemoryHub:
    """
    A hub for one test, with helpers to enrol devices and connect clients.

    @ivar clock: the one clock the hub and every link run on.
    @ivar zone: the hub's zone (CA, hub certificate, directory).
    @ivar zoneId: the zone's id, C{user@host}.
    @ivar store: the hub's store, closed when the test ends.
    @ivar storePath: the file it keeps its data in (C{None} when in memory).
    @ivar hub: the real hub.
    @ivar serverOptions: the hub's TLS server options.
    @ivar serverFactory: the hub's device port, TLS included.
    @ivar links: every L{Link} opened, in order.
    """

    def __init__(self, testCase, settings=None, *, clock=None, user: str = USER,
                 onDisk: bool = True) -> None:
        """
        @param testCase: the trial test this hub serves: its directory comes
            from C{mktemp}, its store is closed by a cleanup, and
            L{assertQuiet} checks with it.
        @param settings: the hub's settings (its defaults when C{None}).
        @param clock: the clock to share (a L{Clock} at the present by
            default; a L{MemoryReactorClock} when devices run on it too).
        @param user: the zone's user: the zone is C{user@127.0.0.1}.
        @param onDisk: keep the store in a file (as the hub does), which
            L{storeState} and L{revokeMany} read and write through a
            connection of their own; C{False} keeps it in memory, which is
            faster.
        """
        self.testCase = testCase
        self.clock = clock if clock is not None else nowClock()
        self._built = hubEnd().buildHub(testCase.mktemp(), self.clock, user, HOST, HUB_PORT,
                                        WEB_PORT, settings, onDisk)
        testCase.addCleanup(self._built.close)
        self.zone = self._built.zone
        self.zoneId = self.zone.zoneId
        self.store = self._built.store
        self.storePath = self._built.storePath
        self.hub = self._built.hub
        self.serverOptions = tls.hubServerOptions(
            self.zone.caCert, self.zone.hubKey, self.zone.hubCert
        )
        self.serverFactory = tlsFactory(self.serverOptions, False, self._built.deviceFactory(),
                                        self.clock)
        self._ports = itertools.count(40000)
        self.links = []

    def now(self) -> datetime:
        """
        The clock's time as a datetime.
        """
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    def deviceId(self, name: str) -> str:
        """
        The id of the device of this zone called C{name}.
        """
        return f"{self.zoneId}/{name}"

    @property
    def crl(self):
        """
        The zone's current certificate revocation list.
        """
        return self._built.crl()

    def enrolDevice(self, name: str, address: str = "127.0.0.9"):
        """
        Enrol a device through the hub's enrolment (as a pairing code
        presented from C{address} would), returning its key and
        certificate.
        """
        key = pki.newKey()
        csr = pki.csrPEM(pki.makeCSR(key, name)).decode("ascii")
        return key, self._built.enrol(name, csr, address)

    def foreignDevice(self, name: str):
        """
        A key and certificate for the same device id, issued by another CA
        that carries this zone's name.
        """
        caKey, caCert = pki.createZoneCA(self.zoneId, self.now())
        key = pki.newKey()
        cert = pki.issueDeviceCertificate(
            caKey, caCert, pki.makeCSR(key, name), self.deviceId(name), 7, self.now()
        )
        return key, cert

    def revoke(self, deviceId: str) -> None:
        """
        Revoke a device as C{pzctl revoke} does.
        """
        self._built.revoke(deviceId)

    def revokeMany(self, count: int, notAfter: float) -> None:
        """
        Record C{count} revoked certificates of a device that no longer
        exists, valid until C{notAfter}, straight into the store (one
        transaction, so a test can make a large CRL quickly); the next CRL
        the hub signs lists them.
        """
        db = self._ownConnection()
        try:
            with db:
                serials = [str(10 ** 30 + i * 7919) for i in range(count)]
                db.executemany("INSERT INTO certificates (serial, device_id, not_after)"
                               " VALUES (?, 'gone', ?)", [(s, notAfter) for s in serials])
                db.executemany("INSERT INTO revocations (serial, device_id, revoked)"
                               " VALUES (?, 'gone', ?)", [(s, self.clock.seconds()) for s in serials])
        finally:
            db.close()

    def storeState(self) -> dict:
        """
        Every row of the store's tables, read through a connection of its
        own, to compare before and after something that must not change
        state.
        """
        db = self._ownConnection()
        try:
            return {
                table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
                for table in ("devices", "tokens", "revocations", "queued", "settings")
            }
        finally:
            db.close()

    def _ownConnection(self) -> sqlite3.Connection:
        """
        A connection of its own to the store's file.

        @raise ValueError: if the store is in memory.
        """
        if self.storePath is None:
            raise ValueError("the hub's store is in memory: build the MemoryHub with onDisk=True")
        return sqlite3.connect(self.storePath)

    def connectFactory(self, clientFactory, serverTransport=FakeTransport) -> Link:
        """
        Connect a protocol of C{clientFactory} (TLS included) to the hub's
        device port and pump every link until nothing moves.

        @param serverTransport: the hub end's transport class (a
            L{SlowReaderTransport} makes a client that stops reading).
        """
        link = connectPair(self.serverFactory, clientFactory, self.clock,
                           address(HOST, HUB_PORT), address(HOST, next(self._ports)),
                           serverTransport)
        self.links.append(link)
        self.flush()
        return link

    def connectProtocol(self, clientOptions, protocol, serverTransport=FakeTransport) -> Link:
        """
        Connect C{protocol} over TLS with C{clientOptions}.
        """
        return self.connectFactory(
            tlsFactory(clientOptions, True, protocolFactory(protocol), self.clock),
            serverTransport)

    def connect(self, clientOptions, serverTransport=FakeTransport) -> Link:
        """
        Open a TLS connection from a new L{FrameClient} with
        C{clientOptions}.
        """
        return self.connectProtocol(clientOptions, FrameClient(), serverTransport)

    def connectDevice(self, key, cert, serverTransport=FakeTransport) -> Link:
        """
        Connect a L{FrameClient} as an enrolled device presenting C{cert}.
        """
        return self.connect(tls.pzpClientOptions(self.zone.caCert, key, cert, HOST),
                            serverTransport)

    def connectVirgin(self) -> Link:
        """
        Connect a L{FrameClient} as a device with no certificate, as one
        that enrols does.
        """
        return self.connect(tls.enrolmentClientOptions(HOST))

    def flush(self) -> None:
        """
        Pump every link until none moves any more bytes.
        """
        flushPumps([link.pump for link in self.links])

    def advance(self, seconds: float) -> None:
        """
        Move the clock on, then pump.
        """
        self.clock.advance(seconds)
        self.flush()

    def coalesce(self) -> None:
        """
        Let the hub's pending membership announcement go out.
        """
        self.advance(self._built.coalesce)

    def close(self) -> None:
        """
        Close every link, let everything settle, and check that no device
        is left registered and nothing is left scheduled on the clock.
        """
        for link in self.links:
            if getattr(link.client, "lost", None) is None and link.client.transport is not None:
                link.client.transport.loseConnection()
        self.flush()
        self.coalesce()
        self.stop()
        self.assertQuiet()

    def stop(self) -> None:
        """
        Stop what the hub runs on the clock by itself (the scan of its
        synchronised items), as stopping C{twistd pzh} would.
        """
        self._built.stop()

    def assertQuiet(self) -> None:
        """
        Check that no device is registered and nothing is scheduled.
        """
        self.testCase.assertEqual(self._built.linkCount(), 0)
        self.testCase.assertEqual(self.clock.getDelayedCalls(), [])
