"""Stored runs of declared definitions (quality results, reconciliation runs), newest first.

Both keep one row per run with an integer id that grows with time and the id of the
definition it ran (its owner), so latest, paging and counting are the same statements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import sqlalchemy as sa

from dataintel.services.pagination import (
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.store.guarded import StoreEngine, fetch_all, fetch_scalar
from dataintel.store.rows import AnyRow

T = TypeVar("T")


class RunHistory(Generic[T]):
    """The runs in ``table`` by their ``owner`` column, read as records by ``convert``."""

    def __init__(
        self,
        engine: StoreEngine,
        table: sa.Table,
        owner: str,
        convert: Callable[[AnyRow], T],
    ) -> None:
        self._engine = engine
        self._table = table
        self._owner = table.c[owner]
        self._convert = convert

    async def latest(self, owners: Sequence[str]) -> list[T | None]:
        """The newest run of each owner, in the order asked (None: never ran)."""
        if not owners:
            return []
        table = self._table
        newest = (
            sa.select(sa.func.max(table.c.id)).where(self._owner.in_(owners)).group_by(self._owner)
        )
        rows = await fetch_all(self._engine, sa.select(table).where(table.c.id.in_(newest)))
        by_owner = {row._mapping[self._owner.key]: self._convert(row) for row in rows}
        return [by_owner.get(owner) for owner in owners]

    async def page(self, owner: str, request: PageRequest) -> Page[T]:
        """A page of an owner's runs, newest first (first/after, last/before)."""
        key = [self._table.c.id]
        statement = (
            sa.select(self._table)
            .where(self._owner == owner, *keyset_conditions(key, True, request))
            .order_by(*keyset_order(key, True, request))
            .limit(request.limit)
        )
        rows = await fetch_all(self._engine, statement)
        return page_from_rows([self._convert(row) for row in rows], request)

    async def count(self, owner: str) -> int:
        """How many runs an owner has."""
        statement = sa.select(sa.func.count()).where(self._owner == owner)
        return int(await fetch_scalar(self._engine, statement))

    async def by_ids(self, ids: Sequence[int]) -> list[T | None]:
        """Runs by id, in the order asked (None: no such run)."""
        if not ids:
            return []
        table = self._table
        rows = await fetch_all(self._engine, sa.select(table).where(table.c.id.in_(ids)))
        found = {row.id: self._convert(row) for row in rows}
        return [found.get(run_id) for run_id in ids]
