"""
A real headless Chromium for the admin page's tests, driven through
Debian's ChromeDriver with Selenium.

Selenium's calls block, so every one runs in a worker thread
(L{Browser.run}) while the reactor goes on serving the test's C{twistd}
processes and C{pzctl} runs.  Waiting for the page uses Selenium's own
C{WebDriverWait}, polling the DOM in that thread; the reactor never
sleeps.
"""

import os
import shutil
import tempfile

from twisted.internet.threads import deferToThread

__all__ = ["Browser", "CHROMIUM", "CHROMEDRIVER", "SCREENSHOTS"]

#: Where Debian's packages put them (C{make test} installs both).
CHROMIUM = os.environ.get("PZ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PZ_CHROMEDRIVER", "/usr/bin/chromedriver")

#: A folder that also receives every screenshot, when set: C{make
#: screenshots} points it at C{docs/images}.
SCREENSHOTS = "PZ_SCREENSHOTS"

#: Flags that keep Chromium from reaching out to the network on its own
#: (this machine's network is closed and refuses those connections) and
#: let it run as root in a container.
_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)


class Browser:
    """
    One Chromium with an empty profile, for one test: started by
    L{start}, quit by the test's clean-up.

    @ivar shots: the screenshots taken so far, by name.
    """

    def __init__(self, testCase) -> None:
        self.testCase = testCase
        self.driver = None
        self.shots = {}
        self._profile = tempfile.mkdtemp(prefix="pz-chromium-")
        self._shotDir = os.path.abspath(testCase.mktemp())
        os.makedirs(self._shotDir)

    def start(self):
        """
        Start Chromium; fires with this browser.  A machine without
        Chromium or ChromeDriver fails the test with one sentence saying
        how to install them.
        """
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
            if not os.path.exists(path):
                self.testCase.fail(f"{path} is missing: 'make test' installs Debian's {package}")

        def launch():
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service

            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for flag in _FLAGS:
                options.add_argument(flag)
            options.add_argument(f"--user-data-dir={self._profile}")
            # The zone's CA is the hub's own; the tests check the page,
            # not Chromium's trust store (the HTTPS tests check the chain).
            options.accept_insecure_certs = True
            return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))

        def started(driver):
            self.driver = driver
            self.testCase.addCleanup(self.quit)
            return self

        self.testCase.addCleanup(shutil.rmtree, self._profile, True)
        return deferToThread(launch).addCallback(started)

    def quit(self):
        driver, self.driver = self.driver, None
        if driver is not None:
            return deferToThread(driver.quit)

    def run(self, action, *args):
        """
        C{action(driver, *args)} in a worker thread; fires with its result.
        """
        return deferToThread(action, self.driver, *args)

    def get(self, url: str):
        return self.run(lambda driver: driver.get(url))

    def waitUntil(self, condition, timeout: float = 30.0, what: str = "the page"):
        """
        Fire with C{condition(driver)}'s first true value, polled until
        C{timeout}; fail naming C{what} and with the page's text otherwise.
        """
        def wait(driver):
            from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
            from selenium.webdriver.support.ui import WebDriverWait

            # The page redraws rows as events arrive: an element found a
            # moment ago may be gone; look again.
            try:
                return WebDriverWait(driver, timeout, poll_frequency=0.1,
                                     ignored_exceptions=(StaleElementReferenceException,)
                                     ).until(condition)
            except TimeoutException:
                text = driver.find_element("tag name", "body").text
                raise AssertionError(f"timed out waiting for {what}; the page shows:\n{text}")
        return self.run(wait)

    def text(self, selector: str, timeout: float = 30.0):
        """
        Fire with the text of the element C{selector}, once it is visible
        and says something.
        """
        def visible(driver):
            elements = driver.find_elements("css selector", selector)
            return elements[0].text if elements and elements[0].is_displayed() else None
        return self.waitUntil(visible, timeout, what=selector)

    def click(self, selector: str, timeout: float = 30.0):
        """
        Click the element C{selector} once it is visible and enabled.
        """
        def clickable(driver):
            from selenium.webdriver.support import expected_conditions

            return expected_conditions.element_to_be_clickable(("css selector", selector))(driver)
        return self.waitUntil(clickable, timeout, what=f"{selector} to be clickable").addCallback(
            lambda element: self.run(lambda driver: element.click()))

    def screenshot(self, name: str, show: str = None):
        """
        Save the window as C{NAME.png} in the test's folder (and in
        C{$PZ_SCREENSHOTS} when set), scrolled to the element C{show} if
        given; fires with the path.
        """
        def take(driver):
            if show is not None:
                driver.execute_script(
                    "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
                    show)
            path = os.path.join(self._shotDir, f"{name}.png")
            driver.save_screenshot(path)
            also = os.environ.get(SCREENSHOTS)
            if also:
                os.makedirs(also, exist_ok=True)
                shutil.copyfile(path, os.path.join(also, f"{name}.png"))
            self.shots[name] = path
            return path
        return self.run(take)
