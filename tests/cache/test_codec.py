"""The cache codec: records round-trip exactly; nothing unregistered is rebuilt."""

from __future__ import annotations

import dataclasses
import enum
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from dataintel.cache import CodecError, JsonCodec, RecordCodec, digest
from dataintel.services.cached import ANALYTICS_TYPES, COMMERCE_TYPES, FEATURE_TYPES
from dataintel.services.commerce import CustomerRecord, OrderFilter
from dataintel.services.features import FeatureStatus, FeatureValueRecord
from dataintel.services.pagination import Page, PageRequest


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True, slots=True)
class Everything:
    moment: datetime
    day: date
    span: timedelta
    amount: Decimal
    share: Fraction
    ratio: float
    missing: float
    color: Color
    labels: tuple[str, ...]
    lookup: dict[int, str]


CUSTOMER = CustomerRecord(
    1, "C000001", "ada@example.com", "Ada", "europe", "GB", "gold", "organic",
    datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
)  # fmt: skip


def test_records_round_trip() -> None:
    codec = RecordCodec(COMMERCE_TYPES)
    page = Page([CUSTOMER, CUSTOMER], has_next_page=True)
    decoded = codec.decode(codec.encode(page))
    assert decoded == Page((CUSTOMER, CUSTOMER), True)
    assert isinstance(decoded, Page)
    assert decoded.items[0].signed_up_at.tzinfo is not None


def test_every_supported_value_round_trips() -> None:
    codec = RecordCodec([Everything, Color])
    value = Everything(
        moment=datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        day=date(2025, 1, 2),
        span=timedelta(days=1, seconds=2, microseconds=3),
        amount=Decimal("12.34"),
        share=Fraction(1, 3),
        ratio=0.25,
        missing=float("inf"),
        color=Color.RED,
        labels=("a", "b"),
        lookup={1: "one"},
    )
    assert codec.decode(codec.encode(value)) == value


def test_feature_values_keep_their_enum() -> None:
    codec = RecordCodec(FEATURE_TYPES)
    record = FeatureValueRecord(
        "customer", "1", "order_count", "customer_orders", "int", 3,
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC), False,
        FeatureStatus.PRESENT,
    )  # fmt: skip
    assert codec.decode(codec.encode([record])) == (record,)


def test_unregistered_types_are_refused_both_ways() -> None:
    codec = RecordCodec([Color])
    with pytest.raises(CodecError):
        codec.encode(CUSTOMER)
    foreign = RecordCodec(COMMERCE_TYPES).encode(CUSTOMER)
    with pytest.raises(CodecError):
        codec.decode(foreign)


def test_version_follows_the_fields() -> None:
    narrow = dataclasses.make_dataclass("Shape", [("width", int)], frozen=True)
    wide = dataclasses.make_dataclass("Shape", [("width", int), ("height", int)], frozen=True)
    assert RecordCodec([narrow]).version != RecordCodec([wide]).version
    assert RecordCodec(COMMERCE_TYPES).version == RecordCodec(COMMERCE_TYPES).version


def test_every_service_record_type_is_registered() -> None:
    # Two types of one name, or a type that is neither a dataclass nor an enum, would raise.
    version = RecordCodec([*COMMERCE_TYPES, *FEATURE_TYPES, *ANALYTICS_TYPES]).version
    assert re.fullmatch(r"rec-[0-9a-f]{12}", version)


def test_digest_is_stable_and_tells_queries_apart() -> None:
    codec = RecordCodec(COMMERCE_TYPES)
    query = (OrderFilter(statuses=("paid",)), PageRequest(10))
    assert digest(codec, query) == digest(codec, (OrderFilter(statuses=("paid",)), PageRequest(10)))
    assert digest(codec, query) != digest(codec, (OrderFilter(), PageRequest(10)))


def test_json_codec() -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode({"data": {"a": [1, "b"]}})) == {"data": {"a": [1, "b"]}}
