"""Assembles the root Query and Mutation from the per-domain modules."""

from __future__ import annotations

import strawberry
from graphql import GraphQLSchema

from dataintel.schema.analytics import AnalyticsQuery
from dataintel.schema.audit import AuditQuery
from dataintel.schema.auth import AuthMutation, AuthQuery
from dataintel.schema.commerce import CommerceQuery
from dataintel.schema.errors import ErrorCode
from dataintel.schema.export import ExportMutation
from dataintel.schema.features import FeaturesQuery
from dataintel.schema.jobs import JobsMutation, JobsQuery
from dataintel.schema.object_identification import NodeQuery
from dataintel.schema.privacy import PrivacyMutation, PrivacyQuery
from dataintel.schema.quality import QualityMutation, QualityQuery
from dataintel.schema.reconciliation import ReconciliationMutation, ReconciliationQuery
from dataintel.schema.schema_usage import SchemaUsageQuery
from dataintel.schema.status import StatusQuery

# Adding a domain: write its module, then add its Query (or Mutation) class here.
QUERIES: tuple[type, ...] = (
    StatusQuery,
    NodeQuery,
    CommerceQuery,
    FeaturesQuery,
    AnalyticsQuery,
    AuthQuery,
    AuditQuery,
    SchemaUsageQuery,
    ReconciliationQuery,
    QualityQuery,
    JobsQuery,
    PrivacyQuery,
)
MUTATIONS: tuple[type, ...] = (
    AuthMutation,
    ReconciliationMutation,
    QualityMutation,
    JobsMutation,
    PrivacyMutation,
    ExportMutation,
)


def _root(name: str, domains: tuple[type, ...], description: str) -> type:
    # What strawberry.tools.merge_types does, plus a description for GraphiQL's docs.
    return strawberry.type(type(name, domains, {}), description=description)


def build_schema() -> strawberry.Schema:
    """The gateway's one schema; built once per app."""
    query = _root("Query", QUERIES, "Everything the gateway can read, across its domains.")
    mutation = _root("Mutation", MUTATIONS, "Every change the gateway can make.")
    return strawberry.Schema(query=query, mutation=mutation, types=[ErrorCode])


def compiled_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry compiled: what the gateway validates and executes.

    The one place that reaches into Strawberry for it (``_schema`` is not public API).
    """
    return schema._schema


def build_graphql_schema() -> GraphQLSchema:
    """The gateway's schema, compiled: for tools and tests that need no Strawberry object."""
    return compiled_schema(build_schema())
