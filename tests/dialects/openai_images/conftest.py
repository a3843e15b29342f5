"""Shared fixtures for the OpenAI Images dialect tests: the model, small real images, and finished jobs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.jobs import Job, JobStatus, SlotResult

from ..images import encode_image

FINISHED_AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def webp() -> bytes:
    return encode_image("WEBP", color="green")


@pytest.fixture
def make_job() -> Callable[..., Job]:
    def make(*slots: SlotResult, status: JobStatus = JobStatus.SUCCEEDED) -> Job:
        return Job(
            id="job_1",
            key_id="key_1",
            model=NANO_BANANA.id,
            status=status,
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
            finished_at=FINISHED_AT,
            results=slots,
            n=len(slots),
            dialect="openai",
        )

    return make
