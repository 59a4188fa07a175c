# -*- test-case-name: tests.pzp.test_friendpeers -*-
"""
The friend zones a device trusts: the trusted PZH certificates among its
items (C{certificates/trusted-pzh/ZONE.pem}) other than its own zone's.

The hub is their only source (a one-way item, synced to the device), so
what the device reads here is what its zone's owner decided with
C{pzctl accept-zone} and C{pzctl untrust-zone}.  A file that does not
hold one CA certificate naming the zone its name says is skipped.  The
friends' CRLs come the same way, from what each friend's hub shares with
this zone's (C{friends/ZONE/crl.pem}); one that its friend's CA did not
sign is skipped.
"""

import os

from twisted.logger import Logger

from pz import pki
from pz.sync.zoneitems import friendCRLPath, trustedHubPath

__all__ = ["friendCAs", "friendCRLs"]

_log = Logger()


def friendCAs(itemsRoot: str, ownZone: str) -> dict:
    """
    The friend zones' CA certificates under C{itemsRoot}, by zone id.
    """
    folder = os.path.dirname(os.path.join(itemsRoot, trustedHubPath(ownZone)))
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    found = {}
    for name in names:
        if not name.endswith(".pem"):
            continue
        try:
            ca = pki.readCertificate(os.path.join(folder, name))
        except (OSError, pki.CertificateError, ValueError):
            continue
        zoneId = pki.identityOf(ca)
        if zoneId is None or zoneId == ownZone or trustedHubPath(zoneId).rpartition("/")[2] != name:
            continue
        found[zoneId] = ca
    return found


def friendCRLs(itemsRoot: str, cas: dict) -> list:
    """
    The CRLs the friend zones C{cas} (their CAs by zone id, as
    L{friendCAs} read them) shared, each verified under its zone's CA.
    """
    found = []
    for zoneId, ca in cas.items():
        path = os.path.join(itemsRoot, *friendCRLPath(zoneId).split("/"))
        try:
            with open(path, "rb") as f:
                crl = pki.loadCRL(f.read())
            pki.verifyCRL(crl, ca)
        except FileNotFoundError:
            continue
        except (OSError, pki.CertificateError, ValueError) as e:
            _log.warn("zone {zone}'s CRL among the items is skipped: {why}", zone=zoneId,
                      why=getattr(e, "message", e))
            continue
        found.append(crl)
    return found
