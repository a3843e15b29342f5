"""Real jobs on a local model: submitted, run by the executor through the router, stored, progress recorded,
and a cancelled job's denoising loop stopped in the worker process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from local_helpers import ask

from conftest import Checkpoints
from imagegate.core.capabilities import ModelCatalog, ModelSpec
from imagegate.core.jobs import JobStatus
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory
from imagegate.providers.local.provenance import DIGITAL_SOURCE_TYPE, read_provenance
from imagegate.providers.local.provider import DiffusersProvider
from imagegate.queue import open_queue
from imagegate.routing.router import Deployment, Router
from imagegate.services import accounts
from imagegate.services.context import ServiceConfig, Services
from imagegate.services.execute import execute_job
from imagegate.services.queries import get_job
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job
from imagegate.storage import open_object_store

TURBO = ModelSpec(id="sd-turbo", display_name="SD-Turbo", max_input_images=1, price_per_image=2_000)


@pytest.fixture
async def make_services(tmp_path: Path) -> AsyncIterator[Callable[[DiffusersProvider, str], Services]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await upgrade_database(engine)

    def make(provider: DiffusersProvider, source: str) -> Services:
        queue, events = open_queue("inprocess://")
        deployment = Deployment("local", "diffusers", provider, models={TURBO.id: source})
        return Services(
            uow=unit_of_work_factory(engine),
            store=open_object_store("memory://"),
            queue=queue,
            events=events,
            router=Router([deployment]),
            catalog=ModelCatalog.of([TURBO]),
            config=ServiceConfig(poll_interval_s=0.05),
        )

    yield make
    await engine.dispose()


async def test_a_job_with_two_images_runs_on_the_local_model(
    make_services: Callable[[DiffusersProvider, str], Services], sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    svc = make_services(sd, checkpoints.sd_turbo)
    key = (await accounts.create_key(svc, name="t")).record
    job = await submit_job(svc, key, replace(ask("a red bicycle", n=2, seed=10, aspect_ratio="3:2"), model=TURBO.id))
    finished = await execute_job(svc, job.id)
    assert finished is not None and finished.status is JobStatus.SUCCEEDED
    assert len(finished.images) == 2 and all(img.width > img.height for img in finished.images)
    assert finished.results[0].deployment == "local"
    stored = [await svc.store.get(f"outputs/{job.id}/{img.file_id}.png") for img in finished.images]
    assert stored[0] != stored[1]  # seeds 10 and 11: two different pictures
    assert all(DIGITAL_SOURCE_TYPE in read_provenance(data)["xmp"] for data in stored)
    assert finished.charged == 2 * TURBO.price_per_image  # per delivered image; no tokens are counted


async def test_cancelling_a_running_job_stops_the_worker_early(
    make_services: Callable[[DiffusersProvider, str], Services], sd_slow: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    source = checkpoints.sd_turbo
    svc = make_services(sd_slow, source)
    key = (await accounts.create_key(svc, name="t")).record
    await sd_slow.generate(ask("warm up", seed=1), TURBO, source)
    before = sd_slow.stats(source)
    job = await submit_job(svc, key, replace(ask("a long one", seed=3), model=TURBO.id))
    running = asyncio.create_task(execute_job(svc, job.id))

    async def progressed() -> bool:
        found = await get_job(svc, key, job.id)
        return found.progress is not None and found.progress.done >= 1

    async with asyncio.timeout(30):
        while not await progressed():
            await asyncio.sleep(0.02)
    seen = (await get_job(svc, key, job.id)).progress
    assert seen is not None and seen.total == 50
    await cancel_job(svc, key, job.id)
    await asyncio.wait_for(running, 30)
    final = await get_job(svc, key, job.id)
    assert final.status is JobStatus.CANCELLED and final.images == ()
    async with asyncio.timeout(30):
        while sd_slow.in_flight(source):
            await asyncio.sleep(0.02)
    after = sd_slow.stats(source)
    assert after.cancelled == before.cancelled + 1
    assert after.cancelled_steps_run - before.cancelled_steps_run < 50
