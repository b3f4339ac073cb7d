"""GraphQL types as JSON Schema (2020-12, as OpenAPI 3.1 uses it).

Input types (a published operation's variables) become parameter and body schemas; an
operation's selection set over the schema becomes its response schema, field by field, so
the document says exactly what the operation answers. Enums and input objects are shared
under ``components/schemas``; output objects are inlined, since each selection differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.pyutils import Undefined

JsonSchema = dict[str, Any]

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

SCALARS: Mapping[str, JsonSchema] = {
    "Int": {"type": "integer", "format": "int32", "minimum": INT32_MIN, "maximum": INT32_MAX},
    "Float": {"type": "number", "format": "double"},
    "String": {"type": "string"},
    "Boolean": {"type": "boolean"},
    "ID": {"type": "string"},
    "DateTime": {"type": "string", "format": "date-time"},
    "Date": {"type": "string", "format": "date"},
    "JSON": {},
}
"""The JSON Schema of each scalar; a scalar not named here is described as any value."""


def scalar_schema(scalar: GraphQLScalarType) -> JsonSchema:
    """The JSON Schema of a scalar's serialized value."""
    schema = dict(SCALARS.get(scalar.name, {}))
    if scalar.name not in SCALARS and scalar.description:
        schema["description"] = scalar.description
    return schema


def nullable(schema: JsonSchema) -> JsonSchema:
    """The schema that also allows null."""
    if not schema:
        return schema  # any value, null included
    if "$ref" in schema:
        described = {key: value for key, value in schema.items() if key != "$ref"}
        return {**described, "anyOf": [{"$ref": schema["$ref"]}, {"type": "null"}]}
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


class SchemaComponents:
    """Collects the named schemas (enums, input objects) that the generated schemas refer to."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.schemas: dict[str, JsonSchema] = {}

    def reference(self, named: GraphQLEnumType | GraphQLInputObjectType) -> JsonSchema:
        """A $ref to the type's component schema, built on first use."""
        if named.name not in self.schemas:
            self.schemas[named.name] = {}  # a recursive input refers to itself
            self.schemas[named.name] = self._component(named)
        return {"$ref": f"#/components/schemas/{named.name}"}

    def _component(self, named: GraphQLEnumType | GraphQLInputObjectType) -> JsonSchema:
        if isinstance(named, GraphQLEnumType):
            schema: JsonSchema = {"type": "string", "enum": list(named.values)}
            if named.description:
                schema["description"] = named.description
            return schema
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        for name, field in named.fields.items():
            field_schema = self.input(field.type)
            if field.description:
                field_schema = {**field_schema, "description": field.description}
            properties[name] = field_schema
            if isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined:
                required.append(name)
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        if named.description:
            schema["description"] = named.description
        return schema

    def input(self, graphql_type: GraphQLInputType, *, allow_null: bool = True) -> JsonSchema:
        """The schema of a value of an input type; nullable types allow null unless told."""
        if isinstance(graphql_type, GraphQLNonNull):
            return self.input(graphql_type.of_type, allow_null=False)
        schema: JsonSchema
        if isinstance(graphql_type, GraphQLList):
            schema = {"type": "array", "items": self.input(graphql_type.of_type)}
        elif isinstance(graphql_type, GraphQLEnumType | GraphQLInputObjectType):
            schema = self.reference(graphql_type)
        else:
            assert isinstance(graphql_type, GraphQLScalarType)
            schema = scalar_schema(graphql_type)
        return nullable(schema) if allow_null else schema

    def selection(
        self,
        document: DocumentNode,
        root: GraphQLObjectType,
        selection_set: SelectionSetNode,
    ) -> JsonSchema:
        """The schema of the data an operation's selection set answers, from its root type."""
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        return _SelectionWalk(self, fragments).object(root, selection_set)


class _SelectionWalk:
    def __init__(
        self, components: SchemaComponents, fragments: Mapping[str, FragmentDefinitionNode]
    ) -> None:
        self._components = components
        self._fragments = fragments

    def object(self, parent: GraphQLNamedType, selection_set: SelectionSetNode) -> JsonSchema:
        properties: dict[str, JsonSchema] = {}
        required: list[str] = []
        self._collect(parent, selection_set, properties, required, always=True)
        schema: JsonSchema = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def _collect(
        self,
        parent: GraphQLNamedType,
        selection_set: SelectionSetNode,
        properties: dict[str, JsonSchema],
        required: list[str],
        *,
        always: bool,
    ) -> None:
        schema = self._components.schema
        for selection in selection_set.selections:
            # @include and @skip make a field optional in the response.
            certain = always and not selection.directives
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                properties[key] = self._field(parent, selection)
                if certain and key not in required:
                    required.append(key)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = selection.selection_set
            else:
                assert isinstance(selection, FragmentSpreadNode)
                fragment = self._fragments[selection.name.value]
                condition, inner = fragment.type_condition, fragment.selection_set
            target = schema.get_type(condition.name.value) if condition else parent
            # A fragment on another type than the parent's applies to some objects only.
            same = target is None or target is parent
            self._collect(target or parent, inner, properties, required, always=certain and same)

    def _field(self, parent: GraphQLNamedType, node: FieldNode) -> JsonSchema:
        name = node.name.value
        if name == "__typename":
            return {"type": "string", "description": "The object's GraphQL type."}
        assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
        field = parent.fields[name]
        schema = self._output(field.type, node.selection_set)
        if field.description:
            schema = {**schema, "description": field.description}
        return schema

    def _output(
        self,
        graphql_type: GraphQLOutputType,
        selection_set: SelectionSetNode | None,
        *,
        allow_null: bool = True,
    ) -> JsonSchema:
        if isinstance(graphql_type, GraphQLNonNull):
            return self._output(graphql_type.of_type, selection_set, allow_null=False)
        schema: JsonSchema
        if isinstance(graphql_type, GraphQLList):
            schema = {"type": "array", "items": self._output(graphql_type.of_type, selection_set)}
        elif isinstance(graphql_type, GraphQLEnumType):
            schema = self._components.reference(graphql_type)
        elif isinstance(graphql_type, GraphQLScalarType):
            schema = scalar_schema(graphql_type)
        else:
            assert isinstance(
                graphql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType
            )
            assert selection_set is not None  # the document validated
            schema = self.object(graphql_type, selection_set)
        return nullable(schema) if allow_null else schema
