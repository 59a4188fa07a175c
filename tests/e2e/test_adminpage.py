"""
End to end: the admin page of a real C{twistd pzh}, over HTTPS trusting
the zone's CA, signed in with the link C{pzctl admin-link} prints.
"""

import json
from http.cookiejar import CookieJar

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.trial.unittest import TestCase

from pzh.adminpage import STATIC
from tests.e2e.harness import Zone, pzctl


class AdminPageTests(TestCase):
    """
    The page, its script and style sheet, and the signed-out page, as an
    installed hub serves them.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_page(self):
        """
        Signed in, C{/} is the admin page (its DOM contract's elements, the
        zone filled in) under the strict content policy, and
        C{/static/admin.js} and C{/static/admin.css} are the package's
        files with their types; without the session cookie a browser gets
        the 401 sign-in page and the script is refused; a code made
        through the API comes with its QR code.
        """
        zone = Zone(self)
        yield zone.startHub()
        def newClient():
            # Each with its own cookie jar.
            return HTTPClient(zone.webAgent(), cookiejar=CookieJar())

        client = newClient()
        base = f"https://127.0.0.1:{zone.webPort}"
        url = (yield pzctl("--hub-dir", zone.hubDir, "admin-link")).strip()
        response = yield client.get(url, allow_redirects=False)
        yield response.content()
        self.assertEqual(response.code, 303)
        cookie = response.headers.getRawHeaders(b"set-cookie")[0].decode().split(";")[0]
        signedIn = {"Cookie": cookie}

        response = yield client.get(base + "/", headers={"Accept": "text/html", **signedIn})
        body = yield response.content()
        self.assertEqual(response.code, 200, body)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"text/html; charset=utf-8"])
        for needle in (f'<dd id="zone-id">{zone.zoneId}</dd>', '<table id="devices">',
                       '<form id="pair-form">', '<dialog id="confirm"', 'id="mesh-pending"',
                       '<button type="button" id="signout">',
                       '<script src="/static/admin.js" defer="defer"></script>'):
            self.assertIn(needle.encode(), body)
        policy = response.headers.getRawHeaders(b"content-security-policy")[0]
        self.assertIn(b"script-src 'self'; style-src 'self';", policy)
        self.assertNotIn(b"unsafe-inline", policy)

        for name, kind in ((b"admin.js", b"text/javascript; charset=utf-8"),
                           (b"admin.css", b"text/css; charset=utf-8")):
            response = yield client.get(base + "/static/" + name.decode(), headers=signedIn)
            body = yield response.content()
            self.assertEqual(response.code, 200)
            self.assertEqual(response.headers.getRawHeaders(b"content-type"), [kind])
            self.assertEqual(body, STATIC[name][0].getContent())

        session = yield client.get(base + "/session", headers=signedIn)
        csrf = (yield session.json())["csrf"]
        response = yield client.post(base + "/api/codes", json={"device": "phone"},
                                     headers={"X-CSRF-Token": csrf, **signedIn})
        made = yield response.json()
        self.assertEqual(response.code, 201, made)
        self.assertTrue(made["qr_svg"].startswith('<svg xmlns="http://www.w3.org/2000/svg"'))

        anonymous = newClient()
        response = yield anonymous.get(base + "/", headers={"Accept": "text/html"})
        body = yield response.content()
        self.assertEqual(response.code, 401)
        self.assertIn(b'<main id="signed-out">', body)
        self.assertIn(b"pzctl --hub-dir DIR admin-link", body)
        response = yield anonymous.get(base + "/static/admin.js")
        body = yield response.content()
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")
