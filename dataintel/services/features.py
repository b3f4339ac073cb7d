"""Online features (after Feast): declarative feature views, materialization, online reads."""

from __future__ import annotations

import ast
import enum
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError
from dataintel.services.yaml_files import declaration_files, parse_yaml
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, batch, fetch_all

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
Clock = Callable[[], datetime]

BUILT_IN_VIEWS = "feature_views.yaml"
# Values per executemany call: bounds one statement's parameters whatever the store's size.
UPSERT_CHUNK = 5000


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


# --- Sources: where aggregates read from, per entity type -------------------------------

ColumnKind = Literal["number", "text"]


@dataclass(frozen=True, slots=True)
class _Source:
    rows: sa.FromClause
    key: sa.ColumnElement[Any]
    time: sa.ColumnElement[Any]
    columns: Mapping[str, tuple[sa.ColumnElement[Any], ColumnKind]]


def _order_columns() -> dict[str, tuple[sa.ColumnElement[Any], ColumnKind]]:
    orders = tables.orders.c
    return {
        "id": (orders.id, "number"),
        "total_cents": (orders.total_cents, "number"),
        "status": (orders.status, "text"),
        "channel": (orders.channel, "text"),
        "currency": (orders.currency, "text"),
    }


def _item_columns() -> dict[str, tuple[sa.ColumnElement[Any], ColumnKind]]:
    items, orders, products = tables.order_items.c, tables.orders.c, tables.products.c
    return {
        "order_id": (items.order_id, "number"),
        "product_id": (items.product_id, "number"),
        "customer_id": (orders.customer_id, "number"),
        "quantity": (items.quantity, "number"),
        "unit_price_cents": (items.unit_price_cents, "number"),
        "line_total_cents": (items.quantity * items.unit_price_cents, "number"),
        "category": (products.category, "text"),
        "status": (orders.status, "text"),
        "channel": (orders.channel, "text"),
    }


def _items_joined() -> sa.FromClause:
    items, orders, products = tables.order_items, tables.orders, tables.products
    return items.join(orders, items.c.order_id == orders.c.id).join(
        products, items.c.product_id == products.c.id
    )


@functools.cache
def _sources() -> dict[tuple[str, str], _Source]:
    orders, events, items = tables.orders, tables.events, tables.order_items
    return {
        ("customer", "orders"): _Source(
            orders, orders.c.customer_id, orders.c.placed_at, _order_columns()
        ),
        ("customer", "order_items"): _Source(
            _items_joined(), orders.c.customer_id, orders.c.placed_at, _item_columns()
        ),
        ("customer", "events"): _Source(
            events,
            events.c.customer_id,
            events.c.occurred_at,
            {
                "id": (events.c.id, "number"),
                "session_id": (events.c.session_id, "text"),
                "type": (events.c.type, "text"),
                "channel": (events.c.channel, "text"),
            },
        ),
        ("product", "order_items"): _Source(
            _items_joined(), items.c.product_id, orders.c.placed_at, _item_columns()
        ),
    }


@functools.cache
def _entities() -> dict[str, sa.Table]:
    return {"customer": tables.customers, "product": tables.products}


# --- Formulas: arithmetic over earlier features of a view, null in, null out --------------

Environment = Mapping[str, FeatureScalar | None]
Evaluator = Callable[[Environment], FeatureScalar | None]

_BINARY: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARISONS: Mapping[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS = ("min", "max", "coalesce")


def _apply(function: Callable[..., Any], *arguments: FeatureScalar | None) -> Any:
    if any(argument is None for argument in arguments):
        return None
    try:
        return function(*arguments)
    except ZeroDivisionError:
        return None


def _coalesce(*values: FeatureScalar | None) -> FeatureScalar | None:
    return next((value for value in values if value is not None), None)


def _compile_node(node: ast.expr, known: frozenset[str]) -> Evaluator:
    parts: list[Evaluator]
    match node:
        case ast.Constant(value=bool() | int() | float() as constant):
            return lambda _environment: constant
        case ast.Name(id=name):
            if name not in known:
                raise FeatureCatalogError(
                    f"'{name}' is not a feature declared earlier in the view;"
                    f" known: {', '.join(sorted(known)) or 'none'}."
                )
            return lambda environment: environment[name]
        case ast.BinOp(left=left, op=op, right=right) if type(op) in _BINARY:
            function = _BINARY[type(op)]
            first, second = _compile_node(left, known), _compile_node(right, known)
            return lambda environment: _apply(function, first(environment), second(environment))
        case ast.UnaryOp(op=ast.USub(), operand=operand):
            inner = _compile_node(operand, known)
            return lambda environment: _apply(operator.neg, inner(environment))
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            inner = _compile_node(operand, known)
            return lambda environment: _apply(operator.not_, inner(environment))
        case ast.BoolOp(op=op, values=values):
            parts = [_compile_node(value, known) for value in values]
            combine = all if isinstance(op, ast.And) else any
            return lambda environment: _apply(
                lambda *items: combine(items), *(part(environment) for part in parts)
            )
        case ast.Compare(left=left, ops=[op], comparators=[right]) if type(op) in _COMPARISONS:
            compare = _COMPARISONS[type(op)]
            first, second = _compile_node(left, known), _compile_node(right, known)
            return lambda environment: _apply(compare, first(environment), second(environment))
        case ast.Call(func=ast.Name(id=function_name), args=arguments, keywords=[]) if (
            function_name in _FUNCTIONS and arguments
        ):
            parts = [_compile_node(argument, known) for argument in arguments]
            if function_name == "coalesce":
                return lambda environment: _coalesce(*(part(environment) for part in parts))
            function = min if function_name == "min" else max
            return lambda environment: _apply(function, *(part(environment) for part in parts))
    raise FeatureCatalogError(
        f"'{ast.unparse(node)}' is not allowed in a formula: use numbers, earlier features,"
        " + - * /, comparisons, and/or/not, min(), max() and coalesce()."
    )


def compile_formula(text: str, known: Iterable[str]) -> Evaluator:
    """A formula's evaluator over the values of the ``known`` features."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise FeatureCatalogError(f"formula '{text}' does not parse: {error.msg}.") from None
    return _compile_node(tree.body, frozenset(known))


# --- The catalog: views loaded from YAML -----------------------------------------------

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = r"^[a-z][a-z0-9_]*$"


def parse_duration(text: str) -> timedelta:
    """A duration written as a whole number and a unit: 90s, 15m, 36h, 30d, 2w."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise FeatureCatalogError(f"'{text}' is not a positive duration such as 36h, 30d or 2w.")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])


class _FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    type: ValueType
    description: str = Field(min_length=1)
    aggregate: AggregateFunction | None = None
    source: str | None = None
    column: str | None = None
    window: str | None = None
    where: dict[str, list[str | int]] = Field(default_factory=dict)
    weight: str | None = None
    scale: float | None = None
    formula: str | None = None


class _ViewSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    entity: str
    ttl: str
    description: str = Field(min_length=1)
    features: list[_FeatureSpec] = Field(min_length=1)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    views: list[_ViewSpec]


_RESULT_KINDS: Mapping[str, ColumnKind | None] = {
    "count": "number",
    "count_distinct": "number",
    "sum": "number",
    "average": "number",
    "days_since_latest": "number",
    "minimum": None,
    "maximum": None,
    "most_frequent": None,
}
_NEEDS_COLUMN = ("count_distinct", "sum", "average", "minimum", "maximum", "most_frequent")
_NEEDS_NUMBER = ("sum", "average")


def _aggregation(view: _ViewSpec, spec: _FeatureSpec, where: str) -> Aggregation:
    if spec.aggregate is None:
        raise FeatureCatalogError(f"{where}: give either 'aggregate' or 'formula'.")
    source = _sources().get((view.entity, spec.source or ""))
    if source is None:
        names = sorted(name for entity, name in _sources() if entity == view.entity)
        raise FeatureCatalogError(
            f"{where}: source '{spec.source}' is not one of {', '.join(names)}."
        )
    if spec.aggregate in _NEEDS_COLUMN and spec.column is None:
        raise FeatureCatalogError(f"{where}: aggregate '{spec.aggregate}' needs a 'column'.")
    if spec.weight is not None and spec.aggregate != "most_frequent":
        raise FeatureCatalogError(f"{where}: 'weight' only applies to most_frequent.")
    for column in (spec.column, spec.weight, *spec.where):
        if column is not None and column not in source.columns:
            raise FeatureCatalogError(
                f"{where}: column '{column}' is not in source '{spec.source}';"
                f" columns: {', '.join(sorted(source.columns))}."
            )
    column_kind = source.columns[spec.column][1] if spec.column else "number"
    if spec.aggregate in _NEEDS_NUMBER and column_kind != "number":
        raise FeatureCatalogError(f"{where}: '{spec.aggregate}' needs a numeric column.")
    if spec.weight is not None and source.columns[spec.weight][1] != "number":
        raise FeatureCatalogError(f"{where}: 'weight' needs a numeric column.")
    result_kind = _RESULT_KINDS[spec.aggregate] or column_kind
    if (result_kind == "text") != (spec.type == "string") or spec.type == "bool":
        raise FeatureCatalogError(
            f"{where}: aggregate '{spec.aggregate}' gives a {result_kind}, not a {spec.type}."
        )
    if spec.scale is not None and result_kind != "number":
        raise FeatureCatalogError(f"{where}: 'scale' only applies to numbers.")
    try:
        window = parse_duration(spec.window) if spec.window else None
    except FeatureCatalogError as error:
        raise FeatureCatalogError(f"{where}: window {error}") from None
    return Aggregation(
        function=spec.aggregate,
        source=spec.source or "",
        column=spec.column,
        window=window,
        where=tuple((column, tuple(values)) for column, values in sorted(spec.where.items())),
        weight=spec.weight,
        scale=Decimal(str(spec.scale)) if spec.scale is not None else None,
    )


def _view(spec: _ViewSpec, origin: str) -> tuple[FeatureView, dict[str, Evaluator]]:
    if spec.entity not in _entities():
        raise FeatureCatalogError(
            f"{origin}: view '{spec.name}': entity '{spec.entity}' is not one of"
            f" {', '.join(sorted(_entities()))}."
        )
    features: list[FeatureDefinition] = []
    formulas: dict[str, Evaluator] = {}
    for feature in spec.features:
        where = f"{origin}: feature '{spec.name}.{feature.name}'"
        if feature.name in {known.name for known in features}:
            raise FeatureCatalogError(f"{where} is declared twice.")
        aggregation = None
        if feature.formula is not None:
            aggregate_keys = ("aggregate", "source", "column", "window", "weight", "scale")
            if any(getattr(feature, key) for key in aggregate_keys) or feature.where:
                raise FeatureCatalogError(f"{where}: a formula takes no aggregate options.")
            if feature.type == "string":
                raise FeatureCatalogError(f"{where}: a formula gives a number or a bool.")
            try:
                formulas[feature.name] = compile_formula(
                    feature.formula, (known.name for known in features)
                )
            except FeatureCatalogError as error:
                raise FeatureCatalogError(f"{where}: {error}") from None
        else:
            aggregation = _aggregation(spec, feature, where)
        features.append(
            FeatureDefinition(
                name=feature.name,
                view=spec.name,
                entity_type=spec.entity,
                value_type=feature.type,
                description=" ".join(feature.description.split()),
                aggregation=aggregation,
                formula=" ".join(feature.formula.split()) if feature.formula else None,
            )
        )
    try:
        ttl = parse_duration(spec.ttl)
    except FeatureCatalogError as error:
        raise FeatureCatalogError(f"{origin}: view '{spec.name}': ttl {error}") from None
    view = FeatureView(
        name=spec.name,
        entity_type=spec.entity,
        ttl=ttl,
        description=" ".join(spec.description.split()),
        features=tuple(features),
    )
    return view, formulas


def _read_views(text: str, origin: str) -> list[_ViewSpec]:
    return parse_yaml(text, origin, _FileSpec, FeatureCatalogError, "a feature view file").views


class FeatureCatalog:
    """The feature views in force, looked up by entity type and feature name."""

    def __init__(self, views: Sequence[FeatureView], formulas: Mapping[str, Evaluator]) -> None:
        self.views = tuple(views)
        self._formulas = dict(formulas)
        self._features: dict[str, dict[str, FeatureDefinition]] = {}
        self._views = {view.name: view for view in views}
        for view in views:
            by_name = self._features.setdefault(view.entity_type, {})
            for feature in view.features:
                if feature.name in by_name:
                    raise FeatureCatalogError(
                        f"feature '{feature.name}' of entity '{view.entity_type}' is in views"
                        f" '{by_name[feature.name].view}' and '{view.name}'; names must be"
                        " unique per entity type."
                    )
                by_name[feature.name] = feature

    @property
    def entity_types(self) -> tuple[str, ...]:
        """Entity types that have at least one feature, sorted."""
        return tuple(sorted(self._features))

    def view(self, name: str) -> FeatureView:
        """The view of this name."""
        return self._views[name]

    def formula(self, view: str, feature: str) -> Evaluator:
        """The compiled formula of a formula feature."""
        return self._formulas[f"{view}.{feature}"]

    def _check_entity_type(self, entity_type: str) -> None:
        if entity_type not in self._features:
            raise BadUserInputError(
                f"Unknown entity type '{entity_type}'; known: {', '.join(self.entity_types)}.",
                domain="features",
                details={"argument": "entityType", "valid": list(self.entity_types)},
            )

    def views_of(self, entity_type: str | None) -> tuple[FeatureView, ...]:
        """The views of one entity type (all when None); BAD_USER_INPUT on an unknown type."""
        if entity_type is None:
            return self.views
        self._check_entity_type(entity_type)
        return tuple(view for view in self.views if view.entity_type == entity_type)

    def select(
        self, entity_type: str, names: Sequence[str] | None
    ) -> tuple[FeatureDefinition, ...]:
        """The named features of an entity type (all when None); BAD_USER_INPUT on unknowns."""
        self._check_entity_type(entity_type)
        known = self._features[entity_type]
        if names is None:
            return tuple(known.values())
        unknown = [name for name in names if name not in known]
        if unknown:
            raise BadUserInputError(
                f"Unknown feature(s) {', '.join(repr(name) for name in unknown)} of entity"
                f" '{entity_type}'; known: {', '.join(known)}.",
                domain="features",
                details={"unknown": unknown, "valid": list(known)},
            )
        return tuple(known[name] for name in dict.fromkeys(names))


def load_catalog(path: Path | None = None) -> FeatureCatalog:
    """The built-in views plus those of ``path``, whose views replace built-ins by name."""
    files = declaration_files(
        "dataintel.services", BUILT_IN_VIEWS, path, FeatureCatalogError, "feature views from"
    )
    specs = {
        spec.name: (spec, origin) for text, origin in files for spec in _read_views(text, origin)
    }
    views: list[FeatureView] = []
    formulas: dict[str, Evaluator] = {}
    for spec, origin in specs.values():
        view, view_formulas = _view(spec, origin)
        views.append(view)
        formulas.update({f"{view.name}.{name}": formula for name, formula in view_formulas.items()})
    return FeatureCatalog(views, formulas)


# --- The service -----------------------------------------------------------------------


class FeatureService(Protocol):
    """Feature views, their materialization into the online table, and online reads."""

    @property
    def catalog(self) -> FeatureCatalog: ...

    async def online(
        self, entity_type: str, entity_ids: Sequence[str], names: Sequence[str] | None
    ) -> Mapping[str, Sequence[FeatureValueRecord]]: ...

    async def materialize(self, as_of: datetime | None = None) -> MaterializationSummary: ...

    async def has_values(self) -> bool: ...


def utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def _number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool | int):
        return Decimal(int(value))
    # Through str so that 0.1 stays 0.1 rather than its binary expansion.
    return Decimal(str(value))


def _typed(value: Any, value_type: ValueType) -> FeatureScalar | None:
    if value is None:
        return None
    if value_type == "string":
        return str(value)
    if value_type == "bool":
        return bool(value)
    if value_type == "int":
        return int(_number(value).to_integral_value())
    return float(value)


def _storable(value: FeatureScalar | None) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, value
    return float(value), None


def _loaded(
    value_double: float | None, value_text: str | None, value_type: ValueType
) -> FeatureScalar | None:
    if value_type == "string":
        return value_text
    return _typed(value_double, value_type)


@dataclass(frozen=True, slots=True)
class _Stored:
    """One row of the online table, as read."""

    value_double: float | None
    value_text: str | None
    event_timestamp: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Column:
    """One feature's place in a view's statement and how its raw result becomes a value."""

    label: str
    feature: FeatureDefinition


def _conditions(
    source: _Source, aggregation: Aggregation, as_of: datetime
) -> list[sa.ColumnElement[bool]]:
    conditions = [source.key.is_not(None), source.time <= as_of]
    if aggregation.window is not None:
        conditions.append(source.time > as_of - aggregation.window)
    conditions += [source.columns[name][0].in_(values) for name, values in aggregation.where]
    return conditions


def _aggregate(source: _Source, aggregation: Aggregation) -> sa.ColumnElement[Any]:
    if aggregation.function == "count":
        return sa.func.count()
    if aggregation.function == "days_since_latest":
        return sa.func.max(source.time)
    assert aggregation.column is not None
    column = source.columns[aggregation.column][0]
    match aggregation.function:
        case "count_distinct":
            return sa.func.count(sa.distinct(column))
        case "sum":
            return sa.func.sum(column)
        case "average":
            return sa.func.avg(column)
        case "minimum":
            return sa.func.min(column)
        case "maximum":
            return sa.func.max(column)
    raise AssertionError(aggregation.function)


def _most_frequent(
    source: _Source, aggregation: Aggregation, as_of: datetime, label: str
) -> sa.Subquery:
    assert aggregation.column is not None
    value = source.columns[aggregation.column][0]
    tally = (
        sa.func.sum(source.columns[aggregation.weight][0])
        if aggregation.weight
        else sa.func.count()
    )
    tallies = (
        sa.select(source.key.label("entity_id"), value.label("value"), tally.label("tally"))
        .select_from(source.rows)
        .where(*_conditions(source, aggregation, as_of), value.is_not(None))
        .group_by(source.key, value)
        .subquery()
    )
    # Ties go to the smallest value so that both dialects and reruns agree.
    rank = sa.func.row_number().over(
        partition_by=tallies.c.entity_id, order_by=(tallies.c.tally.desc(), tallies.c.value.asc())
    )
    ranked = sa.select(tallies.c.entity_id, tallies.c.value, rank.label("position")).subquery()
    return (
        sa.select(ranked.c.entity_id, ranked.c.value.label(label))
        .where(ranked.c.position == 1)
        .subquery()
    )


def view_statement(view: FeatureView, as_of: datetime) -> tuple[sa.Select[Any], list[_Column]]:
    """One statement computing every aggregate of a view for every entity, left-joined."""
    entity = _entities()[view.entity_type]
    sources = _sources()
    joined: sa.FromClause = entity
    selected: list[sa.ColumnElement[Any]] = []
    columns: list[_Column] = []
    # Aggregates over the same rows share one grouped subquery.
    groups: dict[tuple[Any, ...], list[tuple[str, FeatureDefinition]]] = {}
    for index, feature in enumerate(view.features):
        aggregation = feature.aggregation
        if aggregation is None:
            continue
        label = f"feature_{index}"
        columns.append(_Column(label, feature))
        source = sources[(view.entity_type, aggregation.source)]
        if aggregation.function == "most_frequent":
            best = _most_frequent(source, aggregation, as_of, label)
            joined = joined.outerjoin(best, best.c.entity_id == entity.c.id)
            selected.append(best.c[label])
            continue
        group = (aggregation.source, aggregation.window, aggregation.where)
        groups.setdefault(group, []).append((label, feature))
    for members in groups.values():
        first = members[0][1].aggregation
        assert first is not None
        source = sources[(view.entity_type, first.source)]
        grouped = (
            sa.select(
                source.key.label("entity_id"),
                *(
                    _aggregate(source, feature.aggregation).label(label)
                    for label, feature in members
                    if feature.aggregation is not None
                ),
            )
            .select_from(source.rows)
            .where(*_conditions(source, first, as_of))
            .group_by(source.key)
            .subquery()
        )
        joined = joined.outerjoin(grouped, grouped.c.entity_id == entity.c.id)
        selected += [grouped.c[label] for label, _ in members]
    statement = (
        sa.select(entity.c.id.label("entity_id"), *selected)
        .select_from(joined)
        .order_by(entity.c.id)
    )
    return statement, columns


def _aggregate_value(raw: Any, feature: FeatureDefinition, as_of: datetime) -> Any:
    aggregation = feature.aggregation
    assert aggregation is not None
    if raw is None:
        # No rows for the entity: counts and sums are zero, the rest has no value.
        if aggregation.function in ("count", "count_distinct", "sum"):
            return 0
        return None
    if aggregation.function == "days_since_latest":
        return (as_of - utc(raw)) // timedelta(days=1)
    if aggregation.scale is not None:
        return _number(raw) * aggregation.scale
    return raw


async def _latest_activity(connection: AsyncConnection) -> datetime | None:
    """The latest order or event in the store: the default as_of of a materialization."""
    orders, events = tables.orders, tables.events
    statement = sa.select(
        sa.select(sa.func.max(orders.c.placed_at)).scalar_subquery(),
        sa.select(sa.func.max(events.c.occurred_at)).scalar_subquery(),
    )
    row = (await connection.execute(statement)).one()
    moments = [utc(moment) for moment in row if moment is not None]
    return max(moments) if moments else None


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
        value = _loaded(row.value_double, row.value_text, definition.value_type)
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
                as_of = await _latest_activity(connection) or materialized_at
            as_of = utc(as_of)
            for view in self._catalog.views:
                rows_by_view[view.name] = await self._materialize_view(
                    connection, view, as_of, materialized_at
                )
        return MaterializationSummary(as_of, materialized_at, rows_by_view)

    async def _materialize_view(
        self,
        connection: AsyncConnection,
        view: FeatureView,
        as_of: datetime,
        materialized_at: datetime,
    ) -> int:
        statement, columns = view_statement(view, as_of)
        upsert = self._upsert_statement(connection)
        written = 0
        # One row per entity, read whole so that no cursor stays open across the writes.
        result = (await connection.execute(statement)).all()
        chunk: list[dict[str, Any]] = []
        for row in result:
            computed: dict[str, FeatureScalar | None] = {}
            for column in columns:
                raw = _aggregate_value(row._mapping[column.label], column.feature, as_of)
                computed[column.feature.name] = _typed(raw, column.feature.value_type)
            for feature in view.features:
                if feature.formula is not None:
                    evaluate = self._catalog.formula(view.name, feature.name)
                    computed[feature.name] = _typed(evaluate(computed), feature.value_type)
            for feature in view.features:
                value_double, value_text = _storable(computed[feature.name])
                chunk.append(
                    {
                        "entity_type": view.entity_type,
                        "entity_id": str(row.entity_id),
                        "feature_name": feature.name,
                        "value_double": value_double,
                        "value_text": value_text,
                        "event_timestamp": as_of,
                        "created_at": materialized_at,
                    }
                )
            if len(chunk) >= UPSERT_CHUNK:
                await connection.execute(upsert, chunk)
                written += len(chunk)
                chunk = []
        if chunk:
            await connection.execute(upsert, chunk)
            written += len(chunk)
        await connection.execute(self._orphans_statement(view))
        return written

    def _upsert_statement(self, connection: AsyncConnection) -> sa.Executable:
        values = tables.feature_values
        statement: postgresql.Insert | sqlite.Insert = (
            postgresql.insert(values)
            if connection.dialect.name == "postgresql"
            else sqlite.insert(values)
        )
        return statement.on_conflict_do_update(
            index_elements=list(values.primary_key.columns),
            set_={
                name: statement.excluded[name]
                for name in ("value_double", "value_text", "event_timestamp", "created_at")
            },
        )

    def _orphans_statement(self, view: FeatureView) -> sa.Executable:
        """Deletes the view's values of entities that no longer exist (e.g. erased customers)."""
        values = tables.feature_values
        entity = _entities()[view.entity_type]
        # NOT IN over a subquery: both dialects hash it, where a correlated NOT EXISTS on a
        # cast id would scan the entity table once per value on SQLite.
        existing = sa.select(sa.cast(entity.c.id, sa.String))
        return sa.delete(values).where(
            values.c.entity_type == view.entity_type,
            values.c.feature_name.in_([feature.name for feature in view.features]),
            values.c.entity_id.not_in(existing),
        )

    async def has_values(self) -> bool:
        """Whether any feature value has been materialized."""
        statement = sa.select(tables.feature_values.c.entity_type).limit(1)
        return bool(await fetch_all(self._engine, statement))
