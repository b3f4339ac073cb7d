"""Cache policies from @cacheControl hints, with Apollo's inheritance rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import strawberry
from graphql import OperationDefinitionNode, parse

from dataintel.cache import TwoLevelCache, trace_request
from dataintel.cache.memory import MemoryCache
from dataintel.context import ANONYMOUS, Viewer
from dataintel.directives.cache_control import CacheControl, CacheControlScope
from dataintel.gateway.documents import PreparedDocument, document_hash
from dataintel.gateway.execution import GraphQLResponse
from dataintel.gateway.response_cache import (
    UNCACHEABLE,
    UNDECIDED,
    CachedResponse,
    CachePolicy,
    ResponseCache,
    operation_policy,
)


@strawberry.type(directives=[CacheControl(inherit_max_age=True)])
class Wrapper:
    count: int


@strawberry.type(directives=[CacheControl(max_age=60)])
class Item:
    id: strawberry.ID
    name: str
    secret: str = strawberry.field(directives=[CacheControl(scope=CacheControlScope.PRIVATE)])
    price: int = strawberry.field(directives=[CacheControl(max_age=10)])

    @strawberry.field
    def related(self) -> Item | None:
        return None

    @strawberry.field
    def wrapper(self) -> Wrapper:
        return Wrapper(count=1)


def one() -> int:
    return 1


def wrapper() -> Wrapper:
    return Wrapper(count=1)


@strawberry.type
class Query:
    plain: int = 1
    hinted: int = strawberry.field(resolver=one, directives=[CacheControl(max_age=300)])
    items: Wrapper = strawberry.field(resolver=wrapper, directives=[CacheControl(max_age=30)])
    unhinted_wrapper: Wrapper = strawberry.field(resolver=wrapper)

    @strawberry.field
    def item(self) -> Item:
        return Item(id=strawberry.ID("1"), name="a", secret="s", price=1)


@strawberry.type
class Mutation:
    touch: int = strawberry.mutation(resolver=one, directives=[CacheControl(max_age=60)])


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)._schema


def policy_of(query: str) -> CachePolicy:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return operation_policy(SCHEMA, document, operation)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ plain }", UNCACHEABLE),
        ("{ hinted }", CachePolicy(300)),
        ("{ item { id name } }", CachePolicy(60)),
        ("{ item { id price } }", CachePolicy(10)),
        ("{ item { id secret } }", CachePolicy(60, private=True)),
        ("{ hinted item { name } }", CachePolicy(60)),
        ("{ hinted plain }", UNCACHEABLE),
        ("{ item { related { id } } }", CachePolicy(60)),
        ("{ item { wrapper { count } } }", CachePolicy(60)),
        ("{ items { count } }", CachePolicy(30)),
        ("{ unhinted_wrapper: unhintedWrapper { count } }", UNCACHEABLE),
        ("{ __typename hinted }", CachePolicy(300)),
        ("{ __schema { queryType { name } } }", UNCACHEABLE),
        ("{ item { ...parts } } fragment parts on Item { price }", CachePolicy(10)),
        ("{ item { ... on Item { secret } } }", CachePolicy(60, private=True)),
        ("mutation { touch }", UNCACHEABLE),
    ],
)
def test_policy(query: str, expected: CachePolicy) -> None:
    assert policy_of(query) == expected


def test_headers() -> None:
    public, private = CachePolicy(60), CachePolicy(60, private=True)
    assert public.header(anonymous=True, has_errors=False) == "public, max-age=60"
    assert public.header(anonymous=False, has_errors=False) == "private, max-age=60"
    assert private.header(anonymous=True, has_errors=False) == "private, max-age=60"
    assert public.header(anonymous=True, has_errors=True) == "no-store"
    assert UNCACHEABLE.header(anonymous=True, has_errors=False) == "no-store"


def prepared(query: str) -> tuple[PreparedDocument, OperationDefinitionNode]:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    return PreparedDocument(document_hash(query), document, {None: operation}), operation


def test_keys() -> None:
    cache = ResponseCache(SCHEMA, lambda: None, enabled=True)
    document, operation = prepared("{ item { name } }")
    policy = cache.policy(document, operation)
    assert cache.policy(document, operation) is policy

    def key(viewer: Viewer, variables: dict[str, Any] | None = None, **options: Any) -> str | None:
        chosen = CachePolicy(**options) if options else policy
        return cache.key(document, None, variables, viewer, chosen)

    analyst = Viewer("7", frozenset({"analyst"}))
    other_analyst = Viewer("8", frozenset({"analyst"}))
    assert key(ANONYMOUS) is not None
    assert key(ANONYMOUS) == key(ANONYMOUS, {})
    assert key(ANONYMOUS) != key(ANONYMOUS, {"id": 1})
    assert key(ANONYMOUS, {"a": 1, "b": 2}) == key(ANONYMOUS, {"b": 2, "a": 1})
    assert key(analyst) == key(other_analyst) != key(ANONYMOUS)
    assert key(ANONYMOUS, max_age=60, private=True) is None
    assert key(analyst, max_age=60, private=True) != key(other_analyst, max_age=60, private=True)
    assert key(ANONYMOUS, max_age=0) is None
    assert (
        ResponseCache(SCHEMA, lambda: None, enabled=False).key(
            document, None, None, ANONYMOUS, policy
        )
        is None
    )


async def test_a_hit_on_the_same_entry_keeps_its_json() -> None:
    two_levels = TwoLevelCache(MemoryCache(100, 1_000_000), None)
    cache = ResponseCache(SCHEMA, lambda: two_levels, enabled=True)
    policy = CachePolicy(60)

    async def store(data: dict[str, Any]) -> None:
        with trace_request() as trace:
            pass
        await cache.store("key", data, trace, policy, two_levels.generation)

    await store({"item": {"name": "a"}})
    first = await cache.lookup("key")
    second = await cache.lookup("key")
    assert first is not None
    assert second is not None
    assert first.encoded_data == orjson.dumps({"item": {"name": "a"}})
    assert second.encoded_data is first.encoded_data
    # A new entry under the same key is encoded anew, never answered with the old JSON.
    await store({"item": {"name": "b"}})
    third = await cache.lookup("key")
    assert third is not None
    assert third.encoded_data == orjson.dumps({"item": {"name": "b"}})


async def test_kept_json_stays_within_its_byte_bound() -> None:
    two_levels = TwoLevelCache(MemoryCache(100, 10_000_000), None)
    # Each small entry's kept size is about 2 x 1,000 bytes; the bound holds four of them.
    cache = ResponseCache(SCHEMA, lambda: two_levels, enabled=True, kept_json_bytes=8_500)
    policy = CachePolicy(60)

    async def looked_up_twice(key: str, size: int) -> tuple[bytes, bytes]:
        with trace_request() as trace:
            pass
        await cache.store(key, {"item": {"name": "x" * size}}, trace, policy, 0)
        first, second = await cache.lookup(key), await cache.lookup(key)
        assert first is not None
        assert second is not None
        return first.encoded_data, second.encoded_data

    kept = []
    for number in range(6):
        first, second = await looked_up_twice(f"small-{number}", 980)
        assert second is first
        kept.append(first)
    # Only the newest four are kept; the oldest is encoded anew on its next hit.
    newest = await cache.lookup("small-5")
    oldest = await cache.lookup("small-0")
    assert newest is not None
    assert oldest is not None
    assert newest.encoded_data is kept[5]
    assert oldest.encoded_data is not kept[0]
    assert oldest.encoded_data == kept[0]
    # A response over a quarter of the bound is answered, never kept.
    first, second = await looked_up_twice("large", 2_000)
    assert first == second
    assert second is not first


@pytest.mark.parametrize(
    "extensions", [{}, {"cache": {"stale": [["customer"]]}}], ids=["plain", "extensions"]
)
def test_a_hit_is_encoded_as_its_data_would_be(extensions: dict[str, Any]) -> None:
    data = {"customer": {"id": "1", "name": "Ada Lovelace", "tier": "GOLD", "total": 12.5}}
    hit = GraphQLResponse(
        data=data, extensions=extensions, response_cache="hit", encoded_data=orjson.dumps(data)
    )
    executed = GraphQLResponse(data=data, extensions=extensions)
    assert hit.encoded() == executed.encoded() == orjson.dumps(executed.to_dict())


async def test_a_hit_in_memory_is_answered_without_a_coroutine_as_lookup_answers_it() -> None:
    """The pipeline asks ``lookup_in_memory`` first: the same response and the same hit
    counted as ``lookup``; undecided (so awaited) when only ``lookup`` can tell."""
    two_levels = TwoLevelCache(MemoryCache(100, 1_000_000), None)
    counted: list[tuple[str, str, str, int]] = []
    two_levels.observer = lambda *lookup: counted.append(lookup)
    cache = ResponseCache(SCHEMA, lambda: two_levels, enabled=True)
    assert cache.lookup_in_memory("key") is UNDECIDED
    assert await cache.lookup("key") is None
    with trace_request() as trace:
        pass
    await cache.store("key", {"item": {"name": "a"}}, trace, CachePolicy(60), 0)
    counted.clear()
    in_memory = cache.lookup_in_memory("key")
    awaited = await cache.lookup("key")
    assert isinstance(in_memory, CachedResponse)
    assert awaited is not None
    assert (in_memory.data, in_memory.encoded_data) == (awaited.data, awaited.encoded_data)
    assert counted == [("response", "memory", "hit", 1)] * 2
    assert two_levels.stats.memory_hits == 2
    # An in-process level not trusted (the invalidation feed down) is Redis's to decide.
    two_levels.shared = object()  # type: ignore[assignment]
    two_levels.distrust_memory()
    assert cache.lookup_in_memory("key") is UNDECIDED
    assert ResponseCache(SCHEMA, lambda: None, enabled=True).lookup_in_memory("key") is None
