"""GraphiQL in headless Chromium against the real gateway, with no network but loopback."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from dataintel import __version__
from dataintel.http.graphiql import ASSETS, STATIC_DIR
from tests.plugins.server import running_gateway

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_SECONDS = 30.0
QUERY = "{ status { version } }"

# Collects CSP violations from before the page's first script runs.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

pytestmark = pytest.mark.e2e


def missing(reason: str) -> None:
    """Skips, or fails where the environment says the browser run is required."""
    if os.environ.get("DATAINTEL_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """The real ``python -m dataintel serve`` on a fresh SQLite store; yields its origin."""
    if not all((STATIC_DIR / name).is_file() for name in ASSETS):
        missing("GraphiQL assets are not built: run `make assets` (bash web/graphiql/build.sh)")
    with running_gateway(tmp_path) as origin:
        yield origin


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Debian Chromium driven by Debian's chromedriver, with a fresh profile."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        missing(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing: "
            "apt-get install chromium chromium-driver (or set DATAINTEL_REQUIRE_BROWSER=1 to fail)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # An explicit driver path means Selenium Manager never looks for (or downloads) a driver.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_CSP_VIOLATIONS}
        )
        yield driver
    finally:
        driver.quit()


def test_graphiql_runs_a_query_with_only_local_files(
    gateway: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    fragment = urllib.parse.urlencode({"query": QUERY})
    browser.get(f"{gateway}/graphql#{fragment}")
    wait = WebDriverWait(browser, BROWSER_SECONDS)
    execute = wait.until(
        expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, ".graphiql-execute-button"))
    )
    editor: str = browser.execute_script(
        "return document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
    )
    assert editor == QUERY
    execute.click()
    try:
        wait.until(
            expected_conditions.text_to_be_present_in_element(
                (By.CSS_SELECTOR, ".graphiql-response"), '"version"'
            )
        )
    finally:
        browser.save_screenshot(str(tmp_path / "graphiql.png"))
    result: str = browser.execute_script(
        "return document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
    )
    assert json.loads(result) == {"data": {"status": {"version": __version__}}}

    resources: list[Any] = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert resources, "the page loaded no files at all"
    foreign = [url for url in resources if not url.startswith(f"{gateway}/")]
    assert foreign == [], f"requests left the server: {foreign}"
    assert f"{gateway}/graphql" in resources
    assert any(url.startswith(f"{gateway}/static/graphiql/graphiql.min.js") for url in resources)
    assert browser.execute_script("return window.__cspViolations") == []
