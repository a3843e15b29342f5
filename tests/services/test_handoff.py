"""A sync waiter gets the job and its images from the worker in this process, without reading them back."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from imagegate.core.jobs import Job, JobStatus
from imagegate.errors import JobCancelled, UpstreamUnavailable
from imagegate.persistence.repositories import SqlJobRepository
from imagegate.services import accounts
from imagegate.services.context import ServiceConfig, Services
from imagegate.services.execute import execute_job
from imagegate.services.handoff import ResultHandoff
from imagegate.services.queries import wait_for_result, watch_new_job
from imagegate.services.submit import submit_job

from .conftest import FakeProvider, PNG_1x1, ServicesFactory, text_spec


class _CountingStore:
    """The in-memory store, counting reads."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> bytes:
        self.reads += 1
        data: bytes = await self._inner.get(key)
        return data


def _counting(svc: Services) -> tuple[Services, _CountingStore]:
    store = _CountingStore(svc.store)
    return replace(svc, store=store), store


async def _run_worker(svc: Services) -> None:
    await execute_job(svc, await svc.queue.dequeue())


async def test_the_waiter_takes_the_workers_result_without_reading_files(make_services: ServicesFactory) -> None:
    svc, store = _counting(make_services())
    job = await submit_job(svc, (await accounts.create_key(svc, name="t")).record, text_spec())
    worker = asyncio.create_task(_run_worker(svc))
    finished, images = await wait_for_result(svc, job.id)
    await worker
    assert finished.status is JobStatus.SUCCEEDED
    assert list(images) == [finished.images[0].file_id]
    assert images[finished.images[0].file_id] == PNG_1x1
    assert store.reads == 0
    assert len(svc.handoff) == 0  # nothing kept once the waiter left


async def test_a_job_finished_before_anyone_waited_is_read_back(make_services: ServicesFactory) -> None:
    """A stream starts after its job may have finished: the waiter reads it at once, not at the next poll."""
    svc, store = _counting(make_services(config=ServiceConfig(poll_interval_s=60)))
    job = await submit_job(svc, (await accounts.create_key(svc, name="t")).record, text_spec())
    await _run_worker(svc)  # nobody waits yet: nothing is kept in memory
    assert len(svc.handoff) == 0
    finished, images = await asyncio.wait_for(wait_for_result(svc, job.id), 5)
    assert finished.status is JobStatus.SUCCEEDED
    assert images == {finished.images[0].file_id: PNG_1x1}
    assert store.reads == 1


async def test_a_failed_job_is_handed_over_with_its_error(make_services: ServicesFactory) -> None:
    svc = make_services(FakeProvider(UpstreamUnavailable("down")))
    job = await submit_job(svc, (await accounts.create_key(svc, name="t")).record, text_spec())
    worker = asyncio.create_task(_run_worker(svc))
    with pytest.raises(UpstreamUnavailable, match="down"):  # the job's own error, raised for the dialect
        await wait_for_result(svc, job.id)
    await worker
    async with svc.uow() as uow:
        finished = await uow.jobs.get(job.id)
    assert finished is not None and finished.status is JobStatus.FAILED


async def test_a_job_cancelled_elsewhere_is_still_seen(make_services: ServicesFactory) -> None:
    """No worker hands anything over for a cancellation: the waiter finds it in the database."""
    svc = make_services(config=ServiceConfig(poll_interval_s=0.05))
    principal = (await accounts.create_key(svc, name="t")).record
    job = await submit_job(svc, principal, text_spec())
    waiting = asyncio.create_task(wait_for_result(svc, job.id))
    await asyncio.sleep(0.02)
    async with svc.uow() as uow:
        queued = await uow.jobs.get(job.id)
        assert queued is not None
        cancelled = queued.moved_to(JobStatus.CANCELLED, finished_at=svc.clock())
        assert await uow.jobs.update(cancelled, expected_status=JobStatus.QUEUED, expected_attempts=0)
        await uow.commit()
    svc.events.publish(job.id)
    with pytest.raises(JobCancelled):
        await asyncio.wait_for(waiting, 5)


@pytest.fixture
def job_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of every job row read by id from now on."""
    reads: list[str] = []
    read = SqlJobRepository.get

    async def counted(self: SqlJobRepository, job_id: str) -> Job | None:
        reads.append(job_id)
        return await read(self, job_id)

    monkeypatch.setattr(SqlJobRepository, "get", counted)
    return reads


async def test_a_job_watched_from_its_submission_is_not_read_back(
    make_services: ServicesFactory, job_reads: list[str]
) -> None:
    svc, store = _counting(make_services(config=ServiceConfig(poll_interval_s=60)))
    principal = (await accounts.create_key(svc, name="t")).record
    with watch_new_job(svc) as watch:
        job = await submit_job(svc, principal, text_spec(), job_id=watch.job_id)
        worker = asyncio.create_task(_run_worker(svc))
        finished, images = await asyncio.wait_for(watch.result(job), 5)
    await worker
    assert finished.id == job.id and finished.status is JobStatus.SUCCEEDED
    assert images == {finished.images[0].file_id: PNG_1x1}
    assert job_reads == [] and store.reads == 0
    # the same job awaited the usual way reads its row first (the finish may have come before the wait)
    await wait_for_result(svc, job.id)
    assert job_reads == [job.id]
    assert len(svc.handoff) == 0


async def test_a_watched_job_finished_before_its_wait_began_is_still_handed_over(
    make_services: ServicesFactory, job_reads: list[str]
) -> None:
    svc = make_services(config=ServiceConfig(poll_interval_s=60))
    principal = (await accounts.create_key(svc, name="t")).record
    with watch_new_job(svc) as watch:
        job = await submit_job(svc, principal, text_spec(), job_id=watch.job_id)
        await _run_worker(svc)  # done before anyone waits: the watch kept it, and its event
        finished, _ = await asyncio.wait_for(watch.result(job), 5)  # at once, not at the next poll
    assert finished.status is JobStatus.SUCCEEDED and job_reads == []


async def test_a_job_not_submitted_under_the_watch_is_read_back(
    make_services: ServicesFactory, job_reads: list[str]
) -> None:
    """An Idempotency-Key retry is answered with the job its first attempt made, which nobody watched."""
    svc = make_services(config=ServiceConfig(poll_interval_s=60))
    principal = (await accounts.create_key(svc, name="t")).record
    earlier = await submit_job(svc, principal, text_spec())
    await _run_worker(svc)
    with watch_new_job(svc) as watch:
        finished, images = await asyncio.wait_for(watch.result(earlier), 5)
    assert finished.id == earlier.id and finished.status is JobStatus.SUCCEEDED and len(images) == 1
    assert job_reads == [earlier.id]


async def test_a_watched_job_cancelled_elsewhere_is_seen_when_its_event_comes(make_services: ServicesFactory) -> None:
    svc = make_services(config=ServiceConfig(poll_interval_s=60))
    principal = (await accounts.create_key(svc, name="t")).record
    with watch_new_job(svc) as watch:
        job = await submit_job(svc, principal, text_spec(), job_id=watch.job_id)
        waiting = asyncio.create_task(watch.result(job))
        await asyncio.sleep(0.02)
        async with svc.uow() as uow:
            cancelled = job.moved_to(JobStatus.CANCELLED, finished_at=svc.clock())
            assert await uow.jobs.update(cancelled, expected_status=JobStatus.QUEUED, expected_attempts=0)
            await uow.commit()
        svc.events.publish(job.id)
        with pytest.raises(JobCancelled):
            await asyncio.wait_for(waiting, 5)


def test_only_awaited_jobs_are_kept_and_only_while_awaited() -> None:
    handoff = ResultHandoff()
    job = _job("job_1")
    handoff.offer(job, {"file_1": b"x"})
    assert len(handoff) == 0
    with handoff.watch("job_1") as first, handoff.watch("job_1") as second:
        handoff.offer(job, {"file_1": b"x"})
        assert first() is second() is not None
    assert first() is None  # gone with the last waiter
    assert len(handoff) == 0


def _job(job_id: str) -> Job:
    return Job(id=job_id, key_id="key_1", model="m", status=JobStatus.SUCCEEDED, created_at=datetime.now(UTC), n=1)
