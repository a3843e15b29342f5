"""The jobs and chores a process runs: job runners, the sweeper and purges, and the webhook deliverer.

With the in-process queue, ``concurrency`` tasks take job ids from it, only ``batch_runners`` of them batch
jobs' (so a batch job waiting for a deployment's batch slot never holds the last runner). With the database queue a
``ClaimingWorker`` claims from the jobs table instead, and the sweeper and purges run in whichever process
holds the chore lock for that run, so a fleet sweeps once per interval, not once per process. Webhook
deliveries are claimed with a lease row by row, so every process may send them and none sends one twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

from imagegate.core.jobs import batch_runners
from imagegate.core.ports import JobClaims, LocalQueue, WebhookSender
from imagegate.services.batches import expire_batches
from imagegate.services.claiming import ClaimingWorker
from imagegate.services.context import Services
from imagegate.services.execute import execute_job
from imagegate.services.files import delete_expired_files
from imagegate.services.idempotency import purge_expired
from imagegate.services.recovery import recover_jobs
from imagegate.services.uploads import delete_expired_uploads
from imagegate.services.webhooks import deliver_due_webhooks

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(
        self,
        svc: Services,
        *,
        concurrency: int,
        sweep_interval_s: float,
        webhook_sender: WebhookSender | None = None,
        webhook_poll_s: float = 1.0,
        local_queue: LocalQueue | None = None,
        claims: JobClaims | None = None,
        claim_models: Sequence[str] = (),
        worker_id: str = "",
        heartbeat_s: float = 10.0,
        batch_share: float = 0.5,
    ) -> None:
        self._svc = svc
        self._concurrency = concurrency
        self._batch_runners = batch_runners(concurrency, batch_share)
        self._sweep_interval_s = sweep_interval_s
        self._webhook_sender = webhook_sender
        self._webhook_poll_s = webhook_poll_s
        # Without claims the jobs come from the in-process queue, the services' own unless one is given.
        self._local_queue = local_queue or (cast(LocalQueue, svc.queue) if claims is None else None)
        self._claims = claims
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()  # workers running a job now (the others wait on the queue)
        self._stopping = False
        self.claimer: ClaimingWorker | None = None
        if claims is not None:
            self.claimer = ClaimingWorker(
                svc,
                claims,
                slots=concurrency,
                batch_slots=self._batch_runners,
                models=claim_models,
                worker_id=worker_id,
                heartbeat_s=heartbeat_s,
            )

    async def start(self, *, recover: bool, recover_all_running: bool) -> None:
        """Recover what a previous process left (when ``recover``), then start working.

        ``recover_all_running``: this process is the only worker (in-process queue), so every RUNNING job
        is an orphan of a previous run, whatever its lease says. Without ``recover`` (a one-off CLI run
        beside a server) the pool only runs what this process enqueues, and sweeps nothing.
        """
        if recover and self._claims is None:
            far_future = self._svc.clock() + timedelta(days=36500)
            await recover_jobs(
                self._svc, stale_before=far_future if recover_all_running else None, redeliver_queued=True
            )
        if self._local_queue is not None:
            queue = self._local_queue
            self._workers = [
                asyncio.create_task(self._work(i, queue), name=f"imagegate-worker-{i}")
                for i in range(self._concurrency)
            ]
        self._tasks = list(self._workers)
        if self.claimer is not None and recover:
            self.claimer.start()
        if recover:
            self._tasks.append(asyncio.create_task(self._sweep(), name="imagegate-sweeper"))
            if self._webhook_sender is not None:
                self._tasks.append(asyncio.create_task(self._webhooks(self._webhook_sender), name="imagegate-webhooks"))

    async def _work(self, number: int, queue: LocalQueue) -> None:
        takes_batch = number < self._batch_runners  # the others are kept for interactive and async work
        while True:
            job_id = await queue.dequeue(batch=takes_batch)
            self._busy.add(number)
            try:
                await execute_job(self._svc, job_id)
            except Exception:  # keep the worker alive; the sweeper recovers the job
                log.exception("worker %d could not run job %s", number, job_id)
            finally:
                self._busy.discard(number)
            if self._stopping:
                return

    @property
    def database_clock(self) -> Callable[[], Awaitable[datetime]] | None:
        """The database's clock when processes share the database queue; None: this process's own is the truth."""
        return self._claims.database_now if self._claims is not None else None

    async def sweep_once(self) -> bool:
        """One run of the chores; False when another process holds the chore lock and runs them."""
        if self._claims is None:
            await self._chores()
            return True
        async with self._claims.chore_lock(stall_s=max(1.0, self._svc.config.job_lease_s)) as mine:
            if mine:
                await self._chores(stale_before=await self._claims.database_now())
            return mine

    async def _chores(self, stale_before: datetime | None = None) -> None:
        # With the database queue the cutoff is the database's clock: leases were set in it.
        await recover_jobs(self._svc, stale_before=stale_before)
        await delete_expired_files(self._svc)
        await delete_expired_uploads(self._svc)
        await expire_batches(self._svc)
        await purge_expired(self._svc)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep_once()
            except Exception:
                log.exception("sweeper run failed")

    async def _webhooks(self, sender: WebhookSender) -> None:
        while True:
            try:
                await deliver_due_webhooks(self._svc, sender, clock=self.database_clock)
            except Exception:
                log.exception("webhook delivery run failed")
            await asyncio.sleep(self._webhook_poll_s)

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop in bounded time: take no more work, give running jobs ``grace_s`` to finish, cancel the rest.

        A job cancelled here keeps its RUNNING row and lease; the next process's recovery (or the sweeper of
        another) runs it again, fenced by its attempt number, so nothing is lost or charged twice.
        """
        self._stopping = True
        if self.claimer is not None:
            await self.claimer.stop()
        busy = [task for number, task in enumerate(self._workers) if number in self._busy]
        for task in self._tasks:
            if task not in busy:
                task.cancel()
        if busy and grace_s > 0:
            _, still_running = await asyncio.wait(busy, timeout=grace_s)
            if still_running:
                log.warning("%d job(s) still running after %.0f s; left for recovery", len(still_running), grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._workers = []
