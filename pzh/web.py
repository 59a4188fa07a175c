# -*- test-case-name: tests.pzh.test_web -*-
"""
The hub's HTTPS side (C{--web-port}).

It serves a health page, a page naming the zone and its connected
devices, and the zone's Mesh portal under C{/.well-known/mmm/}.
"""

import html
import json

from twisted.web.resource import Resource
from twisted.web.server import Site

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


def makeSite(hub, portal=None) -> Site:
    """
    The hub's web site; with C{portal} (a L{pzh.portal.service.PortalService}),
    the Mesh portal at C{/.well-known/mmm/}.
    """
    root = HomeResource(hub)
    root.putChild(b"health", HealthResource(hub))
    if portal is not None:
        from pzh.portal.resource import wellKnown

        root.putChild(b".well-known", wellKnown(portal))
    # No resource here reads form fields; parsing them only adds risk
    # (a Content-Type with a control character made Twisted raise).
    return Site(root, parsePOSTFormSubmission=False)
