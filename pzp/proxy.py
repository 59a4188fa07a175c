# -*- test-case-name: tests.pzp.test_proxy -*-
"""
The proxy's object graph and the actions its machines call.

L{Proxy} is the one place that builds things: the Virgin machine and the
enrolment connection while the device is not in a zone, then the Hub
machine, the reconnecting hub link and the inbox.  Protocols and the
reconnecting service feed the machines; the machines call back into the
action methods here.
"""

import random
from datetime import datetime, timezone

import attrs
from twisted.application import service
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from zope.interface import implementer

from pz import pki
from pz.errors import ZoneError
from pz.ids import checkDeviceId
from pz.tls import enrolmentClientOptions, pzpClientOptions
from pzp.enrol import EnrolmentProtocol
from pzp.hublink import HubLinkProtocol, RenewedError, RevokedError
from pzp.inbox import MAX_BYTES, MAX_MESSAGES, MAX_TEXT, Inbox
from pzp.interfaces import IHubLinkOwner
from pzp.machine import (
    HubCore, HubMachine, IHubActions, IVirginActions, VirginCore, VirginMachine,
)
from pzp.zonedir import Credentials, ZoneDirectory

__all__ = ["Proxy", "ProxySettings"]

#: Enrolment failures worth retrying: the hub may just not be up yet.
_RETRYABLE = frozenset({"NOT_CONNECTED", "TIMEOUT"})

#: Hub refusals that reconnecting cannot cure: the certificate is not one
#: this hub will take (expired past the grace period, another zone's, not a
#: device's), or the hub is not this zone's.
_HOPELESS = frozenset({"CERT_EXPIRED", "CERT_UNTRUSTED", "CERT_INVALID", "HUB_UNTRUSTED"})


@attrs.frozen
class ProxySettings:
    """
    The proxy's tunables.

    @ivar keepalive: seconds between pings on the hub link; a hub silent
        for three of them is taken as gone.
    @ivar inboxMessages: the most messages the inbox keeps.
    @ivar inboxBytes: the largest the inbox file grows, in bytes.
    """

    keepalive: float = 30.0
    requestTimeout: float = 10.0
    enrolTimeout: float = 30.0
    initialBackoff: float = 0.5
    maxBackoff: float = 30.0
    inboxMessages: int = MAX_MESSAGES
    inboxBytes: int = MAX_BYTES


def _asZoneError(failure) -> ZoneError:
    if isinstance(failure.value, ZoneError):
        return failure.value
    return ZoneError("NOT_CONNECTED", failure.getErrorMessage())


@implementer(IStreamClientEndpoint)
class _ObservedEndpoint:
    """
    Tells the Hub machine when the reconnecting service starts an attempt
    and when the attempt fails before any protocol exists.  The real
    endpoint is made per attempt, so a renewed certificate is used from the
    next connection on.
    """

    def __init__(self, makeEndpoint, proxy) -> None:
        self._makeEndpoint = makeEndpoint
        self._proxy = proxy

    def connect(self, factory):
        self._proxy.hubInputs.attempt()

        def failed(failure):
            self._proxy.hubInputs.failed(_asZoneError(failure))
            return failure

        return self._makeEndpoint().connect(factory).addErrback(failed)


@implementer(IVirginActions, IHubActions, IHubLinkOwner)
class Proxy(service.MultiService):
    """
    One device's proxy.

    @ivar mode: C{"Virgin"} or C{"Hub"}.
    @ivar lastError: the last L{ZoneError} an attempt ended with, if any.
    """

    _log = Logger()

    def __init__(self, dataDir: str, reactor, deviceName: str, pairCode=None,
                 settings: ProxySettings = ProxySettings(), giveUp=None) -> None:
        """
        @param giveUp: called with a L{ZoneError} when the proxy cannot do
            its job whatever it retries (a refused pairing code, a hub that
            is not the zone's, no code and no zone): C{twistd pzp} exits.
        """
        super().__init__()
        self._giveUp = giveUp or (lambda error: None)
        self.zoneDir = ZoneDirectory(dataDir)
        self.clock = self._reactor = reactor
        self.deviceName = deviceName
        self.settings = settings
        self._pairCode = pairCode
        self._key = None
        self._virginAttempts = 0
        self._retry = None
        self.mode = "Virgin"
        self.lastError = None
        self.credentials = None
        self.inbox = None
        self.peers: dict = {}
        self._peerPages: dict = {}
        self.virginInputs = VirginMachine(VirginCore(self))
        self.hubInputs = None
        self._client = None
        self._renewal = None

    def startService(self) -> None:
        super().startService()
        if self.zoneDir.enrolled():
            if self._pairCode is not None:
                self._log.info("already enrolled in {zone}; ignoring the pairing code",
                               zone=self.zoneDir.marker().get("zone"))
            self._startHub()
        elif self._pairCode is not None:
            self.virginInputs.start()
        else:
            self.lastError = ZoneError(
                "BAD_REQUEST", "this device is in no zone yet: start it with --pair CODE "
                "(get a code with: pzctl --hub-dir DIR pair --device NAME)")
            self._log.warn("{message}", message=self.lastError.message)
            self._giveUp(self.lastError)

    def stopService(self):
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._cancelRenewal()
        return super().stopService()

    # --- Virgin mode actions ------------------------------------------------

    def connect(self) -> None:
        code = self._pairCode
        if self._key is None:
            self._key = pki.newKey()
        protocol = EnrolmentProtocol(code, self._key, self.deviceName, self.clock,
                                     self.settings.enrolTimeout)
        endpoint = wrapClientTLS(
            enrolmentClientOptions(code.host),
            HostnameEndpoint(self._reactor, code.host, code.port,
                             timeout=self.settings.enrolTimeout),
            clock=self._reactor,
        )
        self._log.info("enrolling as {name} with the hub at {host}:{port}",
                       name=self.deviceName, host=code.host, port=code.port)
        d = connectProtocol(endpoint, protocol)
        d.addCallback(lambda _: protocol.result)
        d.addCallbacks(self.virginInputs.connected,
                       lambda f: self.virginInputs.failed(_asZoneError(f)))

    def store(self, result) -> None:
        try:
            self.zoneDir.store(Credentials(
                zoneId=result.zoneId, deviceId=result.deviceId, hubHost=result.hubHost,
                hubPort=result.hubPort, key=self._key, cert=result.cert,
                caCert=result.caCert, crl=result.crl,
            ))
        except OSError as e:
            self.virginInputs.failed(ZoneError("INTERNAL", f"cannot store credentials: {e}"))
            return
        self._log.info("enrolled as {device}", device=result.deviceId)
        self._warnIfRenamed(result.deviceId)
        self.virginInputs.stored()

    def _warnIfRenamed(self, deviceId: str) -> None:
        """
        A pairing code is made for one device name, and the hub enrols
        under that name whatever the device asked for: say so loudly
        rather than let a different name pass unnoticed.
        """
        enrolledAs = deviceId.rsplit("/", 1)[-1]
        if enrolledAs != self.deviceName:
            self._log.warn(
                "enrolled as {device}, not {asked!r}: the pairing code was made for "
                "{name!r}, and the code's name is the one that counts. To use another name, "
                "revoke this device and pair it with a code made for that name.",
                device=deviceId, asked=self.deviceName, name=enrolledAs)

    def enterHub(self) -> None:
        self._key = None
        self._startHub()

    def enrolmentFailed(self, error) -> None:
        self.lastError = error
        if error.code in _RETRYABLE and self.running:
            self._virginAttempts += 1
            delay = min(self.settings.initialBackoff * 1.5 ** self._virginAttempts,
                        self.settings.maxBackoff) * (0.5 + random.random() / 2)
            self._log.info("enrolment attempt failed ({code}: {message}); retrying in {delay:.1f}s",
                           code=error.code, message=error.message, delay=delay)
            self._retry = self.clock.callLater(delay, self.virginInputs.start)
        else:
            self._log.error("enrolment refused: {code}: {message}. Ask the hub for a new "
                            "pairing code.", code=error.code, message=error.message)
            self._giveUp(error)

    # --- Hub mode -------------------------------------------------------------

    def _startHub(self) -> None:
        self.mode = "Hub"
        self.credentials = self.zoneDir.load()
        self.inbox = Inbox(self.zoneDir.file("inbox.jsonl"), self.clock,
                           self.settings.inboxMessages, self.settings.inboxBytes)
        self.hubInputs = HubMachine(HubCore(self))

        def makeEndpoint():
            creds = self.credentials
            return wrapClientTLS(
                pzpClientOptions(creds.caCert, creds.key, creds.cert, creds.hubHost),
                HostnameEndpoint(self._reactor, creds.hubHost, creds.hubPort, timeout=30),
                clock=self._reactor,
            )

        endpoint = _ObservedEndpoint(makeEndpoint, self)
        self._client = client = ClientService(
            endpoint,
            Factory.forProtocol(lambda: HubLinkProtocol(self)),
            retryPolicy=backoffPolicy(self.settings.initialBackoff, self.settings.maxBackoff),
            clock=self.clock,
            prepareConnection=self._prepareLink,
        )
        client.setServiceParent(self)

    def _prepareLink(self, protocol):
        """
        Wait for the hub's verdict on a new link and feed it to the Hub
        machine.  The reconnecting service then counts the link as made
        either way: a refused link closes right after and the service
        reconnects as for any lost link.  (Failing here instead would leave
        the service with no transition for the refused link's close.)  A
        refusal that retrying cannot cure stops the reconnecting.
        """
        def registered(link):
            self.hubInputs.connected(link)

        def refused(failure):
            error = _asZoneError(failure)
            if isinstance(error, RevokedError):
                self.hubInputs.revoked(error)
                return
            self.hubInputs.failed(error)
            if error.code in _HOPELESS and not isinstance(error, RenewedError):
                self._log.error("the hub refused this device: {code}: {message}. Not retrying; "
                                "restart the proxy once this is fixed.",
                                code=error.code, message=error.message)
                self._stopReconnecting()
                self._giveUp(error)

        return protocol.registered.addCallbacks(registered, refused)

    def _stopReconnecting(self) -> None:
        """
        Stop the reconnecting service once it has taken the current
        attempt's outcome in: stopped from inside prepareConnection, it
        would have no transition for the refused link's close.
        """
        client = self._client
        self.clock.callLater(0, lambda: client.parent and client.disownServiceParent())

    def linkUp(self, link) -> None:
        self.lastError = None
        self._log.info("connected to the hub as {device}", device=self.credentials.deviceId)
        self._scheduleRenewal(link)

    def cleanUp(self, reason) -> None:
        self._cancelRenewal()
        self.peers = {}
        self._log.info("lost the hub link: {why}", why=reason.getErrorMessage())

    def connectFailed(self, reason) -> None:
        self.lastError = reason
        self._log.info("could not reach the hub: {code}: {message}",
                       code=reason.code, message=reason.message)

    def leaveZone(self, evidence) -> None:
        """
        The hub, over the authenticated link, said this device is revoked.
        Erase the zone only if the CRL it sent verifies under our own zone
        CA and lists our own certificate; anything less is logged and
        ignored (the device keeps trying to reconnect).
        """
        creds = self.credentials
        crl = getattr(evidence, "crl", None)
        if crl is None or not pki.crlListsSerial(crl, creds.caCert, creds.cert.serial_number):
            self.lastError = ZoneError("CRL_INVALID", "a revocation notice without valid "
                                       "evidence was ignored; nothing was erased")
            self._log.warn("ignored a CERT_REVOKED whose CRL does not prove it: nothing erased")
            return
        zoneId = creds.zoneId
        self._stopReconnecting()
        self._cancelRenewal()
        self.zoneDir.wipe()
        self.mode = "Virgin"
        self.credentials = self.inbox = self.hubInputs = self._client = None
        self.peers = {}
        self._pairCode = None
        self.virginInputs = VirginMachine(VirginCore(self))
        self.lastError = ZoneError("CERT_REVOKED", f"this device was revoked from {zoneId}; "
                                   "its zone data was erased. Pair it again to rejoin.")
        self._log.warn("revoked from {zone}: zone data erased, back in Virgin mode", zone=zoneId)

    def crlReceived(self, crl) -> None:
        """
        A CRL pushed by the hub: kept only if our zone CA signed it and its
        number is higher than the one we hold.
        """
        creds = self.credentials
        try:
            pki.verifyCRL(crl, creds.caCert)
        except pki.CertificateError as e:
            self._log.warn("ignored a CRL: {message}", message=e.message)
            return
        number, held = pki.crlNumber(crl), pki.crlNumber(creds.crl)
        if number <= held:
            self._log.info("ignored CRL number {number}: already hold {held}",
                           number=number, held=held)
            return
        self.zoneDir.replaceCRL(crl)
        self.credentials = attrs.evolve(creds, crl=crl)
        self._log.info("stored CRL number {number}", number=number)

    # --- certificate renewal ------------------------------------------------

    def renewalTime(self) -> float:
        """
        When the current certificate should be renewed: once two thirds
        of its life (from issue, not counting the back-dating for clock
        skew) have passed.
        """
        cert = self.credentials.cert
        issued = (cert.not_valid_before_utc + pki.CLOCK_SKEW).timestamp()
        expires = cert.not_valid_after_utc.timestamp()
        return issued + (expires - issued) * 2 / 3

    def _scheduleRenewal(self, link) -> None:
        self._cancelRenewal()
        delay = max(0.0, self.renewalTime() - self.clock.seconds())

        def renewNow():
            self._renewal = None
            self.renew(link).addErrback(self._renewalFailed, link)

        self._renewal = self.clock.callLater(delay, renewNow)

    def _renewalFailed(self, failure, link) -> None:
        error = _asZoneError(failure)
        self.lastError = error
        expires = self.credentials.cert.not_valid_after_utc.timestamp()
        retry = max(10.0, (expires - self.clock.seconds()) / 10)
        self._log.warn("certificate renewal failed ({code}: {message}); retrying in {retry:.0f}s",
                       code=error.code, message=error.message, retry=retry)
        if link.connected:
            self._renewal = self.clock.callLater(retry, lambda: self._scheduleRenewal(link))

    def _cancelRenewal(self) -> None:
        timer = getattr(self, "_renewal", None)
        if timer is not None and timer.active():
            timer.cancel()
        self._renewal = None

    def renew(self, link):
        """
        Renew over C{link}: a new key, a CSR, the hub's new certificate
        checked and stored with the key in one atomic swap.  Fires when
        the new identity is in use for the next connection.
        """
        creds = self.credentials
        key = pki.newKey()
        csr = pki.makeCSR(key, creds.deviceId)
        d = link.request(creds.zoneId, {"status": "renew", "csr": pki.csrPEM(csr).decode("ascii")})

        def renewed(payload):
            try:
                cert = pki.loadCertificate(str(payload.get("certificate", "")).encode("ascii"))
                deviceId = pki.verifyPeerCertificate(cert, creds.caCert, creds.crl,
                                                     datetime.fromtimestamp(self.clock.seconds(), timezone.utc))
            except (pki.CertificateError, UnicodeEncodeError) as e:
                raise ZoneError("CERT_INVALID", f"the hub's renewed certificate is unusable: {e}")
            if deviceId != creds.deviceId or cert.public_key() != key.public_key():
                raise ZoneError("CERT_INVALID", "the renewed certificate is not for this device's new key")
            self.zoneDir.replaceIdentity(key, cert)
            self.credentials = attrs.evolve(self.credentials, key=key, cert=cert)
            self._log.info("renewed the certificate: serial {serial}, valid until {until}",
                           serial=format(cert.serial_number, "x"), until=cert.not_valid_after_utc)
            if link.registered.called and link.connected:
                self._scheduleRenewal(link)
            return cert

        return d.addCallback(renewed)

    def peersUpdated(self, update: dict) -> None:
        """
        Apply the hub's C{pzpUpdate}: a whole list of the devices connected
        now (C{devices}), or what changed since the last one (C{joined},
        C{left}).
        """
        valid = lambda entries: [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
        if "devices" in update:
            page, pages = update.get("page", 1), update.get("pages", 1)
            if page == 1:
                self._peerPages = {}
            self._peerPages.update({e["id"]: e for e in valid(update["devices"])})
            if page == pages:
                self.peers, self._peerPages = self._peerPages, {}
            return
        for deviceId in update.get("left", []):
            if isinstance(deviceId, str):
                self.peers.pop(deviceId, None)
        for entry in valid(update.get("joined", [])):
            self.peers[entry["id"]] = entry

    # --- what the admin side asks for -------------------------------------

    def status(self) -> dict:
        """
        Where this device is, for C{pzctl status}.
        """
        marker = self.zoneDir.marker() or {}
        extra = {}
        if self.mode == "Hub":
            state = self.hubInputs.state()
            creds = self.credentials
            hub = f"{creds.hubHost}:{creds.hubPort}"
            extra = {
                "certificate": {
                    "serial": format(creds.cert.serial_number, "x"),
                    "not_after": creds.cert.not_valid_after_utc.isoformat(timespec="seconds"),
                },
                "crl": {"number": pki.crlNumber(creds.crl)},
            }
        else:
            state = self.virginInputs.state()
            code = self._pairCode
            hub = f"{code.host}:{code.port}" if code is not None else None
        status = {
            "device": marker.get("device"),
            "zone": marker.get("zone"),
            "mode": self.mode,
            "state": state,
            "hub": hub,
            "peers": sorted(self.peers),
            **extra,
        }
        if self.lastError is not None:
            status["error"] = {"code": self.lastError.code, "message": self.lastError.message}
        return status

    def send(self, to: str, text: str):
        """
        Send a text message to another device of the zone; fires once it
        acknowledged receipt.
        """
        if not isinstance(to, str) or not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ZoneError("BAD_REQUEST", f"send needs a device id and a text of at most {MAX_TEXT} characters")
        checkDeviceId(to)
        if self.mode != "Hub":
            raise ZoneError("NOT_CONNECTED", "this device has not enrolled in a zone yet")
        return self.hubInputs.send(to, {"status": "message", "text": text})
