"""Thin resolvers: arguments to loaders and services to schema types."""
