"""Reads prepared once: a select built once per shape, compiled once per dialect, run as tuples.

SQLAlchemy's execution of a statement whose compiled form is cached still costs more than
SQLite's read of a page: a connection object and its greenlet, an execution context that
processes every parameter, a cursor result, and a ``Row`` made for every row. A prepared
read keeps what does not change between reads: the SQL for each count of values in its
``IN`` lists, which parameter goes where with which bind processor, and the result
processor of each column. On SQLite it runs on the pooled connection itself
(``sqlite_driver.read_rows``: on the event loop's thread while small) and answers plain
tuples; on any other store it goes through SQLAlchemy's execution as before, so the
services run the same code on both.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn

from dataintel.loop_turns import take_turn
from dataintel.store.guarded import GuardedEngine, StoreEngine, fetch_all
from dataintel.store.sqlite_driver import INLINE_READS, OneCallConnection, read_rows

_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Expansion:
    """The SQL for one count of values in each ``IN`` list, and where each value goes."""

    sql: str
    sources: tuple[tuple[str | None, int | None, Any], ...]
    """Per positional parameter: its parameter's name, its index in that parameter's list
    (None for a single value), its bind processor; or None, None and the processed value
    the statement itself gives (SQLite's ``OFFSET 0`` after a limit)."""

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional parameters of a read with these values."""
        values = []
        for name, index, process in self.sources:
            if name is None:
                values.append(process)
                continue
            value = parameters[name] if index is None else parameters[name][index]
            values.append(value if process is None else process(value))
        return values


class _Compiled:
    """A prepared read compiled for one dialect."""

    __slots__ = ("_compiled", "_expanding", "_expansions", "processed")

    # Counts of values per IN list kept per statement (a batch has at most max_batch_size).
    _EXPANSIONS_KEPT = 1024

    def __init__(self, statement: sa.Select[Any], dialect: Dialect) -> None:
        self._compiled = statement.compile(dialect=dialect)
        self._expanding = tuple(
            name for name, bind in self._compiled.binds.items() if bind.expanding
        )
        self._expansions: dict[tuple[int, ...], _Expansion] = {}
        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        ]
        self.processed = tuple(
            (index, process) for index, process in enumerate(processors) if process is not None
        )
        """The columns read through a result processor, with it."""

    def expansion(self, parameters: Mapping[str, Any]) -> _Expansion:
        """The SQL and parameter order for the counts of values these parameters have."""
        counts = tuple(len(parameters[name]) for name in self._expanding)
        expansion = self._expansions.get(counts)
        if expansion is None:
            if len(self._expansions) >= self._EXPANSIONS_KEPT:
                self._expansions.clear()
            expansion = self._expansions[counts] = self._expand(parameters)
        return expansion

    def _expand(self, parameters: Mapping[str, Any]) -> _Expansion:
        state = self._compiled.construct_expanded_state(parameters, escape_names=False)
        if state.positiontup is None:
            raise ValueError("a prepared read needs a dialect with positional parameters")
        expanded = {
            name: (source, index)
            for source, names in state.parameter_expansion.items()
            for index, name in enumerate(names)
        }
        dialect = self._compiled.dialect
        sources: list[tuple[str | None, int | None, Any]] = []
        for name in state.positiontup:
            # The expanded state has the processors of the values it expanded; the others
            # are those of the statement's own bind parameters.
            process: _Processor | None = state.processors.get(name)
            if process is None and name in self._compiled.binds:
                bind_type = self._compiled.binds[name].type
                process = bind_type.dialect_impl(dialect).bind_processor(dialect)
            if name in expanded:
                sources.append((*expanded[name], process))
            elif name in parameters:
                sources.append((name, None, process))
            else:
                value = state.parameters[name]
                sources.append((None, None, value if process is None else process(value)))
        return _Expansion(state.statement, tuple(sources))


class PreparedRead:
    """A read statement built once, its values named bind parameters (``IN`` lists expanding)."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[Dialect, _Compiled] = {}

    # Dialects (one per engine) kept per statement: a process has one engine or two; the
    # test suite makes hundreds.
    _DIALECTS_KEPT = 8

    def compiled(self, dialect: Dialect) -> _Compiled:
        """The statement compiled for ``dialect`` (once)."""
        compiled = self._compiled.get(dialect)
        if compiled is None:
            if len(self._compiled) >= self._DIALECTS_KEPT:
                self._compiled.clear()
            compiled = self._compiled[dialect] = _Compiled(self.statement, dialect)
        return compiled


async def fetch_prepared(
    engine: StoreEngine, read: PreparedRead, parameters: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Every row of a prepared read, in the statement's column order (behind the breaker
    when the engine is guarded); on SQLite, plain tuples from the pooled connection."""
    inner = engine.engine if isinstance(engine, GuardedEngine) else engine
    if not (isinstance(inner, AsyncEngine) and _runs_prepared(inner)):
        return await fetch_all(engine, read.statement, parameters)
    if isinstance(engine, GuardedEngine):
        async with engine.dependency.section():
            return await _sqlite_rows(inner, read, parameters)
    return await _sqlite_rows(inner, read, parameters)


def _runs_prepared(engine: AsyncEngine) -> bool:
    # SQLite only; and not while anything listens to the engine's statements (tracing's
    # spans, tests counting statements): those see every statement through SQLAlchemy.
    if engine.dialect.name != "sqlite":
        return False
    dispatch = engine.sync_engine.dispatch
    return not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)


async def _sqlite_rows(
    engine: AsyncEngine, read: PreparedRead, parameters: Mapping[str, Any]
) -> list[Any]:
    compiled = read.compiled(engine.dialect)
    expansion = compiled.expansion(parameters)
    values = expansion.values(parameters)
    # Before the checkout: a read waiting for its turn holds no connection meanwhile.
    await take_turn()
    try:
        pooled = await engine.raw_connection()
        try:
            adapted = cast(OneCallConnection, pooled.dbapi_connection)
            inline = bool(pooled.info.get(INLINE_READS, False))
            rows = await read_rows(adapted, expansion.sql, values, inline)
        except BaseException as error:
            if not isinstance(error, Exception):
                # Cancelled (a budget ran out) while the statement may still run on the
                # connection's thread: the connection is replaced at its next checkout
                # rather than handed to another read meanwhile, as SQLAlchemy does.
                pooled.invalidate(error, soft=True)
            raise
        finally:
            # Back to the pool; closing an overflow connection awaits its thread.
            await greenlet_spawn(pooled.close)
    except sqlite3.Error as error:
        # What SQLAlchemy's execution raises for it (connecting included), so the breaker
        # and the callers see the same errors.
        raise sa.exc.DBAPIError.instance(
            expansion.sql, values, error, sqlite3.Error, dialect=engine.dialect
        ) from error
    processed = compiled.processed
    if not processed:
        return rows
    converted = []
    for row in rows:
        values_of_row = list(row)
        for index, process in processed:
            values_of_row[index] = process(values_of_row[index])
        converted.append(values_of_row)
    return converted
