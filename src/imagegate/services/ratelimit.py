"""Per-key request quotas: a token bucket per key, refilled continuously (``per_minute`` requests a minute).

It lives in the process, so each API replica enforces its own share; a shared limiter arrives with the
scale-out work. A refused request learns how long to wait (Gemini's ``RetryInfo``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from imagegate.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyRateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key_id: str) -> None:
        """Take one request from ``key_id``'s bucket, or raise ``RateLimited`` saying when to retry."""
        now = self._clock()
        bucket = self._buckets.setdefault(key_id, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait = (1 - bucket.tokens) / self.rate
        raise RateLimited(
            f"You exceeded this key's quota of {int(self.capacity)} requests per minute. Please retry in {wait:.1f}s.",
            retry_after_s=wait,
        )
