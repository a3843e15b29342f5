"""Uploaded-file rows (the Gemini Files API's files and batch results files)."""

from __future__ import annotations

import builtins
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, update

from imagegate.core.ports import UploadedFile
from imagegate.persistence.tables import uploaded_files
from imagegate.persistence.transaction import Transaction


class SqlUploadedFileRepository:
    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    async def add(self, record: UploadedFile) -> None:
        await self._tx.execute(insert(uploaded_files).values(**asdict(record)))

    async def get(self, file_id: str) -> UploadedFile | None:
        return await self._one(uploaded_files.c.id == file_id)

    async def by_upload_token(self, token: str) -> UploadedFile | None:
        return await self._one(uploaded_files.c.upload_token == token)

    async def update(self, record: UploadedFile) -> None:
        values = asdict(record)
        del values["id"]
        await self._tx.execute(update(uploaded_files).where(uploaded_files.c.id == record.id).values(**values))

    async def delete(self, file_id: str) -> None:
        await self._tx.execute(delete(uploaded_files).where(uploaded_files.c.id == file_id))

    async def page(self, key_id: str, now: datetime, *, after: str | None, limit: int) -> builtins.list[UploadedFile]:
        c = uploaded_files.c
        query = select(uploaded_files).where(c.key_id == key_id, c.expires_at > now, c.state == "ACTIVE")
        if after is not None:
            last = await self.get(after)
            if last is not None:  # newest first: what comes after is older, or as old with a smaller id
                query = query.where(
                    or_(c.created_at < last.created_at, and_(c.created_at == last.created_at, c.id < last.id))
                )
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [_record(row) for row in (await self._tx.execute(query)).all()]

    async def expired(self, now: datetime, *, limit: int) -> builtins.list[UploadedFile]:
        query = select(uploaded_files).where(uploaded_files.c.expires_at <= now).limit(limit)
        return [_record(row) for row in (await self._tx.execute(query)).all()]

    async def _one(self, condition: Any) -> UploadedFile | None:
        row = (await self._tx.execute(select(uploaded_files).where(condition))).first()
        return None if row is None else _record(row)


def _record(row: Row[Any]) -> UploadedFile:
    return UploadedFile(**dict(row._mapping))
