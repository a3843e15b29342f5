"""Reading jobs and their images: by id for the key that owns them, and waiting for one to finish."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from imagegate.core.ids import new_id
from imagegate.core.jobs import Job, JobStatus
from imagegate.core.ports import ApiKey, FileRecord, Subscription
from imagegate.errors import ImagegateError, JobCancelled, NotFound, UpstreamTimeout, error_from_code
from imagegate.services.context import Services
from imagegate.services.handoff import Delivered


async def get_job(svc: Services, principal: ApiKey, job_id: str) -> Job:
    """A job of this key; another key's job is "not found", never "forbidden" (ids must not leak)."""
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
    if job is None or (job.key_id != principal.id and not principal.is_admin):
        raise NotFound(f"job {job_id} not found")
    return job


def failure_of(job: Job) -> ImagegateError | None:
    """The error a failed or cancelled job ended with (None for any other job): what the sync endpoints raise
    and the task views show, rebuilt from what was recorded."""
    if job.status is JobStatus.CANCELLED:
        if job.error is not None:  # cancelled for a reason (its batch expired): say which
            return error_from_code(job.error.code, job.error.message)
        return JobCancelled("The request was cancelled.")
    if job.status is JobStatus.FAILED:
        if job.error is None:
            return error_from_code("internal_error", "The job failed.")
        return error_from_code(job.error.code, job.error.message, retry_after_s=job.error.retry_after_s)
    return None


def raise_if_failed(job: Job) -> Job:
    """``job`` when it finished well; its recorded error, raised again, when it failed or was cancelled."""
    failure = failure_of(job)
    if failure is not None:
        raise failure
    return job


async def wait_for_job(
    svc: Services,
    job_id: str,
    *,
    timeout_s: float | None = None,
    handed: Callable[[], Delivered | None] | None = None,
    watched: Subscription | None = None,
) -> Job:
    """The job once it is finished. Wakes on events, and re-reads the database in case one was missed.

    With ``handed`` (a hand-off getter), a job finished by this process is taken from it without a read. A
    ``watched`` subscription, made before the job was submitted, cannot have missed its finish: the first read
    is skipped (``watch_new_job``).
    """
    deadline = time.monotonic() + (timeout_s if timeout_s is not None else svc.config.sync_timeout_s)
    subscription = watched or svc.events.subscribe(job_id)
    read = watched is None
    try:
        while True:
            delivered = handed() if handed is not None else None
            if delivered is not None:
                return delivered.job
            if read:
                async with svc.uow() as uow:
                    job = await uow.jobs.get(job_id)
                if job is None:
                    raise NotFound(f"job {job_id} not found")
                if job.status.terminal:
                    return job
            read = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout(
                    f"The image was not ready within {svc.config.sync_timeout_s:g} seconds; job {job_id} goes on."
                )
            await subscription.wait(min(remaining, svc.config.poll_interval_s))
    finally:
        if watched is None:
            subscription.close()


async def wait_for_result(svc: Services, job_id: str) -> tuple[Job, Mapping[str, bytes]]:
    """The finished job and the bytes of its images (by file id), without reading back what this process made:
    the one wait of every endpoint that holds the connection. A job that failed or was cancelled raises its
    error, for the dialect to word."""
    with svc.handoff.watch(job_id) as handed:
        job = await wait_for_job(svc, job_id, handed=handed)
        return await _result(svc, job, handed())


async def _result(svc: Services, job: Job, delivered: Delivered | None) -> tuple[Job, Mapping[str, bytes]]:
    if delivered is not None:
        return raise_if_failed(delivered.job), delivered.images
    return raise_if_failed(job), await load_job_images(svc, job)


@dataclass(frozen=True, slots=True)
class NewJobWatch:
    """An id to submit a job under, watched since before the job existed (``watch_new_job``)."""

    svc: Services
    job_id: str
    subscription: Subscription
    handed: Callable[[], Delivered | None]

    async def result(self, job: Job) -> tuple[Job, Mapping[str, bytes]]:
        """``wait_for_result`` for the submitted ``job``, without the read-back that guards against a missed finish."""
        if job.id != self.job_id:  # an Idempotency-Key retry answered with an earlier job: not watched from its start
            return await wait_for_result(self.svc, job.id)
        finished = await wait_for_job(self.svc, job.id, handed=self.handed, watched=self.subscription)
        return await _result(self.svc, finished, self.handed())


@contextmanager
def watch_new_job(svc: Services) -> Iterator[NewJobWatch]:
    """A fresh job id whose events and hand-off are watched before the job is submitted under it.

    A sync request's wait otherwise starts by reading its job's row, in case the job finished before the wait
    began: one SELECT per request, and nearly always a job still queued. Watched from the start, no finish can
    slip by unseen, so the wait reads the row only if no event comes within the poll interval.
    """
    job_id = new_id("job")
    subscription = svc.events.subscribe(job_id)
    try:
        with svc.handoff.watch(job_id) as handed:
            yield NewJobWatch(svc, job_id, subscription, handed)
    finally:
        subscription.close()


async def load_job_images(svc: Services, job: Job) -> dict[str, bytes]:
    """The bytes of every output image of ``job`` (a thinking model's interim images too), by file id."""
    images: dict[str, bytes] = {}
    thought_images = [t.image for r in job.results for t in r.thoughts if t.image is not None]
    async with svc.uow() as uow:
        records = [await uow.files.get(img.file_id) for img in (*job.images, *thought_images)]
    for record in records:
        if record is not None:
            images[record.id] = await svc.store.get(record.storage_key)
    return images


async def get_file(svc: Services, file_id: str) -> tuple[FileRecord, bytes]:
    async with svc.uow() as uow:
        record = await uow.files.get(file_id)
    if record is None:
        raise NotFound(f"file {file_id} not found")
    return record, await svc.store.get(record.storage_key)
