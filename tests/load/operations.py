"""The GraphQL documents the load flows send, and the variables that make them vary."""

from __future__ import annotations

import hashlib
import random

DASHBOARD = """query DashboardRevenue($from: DateTime!, $to: DateTime!) {
  analytics(query: {measures: ["revenue", "order_count", "active_customers"],
                    time: {granularity: MONTH, from: $from, to: $to}}) {
    rows { time measures { name value } }
    totals { name value }
  }
}"""

DASHBOARD_HASH = hashlib.sha256(DASHBOARD.encode()).hexdigest()

EXPLORE = """query Explore($query: AnalyticsQueryInput!) {
  analytics(query: $query) {
    rows { time dimensions { name value } measures { name value } }
    totals { name value }
  }
}"""

ORDERS_PAGE = """query OrdersPage($first: Int!, $after: String) {
  orders(first: $first, after: $after) {
    nodes { id total status customer { id name tier } }
    pageInfo { hasNextPage endCursor }
  }
}"""

FEATURES = """query Features($ids: [ID!]!) {
  onlineFeatures(entityType: "customer", entityIds: $ids) {
    entityId
    features { name intValue floatValue }
  }
}"""

LOGIN = """mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token expiresAt }
}"""

ME = "query Me { me { id roles user { email } } }"

QUALITY_RUN = """mutation QualityRun($dataset: String!) {
  runQualityChecks(input: {dataset: $dataset}) { id passed results { checkId status } }
}"""


MEASURES = ["revenue", "order_count", "billable_orders", "average_order_value", "active_customers"]
DIMENSIONS = ["region", "customer_tier", "sales_channel", "order_status", "acquisition_channel"]
FILTERS = {
    "region": ["north_america", "europe", "asia_pacific", "latin_america"],
    "customer_tier": ["bronze", "silver", "gold", "platinum"],
    "sales_channel": ["web", "mobile", "marketplace"],
}
QUALITY_DATASETS = ["orders", "customers", "ledger_entries"]


def exploration(rng: random.Random) -> dict[str, object]:
    """An analytics query as an analyst builds one: some measures, a dimension, a filter."""
    member, values = rng.choice(list(FILTERS.items()))
    year = rng.choice([2024, 2025])
    return {
        "measures": rng.sample(MEASURES, rng.randint(1, 3)),
        "dimensions": [rng.choice([d for d in DIMENSIONS if d != member])],
        "time": {
            "granularity": rng.choice(["DAY", "WEEK", "MONTH"]),
            "from": f"{year}-{rng.randint(1, 6):02d}-01",
            "to": f"{year}-{rng.randint(7, 12):02d}-01",
        },
        "filters": [
            {"member": member, "operator": "IN", "values": rng.sample(values, rng.randint(1, 2))}
        ],
        "limit": 200,
    }


def customer_ids(rng: random.Random, count: int) -> list[str]:
    """Database ids of seeded customers (scale 1 seeds 1,000 of them)."""
    return [str(rng.randint(1, 1000)) for _ in range(count)]
