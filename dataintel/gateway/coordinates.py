"""The schema coordinates each operation of a document selects, computed once per document.

Coordinates are those of the GraphQL schema coordinates specification: ``Type.field``,
``Type.field(argument:)``, ``InputType.field`` and ``Enum.VALUE``. Enum values sent in
variables are not in the document, so they are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    GraphQLSchema,
    ObjectFieldNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_enum_type,
    is_input_object_type,
    is_interface_type,
    is_object_type,
    separate_operations,
    visit,
)

NO_COORDINATES: Mapping[str | None, frozenset[str]] = MappingProxyType({})


class _CoordinateCollector(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self._type_info = type_info
        self._fields: list[str | None] = []
        self.found: set[str] = set()

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        parent = self._type_info.get_parent_type()
        name = node.name.value
        if parent is None or parent.name.startswith("__") or name.startswith("__"):
            self._fields.append(None)
            return
        coordinate = f"{parent.name}.{name}"
        self._fields.append(coordinate)
        self.found.add(coordinate)

    def leave_field(self, *_: Any) -> None:
        self._fields.pop()

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        # Directive arguments (@include(if:)) are no field's; fields of introspection neither.
        if self._type_info.get_directive() is None and self._fields and self._fields[-1]:
            self.found.add(f"{self._fields[-1]}({node.name.value}:)")

    def enter_object_field(self, node: ObjectFieldNode, *_: Any) -> None:
        parent = get_named_type(self._type_info.get_parent_input_type())
        if is_input_object_type(parent):
            self.found.add(f"{parent.name}.{node.name.value}")

    def enter_enum_value(self, node: EnumValueNode, *_: Any) -> None:
        enum = get_named_type(self._type_info.get_input_type())
        if is_enum_type(enum):
            self.found.add(f"{enum.name}.{node.value}")


def coordinates_in(schema: GraphQLSchema, document: DocumentNode) -> frozenset[str]:
    """Every coordinate a (valid) document selects, across all its operations."""
    type_info = TypeInfo(schema)
    collector = _CoordinateCollector(type_info)
    visit(document, TypeInfoVisitor(type_info, collector))
    return frozenset(collector.found)


def coordinates_by_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operations: Mapping[str | None, OperationDefinitionNode],
) -> Mapping[str | None, frozenset[str]]:
    """The coordinates each operation selects, its fragments included; by operation name."""
    if len(operations) == 1:
        return MappingProxyType({next(iter(operations)): coordinates_in(schema, document)})
    # A document with several operations names each of them (validation saw to it).
    return MappingProxyType(
        {
            name or None: coordinates_in(schema, part)
            for name, part in separate_operations(document).items()
        }
    )


def deprecated_coordinates(schema: GraphQLSchema) -> dict[str, str]:
    """Every deprecated field, argument, input field and enum value, with its reason."""
    found: dict[str, str] = {}
    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        if is_object_type(type_) or is_interface_type(type_):
            for name, field in type_.fields.items():
                if field.deprecation_reason is not None:
                    found[f"{type_.name}.{name}"] = field.deprecation_reason
                for arg_name, arg in field.args.items():
                    if arg.deprecation_reason is not None:
                        found[f"{type_.name}.{name}({arg_name}:)"] = arg.deprecation_reason
        elif is_input_object_type(type_):
            for name, input_field in type_.fields.items():
                if input_field.deprecation_reason is not None:
                    found[f"{type_.name}.{name}"] = input_field.deprecation_reason
        elif is_enum_type(type_):
            for name, value in type_.values.items():
                if value.deprecation_reason is not None:
                    found[f"{type_.name}.{name}"] = value.deprecation_reason
    return found
