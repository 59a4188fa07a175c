"""
End to end: signing in to a real C{twistd pzh}'s admin web side with the
link C{pzctl admin-link} prints, over HTTPS trusting the zone's CA.
"""

import json
from http.cookiejar import CookieJar

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Zone, pzctl, pzctlJSON


class AdminSignInTests(TestCase):
    """
    The admin page opens to the sign-in link only.
    """

    timeout = 120

    def client(self, zone) -> HTTPClient:
        """
        A client with an empty cookie jar that trusts the zone's CA only.
        """
        return HTTPClient(zone.webAgent(), cookiejar=CookieJar())

    @defer.inlineCallbacks
    def get(self, zone, url: str, cookie=None):
        """
        GET C{url} without following redirects; the response and its body.
        """
        cookies = {"pz_session": cookie} if cookie else None
        response = yield self.client(zone).get(url, allow_redirects=False, cookies=cookies)
        body = yield response.content()
        return response, body

    @defer.inlineCallbacks
    def test_signIn(self):
        """
        C{pzctl admin-link} prints an HTTPS URL on the hub's web port;
        opening it sets a Secure, HttpOnly, SameSite=Strict session cookie
        and redirects to C{/}, which the cookie opens (and nothing else
        does); a second use of the link is refused; C{pzctl admin-logout}
        ends the session.  C{/health} stays open, and every answer carries
        the security headers.
        """
        zone = Zone(self)
        yield zone.startHub()
        base = f"https://127.0.0.1:{zone.webPort}"
        out = yield pzctl("--hub-dir", zone.hubDir, "admin-link")
        url = out.strip()
        self.assertTrue(url.startswith(f"{base}/signin?token="), url)

        response, _ = yield self.get(zone, base + "/")
        self.assertEqual(response.code, 401)

        response, _ = yield self.get(zone, url)
        self.assertEqual(response.code, 303)
        self.assertEqual(response.headers.getRawHeaders(b"location"), [b"/"])
        setCookie = response.headers.getRawHeaders(b"set-cookie")[0].decode()
        for attribute in ("secure", "httponly", "samesite=strict", "path=/", "max-age="):
            self.assertIn(attribute, setCookie.lower())
        cookie = setCookie.split(";")[0].split("=", 1)[1]
        self.assertNotIn(url.split("token=")[1].split(".")[1], zone.hub.log())

        response, body = yield self.get(zone, base + "/", cookie)
        self.assertEqual(response.code, 200, body)
        self.assertIn(f"Personal zone {zone.zoneId}".encode(), body)
        policy = response.headers.getRawHeaders(b"content-security-policy")[0]
        self.assertIn(b"script-src 'self'", policy)
        self.assertTrue(response.headers.getRawHeaders(b"strict-transport-security"))
        self.assertEqual(response.headers.getRawHeaders(b"referrer-policy"), [b"no-referrer"])

        response, body = yield self.get(zone, url)
        self.assertEqual(response.code, 401)
        self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")
        self.assertIsNone(response.headers.getRawHeaders(b"set-cookie"))

        response, body = yield self.get(zone, base + "/health")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders(b"content-security-policy"))

        result = yield pzctlJSON("--hub-dir", zone.hubDir, "--json", "admin-logout")
        self.assertEqual(result, {"sessions": 1})
        response, _ = yield self.get(zone, base + "/", cookie)
        self.assertEqual(response.code, 401)
