# -*- test-case-name: tests.mesh.portal.test_zone -*-
"""
The hub's side of the Mesh route into the zone.

When the portal runs inside C{twistd pzh} and an administration device
accepts a new device (ConnectComplete), the portal asks L{HubZoneEnroller}
for the device's zone certificate. The checks that stand in for a pairing
code's token have been made by then: the device signed its request and the
certificate request inside it, the person approving compared the device's
UDF and signed the acceptance with an administration key of the profile.
What is left is the zone's own rule, the same as for pairing codes: one
unrevoked device per name. The certificate is recorded like any other
device's, so revocation, renewal and the device list treat a device that
came in this way exactly like a paired one.
"""

from cryptography import x509
from twisted.logger import Logger
from zope.interface import implementer

from pz import pki
from pz.errors import ZoneError
from pzh.enrolment import validDeviceName
from pzh.portal.interfaces import IZoneEnroller
from pzh.store import DeviceRecord

__all__ = ["HubZoneEnroller"]


@implementer(IZoneEnroller)
class HubZoneEnroller:
    """
    Issues zone certificates for devices the Mesh portal accepted.

    @param hub: the L{pzh.hub.Hub}: its zone, store, authority and clock.
    """

    log = Logger()

    def __init__(self, hub) -> None:
        self._hub = hub

    def enrolFromMesh(self, deviceName: str, csrPEM: str, deviceUDF: str) -> dict:
        """
        See L{IZoneEnroller.enrolFromMesh}.
        """
        hub = self._hub
        if not validDeviceName(deviceName):
            raise ZoneError(
                "BAD_REQUEST",
                "device names are 1-63 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit",
            )
        deviceId = hub.enrolment.deviceId(deviceName)
        existing = hub.store.getDevice(deviceId)
        if existing is not None and existing.revoked is None:
            raise ZoneError(
                "NAME_TAKEN", f"device {deviceId} is already enrolled; revoke it or choose another name"
            )
        try:
            csr = x509.load_pem_x509_csr(csrPEM.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ZoneError("CERT_INVALID", "the certificate request is not a PEM CSR")
        try:
            cert = hub.authority.issueDevice(csr, deviceId)
        except pki.CertificateError as e:
            raise ZoneError("CERT_INVALID", e.message)
        hub.store.putDevice(DeviceRecord(
            id=deviceId,
            name=deviceName,
            serial=cert.serial_number,
            enrolled=hub.clock.seconds(),
            notAfter=cert.not_valid_after_utc.timestamp(),
        ))
        hub.events.emit("device", deviceId)
        self.log.info("enrolled {device} through the Mesh portal (device profile {udf})",
                      device=deviceId, udf=deviceUDF)
        zone = hub.zone
        return {
            "certificate": pki.certificatePEM(cert).decode("ascii"),
            "ca": zone.caPEM.decode("ascii"),
            "crl": hub.authority.crlPEM.decode("ascii"),
            "hub": f"[{zone.host}]:{zone.port}" if ":" in zone.host else f"{zone.host}:{zone.port}",
            "device": deviceId,
            "zone": zone.zoneId,
        }
