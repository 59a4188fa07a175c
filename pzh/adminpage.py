# -*- test-case-name: tests.pzh.test_adminpage -*-
"""
The hub's admin page: the HTML at C{/}, its script and style sheet under
C{/static/}, and the page that tells a browser without a session how to
sign in.

The HTML is a C{twisted.web.template} (C{pzh/templates/}) that names the
zone; everything that changes (devices, codes, Mesh requests, sync,
services) the script (C{pzh/static/admin.js}) reads from the admin API
(L{pzh.adminapi}) and its event stream.  Neither the HTML nor the script
holds inline script or style, so the site's content policy
(L{pzh.weblimits.SECURITY_HEADERS}) stays strict; nothing is fetched from
outside the hub, and nothing is built: the files are served as they are.
"""

from twisted.python.filepath import FilePath
from twisted.web.resource import NoResource, Resource
from twisted.web.template import Element, XMLFile, renderElement, renderer

from pzh.adminauth import guarded

__all__ = ["AdminPage", "SignedOutPage", "StaticFiles", "adminPage", "TEMPLATES", "STATIC"]

_HERE = FilePath(__file__).parent()

#: The page templates.
TEMPLATES = _HERE.child("templates")

#: The files served under C{/static/}, with their content types.
STATIC = {
    b"admin.js": (_HERE.child("static").child("admin.js"), "text/javascript; charset=utf-8"),
    b"admin.css": (_HERE.child("static").child("admin.css"), "text/css; charset=utf-8"),
}


class _ZoneElement(Element):
    """
    A template whose C{page} renderer fills the zone's slots.
    """

    def __init__(self, loader, zone) -> None:
        super().__init__(loader)
        self._zone = zone

    @renderer
    def page(self, request, tag):
        zone = self._zone
        host = f"[{zone.host}]" if ":" in zone.host else zone.host
        return tag.fillSlots(zone=zone.zoneId, fingerprint=zone.caFingerprint,
                             hub=f"{host}:{zone.port}")


class AdminPage(Resource):
    """
    C{GET /} for a signed-in session: the admin page.
    """

    isLeaf = True
    loader = XMLFile(TEMPLATES.child("admin.xml"))

    def __init__(self, zone) -> None:
        super().__init__()
        self._zone = zone

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return renderElement(request, _ZoneElement(self.loader, self._zone))


class SignedOutPage(Resource):
    """
    C{/} without a session: for a browser (a request that accepts
    C{text/html}), a 401 page saying how to sign in; for anyone else, the
    guarded page's own JSON refusal.

    @param page: the page behind the sign-in (L{pzh.adminauth.guarded}).
    @param auth: the site's L{pzh.adminauth.AdminAuth}.
    """

    isLeaf = True
    loader = XMLFile(TEMPLATES.child("signedout.xml"))

    def __init__(self, page, auth, zone) -> None:
        super().__init__()
        self._page = page
        self._auth = auth
        self._zone = zone

    @staticmethod
    def _wantsHTML(request) -> bool:
        accept = (request.getHeader(b"accept") or b"").lower()
        return b"text/html" in accept

    def render(self, request):
        if (request.method in (b"GET", b"HEAD") and self._auth.sessionOf(request) is None
                and self._wantsHTML(request)):
            request.setResponseCode(401)
            request.setHeader(b"content-type", b"text/html; charset=utf-8")
            request.setHeader(b"cache-control", b"no-store")
            return renderElement(request, _ZoneElement(self.loader, self._zone))
        return self._page.render(request)


class _StaticFile(Resource):
    """
    One file of the page, with its content type fixed rather than guessed
    from the machine's MIME table; read when asked for (a few kilobytes).
    """

    def __init__(self, path: FilePath, contentType: str) -> None:
        super().__init__()
        self._path = path
        self._type = contentType.encode("ascii")

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", self._type)
        return self._path.getContent()


class StaticFiles(Resource):
    """
    C{/static/}: the page's script and style sheet, and nothing else (no
    directory listing, no other file of the package).
    """

    def __init__(self) -> None:
        super().__init__()
        for name, (path, contentType) in STATIC.items():
            self.putChild(name, _StaticFile(path, contentType))

    def render(self, request):
        return NoResource().render(request)


def adminPage(zone, auth) -> tuple:
    """
    The page at C{/} and the files at C{/static/}, both behind C{auth}'s
    sign-in; C{/} tells a browser without a session how to sign in.

    @return: C{(page, static)}, to mount at C{b""} and C{b"static"}.
    """
    page = SignedOutPage(guarded(AdminPage(zone), auth), auth, zone)
    return page, guarded(StaticFiles(), auth)
