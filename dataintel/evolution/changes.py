"""Every change between two schemas, classified breaking, dangerous or safe, with its coordinate.

graphql-core's ``find_schema_changes`` (the successor of ``find_breaking_changes`` and
``find_dangerous_changes``, with a safe class) finds and classifies the changes; it says
nothing about deprecations or root operation types, which graphql-inspector also reports,
so those are added here. Each change is named by its schema coordinate (``Type.field``,
``Type.field(arg:)``, ``Enum.VALUE``, ``@directive``), which the release gate matches
against the changelog.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from graphql import (
    BreakingChangeType,
    DangerousChangeType,
    GraphQLSchema,
    find_schema_changes,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_object_type,
)

from dataintel.gateway.coordinates import deprecated_coordinates


class Criticality(Enum):
    """How a change affects clients that already exist."""

    BREAKING = "breaking"
    """Some valid operation becomes invalid or gets other data."""
    DANGEROUS = "dangerous"
    """Operations stay valid but may behave differently (new enum value, new default)."""
    SAFE = "safe"
    """Nothing an existing operation does changes."""


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One change: how critical, its kind, the coordinate it is about, and what happened."""

    criticality: Criticality
    kind: str
    coordinate: str
    """Schema coordinate, e.g. Query.orders, Query.orders(first:), OrderStatus.PAID, @auth."""
    message: str


_NAME = r"[_A-Za-z][_0-9A-Za-z]*"
_MEMBER = rf"{_NAME}\.{_NAME}"
_ARGUMENT = rf"(?:{_MEMBER}|@{_NAME})\({_NAME}:?\)"
_DIRECTIVE = rf"@{_NAME}"


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text.replace("COORDINATE", "(?P<coordinate>{})"))


# graphql-core words its messages the same way for every change of a kind (checked for
# each kind by tests/evolution/test_changes.py); the coordinate is read from them.
_COORDINATES: dict[str, re.Pattern[str]] = {
    "TYPE_REMOVED": _pattern(rf"^(?:Standard scalar )?(?P<coordinate>{_NAME}) was removed"),
    "TYPE_ADDED": _pattern(rf"^(?P<coordinate>{_NAME}) was added"),
    "TYPE_CHANGED_KIND": _pattern(rf"^(?P<coordinate>{_NAME}) changed from"),
    "TYPE_REMOVED_FROM_UNION": _pattern(rf"removed from union type (?P<coordinate>{_NAME})\.$"),
    "TYPE_ADDED_TO_UNION": _pattern(rf"added to union type (?P<coordinate>{_NAME})\.$"),
    "VALUE_REMOVED_FROM_ENUM": _pattern(rf"^Enum value (?P<coordinate>{_MEMBER}) "),
    "VALUE_ADDED_TO_ENUM": _pattern(rf"^Enum value (?P<coordinate>{_MEMBER}) "),
    "REQUIRED_INPUT_FIELD_ADDED": _pattern(rf"^A required field (?P<coordinate>{_MEMBER}) "),
    "OPTIONAL_INPUT_FIELD_ADDED": _pattern(rf"^An optional field (?P<coordinate>{_MEMBER}) "),
    "IMPLEMENTED_INTERFACE_REMOVED": _pattern(rf"^(?P<coordinate>{_NAME}) no longer implements"),
    "IMPLEMENTED_INTERFACE_ADDED": _pattern(rf"implemented by (?P<coordinate>{_NAME})\.$"),
    "FIELD_REMOVED": _pattern(rf"^Field (?P<coordinate>{_MEMBER}) "),
    "FIELD_ADDED": _pattern(rf"^Field (?P<coordinate>{_MEMBER}) "),
    "FIELD_CHANGED_KIND": _pattern(rf"^Field (?P<coordinate>{_MEMBER}) "),
    "FIELD_CHANGED_KIND_SAFE": _pattern(rf"^Field (?P<coordinate>{_MEMBER}) "),
    "REQUIRED_ARG_ADDED": _pattern(rf"^A required argument (?P<coordinate>{_ARGUMENT}) "),
    "OPTIONAL_ARG_ADDED": _pattern(rf"^An optional argument (?P<coordinate>{_ARGUMENT}) "),
    "ARG_REMOVED": _pattern(rf"^Argument (?P<coordinate>{_ARGUMENT}) "),
    "ARG_CHANGED_KIND": _pattern(rf"^Argument (?P<coordinate>{_ARGUMENT}) "),
    "ARG_CHANGED_KIND_SAFE": _pattern(rf"^Argument (?P<coordinate>{_ARGUMENT}) "),
    "ARG_DEFAULT_VALUE_CHANGE": _pattern(rf"^(?P<coordinate>{_ARGUMENT}) "),
    "ARG_DEFAULT_VALUE_ADDED": _pattern(rf"^(?P<coordinate>{_ARGUMENT}) "),
    "INPUT_FIELD_DEFAULT_VALUE_CHANGE": _pattern(rf"^(?P<coordinate>{_MEMBER}) "),
    "INPUT_FIELD_DEFAULT_VALUE_ADDED": _pattern(rf"^(?P<coordinate>{_MEMBER}) "),
    "DIRECTIVE_REMOVED": _pattern(rf"^Directive (?P<coordinate>{_DIRECTIVE}) "),
    "DIRECTIVE_ADDED": _pattern(rf"^Directive (?P<coordinate>{_DIRECTIVE}) "),
    "DIRECTIVE_ARG_REMOVED": _pattern(rf"^Argument (?P<coordinate>{_ARGUMENT}) "),
    "REQUIRED_DIRECTIVE_ARG_ADDED": _pattern(rf"^A required argument (?P<coordinate>{_ARGUMENT}) "),
    "OPTIONAL_DIRECTIVE_ARG_ADDED": _pattern(
        rf"^An optional argument (?P<coordinate>{_ARGUMENT}) "
    ),
    "DIRECTIVE_REPEATABLE_REMOVED": _pattern(rf"(?P<coordinate>{_DIRECTIVE})\.$"),
    "DIRECTIVE_REPEATABLE_ADDED": _pattern(rf"(?P<coordinate>{_DIRECTIVE})\.$"),
    "DIRECTIVE_LOCATION_REMOVED": _pattern(rf"from (?P<coordinate>{_DIRECTIVE})\.$"),
    "DIRECTIVE_LOCATION_ADDED": _pattern(rf"to (?P<coordinate>{_DIRECTIVE})\.$"),
    "DESCRIPTION_CHANGED": _pattern(
        rf"^Description of (?:field |input-field |enum value |argument )?"
        rf"(?P<coordinate>@?{_NAME}(?:\.{_NAME})?(?:\({_NAME}\))?) (?:has changed|\()"
    ),
}


def coordinate_of(kind: str, message: str) -> str:
    """The coordinate a graphql-core change message is about; empty for an unknown wording."""
    pattern = _COORDINATES.get(kind)
    found = pattern.search(message) if pattern is not None else None
    if found is None:
        return ""
    coordinate = found.group("coordinate")
    # Argument descriptions are worded Type.field(arg); coordinates spell it Type.field(arg:).
    return re.sub(r"\((\w+)\)$", r"(\1:)", coordinate)


def _criticality(kind: object) -> Criticality:
    if isinstance(kind, BreakingChangeType):
        return Criticality.BREAKING
    if isinstance(kind, DangerousChangeType):
        return Criticality.DANGEROUS
    return Criticality.SAFE


def compare_schemas(old: GraphQLSchema, new: GraphQLSchema) -> list[SchemaChange]:
    """Every change from ``old`` to ``new``, breaking ones first, then dangerous, then safe."""
    deprecated_before = deprecated_coordinates(old)
    changes: list[SchemaChange] = []
    for change in find_schema_changes(old, new):
        kind = change.type.name
        coordinate = coordinate_of(kind, change.description)
        message = change.description
        if kind in _REMOVALS and coordinate in deprecated_before:
            # Removing a deprecated element is still breaking, but it was announced.
            message = f"{message[:-1]} (it was deprecated)."
        changes.append(SchemaChange(_criticality(change.type), kind, coordinate, message))
    changes.extend(_root_type_changes(old, new))
    changes.extend(_deprecation_changes(deprecated_before, new))
    order = list(Criticality)
    return sorted(changes, key=lambda change: order.index(change.criticality))


_REMOVALS = frozenset({"FIELD_REMOVED", "VALUE_REMOVED_FROM_ENUM", "ARG_REMOVED"})


def _root_type_changes(old: GraphQLSchema, new: GraphQLSchema) -> Iterator[SchemaChange]:
    roots = (
        ("query", old.query_type, new.query_type),
        ("mutation", old.mutation_type, new.mutation_type),
        ("subscription", old.subscription_type, new.subscription_type),
    )
    for operation, before, after in roots:
        before_name = before.name if before else None
        after_name = after.name if after else None
        if before_name == after_name:
            continue
        criticality = Criticality.SAFE if before_name is None else Criticality.BREAKING
        yield SchemaChange(
            criticality,
            "ROOT_TYPE_CHANGED",
            after_name or before_name or operation,
            f"The {operation} root type changed from {before_name} to {after_name}.",
        )


def _deprecation_changes(before: dict[str, str], new: GraphQLSchema) -> Iterator[SchemaChange]:
    # graphql-inspector's rules: deprecating is safe, undeprecating is dangerous (clients
    # that moved away may have been told the element goes), a new reason is safe.
    after = deprecated_coordinates(new)
    still_there = _coordinates(new)
    for coordinate, reason in after.items():
        if coordinate not in before:
            yield SchemaChange(
                Criticality.SAFE,
                "DEPRECATION_ADDED",
                coordinate,
                f"{coordinate} is deprecated: {reason}",
            )
        elif before[coordinate] != reason:
            yield SchemaChange(
                Criticality.SAFE,
                "DEPRECATION_REASON_CHANGED",
                coordinate,
                f"The deprecation reason of {coordinate} changed to: {reason}",
            )
    for coordinate in before:
        if coordinate not in after and coordinate in still_there:
            yield SchemaChange(
                Criticality.DANGEROUS,
                "DEPRECATION_REMOVED",
                coordinate,
                f"{coordinate} is no longer deprecated.",
            )


def _coordinates(schema: GraphQLSchema) -> set[str]:
    """Coordinates of every field, argument, input field and enum value."""
    found: set[str] = set()
    for type_ in schema.type_map.values():
        if is_object_type(type_) or is_interface_type(type_):
            for name, field in type_.fields.items():
                found.add(f"{type_.name}.{name}")
                found.update(f"{type_.name}.{name}({arg}:)" for arg in field.args)
        elif is_input_object_type(type_):
            found.update(f"{type_.name}.{name}" for name in type_.fields)
        elif is_enum_type(type_):
            found.update(f"{type_.name}.{name}" for name in type_.values)
    return found
