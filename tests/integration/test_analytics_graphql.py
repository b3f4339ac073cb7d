"""Analytics through the real app: the catalog, queries, mistakes and an operator's catalog."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from dataintel.app import create_app
from dataintel.services.analytics import AnalyticsCatalogError
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.graphql import post
from tests.plugins.statements import counting_statements

# The HTTP path on both stores (docs/development.md).
pytestmark = pytest.mark.both_stores

ANALYTICS = """
query Analytics($query: AnalyticsQueryInput!) {
  analytics(query: $query) {
    granularity timezone from to truncated
    measures { name unit aggregation }
    dimensions { name type }
    rows { time dimensions { name value } measures { name unit value } }
    totals { name unit value }
  }
}
"""
BILLABLE = frozenset({"placed", "paid", "shipped", "delivered"})
BERLIN = ZoneInfo("Europe/Berlin")


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def seeded_orders(settings: Settings) -> list[Any]:
    """Every order with its customer's region, read with a plain select."""
    engine = create_engine(settings.store)
    orders, customers = tables.orders, tables.customers
    statement = sa.select(
        orders.c.placed_at, orders.c.status, orders.c.total_cents, customers.c.region
    ).join_from(orders, customers, orders.c.customer_id == customers.c.id)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(statement)).all())
    finally:
        await engine.dispose()


async def test_the_catalog_describes_measures_and_dimensions(client: httpx.AsyncClient) -> None:
    body = await post(
        client,
        """{ analyticsCatalog {
          measures { name description unit aggregation sources dimensions }
          dimensions { name description type }
          sources { name description timeDimension dimensions }
        } }""",
    )
    catalog = body["data"]["analyticsCatalog"]
    measures = {measure["name"]: measure for measure in catalog["measures"]}
    assert measures["revenue"]["unit"] == "USD"
    assert measures["revenue"]["aggregation"] == "SUM"
    assert measures["conversion_rate"]["aggregation"] == "RATIO"
    assert measures["conversion_rate"]["sources"] == ["events"]
    assert "product_category" in measures["units_sold"]["dimensions"]
    assert all(measure["description"] for measure in catalog["measures"])
    dimensions = {dimension["name"]: dimension for dimension in catalog["dimensions"]}
    assert dimensions["region"]["type"] == "STRING"
    assert dimensions["placed_at"]["type"] == "TIME"
    sources = {source["name"]: source for source in catalog["sources"]}
    assert sources["events"]["timeDimension"] == "occurred_at"


INTROSPECTION = """{
  __schema {
    queryType { fields { name description args { name description } } }
    types {
      name kind description
      fields { name description args { name description } }
      inputFields { name description }
      enumValues { name description }
    }
  }
}"""


async def test_every_analytics_field_and_argument_is_described(
    client: httpx.AsyncClient,
) -> None:
    schema = (await post(client, INTROSPECTION))["data"]["__schema"]
    undescribed: list[str] = []
    roots = [f for f in schema["queryType"]["fields"] if f["name"].startswith("analytics")]
    assert {field["name"] for field in roots} == {"analytics", "analyticsCatalog"}
    for field in roots:
        if not field["description"]:
            undescribed.append(f"Query.{field['name']}")
        undescribed.extend(
            f"Query.{field['name']}({arg['name']})"
            for arg in field["args"]
            if not arg["description"]
        )
    types = [t for t in schema["types"] if t["name"].startswith("Analytics")]
    assert len(types) >= 14
    for described in types:
        name = described["name"]
        if not described["description"]:
            undescribed.append(name)
        for member in [
            *(described["fields"] or []),
            *(described["inputFields"] or []),
            *(described["enumValues"] or []),
        ]:
            if not member["description"]:
                undescribed.append(f"{name}.{member['name']}")
            undescribed.extend(
                f"{name}.{member['name']}({arg['name']})"
                for arg in member.get("args") or []
                if not arg["description"]
            )
    # AnalyticsQuery is the Python class merged into Query, not a type of the schema.
    assert undescribed == []


async def test_revenue_by_region_and_week_in_berlin(
    client: httpx.AsyncClient, make_settings: SettingsFactory
) -> None:
    body = await post(
        client,
        ANALYTICS,
        query={
            "measures": ["revenue", "billable_orders"],
            "dimensions": ["region"],
            "timezone": "Europe/Berlin",
            "time": {"granularity": "WEEK", "from": "2025-03-17", "to": "2025-04-14"},
            "filters": [
                {"member": "region", "operator": "IN", "values": ["europe", "asia_pacific"]}
            ],
            "orderBy": [{"member": "time", "direction": "DESC"}, {"member": "region"}],
        },
    )
    assert "errors" not in body, body["errors"]
    result = body["data"]["analytics"]
    assert result["granularity"] == "WEEK"
    assert result["from"] == "2025-03-17T00:00:00+01:00"
    assert result["to"] == "2025-04-14T00:00:00+02:00"

    start = datetime(2025, 3, 17, tzinfo=BERLIN)
    end = datetime(2025, 4, 14, tzinfo=BERLIN)
    cents: defaultdict[tuple[datetime, str], int] = defaultdict(int)
    counts: defaultdict[tuple[datetime, str], int] = defaultdict(int)
    for order in await seeded_orders(make_settings()):
        if not start <= order.placed_at < end or order.region not in ("europe", "asia_pacific"):
            continue
        # A group with only cancelled orders is still a row, with no revenue.
        key = (week_start(order.placed_at), order.region)
        cents[key] += order.total_cents if order.status in BILLABLE else 0
        counts[key] += 1 if order.status in BILLABLE else 0
    expected = [
        {
            "time": moment.isoformat(),
            "dimensions": [{"name": "region", "value": region}],
            "measures": [
                {"name": "revenue", "unit": "USD", "value": cents[(moment, region)] / 100},
                {"name": "billable_orders", "unit": "count", "value": counts[(moment, region)]},
            ],
        }
        for moment, region in sorted(cents, key=lambda key: (-key[0].timestamp(), key[1]))
    ]
    assert len(expected) == 4 * 2, "four weeks of two regions"
    assert result["rows"] == expected
    assert result["totals"] == [
        {"name": "revenue", "unit": "USD", "value": sum(cents.values()) / 100},
        {"name": "billable_orders", "unit": "count", "value": sum(counts.values())},
    ]


def week_start(moment: datetime) -> datetime:
    local = moment.astimezone(BERLIN).date()
    return datetime.combine(local - timedelta(days=local.weekday()), time(), tzinfo=BERLIN)


async def test_a_row_reads_one_measure_by_name(client: httpx.AsyncClient) -> None:
    body = await post(
        client,
        """query($query: AnalyticsQueryInput!) { analytics(query: $query) {
          rows { region: dimension(name: "region") revenue: measure(name: "revenue") }
          totals { value }
        } }""",
        query={"measures": ["revenue"], "dimensions": ["region"]},
    )
    rows = body["data"]["analytics"]["rows"]
    assert [row["region"] for row in rows] == [
        "asia_pacific",
        "europe",
        "latin_america",
        "north_america",
    ]
    total = body["data"]["analytics"]["totals"][0]["value"]
    assert sum(row["revenue"] for row in rows) == pytest.approx(total)


MISTAKES = {
    "unknown measure": (
        {"measures": ["revenu"]},
        "Unknown measure 'revenu'; valid measures: revenue",
    ),
    "unknown dimension": (
        {"measures": ["revenue"], "dimensions": ["colour"]},
        "Unknown dimension 'colour'; valid dimensions: region",
    ),
    "unreachable dimension": (
        {"measures": ["revenue", "sessions"], "dimensions": ["product_category"]},
        "Dimension 'product_category' is not reachable from source orders, events",
    ),
    "unknown time zone": (
        {"measures": ["revenue"], "timezone": "Mars/Olympus"},
        "Unknown time zone 'Mars/Olympus'",
    ),
    "limit too large": ({"measures": ["revenue"], "limit": 10_001}, "between 1 and 10000"),
    "two value lists": (
        {
            "measures": ["revenue"],
            "filters": [
                {"member": "region", "operator": "EQUALS", "values": ["europe"], "numbers": [1]}
            ],
        },
        "give exactly one of values",
    ),
}


@pytest.mark.parametrize(("query", "message"), MISTAKES.values(), ids=MISTAKES)
async def test_mistakes_are_bad_user_input(
    client: httpx.AsyncClient, query: dict[str, Any], message: str
) -> None:
    body = await post(client, ANALYTICS, query=query)
    assert body["data"] == {"analytics": None}
    assert codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert message in error["message"]
    assert error["path"] == ["analytics"]
    assert error["extensions"]["domain"] == "analytics"


async def test_an_unknown_granularity_is_rejected_before_execution(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": ANALYTICS,
            "variables": {"query": {"measures": ["revenue"], "time": {"granularity": "FORTNIGHT"}}},
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert "data" not in body
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "AnalyticsGranularity" in body["errors"][0]["message"]


async def test_an_unknown_name_in_a_row_spares_the_rest(client: httpx.AsyncClient) -> None:
    body = await post(
        client,
        """{ analytics(query: {measures: ["revenue"]}) {
          totals { value }
          rows { measure(name: "sessions") }
        } }""",
    )
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["path"] == ["analytics", "rows", 0, "measure"]
    assert "its measures: revenue" in body["errors"][0]["message"]
    assert body["data"]["analytics"]["totals"][0]["value"] > 0


OPERATOR_CATALOG = """
dimensions:
  - name: product_name
    type: string
    column: products.name
    description: The product's name.
measures:
  - name: gross_revenue
    description: Every order's total, whatever became of it, in dollars.
    unit: USD
    aggregation: sum
    source: orders
    column: orders.total_cents
    scale: 0.01
  - name: refund_rate
    description: Share of orders refunded.
    unit: ratio
    aggregation: ratio
    numerator: refunded_orders
    denominator: order_count
  - name: refunded_orders
    description: Orders refunded.
    unit: count
    aggregation: count
    source: orders
    where: {order_status: [refunded]}
"""


async def test_an_operator_catalog_adds_measures_without_a_schema_change(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "analytics.yaml"
    path.write_text(OPERATOR_CATALOG, "utf-8")
    settings = make_settings(analytics_catalog_path=path)
    async with serving(create_app(settings)) as client:
        body = await post(
            client,
            ANALYTICS,
            query={"measures": ["gross_revenue", "refund_rate", "revenue"]},
        )
    assert "errors" not in body, body["errors"]
    orders = await seeded_orders(settings)
    refunded = sum(1 for order in orders if order.status == "refunded")
    assert body["data"]["analytics"]["totals"] == [
        {"name": "gross_revenue", "unit": "USD", "value": sum(o.total_cents for o in orders) / 100},
        {"name": "refund_rate", "unit": "ratio", "value": pytest.approx(refunded / len(orders))},
        {
            "name": "revenue",
            "unit": "USD",
            "value": sum(o.total_cents for o in orders if o.status in BILLABLE) / 100,
        },
    ]


async def test_a_broken_operator_catalog_stops_the_app_at_start(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "analytics.yaml"
    path.write_text(
        "measures: [{name: m, description: d, unit: USD, aggregation: sum,"
        " source: orders, column: orders.total}]",
        "utf-8",
    )
    app = create_app(make_settings(analytics_catalog_path=path))
    with pytest.raises(AnalyticsCatalogError, match="table 'orders' has no column 'total'"):
        async with serving(app):
            pass


async def test_a_query_costs_two_statements(make_settings: SettingsFactory) -> None:
    # From raw rows; a rollup that covers a query costs two more statements, to check that
    # it is current (tests/integration/test_analytics_rollups_graphql.py).
    app = create_app(make_settings(analytics_rollups=False))
    async with serving(app) as client:
        with counting_statements(app.state.runtime.engine) as log:
            body = await post(
                client,
                ANALYTICS,
                query={
                    "measures": ["revenue", "units_sold", "conversion_rate", "new_customers"],
                    "dimensions": ["region", "customer_tier"],
                    "timezone": "America/New_York",
                    "time": {"granularity": "MONTH", "from": "2025-01-01", "to": "2026-01-01"},
                    "filters": [{"member": "revenue", "operator": "GT", "numbers": [1000]}],
                    "orderBy": [{"member": "conversion_rate", "direction": "DESC"}],
                    "limit": 10,
                },
            )
    assert "errors" not in body, body["errors"]
    assert len(body["data"]["analytics"]["rows"]) == 10
    assert body["data"]["analytics"]["truncated"] is True
    assert len(log) == 2
    assert all(
        datetime.fromisoformat(row["time"]).utcoffset()
        in (timedelta(hours=-5), timedelta(hours=-4))
        for row in body["data"]["analytics"]["rows"]
    )
