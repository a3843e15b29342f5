"""Run one job: claim it, call the provider once per slot (in parallel), store the images, finish it.

Execution is at-least-once: the claim counts an attempt, and the final write is fenced on that attempt, so a
worker that lost its lease (and was replaced) cannot overwrite the replacement's result.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

from imagegate.core.capabilities import ModelSpec
from imagegate.core.ids import new_id
from imagegate.core.images import ImageOutput
from imagegate.core.jobs import Generation, Job, JobError, JobSpec, JobStatus, SlotResult, StoredImage
from imagegate.core.ports import FileRecord
from imagegate.errors import (
    ImagegateError,
    InternalError,
    ModelNotFound,
    RateLimited,
    UpstreamError,
)
from imagegate.services.billing import record_settlement, with_charge
from imagegate.services.context import Services
from imagegate.services.spec_codec import load_spec

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _job_error(exc: ImagegateError) -> JobError:
    retry = exc.retry_after_s if isinstance(exc, RateLimited) else None
    return JobError(code=exc.code, message=exc.message, retry_after_s=retry)


async def execute_job(svc: Services, job_id: str) -> Job | None:
    """Run ``job_id`` if it is still queued; returns the finished job, or None when there was nothing to do."""
    now = svc.clock()
    async with svc.uow() as uow:
        job = await uow.jobs.claim(job_id, now=now, lease_until=now + timedelta(seconds=svc.config.job_lease_s))
        spec_doc = await uow.jobs.get_spec_doc(job_id) if job is not None else None
        await uow.commit()
    if job is None or spec_doc is None:
        return None
    svc.events.publish(job_id)

    records: list[FileRecord] = []
    try:
        spec = await load_spec(spec_doc, svc.store)
        model = svc.catalog.resolve(job.model)
        if model is None:
            raise ModelNotFound(f"model {job.model} is no longer offered")
        outcomes = await asyncio.gather(*(_run_slot(svc, job, spec, model, i, records) for i in range(job.n)))
        finished = _finish(svc, job, tuple(result for result, _ in outcomes))
        served_by = [name for _, name in outcomes if name]
        finished = replace(finished, deployment=served_by[0] if served_by else None)
    except Exception as exc:  # a bug or lost storage: the job must still end, never hang as running
        log.exception("job %s failed unexpectedly", job_id)
        error = exc if isinstance(exc, ImagegateError) else InternalError("The job failed unexpectedly.")
        finished = job.moved_to(JobStatus.FAILED, finished_at=svc.clock(), error=_job_error(error))
        records = []

    finished, settled = with_charge(finished, svc.catalog.resolve(job.model), svc.router)
    async with svc.uow() as uow:
        # One transaction: the job's end, its images and its money move together or not at all.
        written = await uow.jobs.update(finished, expected_status=JobStatus.RUNNING, expected_attempts=job.attempts)
        if written:
            for record in records:
                await uow.files.add(record)
            await record_settlement(uow, finished, settled, svc.clock())
            await uow.commit()
    if not written:  # another attempt owns the job now; our images are orphans
        log.warning("job %s attempt %d lost its lease; discarding its result", job_id, job.attempts)
        for record in records:
            await svc.store.delete(record.storage_key)
        return None
    svc.events.publish(job_id)
    log.info(
        "job %s %s: %d image(s) via %s, attempt %d",
        job_id,
        finished.status,
        len(finished.images),
        finished.deployment or "no deployment",
        finished.attempts,
    )
    return finished


def _finish(svc: Services, job: Job, results: tuple[SlotResult, ...]) -> Job:
    errors = [r.error for r in results if r.error is not None]
    if len(errors) == len(results):
        return job.moved_to(JobStatus.FAILED, finished_at=svc.clock(), results=results, error=errors[0])
    return job.moved_to(JobStatus.SUCCEEDED, finished_at=svc.clock(), results=results)


async def _run_slot(
    svc: Services, job: Job, spec: JobSpec, model: ModelSpec, index: int, records: list[FileRecord]
) -> tuple[SlotResult, str | None]:
    """One image request, failing over to the next deployment when an upstream is down or busy.

    Returns the slot's result and the deployment that answered (None when none did).
    """
    if job.n > 1:  # n calls of one request must not be n identical pictures from a seeded engine
        spec = replace(spec, seed=(spec.seed or 0) + index)
    candidates = svc.router.candidates(model.id)
    if not candidates:
        return SlotResult(index, error=JobError("upstream_unavailable", f"No deployment serves {model.id}.")), None
    last_error: ImagegateError | None = None
    for candidate in candidates:
        try:
            generation = await candidate.deployment.provider.generate(spec, model, candidate.upstream_model)
        except UpstreamError as exc:  # down, busy or misconfigured: the next deployment may serve
            last_error = exc
            continue
        except ImagegateError as exc:  # the request itself is wrong: another upstream will say the same
            return SlotResult(index, error=_job_error(exc)), candidate.deployment.name
        stored = await _store_images(svc, job, spec, generation, records)
        name = candidate.deployment.name
        return replace(_slot_result(index, generation, stored), deployment=name), name
    assert last_error is not None
    return SlotResult(index, error=_job_error(last_error)), None


async def _store_images(
    svc: Services, job: Job, spec: JobSpec, generation: Generation, records: list[FileRecord]
) -> tuple[StoredImage, ...]:
    stored = []
    retention = svc.config.file_retention_s
    expires_at = svc.clock() + timedelta(seconds=retention) if retention is not None else None
    for image in generation.images:
        image = await _in_requested_format(svc, spec, image)
        file_id = new_id("file")
        key = f"outputs/{job.id}/{file_id}.{_EXTENSIONS.get(image.mime_type, 'bin')}"
        await svc.store.put(key, image.data, content_type=image.mime_type)
        records.append(
            FileRecord(
                id=file_id,
                job_id=job.id,
                key_id=job.key_id,
                storage_key=key,
                mime_type=image.mime_type,
                size_bytes=len(image.data),
                width=image.width,
                height=image.height,
                created_at=svc.clock(),
                expires_at=expires_at,
            )
        )
        stored.append(StoredImage(file_id, image.mime_type, image.width, image.height, len(image.data)))
    return tuple(stored)


async def _in_requested_format(svc: Services, spec: JobSpec, image: ImageOutput) -> ImageOutput:
    if image.mime_type == spec.output_mime_type and spec.output_quality is None:
        return image
    if svc.transcode is None:
        raise InternalError("This server cannot convert images (no transcoder configured).")
    data = await asyncio.to_thread(svc.transcode, image.data, spec.output_mime_type, spec.output_quality)
    return replace(image, data=data, mime_type=spec.output_mime_type)


def _slot_result(index: int, generation: Generation, images: tuple[StoredImage, ...]) -> SlotResult:
    return SlotResult(
        index,
        images=images,
        text=generation.text,
        finish_reason=generation.finish_reason,
        finish_message=generation.finish_message,
        block_reason=generation.block_reason,
        usage=generation.usage,
        model_version=generation.model_version,
    )
