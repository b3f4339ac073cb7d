"""The schema's @auth, @rateLimit and @cost: printed in the SDL, declared on every root field."""

from __future__ import annotations

import pytest
import strawberry
from click.testing import CliRunner
from graphql import GraphQLNonNull

from dataintel.cli import main
from dataintel.directives import ANALYSTS, PUBLIC, VIEWERS, Auth, Cost, RateLimit, RateLimitPer
from dataintel.directives.auth import ANALYST_OR_ABOVE, VIEWER_OR_ABOVE
from dataintel.gateway.policy import ANONYMOUS, PolicyError, PolicyTable
from dataintel.schema import build_graphql_schema, build_schema, compiled_schema
from dataintel.services.auth import ROLES


def test_every_root_field_and_mutation_declares_its_own_policy() -> None:
    table = PolicyTable.from_schema(build_graphql_schema())
    assert table.undeclared_root_fields() == []


def test_protected_root_fields_are_nullable_so_a_denial_keeps_the_rest() -> None:
    schema = build_graphql_schema()
    table = PolicyTable.from_schema(schema)
    roots = [root for root in (schema.query_type, schema.mutation_type) if root is not None]
    non_null = [
        f"{root.name}.{name}"
        for root in roots
        for name, field in root.fields.items()
        if isinstance(field.type, GraphQLNonNull)
        and (policy := table.policy(f"{root.name}.{name}")) is not None
        and not policy.public
    ]
    assert non_null == []


def test_directives_are_printed_in_the_sdl() -> None:
    sdl = build_schema().as_str()
    assert (
        "directive @auth(roles: [String!], scopes: [String!], public: Boolean,"
        " authenticated: Boolean)" in sdl
    )
    assert "directive @rateLimit(limit: Int!, window: Int!, per: RateLimitPer! = VIEWER)" in sdl
    assert "directive @cost(weight: Int, listSizeArgument: String, assumedSize: Int)" in sdl
    assert "status: Status! @auth(public: true)" in sdl
    assert '@auth(roles: ["analyst", "data_engineer", "admin"])' in sdl


def test_role_groups_follow_the_scopes_each_role_grants() -> None:
    assert VIEWER_OR_ABOVE == ROLES
    assert ANALYST_OR_ABOVE == ("analyst", "data_engineer", "admin")


def test_the_policy_command_prints_every_field_with_its_readers() -> None:
    result = CliRunner().invoke(main, ["schema", "policy"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "anonymous" in lines["Query.status"]
    assert "viewer" in lines["Query.orders"]
    assert "anonymous" not in lines["Query.orders"]
    assert "viewer" not in lines["Query.analytics"].split("field")[0]
    # A nested field is readable by whoever may read a field leading to it.
    assert lines["Order.total"].split()[1:3] == ["viewer,", "analyst,"]
    assert "10/60s per ip" in lines["Mutation.login"]


# --- A small schema of its own, for what the real one does not exercise ---------------------


@strawberry.type(directives=[Auth(roles=["admin"])])
class Secret:
    code: str
    label: str = strawberry.field(directives=[PUBLIC])


@strawberry.interface
class Named:
    name: str = strawberry.field(directives=[VIEWERS])


@strawberry.type
class Person(Named):
    pass


@strawberry.type
class Robot(Named):
    name: str = strawberry.field(directives=[ANALYSTS])


@strawberry.type
class Query:
    # Never executed: these fields only carry directives for the policy table to read.
    secret: Secret | None = strawberry.field(directives=[PUBLIC])
    named: list[Named] = strawberry.field(directives=[VIEWERS])
    forgotten: int | None
    expensive: int | None = strawberry.field(
        directives=[PUBLIC, RateLimit(limit=2, window=60, per=RateLimitPer.IP), Cost(weight=5)]
    )


@strawberry.type
class Mutation:
    undeclared: int | None = strawberry.mutation(resolver=lambda: 1)


def small_table() -> PolicyTable:
    return PolicyTable.from_schema(
        compiled_schema(strawberry.Schema(query=Query, mutation=Mutation))
    )


def test_a_field_takes_its_types_policy_unless_it_has_its_own() -> None:
    table = small_table()
    code, label = table.policy("Secret.code"), table.policy("Secret.label")
    assert code is not None
    assert code.declared_on == "type"
    assert code.roles == {"admin"}
    assert label is not None
    assert label.declared_on == "field"
    assert label.public


def test_root_fields_and_mutations_without_a_policy_are_readable_by_nobody() -> None:
    table = small_table()
    assert table.undeclared_root_fields() == ["Mutation.undeclared", "Query.forgotten"]
    forgotten = table.policy("Query.forgotten")
    assert forgotten is not None
    assert not forgotten.allows(frozenset(ROLES), frozenset({"admin:users"}), signed_in=True)


def test_a_field_of_an_interface_must_satisfy_every_implementation() -> None:
    schema = compiled_schema(strawberry.Schema(query=Query, types=[Person, Robot]))
    table = PolicyTable.from_schema(schema)
    named = schema.get_type("Named")
    assert named is not None
    policies = table.policies_at(named, "name")
    # Person takes the interface's field, directive included; Robot declares its own.
    assert {policy.coordinate for policy in policies} == {"Named.name", "Person.name", "Robot.name"}
    assert [policy.roles == frozenset(ANALYST_OR_ABOVE) for policy in policies].count(True) == 1


def test_readers_follow_the_paths_from_the_root() -> None:
    rows = {row.coordinate: row for row in small_table().rows()}
    assert rows["Secret.code"].readers == ("admin",)
    assert rows["Secret.label"].readers == (ANONYMOUS, *ROLES)
    assert rows["Query.forgotten"].readers == ()
    assert rows["Query.expensive"].rate_limit is not None


def test_a_policy_naming_an_unknown_role_stops_the_startup() -> None:
    @strawberry.type
    class Typo:
        field: int | None = strawberry.field(directives=[Auth(roles=["admn"])])

    with pytest.raises(PolicyError, match="admn"):
        PolicyTable.from_schema(compiled_schema(strawberry.Schema(query=Typo)))
