# -*- test-case-name: tests.pzp.test_zonedir -*-
"""
A device's zone directory: everything it holds because it belongs to a
zone.

Layout, inside the proxy's data directory::

    zone/ZONE                  marker: zone id, device id, hub address (JSON)
    zone/identity -> identity-SERIAL/   the current key and certificate:
    zone/identity/key.pem      the device's private key (0600)
    zone/identity/cert.pem     its certificate
    zone/ca.pem                the zone CA (the trust anchor; never synced)
    zone/inbox.jsonl           messages received
    zone/items/                what synchronisation keeps in step with the
                               hub (L{pz.sync.items}), the CRL among them:
                               zone/items/crl.pem
    zone/conflicts/            versions that lost a synchronisation conflict
    zone/sync/                 synchronisation state and temporary files

The directory is created whole (written as C{zone.new/}, then renamed), so
a crash while enrolling leaves either no zone or a complete one.  A renewed
key and certificate go into a new C{identity-SERIAL/} and the C{identity}
link is swapped in one rename, so the pair is never mixed.  Only a
directory that carries the marker is ever treated, or wiped, as zone data.
"""

import json
import os
import shutil
import time
from typing import Optional

import attrs

from pz import pki
from pz.sync.items import ItemTree
from pz.sync.zoneitems import CRL, zoneItems

__all__ = ["ZoneDirectory", "Credentials", "MARKER"]

MARKER = "ZONE"
IDENTITY = "identity"
ITEMS = "items"
_ZONE = "zone"


@attrs.frozen
class Credentials:
    """
    What enrolment gave the device.
    """

    zoneId: str
    deviceId: str
    hubHost: str
    hubPort: int
    key: object
    cert: object
    caCert: object
    crl: object


class ZoneDirectory:
    """
    The zone part of a proxy's data directory.
    """

    def __init__(self, dataDir: str) -> None:
        self.dataDir = os.path.abspath(dataDir)
        self.path = os.path.join(self.dataDir, _ZONE)

    def file(self, *names: str) -> str:
        """
        Path of a file in the zone directory.
        """
        return os.path.join(self.path, *names)

    def enrolled(self) -> bool:
        """
        Whether this device belongs to a zone (the marker exists).
        """
        return os.path.isfile(self.file(MARKER))

    def store(self, credentials: Credentials) -> None:
        """
        Write a fresh zone directory atomically.
        """
        os.makedirs(self.dataDir, mode=0o700, exist_ok=True)
        staging = os.path.join(self.dataDir, _ZONE + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        os.mkdir(staging, 0o700)
        put = lambda name: os.path.join(staging, name)
        _writeIdentity(staging, credentials.key, credentials.cert)
        caPEM = pki.certificatePEM(credentials.caCert)
        pki.writePEM(put("ca.pem"), caPEM)
        ItemTree(staging).create(zoneItems(credentials.zoneId, caPEM, pki.crlPEM(credentials.crl)))
        marker = {
            "zone": credentials.zoneId,
            "device": credentials.deviceId,
            "hub": f"{credentials.hubHost}:{credentials.hubPort}",
            "enrolled": time.time(),
        }
        pki.writePEM(put(MARKER), json.dumps(marker, indent=2).encode("utf-8"))
        _fsyncDirectory(staging)
        os.replace(staging, self.path)
        _fsyncDirectory(self.dataDir)

    def load(self) -> Credentials:
        """
        Read the stored credentials.
        """
        with open(self.file(MARKER)) as f:
            marker = json.load(f)
        host, _, port = marker["hub"].rpartition(":")
        return Credentials(
            zoneId=marker["zone"],
            deviceId=marker["device"],
            hubHost=host.strip("[]"),
            hubPort=int(port),
            key=pki.readPrivateKey(self.file(IDENTITY, "key.pem")),
            cert=pki.readCertificate(self.file(IDENTITY, "cert.pem")),
            caCert=pki.readCertificate(self.file("ca.pem")),
            crl=pki.readCRL(self._crlFile()),
        )

    def _crlFile(self) -> str:
        """
        The CRL among the items; a zone directory written before
        synchronisation existed keeps it beside them.
        """
        path = self.file(ITEMS, CRL)
        return path if os.path.exists(path) or not os.path.exists(self.file(CRL)) else self.file(CRL)

    def replaceIdentity(self, key, cert) -> None:
        """
        Retire the current key and certificate for new ones, atomically.
        """
        oldTarget = os.readlink(self.file(IDENTITY))
        _writeIdentity(self.path, key, cert)
        if oldTarget != os.readlink(self.file(IDENTITY)):
            shutil.rmtree(self.file(oldTarget), ignore_errors=True)

    def replaceCRL(self, crl) -> None:
        """
        Store a newer CRL (the caller checked it is newer and signed), unless
        the items already hold it (synchronisation wrote it): rewriting the
        same bytes would cost two fsyncs and a re-hash at the next scan.
        """
        tree, pem = ItemTree(self.path), pki.crlPEM(crl)
        if tree.read(CRL) != pem:
            tree.write(CRL, pem)

    def wipe(self) -> bool:
        """
        Erase the zone data: keys, certificates, CRL, inbox, everything in
        the zone directory, but only if it carries the zone marker.

        @return: whether anything was erased.
        """
        if not self.enrolled() or os.path.islink(self.path):
            return False
        graveyard = os.path.join(self.dataDir, _ZONE + ".wiped")
        shutil.rmtree(graveyard, ignore_errors=True)
        os.replace(self.path, graveyard)
        _fsyncDirectory(self.dataDir)
        shutil.rmtree(graveyard)
        return True

    def marker(self) -> Optional[dict]:
        """
        The marker's contents, or None for a device in no zone.
        """
        try:
            with open(self.file(MARKER)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None


def _writeIdentity(zonePath: str, key, cert) -> None:
    """
    Write C{key} and C{cert} into C{identity-SERIAL/} under C{zonePath}
    and point the C{identity} link at it with one atomic rename.
    """
    name = f"{IDENTITY}-{cert.serial_number:x}"
    target = os.path.join(zonePath, name)
    os.makedirs(target, mode=0o700, exist_ok=True)
    pki.writePrivateKey(os.path.join(target, "key.pem"), key)
    pki.writePEM(os.path.join(target, "cert.pem"), pki.certificatePEM(cert))
    _fsyncDirectory(target)
    link = os.path.join(zonePath, IDENTITY)
    staging = link + ".new"
    if os.path.lexists(staging):
        os.unlink(staging)
    os.symlink(name, staging)
    os.replace(staging, link)
    _fsyncDirectory(zonePath)


def _fsyncDirectory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
