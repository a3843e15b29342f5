"""The fal provider against a fake fal.ai on loopback: queue and sync modes, edits, downloads, cancel, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fakes.fal_server import KEY, FakeFal, Scripted, png
from fakes.loopback import serve

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Role, SearchGrounding, Turn
from imagegate.core.progress import progress_reporter
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.fal import FalOptions, FalProvider
from imagegate.providers.registry import build_provider

APP = "fal-ai/nano-banana"


@pytest.fixture
def fal() -> Iterator[FakeFal]:
    fake = FakeFal()
    with serve(fake.app()) as url:
        fake.base = url
        yield fake


def options(fake: FakeFal, **changes: Any) -> dict[str, Any]:
    base = {"api_key": KEY, "queue_base_url": f"{fake.base}/queue", "base_url": f"{fake.base}/run"}
    return {**base, "poll_interval_s": 0.01, **changes}


def provider(fake: FakeFal, **changes: Any) -> FalProvider:
    built = build_provider("fal", options(fake, **changes))
    assert isinstance(built, FalProvider)
    return built


class Sleeps:
    """Records the delays the provider asks for (retries, polls) and waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def spec(prompt: str = "a banana on the moon", *images: bytes, **changes: Any) -> JobSpec:
    parts: tuple[str | ImageInput, ...] = (prompt, *(ImageInput.from_bytes(i) for i in images))
    return JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, parts),), **changes)


async def run(p: FalProvider, job: JobSpec | None = None, app: str = APP) -> Generation:
    try:
        return await p.generate(job or spec(), NANO_BANANA, app)
    finally:
        await p.aclose()


async def test_queue_mode_submits_polls_and_downloads_without_the_key(fal: FakeFal) -> None:
    progress: list[tuple[int, int]] = []
    with progress_reporter(lambda done, total: progress.append((done, total))):
        generation = await run(provider(fal, timeout_s=90), spec(aspect_ratio="16:9"))
    (image,) = generation.images
    assert (image.mime_type, image.width, image.height, image.data) == ("image/png", 96, 64, png())
    assert generation.text == "Here it is: a banana on the moon" and generation.finish_reason == FinishReason.STOP
    assert generation.usage.output_image_tokens == 1290
    app, body = fal.submissions[0]
    assert app == APP and body == {
        "prompt": "a banana on the moon",
        "num_images": 1,
        "output_format": "png",
        "aspect_ratio": "16:9",
    }
    assert fal.submit_headers[0]["authorization"] == f"Key {KEY}"
    assert fal.submit_headers[0]["x-fal-request-timeout"] == "90"  # fal drops it if not started by then
    assert fal.polls == 4 and fal.cdn_auth == [None]  # two IN_QUEUE, one IN_PROGRESS, COMPLETED
    # two places ahead, then running, then done
    assert progress == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_edits_go_to_the_edit_app_with_data_uris(fal: FakeFal, count: int) -> None:
    inputs = [png(10 + i, 10, color) for i, color in enumerate(("red", "blue", "green")[:count])]
    generation = await run(provider(fal), spec("merge them", *inputs))
    assert len(generation.images) == 1
    ((app, body),) = fal.submissions
    assert app == f"{APP}/edit" and "aspect_ratio" not in body
    # in the caller's order, each a data URI of the very bytes sent
    assert body["image_urls"] == [f"data:image/png;base64,{base64.b64encode(i).decode()}" for i in inputs]


async def test_the_edit_app_is_configurable(fal: FakeFal) -> None:
    await run(provider(fal, edit_app="fal-ai/other-edit"), spec("x", png()))
    await run(provider(fal, edit_app="fal-ai/other-edit"), spec("no images, no edit app"))
    assert [app for app, _ in fal.submissions] == ["fal-ai/other-edit", APP]


async def test_sync_mode_answers_inline(fal: FakeFal) -> None:
    generation = await run(provider(fal, mode="sync"), spec(output_mime_type="image/webp"))
    assert len(generation.images) == 1 and fal.polls == 0 and fal.cdn_auth == []
    assert fal.submissions[0][1]["sync_mode"] is True and fal.submissions[0][1]["output_format"] == "webp"


async def test_several_images_in_one_result_are_all_kept(fal: FakeFal) -> None:
    fal.images_per_result = 2
    generation = await run(provider(fal))
    assert len(generation.images) == 2 and len(fal.cdn_auth) == 2


async def test_a_result_without_images_is_no_image_with_the_models_words(fal: FakeFal) -> None:
    fal.images_per_result = 0
    generation = await run(provider(fal))
    assert generation.images == () and generation.finish_reason == FinishReason.NO_IMAGE
    assert generation.finish_message == "Here it is: a banana on the moon" and generation.block_reason is None


@pytest.mark.parametrize("mode", ["queue", "sync"])
async def test_a_content_policy_422_is_a_refusal(fal: FakeFal, mode: str) -> None:
    fal.refuse = True
    generation = await run(provider(fal, mode=mode))
    assert generation.images == () and generation.block_reason == FinishReason.SAFETY
    assert generation.finish_message == "The content could not be processed."


VALIDATION = {
    "detail": [
        {"loc": ["body", "prompt"], "msg": "ensure this value has at most 5000 characters", "type": "value_error"}
    ]
}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "message"),
    [
        (401, {"detail": f"Invalid key {KEY}"}, {}, UpstreamRejected, "did not accept"),
        (403, {"detail": "Forbidden: the key lacks access"}, {}, UpstreamRejected, "did not accept"),
        (404, {"detail": "Application not found"}, {}, UpstreamRejected, "no app 'fal-ai/nano-banana'"),
        (422, VALIDATION, {}, InvalidRequest, "field 'prompt': ensure this value has at most 5000"),
        (429, {"detail": "Too many requests"}, {"retry-after": "7"}, UpstreamRateLimited, "rate limiting"),
        (500, {"detail": f"boom with {KEY}"}, {}, UpstreamUnavailable, r"unavailable \(HTTP 500: boom with \*\*\*\)"),
        (502, "<html>bad gateway</html>", {}, UpstreamUnavailable, "unavailable"),
        (504, {"detail": "Request timed out", "error_type": "request_timeout"}, {}, UpstreamTimeout, "timed out"),
        (418, {"detail": "teapot"}, {}, UpstreamRejected, "refused the request"),
    ],
)
@pytest.mark.parametrize("mode", ["queue", "sync"])
async def test_errors_map_to_domain_errors(  # type: ignore[no-untyped-def]
    fal: FakeFal, mode, status, body, headers, error, message
) -> None:
    fal.fail_next = [(status, body, headers)]
    with pytest.raises(error, match=message) as caught:
        await run(provider(fal, mode=mode, max_retries=0))
    assert KEY not in str(caught.value) and len(fal.submissions) == 1
    if isinstance(caught.value, UpstreamRateLimited):
        assert caught.value.retry_after_s == 7
    if isinstance(caught.value, InvalidRequest):
        assert caught.value.field == "prompt"


@pytest.mark.parametrize(
    ("scripted", "error", "message", "field"),
    [
        (
            (500, {"detail": "Runner crashed", "error_type": "runner_server_error"}, {"x-fal-retryable": "false"}),
            UpstreamUnavailable,
            "HTTP 500: Runner crashed",
            None,
        ),
        (
            (504, {"detail": "Request timed out", "error_type": "request_timeout"}, {}),
            UpstreamTimeout,
            "timed out",
            None,
        ),
        ((499, {"detail": "Cancelled", "error_type": "client_cancelled"}, {}), UpstreamUnavailable, "cancelled", None),
        (
            (
                422,
                {
                    "detail": [
                        {"loc": ["body", "image_urls", 0], "msg": "Could not read", "type": "file_download_error"}
                    ]
                },
                {},
            ),
            InvalidRequest,
            "field 'image_urls.0': Could not read",
            "image_urls.0",
        ),
    ],
)
async def test_a_request_that_completed_with_an_error(  # type: ignore[no-untyped-def]
    fal: FakeFal, scripted: Scripted, error, message: str, field: str | None
) -> None:
    fal.result_error = scripted
    with pytest.raises(error, match=message) as caught:
        await run(provider(fal, max_retries=0))
    assert getattr(caught.value, "field", None) == field


async def test_a_failure_fal_calls_not_retryable_is_not_retried(fal: FakeFal) -> None:
    fal.fail_next = [(503, {"detail": "no runner"}, {"x-fal-retryable": "false"})] * 3
    with pytest.raises(UpstreamUnavailable):
        await run(provider(fal, max_retries=2))
    assert len(fal.submissions) == 1


async def test_rate_limits_and_5xx_are_retried_after_the_delay_fal_asks_for(fal: FakeFal) -> None:
    fal.fail_next = [(429, {"detail": "slow down"}, {"retry-after": "2"}), (503, {"detail": "no runner"}, {})]
    sleeps = Sleeps()
    p = FalProvider(FalOptions.model_validate(options(fal, max_retries=2)), sleep=sleeps)
    generation = await run(p)
    assert len(generation.images) == 1 and len(fal.submissions) == 3
    # fal's own delay, then the second retry's backoff (1 s doubled, up to 20% jitter), then the polls' 0.01 s
    assert sleeps.delays[0] == 2 and 2 <= sleeps.delays[1] <= 2.4 and set(sleeps.delays[2:]) == {0.01}


async def test_a_wrong_key_is_the_deployments_problem(fal: FakeFal) -> None:
    with pytest.raises(UpstreamRejected, match="key") as caught:
        await run(provider(fal, api_key="wrong-secret"))
    assert "wrong-secret" not in str(caught.value)


async def test_a_request_that_never_finishes_times_out_and_is_cancelled(fal: FakeFal) -> None:
    fal.never_finish = True
    with pytest.raises(UpstreamTimeout, match="cancelled"):
        await run(provider(fal, timeout_s=0.1))
    assert fal.cancelled == ["req-1"]
    assert fal.submit_headers[0]["x-fal-request-timeout"] == "1"  # fal takes no start deadline of 0.1 s or less


async def test_a_sync_run_past_the_timeout_is_an_upstream_timeout(fal: FakeFal) -> None:
    fal.sync_delay_s = 1.0
    with pytest.raises(UpstreamTimeout, match="did not answer in time"):
        await run(provider(fal, mode="sync", timeout_s=0.2))


async def test_an_unreachable_fal_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = build_provider("fal", {"api_key": KEY, "queue_base_url": f"http://127.0.0.1:{port}", "max_retries": 0})
    assert isinstance(p, FalProvider)
    with pytest.raises(UpstreamUnavailable, match="could not be reached"):
        await run(p)


async def test_cancelling_our_call_cancels_the_upstream_request(fal: FakeFal) -> None:
    fal.never_finish = True
    p = provider(fal)
    task = asyncio.create_task(run(p))
    while fal.polls < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fal.cancelled == ["req-1"]


async def test_a_cancel_that_cannot_reach_fal_still_lets_the_cancellation_through() -> None:
    polled = asyncio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            raise httpx.ConnectError("down", request=request)
        if request.method == "POST":
            root = "https://queue.fal.run/fal-ai/nano-banana/requests/r1"
            urls = {"status_url": f"{root}/status", "response_url": root, "cancel_url": f"{root}/cancel"}
            return httpx.Response(200, json={"request_id": "r1", **urls})
        polled.set()
        return httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": 3})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = FalProvider(FalOptions(api_key=KEY, poll_interval_s=0.01), client=client)
    task = asyncio.create_task(p.generate(spec(), NANO_BANANA, APP))
    await polled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.aclose()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cdn_status": 404}, "failed with HTTP 404"),
        ({"cdn_body": b"<html>not an image</html>"}, "not an image"),
        ({"cdn_body": b"\x89PNG\r\n\x1a\nbroken"}, "cannot be read"),
    ],
)
async def test_bad_cdn_downloads_are_the_upstreams_fault(fal: FakeFal, changes: dict[str, Any], message: str) -> None:
    for name, value in changes.items():
        setattr(fal, name, value)
    with pytest.raises(UpstreamUnavailable, match=message):
        await run(provider(fal))


async def test_a_cdn_5xx_is_retried_then_given_up(fal: FakeFal) -> None:
    fal.cdn_status = 503
    sleeps = Sleeps()
    p = FalProvider(FalOptions.model_validate(options(fal)), sleep=sleeps)
    with pytest.raises(UpstreamUnavailable, match="HTTP 503"):
        await run(p)
    assert len(fal.cdn_auth) == 3  # the first try and two retries


@pytest.mark.parametrize("mode", ["queue", "sync"])
async def test_downloads_are_bounded(fal: FakeFal, mode: str) -> None:
    with pytest.raises(UpstreamUnavailable, match=r"over the 100-byte limit|over 100 bytes"):
        await run(provider(fal, mode=mode, max_download_bytes=100))


MALFORMED = [
    ({"POST": (200, {"request_id": "x"})}, "status_url"),
    ({"POST": (200, b"not json")}, "not JSON"),
    ({"POST": (200, [1, 2])}, "not a JSON object"),
    ({"GET status": (200, {"status": "EXPLODED"})}, "unknown request status 'EXPLODED'"),
    ({"GET result": (200, {"images": "nope"})}, "no 'images' list"),
    ({"GET result": (200, {"images": [{"file_name": "a.png"}]})}, "an image has no url"),
    ({"GET result": (200, {"images": [{"url": "ftp://cdn/a.png"}]})}, "will not fetch"),
    ({"GET result": (200, {"images": [{"url": "data:image/png,raw"}]})}, "without base64"),
]


@pytest.mark.parametrize(("answers", "message"), MALFORMED)
async def test_malformed_answers_are_the_upstreams_fault(answers: dict[str, Any], message: str) -> None:
    root = "https://queue.fal.run/fal-ai/nano-banana/requests/r1"
    defaults: dict[str, Any] = {
        "POST": (200, {"request_id": "r1", "status_url": f"{root}/status", "response_url": root}),
        "GET status": (200, {"status": "COMPLETED"}),
        "GET result": (200, {"images": []}),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.method if request.method == "POST" else f"GET {request.url.path.rsplit('/', 1)[-1]}"
        key = key if key in ("POST", "GET status") else "GET result"
        status, body = {**defaults, **answers}[key]
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = FalProvider(FalOptions(api_key=KEY), client=client)
    with pytest.raises(UpstreamUnavailable, match=message):
        await p.generate(spec(), NANO_BANANA, APP)
    await client.aclose()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"mode": "batch"}, "mode"),
        ({"poll_interval_s": 0}, "poll_interval_s"),
        ({"base_url": "fal.run"}, "base_url"),
        ({"max_retries": -1}, "max_retries"),
        ({"webhook": "https://example.com"}, "webhook"),
    ],
)
def test_options_are_validated_without_echoing_the_key(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ProviderOptionsError, match=named) as caught:
        build_provider("fal", {"api_key": "secret-123", **given})
    assert "secret-123" not in str(caught.value)


def test_the_key_is_required() -> None:
    with pytest.raises(ProviderOptionsError, match="api_key"):
        build_provider("fal", {})
    with pytest.raises(ProviderOptionsError, match="api_key"):
        build_provider("fal", {"api_key": ""})


async def test_a_cdn_answer_without_a_size_is_cut_off_at_the_limit() -> None:
    chunks_sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):  # 64 MB if nobody stops reading
            chunks_sent.append(1)
            yield b"\0" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.example":
            assert "authorization" not in request.headers
            return httpx.Response(200, content=endless())  # streamed: no content-length
        return httpx.Response(200, json={"images": [{"url": "https://cdn.example/out.png"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = FalProvider(FalOptions(api_key=KEY, mode="sync", max_download_bytes=200_000), client=client)
    with pytest.raises(UpstreamUnavailable, match="over the 200000-byte limit"):
        await p.generate(spec(), NANO_BANANA, APP)
    assert len(chunks_sent) < 10
    await client.aclose()


# -- the Nano Banana family's options (fal's nano-banana-2 / nano-banana-pro inputs) ------------------------


async def test_search_grounding_and_thinking_level_as_fal_names_them(fal: FakeFal) -> None:
    job = spec(grounding=SearchGrounding(), thinking_level="HIGH")
    await run(provider(fal), job, app="fal-ai/nano-banana-2")
    ((app, body),) = fal.submissions
    assert app == "fal-ai/nano-banana-2"
    assert body["enable_web_search"] is True and body["thinking_level"] == "high"


@pytest.mark.parametrize(("image_size", "resolution"), [("512", "0.5K"), ("1K", "1K"), ("2K", "2K"), ("4K", "4K")])
async def test_the_resolution_as_fal_spells_it(fal: FakeFal, image_size: str, resolution: str) -> None:
    await run(provider(fal), spec(image_size=image_size), app="fal-ai/nano-banana-2")
    assert fal.submissions[0][1]["resolution"] == resolution


async def test_no_resolution_asked_sends_none(fal: FakeFal) -> None:
    await run(provider(fal), spec(), app="fal-ai/nano-banana-pro")
    assert "resolution" not in fal.submissions[0][1]  # fal's default is 1K, the model's own
