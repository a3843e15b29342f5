"""Runtimes on the database queue: several "processes" (runtimes) in one test, sharing one fresh PostgreSQL
database and one storage directory, as separate processes would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from imagegate.bootstrap import Runtime, open_runtime
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.settings import Settings, load_settings

pytestmark = pytest.mark.postgres

OpenRuntime = Callable[..., AbstractAsyncContextManager[Runtime]]


def spec(prompt: str = "a lighthouse", *, n: int = 1, model: str = "gemini-2.5-flash-image") -> JobSpec:
    parts: tuple[str | ImageInput, ...] = (prompt,)
    return JobSpec(model=model, turns=(Turn(Role.USER, parts),), n=n)


def queue_settings(home: Path, database_url: str, storage: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "storage_url": storage.as_uri(),
        "queue_url": "database",
        "storage_shared": True,  # every "process" of a test sees the same directory
        "url_signing_key": "one-secret-for-the-whole-fleet",
        "gemini_api_key": None,
        "deployments": [{"name": "emulator", "provider": "emulator"}],
        "job_lease_s": 5.0,
        "heartbeat_s": 0.2,
        "waiter_check_s": 0.2,
        "sweep_interval_s": 0.2,
        **overrides,
    }
    return load_settings(**values)


@pytest.fixture
def open_process(postgres_database_url: str, tmp_path: Path) -> OpenRuntime:
    """``open_process(name, **settings)``: a runtime of its own home, on the shared database and storage."""
    storage = tmp_path / "shared-files"

    @asynccontextmanager
    async def open_one(name: str, *, run_deployments: Any = None, **overrides: Any) -> AsyncIterator[Runtime]:
        settings = queue_settings(tmp_path / name, postgres_database_url, storage, **overrides)
        async with open_runtime(settings, run_deployments=run_deployments) as runtime:
            yield runtime

    return open_one
