"""
Device certificates for the benchmark, issued from the zone's own CA.

Each device gets its own P-256 key and a certificate from
L{pz.pki.issueDeviceCertificate} (over a CSR from L{pz.pki.makeCSR}), as
pairing would give it, with the id C{<zone id>/devNNNNN}.  The devices are
also recorded in the hub's store as enrolled (what pairing does), so that
the hub's per-connection bookkeeping (last seen, address) touches real
rows.  Files, in the certificate directory::

    ca.pem                      the zone CA (what clients trust)
    dev00000.pem dev00000.key   device certificate and key (PKCS#8)
    ...
"""

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone

from pz import pki
from pzh.store import DeviceRecord, SQLiteHubStore


def deviceName(index: int) -> str:
    return f"dev{index:05d}"


def _issue(args):
    dataDir, certDir, start, stop, zoneId, now = args
    caKey = pki.readPrivateKey(os.path.join(dataDir, "ca.key"))
    caCert = pki.readCertificate(os.path.join(dataDir, "ca.pem"))
    records = []
    for index in range(start, stop):
        name = deviceName(index)
        deviceId = f"{zoneId}/{name}"
        key = pki.newKey()
        serial = int.from_bytes(os.urandom(16), "big") >> 1
        cert = pki.issueDeviceCertificate(
            caKey, caCert, pki.makeCSR(key, deviceId), deviceId, serial, now
        )
        base = os.path.join(certDir, name)
        fd = os.open(base + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pki.keyPEM(key))
        with open(base + ".pem", "wb") as f:
            f.write(pki.certificatePEM(cert))
        records.append((deviceId, name, serial, cert.not_valid_after_utc.timestamp()))
    return records


def issueDevices(dataDir: str, certDir: str, count: int, workers: int = 2) -> dict:
    """
    Issue C{count} device certificates from the zone in C{dataDir} into
    C{certDir} and enrol them in the hub's store.

    @return: a summary (zone id, count, CA file).
    """
    with open(os.path.join(dataDir, "zone.json")) as f:
        zoneId = json.load(f)["zone"]
    os.makedirs(certDir, exist_ok=True)
    shutil.copyfile(os.path.join(dataDir, "ca.pem"), os.path.join(certDir, "ca.pem"))
    now = datetime.now(timezone.utc)
    step = (count + workers - 1) // workers
    jobs = [
        (dataDir, certDir, start, min(count, start + step), zoneId, now)
        for start in range(0, count, step)
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        records = [record for chunk in pool.map(_issue, jobs) for record in chunk]

    # Enrol them as pairing would, in one transaction (the hub may be running;
    # the store is in WAL mode).
    store = SQLiteHubStore(os.path.join(dataDir, "hub.db"))
    enrolled = now.timestamp()
    db = store._db
    db.execute("BEGIN")
    for deviceId, name, serial, notAfter in records:
        store.putDevice(DeviceRecord(deviceId, name, serial, enrolled, notAfter))
    db.execute("COMMIT")
    store.close()
    return {"zone": zoneId, "count": len(records), "ca": os.path.join(certDir, "ca.pem")}
