"""A GraphQL request as the pipeline sees it, whatever transport brought it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from dataintel.errors import BadUserInputError, GatewayError


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """The four parameters of the GraphQL over HTTP specification, checked for type."""

    query: str | None
    variables: Mapping[str, Any] | None
    operation_name: str | None
    extensions: Mapping[str, Any] | None
    document_id: str | None = None
    """A persisted document's id, sent instead of ``query`` (trusted documents)."""

    def with_query(self, query: str) -> GraphQLRequest:
        """The same request carrying its document's text (a persisted document, resolved)."""
        # Not dataclasses.replace: this runs on every persisted request, and replace costs
        # several times a constructor call.
        return GraphQLRequest(
            query, self.variables, self.operation_name, self.extensions, self.document_id
        )

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GraphQLRequest:
        """Checks each parameter's type; a wrong one is BAD_USER_INPUT naming it."""
        query = params.get("query")
        if query is not None and not isinstance(query, str):
            raise BadUserInputError("The 'query' parameter must be a string.")
        variables = params.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise BadUserInputError("The 'variables' parameter must be a JSON object or null.")
        operation_name = params.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise BadUserInputError("The 'operationName' parameter must be a string or null.")
        extensions = params.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise BadUserInputError("The 'extensions' parameter must be a JSON object or null.")
        document_id = params.get("documentId")
        if document_id is not None and (not isinstance(document_id, str) or not document_id):
            raise BadUserInputError("The 'documentId' parameter must be a non-empty string.")
        return cls(query, variables, operation_name, extensions, document_id)


class RequestRejected(Exception):
    """The request failed before execution; no data entry is sent, only errors."""

    def __init__(
        self,
        errors: Sequence[GatewayError | GraphQLError],
        status: int = 400,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(errors[0].message if errors else "request rejected")
        self.errors = tuple(errors)
        self.status = status
        self.headers: Mapping[str, str] = headers or {}


class DocumentRejected(RequestRejected):
    """A well-formed request whose document or variables failed: a GraphQL request error.

    Parse and validation failures, operation limits, an operation name that picks nothing and
    variables that do not coerce. The GraphQL over HTTP specification answers these 200 under
    ``application/json`` (legacy clients drop the errors of a non-2xx response) and 4xx under
    ``application/graphql-response+json``; ``status`` is the latter.
    """
