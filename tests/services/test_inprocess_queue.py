"""The in-process queue hands out the most urgent job first (sync, async, batch), in arrival order within one
priority, and an id already waiting is not queued twice (the sweeper re-delivers); batch work never takes
every runner of a process; a new id wakes one idle worker that may run it, never all of them."""

from __future__ import annotations

import asyncio

import pytest

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import Generation, JobPriority, JobSpec, JobStatus, batch_runners
from imagegate.queue.inprocess import InProcessQueue
from imagegate.services import accounts
from imagegate.services.queries import wait_for_job
from imagegate.services.submit import submit_job
from imagegate.services.workers import WorkerPool

from .conftest import FakeProvider, ServicesFactory, image_generation, text_spec


async def test_most_urgent_first_then_in_order_of_arrival() -> None:
    queue = InProcessQueue()
    for job_id, priority in [
        ("batch-1", JobPriority.BATCH),
        ("batch-2", JobPriority.BATCH),
        ("task-1", JobPriority.ASYNC),
        ("sync-1", JobPriority.INTERACTIVE),
        ("task-2", JobPriority.ASYNC),
        ("batch-1", JobPriority.BATCH),  # re-delivered while it waits: still once
    ]:
        await queue.enqueue(job_id, priority)
    taken = [await queue.dequeue() for _ in range(5)]
    assert taken == ["sync-1", "task-1", "task-2", "batch-1", "batch-2"]
    assert queue.qsize() == 0


async def test_a_runner_that_takes_no_batch_work_waits_past_it_for_urgent_work() -> None:
    queue = InProcessQueue()
    await queue.enqueue("batch-1", JobPriority.BATCH)
    waiting = asyncio.create_task(queue.dequeue(batch=False))
    await asyncio.sleep(0)  # let it look: only batch work is queued
    assert not waiting.done()
    await queue.enqueue("sync-1", JobPriority.INTERACTIVE)
    assert await asyncio.wait_for(waiting, 5) == "sync-1"
    assert await queue.dequeue() == "batch-1"  # a batch runner takes what the other passed over


async def test_urgent_work_goes_to_a_runner_kept_from_batch_work_leaving_the_other_free_for_batch() -> None:
    queue = InProcessQueue()
    any_work = asyncio.create_task(queue.dequeue(batch=True))  # idle first
    await asyncio.sleep(0)
    urgent_only = asyncio.create_task(queue.dequeue(batch=False))
    await asyncio.sleep(0)
    await queue.enqueue("sync-1", JobPriority.INTERACTIVE)
    await queue.enqueue("batch-1", JobPriority.BATCH)
    assert await asyncio.wait_for(urgent_only, 5) == "sync-1"
    assert await asyncio.wait_for(any_work, 5) == "batch-1"


async def test_every_id_reaches_exactly_one_of_many_idle_workers() -> None:
    queue = InProcessQueue()
    workers = [asyncio.create_task(queue.dequeue(batch=i % 2 == 0)) for i in range(200)]
    await asyncio.sleep(0)
    ids = [f"task-{i}" for i in range(120)]
    for job_id in ids:
        await queue.enqueue(job_id, JobPriority.ASYNC)
    for _ in range(5):
        await asyncio.sleep(0)
    done = [w for w in workers if w.done()]
    assert sorted(w.result() for w in done) == sorted(ids)  # each once; the other 80 still wait
    assert queue.qsize() == 0
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def test_a_worker_stopped_after_being_woken_passes_the_id_on() -> None:
    queue = InProcessQueue()
    first = asyncio.create_task(queue.dequeue())
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.dequeue())
    await asyncio.sleep(0)
    await queue.enqueue("task-1", JobPriority.ASYNC)  # wakes the first only
    first.cancel()  # before it runs: the id must not wait for the sweeper
    assert await asyncio.wait_for(second, 5) == "task-1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_stopped_idle_worker_is_skipped_when_work_arrives() -> None:
    queue = InProcessQueue()
    gone = asyncio.create_task(queue.dequeue())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    waiting = asyncio.create_task(queue.dequeue())
    await asyncio.sleep(0)
    await queue.enqueue("task-1", JobPriority.ASYNC)
    assert await asyncio.wait_for(waiting, 5) == "task-1"


@pytest.mark.parametrize(
    ("runners", "share", "expected"), [(0, 0.5, 0), (1, 0.5, 1), (2, 0.5, 1), (2, 1.0, 1), (4, 0.5, 2), (8, 0.1, 1)]
)
def test_batch_work_gets_its_share_of_runners_and_never_all_of_them(runners: int, share: float, expected: int) -> None:
    assert batch_runners(runners, share) == expected


class Gate(FakeProvider):
    """Batch prompts wait for ``release``; anything else is answered at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.batch_calls = 0

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        if "batch" in str(spec.turns[0].parts[0]):
            self.batch_calls += 1
            await self.release.wait()
        return image_generation(spec, model)


async def test_a_batch_backlog_leaves_a_runner_for_interactive_work(make_services: ServicesFactory) -> None:
    gate = Gate()
    svc = make_services(gate)
    principal = (await accounts.create_key(svc, name="t")).record
    pool = WorkerPool(svc, concurrency=2, sweep_interval_s=3600, batch_share=1.0)
    await pool.start(recover=False, recover_all_running=False)
    try:
        for i in range(3):
            await submit_job(svc, principal, text_spec(f"batch {i}"), priority=JobPriority.BATCH)
        sync = await submit_job(svc, principal, text_spec("now"), priority=JobPriority.INTERACTIVE)
        finished = await wait_for_job(svc, sync.id, timeout_s=10)  # a bound on a hang, not a measurement
        assert finished.status is JobStatus.SUCCEEDED
        assert gate.batch_calls == 1  # of two runners, one takes batch work, even at batch_share = 1
    finally:
        gate.release.set()
        await pool.stop(grace_s=5)
