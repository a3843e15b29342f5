"""Webhooks with several processes on one database: each is sent once, even when the machines' clocks disagree.

Two runtimes deliver the same due webhooks at once; the second's clock runs five minutes ahead (a badly synced
machine). The in-flight claim is taken and read in the database's clock, so the fast machine does not mistake
the other's claim for an abandoned one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from imagegate.core.jobs import JobStatus
from imagegate.services.accounts import create_key
from imagegate.services.context import utc_now
from imagegate.services.queries import wait_for_job
from imagegate.services.submit import submit_job
from imagegate.services.webhooks import deliver_due_webhooks

from .conftest import OpenRuntime, spec

pytestmark = pytest.mark.postgres


class SlowReceiver:
    """A receiver that takes its time to answer, so two deliverers overlap; it counts what reaches it."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.received.append(headers["webhook-id"])
        await asyncio.sleep(0.3)
        return 200


async def _deliver_together(open_process: OpenRuntime, *, database_clock: bool) -> tuple[list[str], list[str]]:
    # The processes' own delivery loops wait an hour: the test drives both deliverers itself, at the same moment.
    quiet = {"webhook_poll_s": 3600.0}
    async with open_process("a", **quiet) as a, open_process("b", **quiet) as b:
        b.services.clock = lambda: utc_now() + timedelta(minutes=5)  # a machine whose clock runs ahead
        key = await create_key(a.services, name="hooks")
        jobs = [
            await submit_job(a.services, key.record, spec(f"p{i}"), webhook_url="https://hooks.example/in")
            for i in range(4)
        ]
        for job in jobs:
            finished = await asyncio.wait_for(wait_for_job(a.services, job.id), 30)
            assert finished.status is JobStatus.SUCCEEDED
        receiver = SlowReceiver()
        clocks = [rt.workers.database_clock if database_clock and rt.workers else None for rt in (a, b)]
        # ``a`` claims the first webhook and is still sending it when ``b`` looks for due ones.
        first = asyncio.create_task(deliver_due_webhooks(a.services, receiver, clock=clocks[0]))
        await asyncio.sleep(0.1)
        await deliver_due_webhooks(b.services, receiver, clock=clocks[1])
        await first
        return receiver.received, [job.id for job in jobs]


async def test_each_webhook_is_sent_once_by_two_processes_with_skewed_clocks(open_process: OpenRuntime) -> None:
    received, job_ids = await _deliver_together(open_process, database_clock=True)
    assert sorted(received) == sorted(job_ids)  # every one delivered, none twice


async def test_on_the_machines_own_clocks_the_fast_one_would_send_again(open_process: OpenRuntime) -> None:
    # The failure the database clock prevents, shown so the test above cannot pass by accident.
    received, job_ids = await _deliver_together(open_process, database_clock=False)
    assert set(received) == set(job_ids) and len(received) > len(job_ids)
