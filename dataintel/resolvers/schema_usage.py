"""Resolvers of schema usage: which coordinates clients still select."""

from __future__ import annotations

from dataintel.resolvers.info import Info
from dataintel.services.schema_usage import CoordinateUsageRecord


async def coordinates(info: Info, deprecated_only: bool) -> list[CoordinateUsageRecord]:
    """Usage of every coordinate (or of the deprecated ones), across the replicas."""
    return await info.context.services.schema_usage.usage(deprecated_only)
