# -*- test-case-name: tests.pzp.test_meshapprovals -*-
"""
The administration device's side of approving Mesh connection requests
from the hub's admin page (C{twistd pzp --mesh-approvals}, off by
default).

Once its hub link is registered, the device tells the hub which Mesh
accounts it holds the administration keys of (C{meshAccounts}, sent again
on every new link, so an account made with C{pzctl mesh create} while the
proxy runs is announced from its next connection on).  When a signed-in
administrator answers a pending request on the admin page, the hub asks
over that link (C{meshAnswer}); the link lets only the hub ask
(L{pzp.hublink}; a peer link refuses, L{pzp.peerlink}), and this worker
answers only for an account it holds the keys of, with the code of C{pzctl
mesh approve|refuse} (L{pzp.meshanswer.answerRequest}): the request is
verified, and the answer signed, here.  The keys never leave the device.
"""

from twisted.internet.defer import DeferredLock, ensureDeferred, fail
from twisted.logger import Logger

from pz.errors import ZoneError
from pz.mesh.device import MeshDevice
from pz.mesh.messages import normaliseAccount
from pzp.meshanswer import ANSWERS, administration, answerRequest, asZoneError, portalClient

__all__ = ["MeshApprovals", "PORTAL_TIMEOUT"]

#: Seconds each portal transaction of an answer may take.
PORTAL_TIMEOUT = 20.0


class MeshApprovals:
    """
    Answers the hub's Mesh requests for the accounts this device
    administers, one at a time (each answer rewrites the held personal
    profile).

    @param dataDir: the device's data directory (its C{mesh/} holds the
        keys).
    @param zoneId: the zone's id: where the announcement goes.
    @param clientOf: returns the L{pz.mesh.client.MeshClient} of the
        account's portal; by default one for the portal and CA the account
        remembers.
    """

    _log = Logger()

    def __init__(self, dataDir: str, reactor, zoneId: str, clientOf=None,
                 timeout: float = PORTAL_TIMEOUT) -> None:
        self._device = MeshDevice(dataDir)
        self._zoneId = zoneId
        self._clientOf = clientOf or (lambda: portalClient(self._device, reactor, timeout))
        self._lock = DeferredLock()

    def accounts(self) -> list:
        """
        The accounts this device holds administration keys of (none, or
        the one it administers).
        """
        try:
            account, _, _ = administration(self._device)
        except ZoneError:
            return []
        return [normaliseAccount(account["account"])]

    def linkUp(self, link) -> None:
        """
        The hub registered this device: say which accounts it answers for.
        """
        accounts = self.accounts()
        if not accounts:
            self._log.warn("--mesh-approvals is on, but this device holds no Mesh administration "
                           "key (pzctl --pzp-dir DIR mesh create): it answers for no account")
        link.sendMessage(self._zoneId, {"status": "meshAccounts", "accounts": accounts})

    def linkLost(self) -> None:
        """
        The hub link went; the next one announces again.
        """

    def answer(self, account: str, request: str, answer: str):
        """
        Answer the request of device C{request} pending on C{account}.

        @param answer: C{Accepted} or C{Refused}.
        @return: a Deferred firing with C{{"account", "device", "result",
            "name"}} (and C{zone_device}), or failing with a L{ZoneError}:
            C{NOT_AUTHORISED} for an account this device holds no key of,
            C{BAD_REQUEST} for another answer, or what answering met.
        """
        if answer not in ANSWERS:
            return fail(ZoneError("BAD_REQUEST", "a Mesh request is answered Accepted or Refused"))
        if normaliseAccount(account) not in self.accounts():
            return fail(ZoneError(
                "NOT_AUTHORISED",
                f"this device holds no administration key of Mesh account {account}"))

        def answering():
            return ensureDeferred(answerRequest(self._device, self._clientOf, request, answer))

        def answered(result):
            data, text = result
            self._log.info("the hub asked, and this device {text}", text=text)
            return data

        def failed(failure):
            remembered = self._device.account() or {}
            error = asZoneError(failure, remembered.get("portal"), remembered.get("ca"))
            self._log.info("the hub asked to answer Mesh request {request}: {code}: {message}",
                           request=request, code=error.code, message=error.message)
            raise error

        return self._lock.run(answering).addCallbacks(answered, failed)
