# -*- test-case-name: tests.pzp.test_meshanswer,tests.e2e.test_mesh -*-
"""
Answering a pending Mesh connection request, on an administration device.

One code path for the two ways a person answers: C{pzctl --pzp-dir DIR
mesh approve|refuse REQUEST} on the device (L{pzp.meshcommands}), and the
admin page's button, which the hub passes to the device's running proxy
when it runs with C{twistd pzp --mesh-approvals} (L{pzp.meshapprovals}).
Either way the account's administration keys never leave the device: the
request is found and verified here, the answer (a ConnectionResult) is
signed here with the account's online key and sent to the portal
(ConnectComplete), and an accepted device is added to the personal
profile, which is signed and published from here too.
"""

from datetime import datetime, timezone
from typing import Callable, Optional

from pz.errors import ZoneError

__all__ = [
    "ANSWERS", "administration", "answerRequest", "asZoneError", "meshHTTPClient", "portalClient",
]

#: The two answers, as the Mesh reference draft's ConnectionResult says them.
ANSWERS = ("Accepted", "Refused")

#: How the portal's status codes are reported as zone error codes.
_CODES = {
    303: "UNKNOWN_DESTINATION",
    307: "UNKNOWN_DESTINATION",
    400: "BAD_REQUEST",
    401: "NOT_AUTHORISED",
    404: "UNKNOWN_DESTINATION",
    405: "BAD_REQUEST",
    409: "NAME_TAKEN",
    413: "BAD_REQUEST",
}

#: The shortest prefix of a request's UDF that names it.
MIN_PREFIX = 5


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _tlsRefusal(error, portal: Optional[str], ca: Optional[str]) -> ZoneError:
    """
    Say in one sentence why no TLS connection with the portal could be
    made, and what to pass: C{error} is the OpenSSL or C{service_identity}
    error the connection failed with.
    """
    from OpenSSL import SSL

    if isinstance(error, SSL.Error):
        reasons = [
            str(detail[-1]) for detail in (error.args[0] if error.args else [])
            if isinstance(detail, tuple) and detail
        ]
        if "certificate verify failed" not in reasons:
            said = ", ".join(reasons) or "the handshake failed"
            return ZoneError("CERT_UNTRUSTED", f"no TLS connection with the portal at {portal}: {said}")
        if ca is None:
            return ZoneError(
                "CERT_UNTRUSTED",
                f"the portal at {portal} presented a certificate this machine does not trust; "
                "pass --ca FILE, the CA that signed it (for a hub's portal: --ca HUB_DIR/ca.pem)",
            )
        return ZoneError(
            "CERT_UNTRUSTED",
            f"the portal at {portal} presented a certificate that the CA in {ca} did not sign",
        )
    return ZoneError(
        "CERT_UNTRUSTED", f"the certificate of the portal at {portal} is not for its host: {error}"
    )


def asZoneError(failure, portal: Optional[str], ca: Optional[str] = None) -> ZoneError:
    """
    Say what went wrong in pzctl's terms: a stable code and a sentence.

    @param failure: the failure a portal transaction ended with.
    @param portal: the portal's URL, and C{ca} the CA file trusted, for
        the sentence.
    """
    from OpenSSL import SSL
    from service_identity import VerificationError
    from twisted.internet.defer import CancelledError
    from twisted.internet.error import ConnectError, DNSLookupError
    from twisted.web.client import (
        RequestTransmissionFailed,
        ResponseFailed,
        ResponseNeverReceived,
    )

    from pz.mesh.client import MeshPortalError
    from pz.mesh.errors import MeshError, MeshSignatureError
    from pz.mesh.messages import STATUS_NAMES

    error = failure.value
    if isinstance(error, ZoneError):
        return error
    if isinstance(error, MeshPortalError):
        name = STATUS_NAMES.get(error.status, "")
        return ZoneError(
            _CODES.get(error.status, "INTERNAL"),
            f"the portal answered {error.status} {name}: {error.message}".replace("  ", " "),
        )
    if isinstance(error, MeshSignatureError):
        return ZoneError("NOT_AUTHORISED", error.message)
    if isinstance(error, MeshError):
        return ZoneError("BAD_REQUEST", error.message)
    if isinstance(error, (ConnectError, DNSLookupError)):
        return ZoneError("NOT_RUNNING", f"no portal answers at {portal}: {error}")
    if isinstance(error, CancelledError):
        return ZoneError("TIMEOUT", f"the portal at {portal} did not answer in time")
    if isinstance(error, (ResponseFailed, ResponseNeverReceived, RequestTransmissionFailed)):
        # Twisted wraps what went wrong with the connection in these.
        for reason in error.reasons:
            if isinstance(reason.value, (SSL.Error, VerificationError)):
                return _tlsRefusal(reason.value, portal, ca)
        said = "; ".join(str(reason.value) or type(reason.value).__name__ for reason in error.reasons)
        return ZoneError("NOT_RUNNING", f"the portal at {portal} did not answer: {said}")
    return ZoneError("INTERNAL", f"{type(error).__name__}: {error}")


def administration(device) -> tuple:
    """
    The account, master keys and held personal profile of an
    administration device.

    @param device: the device's L{pz.mesh.device.MeshDevice}.
    @raise ZoneError: C{BAD_REQUEST} for a device of no account,
        C{NOT_AUTHORISED} for one that holds no administration key.
    """
    account = device.account()
    if account is None:
        raise ZoneError(
            "BAD_REQUEST", "this device belongs to no Mesh account yet (mesh create or connect)"
        )
    master = device.master()
    if master is None or device.personal() is None:
        raise ZoneError(
            "NOT_AUTHORISED",
            f"this device holds no administration key of account {account['account']}",
        )
    return account, master, device.personal()


def meshHTTPClient(reactor, caFile: Optional[str], insecure: bool = False):
    """
    A treq client for a portal: trusting C{caFile} only, or anything with
    C{insecure}, or the system's roots; one connection per request.
    """
    from treq.client import HTTPClient
    from twisted.internet.ssl import Certificate
    from twisted.web.client import Agent, HTTPConnectionPool
    from twisted.web.iweb import IPolicyForHTTPS
    from zope.interface import implementer

    from pz.tls import enrolmentClientOptions, httpsClientPolicy

    if caFile:
        try:
            with open(caFile, "rb") as f:
                root = Certificate.loadPEM(f.read())
        except Exception as e:
            raise ZoneError("BAD_REQUEST", f"cannot read the CA certificate {caFile}: {e}")
        policy = httpsClientPolicy(root)
    elif insecure:
        @implementer(IPolicyForHTTPS)
        class _TrustAnything:
            def creatorForNetloc(self, hostname, port):
                return enrolmentClientOptions(hostname.decode("ascii"))

        policy = _TrustAnything()
    else:
        policy = httpsClientPolicy()
    pool = HTTPConnectionPool(reactor, persistent=False)
    return HTTPClient(Agent(reactor, contextFactory=policy, pool=pool))


def portalClient(device, reactor, timeout: float):
    """
    A L{pz.mesh.client.MeshClient} for the portal of the device's account,
    trusting the CA remembered with it.
    """
    from pz.mesh.client import MeshClient

    account = device.account() or {}
    portal = account.get("portal")
    if not portal:
        raise ZoneError("BAD_REQUEST", "this device remembers no portal for its Mesh account")
    try:
        return MeshClient(portal, meshHTTPClient(reactor, account.get("ca")),
                          timeout=timeout, reactor=reactor)
    except ValueError as e:
        raise ZoneError("BAD_REQUEST", str(e))


async def answerRequest(device, clientOf: Callable[[], object], wanted: str, answer: str,
                        now: Callable[[], datetime] = _now) -> tuple:
    """
    Answer the request of the device whose UDF is (or starts with, at
    least L{MIN_PREFIX} characters) C{wanted}, pending on the account this
    administration device holds the keys of: find it, verify its
    signature, sign the ConnectionResult with the account's online key
    and send it (ConnectComplete); for C{Accepted}, publish the personal
    profile with the device added and keep it.

    @param device: this device's L{pz.mesh.device.MeshDevice}.
    @param clientOf: returns the L{pz.mesh.client.MeshClient} of the
        account's portal (called once the device is known to administer an
        account, so that a device of no account is told that first).
    @param answer: C{Accepted} or C{Refused}.
    @return: C{(data, text)}: C{data} is C{{"account", "device", "result",
        "name"}} (and C{zone_device}, the zone device id an accepted device
        was enrolled as by a hub's portal); C{text} says it in a sentence.
    @raise ZoneError: C{UNKNOWN_DESTINATION} for no such request,
        C{BAD_REQUEST} for a prefix matching several, and the refusals of
        L{administration}; a portal's refusal comes as the client's error.
    """
    from pz.mesh.builders import makePersonalProfile
    from pz.mesh.device import nextUpdate
    from pz.mesh.model import ConnectionResult
    from pz.mesh.signing import sign, unverifiedPayload, verifyConnectionRequest

    if answer not in ANSWERS:
        raise ZoneError("BAD_REQUEST", "a Mesh request is answered Accepted or Refused")
    account, master, held = administration(device)
    client = clientOf()
    name = account["account"]
    wanted = wanted.strip().upper()
    pending = await client.connectPendingAll(name)
    matches = [
        p for p in pending
        if p.Identifier == wanted
        or (len(wanted) >= MIN_PREFIX and (p.Identifier or "").startswith(wanted))
    ]
    if not matches:
        raise ZoneError("UNKNOWN_DESTINATION", f"no request from {wanted} waits on account {name}")
    if len(matches) > 1:
        raise ZoneError("BAD_REQUEST", f"{wanted} matches {len(matches)} requests; give more of it")
    [signed] = matches
    request = verifyConnectionRequest(signed)
    result = sign(
        ConnectionResult(ParentUDF=request.ParentUDF, Device=request.Device, Result=answer),
        master.online[0],
    )
    await client.connectComplete(name, result)
    data = {"account": name, "device": signed.Identifier, "result": answer,
            "name": unverifiedPayload(request.Device).Description}
    if answer == "Accepted":
        profile = unverifiedPayload(held)
        updated = sign(
            makePersonalProfile(
                profile.SignedMasterProfile,
                devices=(*(profile.Devices or ()), request.Device),
                applications=profile.Applications or (),
                updated=nextUpdate(now(), profile.Updated), names=profile.Names,
            ),
            master.online[0],
        )
        await client.publish(updated)
        device.savePersonal(updated)
        status = await client.connectStatus(name, signed.Identifier)
        if status.Zone is not None:
            data["zone_device"] = status.Zone.Device
    verb = "approved" if answer == "Accepted" else "refused"
    return data, f"{verb} device {signed.Identifier} ({data['name']}) for account {name}"
