"""Batch rows (the Gemini Batch API)."""

from __future__ import annotations

import builtins
from dataclasses import asdict
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update

from imagegate.core.ports import BatchRecord
from imagegate.persistence.tables import batches
from imagegate.persistence.transaction import Transaction


class SqlBatchRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, record: BatchRecord) -> None:
        await self._tx.execute(insert(batches).values(**asdict(record)))

    async def get(self, batch_id: str) -> BatchRecord | None:
        row = (await self._tx.execute(select(batches).where(batches.c.id == batch_id))).first()
        return None if row is None else _record(row)

    async def update(self, record: BatchRecord) -> None:
        values = asdict(record)
        del values["id"]
        await self._tx.execute(update(batches).where(batches.c.id == record.id).values(**values))

    async def delete(self, batch_id: str) -> None:
        await self._tx.execute(delete(batches).where(batches.c.id == batch_id))

    async def page(self, key_id: str, *, after: str | None, limit: int) -> builtins.list[BatchRecord]:
        c = batches.c
        query = select(batches).where(c.key_id == key_id)
        if after is not None and (last := await self.get(after)) is not None:
            query = query.where(
                or_(c.created_at < last.created_at, and_(c.created_at == last.created_at, c.id < last.id))
            )
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [_record(row) for row in (await self._tx.execute(query)).all()]


def _record(row: Row[Any]) -> BatchRecord:
    return BatchRecord(**dict(row._mapping))
