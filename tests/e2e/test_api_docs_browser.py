"""/docs in headless Chromium against the real gateway: the published operations, local files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from dataintel.http.api_docs import ASSETS, STATIC_DIR
from tests.e2e.test_graphiql_browser import BROWSER_SECONDS, browser, missing
from tests.plugins.server import running_gateway

__all__ = ["browser"]  # the fixture, shared with the GraphiQL test

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """The real ``python -m dataintel serve`` on a fresh SQLite store; yields its origin."""
    if not all((STATIC_DIR / name).is_file() for name in ASSETS):
        missing("Swagger UI assets are not built: run `make assets` (bash web/api-docs/build.sh)")
    with running_gateway(tmp_path) as origin:
        yield origin


def test_api_reference_shows_the_published_operations(
    gateway: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(f"{gateway}/docs")
    wait = WebDriverWait(browser, BROWSER_SECONDS)
    try:
        wait.until(
            expected_conditions.presence_of_element_located(
                (By.CSS_SELECTOR, "#operations-commerce-RecentOrders")
            )
        )
    finally:
        browser.save_screenshot(str(tmp_path / "api-docs.png"))
    paths = {
        element.text.replace("\u200b", "")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert {
        "/api/v1/orders/recent",
        "/api/v1/analytics/revenue-by-region",
        "/api/v1/customers/{tier}/features",
        "/api/v1/auth/token",
        "/healthz",
    } <= paths
    # Opening an operation shows the parameters derived from its GraphQL variables.
    browser.find_element(
        By.CSS_SELECTOR, "#operations-commerce-RecentOrders .opblock-summary-control"
    ).click()
    wait.until(
        expected_conditions.presence_of_element_located(
            (By.CSS_SELECTOR, "#operations-commerce-RecentOrders tr[data-param-name='status']")
        )
    )
    resources: list[Any] = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    foreign = [url for url in resources if not url.startswith(f"{gateway}/")]
    assert foreign == [], f"requests left the server: {foreign}"
    assert f"{gateway}/openapi.json" in resources
    assert browser.execute_script("return window.__cspViolations") == []
