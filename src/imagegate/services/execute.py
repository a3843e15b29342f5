"""Run one job: claim it, route one provider call per slot (in parallel), store the images, finish it.

Execution is at-least-once: the claim counts an attempt, and the final write is fenced on that attempt, so a
worker that lost its lease (and was replaced) cannot overwrite the replacement's result. A job cancelled while
it runs has its provider calls stopped at once; steps reported by providers are kept on the job row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from imagegate.core.attempts import attempt_log
from imagegate.core.capabilities import ModelSpec
from imagegate.core.ids import new_id
from imagegate.core.images import ImageOutput, StoredImageBytes
from imagegate.core.jobs import (
    Generation,
    Job,
    JobError,
    JobPriority,
    JobSpec,
    JobStatus,
    Modality,
    Progress,
    SlotResult,
    StoredImage,
    StoredThought,
    Thought,
)
from imagegate.core.ports import FileRecord
from imagegate.core.progress import progress_reporter
from imagegate.errors import (
    ImagegateError,
    InternalError,
    ModelNotFound,
    StorageUnavailable,
)
from imagegate.services.billing import record_settlement, with_charge
from imagegate.services.context import Services
from imagegate.services.spec_codec import load_spec

log = logging.getLogger(__name__)

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _job_error(exc: ImagegateError) -> JobError:
    return JobError(code=exc.code, message=exc.message, retry_after_s=exc.retry_after_s)


async def execute_job(svc: Services, job_id: str) -> Job | None:
    """Run ``job_id`` if it is still queued; returns the finished job, or None when there was nothing to do."""
    now = svc.clock()
    async with svc.uow() as uow:
        lease_until = now + timedelta(seconds=svc.config.job_lease_s)
        claimed = await uow.jobs.claim_with_spec(job_id, now=now, lease_until=lease_until)
        await uow.commit()
    if claimed is None:
        return None
    # Nobody is woken for the claim: waiters only care about the end, and the task API reads the row itself.
    return await run_claimed(svc, *claimed)


async def run_claimed(svc: Services, job: Job, spec_doc: dict[str, Any]) -> Job | None:
    """Run a job this process has just claimed (``job`` as the claim left it); the finished job, or None."""
    metrics = svc.metrics
    if metrics is not None:
        metrics.jobs_in_flight.inc()
    try:
        return await _run(svc, job, spec_doc)
    finally:
        if metrics is not None:
            metrics.jobs_in_flight.dec()


async def _run(svc: Services, job: Job, spec_doc: dict[str, Any]) -> Job | None:
    records: list[FileRecord] = []
    images = StoredImageBytes()  # what was stored, by file id: handed to a waiter in this process
    progress = _ProgressRecorder(svc, job)
    stopped = _Stop()
    try:
        spec = await load_spec(spec_doc, svc.store)
        model = svc.catalog.resolve(job.model)
        if model is None:
            raise ModelNotFound(f"model {job.model} is no longer offered")
        work = asyncio.gather(*(_run_slot(svc, job, spec, model, i, images, records, progress) for i in range(job.n)))
        async with _cancel_when_cancelled(svc, job, work, stopped):
            outcomes = await work
        finished = _finish(svc, job, tuple(result for result, _ in outcomes))
        served_by = [name for _, name in outcomes if name]
        finished = replace(finished, deployment=served_by[0] if served_by else None)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if not stopped.by_job or (current is not None and current.cancelling()):
            raise  # we ourselves are being stopped (shutdown), not the job
        log.info("job %s was cancelled while running; its provider calls were stopped", job.id)
        await _discard(svc, records)
        return None
    except Exception as exc:  # a bug or lost storage: the job must still end, never hang as running
        log.exception("job %s failed unexpectedly", job.id)
        error = exc if isinstance(exc, ImagegateError) else InternalError("The job failed unexpectedly.")
        finished = job.moved_to(JobStatus.FAILED, finished_at=svc.clock(), error=_job_error(error))
        await _discard(svc, records)
        records, images = [], StoredImageBytes()
    finally:
        progress.close()

    finished, settled = with_charge(
        finished, svc.catalog.resolve(job.model), svc.router, batch_percent=svc.config.batch_price_percent
    )
    async with svc.uow() as uow:
        # One transaction: the job's end, its images and its money move together or not at all.
        written = await uow.jobs.update(finished, expected_status=JobStatus.RUNNING, expected_attempts=job.attempts)
        if written:
            for record in records:
                await uow.files.add(record)
            await record_settlement(uow, finished, settled, svc.clock())
            await uow.commit()
    if not written:  # another attempt owns the job now, or it was cancelled: our images are orphans
        log.warning("job %s attempt %d lost its lease or was cancelled; discarding its result", job.id, job.attempts)
        await _discard(svc, records)
        return None
    svc.handoff.offer(finished, images)
    svc.events.publish(job.id)
    _count(svc, finished, settled.cost)
    log.info(
        "job %s %s: %d image(s) via %s, attempt %d",
        job.id,
        finished.status,
        len(finished.images),
        finished.deployment or "no deployment",
        finished.attempts,
    )
    return finished


def _count(svc: Services, job: Job, captured: int) -> None:
    if svc.metrics is None:
        return
    svc.metrics.jobs_finished.labels(model=job.model, status=job.status.value).inc()
    if job.images:
        svc.metrics.images_delivered.labels(model=job.model).inc(len(job.images))
    if captured:
        svc.metrics.credits_captured.labels(model=job.model).inc(captured)


async def _discard(svc: Services, records: list[FileRecord]) -> None:
    for record in records:
        try:
            await svc.store.delete(record.storage_key)
        except StorageUnavailable:  # an unreferenced object costs bytes, not correctness: the job must still end
            log.warning("job %s: could not delete orphaned object %s", record.job_id, record.storage_key)


class _Stop:
    by_job = False  # set when the job's cancellation (not a shutdown) stopped the work


@asynccontextmanager
async def _cancel_when_cancelled(
    svc: Services, job: Job, work: asyncio.Future[Any], stopped: _Stop
) -> AsyncIterator[None]:
    """Stop ``work`` as soon as the job is cancelled (or taken over) while it runs.

    The watcher wakes on the job's events (a cancel publishes one) and only then reads the row, so a running
    job costs no polling. With the database queue a cancel or a lost lease elsewhere reaches it through the
    doorbell, the batched waiter check, or the heartbeat (``services.claiming``); the fenced final write
    stays the last guard.
    """

    async def watch() -> None:
        subscription = svc.events.subscribe(job.id)
        try:
            while not work.done():
                if not await subscription.wait(svc.config.job_lease_s):
                    continue
                async with svc.uow() as uow:
                    current = await uow.jobs.get(job.id)
                if current is None or current.status is not JobStatus.RUNNING or current.attempts != job.attempts:
                    stopped.by_job = True
                    work.cancel()
                    return
        finally:
            subscription.close()

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


class _ProgressRecorder:
    """Sums the steps reported by a job's slots and writes them to the job row, at most every half second."""

    INTERVAL_S = 0.5

    def __init__(self, svc: Services, job: Job) -> None:
        self._svc = svc
        self._job = job
        self._slots: dict[int, tuple[int, int]] = {}
        self._flush: asyncio.Task[None] | None = None
        self._written: Progress | None = None

    def reporter(self, index: int) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self._slots[index] = (done, total)
            if self._flush is None or self._flush.done():
                self._flush = asyncio.get_running_loop().create_task(self._write_soon())

        return report

    def current(self) -> Progress:
        # slots that have not reported yet count as the same number of steps as those that have
        per_slot = max((total for _, total in self._slots.values()), default=0)
        done = sum(d for d, _ in self._slots.values())
        return Progress(done, per_slot * self._job.n)

    async def _write_soon(self) -> None:
        await asyncio.sleep(self.INTERVAL_S if self._written is not None else 0)
        progress = self.current()
        if progress == self._written:
            return
        try:
            async with self._svc.uow() as uow:
                await uow.jobs.set_progress(self._job.id, progress, expected_attempts=self._job.attempts)
                await uow.commit()
        except Exception:  # progress is a courtesy; never let it fail the job
            log.warning("job %s: could not record progress", self._job.id, exc_info=True)
            return
        self._written = progress

    def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()


def _finish(svc: Services, job: Job, results: tuple[SlotResult, ...]) -> Job:
    errors = [r.error for r in results if r.error is not None]
    if len(errors) == len(results):
        return job.moved_to(JobStatus.FAILED, finished_at=svc.clock(), results=results, error=errors[0])
    return job.moved_to(JobStatus.SUCCEEDED, finished_at=svc.clock(), results=results)


async def _run_slot(
    svc: Services,
    job: Job,
    spec: JobSpec,
    model: ModelSpec,
    index: int,
    images: StoredImageBytes,
    records: list[FileRecord],
    progress: _ProgressRecorder,
) -> tuple[SlotResult, str | None]:
    """One image request, routed (with failover) by the router.

    Returns the slot's result and the deployment that answered (None when none did).
    """
    if job.n > 1 and spec.seed is not None:  # n calls of one request must not be n identical pictures
        spec = replace(spec, seed=spec.seed + index)  # the base seed is the caller's or drawn at submission
    with attempt_log() as attempts:
        try:
            with progress_reporter(progress.reporter(index)):
                routed = await svc.router.generate(spec, model, batch=job.priority is JobPriority.BATCH)
        except ImagegateError as exc:
            return SlotResult(index, error=_job_error(exc), attempts=tuple(attempts)), None
    generation = routed.generation
    if Modality.IMAGE not in spec.modalities and generation.images:
        # responseModalities ["TEXT"]: an upstream that draws anyway (2.5 Flash Image does) is not passed on or billed.
        usage = replace(generation.usage, output_image_tokens=0)
        generation = replace(generation, images=(), usage=usage)
    stored = await _store_images(svc, job, spec, generation.images, images, records)
    # Thoughts are the caller's only when asked for (includeThoughts), as Google returns them
    shown = generation.thoughts if spec.include_thoughts else ()
    thoughts = await _store_thoughts(svc, job, spec, shown, images, records)
    result = replace(
        _slot_result(index, generation, stored),
        thoughts=thoughts,
        deployment=routed.deployment,
        attempts=tuple(attempts),
        # the seed it was made with, so the caller can make it again (drawn ones too), where the upstream took it
        seed=spec.seed if svc.router.takes_seed(routed.deployment, model) else None,
    )
    return result, routed.deployment


async def _store_thoughts(
    svc: Services,
    job: Job,
    spec: JobSpec,
    thoughts: tuple[Thought, ...],
    images: StoredImageBytes,
    records: list[FileRecord],
) -> tuple[StoredThought, ...]:
    """A thinking model's thoughts, their interim images stored like outputs (never billed: not in ``images``)."""
    kept = []
    for thought in thoughts:
        image = None
        if thought.image is not None:
            (image,) = await _store_images(svc, job, spec, (thought.image,), images, records)
        kept.append(StoredThought(thought.text, image, thought.signature))
    return tuple(kept)


async def _store_images(
    svc: Services,
    job: Job,
    spec: JobSpec,
    outputs: tuple[ImageOutput, ...],
    images: StoredImageBytes,
    records: list[FileRecord],
) -> tuple[StoredImage, ...]:
    stored = []
    retention = svc.config.file_retention_s
    expires_at = svc.clock() + timedelta(seconds=retention) if retention is not None else None
    for image in outputs:
        image = await _in_requested_format(svc, spec, image)
        file_id = new_id("file")
        key = f"outputs/{job.id}/{file_id}.{_EXTENSIONS.get(image.mime_type, 'bin')}"
        await svc.store.put(key, image.data, content_type=image.mime_type)
        images[file_id] = image.data
        if image.base64 is not None:
            images.base64[file_id] = image.base64
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
    return replace(image, data=data, mime_type=spec.output_mime_type, base64=None)  # the upstream's text is not this


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
        text_signature=generation.text_signature,
        image_signatures=generation.image_signatures,
        grounding=generation.grounding,
    )
