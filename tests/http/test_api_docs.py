"""/docs: the Swagger UI page, its local files, and what it says before they are built."""

from __future__ import annotations

import re
from pathlib import Path

from dataintel.http.api_docs import ASSETS, api_docs_page


def built(tmp_path: Path) -> Path:
    for name in ASSETS:
        (tmp_path / name).write_text(f"/* {name} */")
    return tmp_path


def test_the_page_loads_only_local_versioned_files(tmp_path: Path) -> None:
    response = api_docs_page(assets_dir=built(tmp_path))
    assert response.status_code == 200
    page = bytes(response.body).decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assets = [source for source in sources if not source.startswith("data:")]
    names = {re.fullmatch(r"/static/api-docs/([\w.-]+)\?v=[0-9a-f]{16}", url) for url in assets}
    assert None not in names, assets
    assert {match.group(1) for match in names if match} == set(ASSETS)
    assert '"openapiPath": "/openapi.json"' in page
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'$", policy.split(";")[1].strip())
    assert "connect-src 'self'" in policy


def test_not_built_is_503_naming_make_assets(tmp_path: Path) -> None:
    response = api_docs_page(assets_dir=tmp_path)
    assert response.status_code == 503
    page = bytes(response.body).decode()
    assert "make assets" in page
    assert "swagger-ui-bundle.js" in page
    assert response.headers["cache-control"] == "no-store"
