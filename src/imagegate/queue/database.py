"""``queue_url = "database"``: the jobs table in PostgreSQL is the queue, shared by any number of processes.

``DatabaseQueue.enqueue`` only rings the doorbell (the committed row already is the queue entry); workers
claim through ``persistence.claims.PgClaims``. ``DatabaseJobEvents`` wakes this process's waiters on the
doorbell and, as the fallback, checks all of them in one batched query every ``poll_s`` and at once after
the doorbell reconnects. ``BacklogGauge`` reads the queue's depth and the measured throughput per model, for
the backlog limit's 429 and its Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.errors import RateLimited
from imagegate.persistence.claims import PgClaims, backlog_reading, ended_among
from imagegate.queue.doorbell import JOB_CHANGED, JOB_QUEUED, PgDoorbell
from imagegate.queue.inprocess import InProcessJobEvents, Subscription

log = logging.getLogger(__name__)


class DatabaseQueue:
    """Announces a committed job to every worker; the row itself is what they claim."""

    def __init__(self, doorbell: PgDoorbell) -> None:
        self._doorbell = doorbell

    async def enqueue(self, job_id: str, priority: int = 1) -> None:
        # claims read the priority from the row
        self._doorbell.ring(JOB_QUEUED, job_id)

    async def aclose(self) -> None:
        return None


class DatabaseJobEvents:
    """Job changes across processes: the local events, fed by the doorbell and by one batched check."""

    def __init__(self, engine: AsyncEngine, *, poll_s: float) -> None:
        self._engine = engine
        self._poll_s = poll_s
        self._local = InProcessJobEvents()
        self.doorbell: PgDoorbell | None = None
        self._recheck = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.checks = 0  # batched checks made (observable by tests and benchmarks)

    def publish(self, job_id: str) -> None:
        """A job changed here (its change committed): wake this process, and ring for the others."""
        self._local.publish(job_id)
        if self.doorbell is not None:
            self.doorbell.ring(JOB_CHANGED, job_id)

    def subscribe(self, job_id: str) -> Subscription:
        return self._local.subscribe(job_id)

    def heard(self, job_id: str) -> None:
        """The doorbell says ``job_id`` changed somewhere."""
        self._local.publish(job_id)

    def recheck_all(self) -> None:
        """Announcements may have been lost (the doorbell reconnected): check every waiter now."""
        self._recheck.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="imagegate-waiter-check")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_once(self) -> None:
        waited = self._local.subscribed()
        if not waited:
            return
        self.checks += 1
        for job_id in await ended_among(self._engine, waited):
            self._local.publish(job_id)

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._recheck.wait(), self._poll_s)
            self._recheck.clear()
            try:
                await self.check_once()
            except Exception as exc:  # the database is briefly unreachable: the next round tries again
                log.warning("could not check waiting jobs (%s: %s)", type(exc).__name__, exc)


@dataclass
class BacklogGauge:
    """The queue's depth and throughput per model, read every ``refresh_s`` by one task per process.

    A submission beyond ``limit`` queued jobs of its model is refused with 429; Retry-After is the time the
    measured throughput (jobs finished in the last minute) needs to drain the excess, at least one second.
    """

    engine: AsyncEngine
    limit: int
    refresh_s: float = 1.0
    window_s: float = 60.0
    queued: dict[str, int] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def check(self, model: str) -> None:
        depth = self.queued.get(model, 0)
        if depth < self.limit:
            return
        per_s = self.finished.get(model, 0) / self.window_s
        wait = (depth - self.limit + 1) / per_s if per_s > 0 else self.window_s
        retry_after = float(min(3600, max(1, math.ceil(wait))))
        raise RateLimited(
            f"{depth} jobs of {model} are already waiting (the limit is {self.limit}); try again in {retry_after:g} s.",
            retry_after_s=retry_after,
        )

    async def refresh(self) -> None:
        self.queued, self.finished = await backlog_reading(self.engine, self.window_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="imagegate-backlog")

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("could not read the queue's backlog (%s: %s)", type(exc).__name__, exc)
            await asyncio.sleep(self.refresh_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


@dataclass
class DatabaseQueueParts:
    queue: DatabaseQueue
    events: DatabaseJobEvents
    claims: PgClaims
    doorbell: PgDoorbell
    backlog: BacklogGauge | None

    async def aclose(self) -> None:
        if self.backlog is not None:
            await self.backlog.aclose()
        await self.events.aclose()
        await self.doorbell.aclose()


async def open_database_queue(
    engine: AsyncEngine, events_dsn: str, *, poll_s: float = 1.0, backlog_limit: int = 0
) -> DatabaseQueueParts:
    """Connect the doorbell and start the waiter check (and the backlog gauge when a limit is set)."""
    claims = PgClaims(engine)
    events = DatabaseJobEvents(engine, poll_s=poll_s)

    def reconnected() -> None:
        events.recheck_all()
        claims.work_may_wait()

    doorbell = PgDoorbell(events_dsn, on_queued=claims.work_may_wait, on_changed=events.heard, on_reconnect=reconnected)
    await doorbell.start()
    events.doorbell = doorbell
    events.start()
    backlog = BacklogGauge(engine, backlog_limit) if backlog_limit else None
    if backlog is not None:
        await backlog.refresh()
        backlog.start()
    return DatabaseQueueParts(DatabaseQueue(doorbell), events, claims, doorbell, backlog)
