"""A killed attempt's stored images are collected by the next sweep (issue 15, defect 6): no object without a row."""

from __future__ import annotations

from datetime import timedelta

from imagegate.core.jobs import JobStatus
from imagegate.services import accounts
from imagegate.services.execute import execute_job
from imagegate.services.recovery import recover_jobs
from imagegate.services.submit import submit_job

from .conftest import PNG_1x1, ServicesFactory, text_spec


async def test_images_stored_by_a_killed_attempt_are_collected_before_the_job_runs_again(
    make_services: ServicesFactory,
) -> None:
    svc = make_services()
    principal = (await accounts.create_key(svc, name="t")).record
    job = await submit_job(svc, principal, text_spec())
    async with svc.uow() as uow:  # an attempt claims the job, stores an image, and dies before its final write
        claimed = await uow.jobs.claim_with_spec(
            job.id, now=svc.clock(), lease_until=svc.clock() + timedelta(seconds=1)
        )
        await uow.commit()
    assert claimed is not None
    orphan = f"outputs/{job.id}/file_orphan.png"
    await svc.store.put(orphan, PNG_1x1, content_type="image/png")

    requeued, failed = await recover_jobs(svc, stale_before=svc.clock() + timedelta(days=1))
    assert (requeued, failed) == (1, 0)
    assert not await svc.store.exists(orphan)

    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED
    stored = await svc.store.list_keys(f"outputs/{job.id}/")
    recorded = {image.file_id for image in finished.images}
    assert stored and {key.rsplit("/", 1)[1].split(".")[0] for key in stored} == recorded
