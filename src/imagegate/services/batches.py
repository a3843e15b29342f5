"""Batches: many requests submitted at once as ordinary jobs at the lowest priority, read back together.

A batch is a row naming its requests in order: each is either a job (submitted at ``JobPriority.BATCH``, so
interactive and async work is claimed first) or the error that kept it from becoming one (a bad request, or
no credit for it) — a request's error never fails the other requests. Its state is derived from its jobs:
pending while none has started, running while any is unfinished; once all have ended it is succeeded when at
least one request was answered and failed when none was. A batch still unfinished ``batch_ttl_s`` after it was
created (Google's 48 hours) expires: ``expire_batches`` cancels what has not finished (``BatchExpired``, the
hold comes back) and the batch is expired, its finished requests' answers kept. Cancelling cancels the
unfinished jobs and the batch is cancelled. Jobs are billed like every job, per delivered image; a batch
job's price is ``batch_price_percent`` of the usual (see ``billing``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from imagegate.core.ids import random_base62
from imagegate.core.jobs import Job, JobPriority, JobSpec, JobStatus
from imagegate.core.ports import ApiKey, BatchRecord
from imagegate.errors import BatchExpired, Conflict, ImagegateError, NotFound
from imagegate.services.context import Services
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job, cancel_unfinished

PENDING = "PENDING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
ENDED = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request of a batch as the dialect parsed it: a job to make, or why it cannot be one."""

    key: str | None
    metadata: dict[str, Any] | None
    spec: JobSpec | None = None
    error: ImagegateError | None = None


@dataclass(frozen=True, slots=True)
class BatchView:
    """A batch with its jobs (by id) and the state they add up to."""

    record: BatchRecord
    jobs: dict[str, Job]
    state: str


async def create_batch(
    svc: Services,
    principal: ApiKey,
    *,
    model: str,
    requests: Sequence[BatchRequest],
    display_name: str | None,
    input_file: str | None,
    request_id: str | None = None,
) -> BatchView:
    entries: list[dict[str, Any]] = []
    for request in requests:
        entry: dict[str, Any] = {"key": request.key, "metadata": request.metadata}
        error = request.error
        if request.spec is not None and error is None:
            try:
                job = await submit_job(svc, principal, request.spec, request_id=request_id, priority=JobPriority.BATCH)
                entry["job_id"] = job.id
            except ImagegateError as exc:  # e.g. no credit left for this one: the others still run
                error = exc
        if error is not None:
            entry["error"] = {"code": error.code, "kind": getattr(error, "kind", "internal"), "message": error.message}
        entries.append(entry)
    now = svc.clock()
    record = BatchRecord(
        id=random_base62(16).lower(),
        key_id=principal.id,
        model=model,
        display_name=display_name,
        cancelled=False,
        created_at=now,
        updated_at=now,
        doc={"requests": entries, "input_file": input_file},
    )
    async with svc.uow() as uow:
        await uow.batches.add(record)
        await uow.commit()
    return await get_batch(svc, principal, record.id)


async def get_batch(svc: Services, principal: ApiKey, batch_id: str) -> BatchView:
    async with svc.uow() as uow:
        record = await uow.batches.get(batch_id)
        if record is None or (record.key_id != principal.id and not principal.is_admin):
            raise NotFound(f"Batch batches/{batch_id} not found.", field="name")
        jobs: dict[str, Job] = {}
        for entry in record.doc["requests"]:
            if entry.get("job_id") and (job := await uow.jobs.get(entry["job_id"])) is not None:
                jobs[job.id] = job
    state = _state(record, jobs)
    if state in (PENDING, RUNNING) and record.created_at <= svc.clock() - timedelta(seconds=svc.config.batch_ttl_s):
        # Past its expiry, and the sweeper has not come by yet: expire it now rather than show it running.
        for job in jobs.values():
            if not job.status.terminal:
                with contextlib.suppress(Conflict):
                    jobs[job.id] = await cancel_unfinished(svc, job, reason=_expiry(svc))
        state = _state(record, jobs)
    return BatchView(record, jobs, state)


def _state(record: BatchRecord, jobs: dict[str, Job]) -> str:
    if record.cancelled:
        return CANCELLED
    if any(not job.status.terminal for job in jobs.values()):
        started = any(job.status.value != "queued" for job in jobs.values())
        return RUNNING if started else PENDING
    if any(job.error is not None and job.error.code == BatchExpired.code for job in jobs.values()):
        return EXPIRED
    if not any(job.status is JobStatus.SUCCEEDED for job in jobs.values()):
        return FAILED  # not one request was answered: a client that reads only the state must learn that
    return SUCCEEDED


async def expire_batches(svc: Services, *, limit: int = 500) -> int:
    """Cancel the unfinished requests of batches older than ``batch_ttl_s``; returns how many were cancelled."""
    cutoff = svc.clock() - timedelta(seconds=svc.config.batch_ttl_s)
    async with svc.uow(scan=True) as uow:
        stale = await uow.jobs.unfinished_before(JobPriority.BATCH, cutoff, limit=limit)
    cancelled = 0
    for job in stale:
        with contextlib.suppress(Conflict):  # it finished meanwhile: its result stands
            await cancel_unfinished(svc, job, reason=_expiry(svc))
            cancelled += 1
    return cancelled


def _expiry(svc: Services) -> BatchExpired:
    return BatchExpired(
        f"The batch expired: this request had not finished {svc.config.batch_ttl_s / 3600:g} hours after the "
        "batch was created, so it was cancelled and not charged. Submit it again, or in a smaller batch."
    )


async def list_batches(
    svc: Services, principal: ApiKey, *, page_size: int | None, page_token: str | None
) -> tuple[list[BatchView], str | None]:
    size = min(page_size or 10, MAX_PAGE_SIZE)
    async with svc.uow(scan=True) as uow:
        rows = await uow.batches.page(principal.id, after=page_token or None, limit=size + 1)
    views = [await get_batch(svc, principal, row.id) for row in rows[:size]]
    return views, (rows[size - 1].id if len(rows) > size else None)


async def cancel_batch(svc: Services, principal: ApiKey, batch_id: str) -> BatchView:
    view = await get_batch(svc, principal, batch_id)
    if view.state in ENDED:
        raise Conflict(f"Batch batches/{batch_id} has already ended ({view.state}); there is nothing to cancel.")
    for job in view.jobs.values():
        if not job.status.terminal:
            with contextlib.suppress(Conflict):  # it finished meanwhile: its result stands
                await cancel_job(svc, principal, job.id)
    async with svc.uow() as uow:
        await uow.batches.update(replace(view.record, cancelled=True, updated_at=svc.clock()))
        await uow.commit()
    return await get_batch(svc, principal, batch_id)


async def set_output_file(svc: Services, view: BatchView, file_id: str) -> BatchView:
    record = replace(view.record, doc={**view.record.doc, "output_file": file_id}, updated_at=svc.clock())
    async with svc.uow() as uow:
        await uow.batches.update(record)
        await uow.commit()
    return replace(view, record=record)


async def delete_batch(svc: Services, principal: ApiKey, batch_id: str) -> None:
    view = await get_batch(svc, principal, batch_id)
    async with svc.uow() as uow:
        await uow.batches.delete(view.record.id)
        await uow.commit()
