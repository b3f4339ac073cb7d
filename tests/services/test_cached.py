"""The cached services key each query by a digest of its value, made once per value."""

from __future__ import annotations

from datetime import UTC, datetime

from dataintel.cache import RecordCodec, digest
from dataintel.services.cached import COMMERCE_TYPES, QueryDigests
from dataintel.services.commerce import OrderFilter
from dataintel.services.pagination import PageRequest

CODEC = RecordCodec(COMMERCE_TYPES)


def query(first: int, statuses: tuple[str, ...] | None = None) -> tuple[OrderFilter, PageRequest]:
    return (OrderFilter(statuses=statuses), PageRequest(first, None, None, None))


def test_a_query_keeps_the_digest_of_its_value() -> None:
    digests = QueryDigests(CODEC)
    assert digests(query(50)) == digest(CODEC, query(50))
    # Another object with the same value: the same key.
    assert digests(query(50)) == digests(query(50))


def test_different_queries_have_different_digests() -> None:
    digests = QueryDigests(CODEC)
    keys = {
        digests(query(50)),
        digests(query(20)),
        digests(query(50, ("paid",))),
        digests((OrderFilter(placed_from=datetime(2026, 1, 1, tzinfo=UTC)), query(50)[1])),
    }
    assert len(keys) == 4


def test_an_unhashable_value_is_digested_every_time() -> None:
    digests = QueryDigests(CODEC)
    assert digests([1, 2]) == digest(CODEC, [1, 2])


def test_at_most_size_digests_are_remembered() -> None:
    digests = QueryDigests(CODEC, size=2)
    for first in range(5):
        assert digests(query(first)) == digest(CODEC, query(first))
    assert len(digests) <= 2
