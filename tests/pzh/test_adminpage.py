"""
Tests for L{pzh.adminpage}: the admin page, its static files and the
signed-out page, requested in memory through the hub's real site with
L{treq.testing.StubTreq}; and L{pzh.qr}, the pairing code's QR code.
"""

import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from html.parser import HTMLParser

import defusedxml.ElementTree
import segno
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pz.testing import ZONE, MemoryHub
from pzh.adminpage import STATIC, TEMPLATES
from pzh.qr import QR_TITLE, qrSVG
from pzh.web import makeSite
from pzh.weblimits import SECURITY_HEADERS

BASE = "https://127.0.0.1:9000"

#: The content policy the page is built to live under (pzh/weblimits.py).
POLICY = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          b"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
          b"form-action 'self'")

#: Every id the browser tests and the script rely on (the page's DOM
#: contract, docs/admin-page.md).
CONTRACT_IDS = {
    "live", "notice", "zone-id", "ca-fingerprint", "hub-address", "uptime", "count-connected",
    "count-disconnected", "count-revoked", "devices", "device-filter", "confirm", "confirm-text",
    "confirm-yes", "confirm-no", "pair-form", "pair-device", "pair-submit", "pair-result",
    "pair-code", "pair-qr", "pair-time-left", "codes", "mesh-pending", "mesh-none", "mesh-off",
    "sync", "conflicts", "services", "signout", "policy-rules", "policy-error", "policy-form",
    "policy-effect", "policy-subject", "policy-service", "policy-method", "policy-item",
    "policy-first",
    "policy-submit", "confirm-rule", "confirm-rule-text", "confirm-rule-yes", "confirm-rule-no",
}

SVG = "{http://www.w3.org/2000/svg}"


class _Page(HTMLParser):
    """
    An HTML page as a list of C{(tag, attributes)} and the text inside
    each element with an id.
    """

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list = []
        self.texts: dict = {}
        self.scriptText = ""
        self._open: list = []
        self._inScript = False
        self.text = text
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        self._inScript = tag in ("script", "style")
        if tag in ("meta", "link", "input", "br", "img"):
            return
        self._open.append(attributes.get("id"))

    def handle_startendtag(self, tag, attrs) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag) -> None:
        self._inScript = False
        if tag not in ("meta", "link", "input", "br", "img") and self._open:
            self._open.pop()

    def handle_data(self, data) -> None:
        if self._inScript:
            self.scriptText += data
        for id in self._open:
            if id is not None:
                self.texts[id] = self.texts.get(id, "") + data

    def byId(self, id: str) -> tuple:
        [found] = [(tag, a) for tag, a in self.elements if a.get("id") == id]
        return found

    def all(self, tag: str) -> list:
        return [a for t, a in self.elements if t == tag]


class PageTestBase(SynchronousTestCase):
    """
    The site of an in-memory hub, and a session signed in to it.
    """

    def setUp(self):
        self.fixture = MemoryHub(self)
        self.hub = self.fixture.hub
        self.site = makeSite(self.hub, reactor=self.fixture.clock)
        self.session = self.signIn()

    def signIn(self) -> str:
        """
        Sign in with a new admin link; the session cookie's value.
        """
        _, url = self.site.adminAuth.newLink()
        treq = StubTreq(self.site.resource)
        d = treq.get(BASE + "/signin?" + url.split("?")[1], allow_redirects=False)
        treq.flush()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 303)
        return {c.name: c.value for c in response.cookies()}["pz_session"]

    def request(self, method: str, path: str, headers=None, session=True, data=None):
        """
        C{method} C{path} with a fresh cookie jar, with this test's session
        cookie when C{session}; the response and its body.
        """
        headers = dict(headers or {})
        if session:
            headers["Cookie"] = f"pz_session={self.session}"
        treq = StubTreq(self.site.resource)
        d = treq.request(method, BASE + path, headers=headers, data=data)
        treq.flush()
        response = self.successResultOf(d)
        body = self.successResultOf(response.content())
        return response, body

    def header(self, response, name: bytes) -> list:
        return response.headers.getRawHeaders(name)

    def served(self, path: str, headers=b"", session=True) -> bytes:
        """
        GET C{path} over the site's real HTTP channel (with its security
        headers): the raw response.
        """
        if session:
            headers += b"Cookie: pz_session=" + self.session.encode("ascii") + b"\r\n"
        address = IPv4Address("TCP", "127.0.0.1", 1)
        channel = self.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(b"GET " + path.encode("ascii") + b" HTTP/1.1\r\nHost: hub\r\n"
                             + headers + b"\r\n")
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        return transport.value()

    def assertPolicy(self, raw: bytes) -> None:
        """
        C{raw} carries the site's content policy, unchanged, and the other
        security headers.
        """
        head = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
        self.assertIn(b"Content-Security-Policy: " + POLICY, head)
        self.assertIn(b"X-Content-Type-Options: nosniff", head)
        self.assertIn(b"Referrer-Policy: no-referrer", head)


class PageTests(PageTestBase):
    """
    C{/} signed in: the page the browser tests drive.
    """

    def page(self) -> _Page:
        response, body = self.request("GET", "/", {"Accept": "text/html"})
        self.assertEqual(response.code, 200, body)
        self.assertEqual(self.header(response, b"content-type"), [b"text/html; charset=utf-8"])
        self.assertTrue(body.startswith(b"<!DOCTYPE html>\n"))
        return _Page(body.decode("utf-8"))

    def test_contractIds(self):
        """
        The page holds every element of the DOM contract, once, with the
        zone's id, CA fingerprint and hub address filled in.
        """
        page = self.page()
        ids = [a["id"] for _, a in page.elements if "id" in a]
        self.assertEqual(len(ids), len(set(ids)), "an id is used twice")
        self.assertEqual(CONTRACT_IDS - set(ids), set())
        self.assertEqual(page.byId("devices")[0], "table")
        self.assertEqual(page.byId("confirm")[0], "dialog")
        self.assertEqual(page.byId("pair-form")[0], "form")
        for id in ("confirm-yes", "confirm-no", "pair-submit", "signout"):
            self.assertEqual(page.byId(id)[0], "button", id)
        self.assertEqual(page.byId("pair-submit")[1]["type"], "submit")
        self.assertEqual(page.texts["zone-id"].strip(), ZONE)
        self.assertEqual(page.texts["ca-fingerprint"].strip(), self.fixture.zone.caFingerprint)
        self.assertEqual(page.texts["hub-address"].strip(), "127.0.0.1:8000")
        self.assertEqual(page.texts["live"], "offline")
        self.assertIn(f"<h1>Personal zone {ZONE}</h1>", page.text)

    def test_controls(self):
        """
        The devices table sorts on the five contract keys with real buttons
        in its headers; the filter and the device name have their labels;
        the notice is a polite live region; the pairing result starts
        hidden.
        """
        page = self.page()
        sorts = [a["data-sort"] for a in page.all("button") if "data-sort" in a]
        self.assertEqual(sorts, ["id", "state", "address", "last_seen", "expires"])
        labels = {a.get("for"): None for a in page.all("label")}
        self.assertEqual(set(labels), {"device-filter", "pair-device", "policy-effect",
                                       "policy-subject", "policy-service", "policy-method",
                                       "policy-item", "policy-first"})
        self.assertEqual(page.texts.get("notice", ""), "")
        _, notice = page.byId("notice")
        self.assertEqual((notice["role"], notice["aria-live"]), ("status", "polite"))
        self.assertIn("hidden", page.byId("pair-result")[1])
        self.assertEqual(page.byId("device-filter")[1]["type"], "search")

    def test_policyPanel(self):
        """
        The policy panel: a table of rules, an error line that starts
        hidden and is announced, a form whose effect is a select of the
        five effects C{pzctl policy add} takes (deny first), optional
        subject, service, method and shared item, a "put first" checkbox, and a modal
        confirmation for removing a rule that starts on "Keep it".
        """
        from pz.policy.edit import EFFECTS

        page = self.page()
        self.assertEqual(page.byId("policy-rules")[0], "table")
        self.assertEqual(page.byId("policy-form")[0], "form")
        tag, problem = page.byId("policy-error")
        self.assertEqual((tag, problem["role"]), ("p", "alert"))
        self.assertIn("hidden", problem)
        self.assertEqual(page.byId("policy-effect")[0], "select")
        values = [a["value"] for a in page.all("option")]
        self.assertEqual(sorted(values), sorted(EFFECTS))
        self.assertEqual(values[0], "deny")
        for id in ("policy-subject", "policy-service", "policy-method", "policy-item"):
            self.assertEqual(page.byId(id)[1]["type"], "text")
            self.assertNotIn("required", page.byId(id)[1])
        self.assertEqual(page.byId("policy-first")[1]["type"], "checkbox")
        self.assertEqual(page.byId("policy-submit")[1]["type"], "submit")
        self.assertEqual(page.byId("confirm-rule")[0], "dialog")
        self.assertIn("autofocus", page.byId("confirm-rule-no")[1])

    def test_labels(self):
        """
        The labels read "Filter devices" and "Device name".
        """
        _, body = self.request("GET", "/")
        text = body.decode("utf-8")
        self.assertRegex(text, r'<label for="device-filter">Filter devices</label>')
        self.assertRegex(text, r'<label for="pair-device">Device name</label>')

    def test_noInlineCode(self):
        """
        No inline script or style anywhere (the content policy would block
        it): scripts and style sheets come from the hub's own C{/static/},
        and no element carries a C{style} or C{on...} attribute or a
        C{javascript:} URL.
        """
        page = self.page()
        self.assertEqual(page.all("style"), [])
        self.assertEqual(page.scriptText.strip(), "")
        self.assertEqual([a["src"] for a in page.all("script")], ["/static/admin.js"])
        self.assertEqual([a["href"] for a in page.all("link")], ["/static/admin.css"])
        for tag, attributes in page.elements:
            for name, value in attributes.items():
                self.assertNotEqual(name, "style", tag)
                self.assertFalse(name.startswith("on"), f"{tag} {name}")
                self.assertNotIn("javascript:", (value or "").lower())
                if name in ("src", "href", "action"):
                    self.assertTrue(value.startswith("/") and not value.startswith("//"), value)

    def test_headers(self):
        """
        The page goes out under the site's strict content policy, unchanged,
        with the other security headers, never cached.
        """
        raw = self.served("/")
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 "), raw[:200])
        self.assertIn(b'<table id="devices">', raw)
        self.assertPolicy(raw)
        self.assertEqual(SECURITY_HEADERS[2], (b"Content-Security-Policy", POLICY))
        response, _ = self.request("GET", "/")
        self.assertEqual(self.header(response, b"cache-control"), [b"no-store"])

    def test_sameWithoutSlash(self):
        """
        An empty request target gets the same page.
        """
        _, body = self.request("GET", "/")
        _, again = self.request("GET", "")
        self.assertEqual(again, body)


class StaticTests(PageTestBase):
    """
    C{/static/}: the script and style sheet, signed in only.
    """

    def test_served(self):
        """
        C{admin.js} and C{admin.css} are served as they are in the package,
        with their content types, under the same policy.
        """
        for name, kind in ((b"admin.js", b"text/javascript; charset=utf-8"),
                           (b"admin.css", b"text/css; charset=utf-8")):
            response, body = self.request("GET", "/static/" + name.decode())
            self.assertEqual(response.code, 200)
            self.assertEqual(self.header(response, b"content-type"), [kind])
            self.assertEqual(body, STATIC[name][0].getContent())
            raw = self.served("/static/" + name.decode())
            self.assertTrue(raw.startswith(b"HTTP/1.1 200 "))
            self.assertPolicy(raw)

    def test_guarded(self):
        """
        Without a session (no cookie, or a forged one) the files are
        refused with the JSON 401, whatever the client accepts.
        """
        for headers in ({}, {"Accept": "text/html"}):
            for path in ("/static/admin.js", "/static/admin.css"):
                response, body = self.request("GET", path, headers, session=False)
                self.assertEqual(response.code, 401)
                self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")
        response, _ = self.request("GET", "/static/admin.js",
                                   {"Cookie": "pz_session=forged"}, session=False)
        self.assertEqual(response.code, 401)

    def test_nothingElse(self):
        """
        No other file is served: no listing, no template, no module.
        """
        for path in ("/static/", "/static", "/static/admin.xml", "/static/..%2fweb.py",
                     "/static/../web.py", "/static/admin.js/x", "/templates/admin.xml"):
            response, body = self.request("GET", path)
            self.assertEqual(response.code, 404, path)
            self.assertNotIn(b"makeSite", body)


class SignedOutTests(PageTestBase):
    """
    C{/} without a session.
    """

    def test_browser(self):
        """
        A browser (C{Accept: text/html}) without a session gets a 401 HTML
        page, C{main#signed-out}, saying how to get a sign-in link; none of
        the admin page.
        """
        for cookie in ({}, {"Cookie": "pz_session=forged"}):
            headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", **cookie}
            response, body = self.request("GET", "/", headers, session=False)
            self.assertEqual(response.code, 401)
            self.assertEqual(self.header(response, b"content-type"),
                             [b"text/html; charset=utf-8"])
            self.assertEqual(self.header(response, b"cache-control"), [b"no-store"])
            page = _Page(body.decode("utf-8"))
            self.assertEqual(page.byId("signed-out")[0], "main")
            self.assertIn("pzctl --hub-dir DIR admin-link", page.texts["signed-out"])
            ids = {a["id"] for _, a in page.elements if "id" in a}
            self.assertEqual(ids, {"signed-out"})
            self.assertEqual(page.all("script"), [])
            self.assertNotIn(self.fixture.zone.caFingerprint.encode(), body)
        raw = self.served("/", b"Accept: text/html\r\n", session=False)
        self.assertTrue(raw.startswith(b"HTTP/1.1 401 "), raw[:200])
        self.assertIn(b'<main id="signed-out">', raw)
        self.assertPolicy(raw)

    def test_afterSignOut(self):
        """
        After C{POST /signout} the same browser gets the signed-out page.
        """
        _, body = self.request("GET", "/session")
        csrf = json.loads(body)["csrf"]
        response, _ = self.request("POST", "/signout", {"X-CSRF-Token": csrf})
        self.assertEqual(response.code, 200)
        response, body = self.request("GET", "/", {"Accept": "text/html"})
        self.assertEqual(response.code, 401)
        self.assertIn(b'<main id="signed-out">', body)

    def test_apiClients(self):
        """
        Other clients keep the JSON refusal: C{/} not asking for HTML, a
        POST, and the API even when it asks for HTML.
        """
        for method, path, headers in (("GET", "/", {}),
                                      ("GET", "/", {"Accept": "application/json"}),
                                      ("POST", "/", {"Accept": "text/html"}),
                                      ("GET", "/api/devices", {"Accept": "text/html"}),
                                      ("GET", "/session", {"Accept": "text/html"})):
            response, body = self.request(method, path, headers, session=False)
            self.assertEqual(response.code, 401, (method, path))
            self.assertEqual(self.header(response, b"content-type"), [b"application/json"])
            self.assertEqual(json.loads(body)["code"], "NOT_AUTHORISED")


def _darkModules(svgText: str) -> set:
    """
    The modules an SVG made by L{qrSVG} paints dark, as C{(x, y)} with the
    quiet zone included: segno draws each row's runs as one path of
    C{M x y}, C{m dx dy} and C{h n} steps at half a module's height.
    """
    root = defusedxml.ElementTree.fromstring(svgText)
    [path] = [p for p in root.iter(SVG + "path") if p.get("class") == "qrline"]
    x = y = 0.0
    dark = set()
    for command, numbers in re.findall(r"([MmHh])([-0-9. ]+)", path.get("d")):
        values = [float(n) for n in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        elif command == "h":
            dark.update((int(x) + i, int(y)) for i in range(int(values[0])))
            x += values[0]
    return dark


class QRTests(PageTestBase):
    """
    C{POST /api/codes} also answers the code as a QR code, for the page.
    """

    def newCode(self, name: str) -> dict:
        _, body = self.request("GET", "/session")
        csrf = json.loads(body)["csrf"]
        response, body = self.request("POST", "/api/codes", {"X-CSRF-Token": csrf},
                                      data=json.dumps({"device": name}).encode())
        self.assertEqual(response.code, 201, body)
        return json.loads(body)

    def test_qrSVG(self):
        """
        The answer's C{qr_svg} is one well-formed SVG element in the SVG
        namespace, without XML declaration, script, foreign content,
        C{style} or event attributes, titled for screen readers.
        """
        made = self.newCode("phone")
        svg = made["qr_svg"]
        self.assertTrue(svg.startswith("<svg "), svg[:40])
        root = defusedxml.ElementTree.fromstring(svg)
        self.assertEqual(root.tag, SVG + "svg")
        for node in root.iter():
            self.assertNotIn(node.tag, (SVG + "script", SVG + "foreignObject", SVG + "style"))
            for name in node.attrib:
                self.assertNotEqual(name, "style")
                self.assertFalse(name.lower().startswith("on"), name)
        self.assertEqual(root.find(SVG + "title").text, QR_TITLE)

    def test_qrIsTheCode(self):
        """
        The SVG paints exactly the modules of the QR code of the code text
        (with its four-module quiet zone), so a phone scanning it reads the
        code.
        """
        made = self.newCode("tablet")
        qr = segno.make(made["code"])
        expected = {(x + 4, y + 4) for y, row in enumerate(qr.matrix)
                    for x, value in enumerate(row) if value}
        self.assertEqual(_darkModules(made["qr_svg"]), expected)
        self.assertNotEqual(_darkModules(qrSVG(made["code"] + "x")), expected)

    def test_badNameNoQR(self):
        """
        A refused code request answers the refusal only.
        """
        _, body = self.request("GET", "/session")
        csrf = json.loads(body)["csrf"]
        response, body = self.request("POST", "/api/codes", {"X-CSRF-Token": csrf},
                                      data=b'{"device": "my phone!"}')
        self.assertEqual(response.code, 400)
        self.assertEqual(set(json.loads(body)), {"code", "message"})


_SCRIPT = STATIC[b"admin.js"][0]


class ScriptTests(SynchronousTestCase):
    """
    The script against the template it drives.
    """

    def test_idsExist(self):
        """
        Every id the script looks up is in the page's template, so a typo
        on either side fails here rather than in a browser.
        """
        script = _SCRIPT.getContent().decode("utf-8")
        used = set(re.findall(r'byId\("([a-z-]+)"\)', script))
        used |= {f"count-{state}" for state in ("connected", "disconnected", "revoked")}
        self.assertIn("pair-qr", used)
        template = TEMPLATES.child("admin.xml").getContent().decode("utf-8")
        declared = set(re.findall(r'\bid="([a-z-]+)"', template))
        self.assertEqual(used - declared, set())
        self.assertEqual(CONTRACT_IDS - declared, set())

    def test_noMarkupFromText(self):
        """
        The script never turns text into markup or code: no C{innerHTML},
        C{outerHTML}, C{insertAdjacentHTML}, C{document.write} or C{eval};
        the QR code's SVG goes through C{DOMParser} and C{importNode}.
        """
        script = _SCRIPT.getContent().decode("utf-8")
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                       "eval(", "new Function", ".style."):
            self.assertNotIn(unsafe, script)
        self.assertIn('parseFromString(svgText, "image/svg+xml")', script)
        self.assertIn("importNode", script)

    def test_routes(self):
        """
        The script calls the API routes of the contract and nothing off
        the hub.
        """
        script = _SCRIPT.getContent().decode("utf-8")
        for route in ('"/api/devices"', '"/api/codes"', '"/api/zone"', '"/api/mesh/pending"',
                      '"/api/sync"', '"/api/sync/conflicts"', '"/api/services"',
                      '"/api/events"', '"/session"', '"/signout"', "/revoke`", "/cancel`",
                      '"/api/policy"', '"/api/policy/rules"', "/remove`",
                      '"X-CSRF-Token"'):
            self.assertIn(route, script)
        self.assertNotRegex(script.replace('"http://www.w3.org/2000/svg"', ""), r"https?://")


class PackageTests(TestCase):
    """
    The page's files install with the package.
    """

    timeout = 120

    @defer.inlineCallbacks
    def test_wheelAndSdist(self):
        """
        A plain (not editable) wheel and the source distribution both carry
        the templates, the script and the style sheet.
        """
        # Built from a copy, so the build leaves nothing in the tree.
        here = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
        root = os.path.abspath(self.mktemp())
        for name in ("setup.py", "setup.cfg", "README.md", "LICENSE"):
            os.makedirs(root, exist_ok=True)
            shutil.copy(os.path.join(here, name), root)
        for name in ("pz", "pzh", "pzp", "twisted"):
            shutil.copytree(os.path.join(here, name), os.path.join(root, name),
                            ignore=shutil.ignore_patterns("__pycache__", "dropin.cache"))
        out = os.path.abspath(self.mktemp())
        os.makedirs(out)
        built = []
        for build in ("build_wheel", "build_sdist"):
            script = ("import sys, setuptools.build_meta as b; "
                      f"name = b.{build}(sys.argv[1]); print('BUILT', name)")
            stdout, stderr, code = yield getProcessOutputAndValue(
                sys.executable, ["-c", script, out], env=dict(os.environ), path=root)
            self.assertEqual(code, 0, stderr.decode("utf-8", "replace"))
            built += [line.split()[1] for line in stdout.decode("utf-8").splitlines()
                      if line.startswith("BUILT ")]
        wheel, sdist = built
        wanted = {"pzh/templates/admin.xml", "pzh/templates/signedout.xml",
                  "pzh/static/admin.js", "pzh/static/admin.css"}
        with zipfile.ZipFile(os.path.join(out, wheel)) as z:
            self.assertEqual(wanted - set(z.namelist()), set())
        with tarfile.open(os.path.join(out, sdist)) as t:
            names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        self.assertEqual(wanted - names, set())
