"""The services behind the two-level cache: the same interfaces, reads served from cache.

Each decorator owns its regions: how a read is keyed, which tags it carries (so that a
write or a materialization invalidates it) and how long it lives. By-key batch reads may
raise PartialResult when some keys failed and others were served; the loaders split it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from dataintel.cache import (
    RecordCodec,
    Region,
    TwoLevelCache,
    dataset_tag,
    digest,
    entity_tag,
    features_tag,
    same_key,
)
from dataintel.services.analytics import (
    AnalyticsCatalog,
    AnalyticsFilter,
    AnalyticsOrder,
    AnalyticsQuery,
    AnalyticsResult,
    AnalyticsRow,
    AnalyticsService,
    DimensionDefinition,
    DimensionValue,
    MeasureDefinition,
    MeasureValue,
)
from dataintel.services.commerce import (
    CommerceService,
    CustomerFilter,
    CustomerRecord,
    EventFilter,
    EventRecord,
    OrderFilter,
    OrderItemRecord,
    OrderRecord,
    ProductFilter,
    ProductRecord,
)
from dataintel.services.features import (
    FeatureCatalog,
    FeatureService,
    FeatureStatus,
    FeatureValueRecord,
    MaterializationSummary,
)
from dataintel.services.pagination import Page, PageRequest

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

COMMERCE_TYPES = (
    CustomerRecord,
    ProductRecord,
    OrderRecord,
    OrderItemRecord,
    EventRecord,
    OrderFilter,
    CustomerFilter,
    ProductFilter,
    EventFilter,
    PageRequest,
    Page,
)
FEATURE_TYPES = (FeatureValueRecord, FeatureStatus)
ANALYTICS_TYPES = (
    AnalyticsQuery,
    AnalyticsFilter,
    AnalyticsOrder,
    AnalyticsResult,
    AnalyticsRow,
    MeasureValue,
    DimensionValue,
    MeasureDefinition,
    DimensionDefinition,
)


@dataclass(frozen=True, slots=True)
class CacheLifetimes:
    """How long each kind of read is fresh, and how long past that it may stand in."""

    entities_seconds: float
    features_seconds: float
    analytics_seconds: float
    stale_seconds: float


class QueryDigests:
    """The cache key of each query value (a filter, a page), computed once per distinct value.

    A digest walks the whole value through the codec: on a warm read it cost more than the
    read itself. Query values are frozen and hashable, so the digest is remembered by value;
    two values that compare equal (as ``1 == 1.0``) share a key, which they may: they ask the
    store for the same rows. At most ``size`` are remembered.
    """

    def __init__(self, codec: RecordCodec, size: int = 1024) -> None:
        self._codec = codec
        self._size = size
        self._known: dict[object, str] = {}

    def __call__(self, value: object) -> str:
        try:
            found = self._known.get(value)
        except TypeError:  # unhashable: nothing to remember it by
            return digest(self._codec, value)
        if found is None:
            if len(self._known) >= self._size:
                self._known.clear()
            found = self._known[value] = digest(self._codec, value)
        return found

    def __len__(self) -> int:
        return len(self._known)


_same = same_key


def _first(key: tuple[int, object]) -> int:
    return key[0]


class CachedCommerceService:
    """CommerceService through the cache: entities by id, their relations, pages and counts."""

    def __init__(
        self, inner: CommerceService, cache: TwoLevelCache, lifetimes: CacheLifetimes
    ) -> None:
        self._inner = inner
        self._cache = cache
        codec = RecordCodec(COMMERCE_TYPES)

        def region(
            name: str, key: Callable[[K], str], tags: Callable[[K], tuple[str, ...]]
        ) -> Region[K, V]:
            ttl, stale = lifetimes.entities_seconds, lifetimes.stale_seconds
            return Region(f"commerce.{name}", codec, key, tags, ttl, stale)

        by_query = QueryDigests(codec)

        def of(table: str) -> Callable[[object], tuple[str, ...]]:
            tags = (dataset_tag(table),)
            return lambda _: tags

        def entity(kind: str, table: str) -> Callable[[int], tuple[str, ...]]:
            return lambda entity_id: (entity_tag(kind, entity_id), dataset_tag(table))

        def of_customer(key: tuple[int, object]) -> tuple[str, ...]:
            return (entity_tag("customer", key[0]), dataset_tag("orders"))

        def per_customer(key: tuple[int, object]) -> str:
            return f"{key[0]}:{by_query(key[1])}"

        self._customer: Region[int, CustomerRecord] = region(
            "customer", str, entity("customer", "customers")
        )
        self._product: Region[int, ProductRecord] = region(
            "product", str, entity("product", "products")
        )
        self._order: Region[int, OrderRecord] = region("order", str, entity("order", "orders"))
        self._items: Region[int, Sequence[OrderItemRecord]] = region(
            "order_items", str, entity("order", "order_items")
        )
        self._customer_orders: Region[
            tuple[int, tuple[OrderFilter, PageRequest]], Page[OrderRecord]
        ] = region("customer_orders", per_customer, of_customer)
        self._customer_order_count: Region[tuple[int, OrderFilter], int] = region(
            "customer_order_count", per_customer, of_customer
        )
        self._orders: Region[tuple[OrderFilter, PageRequest], Page[OrderRecord]] = region(
            "orders", by_query, of("orders")
        )
        self._order_count: Region[OrderFilter, int] = region("order_count", by_query, of("orders"))
        self._customers: Region[tuple[CustomerFilter, PageRequest], Page[CustomerRecord]] = region(
            "customers", by_query, of("customers")
        )
        self._customer_count: Region[CustomerFilter, int] = region(
            "customer_count", by_query, of("customers")
        )
        self._products: Region[tuple[ProductFilter, PageRequest], Page[ProductRecord]] = region(
            "products", by_query, of("products")
        )
        self._product_count: Region[ProductFilter, int] = region(
            "product_count", by_query, of("products")
        )
        self._events: Region[tuple[EventFilter, PageRequest], Page[EventRecord]] = region(
            "events", by_query, of("events")
        )
        self._event_count: Region[EventFilter, int] = region("event_count", by_query, of("events"))

    async def customers_by_id(self, ids: Sequence[int]) -> Mapping[int, CustomerRecord]:
        fetched = await self._cache.fetch_many(self._customer, ids, self._inner.customers_by_id)
        return fetched.settle(_same)

    async def products_by_id(self, ids: Sequence[int]) -> Mapping[int, ProductRecord]:
        fetched = await self._cache.fetch_many(self._product, ids, self._inner.products_by_id)
        return fetched.settle(_same)

    async def orders_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderRecord]:
        fetched = await self._cache.fetch_many(self._order, ids, self._inner.orders_by_id)
        return fetched.settle(_same)

    # Single order items and events are read only by node(id:): straight from the store.
    async def order_items_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderItemRecord]:
        return await self._inner.order_items_by_id(ids)

    async def events_by_id(self, ids: Sequence[int]) -> Mapping[int, EventRecord]:
        return await self._inner.events_by_id(ids)

    async def items_by_order(
        self, order_ids: Sequence[int]
    ) -> Mapping[int, Sequence[OrderItemRecord]]:
        fetched = await self._cache.fetch_many(self._items, order_ids, self._inner.items_by_order)
        return fetched.settle(_same)

    async def orders(self, where: OrderFilter, page: PageRequest) -> Page[OrderRecord]:
        return await self._cache.fetch(
            self._orders, (where, page), lambda: self._inner.orders(where, page)
        )

    async def orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter, page: PageRequest
    ) -> Mapping[int, Page[OrderRecord]]:
        query = (where, page)

        async def load(
            keys: Sequence[tuple[int, tuple[OrderFilter, PageRequest]]],
        ) -> Mapping[tuple[int, tuple[OrderFilter, PageRequest]], Page[OrderRecord]]:
            found = await self._inner.orders_by_customer([key[0] for key in keys], where, page)
            return {key: found[key[0]] for key in keys if key[0] in found}

        keys = [(customer_id, query) for customer_id in customer_ids]
        fetched = await self._cache.fetch_many(self._customer_orders, keys, load)
        return fetched.settle(_first)

    async def count_orders(self, where: OrderFilter) -> int:
        return await self._cache.fetch(
            self._order_count, where, lambda: self._inner.count_orders(where)
        )

    async def count_orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter
    ) -> Mapping[int, int]:
        async def load(
            keys: Sequence[tuple[int, OrderFilter]],
        ) -> Mapping[tuple[int, OrderFilter], int]:
            found = await self._inner.count_orders_by_customer([key[0] for key in keys], where)
            return {key: found[key[0]] for key in keys if key[0] in found}

        keys = [(customer_id, where) for customer_id in customer_ids]
        fetched = await self._cache.fetch_many(self._customer_order_count, keys, load)
        return fetched.settle(_first)

    async def customers(self, where: CustomerFilter, page: PageRequest) -> Page[CustomerRecord]:
        return await self._cache.fetch(
            self._customers, (where, page), lambda: self._inner.customers(where, page)
        )

    async def count_customers(self, where: CustomerFilter) -> int:
        return await self._cache.fetch(
            self._customer_count, where, lambda: self._inner.count_customers(where)
        )

    async def products(self, where: ProductFilter, page: PageRequest) -> Page[ProductRecord]:
        return await self._cache.fetch(
            self._products, (where, page), lambda: self._inner.products(where, page)
        )

    async def count_products(self, where: ProductFilter) -> int:
        return await self._cache.fetch(
            self._product_count, where, lambda: self._inner.count_products(where)
        )

    async def events(self, where: EventFilter, page: PageRequest) -> Page[EventRecord]:
        return await self._cache.fetch(
            self._events, (where, page), lambda: self._inner.events(where, page)
        )

    async def count_events(self, where: EventFilter) -> int:
        return await self._cache.fetch(
            self._event_count, where, lambda: self._inner.count_events(where)
        )


FeatureKey = tuple[str, tuple[str, ...] | None, str]
"""Entity type, the feature names asked for (None: all), entity id."""


class CachedFeatureService:
    """FeatureService through the cache; a materialization invalidates what it rewrote."""

    def __init__(
        self, inner: FeatureService, cache: TwoLevelCache, lifetimes: CacheLifetimes
    ) -> None:
        self._inner = inner
        self._cache = cache
        codec = RecordCodec(FEATURE_TYPES)
        names_digest = QueryDigests(codec)

        def key(entry: FeatureKey) -> str:
            entity_type, names, entity_id = entry
            return f"{entity_type}:{names_digest(names)}:{entity_id}"

        def tags(entry: FeatureKey) -> tuple[str, ...]:
            return (features_tag(entry[0]), entity_tag(entry[0], entry[2]))

        self._online: Region[FeatureKey, Sequence[FeatureValueRecord]] = Region(
            "features.online",
            codec,
            key,
            tags,
            lifetimes.features_seconds,
            lifetimes.stale_seconds,
        )

    @property
    def catalog(self) -> FeatureCatalog:
        """The feature views in force."""
        return self._inner.catalog

    async def online(
        self, entity_type: str, entity_ids: Sequence[str], names: Sequence[str] | None
    ) -> Mapping[str, Sequence[FeatureValueRecord]]:
        """The named features of many entities; cached per entity and set of names."""
        chosen = tuple(names) if names is not None else None

        async def load(
            keys: Sequence[FeatureKey],
        ) -> Mapping[FeatureKey, Sequence[FeatureValueRecord]]:
            found = await self._inner.online(entity_type, [key[2] for key in keys], names)
            return {key: found[key[2]] for key in keys if key[2] in found}

        keys = [(entity_type, chosen, entity_id) for entity_id in entity_ids]
        fetched = await self._cache.fetch_many(self._online, keys, load)
        return fetched.settle(_entity_id)

    async def materialize(self, as_of: datetime | None = None) -> MaterializationSummary:
        """Materializes, then invalidates the online values of every entity type it wrote."""
        summary = await self._inner.materialize(as_of)
        entity_types = {view.entity_type for view in self._inner.catalog.views}
        await self._cache.invalidate(features_tag(entity_type) for entity_type in entity_types)
        return summary

    async def has_values(self) -> bool:
        """Whether any feature value has been materialized (never cached)."""
        return await self._inner.has_values()


def _entity_id(key: FeatureKey) -> str:
    return key[2]


class CachedAnalyticsService:
    """AnalyticsService through the cache: results keyed by the query and the catalog."""

    def __init__(
        self, inner: AnalyticsService, cache: TwoLevelCache, lifetimes: CacheLifetimes
    ) -> None:
        self._inner = inner
        self._cache = cache
        codec = RecordCodec(ANALYTICS_TYPES)
        query_digest = QueryDigests(codec)
        # Replicas with different catalog files must not share results.
        catalog = catalog_fingerprint(inner.catalog)

        def key(query: AnalyticsQuery) -> str:
            return f"{catalog}:{query_digest(query)}"

        self._results: Region[AnalyticsQuery, AnalyticsResult] = Region(
            "analytics.query",
            codec,
            key,
            self._tags,
            lifetimes.analytics_seconds,
            lifetimes.stale_seconds,
        )

    @property
    def catalog(self) -> AnalyticsCatalog:
        """The catalog queries are checked against."""
        return self._inner.catalog

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult:
        """A query's result, from cache while its tables have not changed."""
        return await self._cache.fetch(self._results, query, lambda: self._inner.query(query))

    def _tags(self, query: AnalyticsQuery) -> tuple[str, ...]:
        catalog = self._inner.catalog
        members = (*query.measures, *(condition.member for condition in query.filters))
        tables: dict[str, None] = {}
        for name in members:
            measure = catalog.measures.get(name)
            if measure is None:
                continue
            for source in catalog.sources_of(measure):
                tables.update(dict.fromkeys(catalog.sources[source].tables))
        return tuple(dataset_tag(table) for table in tables)


def catalog_fingerprint(catalog: AnalyticsCatalog) -> str:
    """A digest of every source, dimension and measure definition."""
    described = repr(
        (
            sorted(catalog.sources.items()),
            sorted(catalog.dimensions.items()),
            sorted(catalog.measures.items()),
        )
    )
    return hashlib.sha256(described.encode()).hexdigest()[:12]
