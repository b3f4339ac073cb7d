"""The generated OpenAPI document: valid, derived from the GraphQL schema, one source for all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLSchema
from openapi_spec_validator import validate

from dataintel.app import create_app
from dataintel.openapi import openapi_document, render_openapi
from dataintel.schema import build_schema
from dataintel.settings import Settings
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.cli import clean_environment, run_dataintel

SCHEMA: GraphQLSchema = build_schema()._schema
PUBLISHED = {
    ("/api/v1/status", "get"),
    ("/api/v1/orders/recent", "get"),
    ("/api/v1/analytics/revenue-by-region", "get"),
    ("/api/v1/customers/{tier}/features", "get"),
    ("/api/v1/auth/token", "post"),
}


def document(**options: Any) -> dict[str, Any]:
    return openapi_document(Settings(**options), SCHEMA)


def parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {parameter["name"]: parameter for parameter in operation.get("parameters", [])}


def test_the_document_is_valid_openapi_3_1() -> None:
    generated = document(metrics_enabled=True, metrics_bearer_token="secret-token")
    assert generated["openapi"] == "3.1.0"
    validate(generated)


def test_every_route_and_published_operation_is_described() -> None:
    paths = document(metrics_enabled=True)["paths"]
    described = {(path, method) for path, item in paths.items() for method in item}
    assert described >= PUBLISHED
    assert {("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get")} <= described
    assert {("/openapi.json", "get"), ("/docs", "get")} <= described


def test_routes_follow_the_settings() -> None:
    paths = document(rest_enabled=False, api_docs=False, metrics_enabled=False)["paths"]
    assert not [path for path in paths if path.startswith("/api/")]
    assert "/docs" not in paths
    assert "/metrics" not in paths


def test_parameters_come_from_the_variable_types() -> None:
    generated = document()
    recent = parameters(generated["paths"]["/api/v1/orders/recent"]["get"])
    # Int with the bounds the published entry adds; optional because it has a default.
    assert recent["first"]["in"] == "query"
    assert recent["first"]["required"] is False
    assert recent["first"]["schema"] == {
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 100,
    }
    # [OrderStatus!]: a repeated parameter of the schema's enum, shared as a component.
    assert recent["status"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/OrderStatus"},
    }
    assert (recent["status"]["style"], recent["status"]["explode"]) == ("form", True)
    order_status = generated["components"]["schemas"]["OrderStatus"]
    assert order_status["type"] == "string"
    assert {"PAID", "SHIPPED"} <= set(order_status["enum"])
    features = parameters(generated["paths"]["/api/v1/customers/{tier}/features"]["get"])
    assert features["tier"]["in"] == "path"
    assert features["tier"]["required"] is True
    assert features["tier"]["schema"] == {"$ref": "#/components/schemas/CustomerTier"}


def test_a_mutation_takes_a_closed_json_body() -> None:
    token = document()["paths"]["/api/v1/auth/token"]["post"]
    body = token["requestBody"]["content"]["application/json"]["schema"]
    assert body == {
        "type": "object",
        "properties": {
            "email": {"type": "string", "minLength": 1},
            "password": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
        "required": ["email", "password"],
    }
    assert "304" not in token["responses"]
    assert {"413", "415"} <= set(token["responses"])


def test_the_response_follows_the_selection_set() -> None:
    recent = document()["paths"]["/api/v1/orders/recent"]["get"]
    data = recent["responses"]["200"]["content"]["application/json"]["schema"]
    orders = data["properties"]["orders"]
    # orders is nullable in the schema, its description comes from the schema.
    assert orders["type"] == ["object", "null"]
    assert set(orders["properties"]) == {"totalCount", "nodes"}
    node = orders["properties"]["nodes"]["items"]
    assert node["required"] == [
        "id",
        "placedAt",
        "totalCents",
        "currency",
        "status",
        "customer",
        "items",
    ]
    assert node["additionalProperties"] is False
    assert node["properties"]["placedAt"]["type"] == "string"
    assert node["properties"]["placedAt"]["format"] == "date-time"
    assert node["properties"]["totalCents"]["type"] == "integer"
    # OrderStatus! is the shared enum, not null.
    assert node["properties"]["status"]["$ref"] == "#/components/schemas/OrderStatus"
    customer = node["properties"]["customer"]
    assert customer["type"] == ["object", "null"]
    product = node["properties"]["items"]["items"]["properties"]["product"]
    assert set(product["properties"]) == {"name", "category"}
    field = SCHEMA.get_type("Order").fields["placedAt"]  # type: ignore[union-attr]
    assert node["properties"]["placedAt"]["description"] == field.description


def test_security_schemes_are_the_credentials_the_gateway_accepts() -> None:
    generated = document()
    schemes = generated["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    recent = generated["paths"]["/api/v1/orders/recent"]["get"]
    assert recent["security"] == [{}, {"bearerAuth": []}, {"apiKey": []}]


def test_errors_are_documented_as_problem_details() -> None:
    generated = document()
    recent = generated["paths"]["/api/v1/orders/recent"]["get"]
    for status in ("400", "401", "403", "404", "429", "500", "503", "504"):
        content = recent["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    problem = generated["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code", "requestId", "errors"} <= set(problem["required"])
    assert "data" in problem["properties"]


def test_a_changed_operation_changes_the_document(tmp_path: Path) -> None:
    changed = tmp_path / "operations.yaml"
    changed.write_text(
        """operations:
  - path: /orders/recent
    operation: RecentOrders
    summary: Only the ids now.
    document: |
      query RecentOrders($first: Int! = 3) { orders(first: $first) { nodes { id } } }
"""
    )
    before = document()
    after = document(rest_operations_path=changed)
    assert after != before
    recent = after["paths"]["/api/v1/orders/recent"]["get"]
    assert recent["summary"] == "Only the ids now."
    data = recent["responses"]["200"]["content"]["application/json"]["schema"]
    node = data["properties"]["orders"]["properties"]["nodes"]["items"]
    assert set(node["properties"]) == {"id"}
    assert "status" not in parameters(recent)
    validate(after)


async def test_served_document_is_the_printed_one(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    async with serving(create_app(settings)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == render_openapi(openapi_document(settings, SCHEMA))
    printed = run_dataintel(["openapi", "print"], tmp_path, clean_environment())
    assert printed.returncode == 0, printed.stderr
    # The CLI's default settings and the test's differ only in the store: same document.
    assert orjson.loads(printed.stdout) == response.json()
    output = tmp_path / "openapi.json"
    written = run_dataintel(
        ["openapi", "print", "--output", str(output)], tmp_path, clean_environment()
    )
    assert written.returncode == 0, written.stderr
    assert output.read_text() == printed.stdout


def test_a_broken_operations_file_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "operations.yaml"
    broken.write_text(
        "operations:\n  - path: /x\n    operation: X\n    summary: x\n"
        "    document: 'query X { nope }'\n"
    )
    result = run_dataintel(
        ["openapi", "print"],
        tmp_path,
        clean_environment(DATAINTEL_REST_OPERATIONS_PATH=str(broken)),
    )
    assert result.returncode == 1
    assert "Cannot query field" in result.stderr
    assert "nope" in result.stderr
