"""Webhook rows: one per job that asked for a callback, with its delivery state."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import Row, insert, or_, select, update

from imagegate.core.jobs import TERMINAL_STATUSES
from imagegate.core.ports import WebhookRecord
from imagegate.persistence.tables import jobs, webhooks
from imagegate.persistence.transaction import Transaction


class SqlWebhookRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, record: WebhookRecord) -> None:
        await self._tx.execute(insert(webhooks).values(**_values(record), job_id=record.job_id))

    async def get(self, job_id: str) -> WebhookRecord | None:
        row = (await self._tx.execute(select(webhooks).where(webhooks.c.job_id == job_id))).first()
        return None if row is None else _record(row)

    async def due(self, now: datetime, *, limit: int = 100) -> builtins.list[WebhookRecord]:
        query = (
            select(webhooks)
            .join(jobs, jobs.c.id == webhooks.c.job_id)
            .where(
                webhooks.c.state == "pending",
                or_(webhooks.c.next_attempt_at.is_(None), webhooks.c.next_attempt_at <= now),
                jobs.c.status.in_([s.value for s in TERMINAL_STATUSES]),
            )
            .order_by(webhooks.c.created_at)
            .limit(limit)
        )
        return [_record(row) for row in (await self._tx.execute(query)).all()]

    async def update(self, record: WebhookRecord, *, expected_attempts: int) -> bool:
        statement = (
            update(webhooks)
            .where(webhooks.c.job_id == record.job_id, webhooks.c.attempts == expected_attempts)
            .values(**_values(record))
        )
        result = await self._tx.execute(statement)
        return bool(getattr(result, "rowcount", 0))


def _values(record: WebhookRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "url": record.url,
        "state": record.state,
        "attempts": record.attempts,
        "next_attempt_at": record.next_attempt_at,
        "last_error": record.last_error,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }


def _record(row: Row[Any]) -> WebhookRecord:
    return WebhookRecord(
        job_id=row.job_id,
        key_id=row.key_id,
        url=row.url,
        created_at=row.created_at,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        finished_at=row.finished_at,
    )
