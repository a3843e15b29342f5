"""Jobs as tasks: a key lists its jobs and cancels one that has not finished.

Cancelling a running job moves it to CANCELLED at once; the worker still running it then finds its fenced
final write refused and discards what it made, so a cancelled job never delivers (or, later, bills) images.
"""

from __future__ import annotations

from imagegate.core.jobs import Job, JobStatus
from imagegate.core.ports import ApiKey
from imagegate.errors import Conflict, InvalidRequest
from imagegate.services.billing import record_settlement, with_charge
from imagegate.services.context import Services
from imagegate.services.queries import get_job

MAX_PAGE = 100


async def list_jobs(svc: Services, principal: ApiKey, *, limit: int = 20, before: str | None = None) -> list[Job]:
    """A page of the key's jobs, newest first; ask for ``limit + 1`` to learn whether more remain."""
    if not 1 <= limit <= MAX_PAGE + 1:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    async with svc.uow() as uow:
        return await uow.jobs.list_for_key(principal.id, limit=limit, before=before)


async def cancel_job(svc: Services, principal: ApiKey, job_id: str) -> Job:
    job = await get_job(svc, principal, job_id)
    if job.status.terminal:
        raise Conflict(f"Job {job_id} has already finished ({job.status}); there is nothing to cancel.")
    cancelled, settled = with_charge(
        job.moved_to(JobStatus.CANCELLED, finished_at=svc.clock(), lease_expires_at=None), None
    )
    async with svc.uow() as uow:
        moved = await uow.jobs.update(cancelled, expected_status=job.status, expected_attempts=job.attempts)
        if moved:
            await record_settlement(uow, cancelled, settled, svc.clock())  # the whole hold comes back
        await uow.commit()
    if not moved:  # it moved on meanwhile (started, or finished): look again
        return await cancel_job(svc, principal, job_id)
    svc.events.publish(job_id)
    return cancelled
