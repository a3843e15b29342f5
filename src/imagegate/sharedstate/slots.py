"""Each deployment's ``max_concurrency`` across every process: leased slots in a Redis sorted set.

A slot is a member of ``imagegate:slots:<deployment>`` scored by when its lease ends (Redis' clock). Taking one
first drops expired leases, then adds ours only if fewer than the limit remain, in one Lua script, so two
processes never both take the last slot. A holder renews its lease every third of ``lease_s``; a process that
is killed simply stops renewing, and its slots come free within ``lease_s``. Waiters poll with backoff (and
wake at once when a slot of this process is given back).

While Redis is unreachable a process takes slots from a local semaphore sized to its share of the limit
(the limit divided by the processes last seen alive), so work continues, bounded, and nothing about money
depends on it. Slots taken locally are given back locally; new calls use Redis again once it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from imagegate.routing.shared import LocalSlots
from imagegate.sharedstate.link import PREFIX, RUNS, RedisLink

log = logging.getLogger(__name__)

_NOW_MS = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS[1] the deployment's set; ARGV: limit, lease (ms), our token. Returns {taken (0/1), slots now in use}.
_ACQUIRE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
if used < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
  return {1, used + 1}
end
return {0, used}
"""
)

# KEYS[1] the set; ARGV: lease (ms), our token. Returns 1 while we still hold the slot.
_RENEW = (
    _NOW_MS
    + """
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
  return 1
end
return 0
"""
)

# KEYS: every deployment's set. Returns the live slots of each.
_COUNT = (
    _NOW_MS
    + """
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  out[i] = redis.call('ZCARD', key)
end
return out
"""
)


def slot_key(name: str) -> str:
    return f"{PREFIX}slots:{name}"


class RedisSlots:
    """``ConcurrencySlots`` shared through Redis, failing open to a local share."""

    def __init__(
        self, link: RedisLink, *, lease_s: float = 30.0, poll_s: float = 0.02, max_poll_s: float = 0.25
    ) -> None:
        self._link = link
        self.lease_ms = int(lease_s * 1000)
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._acquire = link.client.register_script(_ACQUIRE)
        self._renew = link.client.register_script(_RENEW)
        self._count = link.client.register_script(_COUNT)
        self._fallback: dict[int, LocalSlots] = {}  # by share size: a share change gets a fresh gate
        self._known: dict[str, int] = {}  # fleet-wide slots in use, as last seen
        self._freed = asyncio.Event()

    def in_use(self, name: str) -> int:
        local = sum(slots.in_use(name) for slots in self._fallback.values())
        return self._known.get(name, 0) + local

    @asynccontextmanager
    async def hold(self, name: str, limit: int) -> AsyncIterator[None]:
        token = await self._take(name, limit)
        if token is None:  # Redis is down: this process's share, locally
            share = self._link.local_share(limit, RUNS)
            async with self._fallback.setdefault(share, LocalSlots()).hold(name, share):
                yield
            return
        renewer = asyncio.create_task(self._keep(name, token), name=f"slot-lease-{name}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self._give_back(name, token)

    async def _take(self, name: str, limit: int) -> str | None:
        """Our slot's token once one is free; None when Redis cannot be asked."""
        token = f"{self._link.process}:{uuid.uuid4().hex[:12]}"
        wait = self._poll_s
        while self._link.up:
            try:
                taken, used = await self._acquire(keys=[slot_key(name)], args=[limit, self.lease_ms, token])
            except Exception as exc:
                self._link.failed(exc)
                return None
            self._link.succeeded()
            self._known[name] = int(used)
            if taken:
                return token
            self._freed.clear()
            with contextlib.suppress(TimeoutError):  # a local give-back, or time to ask again
                async with asyncio.timeout(wait):
                    await self._freed.wait()
            wait = min(self._max_poll_s, wait * 2)
        return None

    async def _keep(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                held = await self._renew(keys=[slot_key(name)], args=[self.lease_ms, token])
            except Exception as exc:  # the lease runs on; the next renewal may reach Redis again
                self._link.failed(exc)
                continue
            if not held:
                log.warning("deployment %s: a concurrency slot's lease ran out while in use", name)
                return

    async def _give_back(self, name: str, token: str) -> None:
        try:
            await self._link.client.zrem(slot_key(name), token)
            self._known[name] = max(0, self._known.get(name, 1) - 1)
        except Exception as exc:  # the lease expires by itself within lease_s
            self._link.failed(exc)
        self._freed.set()

    async def fleet_in_use(self, names: list[str]) -> dict[str, int] | None:
        """Every process's slots in use per deployment; None while Redis is down."""
        if not names or not self._link.up:
            return None
        try:
            counts = await self._count(keys=[slot_key(n) for n in names])
        except Exception as exc:
            self._link.failed(exc)
            return None
        return {name: int(count) for name, count in zip(names, counts, strict=True)}
