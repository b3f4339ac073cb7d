"""The GraphQL pipeline, independent of HTTP: documents, limits, execution, errors."""
