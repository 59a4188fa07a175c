# -*- test-case-name: tests.pzh.test_meshanswerers -*-
"""
Answering Mesh connection requests from the admin page, by asking an
administration device.

The portal takes an answer to a connection request only when an
administration key of the account signed it, and those keys stay on the
account's administration devices: the hub holds none.  A device whose
proxy runs with C{twistd pzp --mesh-approvals} says, once its hub link is
registered (and again on every new link), which accounts it holds keys of
(C{meshAccounts}).  When a signed-in administrator answers a pending
request on the admin page, the hub asks one such device over its link
(C{meshAnswer}, a request with an id); the device checks, signs and
completes it with the same code as C{pzctl mesh approve|refuse}, and
answers (C{meshAnswered}, or an C{error}, naming the request's id).  The
hub waits a bounded time on its clock; what a link said is forgotten when
it closes.
"""

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger

from pz.errors import ZoneError
from pz.link import NoAnswer
from pz.mesh.messages import normaliseAccount

__all__ = ["MeshAnswerers", "ANSWER_TIMEOUT", "MAX_ACCOUNTS", "MAX_ACCOUNT_LENGTH"]

#: Seconds the hub waits for an administration device's answer.
ANSWER_TIMEOUT = 30.0

#: Accounts one device may say it answers for.
MAX_ACCOUNTS = 32

#: The longest account name (the portal takes 64 characters).
MAX_ACCOUNT_LENGTH = 64

#: What the page says, and what the device is sent.
_RESULTS = {"approve": "Accepted", "refuse": "Refused"}


def _howToAnswer(account: str, request: str, answer: str) -> str:
    return (f"no administration device of Mesh account {account} is connected to answer for it: "
            "run its proxy with twistd pzp --mesh-approvals (it must hold the account's "
            f"administration keys), or on it run pzctl --pzp-dir DIR mesh {answer} {request}")


class MeshAnswerers:
    """
    The connected devices that answer Mesh requests, by account, and the
    asking.

    @param registry: the hub's L{pzh.registry.Registry}: only a device's
        live link is asked.
    @param timeout: seconds to wait for a device's answer (on the links'
        clock, the hub's).
    """

    _log = Logger()

    def __init__(self, registry, timeout: float = ANSWER_TIMEOUT) -> None:
        self._registry = registry
        self.timeout = timeout
        # deviceId -> (link, frozenset of accounts)
        self._answering: dict = {}

    def announced(self, link, accounts: list) -> None:
        """
        C{link}'s device answers for C{accounts} (account names), and for
        no other: what it said before is replaced.

        @raise ZoneError: C{BAD_REQUEST} for a list that is not a few
            account names; what the device said before stays.
        """
        if len(accounts) > MAX_ACCOUNTS:
            raise ZoneError("BAD_REQUEST",
                            f"meshAccounts: at most {MAX_ACCOUNTS} accounts, not {len(accounts)}")
        names = set()
        for name in accounts:
            if not isinstance(name, str) or not 0 < len(name) <= MAX_ACCOUNT_LENGTH:
                raise ZoneError("BAD_REQUEST", "meshAccounts: each account must be a name of "
                                               f"1 to {MAX_ACCOUNT_LENGTH} characters")
            names.add(normaliseAccount(name))
        if names:
            self._answering[link.deviceId] = (link, frozenset(names))
            self._log.info("{device} answers Mesh requests for {accounts}",
                           device=link.deviceId, accounts=", ".join(sorted(names)))
        else:
            self._answering.pop(link.deviceId, None)

    def linkUp(self, link) -> None:
        """
        A device registered a new link: what its older link said goes
        (the new one says it again).
        """
        held = self._answering.get(link.deviceId)
        if held is not None and held[0] is not link:
            del self._answering[link.deviceId]

    def linkDown(self, link) -> None:
        """
        C{link} closed: its device answers for nothing until it says so
        again on a new link.
        """
        held = self._answering.get(link.deviceId)
        if held is not None and held[0] is link:
            del self._answering[link.deviceId]

    def answerers(self, account: str) -> list:
        """
        The ids of the connected devices that answer for C{account}, sorted.
        """
        account = normaliseAccount(account)
        return sorted(
            deviceId for deviceId, (link, accounts) in self._answering.items()
            if account in accounts and self._registry.get(deviceId) is link
        )

    def ask(self, account: str, request: str, answer: str) -> Deferred:
        """
        Have an administration device of C{account} answer the pending
        request of the device whose UDF is C{request}.

        @param answer: C{approve} or C{refuse}.
        @return: a Deferred firing with C{{"account", "device", "result",
            "name"}} (and C{zone_device} for a device the hub's portal
            enrolled), or failing with a L{ZoneError}: C{NOT_CONNECTED}
            when no such device is connected or it went before answering,
            C{TIMEOUT} when it did not answer in time, or the device's own
            refusal (its code and message).
        """
        if answer not in _RESULTS:
            return fail(ZoneError("BAD_REQUEST", "a Mesh request is answered approve or refuse"))
        devices = self.answerers(account)
        if not devices:
            return fail(ZoneError("NOT_CONNECTED", _howToAnswer(account, request, answer)))
        deviceId = devices[0]
        link = self._registry.get(deviceId)
        result = _RESULTS[answer]
        self._log.info("asking {device} to {answer} Mesh request {request} of account {account}",
                       device=deviceId, answer=answer, request=request, account=account)
        d = link.request(deviceId, {"status": "meshAnswer", "account": normaliseAccount(account),
                                    "request": request, "answer": result},
                         timeout=self.timeout)

        def answered(payload: dict) -> dict:
            fields = {key: payload.get(key) for key in ("account", "device", "result", "name")}
            if (fields["device"] != request or fields["result"] != result
                    or not isinstance(fields["account"], str)
                    or not isinstance(fields["name"], (str, type(None)))):
                raise ZoneError("INTERNAL", f"the administration device {deviceId} answered "
                                            "something else than the request it was asked")
            zoneDevice = payload.get("zone_device")
            if isinstance(zoneDevice, str):
                fields["zone_device"] = zoneDevice
            return fields

        def failed(failure):
            error = failure.value
            if isinstance(error, NoAnswer) and error.code == "TIMEOUT":
                raise ZoneError("TIMEOUT", (
                    f"the administration device {deviceId} did not answer within "
                    f"{self.timeout:g} s; it may still answer: look at the pending requests "
                    "again"))
            if isinstance(error, NoAnswer):
                raise ZoneError("NOT_CONNECTED", (
                    f"the administration device {deviceId} disconnected before it answered; "
                    "look at the pending requests again"))
            if isinstance(error, ZoneError):
                raise ZoneError(error.code, f"{deviceId}: {error.message}")
            return failure

        return d.addCallbacks(answered, failed)
