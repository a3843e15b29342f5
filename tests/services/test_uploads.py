"""Resumable uploads and what their expiry leaves behind: nothing, finished or not."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from imagegate.services import accounts, uploads
from imagegate.services.context import utc_now

from .conftest import PNG_1x1


async def _keys(svc, prefix: str = "uploads/") -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(await svc.store.list_keys(prefix))


async def test_an_abandoned_session_leaves_no_chunks_once_it_expires(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = (await accounts.create_key(svc, name="u")).record
    session = await uploads.start_upload(
        svc, principal, mime_type="image/png", size_bytes=len(PNG_1x1), display_name=None
    )
    token = session.upload_token or ""
    await uploads.upload_chunk(svc, token, offset=0, data=PNG_1x1[:20], finalize=False)
    await uploads.upload_chunk(svc, token, offset=20, data=PNG_1x1[20:40], finalize=False)
    assert len(await _keys(svc)) == 2  # two chunks stored, the session never finished

    assert await uploads.delete_expired_uploads(svc) == 0  # not expired yet: nothing goes
    assert len(await _keys(svc)) == 2

    later = utc_now() + timedelta(seconds=svc.config.upload_ttl_s + 1)
    svc.clock = lambda: later
    assert await uploads.delete_expired_uploads(svc) == 1
    assert await _keys(svc) == []
    async with svc.uow() as uow:
        assert await uow.uploads.get(session.id) is None


async def test_an_expired_file_goes_with_its_bytes_and_leaves_other_files_alone(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    principal = (await accounts.create_key(svc, name="u")).record
    made = []
    for _ in range(2):
        session = await uploads.start_upload(
            svc, principal, mime_type="image/png", size_bytes=len(PNG_1x1), display_name=None
        )
        made.append(await uploads.upload_chunk(svc, session.upload_token or "", offset=0, data=PNG_1x1, finalize=True))
    assert await _keys(svc) == sorted(record.storage_key for record in made)  # finalizing removed the chunks

    async with svc.uow() as uow:  # only the first one is past its expiry
        await uow.uploads.update(replace(made[0], expires_at=utc_now()))
        await uow.commit()
    assert await uploads.delete_expired_uploads(svc) == 1
    assert await _keys(svc) == [made[1].storage_key]
    assert (await uploads.get_upload(svc, principal, made[1].id)).id == made[1].id
