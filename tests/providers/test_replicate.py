"""The replicate provider against a fake Replicate on loopback: Prefer: wait, polling, versions, cancel, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.loopback import serve
from fakes.replicate_server import TOKEN, FakeReplicate, png

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.catalog import builtin_model
from imagegate.core.images import ImageInput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Role, SearchGrounding, Turn
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError
from imagegate.providers.registry import build_provider
from imagegate.providers.replicate import ReplicateOptions, ReplicateProvider

MODEL = "google/nano-banana"


@pytest.fixture
def replicate() -> Iterator[FakeReplicate]:
    fake = FakeReplicate()
    with serve(fake.app()) as url:
        fake.base = url
        yield fake


def options(fake: FakeReplicate, **changes: Any) -> dict[str, Any]:
    return {"api_key": TOKEN, "base_url": fake.base, "poll_interval_s": 0.01, **changes}


def provider(fake: FakeReplicate, **changes: Any) -> ReplicateProvider:
    built = build_provider("replicate", options(fake, **changes))
    assert isinstance(built, ReplicateProvider)
    return built


def spec(prompt: str = "a banana boat", *images: bytes, **changes: Any) -> JobSpec:
    parts: tuple[str | ImageInput, ...] = (prompt, *(ImageInput.from_bytes(i) for i in images))
    return JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, parts),), **changes)


async def run(p: ReplicateProvider, job: JobSpec | None = None, model: str = MODEL) -> Generation:
    try:
        return await p.generate(job or spec(), NANO_BANANA, model)
    finally:
        await p.aclose()


class Sleeps:
    """Records the delays the provider asks for (retries, polls) and waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def test_a_prediction_finished_within_the_wait(replicate: FakeReplicate) -> None:
    generation = await run(provider(replicate, wait_s=30, timeout_s=45.5), spec(aspect_ratio="4:3"))
    (image,) = generation.images
    assert (image.width, image.height, image.data) == (80, 48, png())
    path, body, headers = replicate.created[0]
    assert path == "/v1/models/google/nano-banana/predictions" and replicate.polls == 0
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["prefer"] == "wait=30" and headers["cancel-after"] == "46s"
    assert body == {"input": {"prompt": "a banana boat", "output_format": "png", "aspect_ratio": "4:3"}}
    assert replicate.file_auth == [None]  # the token is for the API, not the file host
    assert generation.finish_reason == FinishReason.STOP and generation.usage.output_image_tokens == 1290
    assert generation.model_version == "google/nano-banana"  # official models answer version "hidden"


async def test_a_prediction_not_finished_within_the_wait_is_polled(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish, replicate.outputs = 3, 2
    generation = await run(provider(replicate), spec(output_mime_type="image/jpeg"))
    assert len(generation.images) == 2 and replicate.polls == 3 and len(replicate.file_auth) == 2
    assert replicate.created[0][1]["input"]["output_format"] == "jpg"


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_edits_send_the_images_as_data_uris(replicate: FakeReplicate, count: int) -> None:
    inputs = [png(color) for color in ("red", "green", "blue")[:count]]
    await run(provider(replicate), spec("edit it", *inputs))
    sent = replicate.created[0][1]["input"]
    assert sent["image_input"] == [f"data:image/png;base64,{base64.b64encode(i).decode()}" for i in inputs]
    assert sent["aspect_ratio"] == "match_input_image"  # no ratio asked: keep the input's shape


async def test_an_edit_with_a_ratio_keeps_the_ratio(replicate: FakeReplicate) -> None:
    await run(provider(replicate), spec("edit it", png(), aspect_ratio="1:1"))
    assert replicate.created[0][1]["input"]["aspect_ratio"] == "1:1"


async def test_a_pinned_version_uses_the_predictions_endpoint(replicate: FakeReplicate) -> None:
    await run(provider(replicate), model="google/nano-banana:0123456789abcdef")
    path, body, _ = replicate.created[0]
    assert path == "/v1/predictions" and body["version"] == "0123456789abcdef" and "prompt" in body["input"]


@pytest.mark.parametrize("model", ["nano banana", "google/nano-banana:latest", "nano-banana"])
async def test_a_bad_model_name_is_the_deployments_mistake(replicate: FakeReplicate, model: str) -> None:
    with pytest.raises(UpstreamRejected, match="owner/name"):
        await run(provider(replicate), model=model)
    assert replicate.created == []


async def test_a_flagged_prediction_is_a_refusal(replicate: FakeReplicate) -> None:
    replicate.fail_with = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
    generation = await run(provider(replicate))
    assert generation.images == () and generation.block_reason == FinishReason.SAFETY
    assert "E005" in (generation.finish_message or "")


async def test_another_failure_is_the_upstreams_with_its_message(replicate: FakeReplicate) -> None:
    replicate.fail_with, replicate.polls_to_finish = "CUDA out of memory", 1
    with pytest.raises(UpstreamUnavailable, match="prediction p1 failed: CUDA out of memory"):
        await run(provider(replicate))


@pytest.mark.parametrize(
    ("end", "error", "message"),
    [("aborted", UpstreamTimeout, "did not start"), ("canceled", UpstreamUnavailable, "canceled upstream")],
)
async def test_predictions_stopped_upstream(  # type: ignore[no-untyped-def]
    replicate: FakeReplicate, end: str, error, message: str
) -> None:
    replicate.end_as, replicate.polls_to_finish = end, 1
    with pytest.raises(error, match=message):
        await run(provider(replicate))


async def test_a_success_without_output_is_no_image(replicate: FakeReplicate) -> None:
    replicate.outputs = 0
    generation = await run(provider(replicate))
    assert generation.images == () and generation.finish_reason == FinishReason.NO_IMAGE


async def test_a_prediction_past_the_deadline_is_cancelled(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish = 10_000
    with pytest.raises(UpstreamTimeout, match="cancelled"):
        await run(provider(replicate, timeout_s=0.1))
    assert replicate.cancelled == ["p1"]


async def test_cancelling_our_call_cancels_the_prediction(replicate: FakeReplicate) -> None:
    replicate.polls_to_finish = 10_000
    task = asyncio.create_task(run(provider(replicate)))
    while replicate.polls < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert replicate.cancelled == ["p1"]


def problem(status: int, title: str, detail: str | None = None) -> dict[str, Any]:
    return {"title": title, "status": status, **({"detail": detail} if detail else {})}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "message"),
    [
        (401, problem(401, "Unauthenticated", f"bad token {TOKEN}"), {}, UpstreamRejected, r"token .*\*\*\*"),
        (402, problem(402, "Payment required", "You have insufficient credit"), {}, UpstreamRejected, "billing"),
        (403, problem(403, "Forbidden"), {}, UpstreamRejected, "did not accept"),
        (404, problem(404, "Not found", "The requested resource could not be found"), {}, UpstreamRejected, "no model"),
        (
            422,
            problem(422, "Input validation failed", "- input.aspect_ratio: must be one of 1:1, 16:9"),
            {},
            InvalidRequest,
            "rejected the input: - input.aspect_ratio",
        ),
        (429, problem(429, "Request was throttled."), {"retry-after": "3"}, UpstreamRateLimited, "rate limiting"),
        (500, problem(500, "Internal server error"), {}, UpstreamUnavailable, "unavailable"),
        (503, "<html>overloaded</html>", {}, UpstreamUnavailable, r"unavailable \(HTTP 503\)"),
        (504, problem(504, "Gateway timeout"), {}, UpstreamTimeout, "timed out"),
    ],
)
async def test_errors_map_to_domain_errors(  # type: ignore[no-untyped-def]
    replicate: FakeReplicate, status, body, headers, error, message
) -> None:
    replicate.fail_next = [(status, body, headers)]
    with pytest.raises(error, match=message) as caught:
        await run(provider(replicate, max_retries=0))
    assert TOKEN not in str(caught.value)
    if isinstance(caught.value, UpstreamRateLimited):
        assert caught.value.retry_after_s == 3
    if isinstance(caught.value, InvalidRequest):
        assert caught.value.field == "aspect_ratio"


async def test_a_wrong_token_is_never_echoed(replicate: FakeReplicate) -> None:
    with pytest.raises(UpstreamRejected, match="token") as caught:
        await run(provider(replicate, api_key="r8_wrong"))
    assert "r8_wrong" not in str(caught.value)


async def test_a_throttled_create_is_retried_after_retry_after(replicate: FakeReplicate) -> None:
    replicate.fail_next = [(429, problem(429, "Request was throttled."), {"retry-after": "3"})]
    sleeps = Sleeps()
    p = ReplicateProvider(ReplicateOptions.model_validate(options(replicate)), sleep=sleeps)
    generation = await run(p)
    assert len(generation.images) == 1 and len(replicate.created) == 2 and sleeps.delays == [3]


@pytest.mark.parametrize(("status", "message"), [(404, "HTTP 404"), (200, "over the 100-byte limit")])
async def test_bad_or_oversized_files_are_the_upstreams_fault(
    replicate: FakeReplicate, status: int, message: str
) -> None:
    replicate.file_status = status
    with pytest.raises(UpstreamUnavailable, match=message):
        await run(provider(replicate, max_download_bytes=100))


MALFORMED: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"create": (201, b"<html>")}, UpstreamUnavailable, "not JSON"),
    ({"create": (201, {"id": "p1", "status": "starting"})}, UpstreamUnavailable, "no urls.get"),
    ({"create": (201, {"id": "p1", "status": "dreaming"})}, UpstreamUnavailable, "unknown prediction status"),
    ({"poll": (200, ["a list"])}, UpstreamUnavailable, "not a JSON object"),
    ({"poll": (500, {"title": "Internal server error"})}, UpstreamUnavailable, "HTTP 500"),
    ({"poll": (200, {"status": "succeeded", "output": {"image": "x"}})}, UpstreamUnavailable, "neither a URL"),
    ({"poll": (200, {"status": "succeeded", "output": ["https://f/a.png", 3]})}, UpstreamUnavailable, "neither"),
    ({"poll": httpx.ReadTimeout("slow")}, UpstreamTimeout, "did not answer in time"),
]


@pytest.mark.parametrize(("answers", "error", "message"), MALFORMED)
async def test_malformed_answers_and_broken_polls(
    answers: dict[str, Any], error: type[Exception], message: str
) -> None:
    running = {"id": "p1", "status": "starting", "urls": {"get": "https://api.replicate.com/v1/predictions/p1"}}
    defaults: dict[str, Any] = {"create": (201, running), "poll": (200, {"status": "processing", **running})}

    def handler(request: httpx.Request) -> httpx.Response:
        answer = {**defaults, **answers}["create" if request.method == "POST" else "poll"]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    p = ReplicateProvider(ReplicateOptions(api_key=TOKEN, max_retries=0, poll_interval_s=0.01), client=client)
    with pytest.raises(error, match=message):
        await p.generate(spec(), NANO_BANANA, MODEL)
    await client.aclose()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"wait_s": 120}, "wait_s"),
        ({"wait_s": 0}, "wait_s"),
        ({"poll_interval_s": -1}, "poll_interval_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"base_url": "api.replicate.com"}, "base_url"),
        ({"mode": "sync"}, "mode"),
    ],
)
def test_options_are_validated_without_echoing_the_token(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ProviderOptionsError, match=named) as caught:
        build_provider("replicate", {"api_key": "r8_secret", **given})
    assert "r8_secret" not in str(caught.value)


def test_the_token_is_required() -> None:
    with pytest.raises(ProviderOptionsError, match="api_key"):
        build_provider("replicate", {"base_url": "https://api.replicate.com"})


# -- the Nano Banana family's inputs (google/nano-banana-2 on Replicate) ------------------------------------


@pytest.mark.parametrize(
    ("grounding", "inputs"),
    [
        (SearchGrounding(), {"google_search": True}),
        (SearchGrounding(web=True, images=True), {"google_search": True, "image_search": True}),
        (SearchGrounding(web=False, images=True), {"image_search": True}),  # it turns web search on by itself
    ],
)
async def test_search_grounding_as_replicate_names_it(
    replicate: FakeReplicate, grounding: SearchGrounding, inputs: dict[str, bool]
) -> None:
    await run(provider(replicate), spec(grounding=grounding), model="google/nano-banana-2")
    sent = replicate.created[0][1]["input"]
    assert {k: v for k, v in sent.items() if k in ("google_search", "image_search")} == inputs


async def test_the_resolution_is_always_sent_for_the_family(replicate: FakeReplicate) -> None:
    pro = builtin_model("gemini-3-pro-image")
    for image_size, sent in ((None, "1K"), ("4K", "4K")):  # google/nano-banana-pro itself defaults to 2K
        p = provider(replicate)
        try:
            await p.generate(spec(image_size=image_size), pro, "google/nano-banana-pro")
        finally:
            await p.aclose()
        assert replicate.created[-1][1]["input"]["resolution"] == sent
    await run(provider(replicate))
    assert "resolution" not in replicate.created[-1][1]["input"]  # google/nano-banana has no such input
