"""Shutdown finishes in bounded time (issue 15, defect 5): no new work, a grace period, the rest left for recovery."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Generation, JobSpec, JobStatus
from imagegate.services import accounts
from imagegate.services.context import Services
from imagegate.services.recovery import recover_jobs
from imagegate.services.submit import submit_job
from imagegate.services.workers import WorkerPool

from .conftest import FakeProvider, ServicesFactory, image_generation, text_spec


class Gate(FakeProvider):
    """Answers only once ``release`` is set; ``started`` says a call is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.started.set()
        await self.release.wait()
        return image_generation(spec, model)


async def _running_pool(make_services: ServicesFactory) -> tuple[Gate, WorkerPool, str, Services]:
    gate = Gate()
    svc = make_services(gate)
    principal = (await accounts.create_key(svc, name="t")).record
    pool = WorkerPool(svc, concurrency=2, sweep_interval_s=3600)
    await pool.start(recover=False, recover_all_running=False)
    job = await submit_job(svc, principal, text_spec())
    await gate.started.wait()
    return gate, pool, job.id, svc


async def test_a_job_that_outlives_the_grace_is_left_running_for_recovery(make_services: ServicesFactory) -> None:
    gate, pool, job_id, svc = await _running_pool(make_services)
    async with asyncio.timeout(30):  # a guard against a hang, not a measurement: stop must return
        await pool.stop(grace_s=0.05)
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.RUNNING
    gate.release.set()
    requeued, failed = await recover_jobs(svc, stale_before=svc.clock() + timedelta(days=1))
    assert (requeued, failed) == (1, 0)


async def test_a_job_that_finishes_within_the_grace_is_finished_and_nothing_new_starts(
    make_services: ServicesFactory,
) -> None:
    gate, pool, job_id, svc = await _running_pool(make_services)
    stopping = asyncio.create_task(pool.stop(grace_s=60))
    await asyncio.sleep(0)  # let stop() mark the pool as stopping before the job can finish
    gate.release.set()
    async with asyncio.timeout(30):
        await stopping
    async with svc.uow() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None and job.status is JobStatus.SUCCEEDED
