"""Keys this process verified recently, so that a burst of requests does not read the same key row every time.

An entry lives ``ttl_s`` seconds. Revoking a key, granting credits or creating one clears this process's cache
at once; another process sees the change within ``ttl_s`` (the price of not reading the key on every request,
which was a whole database round trip of each submission). ``ttl_s = 0`` turns the cache off.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imagegate.core.ports import ApiKey


class KeyCache:
    def __init__(self, ttl_s: float = 5.0, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, ApiKey]] = {}  # by key hash; insertion order is age order

    def get(self, key_hash: str) -> ApiKey | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        expires, record = entry
        if self._clock() >= expires:
            del self._entries[key_hash]
            return None
        return record

    def put(self, record: ApiKey) -> None:
        if self._ttl_s <= 0:
            return
        self._entries.pop(record.key_hash, None)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest
        self._entries[record.key_hash] = (self._clock() + self._ttl_s, record)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
