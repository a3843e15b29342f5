"""The SQL repositories keep every field exactly, and their conditional moves (claim, fenced update) hold."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError, StatementError

from imagegate.core.jobs import Job, JobPriority, JobStatus
from imagegate.core.ports import UnitOfWorkFactory

from .records import SPEC_DOC, T0, finished_job, make_file, make_job, make_key

LEASE = timedelta(minutes=5)


async def _store(uow_factory: UnitOfWorkFactory, *jobs: Job) -> None:
    async with uow_factory() as uow:
        if await uow.keys.get("key_1") is None:
            await uow.keys.add(make_key("key_1"))
        for job in jobs:
            await uow.jobs.add(job, SPEC_DOC)
        await uow.commit()


async def _claim(uow_factory: UnitOfWorkFactory, job_id: str) -> Job | None:
    async with uow_factory() as uow:
        claimed = await uow.jobs.claim_with_spec(job_id, now=T0 + timedelta(seconds=1), lease_until=T0 + LEASE)
        await uow.commit()
        return None if claimed is None else claimed[0]


# --- keys -----------------------------------------------------------------------------------------------


async def test_key_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    key = replace(make_key("key_1", credits=9_000_000_000_000), is_admin=True)
    async with uow_factory() as uow:
        await uow.keys.add(key)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.keys.get("key_1") == key
        assert await uow.keys.find_by_hash("hash-key_1") == key
        assert await uow.keys.get("missing") is None
        assert await uow.keys.find_by_hash("hash-missing") is None


async def test_keys_list_oldest_first_and_count(uow_factory: UnitOfWorkFactory) -> None:
    keys = [make_key(f"key_{i}", created_at=T0 + timedelta(minutes=i)) for i in (3, 1, 2)]
    async with uow_factory() as uow:
        assert await uow.keys.count() == 0
        assert await uow.keys.list() == []
        for key in keys:
            await uow.keys.add(key)
        await uow.commit()

    async with uow_factory() as uow:
        assert [k.id for k in await uow.keys.list()] == ["key_1", "key_2", "key_3"]
        assert await uow.keys.count() == 3


async def test_revoke_only_an_active_key(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
        assert await uow.keys.revoke("key_1", T0 + timedelta(days=1)) is True
        assert await uow.keys.revoke("key_1", T0 + timedelta(days=2)) is False
        assert await uow.keys.revoke("missing", T0) is False
        await uow.commit()

    async with uow_factory() as uow:
        revoked = await uow.keys.get("key_1")
    assert revoked is not None
    assert revoked.revoked_at == T0 + timedelta(days=1)
    assert not revoked.active


async def test_key_hash_is_unique(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1"))
        with pytest.raises(IntegrityError):
            await uow.keys.add(replace(make_key("key_2"), key_hash="hash-key_1"))


# --- jobs -----------------------------------------------------------------------------------------------


async def test_job_round_trip_with_results(uow_factory: UnitOfWorkFactory) -> None:
    running = make_job(status=JobStatus.RUNNING, attempts=1, lease_expires_at=T0 + LEASE)
    running = replace(running, started_at=T0 + timedelta(seconds=1))
    done = finished_job(running)
    await _store(uow_factory, done)

    async with uow_factory() as uow:
        loaded = await uow.jobs.get(done.id)
        assert await uow.jobs.get("missing") is None
    assert loaded == done
    assert loaded.results[1].error is not None
    assert loaded.results[1].error.retry_after_s == 2.5


async def test_job_priority_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    jobs = [replace(make_job(f"job_{p.name}"), priority=p) for p in JobPriority]
    await _store(uow_factory, *jobs)
    async with uow_factory() as uow:
        assert [await uow.jobs.get(job.id) for job in jobs] == jobs


async def test_spec_doc_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    async with uow_factory() as uow:
        assert await uow.jobs.get_spec_doc("job_1") == SPEC_DOC
        assert await uow.jobs.get_spec_doc("missing") is None


async def test_job_needs_an_existing_key(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(IntegrityError):
            await uow.jobs.add(make_job(key_id="nobody"), SPEC_DOC)


async def test_claim_moves_a_queued_job_once(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())

    claimed = await _claim(uow_factory, "job_1")
    started, lease = T0 + timedelta(seconds=1), T0 + LEASE
    assert claimed == replace(
        make_job(), status=JobStatus.RUNNING, attempts=1, started_at=started, lease_expires_at=lease
    )

    assert await _claim(uow_factory, "job_1") is None
    assert await _claim(uow_factory, "missing") is None
    async with uow_factory() as uow:
        assert await uow.jobs.get("job_1") == claimed


async def test_claim_with_spec_returns_the_spec_in_the_same_move(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    async with uow_factory() as uow:
        claimed = await uow.jobs.claim_with_spec("job_1", now=T0, lease_until=T0 + LEASE)
        again = await uow.jobs.claim_with_spec("job_1", now=T0, lease_until=T0 + LEASE)
        await uow.commit()
    assert claimed is not None
    job, spec = claimed
    assert (job.status, job.attempts, job.lease_expires_at) == (JobStatus.RUNNING, 1, T0 + LEASE)
    assert spec == SPEC_DOC
    assert again is None


async def test_concurrent_claims_have_exactly_one_winner(uow_factory: UnitOfWorkFactory) -> None:
    job_ids = [f"job_{i}" for i in range(5)]
    await _store(uow_factory, *(make_job(job_id) for job_id in job_ids))

    for job_id in job_ids:
        outcomes = await asyncio.gather(_claim(uow_factory, job_id), _claim(uow_factory, job_id))
        winners = [job for job in outcomes if job is not None]
        assert len(winners) == 1, outcomes
        async with uow_factory() as uow:
            stored = await uow.jobs.get(job_id)
        assert stored is not None
        assert (stored.status, stored.attempts) == (JobStatus.RUNNING, 1)


async def test_a_claim_racing_an_uncommitted_claim_loses(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    async with uow_factory() as first:
        assert await first.jobs.claim_with_spec("job_1", now=T0, lease_until=T0 + LEASE) is not None
        # The rival waits on the first claim's row (PostgreSQL) or write lock (SQLite), then finds it taken.
        rival = asyncio.create_task(_claim(uow_factory, "job_1"))
        await first.commit()
    assert await rival is None


async def test_fenced_update_rejects_a_stale_writer(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    claimed = await _claim(uow_factory, "job_1")
    assert claimed is not None
    done = finished_job(claimed)

    async with uow_factory() as uow:
        assert not await uow.jobs.update(done, expected_status=JobStatus.RUNNING, expected_attempts=0)
        assert not await uow.jobs.update(done, expected_status=JobStatus.QUEUED, expected_attempts=1)
        assert not await uow.jobs.update(
            replace(done, id="missing"), expected_status=JobStatus.RUNNING, expected_attempts=1
        )
        assert await uow.jobs.get("job_1") == claimed
        assert await uow.jobs.update(done, expected_status=JobStatus.RUNNING, expected_attempts=1)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.jobs.get("job_1") == done
        # The first writer won; a second one fenced on the same attempt now finds the job moved on.
        assert not await uow.jobs.update(done, expected_status=JobStatus.RUNNING, expected_attempts=1)


async def test_update_writes_every_mutable_column(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    claimed = await _claim(uow_factory, "job_1")
    assert claimed is not None
    requeued = claimed.moved_to(JobStatus.QUEUED, lease_expires_at=None, deployment="gemini")

    async with uow_factory() as uow:
        assert await uow.jobs.update(requeued, expected_status=JobStatus.RUNNING, expected_attempts=1)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.jobs.get("job_1") == requeued

    second = await _claim(uow_factory, "job_1")
    assert second is not None
    assert second.attempts == 2


async def test_expired_leases_are_only_running_jobs_past_their_lease(uow_factory: UnitOfWorkFactory) -> None:
    now = T0 + timedelta(hours=1)
    running = JobStatus.RUNNING
    await _store(
        uow_factory,
        make_job("expired_late", status=running, attempts=1, lease_expires_at=now - timedelta(microseconds=1)),
        make_job("expired_early", status=running, attempts=1, lease_expires_at=now - timedelta(minutes=10)),
        make_job("expires_now", status=running, attempts=1, lease_expires_at=now),
        make_job("still_leased", status=running, attempts=1, lease_expires_at=now + timedelta(minutes=1)),
        make_job("queued", lease_expires_at=now - timedelta(minutes=10)),
        make_job("failed", status=JobStatus.FAILED, lease_expires_at=now - timedelta(minutes=10)),
    )

    async with uow_factory() as uow:
        assert [job.id for job in await uow.jobs.expired_leases(now)] == ["expired_early", "expired_late"]
        assert [job.id for job in await uow.jobs.expired_leases(now, limit=1)] == ["expired_early"]
        # Any timezone names the same instant.
        in_tokyo = now.astimezone(timezone(timedelta(hours=9)))
        assert len(await uow.jobs.expired_leases(in_tokyo)) == 2


async def test_ids_with_status_oldest_first(uow_factory: UnitOfWorkFactory) -> None:
    await _store(
        uow_factory,
        make_job("newer", created_at=T0 + timedelta(seconds=2)),
        make_job("oldest", created_at=T0),
        make_job("middle", created_at=T0 + timedelta(seconds=1)),
        make_job("running", status=JobStatus.RUNNING, created_at=T0 - timedelta(days=1)),
    )
    async with uow_factory() as uow:
        ids = [job_id for job_id, _ in await uow.jobs.ids_with_status(JobStatus.QUEUED)]
        assert ids == ["oldest", "middle", "newer"]
        assert [job_id for job_id, _ in await uow.jobs.ids_with_status(JobStatus.QUEUED, limit=2)] == [
            "oldest",
            "middle",
        ]
        assert await uow.jobs.ids_with_status(JobStatus.RUNNING) == [("running", int(JobPriority.ASYNC))]
        assert await uow.jobs.ids_with_status(JobStatus.CANCELLED) == []


# --- files ----------------------------------------------------------------------------------------------


async def test_file_round_trip(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    expiring = make_file("file_2", expires_at=T0 + timedelta(days=30))
    async with uow_factory() as uow:
        await uow.files.add(make_file("file_1"))
        await uow.files.add(expiring)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.files.get("file_1") == make_file("file_1")
        assert await uow.files.get("file_2") == expiring
        assert await uow.files.get("missing") is None


async def test_a_keys_jobs_page_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    mine = [make_job(f"job_{i}", created_at=T0 + timedelta(seconds=i)) for i in range(5)]
    await _store(uow_factory, *mine)
    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_2"))
        await uow.jobs.add(make_job("job_other", key_id="key_2", created_at=T0 + timedelta(seconds=9)), SPEC_DOC)
        await uow.commit()
    async with uow_factory() as uow:
        first = await uow.jobs.list_for_key("key_1", limit=2)
        second = await uow.jobs.list_for_key("key_1", limit=2, before=first[-1].id)
        rest = await uow.jobs.list_for_key("key_1", limit=10, before=second[-1].id)
        assert await uow.jobs.list_for_key("key_1", limit=2, before="job_missing") == []
    assert [j.id for j in first + second + rest] == ["job_4", "job_3", "job_2", "job_1", "job_0"]


async def test_expired_files_are_listed_oldest_first_and_deleted(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory, make_job())
    async with uow_factory() as uow:
        await uow.files.add(make_file("file_keep"))  # no expiry: kept forever
        await uow.files.add(make_file("file_late", expires_at=T0 + timedelta(hours=2)))
        await uow.files.add(make_file("file_early", expires_at=T0 + timedelta(hours=1)))
        await uow.files.add(make_file("file_future", expires_at=T0 + timedelta(days=9)))
        await uow.commit()

    async with uow_factory() as uow:
        expired = await uow.files.expired(T0 + timedelta(hours=3))
        assert [f.id for f in expired] == ["file_early", "file_late"]
        assert [f.id for f in await uow.files.expired(T0 + timedelta(hours=3), limit=1)] == ["file_early"]
        assert await uow.files.delete("file_early") is True
        assert await uow.files.delete("file_early") is False
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.files.get("file_early") is None
        assert await uow.files.get("file_keep") is not None


async def test_file_needs_an_existing_job(uow_factory: UnitOfWorkFactory) -> None:
    await _store(uow_factory)
    async with uow_factory() as uow:
        with pytest.raises(IntegrityError):
            await uow.files.add(make_file(job_id="missing"))


# --- timestamps -----------------------------------------------------------------------------------------


async def test_timestamps_come_back_aware_utc(uow_factory: UnitOfWorkFactory) -> None:
    plus_two = timezone(timedelta(hours=2))
    await _store(uow_factory, make_job(created_at=T0.astimezone(plus_two)))
    claimed = await _claim(uow_factory, "job_1")
    assert claimed is not None

    async with uow_factory() as uow:
        await uow.files.add(make_file(expires_at=(T0 + LEASE).astimezone(plus_two)))
        await uow.commit()
    async with uow_factory() as uow:
        key = await uow.keys.get("key_1")
        job = await uow.jobs.get("job_1")
        record = await uow.files.get("file_1")
    assert key is not None
    assert job is not None
    assert record is not None
    stamps = [key.created_at, job.created_at, job.started_at, job.lease_expires_at, record.expires_at]
    for stamp in stamps:
        assert stamp is not None
        assert stamp.tzinfo is UTC
    assert job.created_at == T0
    assert record.expires_at == T0 + LEASE


async def test_naive_timestamps_are_refused(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(StatementError, match="naive datetime") as caught:
            await uow.keys.add(make_key(created_at=T0.replace(tzinfo=None)))
    assert isinstance(caught.value.orig, ValueError)


async def test_webhooks_are_due_only_for_ended_jobs(uow_factory: UnitOfWorkFactory) -> None:
    from dataclasses import replace

    from imagegate.core.ports import WebhookRecord

    await _store(uow_factory, make_job("job_1"), make_job("job_2", created_at=T0 + timedelta(seconds=1)))
    async with uow_factory() as uow:
        for job_id in ("job_1", "job_2"):
            await uow.webhooks.add(WebhookRecord(job_id, "key_1", f"https://h.example/{job_id}", created_at=T0))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.webhooks.due(T0) == []  # both jobs still queued
        job = await uow.jobs.get("job_2")
        assert job is not None
        await uow.jobs.update(job.moved_to(JobStatus.CANCELLED), expected_status=JobStatus.QUEUED, expected_attempts=0)
        await uow.commit()
    async with uow_factory() as uow:
        [due] = await uow.webhooks.due(T0)
        assert due.job_id == "job_2" and due.url == "https://h.example/job_2"
        later = replace(due, attempts=1, next_attempt_at=T0 + timedelta(minutes=1), last_error="HTTP 500")
        assert await uow.webhooks.update(later, expected_attempts=0) is True
        assert await uow.webhooks.update(later, expected_attempts=0) is False  # fenced
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.webhooks.due(T0) == []
        assert [w.job_id for w in await uow.webhooks.due(T0 + timedelta(minutes=1))] == ["job_2"]
        assert await uow.webhooks.get("job_2") == later


async def test_concurrent_debits_never_overdraw(uow_factory: UnitOfWorkFactory) -> None:
    """The hammer: 40 concurrent transactions spending on one key that can pay for 10."""
    import asyncio

    async with uow_factory() as uow:
        await uow.keys.add(make_key("key_1", credits=10 * 7))
        await uow.commit()

    async def spend() -> bool:
        async with uow_factory() as uow:
            balance = await uow.keys.debit("key_1", 7)
            await uow.commit()
        assert balance is None or balance >= 0
        return balance is not None

    results = await asyncio.gather(*(spend() for _ in range(40)))
    assert sum(results) == 10
    async with uow_factory() as uow:
        key = await uow.keys.get("key_1")
        assert key is not None and key.credits == 0
        assert await uow.keys.credit("key_1", 5, meter=True) == 5
        assert await uow.keys.credit("key_missing", 5) is None
        metered = await uow.keys.get("key_1")
        assert metered is not None and metered.metered
