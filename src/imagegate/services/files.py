"""Hosted images: reading stored outputs back for their signed URLs, and the retention policy."""

from __future__ import annotations

import logging

from imagegate.core.ports import FileRecord
from imagegate.errors import NotFound
from imagegate.services.context import Services

log = logging.getLogger(__name__)


async def read_file(svc: Services, file_id: str) -> tuple[FileRecord, bytes]:
    async with svc.uow() as uow:
        record = await uow.files.get(file_id)
    if record is None or (record.expires_at is not None and record.expires_at < svc.clock()):
        raise NotFound(f"file {file_id} not found")
    return record, await svc.store.get(record.storage_key)


async def delete_expired_files(svc: Services, *, batch: int = 500) -> int:
    """Delete the bytes and records of files past their retention; returns how many went."""
    async with svc.uow(scan=True) as uow:
        expired = await uow.files.expired(svc.clock(), limit=batch)
    for record in expired:
        await svc.store.delete(record.storage_key)  # bytes first: a record never outlives its bytes' deletion
        async with svc.uow() as uow:
            await uow.files.delete(record.id)
            await uow.commit()
    if expired:
        log.info("retention: deleted %d expired files", len(expired))
    return len(expired)
