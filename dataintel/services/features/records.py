"""The features domain's vocabulary: value types, views, definitions and the records it returns."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

ValueType = Literal["float", "int", "string", "bool"]
FeatureScalar = float | int | str | bool
AggregateFunction = Literal[
    "count",
    "count_distinct",
    "sum",
    "average",
    "minimum",
    "maximum",
    "most_frequent",
    "days_since_latest",
]


class FeatureCatalogError(ValueError):
    """A feature view file that cannot be loaded; raised when the app or CLI starts."""


class FeatureStatus(enum.Enum):
    """What an online read found for one feature of one entity."""

    PRESENT = "present"
    NULL_VALUE = "null_value"
    NOT_FOUND = "not_found"
    OUTSIDE_MAX_AGE = "outside_max_age"


@dataclass(frozen=True, slots=True)
class Aggregation:
    """A set-based aggregate over a source's rows up to as_of, grouped by entity."""

    function: AggregateFunction
    source: str
    column: str | None = None
    window: timedelta | None = None
    where: tuple[tuple[str, tuple[str | int, ...]], ...] = ()
    weight: str | None = None
    scale: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FeatureDefinition:
    """One feature of a view: its type, meaning and how it is computed."""

    name: str
    view: str
    entity_type: str
    value_type: ValueType
    description: str
    aggregation: Aggregation | None
    formula: str | None


@dataclass(frozen=True, slots=True)
class FeatureView:
    """Features of one entity type computed together and sharing one TTL."""

    name: str
    entity_type: str
    ttl: timedelta
    description: str
    features: tuple[FeatureDefinition, ...]


@dataclass(frozen=True, slots=True)
class FeatureValueRecord:
    """One feature's online value for one entity, with its time and freshness."""

    entity_type: str
    entity_id: str
    name: str
    view: str
    value_type: ValueType
    value: FeatureScalar | None
    timestamp: datetime | None
    materialized_at: datetime | None
    stale: bool
    status: FeatureStatus


@dataclass(frozen=True, slots=True)
class MaterializationSummary:
    """What one materialization wrote: its as_of, its wall-clock time and rows per view."""

    as_of: datetime
    materialized_at: datetime
    rows_by_view: Mapping[str, int]

    @property
    def rows(self) -> int:
        """Feature values written over every view."""
        return sum(self.rows_by_view.values())
