"""Persisted queries over HTTP: the APQ round trip, trusted documents, safelist, Redis down."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from redis.asyncio import Redis

from dataintel import __version__
from dataintel.app import create_app
from dataintel.cli import main
from dataintel.gateway.trusted_documents import TrustedDocumentRegistry
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.redis_server import RedisServer

pytestmark = pytest.mark.redis

STATUS = "query Version { status { version } }"
UPTIME = "query Uptime { status { uptimeSeconds } }"
# A query whose fields carry @cacheControl hints, so a CDN may keep it.
CUSTOMER = 'query Customer { customer(id: "1") { id } }'
GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFLIGHT = {"Apollo-Require-Preflight": "true"}
UNCACHED = "private, no-cache, must-revalidate"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    """The extensions of an APQ request for this text."""
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def get_by_hash(
    client: httpx.AsyncClient, text: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    params = {"extensions": json.dumps(apq(text), separators=(",", ":"))}
    return await client.get("/graphql", params=params, headers={**PREFLIGHT, **(headers or {})})


async def register(redis_url: str, documents: dict[str, str]) -> None:
    client = Redis.from_url(redis_url)
    try:
        await TrustedDocumentRegistry(client).register(documents)
    finally:
        await client.aclose()


# --- the APQ round trip ---------------------------------------------------------------


async def test_apq_round_trip_over_post(client: httpx.AsyncClient) -> None:
    first = await client.post("/graphql", json={"extensions": apq(STATUS)})
    assert first.status_code == 200
    assert first.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {
                    "code": "PERSISTED_QUERY_NOT_FOUND",
                    "retryable": True,
                    "requestId": first.headers["x-request-id"],
                },
            }
        ]
    }
    assert first.headers["cache-control"] == UNCACHED
    registering = await client.post("/graphql", json={"query": STATUS, "extensions": apq(STATUS)})
    assert registering.json() == {"data": {"status": {"version": __version__}}}
    served = await client.post("/graphql", json={"extensions": apq(STATUS)})
    assert served.status_code == 200
    assert served.json() == {"data": {"status": {"version": __version__}}}


async def test_apq_round_trip_over_get(client: httpx.AsyncClient) -> None:
    # A browser-like Accept must get the result, not GraphiQL.
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    first = await get_by_hash(client, CUSTOMER, browser)
    assert first.status_code == 200
    assert codes(first.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert first.headers["cache-control"] == UNCACHED
    params = {
        "query": CUSTOMER,
        "extensions": json.dumps(apq(CUSTOMER)),
    }
    registering = await client.get("/graphql", params=params, headers=PREFLIGHT)
    assert registering.json() == {"data": {"customer": {"id": "Q3VzdG9tZXI6MQ=="}}}
    served = await get_by_hash(client, CUSTOMER, browser)
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == {"data": {"customer": {"id": "Q3VzdG9tZXI6MQ=="}}}
    assert served.headers["cache-control"] == "public, max-age=60"
    assert served.headers["vary"] == "Accept, Authorization, X-API-Key"


async def test_a_persisted_get_without_cache_hints_is_not_stored(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/graphql", json={"query": STATUS, "extensions": apq(STATUS)})
    served = await get_by_hash(client, STATUS)
    assert served.json()["data"]["status"]["version"] == __version__
    assert served.headers["cache-control"] == "no-store"
    assert served.headers["vary"] == "Accept, Authorization, X-API-Key"


async def test_not_found_is_404_under_graphql_response_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"extensions": apq(UPTIME)}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_hash_that_is_not_the_texts_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": UPTIME, "extensions": apq(STATUS)})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert "not the SHA-256 of the query text" in response.json()["errors"][0]["message"]
    # Nothing was stored under the wrong hash.
    follow_up = await client.post("/graphql", json={"extensions": apq(STATUS)})
    assert codes(follow_up.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_an_unsupported_version_is_400(client: httpx.AsyncClient) -> None:
    extensions = {"persistedQuery": {"version": 2, "sha256Hash": sha256(STATUS)}}
    response = await client.post("/graphql", json={"query": STATUS, "extensions": extensions})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    assert "version" in response.json()["errors"][0]["message"]


async def test_an_invalid_document_is_never_registered(client: httpx.AsyncClient) -> None:
    invalid = "{ status { nope } }"
    response = await client.post("/graphql", json={"query": invalid, "extensions": apq(invalid)})
    assert codes(response.json()) == ["BAD_USER_INPUT"]
    follow_up = await client.post("/graphql", json={"extensions": apq(invalid)})
    assert codes(follow_up.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_apq_turned_off_is_not_supported(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(automatic_persisted_queries=False))
    async with serving(app) as client:
        response = await client.post("/graphql", json={"extensions": apq(STATUS)})
        assert response.status_code == 200
        assert response.json()["errors"][0]["message"] == "PersistedQueryNotSupported"
        assert codes(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        assert response.headers["cache-control"] == UNCACHED
        strict = await client.post(
            "/graphql", json={"extensions": apq(STATUS)}, headers={"Accept": GRAPHQL_RESPONSE}
        )
        assert strict.status_code == 400
        # The text still runs, and is not kept.
        body = {"query": STATUS, "extensions": apq(STATUS)}
        assert (await client.post("/graphql", json=body)).json()["data"] is not None
        again = await client.post("/graphql", json={"extensions": apq(STATUS)})
        assert codes(again.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]


# --- shared by replicas ---------------------------------------------------------------


async def test_two_instances_share_apq_through_redis(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    async with serving(create_app(settings)) as first, serving(create_app(settings)) as second:
        missing = await second.post("/graphql", json={"extensions": apq(UPTIME)})
        assert codes(missing.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        body = {"query": UPTIME, "extensions": apq(UPTIME)}
        assert (await first.post("/graphql", json=body)).status_code == 200
        served = await second.post("/graphql", json={"extensions": apq(UPTIME)})
        assert served.status_code == 200
        assert "uptimeSeconds" in served.json()["data"]["status"]


async def test_two_instances_share_trusted_documents(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    async with serving(create_app(settings)) as first, serving(create_app(settings)) as second:
        unknown = await first.post("/graphql", json={"documentId": "dashboard-status"})
        assert unknown.status_code == 404
        [error] = unknown.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert error["extensions"]["retryable"] is False
        await register(redis_url, {"dashboard-status": STATUS, sha256(UPTIME): UPTIME})
        for client in (first, second):
            by_custom_id = await client.post("/graphql", json={"documentId": "dashboard-status"})
            assert by_custom_id.json() == {"data": {"status": {"version": __version__}}}
            prefixed = {"documentId": f"sha256:{sha256(UPTIME)}"}
            assert "uptimeSeconds" in (await client.post("/graphql", json=prefixed)).text
            bare = await client.get(
                "/graphql", params={"documentId": sha256(UPTIME)}, headers=PREFLIGHT
            )
            assert "uptimeSeconds" in bare.json()["data"]["status"]
            # Apollo's persisted query manifests travel as APQ hashes.
            assert (await client.post("/graphql", json={"extensions": apq(UPTIME)})).is_success


async def test_document_id_with_query_is_ambiguous(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"documentId": "a", "query": STATUS})
    assert response.status_code == 400
    assert "Send one of 'documentId'" in response.json()["errors"][0]["message"]
    malformed = await client.post("/graphql", json={"documentId": "sha256:nothex"})
    assert malformed.status_code == 400
    not_a_string = await client.post("/graphql", json={"documentId": 7})
    assert "'documentId' parameter" in not_a_string.json()["errors"][0]["message"]


# --- safelist -------------------------------------------------------------------------


async def test_safelist_runs_registered_documents_only(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    await register(redis_url, {"version": STATUS})
    settings = make_settings(redis_url=redis_url, trusted_documents_only=True)
    async with serving(create_app(settings)) as client:
        assert (await client.post("/graphql", json={"documentId": "version"})).is_success
        free_text = await client.post("/graphql", json={"query": UPTIME})
        assert free_text.status_code == 400
        assert codes(free_text.json()) == ["BAD_USER_INPUT"]
        assert "Only registered documents run" in free_text.json()["errors"][0]["message"]
        # The exact text of a registered document is that document.
        assert (await client.post("/graphql", json={"query": STATUS})).is_success
        registering = {"query": UPTIME, "extensions": apq(UPTIME)}
        refused = await client.post("/graphql", json=registering)
        assert refused.status_code == 400
        assert codes(refused.json()) == ["BAD_USER_INPUT"]
        by_hash = await client.post("/graphql", json={"extensions": apq(UPTIME)})
        assert codes(by_hash.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
        unknown = await client.post("/graphql", json={"documentId": "nope"})
        assert unknown.status_code == 404


async def test_safelist_ignores_what_apq_stored(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    open_settings = make_settings(redis_url=redis_url)
    async with serving(create_app(open_settings)) as open_client:
        body = {"query": UPTIME, "extensions": apq(UPTIME)}
        assert (await open_client.post("/graphql", json=body)).is_success
        assert (await open_client.post("/graphql", json={"query": STATUS})).is_success
    strict = make_settings(redis_url=redis_url, trusted_documents_only=True)
    async with serving(create_app(strict)) as client:
        by_hash = await client.post("/graphql", json={"extensions": apq(UPTIME)})
        assert codes(by_hash.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


# --- the command line -----------------------------------------------------------------


def test_register_and_list_from_the_command_line(redis_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    environment = {"DATAINTEL_REDIS_URL": redis_url}
    apollo = tmp_path / "apollo.json"
    apollo.write_bytes(
        orjson.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": sha256(STATUS), "name": "Version", "type": "query", "body": STATUS}
                ],
            }
        )
    )
    result = runner.invoke(main, ["documents", "register", str(apollo)], env=environment)
    assert result.exit_code == 0, result.output
    assert "registered 1 documents: 1 new, 0 already registered" in result.output
    codegen = tmp_path / "persisted-documents.json"
    codegen.write_bytes(orjson.dumps({sha256(STATUS): STATUS, "uptime": UPTIME}))
    result = runner.invoke(main, ["documents", "register", str(codegen)], env=environment)
    assert "1 new, 1 already registered" in result.output
    listed = runner.invoke(main, ["documents", "list"], env=environment)
    assert f"sha256:{sha256(STATUS)}  Version" in listed.output
    assert "uptime  Uptime" in listed.output
    exported = runner.invoke(main, ["documents", "list", "--json"], env=environment)
    assert orjson.loads(exported.stdout) == {f"sha256:{sha256(STATUS)}": STATUS, "uptime": UPTIME}


def test_a_manifest_with_invalid_documents_registers_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(orjson.dumps({"good": STATUS, "broken": "{ status { nope } }"}))
    result = runner.invoke(
        main, ["documents", "register", str(manifest)], env={"DATAINTEL_REDIS_URL": redis_url}
    )
    assert result.exit_code == 1
    assert "broken: Cannot query field 'nope'" in result.output
    assert "good" not in result.output
    listed = runner.invoke(main, ["documents", "list"], env={"DATAINTEL_REDIS_URL": redis_url})
    assert "0 trusted documents" in listed.output


def test_register_needs_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAINTEL_REDIS_URL", raising=False)
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(orjson.dumps({"good": STATUS}))
    result = CliRunner().invoke(main, ["documents", "register", str(manifest)])
    assert result.exit_code == 1
    assert "DATAINTEL_REDIS_URL is not set" in result.output


# --- Redis down -----------------------------------------------------------------------


async def test_redis_down_serves_what_this_process_has(
    make_settings: SettingsFactory, redis_url: str, redis_server: RedisServer
) -> None:
    await register(redis_url, {"version": STATUS})
    settings = make_settings(redis_url=redis_url)
    async with serving(create_app(settings)) as client:
        assert (await client.post("/graphql", json={"documentId": "version"})).is_success
        registering = {"query": UPTIME, "extensions": apq(UPTIME)}
        assert (await client.post("/graphql", json=registering)).is_success
        redis_server.stop()
        try:
            assert (await client.post("/graphql", json={"documentId": "version"})).is_success
            assert (await client.post("/graphql", json={"extensions": apq(UPTIME)})).is_success
            unknown = await client.post("/graphql", json={"documentId": "other"})
            assert unknown.status_code == 503
            [error] = unknown.json()["errors"]
            assert error["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
            assert error["extensions"]["retryable"] is True
            assert "retry-after" in unknown.headers
            # An unknown hash asks for the text, which then runs without Redis.
            by_hash = await client.post("/graphql", json={"extensions": apq(CUSTOMER)})
            assert codes(by_hash.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
            with_text = {"query": CUSTOMER, "extensions": apq(CUSTOMER)}
            assert (await client.post("/graphql", json=with_text)).is_success
            assert (await client.post("/graphql", json={"extensions": apq(CUSTOMER)})).is_success
        finally:
            redis_server.start()


async def test_redis_down_in_safelist_mode_is_unavailable(
    make_settings: SettingsFactory, redis_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(redis_url=redis_url, trusted_documents_only=True)
    async with serving(create_app(settings)) as client:
        redis_server.stop()
        try:
            free_text = await client.post("/graphql", json={"query": STATUS})
            assert free_text.status_code == 503
            assert codes(free_text.json()) == ["DEPENDENCY_UNAVAILABLE"]
            by_hash = await client.post("/graphql", json={"extensions": apq(STATUS)})
            assert by_hash.status_code == 503
        finally:
            redis_server.start()
