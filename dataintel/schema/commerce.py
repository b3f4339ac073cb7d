"""The core entities of the demo business: customers, products, orders with items, events."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Annotated, TypeVar

import strawberry

from dataintel.directives.auth import VIEWERS
from dataintel.directives.cache_control import CacheControl
from dataintel.resolvers import commerce as resolvers
from dataintel.resolvers import features as feature_resolvers
from dataintel.resolvers.info import Info
from dataintel.resolvers.keyed_loads import KeyedLoad
from dataintel.schema.features import FeatureNamesArgument, FeatureValue
from dataintel.schema.made_once import MadeOnce
from dataintel.schema.node import Node, global_id
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.services import commerce as records
from dataintel.services.commerce import (
    event_keyset,
    id_keyset,
    order_keyset,
)

ENTITY_MAX_AGE = 60
"""@cacheControl maxAge of the core entities, in seconds."""
ENTITY_CACHE = [CacheControl(max_age=ENTITY_MAX_AGE)]
# On the types too: node(id:) reaches them without passing a root field (schema policy and
# the operation's fields say so; the node resolver checks the root field's policy as well).
ENTITY = [*ENTITY_CACHE, VIEWERS]


@strawberry.enum(description="Where an order is in its life.")
class OrderStatus(enum.Enum):
    PLACED = "placed"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@strawberry.enum(description="Where an order was placed.")
class SalesChannel(enum.Enum):
    WEB = "web"
    MOBILE = "mobile"
    MARKETPLACE = "marketplace"


@strawberry.enum(description="A customer's sales region.")
class Region(enum.Enum):
    NORTH_AMERICA = "north_america"
    EUROPE = "europe"
    ASIA_PACIFIC = "asia_pacific"
    LATIN_AMERICA = "latin_america"


@strawberry.enum(description="A customer's loyalty tier.")
class CustomerTier(enum.Enum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


@strawberry.enum(description="How a customer first came.")
class AcquisitionChannel(enum.Enum):
    ORGANIC = "organic"
    PAID_SEARCH = "paid_search"
    SOCIAL = "social"
    REFERRAL = "referral"
    EMAIL = "email"


@strawberry.enum(description="What happened in an event.")
class EventType(enum.Enum):
    PAGE_VIEW = "page_view"
    SIGN_UP = "sign_up"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"


E = TypeVar("E", bound=enum.Enum)


def _by_value(kind: type[E]) -> Callable[[str], E]:
    """``kind(value)`` by one dict lookup: with the caches off every object is made for one
    request, and the enum's own call cost more than the rest of making a customer; a value
    that is not a member still raises as ``kind(value)`` does."""
    members = {member.value: member for member in kind}

    def member(value: str) -> E:
        found = members.get(value)
        return found if found is not None else kind(value)

    return member


_ORDER_STATUS = _by_value(OrderStatus)
_SALES_CHANNEL = _by_value(SalesChannel)
_REGION = _by_value(Region)
_CUSTOMER_TIER = _by_value(CustomerTier)
_ACQUISITION_CHANNEL = _by_value(AcquisitionChannel)


def _values(items: list[enum.Enum] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(item.value for item in items)


def _cents(amount: float | None) -> int | None:
    return None if amount is None else round(amount * 100)


@strawberry.input(description="Orders matching every given condition.")
class OrderFilter:
    status: list[OrderStatus] | None = strawberry.field(default=None, description="Any of these.")
    channel: list[SalesChannel] | None = strawberry.field(default=None, description="Any of these.")
    customer_id: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Placed by any of these customers (ids or databaseIds)."
    )
    placed_from: datetime | None = strawberry.field(default=None, description="Placed at or after.")
    placed_before: datetime | None = strawberry.field(default=None, description="Placed before.")
    min_total: float | None = strawberry.field(default=None, description="Total at least this.")
    max_total: float | None = strawberry.field(default=None, description="Total at most this.")

    def to_record(self) -> records.OrderFilter:
        ids = None
        if self.customer_id is not None:
            ids = tuple(resolvers.entity_id(raw, "Customer") for raw in self.customer_id)
        return records.OrderFilter(
            statuses=_values(list(self.status) if self.status is not None else None),
            channels=_values(list(self.channel) if self.channel is not None else None),
            customer_ids=ids,
            placed_from=self.placed_from,
            placed_before=self.placed_before,
            min_total_cents=_cents(self.min_total),
            max_total_cents=_cents(self.max_total),
        )


@strawberry.input(description="Customers matching every given condition.")
class CustomerFilter:
    region: list[Region] | None = strawberry.field(default=None, description="Any of these.")
    tier: list[CustomerTier] | None = strawberry.field(default=None, description="Any of these.")
    acquisition_channel: list[AcquisitionChannel] | None = strawberry.field(
        default=None, description="Any of these."
    )
    signed_up_from: datetime | None = strawberry.field(default=None, description="At or after.")
    signed_up_before: datetime | None = strawberry.field(default=None, description="Before.")

    def to_record(self) -> records.CustomerFilter:
        return records.CustomerFilter(
            regions=_values(list(self.region) if self.region is not None else None),
            tiers=_values(list(self.tier) if self.tier is not None else None),
            acquisition_channels=_values(
                list(self.acquisition_channel) if self.acquisition_channel is not None else None
            ),
            signed_up_from=self.signed_up_from,
            signed_up_before=self.signed_up_before,
        )


@strawberry.input(description="Products matching every given condition.")
class ProductFilter:
    category: list[str] | None = strawberry.field(default=None, description="Any of these.")
    min_price: float | None = strawberry.field(default=None, description="Price at least this.")
    max_price: float | None = strawberry.field(default=None, description="Price at most this.")

    def to_record(self) -> records.ProductFilter:
        return records.ProductFilter(
            categories=tuple(self.category) if self.category is not None else None,
            min_price_cents=_cents(self.min_price),
            max_price_cents=_cents(self.max_price),
        )


@strawberry.input(description="Events matching every given condition.")
class EventFilter:
    type: list[EventType] | None = strawberry.field(default=None, description="Any of these.")
    customer_id: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Of any of these customers (ids or databaseIds)."
    )
    occurred_from: datetime | None = strawberry.field(default=None, description="At or after.")
    occurred_before: datetime | None = strawberry.field(default=None, description="Before.")

    def to_record(self) -> records.EventFilter:
        ids = None
        if self.customer_id is not None:
            ids = tuple(resolvers.entity_id(raw, "Customer") for raw in self.customer_id)
        return records.EventFilter(
            types=_values(list(self.type) if self.type is not None else None),
            customer_ids=ids,
            occurred_from=self.occurred_from,
            occurred_before=self.occurred_before,
        )


IdArgument = Annotated[
    strawberry.ID,
    strawberry.argument(description="The object's global id (or, as in 0.1.0, its databaseId)."),
]
FilterDescription = strawberry.argument(description="Conditions that all must hold; none: all.")
DATABASE_ID = "Its key in the store, the plain id of 0.1.0; prefer the global `id`."


def _customer_of(record: records.CustomerRecord) -> Customer:
    return Customer(
        id=global_id("Customer", record.id),
        database_id=record.id,
        code=record.code,
        email=record.email,
        name=record.name,
        region=_REGION(record.region),
        country=record.country,
        tier=_CUSTOMER_TIER(record.tier),
        acquisition_channel=_ACQUISITION_CHANNEL(record.acquisition_channel),
        signed_up_at=record.signed_up_at,
    )


@strawberry.type(description="A customer of the business.", directives=ENTITY)
class Customer(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    code: str = strawberry.field(description="The business's customer number, e.g. C000042.")
    email: str = strawberry.field(description="Contact e-mail address.")
    name: str = strawberry.field(description="Full name.")
    region: Region = strawberry.field(description="Sales region.")
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 country code.")
    tier: CustomerTier = strawberry.field(description="Loyalty tier.")
    acquisition_channel: AcquisitionChannel = strawberry.field(description="How they came.")
    signed_up_at: datetime = strawberry.field(description="When they signed up (UTC).")

    @strawberry.field(description="The customer's orders, newest first.")
    async def orders(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[OrderFilter | None, FilterDescription] = None,
    ) -> Connection[Order] | None:
        page = resolvers.page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.OrderFilter()
        found, count = await resolvers.orders_of_customer(info, self.database_id, page, where)
        return Connection.from_page(found, Order.from_record, order_keyset, count)

    @strawberry.field(
        description="The customer's online feature values (see onlineFeatures), in the order"
        " asked; batched across customers. Null with BAD_USER_INPUT for an unknown name."
    )
    async def features(
        self, info: Info, names: FeatureNamesArgument = None
    ) -> list[FeatureValue] | None:
        values = await feature_resolvers.for_entity(info, "customer", str(self.database_id), names)
        return [FeatureValue.from_record(value) for value in values]

    from_record = MadeOnce(_customer_of)
    """The Customer of a record: one per record object, shared (see schema/made_once.py)."""


def _product_of(record: records.ProductRecord) -> Product:
    return Product(
        id=global_id("Product", record.id),
        database_id=record.id,
        sku=record.sku,
        name=record.name,
        category=record.category,
        price_cents=record.price_cents,
    )


@strawberry.type(description="Something the business sells.", directives=ENTITY)
class Product(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    sku: str = strawberry.field(description="Stock keeping unit.")
    name: str = strawberry.field(description="Product name.")
    category: str = strawberry.field(description="Product category, e.g. electronics.")
    price_cents: int = strawberry.field(description="List price in cents.")

    @strawberry.field(description="List price in currency units.")
    def price(self) -> float:
        return self.price_cents / 100

    from_record = MadeOnce(_product_of)
    """The Product of a record: one per record object, shared (see schema/made_once.py)."""


_product_id: Callable[[OrderItem], int] = attrgetter("product_id")


PRODUCT_OF_ITEM = KeyedLoad(
    resolvers.products_by_id,
    _product_id,
    Product.from_record.optional,
    Product.from_record.made,
)


def _order_item_of(record: records.OrderItemRecord) -> OrderItem:
    return OrderItem(
        id=global_id("OrderItem", record.id),
        database_id=record.id,
        quantity=record.quantity,
        unit_price_cents=record.unit_price_cents,
        product_id=record.product_id,
    )


@strawberry.type(description="One line of an order.", directives=ENTITY)
class OrderItem(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    quantity: int = strawberry.field(description="Units ordered.")
    unit_price_cents: int = strawberry.field(description="Price of one unit in cents.")
    product_id: strawberry.Private[int]

    @strawberry.field(description="Quantity times unit price, in cents.")
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @strawberry.field(description="The product ordered.", metadata=PRODUCT_OF_ITEM.metadata)
    async def product(self, info: Info) -> Product | None:
        return await PRODUCT_OF_ITEM.resolve(self, info)

    from_record = MadeOnce(_order_item_of)
    """The OrderItem of a record: one per record object, shared (see schema/made_once.py)."""


# Keys read by attrgetter: the planned executor reads a page's keys in one C pass, with no
# Python frame per parent (gateway/planned/run.py).
_ordering_customer: Callable[[Order], int] = attrgetter("customer_id")


def _order_items(items: Sequence[records.OrderItemRecord]) -> list[OrderItem]:
    return [OrderItem.from_record(item) for item in items]


_order_id: Callable[[Order], int] = attrgetter("database_id")


CUSTOMER_OF_ORDER = KeyedLoad(
    resolvers.customers_by_id,
    _ordering_customer,
    Customer.from_record.optional,
    Customer.from_record.made,
)
ITEMS_OF_ORDER = KeyedLoad(resolvers.items_by_order, _order_id, _order_items)


def _order_of(record: records.OrderRecord) -> Order:
    return Order(
        id=global_id("Order", record.id),
        database_id=record.id,
        status=_ORDER_STATUS(record.status),
        channel=_SALES_CHANNEL(record.channel),
        placed_at=record.placed_at,
        total_cents=record.total_cents,
        currency=record.currency,
        customer_id=record.customer_id,
    )


@strawberry.type(description="A customer's order.", directives=ENTITY)
class Order(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    status: OrderStatus = strawberry.field(description="Where the order is in its life.")
    channel: SalesChannel = strawberry.field(description="Where it was placed.")
    placed_at: datetime = strawberry.field(description="When it was placed (UTC).")
    total_cents: int = strawberry.field(description="Sum of its items in cents.")
    currency: str = strawberry.field(description="ISO 4217 currency code.")
    customer_id: strawberry.Private[int]

    @strawberry.field(
        description="Sum of its items in currency units.",
        deprecation_reason="A float cannot hold every amount in cents exactly: use totalCents"
        " with currency.",
    )
    def total(self) -> float:
        return self.total_cents / 100

    @strawberry.field(description="Who placed it.", metadata=CUSTOMER_OF_ORDER.metadata)
    async def customer(self, info: Info) -> Customer | None:
        return await CUSTOMER_OF_ORDER.resolve(self, info)

    @strawberry.field(
        description="Its lines; null when they cannot be loaded (see errors).",
        metadata=ITEMS_OF_ORDER.metadata,
    )
    async def items(self, info: Info) -> list[OrderItem] | None:
        return await ITEMS_OF_ORDER.resolve(self, info)

    from_record = MadeOnce(_order_of)
    """The Order of a record: one per record object, shared (see schema/made_once.py)."""


_acting_customer: Callable[[Event], int | None] = attrgetter("customer_id")


CUSTOMER_OF_EVENT = KeyedLoad(
    resolvers.customers_by_id,
    _acting_customer,
    Customer.from_record.optional,
    Customer.from_record.made,
)


def _event_of(record: records.EventRecord) -> Event:
    return Event(
        id=global_id("Event", record.id),
        database_id=record.id,
        type=EventType(record.type),
        channel=record.channel,
        session_id=record.session_id,
        occurred_at=record.occurred_at,
        customer_id=record.customer_id,
    )


@strawberry.type(description="Something a visitor or customer did.", directives=ENTITY)
class Event(Node):
    database_id: int = strawberry.field(description=DATABASE_ID)
    type: EventType = strawberry.field(description="What happened.")
    channel: str = strawberry.field(description="Where it happened.")
    session_id: str = strawberry.field(description="The visit it belongs to.")
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    customer_id: strawberry.Private[int | None]

    @strawberry.field(
        description="Who did it; null for anonymous visitors.",
        metadata=CUSTOMER_OF_EVENT.metadata,
    )
    async def customer(self, info: Info) -> Customer | None:
        return await CUSTOMER_OF_EVENT.resolve(self, info)

    from_record = MadeOnce(_event_of)
    """The Event of a record: one per record object, shared (see schema/made_once.py)."""


@strawberry.type
class CommerceQuery:
    @strawberry.field(
        description="A customer by id; null when there is none.", directives=[VIEWERS]
    )
    async def customer(self, info: Info, id: IdArgument) -> Customer | None:
        record = await resolvers.customer(info, resolvers.entity_id(id, "Customer"))
        return Customer.from_record(record) if record else None

    @strawberry.field(description="Customers by id, filtered.", directives=[*ENTITY_CACHE, VIEWERS])
    async def customers(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[CustomerFilter | None, FilterDescription] = None,
    ) -> Connection[Customer] | None:
        page = resolvers.page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.CustomerFilter()
        found, count = await resolvers.customers(info, page, where)
        return Connection.from_page(found, Customer.from_record, id_keyset, count)

    @strawberry.field(description="A product by id; null when there is none.", directives=[VIEWERS])
    async def product(self, info: Info, id: IdArgument) -> Product | None:
        record = await resolvers.product(info, resolvers.entity_id(id, "Product"))
        return Product.from_record(record) if record else None

    @strawberry.field(description="Products by id, filtered.", directives=[*ENTITY_CACHE, VIEWERS])
    async def products(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[ProductFilter | None, FilterDescription] = None,
    ) -> Connection[Product] | None:
        page = resolvers.page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.ProductFilter()
        found, count = await resolvers.products(info, page, where)
        return Connection.from_page(found, Product.from_record, id_keyset, count)

    @strawberry.field(description="An order by id; null when there is none.", directives=[VIEWERS])
    async def order(self, info: Info, id: IdArgument) -> Order | None:
        record = await resolvers.order(info, resolvers.entity_id(id, "Order"))
        return Order.from_record(record) if record else None

    @strawberry.field(
        description="Orders, newest first, filtered.", directives=[*ENTITY_CACHE, VIEWERS]
    )
    async def orders(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[OrderFilter | None, FilterDescription] = None,
    ) -> Connection[Order] | None:
        page = resolvers.page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.OrderFilter()
        found, count = await resolvers.orders(info, page, where)
        return Connection.from_page(found, Order.from_record, order_keyset, count)

    @strawberry.field(
        description="Events, newest first, filtered.", directives=[*ENTITY_CACHE, VIEWERS]
    )
    async def events(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[EventFilter | None, FilterDescription] = None,
    ) -> Connection[Event] | None:
        page = resolvers.page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.EventFilter()
        found, count = await resolvers.events(info, page, where)
        return Connection.from_page(found, Event.from_record, event_keyset, count)
