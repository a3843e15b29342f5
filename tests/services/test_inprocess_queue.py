"""The in-process queue hands out the most urgent job first (sync, async, batch), in arrival order within one
priority, and an id already waiting is not queued twice (the sweeper re-delivers)."""

from __future__ import annotations

from imagegate.core.jobs import JobPriority
from imagegate.queue.inprocess import InProcessQueue


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
