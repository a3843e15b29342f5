"""One process's connection to the shared Redis: short timeouts, an outage switch, and the live-process count.

Every shared limit asks ``link.up`` first: while Redis is known to be down the callers go straight to their
local share, so an outage costs one failed call per ``retry_s``, not a timeout per request. A heartbeat
registers this process in sorted sets scored by Redis' own clock (no skew between hosts), one for all and one
per role (accepting requests, running jobs), and learns how many are alive in each; a limit's local share is
its fleet-wide value divided by the count of the processes that enforce it, the last one known before the
outage. The heartbeat is also what notices Redis coming back.
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

# KEYS: the set of all processes, then one per role this process has; ARGV: this process, how long a silent
# process counts as alive (ms). Returns each set's count, in KEYS order.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - tonumber(ARGV[2]))
  redis.call('PEXPIRE', key, tonumber(ARGV[2]) * 2)
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""

#: What a process does, each with a share of the fleet-wide limits that role enforces while Redis is down:
#: ``accepts`` (serves the API: per-key quotas) and ``runs`` (runs jobs: each deployment's max_concurrency).
ACCEPTS, RUNS = "accepts", "runs"


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
        roles: frozenset[str] = frozenset({ACCEPTS, RUNS}),
    ) -> None:
        self.url = url
        self.roles = tuple(sorted(roles))
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
        self.role_processes = dict.fromkeys(self.roles, 1)  # alive with each of our roles, ourselves included
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

    def local_share(self, limit: int, role: str) -> int:
        """This process's part of a fleet-wide ``limit`` while Redis cannot be asked (at least 1): the limit
        divided among the processes that enforce it (``role``), so API processes share a quota and job runners
        a deployment's concurrency, neither counting the others."""
        return max(1, -(-limit // max(1, self.role_processes.get(role, self.live_processes))))

    async def beat(self) -> None:
        alive_ms = int(self.heartbeat_s * 3 * 1000)
        keys = [PREFIX + "processes", *(f"{PREFIX}processes:{role}" for role in self.roles)]
        try:
            counts = await self._heartbeat(keys=keys, args=[self.process, alive_ms])
        except Exception as exc:  # redis-py raises its own errors and OSError subclasses alike
            self.failed(exc)
            return
        self.live_processes = max(1, int(counts[0]))
        self.role_processes = {role: max(1, int(n)) for role, n in zip(self.roles, counts[1:], strict=True)}
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
            for key in (PREFIX + "processes", *(f"{PREFIX}processes:{role}" for role in self.roles)):
                await self.client.zrem(key, self.process)
        await self.client.aclose()
