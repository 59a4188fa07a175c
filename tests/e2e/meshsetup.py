"""
A Mesh connection request waiting for the admin page, with real processes:
what the end-to-end test of approving from the admin API
(L{tests.e2e.test_meshapprovals}) and the browser tests build on.

L{meshApprovalScenario} starts the scenario; L{AdminSession} signs in to
the hub's admin side over HTTPS and calls its API.
"""

import json
import os
import signal
from http.cookiejar import CookieJar

import attrs
from treq.client import HTTPClient
from twisted.internet import defer, protocol, reactor

from tests.e2e.harness import PZCTL, PZCtlError, Twistd, Zone, pzctl, pzctlJSON, waitFor

__all__ = ["MeshScenario", "meshApprovalScenario", "AdminSession"]


class _Background(protocol.ProcessProtocol):
    """
    A C{pzctl} run left going while the test acts: C{done} fires with
    its JSON output, or fails with L{PZCtlError}; killed at the test's end
    if it still runs.
    """

    def __init__(self, testCase, args: list) -> None:
        self._out, self._err = [], []
        self.done = defer.Deferred()
        self._transport = reactor.spawnProcess(self, PZCTL, [PZCTL, *args],
                                               env=dict(os.environ))
        testCase.addCleanup(self._kill)

    def outReceived(self, data: bytes) -> None:
        self._out.append(data)

    def errReceived(self, data: bytes) -> None:
        self._err.append(data)

    def processEnded(self, reason) -> None:
        code = reason.value.exitCode
        err = b"".join(self._err).decode("utf-8", "replace")
        if code != 0:
            self.done.errback(PZCtlError(code, err))
        else:
            self.done.callback(json.loads(b"".join(self._out).decode("utf-8")))

    def _kill(self):
        if self.done.called:
            return None
        self._transport.signalProcess(signal.SIGKILL)
        ended = defer.Deferred()
        self.done.addBoth(lambda _: ended.callback(None))
        return ended


@attrs.frozen
class MeshScenario:
    """
    What L{meshApprovalScenario} started.

    @ivar zone: the L{tests.e2e.harness.Zone}: C{zone.hub} is the running
        C{twistd pzh}, C{zone.webPort} its HTTPS web port (the admin page
        and the Mesh portal), C{zone.hubDir} its data directory (its CA in
        C{ca.pem}).
    @ivar account: the Mesh account (C{alice}).
    @ivar admin: the administration device's name; its data directory
        (C{zone.deviceDir(admin)}) holds the account's keys in C{mesh/}
        and its zone identity in C{zone/}.
    @ivar adminProcess: its C{twistd pzp --mesh-approvals}
        (L{tests.e2e.harness.Twistd}), Hub/Connected, the hub knowing it
        answers for the account.
    @ivar device: the name of the device asking to join (C{tablet}); its
        data directory is C{zone.deviceDir(device)}.
    @ivar request: the pending request's id: the asking device's UDF, as
        C{GET /api/mesh/pending} lists it (C{id}) and C{POST
        /api/mesh/pending/ID/approve} takes it.
    @ivar connecting: a Deferred firing with the asking device's C{pzctl
        mesh connect --json} output once the request is answered (for
        C{Accepted}: C{result}, C{device}, C{zone_device}, C{hub}...), or
        failing with L{PZCtlError} (a refusal: exit status 1, C{Refused}
        in its stderr).  It waits up to 120 s for the answer.  After an
        approval, C{zone.startDevice(device)} starts the new device's proxy
        in the zone and C{zone.waitState(device, "Hub", "Connected")}
        waits for it.
    @ivar portal: the portal's URL (C{https://127.0.0.1:WEB_PORT/}).
    @ivar ca: the file of the CA the portal's certificate is signed by.
    """

    zone: Zone
    account: str
    admin: str
    adminProcess: Twistd
    device: str
    request: str
    connecting: defer.Deferred
    portal: str
    ca: str


@defer.inlineCallbacks
def meshApprovalScenario(testCase, account: str = "alice", admin: str = "admin",
                         device: str = "tablet"):
    """
    Start a zone whose admin page can approve a Mesh request, with one
    request waiting.

     1. C{twistd pzh} (zone C{alice@127.0.0.1}), hosting the Mesh portal on
        its HTTPS web port;
     2. the administration device C{admin}: C{pzctl --pzp-dir DIR mesh
        create ACCOUNT} at that portal (the account's keys stay in its data
        directory), then paired into the zone and started as C{twistd pzp
        --mesh-approvals}; the scenario waits until it is Hub/Connected and
        the hub's log says it answers for the account;
     3. the new device C{device}: C{pzctl --pzp-dir DIR mesh connect
        ACCOUNT --name DEVICE} left running in the background, waiting for
        the answer; the scenario waits until its request is pending.

    Nothing is signed in: sign in with L{AdminSession.signIn}.

    @param testCase: the trial test; every process is stopped when it ends.
    @return: a Deferred firing with a L{MeshScenario}.
    """
    zone = Zone(testCase, account)
    yield zone.startHub()
    portal = f"https://127.0.0.1:{zone.webPort}/"
    ca = os.path.join(zone.hubDir, "ca.pem")

    def mesh(name, *argv):
        return pzctlJSON("--pzp-dir", zone.deviceDir(name), "mesh", *argv, "--json")

    created = yield mesh(admin, "create", account, "--portal", portal, "--ca", ca,
                         "--name", admin)
    account = created["account"]
    code = yield zone.pairCode(admin)
    process = zone.startDevice(admin, code, "--mesh-approvals")
    yield zone.waitState(admin, "Hub", "Connected")
    announced = f"{zone.deviceId(admin)} answers Mesh requests for {account}"
    yield waitFor(lambda: announced in zone.hub.log(), what="the hub to hear the admin device")

    connecting = _Background(testCase, [
        "--pzp-dir", zone.deviceDir(device), "mesh", "connect", account, "--portal", portal,
        "--ca", ca, "--name", device, "--interval", "0.2", "--wait", "120", "--json"]).done
    rows = yield waitFor(lambda: mesh(admin, "pending").addCallback(lambda r: r or None),
                         what=f"{device}'s connection request")
    [row] = rows
    return MeshScenario(zone=zone, account=account, admin=admin, adminProcess=process,
                        device=device, request=row["device"], connecting=connecting,
                        portal=portal, ca=ca)


class AdminSession:
    """
    A signed-in session on a running hub's admin side, over HTTPS trusting
    the zone's CA only: its cookie and CSRF token.
    """

    def __init__(self, zone: Zone, cookie: str, csrf: str) -> None:
        self.zone = zone
        self.base = f"https://127.0.0.1:{zone.webPort}"
        self.cookie = cookie
        self.csrf = csrf

    @staticmethod
    def client(zone: Zone) -> HTTPClient:
        """
        A client with an empty cookie jar that trusts the zone's CA only.
        """
        return HTTPClient(zone.webAgent(), cookiejar=CookieJar())

    @classmethod
    @defer.inlineCallbacks
    def signIn(cls, zone: Zone):
        """
        Sign in with the link C{pzctl admin-link} prints, then read the
        session's CSRF token from C{GET /session}; fire with the session.
        """
        url = (yield pzctl("--hub-dir", zone.hubDir, "admin-link")).strip()
        response = yield cls.client(zone).get(url, allow_redirects=False)
        yield response.content()
        setCookie = response.headers.getRawHeaders(b"set-cookie")[0].decode("ascii")
        cookie = setCookie.split(";")[0].split("=", 1)[1]
        session = cls(zone, cookie, "")
        status, answer = yield session.request("GET", "/session")
        if status != 200:
            raise AssertionError(f"GET /session answered {status}: {answer}")
        session.csrf = answer["csrf"]
        return session

    @defer.inlineCallbacks
    def request(self, method: str, path: str, body=None):
        """
        C{method PATH} with the session's cookie (and CSRF token), C{body}
        as JSON; fire with the status and the decoded JSON answer.
        """
        headers = {b"x-csrf-token": [self.csrf.encode("ascii")]} if self.csrf else {}
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        response = yield self.client(self.zone).request(
            method, self.base + path, data=data, headers=headers,
            cookies={"pz_session": self.cookie}, allow_redirects=False)
        content = yield response.content()
        return response.code, json.loads(content)
