"""The database queue's statements on PostgreSQL: claims, the lease heartbeat, waiter checks, backlog readings.

The job row is the queue entry. A claim is one statement per model: it picks the most urgent, oldest queued
rows through the partial index ``ix_jobs_queued_claim`` with ``FOR UPDATE SKIP LOCKED`` (so claimers never wait
on each other and never take the same row) and moves them to RUNNING in the same statement. Leases are in the
database's time (``now()``), so the clocks of the machines running workers do not matter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.core.jobs import TERMINAL_STATUSES, Job, JobPriority
from imagegate.persistence.repositories import _JOB_COLUMNS, _job
from imagegate.persistence.tables import jobs

#: The key of the advisory lock that elects the process running the shared chores (sweeper, purges).
CHORE_LOCK_KEY = 0x1A6E_6A7E

# The inner SELECT is what the partial index serves: equality on model, then its (priority, created_at) order
# (``max_priority`` cuts that order short: a claimer with no room for batch work stops before it).
PICK_QUEUED = (
    "SELECT id FROM jobs WHERE status = 'queued' AND model = :model AND priority <= :max_priority "
    "ORDER BY priority, created_at LIMIT :limit FOR UPDATE SKIP LOCKED"
)

_CLAIM = text(
    f"""
    UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = now(),
        lease_expires_at = now() + make_interval(secs => :lease_s), worker = :worker,
        progress_done = NULL, progress_total = NULL
    WHERE id IN ({PICK_QUEUED})
    RETURNING {", ".join(column.name for column in _JOB_COLUMNS)}, spec
    """
).columns(*_JOB_COLUMNS, jobs.c.spec)

# Only rows still RUNNING at the attempt the worker holds are renewed: a job cancelled, taken over or requeued
# by the sweeper is not, and the worker learns it from the ids missing in the answer.
_RENEW = text(
    """
    UPDATE jobs SET lease_expires_at = now() + make_interval(secs => :lease_s)
    FROM unnest(CAST(:ids AS text[]), CAST(:attempts AS integer[])) AS held(id, attempts)
    WHERE jobs.id = held.id AND jobs.attempts = held.attempts AND jobs.status = 'running'
    RETURNING jobs.id
    """
)

_TERMINAL = ", ".join(f"'{status.value}'" for status in TERMINAL_STATUSES)
_ENDED_AMONG = text(f"SELECT id FROM jobs WHERE id = ANY(CAST(:ids AS text[])) AND status IN ({_TERMINAL})")

_QUEUED_BY_MODEL = text("SELECT model, count(*) FROM jobs WHERE status = 'queued' GROUP BY model")
_FINISHED_BY_MODEL = text(
    "SELECT model, count(*) FROM jobs WHERE finished_at IS NOT NULL "
    "AND finished_at > now() - make_interval(secs => :window_s) GROUP BY model"
)


class PgClaims:
    """``JobClaims`` on an engine; wake-ups come from the doorbell the caller registers with ``on_work``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._listeners: list[Any] = []

    async def claim(
        self, model: str, limit: int, *, worker: str, lease_s: float, batch: bool = True
    ) -> list[tuple[Job, dict[str, Any]]]:
        top = JobPriority.BATCH if batch else JobPriority.BATCH - 1
        values = {"model": model, "limit": limit, "worker": worker, "lease_s": float(lease_s), "max_priority": top}
        async with self._engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, values)).all()
        claimed = [(_job(row), dict(row.spec)) for row in rows]
        # RETURNING keeps no order: start them most urgent first, as they were picked.
        claimed.sort(key=lambda pair: (pair[0].priority, pair[0].created_at, pair[0].id))
        return claimed

    async def renew(self, held: Mapping[str, int], *, lease_s: float) -> set[str]:
        if not held:
            return set()
        values = {"ids": list(held), "attempts": list(held.values()), "lease_s": float(lease_s)}
        async with self._engine.begin() as conn:
            return {str(job_id) for job_id in (await conn.execute(_RENEW, values)).scalars()}

    async def database_now(self) -> datetime:
        async with self._engine.connect() as conn:
            now: datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
        return now

    def on_work(self, callback: Any) -> None:
        self._listeners.append(callback)

    def work_may_wait(self) -> None:
        """The doorbell rang (or reconnected): tell every claimer to look."""
        for callback in self._listeners:
            callback()

    @asynccontextmanager
    async def chore_lock(self, *, stall_s: float = 30.0) -> AsyncIterator[bool]:
        # A transaction-scoped lock, held for one run of the chores and not for the life of the process. Should
        # its holder stall mid-run (SIGSTOP, a long pause), PostgreSQL ends the idle transaction after
        # ``stall_s`` and the lock passes on, so one frozen process never stops the fleet's sweeping.
        async with self._engine.connect() as conn:
            await conn.execute(
                text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)"),
                {"ms": str(int(stall_s * 1000))},
            )
            taken = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": CHORE_LOCK_KEY})
            got = bool(taken.scalar())
            try:
                yield got
            finally:
                with contextlib.suppress(Exception):  # a connection ended by that timeout has nothing to roll back
                    await conn.rollback()


async def ended_among(engine: AsyncEngine, job_ids: Collection[str]) -> list[str]:
    """Which of ``job_ids`` are terminal: the one batched check of a process's waiters."""
    if not job_ids:
        return []
    async with engine.connect() as conn:
        return [str(job_id) for job_id in (await conn.execute(_ENDED_AMONG, {"ids": list(job_ids)})).scalars()]


async def backlog_reading(engine: AsyncEngine, window_s: float) -> tuple[dict[str, int], dict[str, int]]:
    """Queued jobs by model, and jobs finished by model within the last ``window_s`` seconds."""
    async with engine.connect() as conn:
        queued = {str(m): int(c) for m, c in (await conn.execute(_QUEUED_BY_MODEL)).all()}
        finished = {str(m): int(c) for m, c in (await conn.execute(_FINISHED_BY_MODEL, {"window_s": window_s}))}
    return queued, finished
