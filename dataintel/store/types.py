"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

_from_iso = datetime.fromisoformat


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A moment in time: written as aware UTC, read back as aware UTC on every dialect."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Converts an aware datetime to UTC; refuses a naive one, whose zone is unknown."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware one")
        moment = value.astimezone(UTC)
        # SQLite keeps no zone: the stored text is UTC wall-clock time, so that text order is
        # time order and comparisons in SQL stay correct.
        if dialect.name == "sqlite":
            return moment.replace(tzinfo=None)
        return moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Returns the stored moment as an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """On SQLite, the stored UTC text read as aware UTC in one parse; else as above."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general

        def process(value: Any) -> datetime | None:
            # The general way parses, then calls replace(tzinfo=UTC), whose keyword parsing
            # cost more than the parse; a page of rows makes it once per row and column.
            if value.__class__ is str:
                try:
                    moment = _from_iso(value + "+00:00")
                except ValueError:
                    pass  # text with a zone of its own, or not a moment: the general way
                else:
                    # A date alone parses to a naive moment: that one too goes the general way.
                    if moment.tzinfo is UTC:
                        return moment
            result: datetime | None = general(value)
            return result

        return process
