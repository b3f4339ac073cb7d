"""The in-process level: bounded by entries and bytes, least recently used out first."""

from __future__ import annotations

from dataintel.cache.memory import ENTRY_OVERHEAD_BYTES, Entry, MemoryCache, entry_size


def entry(key: str, payload: bytes = b"x", tags: tuple[str, ...] = ()) -> Entry:
    return Entry(
        value=payload,
        size=entry_size(key, payload),
        stored_at=0.0,
        fresh_until=10.0,
        stale_until=20.0,
        tags=tags,
        versions=None,
    )


def test_evicts_the_least_recently_used_beyond_the_entry_bound() -> None:
    cache = MemoryCache(max_entries=2, max_bytes=1_000_000)
    cache.put("a", entry("a"))
    cache.put("b", entry("b"))
    assert cache.get("a") is not None
    cache.put("c", entry("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert len(cache) == 2


def test_evicts_beyond_the_byte_bound() -> None:
    size = entry_size("k0", b"x" * 100)
    cache = MemoryCache(max_entries=100, max_bytes=size * 3)
    for index in range(5):
        cache.put(f"k{index}", entry(f"k{index}", b"x" * 100))
    assert len(cache) == 3
    assert cache.bytes == size * 3
    assert cache.get("k0") is None
    assert cache.get("k4") is not None


def test_an_entry_larger_than_the_budget_is_not_kept() -> None:
    cache = MemoryCache(max_entries=10, max_bytes=ENTRY_OVERHEAD_BYTES + 10)
    cache.put("big", entry("big", b"x" * 1000))
    assert len(cache) == 0
    assert cache.bytes == 0


def test_drop_tags_removes_every_entry_carrying_one() -> None:
    cache = MemoryCache(max_entries=10, max_bytes=1_000_000)
    cache.put("a", entry("a", tags=("customer:1", "dataset:customers")))
    cache.put("b", entry("b", tags=("customer:2", "dataset:customers")))
    cache.put("c", entry("c", tags=("dataset:orders",)))
    assert cache.drop_tags(["customer:1"]) == 1
    assert cache.get("a") is None
    assert cache.drop_tags(["dataset:customers"]) == 1
    assert [key for key in ("a", "b", "c") if cache.get(key)] == ["c"]
    cache.put("c", entry("c", tags=("dataset:orders",)))
    assert len(cache) == 1
    assert cache.bytes == entry_size("c", b"x")
