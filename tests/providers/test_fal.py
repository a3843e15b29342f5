"""The fal provider against a fake fal.ai on loopback: queue and sync modes, edits, downloads, cancel, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.fal_server import KEY, FakeFal, png
from fakes.loopback import serve

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Modality, Role, Turn
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.fal import FalProvider
from imagegate.providers.registry import build_provider

APP = "fal-ai/nano-banana"


@pytest.fixture
def fal() -> Iterator[FakeFal]:
    fake = FakeFal()
    with serve(fake.app()) as url:
        fake.base = url
        yield fake


def provider(fake: FakeFal, **options: Any) -> FalProvider:
    base = {"api_key": KEY, "queue_base_url": f"{fake.base}/queue", "base_url": f"{fake.base}/run"}
    built = build_provider("fal", {**base, "poll_interval_s": 0.01, **options})
    assert isinstance(built, FalProvider)
    return built


def spec(prompt: str = "a banana on the moon", *images: bytes, **changes: Any) -> JobSpec:
    parts = (prompt, *(ImageInput.from_bytes(i) for i in images))
    return JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, parts),), **changes)


async def test_queue_mode_submits_polls_and_downloads_without_the_key(fal: FakeFal) -> None:
    p = provider(fal)
    try:
        generation = await p.generate(spec(aspect_ratio="16:9"), NANO_BANANA, APP)
    finally:
        await p.aclose()
    (image,) = generation.images
    assert (image.mime_type, image.width, image.height, image.data) == ("image/png", 96, 64, png())
    assert generation.text == "Here it is: a banana on the moon" and generation.usage.output_image_tokens == 1290
    app, body = fal.submissions[0]
    assert app == APP and body == {
        "prompt": "a banana on the moon",
        "num_images": 1,
        "output_format": "png",
        "aspect_ratio": "16:9",
    }
    assert fal.polls == 4 and fal.cdn_auth == [None]  # two IN_QUEUE, one IN_PROGRESS, COMPLETED


async def test_edits_go_to_the_edit_app_with_data_uris(fal: FakeFal) -> None:
    p = provider(fal)
    try:
        await p.generate(spec("merge them", png(10, 10, "red"), png(20, 20, "blue")), NANO_BANANA, APP)
        await p.generate(spec("again", png()), NANO_BANANA, APP)
    finally:
        await p.aclose()
    (app, body), _ = fal.submissions
    assert app == f"{APP}/edit" and len(body["image_urls"]) == 2
    assert all(u.startswith("data:image/png;base64,") for u in body["image_urls"])
    custom = provider(fal, edit_app="fal-ai/other-edit")
    try:
        await custom.generate(spec("x", png()), NANO_BANANA, APP)
    finally:
        await custom.aclose()
    assert fal.submissions[-1][0] == "fal-ai/other-edit"


async def test_sync_mode_answers_inline(fal: FakeFal) -> None:
    p = provider(fal, mode="sync")
    try:
        generation = await p.generate(spec(output_mime_type="image/webp"), NANO_BANANA, APP)
    finally:
        await p.aclose()
    assert len(generation.images) == 1 and fal.polls == 0 and fal.cdn_auth == []
    assert fal.submissions[0][1]["sync_mode"] is True and fal.submissions[0][1]["output_format"] == "webp"


async def test_a_content_policy_422_is_a_refusal(fal: FakeFal) -> None:
    fal.refuse = True
    for mode in ("queue", "sync"):
        p = provider(fal, mode=mode)
        try:
            generation = await p.generate(spec(), NANO_BANANA, APP)
        finally:
            await p.aclose()
        assert generation.images == () and generation.block_reason == "SAFETY"
        assert generation.finish_message == "The content could not be processed."


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "message"),
    [
        (401, {"detail": f"Invalid key {KEY}"}, {}, UpstreamRejected, "did not accept"),
        (404, {"detail": "Application not found"}, {}, UpstreamRejected, "no app 'fal-ai/nano-banana'"),
        (
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "prompt"],
                        "msg": "ensure this value has at most 5000 characters",
                        "type": "value_error",
                    }
                ]
            },
            {},
            InvalidRequest,
            "at most 5000 characters",
        ),
        (429, {"detail": "Too many requests"}, {"retry-after": "7"}, UpstreamRateLimited, "rate limiting"),
        (502, "<html>bad gateway</html>", {}, UpstreamUnavailable, "unavailable"),
        (504, {"detail": "timeout"}, {}, UpstreamTimeout, "timed out"),
    ],
)
async def test_errors_map_to_domain_errors(fal: FakeFal, status, body, headers, error, message) -> None:  # type: ignore[no-untyped-def]
    fal.fail_next = [(status, body, headers)] * 3
    p = provider(fal, max_retries=0)
    try:
        with pytest.raises(error, match=message) as caught:
            await p.generate(spec(), NANO_BANANA, APP)
    finally:
        await p.aclose()
    assert KEY not in str(caught.value)
    if isinstance(caught.value, UpstreamRateLimited):
        assert caught.value.retry_after_s == 7
    if isinstance(caught.value, InvalidRequest):
        assert caught.value.field == "prompt"


async def test_a_wrong_key_is_the_deployments_problem(fal: FakeFal) -> None:
    p = provider(fal, api_key="wrong")
    try:
        with pytest.raises(UpstreamRejected, match="key"):
            await p.generate(spec(), NANO_BANANA, APP)
    finally:
        await p.aclose()


async def test_a_request_that_never_finishes_times_out_and_is_cancelled(fal: FakeFal) -> None:
    fal.never_finish = True
    p = provider(fal, timeout_s=0.1)
    try:
        with pytest.raises(UpstreamTimeout, match="cancelled"):
            await p.generate(spec(), NANO_BANANA, APP)
    finally:
        await p.aclose()
    assert fal.cancelled == ["req-1"]


async def test_cancelling_our_call_cancels_the_upstream_request(fal: FakeFal) -> None:
    fal.never_finish = True
    p = provider(fal)
    try:
        task = asyncio.create_task(p.generate(spec(), NANO_BANANA, APP))
        while fal.polls < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await p.aclose()
    assert fal.cancelled == ["req-1"]


async def test_malformed_answers_are_the_upstreams_fault() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "queue.fal.run":
            return httpx.Response(200, json={"request_id": "x"})  # no status_url
        return httpx.Response(200, content=b"not json")  # the sync host

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    from imagegate.providers.fal import FalOptions

    p = FalProvider(FalOptions(api_key=KEY), client=client)  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailable, match="status_url"):
        await p.generate(spec(), NANO_BANANA, APP)
    sync = FalProvider(FalOptions(api_key=KEY, mode="sync"), client=client)  # type: ignore[arg-type]
    with pytest.raises(UpstreamUnavailable, match="not JSON"):
        await sync.generate(spec(), NANO_BANANA, APP)
    await client.aclose()


async def test_what_fal_cannot_express_is_refused_before_any_call(fal: FakeFal) -> None:
    p = provider(fal)
    try:
        with pytest.raises(InvalidRequest, match="images only"):
            await p.generate(spec(modalities=frozenset({Modality.TEXT})), NANO_BANANA, APP)
    finally:
        await p.aclose()
    assert fal.submissions == []


def test_options_are_validated_without_echoing_the_key() -> None:
    with pytest.raises(ProviderOptionsError, match="mode") as caught:
        build_provider("fal", {"api_key": "secret-123", "mode": "batch"})
    assert "secret-123" not in str(caught.value)
    with pytest.raises(ProviderOptionsError, match="api_key"):
        build_provider("fal", {})
