"""The shared GraphQL test client, and the request pipeline built by hand for tests.

``GraphQLClient`` sends a document to /graphql of an app driven in-process and gives back
the body (``post``) or the whole HTTP response (``send``); the ``graphql`` fixture is one
over the default app. ``pipeline_over`` wires a RequestPipeline around any schema with
every collaborator explicit, for tests that run requests without HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema

from dataintel.context import ANONYMOUS, RequestContexts, Viewer
from dataintel.gateway.analysis import DocumentAnalyzer
from dataintel.gateway.cost import OperationCost
from dataintel.gateway.documents import DocumentCache
from dataintel.gateway.persisted_queries import PersistedQueries
from dataintel.gateway.pipeline import PipelineInput, PipelineOutcome, RequestPipeline
from dataintel.gateway.policy import FieldGate
from dataintel.gateway.rate_limiting import RateLimits
from dataintel.gateway.request import GraphQLRequest
from dataintel.http.authentication import Authenticator
from dataintel.observability.drops import Drops
from dataintel.services import Services
from dataintel.settings import Settings

_request_ids = itertools.count()


class GraphQLClient:
    """Posts GraphQL requests to an app through an httpx client."""

    def __init__(self, client: httpx.AsyncClient, path: str = "/graphql") -> None:
        self.http = client
        self.path = path

    async def send(
        self,
        query: str | None = None,
        *,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> httpx.Response:
        """POSTs one request; extra keyword arguments are further body parameters."""
        body: dict[str, Any] = dict(params)
        if query is not None:
            body["query"] = query
        if variables:
            body["variables"] = dict(variables)
        if operation_name is not None:
            body["operationName"] = operation_name
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return await self.http.post(self.path, json=body, headers=sent)

    async def post(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """The body of the answer to the query, which must be a 200."""
        response = await self.send(
            query,
            variables=variables,
            operation_name=operation_name,
            token=token,
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def batch(
        self, items: list[dict[str, Any]], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POSTs a batch: an array of request objects."""
        return await self.http.post(self.path, json=items, headers=dict(headers or {}))


async def post(client: httpx.AsyncClient, document: str, /, **variables: Any) -> dict[str, Any]:
    """The body of a 200 answer to the query with these variables, from the app behind client."""
    return await GraphQLClient(client).post(document, variables)


@pytest.fixture
def graphql(client: httpx.AsyncClient) -> GraphQLClient:
    """A GraphQL client of the app on its default settings over the seeded store."""
    return GraphQLClient(client)


def pipeline_over(
    schema: GraphQLSchema,
    settings: Settings,
    services: Services,
    rate_limits: RateLimits | None = None,
) -> RequestPipeline:
    """A pipeline over the schema, the services and in-process rate limits; no cache."""
    limits = rate_limits or RateLimits(settings.rate_limit, settings.redis)
    documents = DocumentCache.from_settings(schema, settings.graphql, settings.limits)
    gate = FieldGate(
        schema,
        settings.effective_anonymous_roles,
        rate_limits_enabled=settings.rate_limit.enabled,
        field_limiter=lambda: limits.fields,
        audit=None,
    )
    return RequestPipeline(
        schema=schema,
        graphql=settings.graphql,
        limits=settings.limits,
        production=settings.production,
        documents=documents,
        persisted=PersistedQueries(
            settings.graphql, settings.redis, documents, lambda: None, lambda: None, Drops()
        ),
        authenticator=Authenticator(lambda: services),
        contexts=RequestContexts(lambda: services, settings.graphql, settings.limits.max_page_size),
        cost=OperationCost(settings.limits),
        analyzer=DocumentAnalyzer(schema, gate.table),
        gate=gate,
        responses=None,
        usage=None,
    )


async def run(
    pipeline: RequestPipeline,
    query: str,
    who: Viewer = ANONYMOUS,
    address: str = "10.0.0.1",
    **variables: Any,
) -> PipelineOutcome:
    """Runs one query through the pipeline as this viewer, from this address."""
    request = GraphQLRequest(query, variables or None, None, None)
    return await pipeline.run(
        PipelineInput(request, f"request-{next(_request_ids)}", viewer=who, client_address=address)
    )
