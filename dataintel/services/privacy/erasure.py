"""Erasure of one subject's data, dataset by dataset, as the privacy map says.

Each dataset is changed in one transaction of its own: its rows are masked (null, keyed hash
or redaction per column), deleted, or counted as retained under their legal basis. Only
values that still differ from what the strategy writes are changed, so a second run
changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from dataintel.services.privacy.keyed_hash import is_keyed_hash, keyed_hash
from dataintel.services.privacy.privacy_map import ColumnErasure, DatasetPrivacy, PrivacyMap
from dataintel.store.guarded import StoreEngine


@dataclass(frozen=True, slots=True)
class DatasetErasure:
    """What an erasure did to one dataset."""

    dataset: str
    table: str
    erasure: str
    masked: int = 0
    deleted: int = 0
    retained: int = 0
    legal_basis: str | None = None
    legal_reason: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The outcome as the JSON the request's result holds (camelCase keys)."""
        plain = asdict(self)
        plain["legalBasis"] = plain.pop("legal_basis")
        plain["legalReason"] = plain.pop("legal_reason")
        return plain


def erased_value(column: ColumnErasure, current: Any, key: bytes) -> Any:
    """What the strategy writes in place of ``current``; ``current`` when already erased."""
    if column.strategy == "null" or current is None:
        return None
    if column.strategy == "redact":
        return column.value
    text = str(current)
    return text if is_keyed_hash(text) else keyed_hash(key, text)


async def erase_dataset(
    engine: StoreEngine,
    privacy_map: PrivacyMap,
    dataset: DatasetPrivacy,
    customer_id: int,
    key: bytes,
) -> DatasetErasure:
    """Applies the dataset's erasure to the subject's rows, in one transaction."""
    table = dataset.table
    linked = privacy_map.link(dataset, customer_id)
    retention = dataset.retention
    outcome = DatasetErasure(
        dataset.name,
        table.name,
        dataset.erasure,
        legal_basis=retention.basis if retention else None,
        legal_reason=retention.reason if retention else None,
    )
    async with engine.begin() as connection:
        if dataset.erasure == "delete":
            deleted = (await connection.execute(sa.delete(table).where(linked))).rowcount
            return _with(outcome, deleted=int(deleted or 0))
        if dataset.erasure == "retain":
            count = await connection.scalar(
                sa.select(sa.func.count()).select_from(table).where(linked)
            )
            return _with(outcome, retained=int(count or 0))
        keys = list(table.primary_key.columns)
        columns = [table.c[column.column] for column in dataset.columns]
        rows = (await connection.execute(sa.select(*keys, *columns).where(linked))).all()
        masked = 0
        for row in rows:
            values = row._mapping
            changes = {}
            for column in dataset.columns:
                current = values[table.c[column.column]]
                replacement = erased_value(column, current, key)
                if replacement != current:
                    changes[column.column] = replacement
            if changes:
                where = [key_column == values[key_column] for key_column in keys]
                await connection.execute(sa.update(table).where(*where).values(**changes))
                masked += 1
        return _with(outcome, masked=masked)


def _with(outcome: DatasetErasure, **changes: Any) -> DatasetErasure:
    return replace(outcome, **changes)
