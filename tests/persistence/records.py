"""Builders of the core records the persistence tests store, with distinct, microsecond-exact UTC times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from imagegate.core.jobs import Job, JobError, JobStatus, SlotResult, StoredImage, Usage
from imagegate.core.ports import ApiKey, FileRecord

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

SPEC_DOC: dict[str, Any] = {
    "model": "gemini-2.5-flash-image",
    "turns": [{"role": "user", "parts": [{"text": "a banana in the rain, «ünïcode» ✓"}]}],
    "aspect_ratio": "16:9",
    "n": 2,
    "seed": None,
    "temperature": 0.7,
}


def make_key(key_id: str = "key_1", *, created_at: datetime = T0, credits: int = 5_000_000) -> ApiKey:
    return ApiKey(
        id=key_id,
        name=f"name of {key_id}",
        prefix=f"ig_{key_id[:4]}",
        key_hash=f"hash-{key_id}",
        credits=credits,
        is_admin=False,
        created_at=created_at,
    )


def make_job(
    job_id: str = "job_1",
    *,
    key_id: str = "key_1",
    status: JobStatus = JobStatus.QUEUED,
    created_at: datetime = T0,
    attempts: int = 0,
    lease_expires_at: datetime | None = None,
) -> Job:
    return Job(
        id=job_id,
        key_id=key_id,
        model="gemini-2.5-flash-image",
        status=status,
        created_at=created_at,
        attempts=attempts,
        lease_expires_at=lease_expires_at,
        n=2,
        dialect="openai_images",
        request_id=f"req-{job_id}",
    )


def finished_job(job: Job) -> Job:
    """``job`` (RUNNING) finished with one image slot and one refused slot, and a job-level error."""
    image = StoredImage(file_id="file_1", mime_type="image/png", width=1344, height=768, size_bytes=123_456)
    delivered = SlotResult(
        index=0,
        images=(image, StoredImage("file_2", "image/webp", 1024, 1024, 9_876)),
        text="here you go",
        finish_reason="STOP",
        usage=Usage(input_text_tokens=12, input_image_tokens=258, output_image_tokens=1290, thoughts_tokens=3),
        model_version="gemini-2.5-flash-image-001",
    )
    refused = SlotResult(
        index=1,
        finish_reason="IMAGE_SAFETY",
        finish_message="blocked by the safety filter",
        block_reason="OTHER",
        usage=Usage(input_text_tokens=12),
        error=JobError("upstream_unavailable", "the provider is overloaded", retry_after_s=2.5),
    )
    return job.moved_to(
        JobStatus.SUCCEEDED,
        finished_at=T0 + timedelta(seconds=42, microseconds=7),
        lease_expires_at=None,
        deployment="emulator",
        results=(delivered, refused),
        error=JobError("partial", "1 of 2 images delivered"),
    )


def make_file(file_id: str = "file_1", *, job_id: str = "job_1", expires_at: datetime | None = None) -> FileRecord:
    return FileRecord(
        id=file_id,
        job_id=job_id,
        key_id="key_1",
        storage_key=f"2025/01/02/{file_id}.png",
        mime_type="image/png",
        size_bytes=3_000_000_000,  # past 2**31: the column must be 64-bit
        width=1344,
        height=768,
        created_at=T0,
        expires_at=expires_at,
    )
