"""The ``ObjectStore`` port over obstore, which speaks local files, memory and S3-compatible stores alike.

Keys are validated here (no ``..``, no absolute paths) because they become file paths on a local store.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, MemoryStore, from_url

from imagegate.errors import NotFound

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_\-./]*$")


def _check_key(key: str) -> str:
    if not _SAFE_KEY.match(key) or ".." in key.split("/") or "//" in key:
        raise ValueError(f"unsafe object key: {key!r}")
    return key


class ObstoreObjectStore:
    """Async get/put/delete on any obstore store."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        attributes = {"Content-Type": content_type} if content_type else None
        if attributes and not isinstance(self._store, LocalStore | MemoryStore):
            await obstore.put_async(self._store, _check_key(key), data, attributes=attributes)
        else:  # local files keep no attributes; the database records the type
            await obstore.put_async(self._store, _check_key(key), data)

    async def get(self, key: str) -> bytes:
        try:
            result = await obstore.get_async(self._store, _check_key(key))
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise NotFound(f"object {key} not found") from exc

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):  # deleting what is gone is done
            await obstore.delete_async(self._store, _check_key(key))

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, _check_key(key))
        except FileNotFoundError:
            return False
        return True


def open_object_store(url: str) -> ObstoreObjectStore:
    """A store for ``file:///abs/path``, ``memory://`` or any URL obstore understands (``s3://bucket/prefix``)."""
    scheme = urlsplit(url).scheme
    if scheme == "file":
        path = Path(urlsplit(url).path)
        path.mkdir(parents=True, exist_ok=True)
        return ObstoreObjectStore(LocalStore(path, mkdir=True))
    if scheme == "memory":
        return ObstoreObjectStore(MemoryStore())
    return ObstoreObjectStore(from_url(url))
