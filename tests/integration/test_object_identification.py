"""Global Object Identification through the real app: Node ids, node(id:) and nodes(ids:).

node and nodes load through the request's batched loaders and answer what the object's
own root field would: UNAUTHENTICATED without a credential, FORBIDDEN with one lacking the
role, and the row rules of users and API keys.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import GraphQLInterfaceType
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.gateway.policy import PolicyTable
from dataintel.resolvers.object_identification import READ_AS
from dataintel.schema import compiled_schema
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from dataintel.services.tokens import TokenCodec
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.statements import counting_statements

# The HTTP path on both stores (docs/development.md).
pytestmark = pytest.mark.both_stores


def global_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


@dataclass
class Gateway:
    app: Starlette
    client: httpx.AsyncClient
    tokens: dict[str, str]
    user_ids: dict[str, int]

    async def post(self, query: str, who: str | None = None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[Gateway]:
    # As in production: a request without a credential holds no role.
    settings = make_settings(anonymous_roles=[])
    app = create_app(settings)
    async with serving(app) as client:
        auth: SqlAuthService = app.state.runtime.services.auth
        codec = TokenCodec.from_settings(settings.auth, production=settings.production)
        tokens, user_ids = {}, {}
        for name, roles in (("viewer", ("viewer",)), ("nobody", ()), ("admin", ("admin",))):
            user = await auth.create_user(OPERATOR, NewUser(f"{name}@example.com", roles=roles))
            tokens[name] = codec.issue(str(user.id)).token
            user_ids[name] = user.id
        yield Gateway(app, client, tokens, user_ids)


NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Customer { databaseId name }
    ... on Order { databaseId status customer { id } }
    ... on User { databaseId email }
  }
}
"""


async def test_every_entity_has_a_global_id_that_node_fetches_again(gateway: Gateway) -> None:
    query = """{
      orders(first: 1) { nodes { id databaseId customer { id databaseId }
        items { id databaseId product { id databaseId } } } }
      events(first: 1) { nodes { id databaseId } }
    }"""
    data = (await gateway.post(query, "viewer"))["data"]
    order = data["orders"]["nodes"][0]
    item = order["items"][0]
    objects = {
        "Order": order,
        "Customer": order["customer"],
        "OrderItem": item,
        "Product": item["product"],
        "Event": data["events"]["nodes"][0],
    }
    for type_name, found in objects.items():
        assert found["id"] == global_id(type_name, found["databaseId"])
        fetched = (await gateway.post(NODE, "viewer", id=found["id"]))["data"]["node"]
        assert fetched["__typename"] == type_name
        assert fetched["id"] == found["id"]


async def test_id_arguments_take_the_global_id_and_the_plain_key(gateway: Gateway) -> None:
    query = "query C($id: ID!) { customer(id: $id) { id databaseId } }"
    by_global = await gateway.post(query, "viewer", id=global_id("Customer", 7))
    by_plain = await gateway.post(query, "viewer", id="7")
    assert by_global["data"] == by_plain["data"]
    assert by_global["data"]["customer"]["databaseId"] == 7
    wrong_type = await gateway.post(query, "viewer", id=global_id("Order", 7))
    assert wrong_type["data"]["customer"] is None
    assert wrong_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "raw",
    [
        "not base64!",
        base64.b64encode(b"no colon").decode(),
        base64.b64encode(b"Customer:abc").decode(),
        base64.b64encode(b"Customer:-1").decode(),
        base64.b64encode(b"Unknown:1").decode(),
        base64.b64encode(b"\xff\xfe:1").decode(),
        "",
    ],
)
async def test_a_malformed_or_unknown_global_id_is_bad_user_input(
    gateway: Gateway, raw: str
) -> None:
    body = await gateway.post(NODE, "viewer", id=raw)
    assert body["data"] == {"node": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_global_id_of_nothing_is_null_without_an_error(gateway: Gateway) -> None:
    body = await gateway.post(NODE, "viewer", id=global_id("Customer", 999_999))
    assert body == {"data": {"node": None}}


async def test_node_denies_what_the_typed_root_field_denies(gateway: Gateway) -> None:
    customer = global_id("Customer", 1)
    anonymous = await gateway.post(NODE, id=customer)
    assert anonymous["data"] == {"node": None}
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert anonymous["errors"][0]["path"] == ["node"]
    # The typed field answers the same.
    typed = await gateway.post('{ customer(id: "1") { name } }')
    assert typed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    no_role = await gateway.post(NODE, "nobody", id=customer)
    assert no_role["data"] == {"node": None}
    assert no_role["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = await gateway.post(NODE, "viewer", id=customer)
    assert allowed["data"]["node"]["name"]


async def test_users_and_api_keys_keep_their_row_rules(gateway: Gateway) -> None:
    own = global_id("User", gateway.user_ids["viewer"])
    other = global_id("User", gateway.user_ids["admin"])
    assert (await gateway.post(NODE, "viewer", id=own))["data"]["node"]["email"]
    assert await gateway.post(NODE, "viewer", id=other) == {"data": {"node": None}}
    assert (await gateway.post(NODE, "admin", id=own))["data"]["node"]["email"]
    create = 'mutation { createApiKey(name: "ci") { apiKey { id } } }'
    key = (await gateway.post(create, "viewer"))["data"]["createApiKey"]["apiKey"]["id"]
    key_query = "query K($id: ID!) { node(id: $id) { id ... on ApiKey { name } } }"
    assert (await gateway.post(key_query, "viewer", id=key))["data"]["node"]["name"] == "ci"
    assert (await gateway.post(key_query, "admin", id=key))["data"]["node"]["name"] == "ci"
    assert await gateway.post(key_query, "nobody", id=key) == {"data": {"node": None}}
    anonymous = await gateway.post(key_query, id=key)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on Customer { name }
    ... on Product { name }
    ... on Order { status }
    ... on Event { type }
    ... on OrderItem { quantity }
  }
}
"""


async def test_a_hundred_mixed_ids_take_one_statement_per_type(gateway: Gateway) -> None:
    kinds = ("Customer", "Product", "Order", "Event", "OrderItem")
    ids = [global_id(kinds[number % len(kinds)], number // len(kinds) + 1) for number in range(100)]
    with counting_statements(gateway.app.state.runtime.engine) as log:
        body = await gateway.post(NODES, "viewer", ids=ids)
    assert "errors" not in body, body["errors"]
    found = body["data"]["nodes"]
    assert [node["id"] for node in found] == ids
    assert [node["__typename"] for node in found] == [
        kinds[number % len(kinds)] for number in range(100)
    ]
    # One batched read per type, plus the bearer token's user.
    assert len(log) <= len(kinds) + 1, log.statements


async def test_nodes_answers_each_id_in_its_place(gateway: Gateway) -> None:
    ids = [
        global_id("Customer", 1),
        "garbage",
        global_id("Customer", 999_999),
        global_id("Order", 2),
    ]
    body = await gateway.post(NODES, "viewer", ids=ids)
    found = body["data"]["nodes"]
    assert found[0]["__typename"] == "Customer"
    assert found[1] is None
    assert found[2] is None
    assert found[3]["__typename"] == "Order"
    assert [(error["path"], error["extensions"]["code"]) for error in body["errors"]] == [
        (["nodes", 1], "BAD_USER_INPUT")
    ]
    denied = await gateway.post(NODES, "nobody", ids=ids)
    assert denied["data"]["nodes"] == [None, None, None, None]
    codes = {tuple(error["path"]): error["extensions"]["code"] for error in denied["errors"]}
    assert codes == {
        ("nodes", 0): "FORBIDDEN",
        ("nodes", 1): "BAD_USER_INPUT",
        ("nodes", 2): "FORBIDDEN",
        ("nodes", 3): "FORBIDDEN",
    }


async def test_nodes_takes_at_most_the_page_size(gateway: Gateway) -> None:
    ids = [global_id("Customer", 1)] * 101
    body = await gateway.post(NODES, "viewer", ids=ids)
    # nodes is non-null: refusing the whole list nulls the data.
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_every_node_type_is_read_as_a_root_field_with_a_policy(gateway: Gateway) -> None:
    schema = compiled_schema(gateway.app.state.schema)
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    implementations = {named.name for named in schema.get_possible_types(node)}
    assert implementations == set(READ_AS)
    table = PolicyTable.from_schema(schema)
    for coordinate in READ_AS.values():
        policy = table.policy(coordinate)
        assert policy is not None, coordinate
        assert policy.declared_on == "field", coordinate
