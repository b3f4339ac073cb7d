"""The baseline of the planned-execution rows: plain graphql-core over records in memory.

The same orders and customers as the gateway's store (read once at startup from the SQLite
file named by DATAINTEL_DATABASE_URL), the same query shape, resolvers that read dictionaries,
graphql-core's ``graphql()`` behind a bare Starlette route: what graphql-core costs for this
query when the data source costs nothing. ``uvicorn --factory bench.plain_graphql:create_app``.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from typing import Any

from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SDL = """
enum OrderStatus { PLACED PAID SHIPPED DELIVERED CANCELLED REFUNDED }
enum CustomerTier { BRONZE SILVER GOLD PLATINUM }
type Customer { id: ID! name: String! tier: CustomerTier! }
type Order { id: ID! total: Float! status: OrderStatus! customer: Customer }
type OrderConnection { nodes: [Order!]! }
type Query { orders(first: Int): OrderConnection }
"""


def _global_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _records(path: str) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    with sqlite3.connect(path) as connection:
        customers = {
            row[0]: {"id": _global_id("Customer", row[0]), "name": row[1], "tier": row[2].upper()}
            for row in connection.execute("SELECT id, name, tier FROM customers")
        }
        orders = [
            {
                "id": _global_id("Order", row[0]),
                "total": row[1] / 100,
                "status": row[2].upper(),
                "customer_id": row[3],
            }
            for row in connection.execute(
                "SELECT id, total_cents, status, customer_id FROM orders"
                " ORDER BY placed_at DESC, id DESC"
            )
        ]
    return orders, customers


def create_app() -> Starlette:
    """The baseline app over the records of DATAINTEL_DATABASE_URL's SQLite file."""
    url = os.environ["DATAINTEL_DATABASE_URL"]
    orders, customers = _records(url.split("///", 1)[1])
    schema = build_schema(SDL)

    def resolve_orders(_root: Any, _info: Any, first: int = 20) -> dict[str, Any]:
        return {"nodes": orders[:first]}

    def resolve_customer(order: dict[str, Any], _info: Any) -> dict[str, Any] | None:
        return customers.get(order["customer_id"])

    schema.query_type.fields["orders"].resolve = resolve_orders  # type: ignore[union-attr]
    schema.get_type("Order").fields["customer"].resolve = resolve_customer  # type: ignore[union-attr]

    async def endpoint(request: Request) -> JSONResponse:
        body = await request.json()
        result = await graphql(schema, body["query"], variable_values=body.get("variables"))
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        return JSONResponse(payload)

    return Starlette(routes=[Route("/graphql", endpoint, methods=["POST"])])
