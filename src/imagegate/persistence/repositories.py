"""SQL implementations of the core's repository ports (keys, jobs, files) in one ``Transaction``.

Each repository maps rows to the core's frozen records and back, and nothing more: it never commits (the
unit of work does), and every state change that races with other workers is a single conditional statement
(``claim``, ``update``, ``revoke``) so that the database, not the caller, decides who wins.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, func, insert, or_, select, update

from imagegate.core.jobs import Job, JobPriority, JobStatus, Progress
from imagegate.core.ports import ApiKey, FileRecord
from imagegate.persistence.codec import decode_error, decode_results, encode_error, encode_results
from imagegate.persistence.tables import api_keys, files, jobs
from imagegate.persistence.transaction import Transaction

# Everything but the spec: the spec can be large (input images) and only the worker that runs the job reads it.
_JOB_COLUMNS = [column for column in jobs.c if column.key != "spec"]
# Built once: a SELECT of thirty columns built per call cost ~85 µs more to build and key for the statement
# cache than to run (sync SQLite); every job's waiter reads its row through this one.
_JOB_BY_ID = select(*_JOB_COLUMNS).where(jobs.c.id == bindparam("job_id"))

#: What a job's life changes (``_mutable_values``); identity, owner, request, priority and spec are written once
#: by ``add``.
_MUTABLE_COLUMNS = (
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "lease_expires_at",
    "deployment",
    "results",
    "error",
    "held",
    "charged",
    "progress_done",
    "progress_total",
)


class SqlKeyRepository:
    """API keys as stored: hashes, never the keys themselves."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, key: ApiKey) -> None:
        await self._tx.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                prefix=key.prefix,
                key_hash=key.key_hash,
                credits=key.credits,
                is_admin=key.is_admin,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
                metered=key.metered,
            )
        )

    async def get(self, key_id: str) -> ApiKey | None:
        row = (await self._tx.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return None if row is None else _api_key(row)

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.key_hash == key_hash)
        row = (await self._tx.execute(query)).first()
        return None if row is None else _api_key(row)

    async def list(self) -> builtins.list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        return [_api_key(row) for row in await self._tx.execute(query)]

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """True when this call revoked an active key; an already revoked key keeps its first revocation time."""
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(api_keys.c.id)
        )
        return (await self._tx.execute(statement)).first() is not None

    async def count(self) -> int:
        total = (await self._tx.execute(select(func.count()).select_from(api_keys))).scalar_one()
        return int(total)

    async def debit(self, key_id: str, amount: int) -> int | None:
        # One conditional UPDATE: the row lock (PostgreSQL) or the single writer (SQLite) makes check and take one
        # step, so concurrent requests can never spend the same credits twice or push a balance below zero.
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.credits >= amount)
            .values(credits=api_keys.c.credits - amount)
            .returning(api_keys.c.credits)
        )
        balance = (await self._tx.execute(statement)).scalar_one_or_none()
        return None if balance is None else int(balance)

    async def credit(self, key_id: str, amount: int, *, meter: bool = False) -> int | None:
        values: dict[str, Any] = {"credits": api_keys.c.credits + amount}
        if meter:
            values["metered"] = True
        statement = update(api_keys).where(api_keys.c.id == key_id).values(**values).returning(api_keys.c.credits)
        balance = (await self._tx.execute(statement)).scalar_one_or_none()
        return None if balance is None else int(balance)


# Built once: constructing an UPDATE and its cache key on every claim was a visible share of a request's time.
_CLAIM = (
    update(jobs)
    .where(jobs.c.id == bindparam("job_id"), jobs.c.status == JobStatus.QUEUED.value)
    .values(
        status=JobStatus.RUNNING.value,
        attempts=jobs.c.attempts + 1,
        started_at=bindparam("now"),
        lease_expires_at=bindparam("lease_until"),
        progress_done=None,  # an earlier attempt's steps say nothing about this one
        progress_total=None,
    )
)
_CLAIM_WITH_SPEC = _CLAIM.returning(*_JOB_COLUMNS, jobs.c.spec)


def _claim_values(job_id: str, now: datetime, lease_until: datetime) -> dict[str, Any]:
    return {"job_id": job_id, "now": now, "lease_until": lease_until}


# Every mutable column from a parameter of its own name, written only while the row is as the writer last saw it.
_FENCED_UPDATE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("job_id"),
        jobs.c.status == bindparam("expected_status"),
        jobs.c.attempts == bindparam("expected_attempts"),
    )
    .values({name: bindparam(f"set_{name}") for name in _MUTABLE_COLUMNS})  # a column's own name is reserved
    .returning(jobs.c.id)
)


class SqlJobRepository:
    """Jobs and their specs; ``claim`` and ``update`` are the fenced moves that make execution at-least-once safe."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, job: Job, spec_doc: Mapping[str, Any]) -> None:
        row = {
            "id": job.id,
            "key_id": job.key_id,
            "model": job.model,
            "dialect": job.dialect,
            "n": job.n,
            "created_at": job.created_at,
            "request_id": job.request_id,
            "priority": int(job.priority),
            "spec": dict(spec_doc),
            **_mutable_values(job),
        }
        await self._tx.insert(jobs, row)

    async def get(self, job_id: str) -> Job | None:
        row = (await self._tx.execute(_JOB_BY_ID, {"job_id": job_id})).first()
        return None if row is None else _job(row)

    async def get_spec_doc(self, job_id: str) -> dict[str, Any] | None:
        spec = (await self._tx.execute(select(jobs.c.spec).where(jobs.c.id == job_id))).scalar_one_or_none()
        return None if spec is None else dict(spec)

    async def claim_with_spec(
        self, job_id: str, *, now: datetime, lease_until: datetime
    ) -> tuple[Job, dict[str, Any]] | None:
        values = _claim_values(job_id, now, lease_until)
        row = (await self._tx.execute(_CLAIM_WITH_SPEC, values)).first()
        return None if row is None else (_job(row), dict(row.spec))

    async def update(self, job: Job, *, expected_status: JobStatus, expected_attempts: int) -> bool:
        """Write ``job`` only if the row is still in ``expected_status`` at ``expected_attempts`` (fencing)."""
        values = {
            **{f"set_{name}": value for name, value in _mutable_values(job).items()},
            "job_id": job.id,
            "expected_status": expected_status.value,
            "expected_attempts": expected_attempts,
        }
        return await self._tx.matched(_FENCED_UPDATE, values)

    async def set_progress(self, job_id: str, progress: Progress, *, expected_attempts: int) -> bool:
        """Record how far a RUNNING job is; fenced like ``update`` so a replaced worker cannot write."""
        statement = (
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.status == JobStatus.RUNNING.value,
                jobs.c.attempts == expected_attempts,
            )
            .values(progress_done=progress.done, progress_total=progress.total)
            .returning(jobs.c.id)
        )
        return (await self._tx.execute(statement)).first() is not None

    async def ids_with_status(self, status: JobStatus, *, limit: int = 1000) -> builtins.list[tuple[str, int]]:
        query = (
            select(jobs.c.id, jobs.c.priority)
            .where(jobs.c.status == status.value)
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(limit)
        )
        return [(str(row.id), int(row.priority)) for row in (await self._tx.execute(query)).all()]

    async def list_for_key(self, key_id: str, *, limit: int, before: str | None = None) -> builtins.list[Job]:
        query = select(*_JOB_COLUMNS).where(jobs.c.key_id == key_id)
        if before is not None:
            cursor = (await self._tx.execute(select(jobs.c.created_at).where(jobs.c.id == before))).scalar()
            if cursor is None:
                return []
            query = query.where(or_(jobs.c.created_at < cursor, and_(jobs.c.created_at == cursor, jobs.c.id < before)))
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        return [_job(row) for row in await self._tx.execute(query)]

    async def expired_leases(self, now: datetime, *, limit: int = 1000) -> builtins.list[Job]:
        """RUNNING jobs whose lease ran out: their worker died or lost contact."""
        query = (
            select(*_JOB_COLUMNS)
            .where(jobs.c.status == JobStatus.RUNNING.value, jobs.c.lease_expires_at < now)
            .order_by(jobs.c.lease_expires_at, jobs.c.id)
            .limit(limit)
        )
        return [_job(row) for row in await self._tx.execute(query)]

    async def unfinished_before(
        self, priority: JobPriority, created_before: datetime, *, limit: int
    ) -> builtins.list[Job]:
        query = (
            select(*_JOB_COLUMNS)
            .where(
                jobs.c.status.in_((JobStatus.QUEUED.value, JobStatus.RUNNING.value)),
                jobs.c.created_at < created_before,
                jobs.c.priority == int(priority),
            )
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(limit)
        )
        return [_job(row) for row in await self._tx.execute(query)]


class SqlFileRepository:
    """Records of stored output images; the bytes live in the object store."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, record: FileRecord) -> None:
        row = {
            "id": record.id,
            "job_id": record.job_id,
            "key_id": record.key_id,
            "storage_key": record.storage_key,
            "mime_type": record.mime_type,
            "size_bytes": record.size_bytes,
            "width": record.width,
            "height": record.height,
            "created_at": record.created_at,
            "expires_at": record.expires_at,
        }
        await self._tx.insert(files, row)

    async def get(self, file_id: str) -> FileRecord | None:
        row = (await self._tx.execute(select(files).where(files.c.id == file_id))).first()
        return None if row is None else _file(row)

    async def expired(self, now: datetime, *, limit: int = 500) -> builtins.list[FileRecord]:
        query = (
            select(files)
            .where(files.c.expires_at.is_not(None), files.c.expires_at < now)
            .order_by(files.c.expires_at)
            .limit(limit)
        )
        return [_file(row) for row in (await self._tx.execute(query)).all()]

    async def delete(self, file_id: str) -> bool:
        result = await self._tx.execute(delete(files).where(files.c.id == file_id))
        return bool(getattr(result, "rowcount", 0))


def _file(row: Row[Any]) -> FileRecord:
    return FileRecord(
        id=row.id,
        job_id=row.job_id,
        key_id=row.key_id,
        storage_key=row.storage_key,
        mime_type=row.mime_type,
        size_bytes=row.size_bytes,
        width=row.width,
        height=row.height,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def _mutable_values(job: Job) -> dict[str, Any]:
    """The ``_MUTABLE_COLUMNS`` of ``job``, as stored."""
    return {
        "status": job.status.value,
        "attempts": job.attempts,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "lease_expires_at": job.lease_expires_at,
        "deployment": job.deployment,
        "results": encode_results(job.results),
        "error": encode_error(job.error),
        "held": job.held,
        "charged": job.charged,
        "progress_done": job.progress.done if job.progress else None,
        "progress_total": job.progress.total if job.progress else None,
    }


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        credits=row.credits,
        is_admin=row.is_admin,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        metered=row.metered,
    )


def _job(row: Row[Any]) -> Job:
    return Job(
        id=row.id,
        key_id=row.key_id,
        model=row.model,
        status=JobStatus(row.status),
        created_at=row.created_at,
        attempts=row.attempts,
        started_at=row.started_at,
        finished_at=row.finished_at,
        lease_expires_at=row.lease_expires_at,
        deployment=row.deployment,
        results=decode_results(row.results),
        error=decode_error(row.error),
        n=row.n,
        dialect=row.dialect,
        request_id=row.request_id,
        held=row.held,
        charged=row.charged,
        progress=None if row.progress_total is None else Progress(row.progress_done or 0, row.progress_total),
        priority=JobPriority(row.priority),
    )
