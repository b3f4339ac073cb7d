"""Persisted queries: Apollo's automatic persisted queries and trusted documents by id.

A request may name its document instead of sending it: by ``extensions.persistedQuery``
(Apollo's APQ protocol, version 1) or by ``documentId`` (the GraphQL over HTTP persisted
documents draft). The text is found in this process first, then in Redis, and then goes
through the same DocumentCache as any text, so it is parsed and validated once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import redis.exceptions
from redis.asyncio import Redis

from dataintel.errors import (
    BadUserInputError,
    DependencyTimeoutError,
    DependencyUnavailableError,
    GatewayError,
    PersistedQueryNotFoundError,
    PersistedQueryNotSupportedError,
)
from dataintel.gateway.documents import DocumentCache, document_hash
from dataintel.gateway.request import GraphQLRequest, RequestRejected
from dataintel.gateway.trusted_documents import (
    TRUSTED_BY_SHA256_KEY,
    TRUSTED_DOCUMENTS_KEY,
    document_key,
    is_sha256_key,
)
from dataintel.observability.drops import APQ_STORE_FAILED, Drops
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency
from dataintel.settings import GraphQLSettings, RedisSettings

APQ_KEY_PREFIX = "dataintel:apq:"
"""Redis keys of documents registered by APQ, each with a time to live."""

APQ_VERSION = 1
JSON_MEDIA_TYPE = "application/json"
# Apollo Server's header on persisted query errors: the retry with the text must not be
# answered from a cache that kept the error.
UNCACHED = {"Cache-Control": "private, no-cache, must-revalidate"}
PERSISTED_GET_VARY = "Accept, Authorization, X-API-Key"
"""Vary of a GET answered from a persisted document: what a CDN must key its copies by."""
_log = get_logger("dataintel.persisted")
T = TypeVar("T")


class DocumentTexts:
    """Document texts by key: a bounded map in this process, then Redis on a miss."""

    def __init__(
        self,
        redis: Callable[[], Redis | None],
        *,
        size: int,
        timeout_seconds: float,
        apq_ttl_seconds: int,
        guard: Callable[[], Dependency | None],
        drops: Drops,
    ) -> None:
        self._redis = redis
        self._drops = drops
        self._guard = guard
        self._size = size
        self._timeout = timeout_seconds
        self._apq_ttl = apq_ttl_seconds
        self._texts: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._texts)

    def remember(self, key: str, text: str) -> None:
        """Keeps a text in this process, dropping the least recently used beyond the size."""
        if not self._size:
            return
        self._texts[key] = text
        self._texts.move_to_end(key)
        if len(self._texts) > self._size:
            self._texts.popitem(last=False)

    async def find(self, key: str, *, include_apq: bool) -> str | None:
        """The text under a key; raises DependencyUnavailableError when Redis cannot say."""
        text = self._texts.get(key)
        if text is not None:
            self._texts.move_to_end(key)
            return text
        client = self._redis()
        if client is None:
            return None
        by_sha256 = is_sha256_key(key)

        async def read() -> list[Any]:
            pipeline = client.pipeline(transaction=False)
            pipeline.hget(TRUSTED_DOCUMENTS_KEY, key)
            if by_sha256:
                pipeline.hget(TRUSTED_BY_SHA256_KEY, key)
                if include_apq:
                    pipeline.get(APQ_KEY_PREFIX + key)
            return list(await pipeline.execute())

        found = await self._call(read)
        raw = next((value for value in found if value is not None), None)
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        self.remember(key, text)
        return text

    async def store_apq(self, key: str, text: str) -> None:
        """Keeps an APQ text here and in Redis for the other replicas; Redis may refuse."""
        self.remember(key, text)
        client = self._redis()
        if client is None:
            return

        async def write() -> None:
            await client.set(APQ_KEY_PREFIX + key, text, ex=self._apq_ttl)

        try:
            await self._call(write)
        except DependencyUnavailableError:
            # The request still runs; other replicas ask the client for the text again.
            self._drops.count(APQ_STORE_FAILED)
            _log.warning("persisted query not shared", key=key)

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Runs a Redis operation behind the Redis breaker when there is one, within a budget."""
        guard = self._guard()
        try:
            if guard is not None:
                return await guard.call(operation)
            async with asyncio.timeout(self._timeout):
                return await operation()
        except (DependencyUnavailableError, DependencyTimeoutError) as error:
            raise _redis_unavailable(error.retry_after) from error
        except (redis.exceptions.RedisError, OSError, TimeoutError) as error:
            _log.warning("persisted document store failed", error=type(error).__name__)
            raise _redis_unavailable(1.0) from error


class PersistedQueries:
    """Turns a request that names its document by hash or id into one that carries the text."""

    def __init__(
        self,
        graphql: GraphQLSettings,
        redis_settings: RedisSettings,
        documents: DocumentCache,
        redis: Callable[[], Redis | None],
        guard: Callable[[], Dependency | None],
        drops: Drops,
    ) -> None:
        self._documents = documents
        self._apq = graphql.automatic_persisted_queries
        self._trusted_only = graphql.trusted_documents_only
        self.texts = DocumentTexts(
            redis,
            size=graphql.persisted_query_cache_size,
            timeout_seconds=redis_settings.call_timeout_seconds,
            apq_ttl_seconds=graphql.persisted_query_ttl_seconds,
            guard=guard,
            drops=drops,
        )

    async def resolve(self, request: GraphQLRequest, media_type: str) -> GraphQLRequest:
        """The request with its document's text; raises RequestRejected when there is none."""
        sha256_hash = persisted_query_hash(request.extensions)
        if request.document_id is not None:
            if sha256_hash is not None or request.query is not None:
                raise _bad_request("Send one of 'documentId', 'query' or a persisted query hash.")
            return await self._by_document_id(request, request.document_id)
        if sha256_hash is not None:
            if request.query is None:
                return await self._by_hash(request, sha256_hash, media_type)
            return await self._registering(request, request.query, sha256_hash)
        if request.query is not None and self._trusted_only:
            await self._require_trusted(document_hash(request.query))
        return request

    async def _by_document_id(self, request: GraphQLRequest, document_id: str) -> GraphQLRequest:
        try:
            key = document_key(document_id)
        except BadUserInputError as error:
            raise RequestRejected([error]) from None
        text = await self._find(key, include_apq=not self._trusted_only)
        if text is None:
            missing = PersistedQueryNotFoundError(
                f"No document is registered under the id '{document_id}'."
            )
            # Unlike an APQ hash, the client has no text to send instead.
            missing.retryable = False
            raise RequestRejected([missing], status=404, headers=UNCACHED)
        return request.with_query(text)

    async def _by_hash(
        self, request: GraphQLRequest, sha256_hash: str, media_type: str
    ) -> GraphQLRequest:
        try:
            text = await self.texts.find(sha256_hash, include_apq=self._apq_usable)
        except DependencyUnavailableError as error:
            if self._trusted_only:
                raise _unavailable(error) from None
            # Answered as not found: the client then sends the text, which runs.
            text = None
        if text is not None:
            return request.with_query(text)
        if not self._apq and not self._trusted_only:
            raise RequestRejected(
                [PersistedQueryNotSupportedError("PersistedQueryNotSupported")],
                status=200 if media_type == JSON_MEDIA_TYPE else 400,
                headers=UNCACHED,
            )
        # Apollo clients read the error and retry with the text; Apollo Server answers it
        # with 200 under application/json. A response without data is a 4xx under
        # application/graphql-response+json, and 404 says what happened.
        raise RequestRejected(
            [PersistedQueryNotFoundError("PersistedQueryNotFound")],
            status=200 if media_type == JSON_MEDIA_TYPE else 404,
            headers=UNCACHED,
        )

    async def _registering(
        self, request: GraphQLRequest, text: str, sha256_hash: str
    ) -> GraphQLRequest:
        if document_hash(text) != sha256_hash:
            raise _bad_request("The persisted query hash is not the SHA-256 of the query text.")
        if self._trusted_only:
            await self._require_trusted(sha256_hash)
        elif self._apq:
            # Validated before it is shared: an invalid text never reaches Redis.
            self._documents.get(text)
            await self.texts.store_apq(sha256_hash, text)
        return request

    async def _require_trusted(self, key: str) -> None:
        if await self._find(key, include_apq=False) is None:
            raise _bad_request(
                "Only registered documents run on this gateway, and this text is not one:"
                " send the 'documentId' of a registered document."
            )

    @property
    def _apq_usable(self) -> bool:
        return self._apq and not self._trusted_only

    async def _find(self, key: str, *, include_apq: bool) -> str | None:
        try:
            return await self.texts.find(key, include_apq=include_apq)
        except DependencyUnavailableError as error:
            raise _unavailable(error) from None


def persisted_query_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 hash of ``extensions.persistedQuery``; raises RequestRejected when malformed."""
    if not extensions or extensions.get("persistedQuery") is None:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise _bad_request("'extensions.persistedQuery' must be an object.")
    version = persisted.get("version")
    # bool is an int in Python; true is not version 1.
    if type(version) is not int or version != APQ_VERSION:
        raise _bad_request("Unsupported persisted query version: only version 1 is supported.")
    sha256_hash = persisted.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not is_sha256_key(sha256_hash.lower()):
        raise _bad_request("'extensions.persistedQuery.sha256Hash' must be 64 hex digits.")
    return sha256_hash.lower()


def _redis_unavailable(retry_after: float | None) -> DependencyUnavailableError:
    return DependencyUnavailableError(
        "Redis, where persisted documents are kept, is unavailable.",
        retry_after=retry_after if retry_after is not None else 1.0,
        details={"dependency": "redis"},
    )


def _bad_request(message: str) -> RequestRejected:
    return RequestRejected([BadUserInputError(message)])


def _unavailable(error: GatewayError) -> RequestRejected:
    retry_after = f"{error.retry_after:g}" if error.retry_after is not None else "1"
    return RequestRejected([error], status=503, headers={"Retry-After": retry_after})
