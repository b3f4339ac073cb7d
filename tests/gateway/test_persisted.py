"""Persisted queries and trusted documents: ids, manifests, the APQ extension, the registry."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from graphql import parse
from redis.asyncio import Redis

from dataintel.errors import BadUserInputError
from dataintel.gateway.documents import DocumentCache
from dataintel.gateway.introspection import uses_introspection
from dataintel.gateway.persisted_queries import DocumentTexts, persisted_query_hash
from dataintel.gateway.request import RequestRejected
from dataintel.gateway.trusted_documents import (
    ManifestError,
    TrustedDocumentRegistry,
    display_id,
    document_key,
    invalid_documents,
    operation_names,
    parse_manifest,
)
from dataintel.observability.drops import Drops
from dataintel.schema import build_graphql_schema
from dataintel.settings import Settings

STATUS = "query Version { status { version } }"
UPTIME = "query Uptime { status { uptimeSeconds } }"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def documents() -> DocumentCache:
    """The gateway's own document cache over the real schema."""
    return DocumentCache.from_settings(
        build_graphql_schema(), Settings().graphql, Settings().limits
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


# --- document ids ---------------------------------------------------------------------


def test_sha256_ids_are_keyed_by_their_bare_hex() -> None:
    digest = sha256(STATUS)
    assert document_key(f"sha256:{digest}") == digest
    assert document_key(digest) == digest
    assert display_id(digest) == f"sha256:{digest}"


def test_custom_ids_are_kept_as_they_are() -> None:
    assert document_key("2f7c1a9e0b7d4c3a8f6e5d4c3b2a1908") == "2f7c1a9e0b7d4c3a8f6e5d4c3b2a1908"
    assert document_key("x-team:Dashboard.v3") == "x-team:Dashboard.v3"
    assert display_id("Dashboard_v3") == "Dashboard_v3"


@pytest.mark.parametrize("document_id", ["sha256:abc", "sha256:" + "A" * 64, "a b", "", "é"])
def test_malformed_ids_are_bad_input(document_id: str) -> None:
    with pytest.raises(BadUserInputError):
        document_key(document_id)


# --- manifests ------------------------------------------------------------------------


def test_codegen_and_relay_manifests_map_ids_to_documents() -> None:
    raw = orjson.dumps({sha256(STATUS): STATUS, "relay-md5-like-id": UPTIME})
    assert parse_manifest(raw) == {sha256(STATUS): STATUS, "relay-md5-like-id": UPTIME}


def test_apollo_manifest_is_read() -> None:
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(STATUS), "name": "Version", "type": "query", "body": STATUS},
            {"id": sha256(UPTIME), "name": "Uptime", "type": "query", "body": UPTIME},
        ],
    }
    assert parse_manifest(orjson.dumps(manifest)) == {
        sha256(STATUS): STATUS,
        sha256(UPTIME): UPTIME,
    }


def test_prefixed_and_bare_ids_of_one_document_are_one_entry() -> None:
    raw = orjson.dumps({f"sha256:{sha256(STATUS)}": STATUS, sha256(STATUS): STATUS})
    assert parse_manifest(raw) == {sha256(STATUS): STATUS}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"{oops", "not valid JSON"),
        (b"[]", "is a JSON object"),
        (b"{}", "holds no documents"),
        (orjson.dumps({"q": 1}), "must be a string"),
        (
            orjson.dumps({"format": "apollo-persisted-query-manifest", "version": 2}),
            "Only version 1",
        ),
        (
            orjson.dumps(
                {"format": "apollo-persisted-query-manifest", "version": 1, "operations": {}}
            ),
            "must be a list",
        ),
        (
            orjson.dumps(
                {
                    "format": "apollo-persisted-query-manifest",
                    "version": 1,
                    "operations": [{"id": "a"}],
                }
            ),
            "Operation 0 needs",
        ),
    ],
)
def test_unusable_manifests_say_why(manifest: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(manifest)


def test_every_bad_entry_is_named() -> None:
    raw = orjson.dumps(
        {
            sha256(STATUS): UPTIME,
            f"sha256:{sha256(UPTIME)}": UPTIME,
            "sha256:short": STATUS,
            "fine": STATUS,
        }
    )
    with pytest.raises(ManifestError) as caught:
        parse_manifest(raw)
    assert dict(caught.value.problems) == {
        sha256(STATUS): "the id is not the SHA-256 of the document's text",
        "sha256:short": "A sha256: document id must be followed by 64 lower-case hex digits.",
    }
    assert sha256(STATUS) in str(caught.value)


def test_an_id_given_twice_with_different_documents_is_refused() -> None:
    operations = [{"id": "dashboard", "body": STATUS}, {"id": "dashboard", "body": UPTIME}]
    manifest = {"format": "apollo-persisted-query-manifest", "version": 1}
    with pytest.raises(ManifestError) as caught:
        parse_manifest(orjson.dumps({**manifest, "operations": operations}))
    assert dict(caught.value.problems) == {
        "dashboard": "the id appears twice with different documents"
    }


def test_invalid_documents_are_named_with_the_reason(documents: DocumentCache) -> None:
    problems = invalid_documents(
        {"good": STATUS, "unknown-field": "{ status { nope } }", "syntax": "{ status {"},
        documents,
    )
    assert set(problems) == {"unknown-field", "syntax"}
    assert "Cannot query field 'nope'" in problems["unknown-field"]
    assert "Syntax Error" in problems["syntax"]


def test_operation_names_of_a_document() -> None:
    assert operation_names(f"{STATUS} {UPTIME}") == ["Version", "Uptime"]
    assert operation_names("{ status { version } }") == ["(anonymous)"]
    assert operation_names("{ nope") == []


# --- the APQ extension ----------------------------------------------------------------


def test_the_hash_of_a_persisted_query_extension() -> None:
    digest = sha256(STATUS)
    assert persisted_query_hash(None) is None
    assert persisted_query_hash({"other": 1}) is None
    extension = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    assert persisted_query_hash(extension) == digest
    upper = {"persistedQuery": {"version": 1, "sha256Hash": digest.upper()}}
    assert persisted_query_hash(upper) == digest


@pytest.mark.parametrize(
    ("persisted", "message"),
    [
        ("abc", "must be an object"),
        ({"version": 2, "sha256Hash": "0" * 64}, "Unsupported persisted query version"),
        ({"version": True, "sha256Hash": "0" * 64}, "Unsupported persisted query version"),
        ({"sha256Hash": "0" * 64}, "Unsupported persisted query version"),
        ({"version": 1, "sha256Hash": "xyz"}, "64 hex digits"),
        ({"version": 1}, "64 hex digits"),
    ],
)
def test_malformed_persisted_query_extensions_are_400(persisted: Any, message: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        persisted_query_hash({"persistedQuery": persisted})
    assert caught.value.status == 400
    assert message in caught.value.errors[0].message


# --- introspection marks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "introspects"),
    [
        ("{ __schema { queryType { name } } }", True),
        ('{ status { version } t: __type(name: "Query") { name } }', True),
        ("query Q { ...F } fragment F on Query { __schema { types { name } } }", True),
        ("{ ... on Query { __schema { description } } }", True),
        ("{ status { __typename version } }", False),
        ("{ status { version } }", False),
    ],
)
def test_introspection_is_found_anywhere_in_a_document(document: str, introspects: bool) -> None:
    assert uses_introspection(parse(document)) is introspects


def test_the_mark_is_set_once_when_the_document_is_prepared(documents: DocumentCache) -> None:
    first = documents.get("{ __schema { queryType { name } } }")
    assert first.uses_introspection is True
    assert documents.get("{ __schema { queryType { name } } }") is first
    assert documents.get(STATUS).uses_introspection is False


# --- texts in process and in Redis ----------------------------------------------------


async def test_texts_in_process_are_bounded_least_recently_used_first() -> None:
    texts = DocumentTexts(
        lambda: None,
        size=2,
        timeout_seconds=0.5,
        apq_ttl_seconds=60,
        guard=lambda: None,
        drops=Drops(),
    )
    texts.remember("a", "{ a }")
    texts.remember("b", "{ b }")
    assert await texts.find("a", include_apq=True) == "{ a }"
    texts.remember("c", "{ c }")
    assert len(texts) == 2
    assert await texts.find("b", include_apq=True) is None
    assert await texts.find("a", include_apq=True) == "{ a }"


async def test_apq_texts_are_shared_through_redis_with_a_ttl(redis_client: Redis) -> None:
    digest = sha256(STATUS)
    writer, reader = (
        DocumentTexts(
            lambda: redis_client,
            size=10,
            timeout_seconds=1,
            apq_ttl_seconds=90,
            guard=lambda: None,
            drops=Drops(),
        )
        for _ in range(2)
    )
    await writer.store_apq(digest, STATUS)
    assert 0 < await redis_client.ttl(f"dataintel:apq:{digest}") <= 90
    assert await reader.find(digest, include_apq=False) is None
    assert await reader.find(digest, include_apq=True) == STATUS
    assert len(reader) == 1


async def test_registry_adds_and_never_replaces(redis_client: Redis) -> None:
    registry = TrustedDocumentRegistry(redis_client)
    first = await registry.register({sha256(STATUS): STATUS, "uptime": UPTIME})
    assert (first.added, first.already_registered) == (2, 0)
    again = await registry.register({sha256(STATUS): STATUS, "other": STATUS})
    assert (again.added, again.already_registered) == (1, 1)
    with pytest.raises(ManifestError) as caught:
        await registry.register({"uptime": STATUS, "new": UPTIME})
    assert dict(caught.value.problems) == {"uptime": "registered with another document"}
    assert await registry.documents() == {
        sha256(STATUS): STATUS,
        "uptime": UPTIME,
        "other": STATUS,
    }
