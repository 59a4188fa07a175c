# -*- test-case-name: tests.pzh.test_zone -*-
"""
The hub's zone on disk: the zone CA, the hub's own TLS certificate and the
zone's description, created on the first start and reused afterwards.

Layout of the hub's data directory::

    zone.json   zone id, user, advertised host and ports
    ca.key      zone CA private key (0600)    ca.pem   zone CA certificate
    hub.key     hub TLS private key (0600)    hub.pem  hub certificate
    crl.pem     current revocation list       hub.db   hub state (SQLite, 0600)
    admin.sock  local admin socket for pzctl

The directory itself is kept 0700, tightened at every start if an older
version or a hand-made directory left it wider.
"""

import json
import os
from datetime import datetime, timezone
from typing import Optional


import attrs

from pz import pki
from pz.errors import ZoneError
from pz.files import privateDirectory

__all__ = ["HubZone", "loadOrCreateZone", "loadZone", "zoneExists", "ZONE_FILE"]

ZONE_FILE = "zone.json"


@attrs.define
class HubZone:
    """
    Everything about the zone that the hub's parts share.
    """

    dataDir: str
    zoneId: str
    user: str
    host: str
    port: int
    webPort: int
    caKey: object
    caCert: object
    hubKey: object
    hubCert: object

    def path(self, name: str) -> str:
        """
        The path of a file in the hub's data directory.
        """
        return os.path.join(self.dataDir, name)

    @property
    def caFingerprint(self) -> str:
        """
        UDF of the zone CA key: what pairing codes pin.
        """
        return pki.caFingerprint(self.caCert)

    @property
    def caPEM(self) -> bytes:
        """
        The zone CA certificate in PEM.
        """
        return pki.certificatePEM(self.caCert)


def _hostnames(host: str, interface: str) -> list:
    names = [host]
    for extra in (interface, "localhost", "127.0.0.1"):
        if extra and extra not in names and extra not in ("0.0.0.0", "::"):
            names.append(extra)
    return names


def _certificateNames(cert) -> set:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def _now() -> datetime:
    return datetime.now(timezone.utc)


def loadZone(dataDir: str) -> HubZone:
    """
    Load an existing zone, as C{pzctl} does.

    @raise ZoneError: C{NOT_RUNNING} if there is no zone in C{dataDir}.
    """
    try:
        with open(os.path.join(dataDir, ZONE_FILE)) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ZoneError("NOT_RUNNING", f"no hub zone in {dataDir} (start twistd pzh first)")
    path = lambda name: os.path.join(dataDir, name)
    return HubZone(
        dataDir=dataDir,
        zoneId=meta["zone"],
        user=meta["user"],
        host=meta["host"],
        port=meta["port"],
        webPort=meta["web_port"],
        caKey=pki.readPrivateKey(path("ca.key")),
        caCert=pki.readCertificate(path("ca.pem")),
        hubKey=pki.readPrivateKey(path("hub.key")),
        hubCert=pki.readCertificate(path("hub.pem")),
    )


def _writeMeta(zone: HubZone) -> None:
    meta = {
        "zone": zone.zoneId,
        "user": zone.user,
        "host": zone.host,
        "port": zone.port,
        "web_port": zone.webPort,
    }
    pki.writePEM(zone.path(ZONE_FILE), json.dumps(meta, indent=2).encode("utf-8"))


def zoneExists(dataDir: str) -> bool:
    """
    Whether C{dataDir} already holds a zone.
    """
    return os.path.exists(os.path.join(dataDir, ZONE_FILE))


def loadOrCreateZone(
    dataDir: str, user: Optional[str], host: str, interface: str, port: int, webPort: int
) -> HubZone:
    """
    Load the zone in C{dataDir}, creating it (CA, hub key and certificate)
    on first use.  The hub certificate is re-issued when the hub is now
    reached under a name it does not carry, and the advertised ports follow
    the latest start.

    @param user: the user part of the zone id; L{None} takes the existing
        zone's.  A zone id is in every certificate of the zone, so a zone
        is never renamed.

    @raise ZoneError: C{BAD_REQUEST} if C{user} is not the existing zone's
        user (nothing is written then).
    """
    privateDirectory(dataDir)
    now = _now()
    if zoneExists(dataDir):
        zone = loadZone(dataDir)
        if user is not None and user != zone.user:
            raise ZoneError(
                "BAD_REQUEST",
                f"the zone in {dataDir} is {zone.zoneId}; a zone cannot be renamed: "
                f"start with --name {zone.user} or without --name",
            )
        zone.port, zone.webPort = port, webPort
        wanted = set(_hostnames(zone.host, interface))
        if not wanted <= _certificateNames(zone.hubCert):
            zone.hubCert = pki.issueHubCertificate(
                zone.caKey, zone.caCert, zone.zoneId,
                sorted(wanted | _certificateNames(zone.hubCert)),
                zone.hubKey.public_key(), now,
            )
            pki.writePEM(zone.path("hub.pem"), pki.certificatePEM(zone.hubCert))
        _writeMeta(zone)
        return zone
    if user is None:
        raise ValueError("a new zone needs a user name")
    zoneId = f"{user}@{host}"
    caKey, caCert = pki.createZoneCA(zoneId, now)
    hubKey = pki.newKey()
    hubCert = pki.issueHubCertificate(
        caKey, caCert, zoneId, _hostnames(host, interface), hubKey.public_key(), now
    )
    zone = HubZone(dataDir, zoneId, user, host, port, webPort, caKey, caCert, hubKey, hubCert)
    pki.writePrivateKey(zone.path("ca.key"), caKey)
    pki.writePEM(zone.path("ca.pem"), pki.certificatePEM(caCert))
    pki.writePrivateKey(zone.path("hub.key"), hubKey)
    pki.writePEM(zone.path("hub.pem"), pki.certificatePEM(hubCert))
    _writeMeta(zone)
    return zone


def validUser(name: str) -> bool:
    """
    Whether C{name} can be the user part of a zone id.
    """
    return bool(name) and len(name) <= 64 and all(c.isalnum() or c in "._-" for c in name)


