"""The replicate provider against a fake Replicate on loopback: Prefer: wait, polling, versions, cancel, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.loopback import serve
from fakes.replicate_server import TOKEN, FakeReplicate, png

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.registry import build_provider
from imagegate.providers.replicate import ReplicateProvider

MODEL = "google/nano-banana"


@pytest.fixture
def replicate() -> Iterator[FakeReplicate]:
    fake = FakeReplicate()
    with serve(fake.app()) as url:
        fake.base = url
        yield fake


def provider(fake: FakeReplicate, **options: Any) -> ReplicateProvider:
    built = build_provider("replicate", {"api_key": TOKEN, "base_url": fake.base, "poll_interval_s": 0.01, **options})
    assert isinstance(built, ReplicateProvider)
    return built


def spec(prompt: str = "a banana boat", *images: bytes, **changes: Any) -> JobSpec:
    parts = (prompt, *(ImageInput.from_bytes(i) for i in images))
    return JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, parts),), **changes)


async def run(p: ReplicateProvider, job: JobSpec, model: str = MODEL):  # type: ignore[no-untyped-def]
    try:
        return await p.generate(job, NANO_BANANA, model)
    finally:
        await p.aclose()


async def test_a_prediction_finished_within_the_wait(replicate: FakeReplicate) -> None:
    generation = await run(provider(replicate, wait_s=30), spec(aspect_ratio="4:3"))
    (image,) = generation.images
    assert (image.width, image.height, image.data) == (80, 48, png())
    path, body, prefer = replicate.created[0]
    assert path == "/v1/models/google/nano-banana/predictions" and prefer == "wait=30"
    assert body == {"input": {"prompt": "a banana boat", "output_format": "png", "aspect_ratio": "4:3"}}
    assert replicate.file_auth == [None]  # the token is for the API, not the file host
    assert generation.usage.output_image_tokens == 1290 and generation.model_version == "hidden"


async def test_a_slow_prediction_is_polled_until_it_succeeds(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish, replicate.output_as_list = 3, True
    generation = await run(provider(replicate), spec("edit it", png()))
    assert len(generation.images) == 1
    inputs = replicate.created[0][1]["input"]
    assert inputs["aspect_ratio"] == "match_input_image" and inputs["image_input"][0].startswith(
        "data:image/png;base64,"
    )


async def test_a_pinned_version_uses_the_predictions_endpoint(replicate: FakeReplicate) -> None:
    await run(provider(replicate), spec(), model="google/nano-banana:0123456789abcdef")
    path, body, _ = replicate.created[0]
    assert path == "/v1/predictions" and body["version"] == "0123456789abcdef"


async def test_a_bad_model_name_is_the_deployments_mistake(replicate: FakeReplicate) -> None:
    with pytest.raises(UpstreamRejected, match="owner/name"):
        await run(provider(replicate), spec(), model="nano banana")


async def test_a_flagged_prediction_is_a_refusal_and_other_failures_are_errors(replicate: FakeReplicate) -> None:
    replicate.fail_with = "Your input was flagged as sensitive. Please try again with different inputs. (E005)"
    generation = await run(provider(replicate), spec())
    assert (
        generation.images == () and generation.block_reason == "SAFETY" and "E005" in (generation.finish_message or "")
    )
    replicate.fail_with = "CUDA out of memory"
    with pytest.raises(UpstreamUnavailable, match="failed: CUDA out of memory"):
        await run(provider(replicate), spec())


async def test_a_prediction_past_the_deadline_is_cancelled(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish = 10_000
    with pytest.raises(UpstreamTimeout, match="cancelled"):
        await run(provider(replicate, timeout_s=0.1), spec())
    assert replicate.cancelled == ["p1"]


async def test_cancelling_our_call_cancels_the_prediction(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish = 10_000
    p = provider(replicate)
    task = asyncio.create_task(run(p, spec()))
    while not replicate.created:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert replicate.cancelled == ["p1"]


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "message"),
    [
        (
            402,
            {"title": "Payment required", "detail": "You have insufficient credit", "status": 402},
            {},
            UpstreamRejected,
            "billing",
        ),
        (
            404,
            {"title": "Not found", "detail": "The requested resource could not be found", "status": 404},
            {},
            UpstreamRejected,
            "no model",
        ),
        (
            422,
            {"title": "Input validation failed", "detail": "- input.aspect_ratio: must be one of ...", "status": 422},
            {},
            InvalidRequest,
            "aspect_ratio",
        ),
        (
            429,
            {"title": "Too many requests", "detail": "Request was throttled.", "status": 429},
            {"retry-after": "3"},
            UpstreamRateLimited,
            "rate limiting",
        ),
        (500, {"title": "Internal server error", "status": 500}, {}, UpstreamUnavailable, "unavailable"),
    ],
)
async def test_errors_map_to_domain_errors(replicate: FakeReplicate, status, body, headers, error, message) -> None:  # type: ignore[no-untyped-def]
    replicate.fail_next = [(status, body, headers)] * 3
    with pytest.raises(error, match=message) as caught:
        await run(provider(replicate, max_retries=0), spec())
    if isinstance(caught.value, UpstreamRateLimited):
        assert caught.value.retry_after_s == 3


async def test_a_wrong_token_is_never_echoed(replicate: FakeReplicate) -> None:
    with pytest.raises(UpstreamRejected, match="token") as caught:
        await run(provider(replicate, api_key="r8_wrong"), spec())
    assert "r8_wrong" not in str(caught.value)


def test_options_are_validated() -> None:
    with pytest.raises(ProviderOptionsError, match="wait_s"):
        build_provider("replicate", {"api_key": "k", "wait_s": 120})
