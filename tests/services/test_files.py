"""Signed file URLs, reading outputs back, output formats, and the retention policy."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from imagegate import imaging
from imagegate.core.images import ImageOutput, StoredImageBytes, base64_text, sniff_mime_type
from imagegate.core.jobs import Generation
from imagegate.errors import NotFound, PermissionDenied
from imagegate.services import accounts
from imagegate.services.context import ServiceConfig
from imagegate.services.execute import execute_job
from imagegate.services.files import delete_expired_files, read_file
from imagegate.services.signing import FileUrlSigner
from imagegate.services.submit import submit_job

from .conftest import FakeProvider, image_generation, text_spec

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _query(path: str) -> tuple[str, str, str]:
    parts = urlsplit(path)
    query = parse_qs(parts.query)
    return parts.path.rsplit("/", 1)[1], query["expires"][0], query["signature"][0]


def test_a_signed_link_works_until_it_expires() -> None:
    signer = FileUrlSigner(b"k" * 32, ttl_s=60)
    file_id, expires, signature = _query(signer.path("file_abc", NOW))
    assert file_id == "file_abc"
    assert signer.verify(file_id, expires, signature, NOW + timedelta(seconds=59)) == int(expires)
    with pytest.raises(PermissionDenied, match="expired"):
        signer.verify(file_id, expires, signature, NOW + timedelta(seconds=61))


@pytest.mark.parametrize(
    ("file_id", "expires_delta", "signature"),
    [("file_other", 0, None), ("file_abc", 3600, None), ("file_abc", 0, "AAAA")],
)
def test_a_tampered_link_is_refused(file_id: str, expires_delta: int, signature: str | None) -> None:
    signer = FileUrlSigner(b"k" * 32, ttl_s=60)
    _, expires, good = _query(signer.path("file_abc", NOW))
    with pytest.raises(PermissionDenied, match="signature"):
        signer.verify(file_id, str(int(expires) + expires_delta), signature or good, NOW)


def test_unsigned_links_and_other_secrets_are_refused() -> None:
    signer = FileUrlSigner(b"k" * 32)
    with pytest.raises(PermissionDenied, match="not signed"):
        signer.verify("file_abc", None, None, NOW)
    _, expires, signature = _query(FileUrlSigner(b"x" * 32).path("file_abc", NOW))
    with pytest.raises(PermissionDenied):
        signer.verify("file_abc", expires, signature, NOW)


async def test_outputs_are_stored_in_the_requested_format(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services()
    svc.transcode = imaging.transcode
    principal = (await accounts.create_key(svc, name="f")).record
    job = await submit_job(svc, principal, text_spec(output_mime_type="image/jpeg", output_quality=70))
    finished = await execute_job(svc, job.id)
    assert finished is not None
    [image] = finished.images
    record, data = await read_file(svc, image.file_id)
    assert image.mime_type == record.mime_type == "image/jpeg" == sniff_mime_type(data)


@pytest.mark.parametrize("output", ["image/png", "image/jpeg"])
async def test_an_upstreams_base64_is_kept_for_the_answer_only_while_the_bytes_are_its(  # type: ignore[no-untyped-def]
    make_services, output: str
) -> None:
    spec = text_spec(output_mime_type=output)
    made = image_generation(spec)
    sent = b"an upstream's own base64 text"
    image = ImageOutput(made.images[0].data, "image/png", 1, 1, base64=memoryview(sent))
    svc = make_services(FakeProvider(Generation(images=(image,), text=made.text, usage=made.usage)))
    svc.transcode = imaging.transcode
    principal = (await accounts.create_key(svc, name="f")).record
    job = await submit_job(svc, principal, spec)
    with svc.handoff.watch(job.id) as handed:
        finished = await execute_job(svc, job.id)
        delivered = handed()
    assert finished is not None and delivered is not None
    [stored] = finished.images
    images = delivered.images
    assert isinstance(images, StoredImageBytes)
    if output == "image/png":  # stored as it came: its text is sent on
        assert base64_text(images, stored.file_id) == sent
    else:  # converted: the upstream's text is not this image's; it is encoded afresh
        assert images.base64 == {} and base64_text(images, stored.file_id) == base64.b64encode(images[stored.file_id])


async def test_retention_deletes_bytes_and_records(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(config=ServiceConfig(file_retention_s=60))
    principal = (await accounts.create_key(svc, name="f")).record
    job = await submit_job(svc, principal, text_spec())
    finished = await execute_job(svc, job.id)
    assert finished is not None
    [image] = finished.images
    assert await delete_expired_files(svc) == 0
    record, _ = await read_file(svc, image.file_id)
    later = svc.clock() + timedelta(seconds=61)
    svc.clock = lambda: later
    with pytest.raises(NotFound):  # expired files are gone for readers at once, before the sweeper runs
        await read_file(svc, image.file_id)
    assert await delete_expired_files(svc) == 1
    assert not await svc.store.exists(record.storage_key)
    async with svc.uow() as uow:
        assert await uow.files.get(image.file_id) is None


async def test_no_retention_keeps_files(make_services) -> None:  # type: ignore[no-untyped-def]
    svc = make_services(config=ServiceConfig(file_retention_s=None))
    principal = (await accounts.create_key(svc, name="f")).record
    finished = await execute_job(svc, (await submit_job(svc, principal, text_spec())).id)
    assert finished is not None
    record, _ = await read_file(svc, finished.images[0].file_id)
    assert record.expires_at is None
