"""Online features through the real app: many entities at once, Customer.features, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services.features import SqlFeatureService
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.graphql import post
from tests.plugins.statements import counting_statements

ONLINE = """
query Online($type: String!, $ids: [ID!]!, $names: [String!]) {
  onlineFeatures(entityType: $type, entityIds: $ids, features: $names) {
    entityType entityId
    features {
      name view valueType floatValue intValue stringValue boolValue
      timestamp materializedAt stale status
    }
  }
}
"""

CUSTOMER_FEATURES = """
query Customers($first: Int!) {
  customers(first: $first) {
    nodes { id features(names: ["lifetime_value", "favorite_category", "churn_risk_score"]) {
      name floatValue stringValue stale status } }
  }
}
"""


@pytest.fixture
async def app(make_settings: SettingsFactory) -> Starlette:
    return create_app(make_settings())


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app whose seeded store has been materialized."""
    async with serving(app) as http_client:
        features: SqlFeatureService = app.state.runtime.services.features
        await features.materialize()
        yield http_client


def value(feature: dict[str, Any]) -> Any:
    field = {"FLOAT": "floatValue", "INT": "intValue", "STRING": "stringValue"}.get(
        feature["valueType"], "boolValue"
    )
    return feature[field]


async def test_many_entities_and_features_in_one_request(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    ids = ["3", "1", "2", "999999"]
    names = ["churn_risk_score", "order_count", "favorite_category", "active_last_30d"]
    body = await post(client, ONLINE, type="customer", ids=ids, names=names)
    assert "errors" not in body, body
    entities = body["data"]["onlineFeatures"]
    assert [entity["entityId"] for entity in entities] == ids
    service: SqlFeatureService = app.state.runtime.services.features
    expected = await service.online("customer", ids, names)
    for entity in entities:
        assert [feature["name"] for feature in entity["features"]] == names
        records = expected[entity["entityId"]]
        assert [value(feature) for feature in entity["features"]] == [r.value for r in records]
    first = {feature["name"]: feature for feature in entities[1]["features"]}
    assert first["churn_risk_score"]["valueType"] == "FLOAT"
    assert first["order_count"]["valueType"] == "INT"
    assert first["order_count"]["floatValue"] is None
    assert first["favorite_category"]["view"] == "customer_value"
    assert first["active_last_30d"]["boolValue"] in (True, False)
    assert first["order_count"]["status"] == "PRESENT"
    assert first["order_count"]["stale"] is False
    assert first["order_count"]["timestamp"].startswith("2026-06-30")
    missing = entities[3]["features"][0]
    assert (missing["status"], missing["stale"], missing["floatValue"]) == ("NOT_FOUND", True, None)


async def test_all_features_when_none_are_named(client: httpx.AsyncClient) -> None:
    body = await post(client, ONLINE, type="product", ids=["1"], names=None)
    features = body["data"]["onlineFeatures"][0]["features"]
    assert [feature["name"] for feature in features] == [
        "units_sold_last_30d",
        "revenue_last_30d",
        "lifetime_revenue",
    ]


async def test_customer_features_match_online_features(client: httpx.AsyncClient) -> None:
    customers = (await post(client, CUSTOMER_FEATURES, first=20))["data"]["customers"]["nodes"]
    ids = [customer["id"] for customer in customers]
    names = ["lifetime_value", "favorite_category", "churn_risk_score"]
    online = await post(client, ONLINE, type="customer", ids=ids, names=names)
    by_id = {entity["entityId"]: entity["features"] for entity in online["data"]["onlineFeatures"]}
    for customer in customers:
        assert [
            (feature["name"], feature["floatValue"], feature["stringValue"])
            for feature in customer["features"]
        ] == [
            (feature["name"], feature["floatValue"], feature["stringValue"])
            for feature in by_id[customer["id"]]
        ]


async def test_customer_features_cost_the_same_for_10_and_100_customers(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    counts = []
    for first in (10, 100):
        with counting_statements(app.state.runtime.engine) as log:
            body = await post(client, CUSTOMER_FEATURES, first=first)
        assert "errors" not in body, body
        assert len(body["data"]["customers"]["nodes"]) == first
        assert sum("feature_values" in statement for statement in log.statements) == 1
        counts.append(len(log))
    # The customers page, then every customer's features at once.
    assert counts == [2, 2]


async def test_unknown_feature_is_bad_user_input_naming_the_valid_ones(
    client: httpx.AsyncClient,
) -> None:
    body = await post(
        client,
        'query($ids: [ID!]!) { onlineFeatures(entityType: "customer", entityIds: $ids,'
        ' features: ["lifetime_value", "shoe_size"]) { entityId } status { version } }',
        ids=["1"],
    )
    assert body["data"]["onlineFeatures"] is None
    assert body["data"]["status"]["version"]
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["path"] == ["onlineFeatures"]
    assert "'shoe_size'" in error["message"]
    assert error["extensions"]["unknown"] == ["shoe_size"]
    assert "churn_risk_score" in error["extensions"]["valid"]


async def test_unknown_customer_feature_keeps_the_rest_of_the_page(
    client: httpx.AsyncClient,
) -> None:
    query = '{ customers(first: 2) { nodes { name features(names: ["shoe_size"]) { name } } } }'
    body = await post(client, query)
    nodes = body["data"]["customers"]["nodes"]
    assert [node["features"] for node in nodes] == [None, None]
    assert all(node["name"] for node in nodes)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["path"] == ["customers", "nodes", 0, "features"]


async def test_unknown_entity_type_is_bad_user_input(client: httpx.AsyncClient) -> None:
    body = await post(client, ONLINE, type="warehouse", ids=["1"], names=None)
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["valid"] == ["customer", "product"]
    body = await post(client, '{ featureViews(entityType: "warehouse") { name } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_too_many_entities_is_bad_user_input(client: httpx.AsyncClient) -> None:
    ids = [str(number) for number in range(1, 1002)]
    body = await post(client, ONLINE, type="customer", ids=ids, names=["order_count"])
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["maximum"] == 1000


async def test_feature_views_list_features_types_and_ttls(client: httpx.AsyncClient) -> None:
    query = """{ featureViews { name entityType ttlSeconds description
                 features { name view valueType description formula } } }"""
    views = {view["name"]: view for view in (await post(client, query))["data"]["featureViews"]}
    assert views.keys() == {"customer_value", "customer_engagement", "product_sales"}
    engagement = views["customer_engagement"]
    assert (engagement["entityType"], engagement["ttlSeconds"]) == ("customer", 86400)
    assert views["customer_value"]["ttlSeconds"] == 7 * 86400
    features = {feature["name"]: feature for feature in engagement["features"]}
    assert features["active_last_30d"]["valueType"] == "BOOL"
    assert features["churn_risk_score"]["formula"].startswith("0.6 * min(")
    assert features["days_since_last_order"]["formula"] is None
    assert all(feature["description"] for view in views.values() for feature in view["features"])
    products = await post(client, '{ featureViews(entityType: "product") { name } }')
    assert products["data"]["featureViews"] == [{"name": "product_sales"}]


async def test_every_feature_field_and_argument_is_described(client: httpx.AsyncClient) -> None:
    query = """query($name: String!) { __type(name: $name) {
      fields { name description args { name description } } } }"""
    for type_name in ("FeatureValue", "EntityFeatures", "FeatureView", "FeatureDefinition"):
        fields = (await post(client, query, name=type_name))["data"]["__type"]["fields"]
        assert all(field["description"] for field in fields), type_name
    root = (await post(client, query, name="Query"))["data"]["__type"]["fields"]
    customer = (await post(client, query, name="Customer"))["data"]["__type"]["fields"]
    ours = [field for field in root if field["name"] in ("onlineFeatures", "featureViews")]
    ours += [field for field in customer if field["name"] == "features"]
    assert len(ours) == 3
    for field in ours:
        assert field["description"], field["name"]
        assert all(argument["description"] for argument in field["args"]), field["name"]


async def test_values_go_stale_without_materialization(make_settings: SettingsFactory) -> None:
    """Before any materialization every value is NOT_FOUND and stale, never an error."""
    app = create_app(make_settings())
    async with serving(app) as client:
        body = await post(client, ONLINE, type="customer", ids=["1"], names=["order_count"])
    feature = body["data"]["onlineFeatures"][0]["features"][0]
    assert (feature["status"], feature["stale"], feature["intValue"]) == ("NOT_FOUND", True, None)
