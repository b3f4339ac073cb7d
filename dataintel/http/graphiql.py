"""GraphiQL served by the gateway itself, so it works where no CDN can be reached.

The browser files are not in the repository: ``web/graphiql/build.sh`` (``make assets``)
fetches the versions pinned in ``web/graphiql/package-lock.json``, integrity-checked by
``npm ci``, into ``STATIC_DIR``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qs

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"
TEMPLATE = Path(__file__).parent / "templates" / "graphiql.html"

REACT_JS = "react.production.min.js"
REACT_DOM_JS = "react-dom.production.min.js"
GRAPHIQL_JS = "graphiql.min.js"
GRAPHIQL_CSS = "graphiql.min.css"
ASSETS = (REACT_JS, REACT_DOM_JS, GRAPHIQL_JS, GRAPHIQL_CSS)

# Asset URLs carry ?v=<content hash>, so a rebuilt file gets a new URL and may be cached forever.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL not built</title></head>
<body><h1>GraphiQL's files have not been built</h1>
<p>Run <code>make assets</code> (or <code>bash web/graphiql/build.sh</code>) on the server,
then reload. Missing: {missing}.</p></body></html>
"""


def graphiql_page(
    graphql_path: str, static_path: str = "/static/graphiql", *, assets_dir: Path | None = None
) -> HTMLResponse:
    """GraphiQL loading only this server's files, or 503 saying to run ``make assets``."""
    directory = STATIC_DIR if assets_dir is None else assets_dir
    missing = [name for name in ASSETS if not (directory / name).is_file()]
    if missing:
        return HTMLResponse(
            _NOT_BUILT.format(missing=html.escape(", ".join(missing))),
            status_code=503,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )
    base = static_path.rstrip("/")
    values = {
        "react_js": _asset_url(base, directory, REACT_JS),
        "react_dom_js": _asset_url(base, directory, REACT_DOM_JS),
        "graphiql_js": _asset_url(base, directory, GRAPHIQL_JS),
        "graphiql_css": _asset_url(base, directory, GRAPHIQL_CSS),
        "config_json": _script_json({"graphqlPath": graphql_path}),
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


def graphiql_static_mount(
    static_path: str = "/static/graphiql", *, assets_dir: Path | None = None
) -> Mount:
    """Serves the built GraphiQL files; starts even before ``make assets`` has run."""
    directory = STATIC_DIR if assets_dir is None else assets_dir
    return Mount(
        static_path.rstrip("/"),
        app=_AssetFiles(directory=directory, check_dir=False),
        name="graphiql-static",
    )


class _AssetFiles(StaticFiles):
    """StaticFiles with cache headers, answering 404 rather than 500 while nothing is built."""

    async def check_config(self) -> None:
        """Raises nothing: before ``make assets`` the folder is missing and lookups answer 404."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        """The file, cached for a year when its URL names its version."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        versioned = "v" in parse_qs(scope.get("query_string", b"").decode("latin-1"))
        response.headers["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


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
            # GraphiQL's dialogs inject a <style> element (react-remove-scroll-bar) when opened.
            "style-src 'self' 'unsafe-inline'",
            # The CSS embeds its fonts and icons as data: URLs.
            "font-src data:",
            "img-src data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _asset_url(base: str, directory: Path, name: str) -> str:
    """The file's URL with a version from its content, escaped for an HTML attribute."""
    path = directory / name
    stat = path.stat()
    version = _content_version(str(path), stat.st_mtime_ns, stat.st_size)
    return html.escape(f"{base}/{name}?v={version}")


@lru_cache(maxsize=32)
def _content_version(path: str, mtime_ns: int, size: int) -> str:
    """A short content hash; mtime and size are in the key so a rebuild is noticed."""
    del mtime_ns, size
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _script_json(value: object) -> str:
    """JSON safe inside a <script> element: no '<' can close it early."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@lru_cache(maxsize=1)
def _template() -> str:
    """The page template, read once."""
    return TEMPLATE.read_text(encoding="utf-8")
