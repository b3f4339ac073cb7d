"""The in-process level: an LRU bounded by entries and by bytes, with a tag index."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

# What an entry costs beyond its payload: the entry object, its key and index slots.
ENTRY_OVERHEAD_BYTES = 256


def entry_size(key: str, payload: bytes) -> int:
    """The bytes an entry counts for: its serialized value, its key and a fixed overhead."""
    return len(payload) + len(key) + ENTRY_OVERHEAD_BYTES


@dataclass(slots=True)
class Entry:
    """One cached value, when it was stored, how long it is fresh and may serve as stale."""

    value: object
    size: int
    """Bytes counted for it: see ``entry_size``."""
    stored_at: float
    fresh_until: float
    stale_until: float
    tags: tuple[str, ...]
    versions: tuple[str, ...] | None
    """The tags' versions it was loaded under; None when Redis could not tell them."""

    def is_fresh(self, now: float) -> bool:
        """Within its TTL."""
        return now < self.fresh_until

    def may_stand_in(self, now: float) -> bool:
        """Past its TTL but within the stale-if-error window."""
        return now < self.stale_until


class MemoryCache:
    """Least recently used entries, at most ``max_entries`` and about ``max_bytes``.

    The byte count is the serialized size of each value plus a fixed overhead: the measure
    that Redis uses too, close enough to bound the memory without walking object graphs.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The bytes counted for every entry held."""
        return self._bytes

    def get(self, key: str) -> Entry | None:
        """The entry, fresh or not, made the most recently used."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek_many(self, keys: Iterable[str]) -> list[Entry | None]:
        """Each key's entry (or None), the order of use left as it is (see ``touch``)."""
        return list(map(self._entries.get, keys))

    def touch(self, keys: Iterable[str]) -> None:
        """Makes each key, every one held, the most recently used, in order."""
        deque(map(self._entries.move_to_end, keys), maxlen=0)

    def touch_found(self, keys: Iterable[str], entries: Iterable[Entry | None]) -> None:
        """Makes each key whose entry was found (``peek_many``) the most recently used."""
        move_to_end = self._entries.move_to_end
        for key, entry in zip(keys, entries, strict=True):
            if entry is not None:
                move_to_end(key)

    def put(self, key: str, entry: Entry) -> None:
        """Stores the entry, evicting the least recently used ones beyond either bound."""
        if entry.size > self.max_bytes or self.max_entries == 0:
            self.discard(key)
            return
        self.discard(key)
        self._entries[key] = entry
        self._bytes += entry.size
        for tag in entry.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self.discard(next(iter(self._entries)))

    def discard(self, key: str) -> None:
        """Removes the entry if it is held."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def drop_tags(self, tags: Iterable[str]) -> int:
        """Removes every entry carrying any of the tags; returns how many."""
        keys = {key for tag in tags for key in self._by_tag.get(tag, ())}
        for key in keys:
            self.discard(key)
        return len(keys)

    def clear(self) -> None:
        """Removes every entry."""
        self._entries.clear()
        self._by_tag.clear()
        self._bytes = 0
