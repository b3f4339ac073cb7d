"""Whole responses of cacheable operations, kept in the two-level cache.

An operation's policy (the smallest maxAge of its fields, PRIVATE when any field is) comes
from the schema's @cacheControl hints and is computed once per document. A response is
stored when the policy allows it, the execution had no error and nothing was served stale;
it carries the tags of every read it was built from, so that the writes that invalidate
the data invalidate the response too.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_composite_type,
)

from dataintel.cache import JsonCodec, Region, TwoLevelCache
from dataintel.cache.freshness import RequestTrace
from dataintel.context import Viewer
from dataintel.directives.cache_control import CacheControl, CacheControlScope, cache_hint
from dataintel.gateway.documents import PreparedDocument

_DEFINITION = "strawberry-definition"
_RESPONSES: Region[str, object] = Region(
    "response",
    JsonCodec(),
    key=lambda key: key,
    tags=lambda _: (),
    ttl_seconds=0.0,
    stale_seconds=0.0,
)


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long a response may be cached, and whether only for its viewer."""

    max_age: int
    private: bool = False

    @property
    def cacheable(self) -> bool:
        """Whether the response may be cached at all."""
        return self.max_age > 0

    def header(self, *, anonymous: bool, has_errors: bool) -> str:
        """The Cache-Control header value fit for a CDN in front of the gateway."""
        if not self.cacheable or has_errors:
            return "no-store"
        # A CDN keys by URL only: what an authenticated viewer got must never be shared.
        shared = not self.private and anonymous
        return f"{'public' if shared else 'private'}, max-age={self.max_age}"


UNCACHEABLE = CachePolicy(0)
Audience = tuple[str, str] | tuple[str, tuple[str, ...], tuple[str, ...]]
"""Who shares a response: one viewer (PRIVATE), or every viewer with these roles and scopes."""


_KEPT_AUDIENCES = 256
"""Distinct sets of roles and scopes whose shared audience is kept (few: roles are few)."""


class Undecided:
    """``ResponseCache.lookup_in_memory``'s answer when only ``lookup`` can tell."""


UNDECIDED = Undecided()


# Not frozen: one is made per hit, and a frozen dataclass sets each field through
# object.__setattr__. Nothing assigns to one once made.
@dataclass(slots=True)
class CachedResponse:
    """A response's data as cached, the same data as JSON, and its age in seconds."""

    data: dict[str, Any]
    age_seconds: float
    encoded_data: bytes


def operation_policy(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> CachePolicy:
    """The policy of one operation of a validated document, from the schema's hints."""
    if operation.operation != OperationType.QUERY:
        return UNCACHEABLE
    root = schema.query_type
    if root is None:
        return UNCACHEABLE
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    walk = _PolicyWalk(schema, fragments)
    walk.selections(operation.selection_set, root, None)
    if walk.max_age is None or walk.max_age <= 0:
        return UNCACHEABLE
    return CachePolicy(walk.max_age, walk.private)


class _PolicyWalk:
    def __init__(
        self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode]
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self.max_age: int | None = None
        self.private = False

    def _restrict(self, max_age: int) -> None:
        self.max_age = max_age if self.max_age is None else min(self.max_age, max_age)

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, parent_age: int | None
    ) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, parent_age)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self._schema.get_type(condition.name.value) if condition else parent
                self.selections(selection.selection_set, target or parent, parent_age)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self._fragments[selection.name.value]
                target = self._schema.get_type(fragment.type_condition.name.value)
                self.selections(fragment.selection_set, target or parent, parent_age)

    def _field(self, node: FieldNode, parent: GraphQLNamedType, parent_age: int | None) -> None:
        name = node.name.value
        if name == "__typename":
            return
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            self._restrict(0)
            return
        field = parent.fields.get(name)
        if field is None:
            self._restrict(0)
            return
        returned = get_named_type(field.type)
        field_hint = _field_hint(field)
        type_hint = _type_hint(returned)
        age = _age(field_hint, type_hint, parent_age, composite=is_composite_type(returned))
        if any(
            hint is not None and hint.scope == CacheControlScope.PRIVATE
            for hint in (field_hint, type_hint)
        ):
            self.private = True
        if age is None:
            # A root scalar without a hint has no parent to inherit from.
            age = 0 if parent_age is None else parent_age
        self._restrict(age)
        if node.selection_set is not None:
            self.selections(node.selection_set, returned, age)


def _age(
    field_hint: CacheControl | None,
    type_hint: CacheControl | None,
    parent_age: int | None,
    *,
    composite: bool,
) -> int | None:
    for hint in (field_hint, type_hint):
        if hint is None:
            continue
        if isinstance(hint.max_age, int):
            return hint.max_age
        if hint.inherit_max_age is True:
            return parent_age if parent_age is not None else 0
    return 0 if composite else parent_age


def _field_hint(field: GraphQLField) -> CacheControl | None:
    definition = (field.extensions or {}).get(_DEFINITION)
    return cache_hint(getattr(definition, "directives", None))


def _type_hint(named: GraphQLNamedType) -> CacheControl | None:
    definition = (named.extensions or {}).get(_DEFINITION)
    return cache_hint(getattr(definition, "directives", None))


class ResponseCache:
    """Looks up and stores whole responses; policies are memoized per document."""

    def __init__(
        self,
        schema: GraphQLSchema,
        cache: Callable[[], TwoLevelCache | None],
        *,
        enabled: bool,
        memo_size: int = 1000,
        kept_json_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._schema = schema
        self._cache = cache
        self.enabled = enabled
        self._memo_size = memo_size
        self._kept_json_bytes = kept_json_bytes
        self._kept_bytes = 0
        self._policies: OrderedDict[tuple[str, str | None], CachePolicy] = OrderedDict()
        self._audiences: dict[tuple[frozenset[str], frozenset[str]], Audience] = {}
        # Per key, the data object the cache gave last and its JSON: a hit on the same
        # in-process entry is not serialized again. Checked by identity, so an entry
        # replaced (stored again, or read anew from Redis) is encoded afresh.
        self._encoded: OrderedDict[str, tuple[object, bytes]] = OrderedDict()

    def policy(self, prepared: PreparedDocument, operation: OperationDefinitionNode) -> CachePolicy:
        """The operation's policy, computed once per document and operation."""
        memo_key = (prepared.document_hash, operation.name.value if operation.name else None)
        policy = self._policies.get(memo_key)
        if policy is None:
            policy = operation_policy(self._schema, prepared.document, operation)
            self._policies[memo_key] = policy
            if len(self._policies) > self._memo_size:
                self._policies.popitem(last=False)
        return policy

    def key(
        self,
        prepared: PreparedDocument,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        viewer: Viewer,
        policy: CachePolicy,
    ) -> str | None:
        """The response's cache key; None when it must not be cached for this viewer."""
        audience = self.audience(viewer, policy)
        if audience is None:
            return None
        return self.audience_key(prepared, operation_name, variables, audience)

    def audience(self, viewer: Viewer, policy: CachePolicy) -> Audience | None:
        """Who may share a response under this policy; None when none may be cached."""
        if not self.enabled or not policy.cacheable:
            return None
        if policy.private:
            if viewer.user_id is None:
                return None
            return ("viewer", viewer.user_id)
        # PUBLIC responses are shared by viewers with the same roles and scopes: field
        # permissions depend on those alone. Sorted once per set of roles and scopes.
        identity = (viewer.roles, viewer.scopes)
        audience = self._audiences.get(identity)
        if audience is None:
            if len(self._audiences) >= _KEPT_AUDIENCES:
                self._audiences.clear()
            audience = self._audiences[identity] = (
                "roles",
                tuple(sorted(viewer.roles)),
                tuple(sorted(viewer.scopes)),
            )
        return audience

    @staticmethod
    def audience_key(
        prepared: PreparedDocument,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        audience: Audience,
    ) -> str:
        """The cache key of a response for one audience (``audience``)."""
        material = orjson.dumps(
            [prepared.document_hash, operation_name, variables or {}, audience],
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(material).hexdigest()

    def generation(self) -> int | None:
        """The cache's invalidation generation before an execution (see ``store``)."""
        cache = self._cache()
        return cache.generation if cache is not None else None

    async def lookup(self, key: str) -> CachedResponse | None:
        """The cached response, if one is fresh and none of its tags has changed."""
        cache = self._cache()
        if cache is None:
            return None
        found = await cache.get(_RESPONSES, key)
        return self._cached(key, found)

    def lookup_in_memory(self, key: str) -> CachedResponse | Undecided | None:
        """What ``lookup`` answers when the in-process level is trusted and holds a fresh
        entry, without a coroutine (a hit never waits); ``UNDECIDED`` when ``lookup``
        must be awaited. The same hit counted, the same response."""
        cache = self._cache()
        if cache is None:
            return None
        found = cache.memory_hit(_RESPONSES, key)
        if found is None:
            return UNDECIDED
        return self._cached(key, found)

    def _cached(self, key: str, found: tuple[object, float] | None) -> CachedResponse | None:
        if found is None:
            return None
        data, age = found
        if not isinstance(data, dict):
            return None
        return CachedResponse(data, age, self._encoded_data(key, data))

    def _encoded_data(self, key: str, data: dict[str, Any]) -> bytes:
        kept = self._encoded.get(key)
        if kept is not None and kept[0] is data:
            self._encoded.move_to_end(key)
            return kept[1]
        encoded = orjson.dumps(data)
        if kept is not None:
            self._kept_bytes -= _kept_size(kept[1])
            del self._encoded[key]
        size = _kept_size(encoded)
        # Bounded by bytes as well as entries: the data held beside its JSON is not counted
        # by the in-process cache's own bound. One response over a quarter is not kept.
        if size > self._kept_json_bytes // 4:
            return encoded
        self._encoded[key] = (data, encoded)
        self._kept_bytes += size
        while len(self._encoded) > self._memo_size or self._kept_bytes > self._kept_json_bytes:
            _, (_, dropped) = self._encoded.popitem(last=False)
            self._kept_bytes -= _kept_size(dropped)
        return encoded

    async def store(
        self,
        key: str,
        data: dict[str, Any],
        trace: RequestTrace,
        policy: CachePolicy,
        generation: int | None,
    ) -> None:
        """Keeps a response built without errors or stale parts, under the tags it read."""
        cache = self._cache()
        if cache is None or generation is None or trace.stale or not trace.consistent:
            return
        await cache.put(_RESPONSES, key, data, trace.versions, policy.max_age, generation)


def _kept_size(encoded: bytes) -> int:
    # The JSON and, held beside it, the data it encodes: about as large again.
    return 2 * len(encoded)
