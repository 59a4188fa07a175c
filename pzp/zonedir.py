# -*- test-case-name: tests.pzp.test_zonedir -*-
"""
A device's zone directory: everything it holds because it belongs to a
zone.

Layout, inside the proxy's data directory::

    zone/ZONE         marker: zone id, device id, hub address (JSON)
    zone/key.pem      the device's private key (0600)
    zone/cert.pem     its certificate        zone/ca.pem   the zone CA
    zone/crl.pem      the zone's CRL         zone/inbox.jsonl  messages

The directory is created whole (written as C{zone.new/}, then renamed), so
a crash while enrolling leaves either no zone or a complete one.  Only a
directory that carries the marker is ever treated, or wiped, as zone data.
"""

import json
import os
import shutil
import time
from typing import Optional

import attrs

from pz import pki

__all__ = ["ZoneDirectory", "Credentials", "MARKER"]

MARKER = "ZONE"
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

    def file(self, name: str) -> str:
        """
        Path of a file in the zone directory.
        """
        return os.path.join(self.path, name)

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
        pki.writePrivateKey(put("key.pem"), credentials.key)
        pki.writePEM(put("cert.pem"), pki.certificatePEM(credentials.cert))
        pki.writePEM(put("ca.pem"), pki.certificatePEM(credentials.caCert))
        pki.writePEM(put("crl.pem"), pki.crlPEM(credentials.crl))
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
            key=pki.readPrivateKey(self.file("key.pem")),
            cert=pki.readCertificate(self.file("cert.pem")),
            caCert=pki.readCertificate(self.file("ca.pem")),
            crl=pki.readCRL(self.file("crl.pem")),
        )

    def marker(self) -> Optional[dict]:
        """
        The marker's contents, or None for a device in no zone.
        """
        try:
            with open(self.file(MARKER)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None


def _fsyncDirectory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
