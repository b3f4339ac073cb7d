"""Feature values between the store and Python: typed scalars, UTC moments, the two columns.

The online table keeps a number in ``value_double`` and a string in ``value_text``; a
value's declared type decides which one it goes to and how it reads back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dataintel.services.features.records import FeatureScalar, ValueType


def utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def decimal_of(value: Any) -> Decimal:
    """A store's number as an exact Decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool | int):
        return Decimal(int(value))
    # Through str so that 0.1 stays 0.1 rather than its binary expansion.
    return Decimal(str(value))


def typed_value(value: Any, value_type: ValueType) -> FeatureScalar | None:
    """A computed value as the feature's declared type (None stays None)."""
    if value is None:
        return None
    if value_type == "string":
        return str(value)
    if value_type == "bool":
        return bool(value)
    if value_type == "int":
        return int(decimal_of(value).to_integral_value())
    return float(value)


def stored_columns(value: FeatureScalar | None) -> tuple[float | None, str | None]:
    """(value_double, value_text) of a value for the online table."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, value
    return float(value), None


def loaded_value(
    value_double: float | None, value_text: str | None, value_type: ValueType
) -> FeatureScalar | None:
    """The value of an online table row's two columns, as the feature's declared type."""
    if value_type == "string":
        return value_text
    return typed_value(value_double, value_type)
