"""One process's connection to the shared Redis: short timeouts, an outage switch, and the live-process count.

Every shared limit asks ``link.up`` first: while Redis is known to be down the callers go straight to their
local share, so an outage costs one failed call per ``retry_s``, not a timeout per request. A heartbeat
registers this process in a sorted set scored by Redis' own clock (no skew between hosts) and learns how many
processes are alive; a limit's local share is its fleet-wide value divided by that count, the last one known
before the outage. The heartbeat is also what notices Redis coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "imagegate:"

# KEYS[1] the process set; ARGV: this process, how long a silent process counts as alive (ms). Returns the count.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""


def redis_client(url: str, *, timeout_s: float) -> Any:
    """An asyncio redis-py client that fails fast instead of retrying (our callers have a fallback)."""
    try:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # an optional backend: say what to install
        raise ValueError(f"rate_limit_url {url!r} needs the redis client: pip install 'imagegate[redis]'") from exc
    return aioredis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.5,
        retry_s: float = 1.0,
        heartbeat_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.client = redis_client(url, timeout_s=timeout_s)
        self.process = process_id()
        self.retry_s = retry_s
        self.heartbeat_s = heartbeat_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._down_until: float | None = None
        self._heartbeat = self.client.register_script(_HEARTBEAT)
        self._task: asyncio.Task[None] | None = None
        self.live_processes = 1  # until Redis has told us otherwise
        self.outages = 0

    @property
    def up(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """A Redis call failed: use local shares for ``retry_s``, then try Redis again."""
        if self._down_until is None:
            self.outages += 1
            log.warning(
                "redis at %s is unreachable (%s); limits use this process's share of %d until it is back",
                self.url,
                exc,
                self.live_processes,
            )
        self._down_until = self._clock() + self.retry_s

    def succeeded(self) -> None:
        if self._down_until is not None:
            log.warning("redis at %s is reachable again; limits are shared again", self.url)
        self._down_until = None

    def local_share(self, limit: int) -> int:
        """This process's part of a fleet-wide ``limit`` while Redis cannot be asked (at least 1)."""
        return max(1, -(-limit // max(1, self.live_processes)))

    async def beat(self) -> None:
        alive_ms = int(self.heartbeat_s * 3 * 1000)
        try:
            count = await self._heartbeat(keys=[PREFIX + "processes"], args=[self.process, alive_ms])
        except Exception as exc:  # redis-py raises its own errors and OSError subclasses alike
            self.failed(exc)
            return
        self.live_processes = max(1, int(count))
        self.succeeded()

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._beat_forever(), name="redis-heartbeat")

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.beat()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # leaving the set early frees our share for the others
            await self.client.zrem(PREFIX + "processes", self.process)
        await self.client.aclose()
