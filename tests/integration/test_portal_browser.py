"""The portal in a real browser: Debian's headless Chromium (driven through chromium-driver) against `engine serve
--local-sign-in` over a real deployment (real Pulumi, the local target) and a recorded history.

Sign in, the fleet, a customer's stack page with its outputs (the database password masked — the real password, read
from the database the deployment created, is nowhere in the page), the SLA report with its charts, and a customer
user who cannot open another customer.  Screenshots go to the test's folder; with ENGINE_UPDATE_SCREENSHOTS=1 they
replace docs/portal-*.png (README shows them).  A missing Chromium fails the test: `make test` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from engine.history import HistoryStore
from tests.conftest import REPO, EngineCLI
from tests.unit import portal_fixtures as pf

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)} missing): run `make browser`",
                    pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def portal(tmp_path):
    """A deployed customer (acme/staging, real Pulumi), the recorded SLA history, and `engine serve --local-sign-in`."""
    root = pf.catalog(tmp_path / "catalog")
    home = tmp_path / "home"
    pf.seed_sla_history(HistoryStore.sqlite(home / "history.sqlite3"))  # May's history first, as it happened
    EngineCLI(home, root)("up", "acme", "--env", "staging", "--json", check=0)  # then today's deployment
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_PORTAL_", "ENGINE_HISTORY_URL"))}
    env.update({"ENGINE_HOME": str(home), "ENGINE_CATALOG": str(root)})
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--port", str(port), "--local-sign-in"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"engine serve did not start:\n{(tmp_path / 'serve.log').read_text()}", pytrace=False)
        time.sleep(0.2)
    try:
        yield {"base": base, "home": home}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _database_password(home: Path) -> str:
    """The real password of the database the deployment created (the local target keeps it in the database itself)."""
    for path in (home / "local-cloud").rglob("*"):
        if path.is_file() and path.suffix in (".db", ".sqlite", ".sqlite3"):
            with sqlite3.connect(path) as db:
                row = db.execute("SELECT value FROM engine_meta WHERE key = 'password'").fetchone()
                if row:
                    return row[0]
    raise AssertionError(f"no database with a password under {home / 'local-cloud'}")


def _shot(driver, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"portal-{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    if os.environ.get("ENGINE_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(path, REPO / "docs" / path.name)


def _sign_in(driver, base: str, who: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/signin")
    driver.find_element(By.CSS_SELECTOR, f'input[name="who"][value="{who}"]').click()
    driver.find_element(By.ID, "local-sign-in").click()
    WebDriverWait(driver, 20).until(lambda d: "/signin" not in d.current_url)


def test_sign_in_fleet_stack_outputs_masked_and_sla_charts_in_chromium(browser, portal, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = portal["base"]
    browser.get(f"{base}/customers/acme")
    assert browser.current_url.startswith(f"{base}/signin?next=")  # not signed in: sent to the sign-in page
    _shot(browser, tmp_path, "signin")

    _sign_in(browser, base, "provider")
    browser.get(f"{base}/fleet")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Fleet"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.fleet tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows] == ["acme", "beta"]
    assert "drifted" in rows[0].text  # acme: its staging drifted on May 12th and was not checked since
    _shot(browser, tmp_path, "fleet")

    browser.find_element(By.LINK_TEXT, "staging").click()
    assert browser.current_url == f"{base}/customers/acme/stacks/staging"
    outputs = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
               for r in browser.find_elements(By.CSS_SELECTOR, "table.outputs tbody tr")}
    assert "secret" in outputs["database_password"] and outputs["database_endpoint"].startswith("sqlite://")
    password = _database_password(portal["home"])
    assert password not in browser.page_source
    _shot(browser, tmp_path, "stack")

    browser.get(f"{base}/sla?from=2026-05-01&to=2026-05-14")
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert len(charts) == 5 and all(c.size["width"] > 300 and c.size["height"] > 50 for c in charts)
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect")) >= 8  # bars, drawn
    cells = browser.find_elements(By.CSS_SELECTOR, "table.sla tr.fleet-row td")
    assert "37.5%" in " ".join(c.text for c in cells)  # the fleet's change failure rate, 3 of 8 (tests/unit/test_portal_sla.py)
    _shot(browser, tmp_path, "sla")

    # a customer's user: their own customer, and a 404 for the other one
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    WebDriverWait(browser, 20).until(lambda d: d.current_url == f"{base}/signin")
    _sign_in(browser, base, "customer:beta")
    assert browser.current_url == f"{base}/customers/beta"
    browser.get(f"{base}/customers/acme/stacks/staging")
    assert browser.find_element(By.TAG_NAME, "h1").text == "404" and password not in browser.page_source
    browser.get(f"{base}/fleet")
    assert browser.find_element(By.TAG_NAME, "h1").text == "403"
