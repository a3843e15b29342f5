"""Steps reported by a provider land on the job row; cancelling a running job stops its provider calls."""

from __future__ import annotations

import asyncio

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Generation, JobSpec, JobStatus
from imagegate.core.progress import report_progress
from imagegate.services import accounts
from imagegate.services.execute import execute_job
from imagegate.services.queries import get_job
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job

from .conftest import image_generation, text_spec


class SteppingProvider:
    """Reports ``steps`` steps, pausing at ``hold_at`` until released; remembers being cancelled."""

    def __init__(self, steps: int = 4, hold_at: int = 2) -> None:
        self.steps = steps
        self.hold_at = hold_at
        self.release = asyncio.Event()
        self.reached = asyncio.Event()
        self.cancelled = 0
        self.finished = 0

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        try:
            for step in range(1, self.steps + 1):
                report_progress(step, self.steps)
                if step == self.hold_at:
                    self.reached.set()
                    await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return image_generation(spec, model)

    async def aclose(self) -> None:
        pass


async def _wait_for(condition) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(5):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_progress_is_summed_over_slots_and_stored(make_services) -> None:  # type: ignore[no-untyped-def]
    provider = SteppingProvider(steps=4, hold_at=2)
    svc = make_services(provider)
    key = (await accounts.create_key(svc, name="t")).record
    job = await submit_job(svc, key, text_spec(n=2))
    running = asyncio.create_task(execute_job(svc, job.id))
    await provider.reached.wait()

    async def stored() -> bool:
        found = await get_job(svc, key, job.id)
        return found.progress is not None and found.progress.done == 4

    await _wait_for(stored)  # both slots at step 2 of 4: 4 of 8
    seen = (await get_job(svc, key, job.id)).progress
    assert seen is not None and (seen.done, seen.total) == (4, 8) and seen.fraction == 0.5
    provider.release.set()
    finished = await running
    assert finished is not None and finished.status is JobStatus.SUCCEEDED and len(finished.images) == 2


async def test_cancelling_a_running_job_stops_the_provider_call(make_services) -> None:  # type: ignore[no-untyped-def]
    provider = SteppingProvider(steps=30, hold_at=3)
    svc = make_services(provider)
    key = (await accounts.create_key(svc, name="t")).record
    job = await submit_job(svc, key, text_spec(n=3))
    running = asyncio.create_task(execute_job(svc, job.id))
    await provider.reached.wait()
    await cancel_job(svc, key, job.id)
    assert await asyncio.wait_for(running, 5) is None  # the worker gave up its result
    assert provider.cancelled == 3 and provider.finished == 0
    final = await get_job(svc, key, job.id)
    assert final.status is JobStatus.CANCELLED and final.images == () and final.charged == 0
