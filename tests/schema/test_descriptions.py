"""Every type, field and argument has a description, so GraphiQL's docs explain the schema."""

from __future__ import annotations

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType

from dataintel.schema import build_graphql_schema


def test_every_type_field_and_argument_is_described() -> None:
    schema = build_graphql_schema()
    undescribed: list[str] = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__"):
            continue
        described = GraphQLEnumType | GraphQLObjectType | GraphQLInputObjectType
        if isinstance(graphql_type, described) and not graphql_type.description:
            undescribed.append(f"type {name}")
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in graphql_type.fields.items():
                if not field.description:
                    undescribed.append(f"{name}.{field_name}")
                for argument_name, argument in getattr(field, "args", {}).items():
                    if not argument.description:
                        undescribed.append(f"{name}.{field_name}({argument_name})")
    assert undescribed == []
