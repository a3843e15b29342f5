"""The database queue across runtimes: an accepting process and workers sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import text

from imagegate.core.jobs import JobPriority, JobStatus
from imagegate.errors import RateLimited
from imagegate.persistence.claims import PICK_QUEUED
from imagegate.services.accounts import create_key
from imagegate.services.queries import wait_for_job, wait_for_result
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job

from .conftest import OpenRuntime, spec

pytestmark = pytest.mark.postgres

SLOW = [{"name": "emulator", "provider": "emulator", "options": {"latency_ms": 60_000}}]


async def test_a_sync_job_accepted_by_one_process_is_run_by_another(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api, open_process("worker", workers=2) as worker:
        assert api.workers is not None and api.workers.claimer is not None
        assert not api.workers.claimer.models  # workers = 0: accepts only
        assert all(d.provider is None for d in api.services.router.deployments)  # builds no provider
        key = await create_key(api.services, name="k")
        job = await submit_job(api.services, key.record, spec(n=2), priority=JobPriority.INTERACTIVE)
        finished, images = await asyncio.wait_for(wait_for_result(api.services, job.id), 30)
        assert finished.status is JobStatus.SUCCEEDED and len(finished.images) == 2
        assert set(images) == {image.file_id for image in finished.images}  # read back from the shared store
        assert all(data.startswith(b"\x89PNG") for data in images.values())
        async with worker.services.uow() as uow:
            stored = await uow.jobs.get(job.id)
        assert stored is not None and stored.attempts == 1


async def test_claims_take_the_most_urgent_first_and_only_free_slots(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api:
        key = await create_key(api.services, name="k")
        batch = await submit_job(api.services, key.record, spec("b"), priority=JobPriority.BATCH)
        tasks = [await submit_job(api.services, key.record, spec(f"a{i}")) for i in range(2)]
        sync = await submit_job(api.services, key.record, spec("s"), priority=JobPriority.INTERACTIVE)
        claims = api.workers.claimer._claims  # type: ignore[union-attr]
        got = await claims.claim("gemini-2.5-flash-image", 3, worker="w1", lease_s=30)
        assert [job.id for job, _ in got] == [sync.id, tasks[0].id, tasks[1].id]
        assert all(job.status is JobStatus.RUNNING and job.attempts == 1 for job, _ in got)
        assert all(doc["turns"] for _, doc in got)  # the spec comes with the claim
        rest = await claims.claim("gemini-2.5-flash-image", 3, worker="w2", lease_s=30)
        assert [job.id for job, _ in rest] == [batch.id]
        assert await claims.claim("gemini-2.5-flash-image", 3, worker="w2", lease_s=30) == []


async def test_a_claim_without_room_for_batch_work_stops_before_it(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api:
        key = await create_key(api.services, name="k")
        batch = await submit_job(api.services, key.record, spec("b"), priority=JobPriority.BATCH)
        claims = api.workers.claimer._claims  # type: ignore[union-attr]
        assert await claims.claim("gemini-2.5-flash-image", 3, worker="w1", lease_s=30, batch=False) == []
        task = await submit_job(api.services, key.record, spec("t"))
        got = await claims.claim("gemini-2.5-flash-image", 3, worker="w1", lease_s=30, batch=False)
        assert [job.id for job, _ in got] == [task.id]
        got = await claims.claim("gemini-2.5-flash-image", 3, worker="w1", lease_s=30)
        assert [job.id for job, _ in got] == [batch.id]


async def test_a_worker_full_of_batch_work_still_claims_an_interactive_job(open_process: OpenRuntime) -> None:
    async with (
        open_process("api", workers=0) as api,
        open_process("worker", workers=2, batch_share=1.0, deployments=SLOW) as worker,
    ):
        key = await create_key(api.services, name="k")
        for i in range(3):
            await submit_job(api.services, key.record, spec(f"b{i}"), priority=JobPriority.BATCH)
        claimer = worker.workers.claimer  # type: ignore[union-attr]
        async with asyncio.timeout(30):  # a bound on a hang, not a measurement
            while claimer.running == 0:
                await asyncio.sleep(0.01)  # the worker claims batch work (each call then sleeps a minute)
        await claimer.claim_round()
        assert claimer.running == 1  # of its two slots, one is kept from batch work
        sync = await submit_job(api.services, key.record, spec("s"), priority=JobPriority.INTERACTIVE)
        async with asyncio.timeout(30):
            while claimer.running < 2:
                await asyncio.sleep(0.01)
        async with api.services.uow() as uow:
            claimed = await uow.jobs.get(sync.id)
        assert claimed is not None and claimed.status is JobStatus.RUNNING


async def test_concurrent_claimers_never_take_the_same_job(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api:
        key = await create_key(api.services, name="k")
        submitted = {(await submit_job(api.services, key.record, spec(f"p{i}"))).id for i in range(120)}
        claims = api.workers.claimer._claims  # type: ignore[union-attr]
        taken: list[str] = []

        async def claimer(name: str) -> None:
            while got := await claims.claim("gemini-2.5-flash-image", 3, worker=name, lease_s=30):
                taken.extend(job.id for job, _ in got)

        await asyncio.gather(*(claimer(f"w{i}") for i in range(8)))
        assert sorted(taken) == sorted(submitted)  # each exactly once


async def test_the_claim_reads_the_partial_index(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api:
        key = await create_key(api.services, name="k")
        async with api.engine.begin() as conn:
            # Many ended jobs and a few queued ones, as in a long-running installation.
            await conn.execute(
                text(
                    "INSERT INTO jobs (id, key_id, model, dialect, n, status, attempts, created_at, spec, results,"
                    " finished_at, priority) SELECT 'old' || g, :key, 'gemini-2.5-flash-image', 'gemini', 1,"
                    " 'succeeded', 1, now(), '{}', '[]', now(), 1 FROM generate_series(1, 5000) AS g"
                ),
                {"key": key.record.id},
            )
        for i in range(5):
            await submit_job(api.services, key.record, spec(f"q{i}"))
        async with api.engine.begin() as conn:
            await conn.execute(text("ANALYZE jobs"))
            plan = "\n".join(
                row[0]
                for row in await conn.execute(
                    text(f"EXPLAIN {PICK_QUEUED}"), {"model": "gemini-2.5-flash-image", "limit": 4, "max_priority": 2}
                )
            )
    assert "ix_jobs_queued_claim" in plan, plan


async def test_a_cancel_on_the_api_process_stops_the_call_on_the_worker(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0) as api, open_process("worker", workers=1, deployments=SLOW) as worker:
        key = await create_key(api.services, name="k")
        job = await submit_job(api.services, key.record, spec())
        claimer = worker.workers.claimer  # type: ignore[union-attr]
        while claimer.running == 0:
            await asyncio.sleep(0.01)  # the worker claims it (the emulator then sleeps a minute)
        await cancel_job(api.services, key.record, job.id)
        while claimer.running:
            await asyncio.sleep(0.01)  # stopped long before the minute is up (the test would time out)
        cancelled = await wait_for_job(api.services, job.id, timeout_s=5)
        assert cancelled.status is JobStatus.CANCELLED and not cancelled.images


async def test_a_lost_lease_is_seen_at_the_next_heartbeat_and_stops_the_call(open_process: OpenRuntime) -> None:
    async with open_process("worker", workers=1, deployments=SLOW, heartbeat_s=60, job_lease_s=120) as worker:
        key = await create_key(worker.services, name="k")
        job = await submit_job(worker.services, key.record, spec())
        claimer = worker.workers.claimer  # type: ignore[union-attr]
        while claimer.running == 0:
            await asyncio.sleep(0.01)
        assert await claimer.heartbeat() == set()  # still ours: renewed
        async with worker.engine.begin() as conn:  # what the sweeper does to a worker that stalled
            await conn.execute(text("UPDATE jobs SET status = 'queued' WHERE id = :id"), {"id": job.id})
        assert await claimer.heartbeat() == {job.id}
        while claimer.running:
            await asyncio.sleep(0.01)


async def test_a_full_backlog_answers_429_with_a_retry_after(open_process: OpenRuntime) -> None:
    async with open_process("api", workers=0, max_queued_per_model=2) as api:
        key = await create_key(api.services, name="k")
        for i in range(2):
            await submit_job(api.services, key.record, spec(f"p{i}"))
        backlog = api.services.backlog
        assert backlog is not None
        gauge = backlog.__self__  # type: ignore[attr-defined]
        await gauge.refresh()
        with pytest.raises(RateLimited) as refused:
            await submit_job(api.services, key.record, replace(spec("p3")))
        assert refused.value.retry_after_s is not None and refused.value.retry_after_s >= 1
        assert "2 jobs" in refused.value.message
