"""The feature service: online reads of many entities at once, and materialization runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from dataintel.services.features.catalog import FeatureCatalog
from dataintel.services.features.materialization import latest_activity, materialize_view
from dataintel.services.features.records import (
    FeatureDefinition,
    FeatureStatus,
    FeatureValueRecord,
    MaterializationSummary,
)
from dataintel.services.features.values import loaded_value, utc
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, batch, fetch_all

Clock = Callable[[], datetime]


class FeatureService(Protocol):
    """Feature views, their materialization into the online table, and online reads."""

    @property
    def catalog(self) -> FeatureCatalog: ...

    async def online(
        self, entity_type: str, entity_ids: Sequence[str], names: Sequence[str] | None
    ) -> Mapping[str, Sequence[FeatureValueRecord]]: ...

    async def materialize(self, as_of: datetime | None = None) -> MaterializationSummary: ...

    async def has_values(self) -> bool: ...


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Stored:
    """One row of the online table, as read."""

    value_double: float | None
    value_text: str | None
    event_timestamp: datetime
    created_at: datetime


class SqlFeatureService:
    """FeatureService over the SQL store's ``feature_values`` table."""

    def __init__(
        self, engine: StoreEngine, catalog: FeatureCatalog, clock: Clock = system_clock
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._clock = clock

    @property
    def catalog(self) -> FeatureCatalog:
        """The feature views in force."""
        return self._catalog

    async def online(
        self, entity_type: str, entity_ids: Sequence[str], names: Sequence[str] | None
    ) -> Mapping[str, Sequence[FeatureValueRecord]]:
        """The named features of many entities in one statement; absent ones are NOT_FOUND."""
        definitions = self._catalog.select(entity_type, names)
        wanted = list(dict.fromkeys(entity_ids))
        found: dict[tuple[str, str], _Stored] = {}
        if wanted and definitions:
            values = tables.feature_values
            statement = sa.select(
                values.c.entity_id,
                values.c.feature_name,
                values.c.value_double,
                values.c.value_text,
                values.c.event_timestamp,
                values.c.created_at,
            ).where(
                values.c.entity_type == entity_type,
                values.c.entity_id.in_(wanted),
                values.c.feature_name.in_([definition.name for definition in definitions]),
            )
            rows = await fetch_all(self._engine, statement)
            found = {
                (row.entity_id, row.feature_name): _Stored(
                    row.value_double, row.value_text, row.event_timestamp, row.created_at
                )
                for row in rows
            }
        now = utc(self._clock())
        return {
            entity_id: [
                self._record(
                    entity_type, entity_id, definition, found.get((entity_id, definition.name)), now
                )
                for definition in definitions
            ]
            for entity_id in wanted
        }

    def _record(
        self,
        entity_type: str,
        entity_id: str,
        definition: FeatureDefinition,
        row: _Stored | None,
        now: datetime,
    ) -> FeatureValueRecord:
        if row is None:
            return FeatureValueRecord(
                entity_type=entity_type,
                entity_id=entity_id,
                name=definition.name,
                view=definition.view,
                value_type=definition.value_type,
                value=None,
                timestamp=None,
                materialized_at=None,
                stale=True,
                status=FeatureStatus.NOT_FOUND,
            )
        value = loaded_value(row.value_double, row.value_text, definition.value_type)
        materialized_at = utc(row.created_at)
        stale = now - materialized_at > self._catalog.view(definition.view).ttl
        if stale:
            status = FeatureStatus.OUTSIDE_MAX_AGE
        elif value is None:
            status = FeatureStatus.NULL_VALUE
        else:
            status = FeatureStatus.PRESENT
        return FeatureValueRecord(
            entity_type=entity_type,
            entity_id=entity_id,
            name=definition.name,
            view=definition.view,
            value_type=definition.value_type,
            value=value,
            timestamp=utc(row.event_timestamp),
            materialized_at=materialized_at,
            stale=stale,
            status=status,
        )

    async def materialize(self, as_of: datetime | None = None) -> MaterializationSummary:
        """Computes every view at ``as_of`` and upserts the values in one transaction."""
        materialized_at = utc(self._clock())
        rows_by_view: dict[str, int] = {}
        async with batch(self._engine) as connection:
            if as_of is None:
                as_of = await latest_activity(connection) or materialized_at
            as_of = utc(as_of)
            for view in self._catalog.views:
                rows_by_view[view.name] = await materialize_view(
                    connection, self._catalog, view, as_of, materialized_at
                )
        return MaterializationSummary(as_of, materialized_at, rows_by_view)

    async def has_values(self) -> bool:
        """Whether any feature value has been materialized."""
        statement = sa.select(tables.feature_values.c.entity_type).limit(1)
        return bool(await fetch_all(self._engine, statement))
