"""A worker of the database queue: claims jobs for its free slots, runs them, and keeps their leases.

Back-pressure instead of a local queue: the worker claims only as many jobs as it has free slots, one claim
statement per model it serves (taking turns, so no model starves another), batch jobs only into its
``batch_slots`` (``core.jobs.batch_runners``), and waits for the doorbell (or ``idle_poll_s``) when nothing
is queued. One heartbeat statement renews the leases of all its running jobs;
a job missing from the answer was cancelled, taken over after this worker stalled, or requeued by the
sweeper, and its provider calls are stopped within that heartbeat (the job's watcher reads the row and
cancels the work; the fenced final write would refuse its result anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from imagegate.core.jobs import Job, JobPriority
from imagegate.core.ports import JobClaims
from imagegate.services.context import Services
from imagegate.services.execute import run_claimed

log = logging.getLogger(__name__)


class ClaimingWorker:
    def __init__(
        self,
        svc: Services,
        claims: JobClaims,
        *,
        slots: int,
        models: Sequence[str],
        batch_slots: int | None = None,
        worker_id: str,
        heartbeat_s: float,
        idle_poll_s: float = 2.0,
    ) -> None:
        self._svc = svc
        self._claims = claims
        self._slots = slots
        self._batch_slots = slots if batch_slots is None else batch_slots
        self._models = list(models)
        self.worker_id = worker_id
        self._heartbeat_s = heartbeat_s
        self._idle_poll_s = idle_poll_s
        self._running: dict[str, tuple[Job, asyncio.Task[Job | None]]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._turn = 0
        claims.on_work(self._wake.set)

    @property
    def models(self) -> list[str]:
        return list(self._models)

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        if not self._models or self._slots <= 0:
            return
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="imagegate-claims"),
            asyncio.create_task(self._heartbeat_loop(), name="imagegate-heartbeat"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        jobs = [task for _, task in self._running.values()]
        for job_task in jobs:
            job_task.cancel()
        waited: list[asyncio.Task[Any]] = [*self._tasks, *jobs]
        for each in waited:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await each
        self._tasks = []
        # Whatever was running goes back to the queue when its lease runs out (the sweeper); nothing is lost.

    async def claim_round(self) -> int:
        """Claim for the free slots, model by model; returns how many jobs were started."""
        started = 0
        count = len(self._models)
        lease_s = self._svc.config.job_lease_s
        for step in range(count):
            free = self._slots - len(self._running)
            if free <= 0:
                break
            model = self._models[(self._turn + step) % count]
            # Batch work only into the batch slots: a claim that could return more batch jobs than they have
            # room for takes interactive and async work only, and what is left is topped up with batch work.
            room = self._batch_slots - self._batch_running()
            claimed = await self._claims.claim(model, free, worker=self.worker_id, lease_s=lease_s, batch=room >= free)
            if 0 < room < free and len(claimed) < free:
                more = min(room, free - len(claimed))
                claimed += await self._claims.claim(model, more, worker=self.worker_id, lease_s=lease_s)
            for job, spec_doc in claimed:
                self._start(job, spec_doc)
            started += len(claimed)
        self._turn = (self._turn + 1) % count
        return started

    def _batch_running(self) -> int:
        return sum(1 for job, _ in self._running.values() if job.priority is JobPriority.BATCH)

    def _start(self, job: Job, spec_doc: dict[str, object]) -> None:
        task = asyncio.create_task(run_claimed(self._svc, job, dict(spec_doc)), name=f"imagegate-job-{job.id}")
        self._running[job.id] = (job, task)

        def done(_: asyncio.Task[Job | None]) -> None:
            self._running.pop(job.id, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("job %s ended with an error", job.id, exc_info=task.exception())
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    async def _claim_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                started = await self.claim_round()
            except Exception as exc:  # the database is unreachable for a moment: try again shortly
                log.warning("worker %s could not claim jobs (%s: %s)", self.worker_id, type(exc).__name__, exc)
                started = 0
            if started and len(self._running) < self._slots:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)

    async def heartbeat(self) -> set[str]:
        """Renew every lease held; returns the ids this worker no longer holds (their work is being stopped)."""
        held = {job.id: job.attempts for job, _ in self._running.values()}
        if not held:
            return set()
        kept = await self._claims.renew(held, lease_s=self._svc.config.job_lease_s)
        lost = set(held) - kept
        for job_id in lost:
            if job_id in self._running:
                log.warning("worker %s no longer holds job %s: stopping its provider calls", self.worker_id, job_id)
                self._svc.events.publish(job_id)  # wakes the job's watcher, which reads the row and cancels
        return lost

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._heartbeat_s
            await asyncio.sleep(self._heartbeat_s)
            late = loop.time() - due
            if late > self._svc.config.job_lease_s / 4:  # leases run out if this goes on: say why
                log.warning("worker %s: heartbeat %.1f s late (is the process starved of CPU?)", self.worker_id, late)
            try:
                await self.heartbeat()
            except Exception as exc:
                log.warning("worker %s could not renew its leases (%s: %s)", self.worker_id, type(exc).__name__, exc)
