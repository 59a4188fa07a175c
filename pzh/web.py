# -*- test-case-name: tests.pzh.test_web -*-
"""
The hub's HTTPS side (C{--web-port}).

It serves a health page and the zone's Mesh portal under
C{/.well-known/mmm/} to anyone; to a signed-in session only
(L{pzh.adminauth}), the admin page (L{pzh.adminpage}) and the admin API
under C{/api/} (L{pzh.adminapi}), and to anyone else who asks for HTML a
page saying how to sign in; the hub's metrics at
C{/metrics} (L{pzh.metrics}) to a signed-in session or a scraper with the
bearer token; all through a L{pzh.weblimits.GuardedSite}: bounded bodies,
a deadline per request, capped connections and the security headers.
"""

import json

from twisted.web.resource import Resource

from pzh.adminapi import apiResource
from pzh.adminauth import (
    AdminAuth, SessionResource, SignInResource, SignOutResource, guarded,
)
from pzh.adminpage import adminPage
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


class _Root(Resource):
    """
    The site's root: its children, and C{/} itself (the guarded home
    page, also when the request target is empty).
    """

    def render(self, request):
        return self.children[b""].render(request)


def makeSite(hub, portal=None, limits: WebLimits = WebLimits(), reactor=None,
             auth: AdminAuth = None, metricsToken=None) -> GuardedSite:
    """
    The hub's web site, within C{limits}; with C{portal} (a
    L{pzh.portal.service.PortalService}), the Mesh portal at
    C{/.well-known/mmm/}, taking bodies up to C{limits.maxBody}.

    @param auth: the hub's L{AdminAuth} (the one its admin socket makes
        links with); by default a new one on C{reactor} for the zone's
        host and web port.  The site keeps it as C{site.adminAuth}.
    @param metricsToken: the bearer token C{/metrics} asks for
        (L{pzh.metrics.metricsResource}), or C{None}: then only a
        signed-in session sees it.
    """
    if reactor is None:
        from twisted.internet import reactor
    if auth is None:
        auth = AdminAuth(reactor, hub.zone.host, hub.zone.webPort)
    root = _Root()
    page, static = adminPage(hub.zone, auth)
    root.putChild(b"", page)
    root.putChild(b"static", static)
    root.putChild(b"signin", SignInResource(auth))
    root.putChild(b"signout", guarded(SignOutResource(auth), auth))
    root.putChild(b"session", guarded(SessionResource(auth), auth))
    root.putChild(b"health", HealthResource(hub))
    # The API is the page's and scripts': signed in, and CSRF-checked.
    root.putChild(b"api", guarded(apiResource(hub, portal, reactor), auth))
    # Not guarded: a scraper has a token and no session.
    root.putChild(b"metrics", metricsResource(
        hub.metrics, metricsToken, allowed=lambda request: auth.sessionOf(request) is not None))
    refusals = {}
    if portal is not None:
        from pzh.portal.resource import PATH, refusalBody, wellKnown

        root.putChild(b".well-known", wellKnown(portal, limits.maxBody,
                                                hub.metrics.portalAnswered))
        refusals[PATH.encode("ascii")] = refusalBody
    site = GuardedSite(root, limits, reactor=reactor, refusalBodies=refusals)
    site.adminAuth = auth
    return site
