"""
The admin page in a real headless Chromium, against a real C{twistd pzh}
and real C{twistd pzp} devices over HTTPS: what a person sees and does.

Every step is screenshotted (C{make screenshots} keeps them in
C{docs/images}).
"""

import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from pz import pki
from tests.browser.browser import Browser
from tests.e2e.harness import Zone, pzctl
from tests.e2e.meshsetup import meshApprovalScenario

#: Seconds a step may take on a loaded machine.
STEP = 30.0


def _stateOf(deviceId: str):
    """
    A condition: the state the device's row shows, once it has a row.
    """
    def state(driver):
        cells = driver.find_elements("css selector", f'tr[data-device="{deviceId}"] .state')
        return cells[0].text if cells else None
    return state


def _becomes(deviceId: str, wanted: str):
    return lambda driver: _stateOf(deviceId)(driver) == wanted


class _PageTest(TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def signedIn(self, *hubArgs):
        """
        A hub started with C{hubArgs} and a browser signed in to its page
        with a fresh link; fires with C{(zone, browser, link)}.
        """
        zone = Zone(self)
        yield zone.startHub(*hubArgs)
        browser = yield Browser(self).start()
        link = (yield pzctl("--hub-dir", zone.hubDir, "admin-link")).strip()
        yield browser.get(link)
        shown = yield browser.text("#zone-id", STEP)
        self.assertEqual(shown, zone.zoneId)
        return zone, browser, link

    def markPage(self, browser):
        """
        Mark the loaded page so L{samePage} can tell it was not reloaded.
        """
        return browser.run(lambda driver: driver.execute_script(
            "document.documentElement.dataset.testMark = 'kept';"))

    @defer.inlineCallbacks
    def assertSamePage(self, browser):
        mark = yield browser.run(lambda driver: driver.execute_script(
            "return document.documentElement.dataset.testMark || null;"))
        self.assertEqual(mark, "kept", "the page was reloaded")


class SignInTests(_PageTest):
    """
    The link signs in once; signing out ends the session.
    """

    @defer.inlineCallbacks
    def test_signInOnceAndOut(self):
        zone, browser, link = yield self.signedIn()
        fingerprint = yield browser.text("#ca-fingerprint")
        ca = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        self.assertEqual(fingerprint, pki.caFingerprint(ca))
        yield browser.screenshot("signed-in")
        friends = yield browser.text("#zones-note")
        self.assertIn("invite-zone", friends)

        # The same link a second time: refused, and says so.
        yield browser.get(link)
        refused = yield browser.text("body")
        self.assertIn("NOT_AUTHORISED", refused)
        yield browser.screenshot("link-used")

        # Still signed in by the first use's cookie; then out.
        yield browser.get(link.split("/signin")[0] + "/")
        yield browser.text("#zone-id")
        yield browser.click("#signout")
        yield browser.text("#signed-out")
        yield browser.screenshot("signed-out")
        yield browser.get(link.split("/signin")[0] + "/")
        text = yield browser.text("#signed-out")
        self.assertIn("admin-link", text)


class PairRevokeTests(_PageTest):
    """
    A device paired from the page enrols, shows up connected live, and is
    revoked from the page after a confirmation that names it.
    """

    @defer.inlineCallbacks
    def test_pairConnectRevoke(self):
        zone, browser, _ = yield self.signedIn()
        yield self.markPage(browser)
        deviceId = zone.deviceId("phone")

        # With the keyboard: the name, then Enter.
        def typeName(driver):
            from selenium.webdriver.common.keys import Keys

            field = driver.find_element("css selector", "#pair-device")
            field.send_keys("phone", Keys.ENTER)
        yield browser.run(typeName)
        code = yield browser.text("#pair-code", STEP)
        ca = pki.readCertificate(os.path.join(zone.hubDir, "ca.pem"))
        self.assertTrue(code.startswith(f"pz://127.0.0.1:{zone.port}/"), code)
        self.assertTrue(code.endswith("#" + pki.caFingerprint(ca)), code)
        qr = yield browser.run(lambda driver: len(
            driver.find_elements("css selector", "#pair-qr svg")))
        self.assertEqual(qr, 1)
        left = yield browser.text("#pair-time-left")
        self.assertRegex(left, r"\d")
        yield browser.waitUntil(lambda driver: driver.find_elements(
            "css selector", "#codes [data-code-id]"), what="the outstanding code")
        yield browser.screenshot("pairing", "#pair-result")

        # The code read off the page enrols a real device.
        zone.startDevice("phone", code)
        yield browser.waitUntil(_becomes(deviceId, "connected"), STEP, "the row to turn connected")
        yield self.assertSamePage(browser)
        yield browser.waitUntil(lambda driver: not driver.find_elements(
            "css selector", "#codes [data-code-id]"), what="the used code to leave the list")
        yield browser.screenshot("admin-page")
        # Its synchronisation and its services have their rows too.
        yield browser.waitUntil(lambda driver: driver.find_elements(
            "css selector", f'table#sync tr[data-device="{deviceId}"]'), STEP, "the sync row")
        yield browser.waitUntil(lambda driver: driver.find_elements(
            "css selector", f'table#services tr[data-device="{deviceId}"][data-service="get42"]'),
            STEP, "the device's services")

        # Revoke: asked first, naming the device; "no" changes nothing.
        row = f'tr[data-device="{deviceId}"]'
        yield browser.click(f"{row} button.revoke")
        asked = yield browser.text("#confirm-text")
        self.assertIn("phone", asked)
        yield browser.screenshot("revoke-confirm", "#confirm")
        yield browser.click("#confirm-no")
        state = yield browser.waitUntil(_stateOf(deviceId))
        self.assertEqual(state, "connected")
        yield browser.click(f"{row} button.revoke")
        yield browser.click("#confirm-yes")
        yield browser.waitUntil(_becomes(deviceId, "revoked"), STEP, "the row to turn revoked")
        yield self.assertSamePage(browser)
        yield browser.screenshot("device-revoked", "#devices")
        # ...while the device is cut off and erases the zone.
        status = yield zone.waitState("phone", "Virgin", "NotConnected", timeout=STEP)
        self.assertEqual(status["error"]["code"], "CERT_REVOKED")
        listed = {d["id"]: d for d in (yield zone.devicesList())}
        self.assertEqual(listed[deviceId]["state"], "revoked")


class DeviceListTests(_PageTest):
    """
    Filtering, sorting, cancelling a code, and a phone-sized window.
    """

    @defer.inlineCallbacks
    def test_filterSortCancelPhone(self):
        zone, browser, _ = yield self.signedIn()
        for name in ("phone", "laptop"):
            yield zone.pairDevice(name)
        phone, laptop = zone.deviceId("phone"), zone.deviceId("laptop")
        for deviceId in (phone, laptop):
            yield browser.waitUntil(_becomes(deviceId, "connected"), STEP, deviceId)

        def shown(driver):
            return [row.get_attribute("data-device")
                    for row in driver.find_elements("css selector", "#devices tbody tr[data-device]")
                    if row.is_displayed()]

        yield browser.run(lambda driver: driver.find_element(
            "css selector", "#device-filter").send_keys("lap"))
        yield browser.waitUntil(lambda driver: shown(driver) == [laptop], what="the filter")
        yield browser.run(lambda driver: driver.find_element("css selector", "#device-filter").clear())
        yield browser.run(lambda driver: driver.execute_script(
            "document.getElementById('device-filter').dispatchEvent(new Event('input'));"))
        yield browser.waitUntil(lambda driver: len(shown(driver)) == 2, what="the filter cleared")

        yield browser.click('button[data-sort="id"]')
        first = yield browser.run(shown)
        yield browser.click('button[data-sort="id"]')
        yield browser.waitUntil(lambda driver: shown(driver) == list(reversed(first)),
                                what="the order to reverse")

        # A code made on the page, cancelled on the page.
        yield browser.run(lambda driver: driver.find_element(
            "css selector", "#pair-device").send_keys("tablet"))
        yield browser.click("#pair-submit")
        yield browser.text("#pair-code")
        codes = yield pzctl("--hub-dir", zone.hubDir, "codes", "--json")
        self.assertIn("tablet", codes)
        yield browser.click("#codes [data-code-id] button.cancel")
        yield browser.waitUntil(lambda driver: not driver.find_elements(
            "css selector", "#codes [data-code-id]"), what="the cancelled code to go")
        codes = yield pzctl("--hub-dir", zone.hubDir, "codes", "--json")
        self.assertNotIn("tablet", codes)

        yield self.policyStep(zone, browser, laptop)

        # Phone width: nothing wider than the window.
        # (Headless Chromium keeps windows at least 500 pixels wide: the
        # phone's viewport is emulated.)
        yield browser.run(lambda driver: driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}))
        width, overflow = yield browser.run(lambda driver: driver.execute_script(
            "return [window.innerWidth,"
            " document.documentElement.scrollWidth - window.innerWidth];"))
        self.assertEqual(width, 390)
        self.assertLessEqual(overflow, 0)
        yield browser.screenshot("phone-width")


    @defer.inlineCallbacks
    def policyStep(self, zone, browser, laptop: str):
        """
        A deny rule added on the page with the keyboard is listed and in
        the file C{pzctl policy show} reads; a rule C{pzctl} adds appears
        without a reload; the page's rule is removed after a confirmation
        naming it.
        """
        def rules(driver):
            return {row.get_attribute("data-rule"): row.get_attribute("data-effect")
                    for row in driver.find_elements("css selector", "#policy-rules tr[data-rule]")}

        def policyShow():
            return pzctl("--hub-dir", zone.hubDir, "policy", "show", "--json").addCallback(
                lambda out: {r["id"]: r for r in json.loads(out)})

        before = yield browser.waitUntil(rules, STEP, "the policy's rules")

        def fill(driver):
            from selenium.webdriver.common.keys import Keys
            from selenium.webdriver.support.ui import Select

            Select(driver.find_element("css selector", "#policy-effect")).select_by_value("deny")
            driver.find_element("css selector", "#policy-subject").send_keys(laptop)
            driver.find_element("css selector", "#policy-first").click()
            driver.find_element("css selector", "#policy-service").send_keys("get42", Keys.ENTER)
        yield browser.run(fill)
        shown = yield browser.waitUntil(lambda driver: set(rules(driver)) - set(before),
                                        STEP, "the new rule")
        [ruleId] = shown
        row = f'#policy-rules tr[data-rule="{ruleId}"]'
        cells = yield browser.text(f"{row} .subject")
        self.assertEqual(cells, laptop)
        listed = yield policyShow()
        self.assertEqual((listed[ruleId]["effect"], listed[ruleId]["subject"],
                          listed[ruleId]["service"]), ("deny", laptop, "get42"))
        self.assertEqual(list(listed)[0], ruleId)
        yield browser.screenshot("policy", "#policy")

        # pzctl edits the same file: the page hears of it and shows it.
        cli = (yield pzctl("--hub-dir", zone.hubDir, "policy", "add", "--effect", "permit",
                           "--service", "fromcli")).strip()
        yield browser.waitUntil(lambda driver: cli in rules(driver), STEP, "pzctl's rule")

        yield browser.click(f"{row} button.remove")
        asked = yield browser.text("#confirm-rule-text")
        self.assertIn(ruleId, asked)
        yield browser.screenshot("policy-remove-confirm", "#confirm-rule")
        yield browser.click("#confirm-rule-yes")
        yield browser.waitUntil(lambda driver: ruleId not in rules(driver), STEP,
                                "the removed rule to go")
        listed = yield policyShow()
        self.assertNotIn(ruleId, listed)
        self.assertIn(cli, listed)


class MeshApprovalTests(_PageTest):
    """
    A Mesh connection request approved from the page, signed on the
    account's administration device.
    """

    @defer.inlineCallbacks
    def test_approveFromPage(self):
        scenario = yield meshApprovalScenario(self)
        zone = scenario.zone
        browser = yield Browser(self).start()
        link = (yield pzctl("--hub-dir", zone.hubDir, "admin-link")).strip()
        yield browser.get(link)
        row = f'#mesh-pending [data-request="{scenario.request}"]'
        shown = yield browser.text(row, STEP)
        self.assertIn("tablet", shown)
        yield browser.screenshot("mesh-pending", "#mesh-pending")
        yield browser.click(f"{row} button.approve")
        notice = yield browser.waitUntil(lambda driver: "Accepted" in driver.find_element(
            "css selector", "#notice").text and driver.find_element(
            "css selector", "#notice").text, STEP, "the approval")
        self.assertIn("tablet", notice)
        connected = yield scenario.connecting
        self.assertEqual((connected["result"], connected["zone_device"]),
                         ("Accepted", zone.deviceId("tablet")))
        yield browser.waitUntil(lambda driver: not driver.find_elements("css selector", row),
                                STEP, "the request to leave the list")
        yield browser.screenshot("mesh-approved", "#mesh-pending")
