"""/docs: the API reference page (Swagger UI) over /openapi.json, served by the gateway itself.

Like GraphiQL, the browser files are not in the repository: ``web/api-docs/build.sh`` (``make
assets``) fetches the version pinned in ``web/api-docs/package-lock.json``, integrity-checked
by ``npm ci``, into ``STATIC_DIR``. The page loads nothing from another origin.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount

from dataintel.http.graphiql import graphiql_static_mount

STATIC_DIR = Path(__file__).parent / "static" / "api-docs"
STATIC_PATH = "/static/api-docs"
TEMPLATE = Path(__file__).parent / "templates" / "api_docs.html"

SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
ASSETS = (SWAGGER_JS, SWAGGER_CSS)

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API reference not built</title></head>
<body><h1>The API reference's files have not been built</h1>
<p>Run <code>make assets</code> (or <code>bash web/api-docs/build.sh</code>) on the server,
then reload. Missing: {missing}. The document itself is at <a href="{openapi}">{openapi}</a>.
</p></body></html>
"""


def api_docs_page(
    openapi_path: str = "/openapi.json", *, assets_dir: Path | None = None
) -> HTMLResponse:
    """Swagger UI loading only this server's files, or 503 saying to run ``make assets``."""
    directory = STATIC_DIR if assets_dir is None else assets_dir
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        return HTMLResponse(
            _NOT_BUILT.format(
                missing=html.escape(", ".join(missing)), openapi=html.escape(openapi_path)
            ),
            status_code=503,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )
    config = json.dumps({"openapiPath": openapi_path})
    values = {
        "swagger_js": _asset_url(directory, SWAGGER_JS),
        "swagger_css": _asset_url(directory, SWAGGER_CSS),
        "config_json": config.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026"),
    }
    page = _PLACEHOLDER.sub(lambda match: values[match.group(1)], _template())
    return HTMLResponse(
        page,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _content_security_policy(page),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def api_docs(_: Request) -> Response:
    """GET /docs."""
    return api_docs_page()


def api_docs_static_mount(*, assets_dir: Path | None = None) -> Mount:
    """Serves the built Swagger UI files, with GraphiQL's cache headers."""
    return graphiql_static_mount(STATIC_PATH, assets_dir=assets_dir or STATIC_DIR)


def _content_security_policy(page: str) -> str:
    """Only this origin's files, plus the page's own inline script by hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(page)
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' {hashes}",
            # Swagger UI sets style attributes on its elements.
            "style-src 'self' 'unsafe-inline'",
            # Its CSS draws icons as data: URLs.
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _asset_url(directory: Path, name: str) -> str:
    """The file's URL with a version from its content, escaped for an HTML attribute."""
    path = directory / name
    stat = path.stat()
    version = _content_version(str(path), stat.st_mtime_ns, stat.st_size)
    return html.escape(f"{STATIC_PATH}/{name}?v={version}")


@lru_cache(maxsize=8)
def _content_version(path: str, mtime_ns: int, size: int) -> str:
    """A short content hash; mtime and size are in the key so a rebuild is noticed."""
    del mtime_ns, size
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _template() -> str:
    """The page template, read once."""
    return TEMPLATE.read_text(encoding="utf-8")
