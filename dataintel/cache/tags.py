"""Tag names: what a cache entry depends on, and what a write invalidates."""

from __future__ import annotations

EVERYTHING = "all"
"""Carried by every entry: invalidating it empties the cache on every replica."""


def dataset_tag(table: str) -> str:
    """Every entry computed from a table (pages, counts, analytics over it)."""
    return f"dataset:{table}"


def entity_tag(kind: str, entity_id: object) -> str:
    """Every entry about one entity (a customer, an order): erasing it invalidates them."""
    return f"{kind}:{entity_id}"


def features_tag(entity_type: str) -> str:
    """Every online feature value of an entity type: a materialization invalidates them."""
    return f"features:{entity_type}"
