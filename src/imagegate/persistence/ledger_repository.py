"""Ledger rows: every grant, hold, capture and release of a key's money."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select

from imagegate.core.ports import LedgerEntry
from imagegate.persistence.tables import jobs, ledger
from imagegate.persistence.transaction import Transaction


class SqlLedgerRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, entry: LedgerEntry) -> None:
        row = {
            "id": entry.id,
            "key_id": entry.key_id,
            "job_id": entry.job_id,
            "kind": entry.kind,
            "amount": entry.amount,
            "balance_after": entry.balance_after,
            "images": entry.images,
            "input_tokens": entry.input_tokens,
            "output_tokens": entry.output_tokens,
            "model": entry.model,
            "created_at": entry.created_at,
        }
        await self._tx.insert(ledger, row)

    async def for_job(self, job_id: str) -> builtins.list[LedgerEntry]:
        query = select(ledger).where(ledger.c.job_id == job_id).order_by(ledger.c.created_at, ledger.c.id)
        return [_entry(row) for row in await self._tx.execute(query)]

    async def held(self, key_id: str) -> int:
        # Holds of jobs not settled yet: the job's ``charged`` is written in the transaction that settles it.
        query = select(func.coalesce(func.sum(jobs.c.held), 0)).where(jobs.c.key_id == key_id, jobs.c.charged.is_(None))
        return int((await self._tx.execute(query)).scalar_one())

    async def captures(self, key_id: str | None, since: datetime | None = None) -> builtins.list[LedgerEntry]:
        return await self.entries(key_id, since, kind="capture")

    async def entries(
        self, key_id: str | None, since: datetime | None = None, *, kind: str | None = None
    ) -> builtins.list[LedgerEntry]:
        query = select(ledger)
        if kind is not None:
            query = query.where(ledger.c.kind == kind)
        if key_id is not None:
            query = query.where(ledger.c.key_id == key_id)
        if since is not None:
            query = query.where(ledger.c.created_at >= since)
        query = query.order_by(ledger.c.created_at, ledger.c.id)
        return [_entry(row) for row in await self._tx.execute(query)]


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        key_id=row.key_id,
        kind=row.kind,
        amount=row.amount,
        balance_after=row.balance_after,
        created_at=row.created_at,
        job_id=row.job_id,
        images=row.images,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        model=row.model,
    )
