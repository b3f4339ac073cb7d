"""Tag names: what a cache entry depends on, and what a write invalidates."""

from __future__ import annotations

from collections.abc import Iterable

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


ENTITY_KINDS = ("customer", "product", "order")
"""Kinds of entity whose entries carry an entity tag (features add their entity types)."""


def tag_problem(tag: str, tables: Iterable[str], feature_entity_types: Iterable[str]) -> str | None:
    """Why ``tag`` names nothing the cache ever tags, or None when it is a real tag."""
    if tag == EVERYTHING:
        return None
    kind, separator, rest = tag.partition(":")
    entity_types = sorted(feature_entity_types)
    if separator and rest:
        if kind == "dataset":
            known = sorted(tables)
            return None if rest in known else f"dataset '{rest}' is not one of {', '.join(known)}"
        if kind == "features":
            if rest in entity_types:
                return None
            return f"entity type '{rest}' has no features; known: {', '.join(entity_types)}"
        if kind in (*ENTITY_KINDS, *entity_types):
            return None
    kinds = ", ".join(f"{name}:ID" for name in sorted({*ENTITY_KINDS, *entity_types}))
    return (
        f"'{tag}' is not a cache tag; tags are {EVERYTHING}, dataset:TABLE,"
        f" features:ENTITY_TYPE, {kinds}"
    )
