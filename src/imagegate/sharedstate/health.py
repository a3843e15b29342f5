"""Breaker state and provider statistics shared by every process through Redis.

Statistics are *shared counters*: each process adds its calls to one hash per deployment and minute
(``imagegate:stats:<deployment>:<minute>``; outcome counts, latency-bin counts and sums), flushed every
``flush_s`` in one pipeline. A window is then the sum of its minutes whatever process served the calls, a
process that dies leaves its history behind, and headless workers (which nobody scrapes) are counted too.
Counters were chosen over publishing each process's figures because those vanish with their process and
would have to be re-merged on every read; the histograms add up exactly either way.

Breakers stay in each process (routing reads them on every call, without I/O), and their moves are shared:
a process whose breaker opens publishes until when; every process adopts an open it has not seen, and a
successful probe anywhere closes the breaker everywhere. Failures in a row are counted across the fleet too
(``imagegate:streak:<deployment>``: each sync adds this process's failures since its last success, or restarts
the count when it had one), so four processes seeing two failures each open the breaker at a threshold of
five, as one process would; the count is as fresh as the last sync (``sync_s``). While Redis is down each
process keeps its own breaker and figures (calls are kept and flushed once Redis is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from imagegate.metrics import Metrics
from imagegate.routing.breaker import BreakerState, CircuitBreaker
from imagegate.routing.router import Router
from imagegate.routing.stats import BUCKET_S, WINDOWS_S, Outcome, RollingStats, call_fields
from imagegate.sharedstate.link import PREFIX, RedisLink
from imagegate.sharedstate.slots import RedisSlots

log = logging.getLogger(__name__)

_RETAIN_S = max(WINDOWS_S.values()) + 3600
_MINUTES = max(WINDOWS_S.values()) // BUCKET_S


def stats_key(name: str, minute: int) -> str:
    return f"{PREFIX}stats:{name}:{minute}"


def breaker_key(name: str) -> str:
    return f"{PREFIX}breaker:{name}"


def streak_key(name: str) -> str:
    return f"{PREFIX}streak:{name}"


_STREAK_TTL_S = 3600  # a streak nobody added to for an hour is stale


class FleetHealth:
    """The router's ``HealthObserver``: shares its calls and breaker moves, and reads everyone's back."""

    def __init__(
        self,
        link: RedisLink,
        router: Router,
        slots: RedisSlots | None,
        *,
        metrics: Metrics | None = None,
        sync_s: float = 1.0,
        snapshot_cache_s: float = 2.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._router = router
        self._slots = slots
        self._metrics = metrics
        self._sync_s = sync_s
        self._cache_s = snapshot_cache_s
        self._wall = wall_clock
        self._pending: dict[tuple[str, int], Counter[str]] = {}
        self._breaker_news: dict[str, dict[str, Any]] = {}  # what we must tell the others, latest per deployment
        # failures in a row since the last sync, per deployment: (a success came first, failures after it)
        self._streaks: dict[str, tuple[bool, int]] = {}
        self._closed_seen: dict[str, float] = {name.name: wall_clock() for name in router.deployments}
        self._cached: tuple[float, dict[str, RollingStats]] | None = None
        self._task: asyncio.Task[None] | None = None

    # HealthObserver (called synchronously by the router)
    def call_recorded(self, name: str, outcome: Outcome, latency_s: float, ttfb_s: float | None) -> None:
        minute = int(self._wall() // BUCKET_S)
        self._pending.setdefault((name, minute), Counter()).update(call_fields(outcome, latency_s, ttfb_s))
        restarted, failures = self._streaks.get(name, (False, 0))
        if outcome in (Outcome.SUCCESS, Outcome.REFUSAL):  # as the breaker counts them: the upstream is up
            self._streaks[name] = (True, 0)
        elif outcome is not Outcome.REJECTED:
            self._streaks[name] = (restarted, failures + 1)

    def breaker_moved(self, name: str, breaker: CircuitBreaker, was: BreakerState) -> None:
        now = breaker.state
        if now is BreakerState.OPEN and was is not BreakerState.OPEN:
            until = self._wall() + breaker.retry_after_s()
            self._breaker_news[name] = {"open_until": until, "cooldown_s": breaker.cooldown_s}
        elif now is BreakerState.CLOSED and was is not BreakerState.CLOSED:
            at = self._wall()
            self._closed_seen[name] = at
            self._breaker_news[name] = {"closed_at": at}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sync_forever(), name="fleet-health-sync")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sync()  # the last calls of this process still count

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sync_s)
            await self.sync()

    async def sync(self) -> None:
        """Flush our calls and breaker news, adopt the others' breaker moves. Never raises."""
        if not self._link.up:
            return
        pending, self._pending = self._pending, {}
        news, self._breaker_news = self._breaker_news, {}
        streaks, self._streaks = self._streaks, {}
        names = [d.name for d in self._router.deployments]
        try:
            async with self._link.client.pipeline(transaction=False) as pipe:
                for name, (restarted, failures) in streaks.items():
                    if restarted:
                        pipe.set(streak_key(name), failures, ex=_STREAK_TTL_S)
                    elif failures:
                        pipe.incrby(streak_key(name), failures)
                        pipe.expire(streak_key(name), _STREAK_TTL_S)
                for (name, minute), fields in pending.items():
                    key = stats_key(name, minute)
                    for field, value in fields.items():
                        pipe.hincrbyfloat(key, field, value)
                    pipe.expire(key, _RETAIN_S)
                for name, message in news.items():
                    ttl = max(1, int(message.get("cooldown_s", 3600))) if "open_until" in message else 3600
                    pipe.set(breaker_key(name), json.dumps(message), ex=ttl + 60)
                pipe.mget([streak_key(n) for n in names])
                pipe.mget([breaker_key(n) for n in names])
                replies = await pipe.execute()
        except Exception as exc:  # keep what we could not flush for the next try
            self._link.failed(exc)
            for slot, fields in pending.items():
                self._pending.setdefault(slot, Counter()).update(fields)
            for name, message in news.items():
                self._breaker_news.setdefault(name, message)
            for name, (restarted, failures) in streaks.items():  # older than anything recorded since
                later_restart, later = self._streaks.get(name, (False, 0))
                self._streaks[name] = (later_restart, later) if later_restart else (restarted, failures + later)
            return
        self._link.succeeded()
        self._open_on_fleet_streaks(names, replies[-2])
        self._adopt(names, replies[-1])

    def _open_on_fleet_streaks(self, names: Sequence[str], values: Sequence[bytes | None]) -> None:
        for name, raw in zip(names, values, strict=True):
            breaker = self._router.health(name).breaker
            if raw is None or int(raw) < breaker.failure_threshold:
                continue
            was = breaker.state
            if breaker.open_for_fleet():
                log.warning(
                    "deployment %s: circuit breaker opened on %s failures in a row across processes", name, int(raw)
                )
                self.breaker_moved(name, breaker, was)  # told to the others at the next sync

    def _adopt(self, names: Sequence[str], values: Sequence[bytes | None]) -> None:
        now = self._wall()
        for name, raw in zip(names, values, strict=True):
            if raw is None:
                continue
            message = json.loads(raw)
            breaker = self._router.health(name).breaker
            if "open_until" in message and message["open_until"] > now:
                if breaker.state is BreakerState.CLOSED:
                    log.warning("deployment %s: circuit breaker opened by another process", name)
                breaker.adopt_open(message["open_until"] - now, message["cooldown_s"])
            elif "closed_at" in message and message["closed_at"] > self._closed_seen.get(name, 0.0):
                self._closed_seen[name] = message["closed_at"]
                breaker.adopt_closed()
            if self._metrics is not None:
                self._metrics.breaker_open.labels(deployment=name).set(0 if breaker.state is BreakerState.CLOSED else 1)

    async def fleet_stats(self) -> dict[str, RollingStats] | None:
        """Every process's calls of the last 24 h, per deployment; None while Redis is down."""
        if not self._link.up:
            return None
        if self._cached is not None and time.monotonic() - self._cached[0] < self._cache_s:
            return self._cached[1]
        last = int(self._wall() // BUCKET_S)
        minutes = range(last - _MINUTES + 1, last + 1)
        names = [d.name for d in self._router.deployments]
        try:
            async with self._link.client.pipeline(transaction=False) as pipe:
                for name in names:
                    for minute in minutes:
                        pipe.hgetall(stats_key(name, minute))
                replies = await pipe.execute()
        except Exception as exc:
            self._link.failed(exc)
            return None
        self._link.succeeded()
        merged: dict[str, RollingStats] = {}
        replies_iter = iter(replies)
        for name in names:
            stats = RollingStats(clock=self._wall)
            for minute in minutes:
                fields = next(replies_iter)
                if fields:
                    stats.add_fields(minute, {k.decode(): float(v) for k, v in fields.items()})
            for (pending_name, minute), fields in self._pending.items():  # ours, not flushed yet
                if pending_name == name:
                    stats.add_fields(minute, dict(fields))
            merged[name] = stats
        self._cached = (time.monotonic(), merged)
        return merged

    async def snapshot(self) -> tuple[list[dict[str, Any]], str]:
        """``/v1/providers``' rows with every process's figures, and their scope (``fleet`` or ``process``)."""
        stats = await self.fleet_stats()
        limited = [d.name for d in self._router.deployments if d.max_concurrency]  # only those have slots
        in_flight = await self._slots.fleet_in_use(limited) if self._slots is not None and stats is not None else None
        scope = "fleet" if stats is not None else "process"
        return self._router.snapshot(fleet_stats=stats, fleet_in_flight=in_flight), scope

    async def update_metrics(self) -> None:
        """Set the fleet gauges (at scrape time) from the shared counters; left as they were while Redis is down."""
        metrics = self._metrics
        if metrics is None:
            return
        stats = await self.fleet_stats()
        if stats is None:
            return
        metrics.fleet_processes.set(self._link.live_processes)
        for name, rolling in stats.items():
            for window, seconds in WINDOWS_S.items():
                figures = rolling.window(seconds)
                for outcome in Outcome:
                    count = figures[_FIGURE[outcome]]
                    metrics.fleet_provider_calls.labels(deployment=name, outcome=outcome.value, window=window).set(
                        count
                    )
        limited = [d.name for d in self._router.deployments if d.max_concurrency]
        in_use = await self._slots.fleet_in_use(limited) if self._slots is not None else None
        for name, count in (in_use or {}).items():
            metrics.fleet_in_flight.labels(deployment=name).set(count)


_FIGURE = {
    Outcome.SUCCESS: "successes",
    Outcome.REFUSAL: "refusals",
    Outcome.EMPTY: "empty",
    Outcome.ERROR: "errors",
    Outcome.REJECTED: "rejected",
}
