"""Browser safety and introspection: the CSRF rule, and who may read the schema."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest

from dataintel import __version__
from dataintel.app import create_app
from dataintel.context import ANONYMOUS, Viewer
from dataintel.gateway.introspection import IntrospectionPolicy
from dataintel.gateway.request import RequestRejected
from dataintel.http.csrf import CsrfPrevention, may_be_simple
from dataintel.services.audit import SqlAuditService
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from dataintel.services.tokens import TokenCodec
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving

STATUS = "{ status { version } }"
SCHEMA = "{ __schema { queryType { name } } }"
JWT_SECRET = "persisted-and-introspection-tests-secret-0123456789"
HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "x-requested-with")


def ran(response: httpx.Response) -> None:
    """The status query was run: 200 with its data."""
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"status": {"version": __version__}}}


def refused_as_forgery(response: httpx.Response) -> None:
    """Refused before running: 400 naming cross-site request forgery, and no data."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert "cross-site request forgery" in error["message"]


def refused_introspection(response: httpx.Response) -> None:
    """403 FORBIDDEN, and no schema in the answer."""
    assert response.status_code == 403, response.text
    assert codes(response.json()) == ["FORBIDDEN"]
    assert "data" not in response.json() or response.json()["data"] is None


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


# --- CSRF: which requests a browser sends without a preflight -------------------------


@pytest.mark.parametrize(
    ("method", "content_type", "simple"),
    [
        ("GET", None, True),
        ("HEAD", None, True),
        ("POST", None, True),
        ("POST", "text/plain", True),
        ("POST", "text/plain; charset=utf-8", True),
        ("POST", "Application/X-WWW-Form-Urlencoded", True),
        ("POST", "multipart/form-data; boundary=x", True),
        ("POST", "application/json", False),
        ("POST", "application/json; charset=utf-8", False),
        ("POST", "application/graphql-response+json", False),
        ("POST", "", False),
        ("PUT", None, False),
    ],
)
def test_simple_requests(method: str, content_type: str | None, simple: bool) -> None:
    assert may_be_simple(method, content_type) is simple


def test_a_simple_post_needs_a_header_too() -> None:
    csrf = CsrfPrevention(HEADERS)
    with pytest.raises(RequestRejected) as caught:
        csrf.check("POST", {"content-type": "text/plain"})
    assert caught.value.status == 400
    csrf.check("POST", {"content-type": "text/plain", "x-requested-with": "XMLHttpRequest"})
    csrf.check("POST", {"content-type": "application/json"})
    CsrfPrevention(HEADERS, enabled=False).check("POST", {"content-type": "text/plain"})


async def test_get_without_a_preflight_header_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": STATUS})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cross-site request forgery" in error["message"]
    assert error["extensions"]["requiredHeaders"] == list(HEADERS)


@pytest.mark.parametrize(
    "header",
    ["X-Apollo-Operation-Name", "Apollo-Require-Preflight", "X-Requested-With"],
)
async def test_get_with_a_preflight_header_runs(client: httpx.AsyncClient, header: str) -> None:
    ran(await client.get("/graphql", params={"query": STATUS}, headers={header: "1"}))


async def test_an_empty_preflight_header_does_not_count(client: httpx.AsyncClient) -> None:
    headers = {"Apollo-Require-Preflight": " "}
    refused_as_forgery(await client.get("/graphql", params={"query": STATUS}, headers=headers))


async def test_get_with_a_non_simple_content_type_runs(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    ran(await client.get("/graphql", params={"query": STATUS}, headers=headers))


async def test_a_persisted_get_needs_the_header_too(client: httpx.AsyncClient) -> None:
    digest = hashlib.sha256(STATUS.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    ran(await client.post("/graphql", json={"query": STATUS, "extensions": extensions}))
    params = {"extensions": json.dumps(extensions)}
    refused_as_forgery(await client.get("/graphql", params=params))
    headers = {"X-Apollo-Operation-Name": "Version"}
    ran(await client.get("/graphql", params=params, headers=headers))


async def test_post_json_and_graphiql_need_no_header(client: httpx.AsyncClient) -> None:
    ran(await client.post("/graphql", json={"query": STATUS}))
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()


async def test_csrf_prevention_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(csrf_prevention=False))) as client:
        ran(await client.get("/graphql", params={"query": STATUS}))


async def test_the_required_headers_are_configurable(make_settings: SettingsFactory) -> None:
    settings = make_settings(csrf_required_headers=["X-Dataintel-Client"])
    async with serving(create_app(settings)) as client:
        apollo = {"Apollo-Require-Preflight": "true"}
        refused = await client.get("/graphql", params={"query": STATUS}, headers=apollo)
        refused_as_forgery(refused)
        assert refused.json()["errors"][0]["extensions"]["requiredHeaders"] == [
            "x-dataintel-client"
        ]
        own = {"X-Dataintel-Client": "dashboard"}
        ran(await client.get("/graphql", params={"query": STATUS}, headers=own))


# --- introspection: the rule --------------------------------------------------------------


def test_everyone_may_introspect_outside_production() -> None:
    policy = IntrospectionPolicy(Settings().graphql, production=False)
    assert policy.allows(ANONYMOUS)
    assert policy.allows(Viewer("1", frozenset({"viewer"})))


def test_production_allows_the_listed_roles_only() -> None:
    policy = IntrospectionPolicy(Settings().graphql, production=True)
    assert not policy.allows(ANONYMOUS)
    assert not policy.allows(Viewer("1", frozenset({"viewer"})))
    assert policy.allows(Viewer("2", frozenset({"viewer", "analyst"})))
    assert policy.allows(Viewer("3", frozenset({"admin"})))


def test_anonymous_introspection_is_its_own_setting() -> None:
    production = IntrospectionPolicy(
        Settings(introspection_anonymous=True).graphql, production=True
    )
    assert production.allows(ANONYMOUS)
    development = IntrospectionPolicy(
        Settings(introspection_anonymous=False).graphql, production=False
    )
    assert not development.allows(ANONYMOUS)
    assert development.allows(Viewer("1", frozenset({"viewer"})))


# --- introspection over HTTP, with real tokens ----------------------------------------


async def token_for(settings: Settings, email: str, *roles: str) -> str:
    """A bearer token of a new user with these roles, signed as the gateway signs."""
    engine = create_engine(settings.store)
    try:
        tokens = TokenCodec.from_settings(settings.auth, production=settings.production)
        auth = SqlAuthService(engine, SqlAuditService(engine), tokens)
        user = await auth.create_user(OPERATOR, NewUser(email, None, None, roles))
        return tokens.issue(str(user.id)).token
    finally:
        await engine.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_production_introspection_per_role(make_settings: SettingsFactory) -> None:
    settings = make_settings(environment="production", jwt_secret=JWT_SECRET)
    viewer = await token_for(settings, "viewer@example.test", "viewer")
    analyst = await token_for(settings, "analyst@example.test", "analyst")
    async with serving(create_app(settings)) as client:
        anonymous = await client.post("/graphql", json={"query": SCHEMA})
        assert anonymous.status_code == 403
        assert codes(anonymous.json()) == ["FORBIDDEN"]
        assert "send a credential" in anonymous.json()["errors"][0]["message"]
        denied = await client.post("/graphql", json={"query": SCHEMA}, headers=bearer(viewer))
        assert denied.status_code == 403
        assert "not allowed for your roles" in denied.json()["errors"][0]["message"]
        # The same cached document, decided again for another viewer.
        allowed = await client.post("/graphql", json={"query": SCHEMA}, headers=bearer(analyst))
        assert allowed.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        # __typename is not introspection; everyone keeps it.
        typename = await client.post("/graphql", json={"query": "{ status { __typename } }"})
        assert typename.json() == {"data": {"status": {"__typename": "Status"}}}


async def test_anonymous_introspection_off_in_development(make_settings: SettingsFactory) -> None:
    settings = make_settings(introspection_anonymous=False, jwt_secret=JWT_SECRET)
    viewer = await token_for(settings, "dev@example.test", "viewer")
    async with serving(create_app(settings)) as client:
        refused_introspection(await client.post("/graphql", json={"query": SCHEMA}))
        signed_in = await client.post("/graphql", json={"query": SCHEMA}, headers=bearer(viewer))
        assert signed_in.status_code == 200
        assert signed_in.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_a_persisted_introspection_query_is_checked_too(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(environment="production", jwt_secret=JWT_SECRET)
    admin = await token_for(settings, "admin@example.test", "admin")
    digest = hashlib.sha256(SCHEMA.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    async with serving(create_app(settings)) as client:
        registering = {"query": SCHEMA, "extensions": extensions}
        registered = await client.post("/graphql", json=registering, headers=bearer(admin))
        assert registered.status_code == 200
        assert registered.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        refused_introspection(await client.post("/graphql", json={"extensions": extensions}))


async def test_introspection_off_is_still_a_validation_error(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings(introspection=False))) as client:
        response = await client.post("/graphql", json={"query": SCHEMA})
        assert response.status_code == 200
        assert "data" not in response.json()
        assert set(codes(response.json())) == {"BAD_USER_INPUT"}
