"""A request with an ``Idempotency-Key`` whose first attempt died after creating its job (issue 15, defect 3).

Before: the claim was orphaned, every retry got 409 "still being processed" for ten minutes, and then a retry
created a second job and a second charge. Now the claim is linked to its job in the job's own transaction, a
retry answers from that job once it is terminal, and no second job or charge ever happens. The first attempt
"dies" here by being cancelled mid-wait (its claim is left linked, exactly what a SIGKILL leaves); the crash
matrix (``test_crash_matrix.py``) does the same with real SIGKILLs.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update

from imagegate.core.jobs import JobStatus
from imagegate.persistence.tables import idempotency_keys, jobs, ledger

from .harness import MODEL, App, open_app

SLOW = [{"name": "emulator", "provider": "emulator", "options": {"latency_ms": 300}}]
GENERATE = f"/v1beta/models/{MODEL}:generateContent"


async def _scalar(app: App, statement: Any) -> Any:
    async with app.runtime.engine.connect() as connection:
        return (await connection.execute(statement)).scalar()


async def _linked_job(app: App) -> str:
    for _ in range(2000):
        job_id = await _scalar(app, select(idempotency_keys.c.job_id))
        if job_id:
            return str(job_id)
        await asyncio.sleep(0.01)  # polling the database for the job row, not waiting for time to pass
    raise AssertionError("the request never created its job")


async def _until_terminal(app: App, job_id: str) -> None:
    for _ in range(3000):
        async with app.runtime.services.uow() as uow:
            job = await uow.jobs.get(job_id)
        if job is not None and job.status.terminal:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never finished")


async def _die_after_job_exists(app: App, path: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    first = asyncio.create_task(app.client.post(path, json=body, headers=headers))
    job_id = await _linked_job(app)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
        await first
    return job_id


async def _counts(app: App) -> tuple[int, int]:
    job_count = await _scalar(app, select(func.count()).select_from(jobs).where(jobs.c.key_id == app.metered_id))
    captures = await _scalar(
        app,
        select(func.count()).select_from(ledger).where(ledger.c.key_id == app.metered_id, ledger.c.kind == "capture"),
    )
    return int(job_count), int(captures)


async def test_a_sync_retry_after_the_first_attempt_died_gets_that_jobs_answer(
    database_url: str, tmp_path: Path
) -> None:
    async with open_app(tmp_path / "home", database_url, deployments=SLOW) as app:
        headers = {**app.bearer(), "Idempotency-Key": "sync-1"}
        body = {"contents": [{"parts": [{"text": "a red square"}]}]}
        job_id = await _die_after_job_exists(app, GENERATE, body, headers)
        # While the recovered job runs the truthful answer is "still being processed"; never a second job.
        early = await app.client.post(GENERATE, json=body, headers=headers)
        assert early.status_code in (200, 409), early.text
        await _until_terminal(app, job_id)
        answer = await app.client.post(GENERATE, json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["responseId"] == job_id
        replay = await app.client.post(GENERATE, json=body, headers=headers)
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["responseId"] == job_id
        assert await _counts(app) == (1, 1)
        credits, held = await app.balance()
        assert held == 0 and credits < 100_000_000


async def test_an_async_retry_after_the_first_attempt_died_gets_the_same_task(
    database_url: str, tmp_path: Path
) -> None:
    async with open_app(tmp_path / "home", database_url, deployments=SLOW) as app:
        headers = {**app.bearer(), "Idempotency-Key": "async-1"}
        body = {"model": MODEL, "prompt": "a blue circle"}
        first = await app.client.post("/v1/async/images/generations", json=body, headers=headers)
        job_id = first.json()["id"]
        # What a SIGKILL between the job's commit and the answer leaves: a claim linked to the job, unanswered.
        async with app.runtime.engine.begin() as connection:
            await connection.execute(
                update(idempotency_keys).values(status=None, headers=None, body=None, completed_at=None)
            )
        assert await _scalar(app, select(idempotency_keys.c.job_id)) == job_id
        await _until_terminal(app, job_id)
        answer = await app.client.post("/v1/async/images/generations", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == job_id
        assert await _counts(app) == (1, 1)


async def test_a_claim_whose_job_failed_answers_that_failure_then_lets_a_retry_run(
    database_url: str, tmp_path: Path
) -> None:
    async with open_app(tmp_path / "home", database_url, deployments=SLOW) as app:
        headers = {**app.bearer(), "Idempotency-Key": "failing-1"}
        body = {"contents": [{"parts": [{"text": "emulate:unavailable please"}]}]}
        job_id = await _die_after_job_exists(app, GENERATE, body, headers)
        await _until_terminal(app, job_id)
        async with app.runtime.services.uow() as uow:
            failed = await uow.jobs.get(job_id)
        assert failed is not None and failed.status is JobStatus.FAILED
        # The retry is told the job's own answer (the upstream failure); a failure is never kept for replay, so
        # the next retry runs the request again. Nothing is charged for either.
        retry = await app.client.post(GENERATE, json=body, headers=headers)
        assert retry.status_code >= 500
        assert (await _counts(app))[0] == 1
        again = await app.client.post(GENERATE, json=body, headers=headers)
        assert again.status_code >= 500
        assert (await _counts(app))[0] == 2
        assert await app.balance() == (100_000_000, 0)
