"""Per-key request quotas with the ``limits`` library: at most ``per_minute`` requests in any 60 seconds.

In memory for one process (``memory://``), or in Redis for all of them (``redis://``, limits' moving-window
Lua scripts, so two processes can never both take the last request). While Redis is unreachable each process
enforces its local share (the quota divided by the processes last seen alive) and keeps answering: a quota is
traffic shaping, never money, so failing open is safe. Shared enforcement resumes as soon as Redis answers.
"""

from __future__ import annotations

import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from imagegate.errors import RateLimited
from imagegate.sharedstate.link import ACCEPTS, PREFIX, RedisLink


class KeyQuota:
    """The ``RequestQuota`` port: ``await check(key_id)`` takes one request or raises ``RateLimited``."""

    def __init__(self, per_minute: int, *, link: RedisLink | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.per_minute = per_minute
        self._link = link
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._shared: MovingWindowRateLimiter | None = None
        if link is not None:
            storage = RedisStorage(
                "async+" + link.url,
                implementation="redispy",
                wrap_exceptions=True,
                key_prefix=PREFIX + "quota",
                socket_timeout=link.timeout_s,
                socket_connect_timeout=link.timeout_s,
            )
            self._shared = MovingWindowRateLimiter(storage)

    async def check(self, key_id: str) -> None:
        link, shared = self._link, self._shared
        if link is not None and shared is not None and link.up:
            item = RateLimitItemPerMinute(self.per_minute)
            try:
                if await shared.hit(item, key_id):
                    link.succeeded()
                    return
                reset_at = (await shared.get_window_stats(item, key_id)).reset_time
            except Exception as exc:  # limits' StorageError, or the client's own: fall back to the local share
                link.failed(exc)
            else:
                link.succeeded()
                self._refuse(reset_at)
        limit = link.local_share(self.per_minute, ACCEPTS) if link is not None else self.per_minute
        item = RateLimitItemPerMinute(limit)
        if await self._local.hit(item, key_id):
            return
        self._refuse((await self._local.get_window_stats(item, key_id)).reset_time)

    def _refuse(self, reset_at: float) -> None:
        wait = max(0.1, reset_at - time.time())
        raise RateLimited(
            f"You exceeded this key's quota of {self.per_minute} requests per minute. Please retry in {wait:.1f}s.",
            retry_after_s=wait,
        )
