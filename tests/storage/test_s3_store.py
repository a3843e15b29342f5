"""The object store against a real S3 server (moto, server mode, on loopback), through obstore's S3 client."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from backend_servers import MotoS3Server
from imagegate.errors import NotFound, StorageUnavailable
from imagegate.settings import load_settings
from imagegate.storage import S3Options, open_object_store


def _options(server: MotoS3Server, **overrides: object) -> S3Options:
    given: dict[str, object] = {
        "endpoint": server.endpoint,
        "region": server.region,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        **overrides,
    }
    return S3Options(**given)  # type: ignore[arg-type]


@pytest.fixture
def bucket(s3_server: MotoS3Server) -> str:
    name = f"imagegate-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(name)
    return name


async def test_put_get_exists_delete_under_a_prefix(s3_server: MotoS3Server, bucket: str) -> None:
    store = open_object_store(f"s3://{bucket}/images/v1", s3=_options(s3_server))
    await store.put("outputs/job_1/file_1.png", b"\x89PNG...", content_type="image/png")

    assert await store.get("outputs/job_1/file_1.png") == b"\x89PNG..."
    assert await store.exists("outputs/job_1/file_1.png")
    assert s3_server.list_keys(bucket) == ["images/v1/outputs/job_1/file_1.png"]  # the prefix is honoured

    await store.delete("outputs/job_1/file_1.png")
    await store.delete("outputs/job_1/file_1.png")  # deleting what is gone is done
    assert not await store.exists("outputs/job_1/file_1.png")
    with pytest.raises(NotFound):
        await store.get("outputs/job_1/file_1.png")


async def test_content_type_is_stored_with_the_object(s3_server: MotoS3Server, bucket: str) -> None:
    import boto3

    store = open_object_store(f"s3://{bucket}", s3=_options(s3_server))
    await store.put("a.webp", b"RIFF....WEBP", content_type="image/webp")
    head = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).head_object(Bucket=bucket, Key="a.webp")
    assert head["ContentType"] == "image/webp"


async def test_a_missing_bucket_is_a_storage_error_not_a_crash(s3_server: MotoS3Server, bucket: str) -> None:
    # moto accepts any key pair; a missing bucket is what a misconfigured deployment most often meets
    store = open_object_store(f"s3://{bucket}-missing", s3=_options(s3_server, max_retries=0))
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await store.put("x.png", b"x", content_type="image/png")


async def test_an_unreachable_server_fails_cleanly_after_bounded_retries(tmp_path: Path) -> None:
    server = MotoS3Server(tmp_path)  # never started: nothing listens on its port
    store = open_object_store("s3://nowhere", s3=_options(server, max_retries=1, retry_timeout_s=2.0))
    with pytest.raises(StorageUnavailable):
        await store.put("x.png", b"x")
    with pytest.raises(StorageUnavailable):
        await store.get("x.png")


async def test_unsafe_keys_are_refused_before_any_request(s3_server: MotoS3Server) -> None:
    store = open_object_store("s3://any", s3=_options(s3_server))
    with pytest.raises(ValueError, match="unsafe"):
        await store.put("../etc/passwd", b"x")


def test_an_s3_url_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="names no bucket"):
        open_object_store("s3:///prefix")


def test_settings_take_s3_options_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGEGATE_HOME", str(tmp_path))
    monkeypatch.setenv("IMAGEGATE_STORAGE_URL", "s3://bucket/prefix")
    monkeypatch.setenv("IMAGEGATE_S3__ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("IMAGEGATE_S3__SECRET_ACCESS_KEY", "sekrit")
    settings = load_settings()
    assert settings.s3.endpoint == "http://127.0.0.1:9"
    assert "sekrit" not in str(settings.masked())


def test_a_distributed_queue_refuses_local_files_unless_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMAGEGATE_HOME", str(tmp_path))
    fleet = {"queue_url": "database", "database_url": "postgresql://u@db/imagegate"}  # the queue needs PostgreSQL
    with pytest.raises(ValueError, match="storage_shared = true"):
        load_settings(**fleet)
    assert load_settings(**fleet, storage_shared=True).storage_shared
    assert load_settings(**fleet, storage_url="s3://bucket").distributed_queue
    assert not load_settings().distributed_queue  # the embedded default needs nothing
