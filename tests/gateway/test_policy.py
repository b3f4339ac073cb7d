"""@auth and @rateLimit enforced before execution, once per field of the operation."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from graphql import GraphQLSchema

from dataintel.app import create_app
from dataintel.context import ANONYMOUS, Viewer
from dataintel.directives import PUBLIC, SIGNED_IN, VIEWERS, Auth, RateLimit, RateLimitPer
from dataintel.gateway.execution import GraphQLResponse
from dataintel.gateway.pipeline import QUERIES_ONLY, PipelineInput, RequestPipeline
from dataintel.gateway.policy import FieldGate
from dataintel.gateway.rate_limiting import RateLimits
from dataintel.gateway.request import GraphQLRequest
from dataintel.schema import build_graphql_schema, compiled_schema
from dataintel.services import Services
from dataintel.services.auth import scopes_for
from dataintel.settings import Settings
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.graphql import pipeline_over, run

_request_ids = itertools.count()


def viewer(user_id: str, *roles: str) -> Viewer:
    """A signed-in viewer with these roles and the scopes they grant."""
    return Viewer(user_id, frozenset(roles), scopes_for(roles))


@dataclass
class Gateway:
    """The request pipeline over a schema, with the real services behind it."""

    pipeline: RequestPipeline

    @property
    def gate(self) -> FieldGate:
        return self.pipeline.gate

    @property
    def walks(self) -> int:
        """Operations analyzed (walked) so far."""
        return self.pipeline.analyzer.built

    async def run(
        self,
        query: str,
        who: Viewer = ANONYMOUS,
        address: str = "10.0.0.1",
        **variables: Any,
    ) -> GraphQLResponse:
        outcome = await run(self.pipeline, query, who, address, **variables)
        assert outcome.response is not None, outcome.errors
        return outcome.response


@pytest.fixture
async def services(make_settings: SettingsFactory) -> AsyncIterator[Services]:
    app = create_app(make_settings())
    async with serving(app):
        yield app.state.runtime.services


def gateway_over(
    schema: GraphQLSchema, services: Services, settings: Settings, rate_limits: RateLimits
) -> Gateway:
    return Gateway(pipeline_over(schema, settings, services, rate_limits))


@pytest.fixture
def real(services: Services, make_settings: SettingsFactory) -> Gateway:
    """The real schema; anonymous requests hold no roles, as in production."""
    settings = make_settings(anonymous_roles=[])
    return gateway_over(
        build_graphql_schema(), services, settings, RateLimits(settings.rate_limit, settings.redis)
    )


def forbidden_paths(response: GraphQLResponse, code: str = "FORBIDDEN") -> list[list[str | int]]:
    return [error["path"] for error in response.errors if error["extensions"]["code"] == code]


MIXED = """
query Mixed {
  status { version }
  ...Business
  analyticsCatalog { measures { name } }
}
fragment Business on Query {
  orders(first: 2) { nodes { id } }
  ... on Query { featureViews { name } }
}
"""


async def test_denied_fields_are_null_with_forbidden_at_their_path_fragments_included(
    real: Gateway,
) -> None:
    response = await real.run(MIXED, viewer("7", "viewer"))
    assert response.data is not None
    assert response.data["status"] == {"version": response.data["status"]["version"]}
    assert len(response.data["orders"]["nodes"]) == 2
    assert response.data["analyticsCatalog"] is None
    assert response.data["featureViews"] is None
    assert sorted(forbidden_paths(response)) == [["analyticsCatalog"], ["featureViews"]]
    [error] = [e for e in response.errors if e["path"] == ["featureViews"]]
    assert error["extensions"]["field"] == "Query.featureViews"
    assert error["extensions"]["domain"] == "auth"


async def test_anonymous_requests_read_only_public_fields(real: Gateway) -> None:
    response = await real.run(MIXED)
    assert response.data is not None
    assert response.data["status"] is not None
    unauthenticated = forbidden_paths(response, "UNAUTHENTICATED")
    assert sorted(unauthenticated) == [["analyticsCatalog"], ["featureViews"], ["orders"]]
    assert all(error["message"].startswith("Sign in to read") for error in response.errors)


async def test_the_walk_and_the_decision_are_made_once_per_document_and_roles(
    real: Gateway,
) -> None:
    for _ in range(3):
        await real.run(MIXED, viewer("7", "viewer"))
    assert (real.walks, real.gate.decisions) == (1, 1)
    # Another user with the same roles shares the decision; other roles need their own.
    await real.run(MIXED, viewer("8", "viewer"))
    await real.run(MIXED, viewer("9", "analyst"))
    await real.run(MIXED, viewer("9", "analyst"))
    assert (real.walks, real.gate.decisions) == (1, 2)
    await real.run("{ status { version } }")
    assert real.walks == 2


async def test_a_document_parsed_again_is_walked_again(
    services: Services, make_settings: SettingsFactory
) -> None:
    # The analysis lives on the prepared document: one not kept is analyzed again.
    settings = make_settings(anonymous_roles=[], document_cache_size=0)
    gateway = gateway_over(
        build_graphql_schema(), services, settings, RateLimits(settings.rate_limit, settings.redis)
    )
    for _ in range(2):
        response = await gateway.run("{ orders(first: 1) { nodes { id } } }")
        assert forbidden_paths(response, "UNAUTHENTICATED") == [["orders"]]
    assert gateway.walks == 2


async def test_anonymous_roles_apply_outside_production_only(
    services: Services, make_settings: SettingsFactory
) -> None:
    query = "{ orders(first: 1) { nodes { id } } }"
    development = make_settings()
    gateway = gateway_over(
        build_graphql_schema(),
        services,
        development,
        RateLimits(development.rate_limit, development.redis),
    )
    assert (await gateway.run(query)).errors == []
    production = make_settings(environment="production")
    gateway = gateway_over(
        build_graphql_schema(),
        services,
        production,
        RateLimits(production.rate_limit, production.redis),
    )
    assert forbidden_paths(await gateway.run(query), "UNAUTHENTICATED") == [["orders"]]


# --- A small schema of its own: resolvers that count their calls ---------------------------

calls: dict[str, int] = {}


def _called(name: str) -> int:
    calls[name] = calls.get(name, 0) + 1
    return calls[name]


def _label() -> str:
    return "vault"


def _code() -> str | None:
    _called("Vault.code")
    return "s3"


def _vaults() -> list[Vault]:
    return [Vault() for _ in range(50)]


def _export() -> int | None:
    return _called("Query.export")


def _report() -> int | None:
    return _called("Query.report")


def _mine() -> int | None:
    return _called("Query.mine")


def _wipe() -> int | None:
    return _called("Mutation.wipe")


def _touch() -> int | None:
    return _called("Mutation.touch")


@strawberry.type(directives=[Auth(roles=["admin"])])
class Vault:
    code: str | None = strawberry.field(resolver=_code)
    label: str = strawberry.field(resolver=_label, directives=[PUBLIC])


@strawberry.type
class Query:
    vaults: list[Vault] = strawberry.field(resolver=_vaults, directives=[VIEWERS])
    export: int | None = strawberry.field(
        resolver=_export,
        directives=[PUBLIC, RateLimit(limit=2, window=60, per=RateLimitPer.IP)],
    )
    report: int | None = strawberry.field(
        resolver=_report, directives=[VIEWERS, RateLimit(limit=1, window=60)]
    )
    mine: int | None = strawberry.field(resolver=_mine, directives=[SIGNED_IN])


@strawberry.type
class Mutation:
    wipe: int | None = strawberry.mutation(resolver=_wipe)
    touch: int | None = strawberry.mutation(resolver=_touch, directives=[VIEWERS])


@pytest.fixture
def small(services: Services, make_settings: SettingsFactory) -> Gateway:
    calls.clear()
    settings = make_settings(anonymous_roles=[])
    schema = compiled_schema(strawberry.Schema(query=Query, mutation=Mutation))
    return gateway_over(schema, services, settings, RateLimits(settings.rate_limit, settings.redis))


async def test_a_denied_resolver_never_runs_and_is_decided_once_for_every_item(
    small: Gateway,
) -> None:
    response = await small.run("{ vaults { label code } }", viewer("7", "viewer"))
    assert response.data is not None
    assert [vault["label"] for vault in response.data["vaults"]] == ["vault"] * 50
    assert {vault["code"] for vault in response.data["vaults"]} == {None}
    # One error per denied item, of which the response carries the first max_errors.
    assert len(forbidden_paths(response)) == 20
    assert response.extensions["omittedErrors"] == 30
    assert "Vault.code" not in calls
    assert small.gate.decisions == 1
    admin = await small.run("{ vaults { code } }", viewer("1", "admin"))
    assert admin.errors == []
    assert calls["Vault.code"] == 50


async def test_mutations_are_denied_unless_a_policy_allows_them(small: Gateway) -> None:
    response = await small.run("mutation { wipe touch }", viewer("1", "admin"))
    assert response.data == {"wipe": None, "touch": 1}
    [error] = response.errors
    assert error["path"] == ["wipe"]
    assert "declares no @auth policy" in error["message"]
    assert "Mutation.wipe" not in calls


async def test_a_field_beyond_its_rate_limit_is_null_and_the_rest_survives(
    small: Gateway,
) -> None:
    for _ in range(2):
        assert (await small.run("{ export }")).errors == []
    response = await small.run("{ export vaults { label } }", viewer("7", "viewer"))
    assert response.data is not None
    assert response.data["export"] is None
    assert len(response.data["vaults"]) == 50
    [error] = response.errors
    assert error["path"] == ["export"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryable"] is True
    assert 0 < error["extensions"]["retryAfter"] <= 60
    assert error["extensions"]["limit"] == 2
    assert calls["Query.export"] == 2
    # Per IP: another address has its own count.
    assert (await small.run("{ export }", address="10.0.0.2")).errors == []


async def test_per_viewer_limits_count_each_viewer_apart(small: Gateway) -> None:
    ada, bob = viewer("1", "viewer"), viewer("2", "viewer")
    assert (await small.run("{ report }", ada)).errors == []
    assert (await small.run("{ report }", bob)).errors == []
    refused = await small.run("{ report }", ada, address="10.9.9.9")
    assert [error["extensions"]["code"] for error in refused.errors] == ["RATE_LIMITED"]


async def test_a_denied_field_is_not_counted_against_its_rate_limit(small: Gateway) -> None:
    for _ in range(3):
        response = await small.run("{ report }")
        assert forbidden_paths(response, "UNAUTHENTICATED") == [["report"]]
    assert (await small.run("{ report }", viewer("1", "viewer"))).errors == []


async def test_authenticated_asks_for_a_credential_not_a_role(
    services: Services, make_settings: SettingsFactory
) -> None:
    # Even where anonymous requests hold roles, they are not signed in.
    settings = make_settings(anonymous_roles=["viewer"])
    schema = compiled_schema(strawberry.Schema(query=Query, mutation=Mutation))
    gateway = gateway_over(
        schema, services, settings, RateLimits(settings.rate_limit, settings.redis)
    )
    assert forbidden_paths(await gateway.run("{ mine }"), "UNAUTHENTICATED") == [["mine"]]
    assert (await gateway.run("{ mine }", Viewer("42"))).errors == []


async def test_a_kept_request_is_denied_and_counted_on_every_run(small: Gateway) -> None:
    """A GET's request-only stages are kept per query string; who may read which field and
    the rate limits are still decided for each request."""

    async def get(query: str, who: Viewer = ANONYMOUS) -> GraphQLResponse:
        request = GraphQLRequest(query, None, None, None)
        outcome = await small.pipeline.run(
            PipelineInput(
                request,
                f"request-{next(_request_ids)}",
                viewer=who,
                client_address="10.0.0.1",
                allowed=QUERIES_ONLY,
                raw_request=b"query=" + query.encode(),
            )
        )
        assert outcome.response is not None, outcome.errors
        return outcome.response

    exports = [await get("{ export }") for _ in range(3)]
    assert small.pipeline.kept_requests == 1
    assert [response.data for response in exports] == [
        {"export": 1},
        {"export": 2},
        {"export": None},
    ]
    assert [error["extensions"]["code"] for error in exports[2].errors] == ["RATE_LIMITED"]
    for who in (viewer("7", "viewer"), viewer("7", "viewer"), viewer("1", "admin")):
        response = await get("{ vaults { code } }", who)
        assert len(forbidden_paths(response)) == (0 if "admin" in who.roles else 20)
    assert small.pipeline.kept_requests == 2
    assert calls["Vault.code"] == 50
