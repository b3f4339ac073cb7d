"""Shared caching: the Redis connection and the two-level cache in front of the services."""

from dataintel.cache.codec import CodecError, JsonCodec, RecordCodec, ValueCodec, digest
from dataintel.cache.freshness import StaleRead, note_tags, observe, report_stale, trace_request
from dataintel.cache.memory import MemoryCache
from dataintel.cache.shared import SharedCache
from dataintel.cache.tags import EVERYTHING, dataset_tag, entity_tag, features_tag
from dataintel.cache.two_level import (
    CacheStats,
    Fetched,
    PartialResult,
    Region,
    TwoLevelCache,
    same_key,
)

__all__ = [
    "EVERYTHING",
    "CacheStats",
    "CodecError",
    "Fetched",
    "JsonCodec",
    "MemoryCache",
    "PartialResult",
    "RecordCodec",
    "Region",
    "SharedCache",
    "StaleRead",
    "TwoLevelCache",
    "ValueCodec",
    "dataset_tag",
    "digest",
    "entity_tag",
    "features_tag",
    "note_tags",
    "observe",
    "report_stale",
    "same_key",
    "trace_request",
]
