"""Idempotency rows: one per (API key hash, Idempotency-Key), claimed by a first request and then holding its answer.

Every write that could race another process is conditional: ``add`` inserts only where no row exists (an
``ON CONFLICT DO NOTHING`` on both backends, so a lost race is an answer, not an aborted transaction), and
``replace``/``delete`` only touch a row that still carries the caller's attempt token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from imagegate.core.ports import IdempotencyRecord
from imagegate.persistence.tables import idempotency_keys
from imagegate.persistence.transaction import Transaction

_t = idempotency_keys.c


class SqlIdempotencyRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        query = select(idempotency_keys).where(_t.scope == scope, _t.idempotency_key == key)
        row = (await self._tx.execute(query)).first()
        return None if row is None else _record(row)

    async def add(self, record: IdempotencyRecord) -> bool:
        values = {**_values(record), "scope": record.scope, "idempotency_key": record.key, "job_id": record.job_id}
        statement = (
            self._insert().values(**values).on_conflict_do_nothing(index_elements=[_t.scope, _t.idempotency_key])
        )
        result = await self._tx.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def replace(self, record: IdempotencyRecord, *, expected_token: str) -> bool:
        statement = (
            update(idempotency_keys)
            .where(_t.scope == record.scope, _t.idempotency_key == record.key, _t.token == expected_token)
            # The job link is written by ``link_job`` alone: answering a claim must not forget it.
            .values(**_values(record), **({"job_id": record.job_id} if record.job_id else {}))
        )
        result = await self._tx.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def delete(self, scope: str, key: str, *, expected_token: str) -> bool:
        statement = delete(idempotency_keys).where(
            _t.scope == scope, _t.idempotency_key == key, _t.token == expected_token
        )
        result = await self._tx.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def link_job(self, scope: str, key: str, job_id: str, *, expected_token: str) -> bool:
        statement = (
            update(idempotency_keys)
            .where(_t.scope == scope, _t.idempotency_key == key, _t.token == expected_token)
            .values(job_id=job_id)
        )
        result = await self._tx.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def delete_expired(self, now: datetime) -> int:
        result = await self._tx.execute(delete(idempotency_keys).where(_t.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)

    def _insert(self) -> postgresql.Insert | sqlite.Insert:
        # Both dialects spell "insert unless the key exists" the same way, but each has its own construct.
        dialect = self._tx.dialect_name
        if dialect == "postgresql":
            return postgresql.insert(idempotency_keys)
        if dialect == "sqlite":
            return sqlite.insert(idempotency_keys)
        raise NotImplementedError(f"idempotency keys need PostgreSQL or SQLite, not {dialect}")


def _values(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "fingerprint": record.fingerprint,
        "token": record.token,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "status": record.status,
        # None (not []) while in progress, so a claim and an answer without headers stay distinguishable in SQL.
        "headers": None if record.status is None else [list(pair) for pair in record.headers],
        "body": None if record.status is None else record.body,
        "completed_at": record.completed_at,
    }


def _record(row: Row[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=row.scope,
        key=row.idempotency_key,
        fingerprint=row.fingerprint,
        token=row.token,
        created_at=row.created_at,
        expires_at=row.expires_at,
        status=row.status,
        headers=tuple((str(name), str(value)) for name, value in row.headers or ()),
        body=bytes(row.body or b""),
        completed_at=row.completed_at,
        job_id=row.job_id,
    )
