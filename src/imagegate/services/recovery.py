"""Finding jobs a dead process left behind: running past their lease, or (at start-up) queued but undelivered.

A job whose worker died is queued again while it has attempts left, otherwise failed with a clear error, its
hold released; nothing stays "running" forever. Only the jobs it requeues are announced again: queued jobs
need a re-delivery only when an in-process queue was lost with its process (``redeliver_queued`` at start-up);
the database queue's rows are claimed where they are.
"""

from __future__ import annotations

import logging
from datetime import datetime

from imagegate.core.jobs import JobError, JobStatus
from imagegate.services.billing import record_settlement, with_charge
from imagegate.services.context import Services

log = logging.getLogger(__name__)


async def recover_jobs(
    svc: Services, *, stale_before: datetime | None = None, redeliver_queued: bool = False
) -> tuple[int, int]:
    """Requeue or fail RUNNING jobs whose lease ended before ``stale_before`` (default: now); with
    ``redeliver_queued`` also enqueue every QUEUED job again. Returns (requeued, failed)."""
    cutoff = stale_before or svc.clock()
    requeued = failed = 0
    back: list[tuple[str, int]] = []  # (job id, priority): a recovered batch job stays behind interactive ones
    async with svc.uow(scan=True) as uow:
        stale = await uow.jobs.expired_leases(cutoff)
        for job in stale:
            # Images a killed attempt stored before dying have no rows (rows are written with the job's end):
            # collect them before the job can run again, so nothing in the store is left without a row.
            await discard_unrecorded_outputs(svc, job.id)
            if job.attempts < svc.config.max_attempts:
                moved = job.moved_to(JobStatus.QUEUED, lease_expires_at=None)
                requeued += 1
            else:
                moved = job.moved_to(
                    JobStatus.FAILED,
                    finished_at=svc.clock(),
                    lease_expires_at=None,
                    error=JobError(
                        "internal_error",
                        f"The worker running this job stopped {job.attempts} times; giving up.",
                    ),
                )
                failed += 1
            moved, settled = with_charge(moved, None) if moved.status.terminal else (moved, None)
            written = await uow.jobs.update(moved, expected_status=JobStatus.RUNNING, expected_attempts=job.attempts)
            if written and settled is not None:
                await record_settlement(uow, moved, settled, svc.clock())  # gave up: the hold comes back
            if written and not moved.status.terminal:
                back.append((job.id, int(job.priority)))
        await uow.commit()
        if redeliver_queued:
            back = await uow.jobs.ids_with_status(JobStatus.QUEUED)
    for job in stale:
        svc.events.publish(job.id)
    for job_id, priority in back:
        await svc.queue.enqueue(job_id, priority)
    if requeued or failed:
        log.warning("recovered jobs left by a stopped worker: %d requeued, %d failed", requeued, failed)
    return requeued, failed


async def discard_unrecorded_outputs(svc: Services, job_id: str) -> int:
    """Delete the stored outputs of an unfinished job (none of them has a row yet); how many went."""
    keys = await svc.store.list_keys(f"outputs/{job_id}/")
    for key in keys:
        await svc.store.delete(key)
    if keys:
        log.info("job %s: collected %d images a stopped attempt had stored", job_id, len(keys))
    return len(keys)
