"""500 jobs through a real fleet (two ``serve`` accepting only, two ``worker --slots 8``): 2x8 claimers, and no
job claimed twice. The lease here is long (300 s), so that a worker starved of CPU on a busy machine never has
a job taken over: every second attempt would then be a claim race, which is what this test looks for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from .fleet import Fleet, books, fleet_on_fresh_database
from .test_failures import FAST, auth, live_workers, until

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str) -> Iterator[Fleet]:
    with fleet_on_fresh_database(tmp_path_factory.mktemp("claims"), postgres_admin_url, lease_s=300.0) as running:
        yield running


def test_500_jobs_on_2x8_claimers_none_claimed_twice(fleet: Fleet) -> None:
    live_workers(fleet)
    apis = [p for p in fleet.procs if p.name.startswith("api")]

    async def submit_all() -> list[str]:
        limits = httpx.Limits(max_connections=16)
        timeout = httpx.Timeout(120, pool=None)  # 500 requests queue for 16 connections on a busy machine
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=auth(fleet)) as client:

            async def one(i: int) -> str:
                url = f"{apis[i % 2].url}/v1/async/images/generations"
                answer = await client.post(url, json={"model": FAST, "prompt": f"job {i}", "size": "1024x1024"})
                assert answer.status_code == 200, answer.text
                return str(answer.json()["id"])

            return list(await asyncio.gather(*(one(i) for i in range(500))))

    ids = asyncio.run(submit_all())
    assert len(set(ids)) == 500
    until(
        lambda: fleet.sql("SELECT count(*) FROM jobs WHERE model = $1 AND finished_at IS NULL", FAST)[0][0] == 0,
        "the 500 jobs to end",
        within_s=240,
    )
    rows = fleet.sql("SELECT status, attempts, worker FROM jobs WHERE id = ANY($1::text[])", ids)
    assert len(rows) == 500
    assert {(status, attempts) for status, attempts, _ in rows} == {("succeeded", 1)}  # none claimed twice
    assert len({worker for _, _, worker in rows}) == 2  # both workers took part
    captures = fleet.sql("SELECT count(*) FROM ledger WHERE kind = 'capture' AND job_id = ANY($1::text[])", ids)
    assert captures[0][0] == 500
    books(fleet)
