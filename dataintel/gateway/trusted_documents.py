"""Trusted documents: manifests that client tooling emits, and their registry in Redis.

Two manifest shapes are read: a JSON object of id to document (GraphQL Codegen's client
preset ``persisted-documents.json``, Relay's ``persisted_queries.json``) and Apollo's
``apollo-persisted-query-manifest``. Every replica reads the same Redis hash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, parse
from redis.asyncio import Redis

from dataintel.errors import BadUserInputError
from dataintel.gateway.documents import DocumentCache, document_hash
from dataintel.gateway.request import RequestRejected

TRUSTED_DOCUMENTS_KEY = "dataintel:trusted-documents"
"""The Redis hash of trusted documents: field = document key, value = document text."""
TRUSTED_BY_SHA256_KEY = TRUSTED_DOCUMENTS_KEY + ":sha256"
"""The same documents by the SHA-256 of their text, whatever their id (free text, APQ)."""

SHA256_PREFIX = "sha256:"
APOLLO_MANIFEST_FORMAT = "apollo-persisted-query-manifest"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# The draft's identifier syntax: unreserved characters, and a colon for prefixed ids.
_IDENTIFIER = re.compile(r"[A-Za-z0-9._~:-]{1,200}")


class ManifestError(Exception):
    """A manifest that cannot be registered; ``problems`` names each bad entry."""

    def __init__(self, message: str, problems: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: Mapping[str, str] = problems or {}

    def __str__(self) -> str:
        lines = [self.message]
        lines.extend(f"  {key}: {problem}" for key, problem in self.problems.items())
        return "\n".join(lines)


def is_sha256_key(key: str) -> bool:
    """Whether a document key is the SHA-256 hex digest of its document's text."""
    return _SHA256_HEX.fullmatch(key) is not None


def document_key(document_id: str) -> str:
    """The key an id is stored under: the bare hex of a ``sha256:`` id, else the id itself."""
    if document_id.startswith(SHA256_PREFIX):
        payload = document_id[len(SHA256_PREFIX) :]
        if not is_sha256_key(payload):
            raise BadUserInputError(
                "A sha256: document id must be followed by 64 lower-case hex digits."
            )
        return payload
    if _IDENTIFIER.fullmatch(document_id) is None:
        raise BadUserInputError(
            "A document id is 1 to 200 of the characters A-Z a-z 0-9 . _ ~ - and ':'."
        )
    return document_id


def parse_manifest(raw: bytes) -> dict[str, str]:
    """The documents of a manifest by key; raises ManifestError naming every bad entry."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ManifestError(f"The manifest is not valid JSON: {error.msg}.") from None
    entries = _entries(data)
    documents: dict[str, str] = {}
    problems: dict[str, str] = {}
    for document_id, body in entries:
        try:
            key = document_key(document_id)
        except BadUserInputError as error:
            problems[document_id] = error.message
            continue
        if is_sha256_key(key) and document_hash(body) != key:
            problems[document_id] = "the id is not the SHA-256 of the document's text"
        elif documents.get(key, body) != body:
            problems[document_id] = "the id appears twice with different documents"
        else:
            documents[key] = body
    if problems:
        raise ManifestError(f"{len(problems)} manifest entries are not usable:", problems)
    if not documents:
        raise ManifestError("The manifest holds no documents.")
    return documents


def _entries(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        raise ManifestError("A manifest is a JSON object.")
    if data.get("format") == APOLLO_MANIFEST_FORMAT:
        if data.get("version") != 1:
            raise ManifestError("Only version 1 of Apollo's persisted query manifest is read.")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ManifestError("An Apollo manifest's 'operations' must be a list.")
        entries: list[tuple[str, str]] = []
        for position, operation in enumerate(operations):
            if not (
                isinstance(operation, dict)
                and isinstance(operation.get("id"), str)
                and isinstance(operation.get("body"), str)
            ):
                raise ManifestError(f"Operation {position} needs a string 'id' and 'body'.")
            entries.append((operation["id"], operation["body"]))
        return entries
    not_text = sorted(str(key) for key, value in data.items() if not isinstance(value, str))
    if not_text:
        raise ManifestError(
            "Every value of an id-to-document manifest must be a string.",
            dict.fromkeys(not_text, "not a string"),
        )
    return list(data.items())


def invalid_documents(documents: Mapping[str, str], cache: DocumentCache) -> dict[str, str]:
    """Each document that does not parse or validate against the schema, with the reason."""
    problems: dict[str, str] = {}
    for key, text in documents.items():
        try:
            cache.get(text)
        except RequestRejected as rejected:
            problems[key] = "; ".join(error.message for error in rejected.errors)
    return problems


@dataclass(frozen=True, slots=True)
class Registration:
    """What registering a manifest changed."""

    added: int
    already_registered: int


class TrustedDocumentRegistry:
    """The trusted documents in Redis, shared by every replica; entries are never replaced."""

    def __init__(self, redis: Redis, key: str = TRUSTED_DOCUMENTS_KEY) -> None:
        self._redis = redis
        self._key = key
        self._by_sha256 = key + ":sha256"

    async def register(self, documents: Mapping[str, str]) -> Registration:
        """Adds the documents; raises ManifestError when an id is taken by another text."""
        keys = list(documents)
        stored = await self._redis.hmget(self._key, keys)
        conflicts = _conflicts(documents, keys, stored)
        if conflicts:
            raise ManifestError(
                f"{len(conflicts)} ids are already registered with other documents:", conflicts
            )
        new = [key for key, text in zip(keys, stored, strict=True) if text is None]
        if new:
            pipeline = self._redis.pipeline(transaction=False)
            for key in new:
                # HSETNX: a concurrent registration of the same id never overwrites.
                pipeline.hsetnx(self._key, key, documents[key])
                pipeline.hsetnx(self._by_sha256, document_hash(documents[key]), documents[key])
            await pipeline.execute()
            raced = _conflicts(documents, new, await self._redis.hmget(self._key, new))
            if raced:
                raise ManifestError("Ids were registered concurrently with other documents:", raced)
        return Registration(added=len(new), already_registered=len(keys) - len(new))

    async def documents(self) -> dict[str, str]:
        """Every registered document by key."""
        found: dict[str, str] = {}
        async for field, value in self._redis.hscan_iter(self._key):
            found[_text(field)] = _text(value)
        return found


def _conflicts(documents: Mapping[str, str], keys: list[str], stored: list[Any]) -> dict[str, str]:
    return {
        key: "registered with another document"
        for key, text in zip(keys, stored, strict=True)
        if text is not None and _text(text) != documents[key]
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def display_id(key: str) -> str:
    """The id as clients send it in ``documentId``: SHA-256 keys with their prefix."""
    return SHA256_PREFIX + key if is_sha256_key(key) else key


def operation_names(text: str) -> list[str]:
    """The names of a document's operations (``(anonymous)`` for one without a name)."""
    try:
        document = parse(text)
    except GraphQLError:
        return []
    return [
        definition.name.value if definition.name else "(anonymous)"
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
