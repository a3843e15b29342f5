"""Jobs as tasks: a key lists its jobs and cancels one that has not finished.

Cancelling a running job moves it to CANCELLED at once; the worker still running it then finds its fenced
final write refused and discards what it made, so a cancelled job never delivers (or, later, bills) images.
"""

from __future__ import annotations

from imagegate.core.jobs import Job, JobError, JobStatus
from imagegate.core.ports import ApiKey
from imagegate.errors import Conflict, ImagegateError, InvalidRequest
from imagegate.services.billing import record_settlement, with_charge
from imagegate.services.context import Services
from imagegate.services.queries import get_job

MAX_PAGE = 100


async def list_jobs(svc: Services, principal: ApiKey, *, limit: int = 20, before: str | None = None) -> list[Job]:
    """A page of the key's jobs, newest first; ask for ``limit + 1`` to learn whether more remain."""
    if not 1 <= limit <= MAX_PAGE + 1:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    async with svc.uow(scan=True) as uow:
        return await uow.jobs.list_for_key(principal.id, limit=limit, before=before)


async def cancel_job(svc: Services, principal: ApiKey, job_id: str) -> Job:
    job = await get_job(svc, principal, job_id)
    if job.status.terminal:
        raise Conflict(f"Job {job_id} has already finished ({job.status}); there is nothing to cancel.")
    return await cancel_unfinished(svc, job)


async def cancel_unfinished(svc: Services, job: Job, *, reason: ImagegateError | None = None) -> Job:
    """Cancel ``job`` (whoever owns it) and give its hold back; ``reason``, when given, is kept as its error.

    Raises ``Conflict`` when it finished meanwhile: its result stands.
    """
    error = JobError(reason.code, reason.message) if reason is not None else None
    cancelled, settled = with_charge(
        job.moved_to(JobStatus.CANCELLED, finished_at=svc.clock(), lease_expires_at=None, error=error), None
    )
    async with svc.uow() as uow:
        moved = await uow.jobs.update(cancelled, expected_status=job.status, expected_attempts=job.attempts)
        if moved:
            await record_settlement(uow, cancelled, settled, svc.clock())  # the whole hold comes back
        await uow.commit()
    if not moved:  # it moved on meanwhile (started, or finished): look again
        async with svc.uow() as uow:
            current = await uow.jobs.get(job.id)
        if current is None or current.status.terminal:
            raise Conflict(f"Job {job.id} has already finished; there is nothing to cancel.")
        return await cancel_unfinished(svc, current, reason=reason)
    svc.events.publish(job.id)
    return cancelled
