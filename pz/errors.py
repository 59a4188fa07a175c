# -*- test-case-name: tests.pz.test_wire -*-
"""
Stable error codes.

Every refusal that crosses the wire, reaches the admin CLI or is logged
carries one of these codes and a sentence.  Scripts and other
implementations match on the code, people read the sentence; neither ever
sees a traceback.
"""

__all__ = ["ZoneError", "CODES"]

#: Every code the zone uses, with what it means.  Kept in one table so the
#: documentation and the tests can check that nothing invents a new one
#: silently.
CODES = {
    "BAD_FRAME": "the frame is not one UTF-8 JSON object",
    "BAD_ENVELOPE": "the JSON object is not a valid message envelope",
    "FRAME_TOO_LARGE": "the frame is longer than the configured limit",
    "UNKNOWN_MESSAGE": "the message name is not one this end handles",
    "UNKNOWN_DESTINATION": "no device of this zone has that id",
    "DEVICE_OFFLINE": "the destination device is not connected",
    "QUEUE_FULL": "the hub already keeps as many messages as it may for that offline device",
    "NOT_AUTHORISED": "the sender may not send this message here",
    "CSRF_REQUIRED": "the request changes something and lacks the session's X-CSRF-Token header",
    "TOO_MANY_ERRORS": "the peer sent too many bad messages and was dropped",
    "COOLING_OFF": "the device was recently dropped for breaking the rules; reconnect later",
    "TOO_SLOW": "the peer did not read what was sent to it and was dropped",
    "TIMEOUT": "no answer came in time",
    "NOT_CONNECTED": "this device is not connected to its hub",
    "CERT_REQUIRED": "a zone device certificate is needed for this",
    "CERT_UNTRUSTED": "the certificate was not issued by this zone's CA",
    "CERT_EXPIRED": "the certificate is not valid at this time",
    "CERT_REVOKED": "the certificate has been revoked",
    "CERT_INVALID": "the certificate or request is not acceptable",
    "RENEWAL_NOT_DUE": "the certificate is not in its renewal window yet",
    "CRL_INVALID": "the revocation list is not signed by the zone CA",
    "HUB_UNTRUSTED": "the hub's certificate does not match the pairing code",
    "TOKEN_INVALID": "the pairing code is not known to this hub",
    "TOKEN_USED": "the pairing code has already been used",
    "TOKEN_EXPIRED": "the pairing code has expired",
    "RATE_LIMITED": "too many messages or attempts in too short a time; wait and try again",
    "NAME_TAKEN": "a device of that name is already enrolled",
    "BAD_REQUEST": "the request is malformed",
    "NOT_RUNNING": "the process is not running",
    "INTERNAL": "an unexpected error; see the log",
    "SYNC_BAD_PATH": "the item path is not one of the zone's item locations, or leads through a symbolic link",
    "SYNC_BAD_MESSAGE": "the synchronisation message is malformed",
    "SYNC_HASH_MISMATCH": "the data does not match its hash",
    "SYNC_NOT_ASKED": "the data is for a chunk that was not asked for",
    "SYNC_TOO_LARGE": "the item is larger than the configured limit",
    "SYNC_BAD_ITEM": "the item's content is not valid for its kind",
    "SYNC_ONE_WAY": "this item flows only from the hub; a device may not update it",
    "SYNC_NOT_SELECTED": "the item's category is not synchronised with this device",
    "SYNC_CONFLICT": "the update lost a conflict; the winning version follows",
    "SYNC_PENDING": "this side holds an unsent change to the item; the hub decides",
    "SYNC_ITEMS_MISSING": "the zone's items folder is missing, not a folder or empty",
    "SYNC_BUSY": "too many transfers in flight; the item is queued",
    "ZONE_UNTRUSTED": "the zone is not, or no longer, trusted by the other zone",
    "ZONE_UNREACHABLE": "the link to that friend zone's hub is not up",
    "EXCHANGE_REFUSED": "the peer-to-peer certificate exchange was refused: no valid "
                        "peer-exchange code was presented in time",
    "NO_SUCH_SERVICE": "the device offers no service of that name",
    "NO_SUCH_METHOD": "the service has no method of that name",
    "BAD_ARGUMENTS": "the call's arguments do not fit the method",
    "REMOTE_ERROR": "the service failed while running the call",
    "DENIED": "the zone's policy does not let the caller do this (the message names the rule)",
    "POLICY_INVALID": "the policy does not parse or uses what the policy language lacks; the previous policy stays in force",
}


class ZoneError(Exception):
    """
    A refusal with a stable code and a human sentence.

    @ivar code: one of L{CODES}.
    @ivar message: what went wrong, for a person.
    """

    def __init__(self, code: str, message: str = "") -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.message = message or CODES[code]
        super().__init__(code, self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
