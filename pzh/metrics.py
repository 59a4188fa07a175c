# -*- test-case-name: tests.pzh.test_metrics -*-
"""
The hub's Prometheus metrics, and C{GET /metrics} serving them.

Each hub owns one L{HubMetrics} with a C{CollectorRegistry} of its own
(never C{prometheus_client}'s global one, so that two hubs in one process,
as in the tests, count apart).  The parts of the hub that see an event call
one method of it, once, where the event happens:

 - L{pzh.protocol.HubProtocol} after each TLS handshake's decision
   (C{pz_hub_handshakes_total}) and for each error reply it sends a device
   (C{pz_hub_refusals_total});
 - L{pzh.router.Router} for each message it accepts for another device
   (C{pz_hub_messages_routed_total});
 - L{pzh.hub.Hub.revoke} (C{pz_hub_revocations_total});
 - the Mesh portal's HTTP binding for each answer
   (C{pz_portal_transactions_total});
 - the number of connected devices is read from the registry at each scrape.

L{metricsResource} serves them in the Prometheus text format; with a token,
only to requests that carry it as C{Authorization: Bearer TOKEN}.
"""

import hmac
import json
from typing import Callable, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.python import usage
from twisted.web.resource import Resource
from zope.interface import Attribute, Interface, implementer

__all__ = ["IHubMetrics", "HubMetrics", "metricsResource", "MetricsResource",
           "HANDSHAKE_OUTCOMES", "checkToken", "metricsTokenFromOptions"]

#: What a completed TLS handshake with the hub's device port led to.
HANDSHAKE_OUTCOMES = ("registered", "refused", "enrolling", "renewing", "zone")


class IHubMetrics(Interface):
    """
    What the hub's parts report to its metrics.
    """

    registry = Attribute("The C{CollectorRegistry} holding them, which L{metricsResource} serves.")

    def watchConnected(count: Callable[[], int]) -> None:
        """
        Read the number of connected devices from C{count} at each scrape.
        """

    def handshake(outcome: str) -> None:
        """
        A device link's handshake was decided: one of L{HANDSHAKE_OUTCOMES}.
        """

    def refused(code: str) -> None:
        """
        The hub sent a device an error reply with C{code}.
        """

    def routed() -> None:
        """
        The hub accepted a message from one device for another.
        """

    def revoked() -> None:
        """
        A device was revoked.
        """

    def portalAnswered(status: int) -> None:
        """
        The Mesh portal answered a request with C{status}.
        """


@implementer(IHubMetrics)
class HubMetrics:
    """
    One hub's counters, in a registry of their own.

    @ivar registry: the C{CollectorRegistry} L{metricsResource} serves.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._connected = Gauge(
            "pz_hub_connected_devices", "Devices registered on a live link now.",
            registry=self.registry)
        self._connected.set_function(lambda: 0)
        self._handshakes = Counter(
            "pz_hub_handshakes", "TLS handshakes on the device port, by what they led to.",
            ["outcome"], registry=self.registry)
        # Every outcome is shown from the start, at zero: a rate over a
        # series that appears late misses its first increase.
        for outcome in HANDSHAKE_OUTCOMES:
            self._handshakes.labels(outcome)
        self._refusals = Counter(
            "pz_hub_refusals", "Error replies the hub sent devices, by error code.",
            ["code"], registry=self.registry)
        self._routed = Counter(
            "pz_hub_messages_routed",
            "Messages from one device the hub accepted for another (forwarded or queued).",
            registry=self.registry)
        self._revocations = Counter(
            "pz_hub_revocations", "Devices revoked by this hub process.", registry=self.registry)
        self._portal = Counter(
            "pz_portal_transactions", "Answers of the Mesh portal, by their status.",
            ["status"], registry=self.registry)

    def watchConnected(self, count: Callable[[], int]) -> None:
        self._connected.set_function(count)

    def handshake(self, outcome: str) -> None:
        if outcome not in HANDSHAKE_OUTCOMES:
            raise ValueError(f"unknown handshake outcome {outcome!r}")
        self._handshakes.labels(outcome).inc()

    def refused(self, code: str) -> None:
        self._refusals.labels(code).inc()

    def routed(self) -> None:
        self._routed.inc()

    def revoked(self) -> None:
        self._revocations.inc()

    def portalAnswered(self, status: int) -> None:
        self._portal.labels(str(status)).inc()


def checkToken(token: str) -> str:
    """
    A metrics token as given on the command line or in a file (surrounding
    white space dropped): at least 16 characters, printable ASCII without
    spaces, so that it fits an C{Authorization} header and is not guessed.

    @raise ValueError: saying what is wrong with it.
    """
    token = token.strip()
    if len(token) < 16:
        raise ValueError("the metrics token must be at least 16 characters long")
    if not all("!" <= c <= "~" for c in token):
        raise ValueError("the metrics token may hold only printable ASCII, no spaces")
    return token


def metricsTokenFromOptions(token: Optional[str], path: Optional[str]) -> Optional[str]:
    """
    The token of C{--metrics-token TOKEN} or C{--metrics-token-file PATH}
    (at most one of them), checked by L{checkToken}; C{None} for neither.

    @raise usage.UsageError: one line saying what is wrong.
    """
    if token is not None and path is not None:
        raise usage.UsageError("give --metrics-token or --metrics-token-file, not both")
    if path is not None:
        try:
            with open(path, encoding="ascii") as f:
                token = f.read(4096)
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "it is not ASCII text"
            raise usage.UsageError(f"--metrics-token-file: cannot read {path}: {reason}")
    if token is None:
        return None
    try:
        return checkToken(token)
    except ValueError as e:
        raise usage.UsageError(f"--metrics-token: {e}")


def _never(request) -> bool:
    return False


class MetricsResource(Resource):
    """
    C{GET /metrics}: the hub's metrics in the Prometheus text format, to a
    request with the bearer token, or one C{allowed} lets through (the
    admin sign-in); any other gets C{401} with code C{NOT_AUTHORISED}.
    """

    isLeaf = True

    def __init__(self, metrics: HubMetrics, token: Optional[str] = None,
                 allowed: Callable[[object], bool] = _never) -> None:
        super().__init__()
        self._registry = metrics.registry
        self._token = None if token is None else token.encode("ascii")
        self._allowed = allowed

    def _bearer(self, request) -> bool:
        """
        Whether C{request} carries the token, compared in constant time.
        """
        if self._token is None:
            return False
        header = request.getHeader(b"authorization") or b""
        scheme, _, credentials = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credentials.strip(), self._token)

    def render_GET(self, request) -> bytes:
        request.setHeader(b"cache-control", b"no-store")
        if not (self._bearer(request) or self._allowed(request)):
            request.setResponseCode(401)
            request.setHeader(b"www-authenticate", b'Bearer realm="pz-metrics"')
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({
                "code": "NOT_AUTHORISED",
                "message": ("the metrics need Authorization: Bearer with the hub's "
                            "--metrics-token" if self._token is not None else
                            "the metrics need a signed-in session"),
            }).encode("utf-8")
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


def metricsResource(metrics: HubMetrics, token: Optional[str] = None,
                    allowed: Callable[[object], bool] = _never) -> Resource:
    """
    The resource to mount at C{/metrics}: see L{MetricsResource}.

    @param token: the bearer token (C{twistd pzh --metrics-token}), or
        C{None} for none.
    @param allowed: whether a request without the token may see the
        metrics anyway (the admin sign-in decides); by default none may.
    """
    return MetricsResource(IHubMetrics(metrics), token, allowed)
