"""Assembles the root Query and Mutation from the per-domain modules."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from dataintel.schema.analytics import AnalyticsQuery
from dataintel.schema.audit import AuditQuery
from dataintel.schema.auth import AuthMutation, AuthQuery
from dataintel.schema.commerce import CommerceQuery
from dataintel.schema.errors import ErrorCode
from dataintel.schema.features import FeaturesQuery
from dataintel.schema.status import StatusQuery

# Adding a domain: write its module, then add its Query (or Mutation) class here.
QUERIES: tuple[type, ...] = (
    StatusQuery,
    CommerceQuery,
    FeaturesQuery,
    AnalyticsQuery,
    AuthQuery,
    AuditQuery,
)
MUTATIONS: tuple[type, ...] = (AuthMutation,)


def build_schema() -> strawberry.Schema:
    """The gateway's one schema; built once per app."""
    query = merge_types("Query", QUERIES)
    mutation = merge_types("Mutation", MUTATIONS) if MUTATIONS else None
    return strawberry.Schema(query=query, mutation=mutation, types=[ErrorCode])
