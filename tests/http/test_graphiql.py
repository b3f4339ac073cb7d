"""The self-hosted GraphiQL page and its static files, on a bare Starlette app."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataintel.http import graphiql
from dataintel.http.graphiql import ASSETS, graphiql_page, graphiql_static_mount

ASSET_URL = re.compile(r'(?:src|href)="([^"]*)"')


def make_client(
    assets_dir: Path | None,
    graphql_path: str = "/graphql",
    static_path: str = "/static/graphiql",
) -> httpx.AsyncClient:
    """A client for an app with just the page at graphql_path and the static mount."""

    async def page(_: Request) -> Response:
        return graphiql_page(graphql_path, static_path, assets_dir=assets_dir)

    routes = [
        Route(graphql_path, page, methods=["GET"]),
        graphiql_static_mount(static_path, assets_dir=assets_dir),
    ]
    return client_for(Starlette(routes=routes))


def client_for(app: Starlette) -> httpx.AsyncClient:
    """An in-process client; these apps have no lifespan, so none is run."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def local_assets(page: str) -> list[str]:
    """The page's src/href URLs that are fetched from the server (not data: URLs)."""
    return [url for url in ASSET_URL.findall(page) if not url.startswith("data:")]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A stand-in for the built folder, so these tests need neither npm nor the network."""
    directory = tmp_path / "graphiql"
    directory.mkdir()
    for name in ASSETS:
        (directory / name).write_text(f"/* {name} */\n", encoding="utf-8")
    return directory


async def test_page_is_html_with_only_local_assets(built: Path) -> None:
    async with make_client(built) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text
    assets = local_assets(response.text)
    assert sorted(url.split("?")[0].rsplit("/", 1)[1] for url in assets) == sorted(ASSETS)
    assert all(url.startswith("/static/graphiql/") for url in assets)


async def test_assets_referenced_by_the_page_are_served(built: Path) -> None:
    async with make_client(built) as client:
        page = (await client.get("/graphql")).text
        for url in local_assets(page):
            response = await client.get(url.replace("&amp;", "&"))
            assert response.status_code == 200, url
            name = url.split("?")[0].rsplit("/", 1)[1]
            assert response.text == (built / name).read_text(encoding="utf-8")
            assert response.headers["cache-control"] == graphiql.IMMUTABLE
            assert response.headers["x-content-type-options"] == "nosniff"


async def test_asset_versions_follow_the_content(built: Path) -> None:
    async with make_client(built) as client:
        before = local_assets((await client.get("/graphql")).text)
        (built / "graphiql.min.js").write_text("/* rebuilt, longer than before */\n", "utf-8")
        after = local_assets((await client.get("/graphql")).text)
    changed = [url.split("?")[0] for url in after if url not in before]
    assert changed == ["/static/graphiql/graphiql.min.js"]


async def test_unversioned_asset_is_revalidated(built: Path) -> None:
    async with make_client(built) as client:
        response = await client.get("/static/graphiql/graphiql.min.css")
    assert response.status_code == 200
    assert response.headers["cache-control"] == graphiql.REVALIDATE
    assert "etag" in response.headers


async def test_custom_paths(built: Path) -> None:
    async with make_client(built, graphql_path="/api/gql", static_path="/assets/giql/") as client:
        page = (await client.get("/api/gql")).text
        assets = local_assets(page)
        assert all(url.startswith("/assets/giql/") for url in assets)
        assert (await client.get(assets[0])).status_code == 200
    assert '"graphqlPath": "/api/gql"' in page


async def test_graphql_path_cannot_break_out_of_the_config_script(built: Path) -> None:
    hostile = "/g</script><script>alert(1)//"
    async with make_client(built, graphql_path=hostile) as client:
        response = await client.get(hostile)
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    config = re.search(r'type="application/json">(.*?)</script>', response.text)
    assert config is not None
    assert json.loads(config.group(1)) == {"graphqlPath": hostile}


async def test_content_security_policy_allows_only_this_origin(built: Path) -> None:
    async with make_client(built) as client:
        response = await client.get("/graphql")
    header = response.headers["content-security-policy"]
    policy = dict(directive.strip().split(" ", 1) for directive in header.split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in header
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_fetcher_sends_the_graphql_over_http_headers(built: Path) -> None:
    async with make_client(built) as client:
        page = (await client.get("/graphql")).text
    assert '"Content-Type": "application/json"' in page
    assert '"Accept": "application/graphql-response+json, application/json"' in page
    assert 'method: "POST"' in page


async def test_not_built_is_503_naming_make_assets(tmp_path: Path) -> None:
    async with make_client(tmp_path / "never-built") as client:
        response = await client.get("/graphql")
        asset = await client.get("/static/graphiql/graphiql.min.js")
    assert response.status_code == 503
    assert "make assets" in response.text
    assert response.headers["cache-control"] == "no-store"
    assert asset.status_code == 404


async def test_partly_built_is_503_naming_the_missing_file(built: Path) -> None:
    (built / "react-dom.production.min.js").unlink()
    async with make_client(built) as client:
        response = await client.get("/graphql")
    assert response.status_code == 503
    assert "react-dom.production.min.js" in response.text
    assert "graphiql.min.js" not in response.text


async def test_defaults_use_the_package_folder(
    monkeypatch: pytest.MonkeyPatch, built: Path
) -> None:
    assert Path(graphiql.__file__).parent / "static" / "graphiql" == graphiql.STATIC_DIR
    monkeypatch.setattr(graphiql, "STATIC_DIR", built)

    async def page(_: Request) -> Response:
        return graphiql_page("/graphql")

    app = Starlette(routes=[Route("/graphql", page), graphiql_static_mount()])
    async with client_for(app) as client:
        assert (await client.get("/graphql")).status_code == 200
        assert (await client.get("/static/graphiql/graphiql.min.css")).status_code == 200
        monkeypatch.setattr(graphiql, "STATIC_DIR", built.parent / "gone")
        assert (await client.get("/graphql")).status_code == 503
