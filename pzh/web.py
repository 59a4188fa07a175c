# -*- test-case-name: tests.pzh.test_web -*-
"""
The hub's HTTPS side (C{--web-port}).

It serves a health page, a page naming the zone and its connected
devices, the hub's metrics at C{/metrics} (L{pzh.metrics}), and the zone's
Mesh portal under C{/.well-known/mmm/}, through a
L{pzh.weblimits.GuardedSite}: bounded bodies, a deadline per request,
capped connections and the security headers.
"""

import html
import json

from twisted.web.resource import Resource

from pzh.metrics import metricsResource
from pzh.weblimits import GuardedSite, WebLimits

__all__ = ["makeSite"]


class HealthResource(Resource):
    """
    C{GET /health}: a JSON summary a monitor can poll.
    """

    isLeaf = True

    def __init__(self, hub) -> None:
        super().__init__()
        self._hub = hub

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({
            "status": "ok",
            "zone": self._hub.zone.zoneId,
            "connected": len(self._hub.registry),
        }).encode("utf-8")


class HomeResource(Resource):
    """
    C{GET /}: a plain page naming the zone and its connected devices.
    """

    def __init__(self, hub) -> None:
        super().__init__()
        self._hub = hub

    def getChild(self, path, request):
        if path == b"":
            return self
        return Resource.getChild(self, path, request)

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        rows = "".join(
            f"<li>{html.escape(deviceId)} — {html.escape(info['address'] or '')}</li>"
            for deviceId, info in sorted(self._hub.connectedDevices().items())
        ) or "<li>none</li>"
        zone = html.escape(self._hub.zone.zoneId)
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>Zone {zone}</title></head><body>"
            f"<h1>Personal zone {zone}</h1>"
            f"<p>CA fingerprint: <code>{html.escape(self._hub.zone.caFingerprint)}</code></p>"
            f"<h2>Connected devices</h2><ul>{rows}</ul></body></html>"
        ).encode("utf-8")


def makeSite(hub, portal=None, limits: WebLimits = WebLimits(), reactor=None,
             metricsToken=None) -> GuardedSite:
    """
    The hub's web site, within C{limits}; with C{portal} (a
    L{pzh.portal.service.PortalService}), the Mesh portal at
    C{/.well-known/mmm/}, taking bodies up to C{limits.maxBody}.

    @param metricsToken: the bearer token C{/metrics} asks for
        (L{pzh.metrics.metricsResource}), or C{None}.
    """
    root = HomeResource(hub)
    root.putChild(b"health", HealthResource(hub))
    root.putChild(b"metrics", metricsResource(hub.metrics, metricsToken))
    refusals = {}
    if portal is not None:
        from pzh.portal.resource import PATH, refusalBody, wellKnown

        root.putChild(b".well-known", wellKnown(portal, limits.maxBody,
                                                hub.metrics.portalAnswered))
        refusals[PATH.encode("ascii")] = refusalBody
    return GuardedSite(root, limits, reactor=reactor, refusalBodies=refusals)
