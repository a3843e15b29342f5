"""Batch states as their jobs add them up, and the expiry sweep that cancels what a stale batch left unfinished."""

from __future__ import annotations

from datetime import timedelta

from imagegate.core.jobs import JobStatus
from imagegate.errors import InvalidRequest
from imagegate.services import accounts, batches
from imagegate.services.context import utc_now
from imagegate.services.execute import execute_job

from .conftest import text_spec


async def _balance(svc, key_id: str) -> int:  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        key = await uow.keys.get(key_id)
    assert key is not None
    return int(key.credits or 0)


async def test_the_sweep_expires_a_stale_batch_keeping_what_finished(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = (await accounts.create_key(svc, name="b", credits=1_000_000)).record
    requests = [batches.BatchRequest(key=str(i), metadata=None, spec=text_spec(f"n{i}")) for i in range(3)]
    view = await batches.create_batch(
        svc, principal, model="gemini-2.5-flash-image", requests=requests, display_name=None, input_file=None
    )
    first = view.record.doc["requests"][0]["job_id"]
    finished = await execute_job(svc, first)  # one request ran before the batch went stale
    assert finished.status is JobStatus.SUCCEEDED and finished.charged

    assert await batches.expire_batches(svc) == 0  # young batches are left alone
    later = utc_now() + timedelta(seconds=svc.config.batch_ttl_s + 1)
    svc.clock = lambda: later
    assert await batches.expire_batches(svc) == 2
    assert await batches.expire_batches(svc) == 0  # nothing left to expire

    after = await batches.get_batch(svc, principal, view.record.id)
    assert after.state == batches.EXPIRED
    statuses = [after.jobs[e["job_id"]].status for e in after.record.doc["requests"]]
    assert statuses == [JobStatus.SUCCEEDED, JobStatus.CANCELLED, JobStatus.CANCELLED]
    assert await _balance(svc, principal.id) == 1_000_000 - finished.charged  # only the delivered image is paid


async def test_states_add_up_from_the_jobs(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = (await accounts.create_key(svc, name="b")).record
    refused = batches.BatchRequest(key=None, metadata=None, error=InvalidRequest("bad ratio"))
    only_errors = await batches.create_batch(
        svc, principal, model="gemini-2.5-flash-image", requests=[refused], display_name=None, input_file=None
    )
    assert only_errors.state == batches.FAILED  # nothing could be answered

    mixed = await batches.create_batch(
        svc,
        principal,
        model="gemini-2.5-flash-image",
        requests=[refused, batches.BatchRequest(key=None, metadata=None, spec=text_spec())],
        display_name=None,
        input_file=None,
    )
    assert mixed.state == batches.PENDING
    await execute_job(svc, mixed.record.doc["requests"][1]["job_id"])
    assert (await batches.get_batch(svc, principal, mixed.record.id)).state == batches.SUCCEEDED
