"""The web page in a real browser (Debian's headless chromium through selenium) against a real
`mmrag serve`: upload, wait for done, ask, read the streamed answer beside its evidence cards.

Screenshots go to a temp folder, or to MMRAG_SCREENSHOTS (the README's come from
`MMRAG_SCREENSHOTS=docs/screenshots pytest tests/app/test_web.py`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app.conftest import free_port, wait_for

CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("the web page tests need a browser: apt-get install chromium chromium-driver (Debian/Ubuntu), "
                "then pip install -e '.[dev]' for selenium", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[dev]' (selenium)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("web") / "data"
    port = free_port()
    env = {**os.environ, "MMRAG_IMAGE_PRETRAINED": "packaged", "MMRAG_UPLOAD_WAIT_S": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(data), "--port", str(port), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/readyz", proc)
    yield base
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MMRAG_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait(driver, condition, seconds=180):
    return WebDriverWait(driver, seconds, poll_frequency=0.25).until(lambda d: condition(d))


def upload_rows(driver) -> dict[str, tuple[str, str]]:
    rows = {}
    for li in driver.find_elements(By.CSS_SELECTOR, "#uploads li"):
        reason = li.find_elements(By.CSS_SELECTOR, ".reason")
        rows[li.get_attribute("data-file")] = (li.find_element(By.CSS_SELECTOR, ".status").text, reason[0].text if reason else "")
    return rows


def test_upload_ask_and_read_the_evidence(server, browser, fixtures, shots):
    d = browser
    d.get(server)
    assert d.find_element(By.CSS_SELECTOR, "label[for=question]").text == "Question"
    d.find_element(By.ID, "new-name").send_keys("field notes")
    d.find_element(By.CSS_SELECTOR, "#new-collection button").click()
    wait(d, lambda d: d.find_element(By.ID, "collection").get_attribute("value") == "field notes")

    d.find_element(By.ID, "files").send_keys(f"{fixtures['pdf']}\n{fixtures['docx']}\n{fixtures['encrypted_pdf']}")
    bad = fixtures["encrypted_pdf"].name
    expected = {fixtures["pdf"].name: "done", fixtures["docx"].name: "done", bad: "failed"}
    wait(d, lambda d: {name: status for name, (status, _) in upload_rows(d).items()} == expected)
    assert "encrypted" in upload_rows(d)[bad][1].lower()  # the reason, as the server gave it
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#documents li")) == 3)
    d.save_screenshot(str(shots / "documents.png"))

    question = d.find_element(By.ID, "question")
    question.send_keys("What is the iron content at Vesuvius?")
    d.find_element(By.ID, "ask-button").click()
    wait(d, lambda d: "455" in d.find_element(By.ID, "answer").text and not d.find_element(By.ID, "ask-button").get_attribute("disabled"))
    answer = d.find_element(By.ID, "answer")
    link = answer.find_element(By.CSS_SELECTOR, "a.cite")
    cards = d.find_elements(By.CSS_SELECTOR, "#cards .card")
    assert cards and link.get_attribute("href").endswith(f"#{cards[0].get_attribute('id')}")
    table_cards = [c for c in cards if "table" in c.get_attribute("class")]
    assert table_cards and "Vesuvius" in table_cards[0].find_element(By.TAG_NAME, "table").text
    # the page thumbnail, with the cited region drawn on it, loaded through an authorised fetch
    thumb = wait(d, lambda d: next((i for i in d.find_elements(By.CSS_SELECTOR, "#cards img.thumb")
                                    if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)), None), 60)
    assert thumb.get_attribute("src").startswith("blob:")
    d.save_screenshot(str(shots / "answer.png"))
    thumb.click()  # opens the page large
    wait(d, lambda d: d.execute_script("return document.getElementById('viewer').open && "
                                       "document.getElementById('viewer-img').naturalWidth > 0"), 30)
    d.save_screenshot(str(shots / "page.png"))
    d.find_element(By.CSS_SELECTOR, "#viewer button").click()

    question.clear()
    question.send_keys("a red circle on a blue square")
    d.find_element(By.ID, "ask-button").click()
    figure = wait(d, lambda d: next((i for i in d.find_elements(By.CSS_SELECTOR, "#cards .card.image img.figure")
                                     if d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", i)), None), 60)
    assert figure.get_attribute("src").startswith("blob:")

    question.clear()
    question.send_keys("Who won the 1998 football world cup?")
    d.find_element(By.ID, "ask-button").click()
    wait(d, lambda d: "no_answer" in d.find_element(By.ID, "answer").get_attribute("class"))
    assert "do not say" in d.find_element(By.ID, "answer").text


def test_errors_read_as_sentences_and_the_page_fits_a_phone(server, browser, shots):
    d = browser
    d.get(server)
    wait(d, lambda d: d.find_element(By.ID, "collection").get_attribute("value"))
    d.execute_script("document.getElementById('collection').add(new Option('missing', 'missing'));"
                     "document.getElementById('collection').value = 'missing';"
                     "document.getElementById('collection').dispatchEvent(new Event('change'));")
    d.find_element(By.ID, "question").send_keys("anything")
    d.find_element(By.ID, "ask-button").click()
    error = wait(d, lambda d: d.find_element(By.ID, "error") if d.find_element(By.ID, "error").is_displayed() else None, 30)
    assert "no collection named 'missing'" in error.text and "404" in error.text
    d.set_window_size(390, 844)
    time.sleep(0.3)
    assert d.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
    d.save_screenshot(str(shots / "phone.png"))
    d.set_window_size(1280, 1000)


def test_with_keys_the_page_asks_for_one_and_sends_it(tmp_path, browser, fixtures):
    import hashlib

    port = free_port()
    env = {**os.environ, "MMRAG_API_KEYS": hashlib.sha256(b"s3cret").hexdigest()}
    proc = subprocess.Popen([sys.executable, "-m", "mmrag", "serve", "--data-dir", str(tmp_path / "data"), "--port", str(port),
                             "--no-access-log"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz", proc)
        d = browser
        d.get(base)
        error = wait(d, lambda d: d.find_element(By.ID, "error") if d.find_element(By.ID, "error").is_displayed() else None, 30)
        assert "401" in error.text
        d.find_element(By.ID, "api-key").send_keys("s3cret")
        d.find_element(By.CSS_SELECTOR, "#key-form button").click()
        wait(d, lambda d: not d.find_element(By.ID, "error").is_displayed(), 30)
        d.find_element(By.ID, "new-name").send_keys("keyed")
        d.find_element(By.CSS_SELECTOR, "#new-collection button").click()
        d.find_element(By.ID, "files").send_keys(str(fixtures["txt"]))
        wait(d, lambda d: [s for s, _ in upload_rows(d).values()] == ["done"])
        assert d.execute_script("return sessionStorage.getItem('mmrag-api-key')") == "s3cret"
    finally:
        proc.terminate()
        proc.wait(20)
