"""Fixtures of the linkmodel dialect tests: the seed's contract, the model, jobs in every state, and a live app."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.jobs import Job, JobError, JobStatus, SlotResult, StoredImage

from .harness import Harness, open_harness
from .seed import SEED_ENV, Seed, find_seed, load_spec

CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def seed() -> Seed:
    path = find_seed()
    if path is None or not path.is_file():
        pytest.skip(f"the linkmodel seed is not beside this checkout; set {SEED_ENV} to its path")
    return Seed(load_spec(path))


def stored(file_id: str = "file_1") -> StoredImage:
    return StoredImage(file_id, "image/png", 1024, 1024, 1234)


@pytest.fixture
def make_job() -> Callable[..., Job]:
    def make(
        status: JobStatus = JobStatus.SUCCEEDED,
        *slots: SlotResult,
        n: int | None = None,
        error: JobError | None = None,
        job_id: str = "0190f3a2-7c1d-7b2e-9a4f-3c5d6e7f8a9b",
    ) -> Job:
        return Job(
            id=job_id,
            key_id="key_1",
            model=NANO_BANANA.id,
            status=status,
            created_at=CREATED_AT,
            results=slots,
            n=n if n is not None else max(1, len(slots)),
            dialect="linkmodel",
            error=error,
        )

    return make


@pytest.fixture
def in_fresh_context() -> Callable[..., Any]:
    """Run a function in a copy of the current context, so a bound error context never leaks between tests."""

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return contextvars.copy_context().run(fn, *args)

    return run


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as live:
        yield live
