"""Uploaded files (the Gemini Files API): a resumable upload in chunks, then an active file its key can use.

An upload starts with a declared size and type and gets a secret upload token (the chunk requests carry no API
key: the token is the authorization). Chunks must arrive in order at the offset the server has; each is stored
as its own object (in the upload's ``.chunks/`` folder), so any process can take the next one. Finalizing joins
them, checks the size and the type (an image is sniffed from its bytes; JSONL for batch input must be UTF-8
text), records the SHA-256 and makes the file ``ACTIVE`` for ``upload_ttl_s`` (48 hours, as Google's). Another
key's file, or an expired one, is "not found": ids must not leak.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import replace
from datetime import timedelta

from imagegate.core.ids import random_base62
from imagegate.core.images import INPUT_MIME_TYPES, ImageInput, sniff_mime_type
from imagegate.core.ports import ApiKey, UploadedFile
from imagegate.errors import InvalidImage, InvalidRequest, NotFound
from imagegate.services.context import Services

#: Batch input files: the SDK's docs upload them with mime_type "jsonl".
JSONL_MIME_TYPES = frozenset({"jsonl", "application/jsonl", "application/x-jsonl", "application/json", "text/plain"})
ACTIVE = "ACTIVE"
PROCESSING = "PROCESSING"
MAX_PAGE_SIZE = 100


def _chunk_folder(record: UploadedFile) -> str:
    return f"{record.storage_key}.chunks/"


def _chunk_key(record: UploadedFile, offset: int) -> str:
    return f"{_chunk_folder(record)}{offset:012d}"


def _not_found(file_id: str) -> NotFound:
    return NotFound(f"File files/{file_id} not found.", field="name")


async def start_upload(
    svc: Services, principal: ApiKey, *, mime_type: str, size_bytes: int, display_name: str | None
) -> UploadedFile:
    """A new upload session for a file of ``size_bytes`` bytes of ``mime_type``."""
    kind = mime_type.strip().lower()
    if kind not in INPUT_MIME_TYPES and kind not in JSONL_MIME_TYPES:
        raise InvalidRequest(
            f"Unsupported MIME type: {mime_type}. Upload images (PNG, JPEG, WEBP, HEIC, HEIF, GIF) or JSONL "
            "batch input.",
            field="file.mime_type",
        )
    limit = svc.config.upload_max_bytes
    if size_bytes <= 0:
        raise InvalidRequest("The file is empty: X-Goog-Upload-Header-Content-Length must be positive.")
    if size_bytes > limit:
        raise InvalidRequest(
            f"File size {size_bytes} bytes exceeds the maximum of {limit} bytes per file.", field="file.size_bytes"
        )
    now = svc.clock()
    file_id = random_base62(12).lower()
    record = UploadedFile(
        id=file_id,
        key_id=principal.id,
        mime_type=kind,
        size_bytes=size_bytes,
        received_bytes=0,
        storage_key=f"uploads/{file_id}",
        state=PROCESSING,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=svc.config.upload_ttl_s),
        display_name=display_name,
        upload_token=secrets.token_urlsafe(24),
    )
    async with svc.uow() as uow:
        await uow.uploads.add(record)
        await uow.commit()
    return record


async def upload_chunk(svc: Services, token: str, *, offset: int, data: bytes, finalize: bool) -> UploadedFile:
    """Store the chunk at ``offset`` (a repeated chunk already stored is accepted again); finalize if asked."""
    record = await _session(svc, token)
    if offset < record.received_bytes and await _is_stored_chunk(svc, record, offset, data):
        pass  # a retry of a chunk that arrived (its answer was lost): nothing to store again
    elif offset != record.received_bytes:
        raise InvalidRequest(
            f"Invalid upload offset {offset}: the server has {record.received_bytes} bytes of this upload."
        )
    elif data:
        if record.received_bytes + len(data) > record.size_bytes:
            raise InvalidRequest(f"The upload is larger than the {record.size_bytes} bytes declared when it started.")
        await svc.store.put(_chunk_key(record, offset), data)
        record = replace(record, received_bytes=record.received_bytes + len(data), updated_at=svc.clock())
        async with svc.uow() as uow:
            await uow.uploads.update(record)
            await uow.commit()
    return await _finalize(svc, record) if finalize else record


async def _is_stored_chunk(svc: Services, record: UploadedFile, offset: int, data: bytes) -> bool:
    try:
        stored = await svc.store.get(_chunk_key(record, offset))
    except NotFound:  # no chunk started there: the offset is simply wrong
        return False
    return stored == data


async def upload_status(svc: Services, token: str) -> UploadedFile:
    return await _session(svc, token)


async def _session(svc: Services, token: str) -> UploadedFile:
    async with svc.uow() as uow:
        record = await uow.uploads.by_upload_token(token)
    if record is None or record.expires_at <= svc.clock():
        raise NotFound("This upload session does not exist or has expired; start the upload again.")
    return record


async def _finalize(svc: Services, record: UploadedFile) -> UploadedFile:
    if record.state == ACTIVE:
        return record
    if record.received_bytes != record.size_bytes:
        raise InvalidRequest(
            f"The upload ended after {record.received_bytes} of the {record.size_bytes} bytes declared."
        )
    parts: list[bytes] = []
    offset = 0
    while offset < record.received_bytes:
        part = await svc.store.get(_chunk_key(record, offset))
        parts.append(part)
        offset += len(part)
    data = b"".join(parts)
    _check_content(record, data)
    await svc.store.put(record.storage_key, data, content_type=_content_type(record, data))
    now = svc.clock()
    active = replace(
        record,
        state=ACTIVE,
        mime_type=_content_type(record, data),
        sha256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        upload_token=None,
        updated_at=now,
        expires_at=now + timedelta(seconds=svc.config.upload_ttl_s),
    )
    async with svc.uow() as uow:
        await uow.uploads.update(active)
        await uow.commit()
    offset = 0
    for part in parts:  # the parts are not needed any more; a failure here only leaves garbage for the purge
        await svc.store.delete(_chunk_key(record, offset))
        offset += len(part)
    return active


def _check_content(record: UploadedFile, data: bytes) -> None:
    if record.mime_type in JSONL_MIME_TYPES:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("The JSONL file is not UTF-8 text.") from None
        return
    if sniff_mime_type(data) is None:
        raise InvalidImage(f"The uploaded file is not a {record.mime_type} image (nor any supported image).")


def _content_type(record: UploadedFile, data: bytes) -> str:
    # An image's type is what its bytes are; the declared one is often wrong (octet-stream, .jpg for a PNG).
    return record.mime_type if record.mime_type in JSONL_MIME_TYPES else (sniff_mime_type(data) or record.mime_type)


async def get_upload(svc: Services, principal: ApiKey, file_id: str) -> UploadedFile:
    """An active, unexpired file of this key; anything else is "not found"."""
    async with svc.uow() as uow:
        record = await uow.uploads.get(file_id)
    if (
        record is None
        or record.state != ACTIVE
        or record.expires_at <= svc.clock()
        or (record.key_id != principal.id and not principal.is_admin)
    ):
        raise _not_found(file_id)
    return record


async def list_uploads(
    svc: Services, principal: ApiKey, *, page_size: int | None, page_token: str | None
) -> tuple[list[UploadedFile], str | None]:
    """One page of the key's files, newest first, and the token of the next page (None on the last)."""
    size = min(page_size or 10, MAX_PAGE_SIZE)
    async with svc.uow(scan=True) as uow:
        rows = await uow.uploads.page(principal.id, svc.clock(), after=page_token or None, limit=size + 1)
    return rows[:size], (rows[size - 1].id if len(rows) > size else None)


async def delete_upload(svc: Services, principal: ApiKey, file_id: str) -> None:
    record = await get_upload(svc, principal, file_id)
    async with svc.uow() as uow:
        await uow.uploads.delete(record.id)
        await uow.commit()
    await svc.store.delete(record.storage_key)


async def read_upload(svc: Services, principal: ApiKey, file_id: str) -> tuple[UploadedFile, bytes]:
    record = await get_upload(svc, principal, file_id)
    return record, await svc.store.get(record.storage_key)


async def read_upload_image(svc: Services, principal: ApiKey, file_id: str, *, field: str) -> ImageInput:
    """An uploaded image as a job input; a JSONL or missing file is the caller's mistake, named by ``field``."""
    try:
        record, data = await read_upload(svc, principal, file_id)
    except NotFound:
        raise InvalidRequest(
            f"File files/{file_id} is not available: it does not exist, has expired, or belongs to another key.",
            field=field,
        ) from None
    if record.mime_type in JSONL_MIME_TYPES:
        raise InvalidRequest(f"File files/{file_id} is {record.mime_type}, not an image.", field=field)
    return ImageInput.from_bytes(data, field=field)


async def delete_expired_uploads(svc: Services, *, batch: int = 500) -> int:
    """Delete the bytes and rows of expired uploads (and abandoned upload sessions); returns how many went."""
    async with svc.uow(scan=True) as uow:
        expired = await uow.uploads.expired(svc.clock(), limit=batch)
    for record in expired:
        if record.state == ACTIVE:
            await svc.store.delete(record.storage_key)
        # An abandoned session's chunks, or those a finalize could not clean up: listed, since the row does not
        # say where each chunk began.
        for part in await svc.store.list_keys(_chunk_folder(record)):
            await svc.store.delete(part)
        async with svc.uow() as uow:
            await uow.uploads.delete(record.id)
            await uow.commit()
    return len(expired)


async def create_generated(
    svc: Services, principal: ApiKey, data: bytes, *, mime_type: str, display_name: str | None
) -> UploadedFile:
    """A file this server made for the key (a batch's results), active at once, expiring like uploads."""
    now = svc.clock()
    file_id = random_base62(12).lower()
    record = UploadedFile(
        id=file_id,
        key_id=principal.id,
        mime_type=mime_type,
        size_bytes=len(data),
        received_bytes=len(data),
        storage_key=f"uploads/{file_id}",
        state=ACTIVE,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=svc.config.upload_ttl_s),
        display_name=display_name,
        sha256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
        source="GENERATED",
    )
    await svc.store.put(record.storage_key, data, content_type=mime_type)
    async with svc.uow() as uow:
        await uow.uploads.add(record)
        await uow.commit()
    return record
