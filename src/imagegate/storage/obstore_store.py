"""The ``ObjectStore`` port over obstore, which speaks local files, memory and S3-compatible stores alike.

Keys are validated here (no ``..``, no absolute paths) because they become file paths on a local store. Every
failure of the store itself (unreachable, refused, timed out after obstore's own retries) becomes one domain error,
``StorageUnavailable``, so a job fails cleanly and a download answers 503 instead of a stack trace.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, MemoryStore, S3Store, from_url

from imagegate.errors import NotFound, StorageUnavailable

if TYPE_CHECKING:  # typed dicts that exist only in obstore's stubs
    from obstore.store import ClientConfig, RetryConfig, S3Config

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*$")
T = TypeVar("T")


def _check_key(key: str) -> str:
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"unsafe object key: {key!r}")
    return key


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible server; anything left None is read by obstore from ``AWS_*`` variables."""

    endpoint: str | None = None  # e.g. http://127.0.0.1:9000 for moto, SeaweedFS, Ceph, R2, ...
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    virtual_hosted_style: bool = False  # most self-hosted servers want path-style requests
    timeout_s: float = 30.0  # one request, connect included
    connect_timeout_s: float = 5.0
    max_retries: int = 3  # obstore retries transient failures with backoff; then the job fails cleanly
    retry_timeout_s: float = 30.0  # the most time spent retrying one operation


class ObstoreObjectStore:
    """Async get/put/delete on any obstore store."""

    def __init__(self, store: Any, *, where: str = "the object store") -> None:
        self._store = store
        self._where = where

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (FileNotFoundError, ValueError):
            raise
        except Exception as exc:  # obstore's errors, connection failures: the store is not answering
            raise StorageUnavailable(f"Image storage ({self._where}) is unavailable; try again later.") from exc

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        path = _check_key(key)
        attributes = {"Content-Type": content_type} if content_type else None
        try:
            if attributes and not isinstance(self._store, LocalStore | MemoryStore):
                await self._guard(lambda: obstore.put_async(self._store, path, data, attributes=attributes))
            else:  # local files keep no attributes; the database records the type
                await self._guard(lambda: obstore.put_async(self._store, path, data))
        except FileNotFoundError as exc:  # a write cannot miss its object: the bucket itself is missing
            raise StorageUnavailable(f"Image storage ({self._where}) does not exist; create it first.") from exc

    async def get(self, key: str) -> bytes:
        path = _check_key(key)

        async def read() -> bytes:
            result = await obstore.get_async(self._store, path)
            return bytes(await result.bytes_async())

        try:
            return await self._guard(read)
        except FileNotFoundError as exc:
            raise NotFound(f"object {key} not found") from exc

    async def delete(self, key: str) -> None:
        path = _check_key(key)
        with contextlib.suppress(FileNotFoundError):  # deleting what is gone is done
            await self._guard(lambda: obstore.delete_async(self._store, path))

    async def list_keys(self, prefix: str) -> list[str]:
        _check_key(prefix.rstrip("/"))

        async def collect() -> list[str]:
            keys: list[str] = []
            async for batch in obstore.list(self._store, prefix=prefix):
                keys.extend(str(meta["path"]) for meta in batch)
            return keys

        try:
            return await self._guard(collect)
        except FileNotFoundError:  # a local folder never made: nothing under it
            return []

    async def exists(self, key: str) -> bool:
        path = _check_key(key)
        try:
            await self._guard(lambda: obstore.head_async(self._store, path))
        except FileNotFoundError:
            return False
        return True


def _s3_store(url: str, options: S3Options) -> S3Store:
    config: S3Config = {"virtual_hosted_style_request": options.virtual_hosted_style}
    if options.endpoint is not None:
        config["endpoint"] = options.endpoint
    if options.region is not None:
        config["region"] = options.region
    if options.access_key_id is not None:
        config["access_key_id"] = options.access_key_id
    if options.secret_access_key is not None:
        config["secret_access_key"] = options.secret_access_key
    if options.session_token is not None:
        config["session_token"] = options.session_token
    endpoint = options.endpoint or ""
    client: ClientConfig = {
        "timeout": timedelta(seconds=options.timeout_s),
        "connect_timeout": timedelta(seconds=options.connect_timeout_s),
        "allow_http": endpoint.startswith("http://"),  # a plain-HTTP endpoint was asked for by name
    }
    retry: RetryConfig = {
        "max_retries": options.max_retries,
        "retry_timeout": timedelta(seconds=options.retry_timeout_s),
    }
    return S3Store.from_url(url, config=config, client_options=client, retry_config=retry)


def open_object_store(url: str, *, s3: S3Options | None = None) -> ObstoreObjectStore:
    """A store for ``file:///abs/path``, ``memory://``, ``s3://bucket/prefix`` or any URL obstore understands."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(parts.path)
        path.mkdir(parents=True, exist_ok=True)
        return ObstoreObjectStore(LocalStore(path, mkdir=True), where=str(path))
    if parts.scheme == "memory":
        return ObstoreObjectStore(MemoryStore(), where="memory")
    if parts.scheme in ("s3", "s3a"):
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket; write s3://BUCKET[/PREFIX]")
        return ObstoreObjectStore(_s3_store(url, s3 or S3Options()), where=f"{parts.scheme}://{parts.netloc}")
    return ObstoreObjectStore(from_url(url), where=parts.scheme or url)
