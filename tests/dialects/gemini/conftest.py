"""Shared fixtures for the Gemini dialect tests: small real images made with Pillow, and a finished job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.jobs import Job, JobStatus, SlotResult


@pytest.fixture
def make_job() -> Callable[..., Job]:
    def make(slot: SlotResult) -> Job:
        return Job(
            id="job_1",
            key_id="key_1",
            model=NANO_BANANA.id,
            status=JobStatus.SUCCEEDED,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            results=(slot,),
        )

    return make
