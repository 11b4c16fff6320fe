"""A real browser plays the demo to the end: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs
them) and the ``selenium`` package (a test extra).  Skips, saying why, only
when they cannot be found.
"""

import os
import shutil

import pytest

from .support import demo_process

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("Debian's chromium and chromium-driver are not installed"
                    " (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--user-data-dir=%s" % (tmp_path / "profile")):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER,
                                      log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_a_browser_plays_guess_the_number_to_the_end(browser, tmp_path):
    with demo_process() as server:  # the real demo.py, as users run it
        browser.get(server.url)
        assert browser.title == "Guess the number"
        low, high, typed = 1, 100, 0

        def submit(text):
            field = browser.find_element(By.NAME, "guess")
            field.clear()
            field.send_keys(text)
            old = browser.find_element(By.TAG_NAME, "form")
            browser.find_element(By.CSS_SELECTOR, 'input[type=submit][value="Guess!"]').click()
            WebDriverWait(browser, 10).until(lambda d: _stale(old))  # the next page loaded
            return browser.find_element(By.ID, "message").text

        assert submit("not a number") == "You must guess a number between 1 and 100."
        for _ in range(10):
            guess = (low + high) // 2
            text = submit(str(guess))
            typed += 1
            if "too low" in text:
                low = guess + 1
            elif "too high" in text:
                high = guess - 1
            else:
                break
        browser.save_screenshot(str(tmp_path / "final.png"))
        assert os.path.getsize(tmp_path / "final.png") > 0
        assert text == "Yay - %d is the right number, you made it in %d guess%s." % (
            guess, typed, "" if typed == 1 else "es")
        link = browser.find_element(By.LINK_TEXT, "Play again")
        link.click()
        WebDriverWait(browser, 10).until(
            lambda d: "You have guessed 0 times." in d.page_source)


def _stale(element):
    try:
        element.is_enabled()
        return False
    except Exception:
        return True
