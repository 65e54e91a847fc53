"""The analysts' page in headless Chromium (Debian's chromium and chromium-driver, driven by Selenium).

Types two texts, submits with the keyboard, checks the highlighted evidence, the verdicts and a case
link against `predict`, and saves the screenshot the README shows (docs/serve-page.png).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serve_process import serving  # noqa: E402

from disinfo_clf import predict  # noqa: E402

SCREENSHOT = Path(os.environ.get("DISINFO_CLF_SCREENSHOT", "")) if os.environ.get("DISINFO_CLF_SCREENSHOT") else None
"""Where to save the screenshot the README shows: DISINFO_CLF_SCREENSHOT=docs/serve-page.png bash scripts/test.sh
-k browser (unset: a temporary file, so a test run leaves the tree clean)."""
TOKEN = "browser-test-token"
CLAIM = ("Salisbury, March 2018. Police closed the park near the shopping centre on Sunday afternoon, and two "
         "people were taken to hospital. Residents were told to wash their clothes and wipe their phones. But the "
         "truth is simple: the Skripal poisoning was a staged provocation by British intelligence, invented to "
         "blame Russia and to expel its diplomats. The city council said the park will reopen in spring, after "
         "new benches and lights are installed along the river path.")
PLAIN = "The city council approved a new budget for public libraries on Tuesday evening."


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.fixture()
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver = _browser_paths()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1500", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(arg)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.mark.slow
def test_page_shows_verdicts_evidence_and_cases(tmp_path: Path, browser: webdriver.Chrome) -> None:
    claim, plain = predict([CLAIM, PLAIN], top_k=5)
    with serving(tmp_path, env={"DISINFO_CLF_TOKEN": TOKEN}) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120)
        token = wait.until(ec.visibility_of_element_located((By.ID, "token")))  # the server has a token
        text = browser.find_element(By.ID, "text")
        assert browser.switch_to.active_element == text  # the text box has the focus on arrival

        # Without the token: the error is said in words, and the page asks for the token.
        text.send_keys(CLAIM)
        text.send_keys(Keys.CONTROL, Keys.ENTER)
        error = wait.until(ec.visibility_of_element_located((By.ID, "error")))
        assert "token" in error.text.lower()

        token.send_keys(TOKEN)
        browser.find_element(By.ID, "many").click()
        text.clear()
        text.send_keys(CLAIM + Keys.ENTER + PLAIN)  # one text per line
        browser.find_element(By.ID, "analyse").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.result")) == 2)
        assert not browser.find_element(By.ID, "error").is_displayed()

        assert text.get_attribute("value") == CLAIM + "\n" + PLAIN
        first, second = browser.find_elements(By.CSS_SELECTOR, "article.result")
        mark = first.find_element(By.CSS_SELECTOR, "mark.evidence")
        assert claim.evidence is not None and mark.text == claim.evidence.text.strip()
        assert "Skripal" in mark.text and len(mark.text) < len(CLAIM)
        assert first.find_element(By.CSS_SELECTOR, ".verdict").text == f"Pushes: {claim.name}"
        links = first.find_elements(By.CSS_SELECTOR, "ol.cases a.case")
        assert links and [a.get_attribute("href") for a in links] == [m.url for m in claim.matches if m.url]
        assert links[0].text == claim.matches[0].title
        assert first.find_element(By.CSS_SELECTOR, "ol.cases .date").text == claim.matches[0].date
        bars = first.find_elements(By.CSS_SELECTOR, "svg.bars g")
        assert len(bars) == len(claim.scores)
        assert f"language: {claim.language}" in first.text and f"role: {claim.role}" in first.text

        assert plain.narratives == []  # an ordinary news sentence: "no known narrative" comes first
        assert second.find_element(By.CSS_SELECTOR, ".verdict").text == "No known narrative"

        browser.execute_script("window.scrollTo(0, 0)")
        shot = SCREENSHOT or tmp_path / "serve-page.png"
        shot.parent.mkdir(exist_ok=True)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, min(max(height + 20, 900), 2400))
        assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
