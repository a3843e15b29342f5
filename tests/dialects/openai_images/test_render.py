"""OpenAI Images responses: the body shape, usage sums, partial success and refusals, read back by the openai SDK."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest
from openai.types import ImagesResponse

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import JPEG, PNG
from imagegate.core.jobs import FinishReason, Job, JobError, JobStatus, SlotResult, StoredImage, Usage
from imagegate.dialects.openai_common.errors import render_error
from imagegate.dialects.openai_images.translate import (
    OutputOptions,
    RenderedImage,
    hosted_images,
    inline_images,
    render_images_response,
)
from imagegate.errors import InternalError, JobCancelled, ModerationBlocked, UpstreamTimeout, UpstreamUnavailable

from ..images import encode_image
from .conftest import FINISHED_AT
from .sdk import sdk_client

MakeJob = Callable[..., Job]
B64_PNG = OutputOptions("b64_json", PNG, None)
SLOT_USAGE = Usage(input_text_tokens=7, input_image_tokens=258, output_text_tokens=5, output_image_tokens=1290)


def stored(file_id: str, width: int = 1344, height: int = 768) -> StoredImage:
    return StoredImage(file_id=file_id, mime_type=PNG, width=width, height=height, size_bytes=100)


def delivered(index: int, usage: Usage = SLOT_USAGE) -> SlotResult:
    return SlotResult(
        index=index, images=(stored(f"file_{index}"),), finish_reason=FinishReason.STOP, text="ok", usage=usage
    )


def refused(index: int, reason: str | None = FinishReason.IMAGE_SAFETY, **changes: Any) -> SlotResult:
    usage = Usage(input_text_tokens=7, input_image_tokens=258)
    return SlotResult(index=index, finish_reason=reason, usage=usage, **changes)


def failed(index: int, code: str = "upstream_timeout", message: str = "Gemini did not answer in 120 s.") -> SlotResult:
    return SlotResult(index=index, error=JobError(code, message))


def assert_no_nulls(value: object) -> None:
    assert value is not None
    if isinstance(value, dict):
        for item in value.values():
            assert_no_nulls(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_nulls(item)


def test_single_image_as_base64(make_job: MakeJob, model: ModelSpec) -> None:
    data = encode_image("PNG", size=(300, 200))
    job = make_job(delivered(0))
    body = render_images_response(job, inline_images(job, {"file_0": data}), model, output=B64_PNG)
    b64 = base64.b64encode(data).decode()
    assert body == {
        "created": int(FINISHED_AT.timestamp()),
        "data": [{"b64_json": b64}],
        "background": "opaque",
        "output_format": "png",
        "size": "1344x768",
        "usage": {
            "input_tokens": 265,
            "input_tokens_details": {"text_tokens": 7, "image_tokens": 258},
            "output_tokens": 1295,
            "output_tokens_details": {"text_tokens": 5, "image_tokens": 1290},
            "total_tokens": 1560,
        },
        "meta": {"usage": {"tokens_used": 1560}},
    }
    assert "\n" not in body["data"][0]["b64_json"]
    assert_no_nulls(body)
    json.dumps(body)  # plain JSON, nothing a response class must convert


def test_the_sdk_reads_the_body(make_job: MakeJob, model: ModelSpec) -> None:
    data = encode_image("PNG", size=(64, 64), color="purple")
    job = make_job(delivered(0))
    body = render_images_response(job, inline_images(job, {"file_0": data}), model, output=B64_PNG)
    parsed = ImagesResponse.model_validate(body)
    assert parsed.data is not None and base64.b64decode(parsed.data[0].b64_json or "") == data
    assert parsed.usage is not None and parsed.usage.total_tokens == 1560
    assert parsed.usage.output_tokens_details is not None and parsed.usage.output_tokens_details.image_tokens == 1290
    assert (parsed.size, parsed.output_format, parsed.background) == ("1344x768", "png", "opaque")


def test_the_sdk_client_returns_it(make_job: MakeJob, model: ModelSpec) -> None:
    data = encode_image("PNG", color="orange")
    job = make_job(delivered(0), delivered(1))
    body = render_images_response(job, inline_images(job, {"file_0": data, "file_1": data}), model, output=B64_PNG)
    client = sdk_client(lambda _: httpx.Response(200, json=body))
    result = client.images.generate(model="gemini-2.5-flash-image", prompt="a cat", n=2)
    assert result.data is not None and len(result.data) == 2
    assert base64.b64decode(result.data[1].b64_json or "") == data
    assert result.created == int(FINISHED_AT.timestamp())
    assert result.usage is not None and result.usage.total_tokens == 2 * 1560


def test_urls(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(delivered(0), delivered(1))
    images = hosted_images(job, lambda img: f"https://img.example/v1/files/{img.file_id}?signature=s")
    body = render_images_response(job, images, model, output=OutputOptions("url", JPEG, 80))
    assert body["data"] == [
        {"url": "https://img.example/v1/files/file_0?signature=s"},
        {"url": "https://img.example/v1/files/file_1?signature=s"},
    ]
    assert body["output_format"] == "jpeg"
    parsed = ImagesResponse.model_validate(body)
    assert parsed.data is not None and parsed.data[0].url == "https://img.example/v1/files/file_0?signature=s"
    assert parsed.data[0].b64_json is None


def test_size_is_the_real_output_size(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(delivered(0))
    images = [RenderedImage("file_0", 768, 1344, b64_json="AAAA")]
    assert render_images_response(job, images, model, output=B64_PNG)["size"] == "768x1344"


def test_usage_is_summed_over_three_slots(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(delivered(0), delivered(1), delivered(2, Usage(7, 258, 0, 1290, thoughts_tokens=10)))
    data = {f"file_{i}": b"\x89PNG" for i in range(3)}
    body = render_images_response(job, inline_images(job, data), model, output=B64_PNG)
    assert len(body["data"]) == 3
    assert body["usage"] == {
        "input_tokens": 3 * 265,
        "input_tokens_details": {"text_tokens": 21, "image_tokens": 774},
        "output_tokens": 1295 + 1295 + 1290 + 10,  # thinking counts as output, as OpenAI counts reasoning
        "output_tokens_details": {"text_tokens": 10, "image_tokens": 3870},
        "total_tokens": job.usage.total_tokens,
    }
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]
    assert body["meta"] == {"usage": {"tokens_used": job.usage.total_tokens}}


def test_partial_success_returns_what_was_made(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(delivered(0), refused(1), delivered(2))
    body = render_images_response(job, inline_images(job, {"file_0": b"a", "file_2": b"c"}), model, output=B64_PNG)
    assert body["data"] == [{"b64_json": "YQ=="}, {"b64_json": "Yw=="}]
    assert body["usage"]["input_tokens"] == 3 * 265  # the refused call read the prompt too
    assert body["usage"]["output_tokens_details"]["image_tokens"] == 2 * 1290


def test_partial_success_with_a_failed_slot(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(failed(0), delivered(1))
    body = render_images_response(job, inline_images(job, {"file_1": b"b"}), model, output=B64_PNG)
    assert len(body["data"]) == 1


def test_created_falls_back_to_created_at(model: ModelSpec) -> None:
    job = Job(
        id="j",
        key_id="k",
        model=model.id,
        status=JobStatus.SUCCEEDED,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        results=(delivered(0),),
    )
    body = render_images_response(job, [RenderedImage("file_0", 1, 1, b64_json="AA==")], model, output=B64_PNG)
    assert body["created"] == int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())


MODERATION_BODY = {
    "error": {
        "message": "Your request was rejected by the safety system of gemini-2.5-flash-image; "
        "no image was made (finish reason IMAGE_SAFETY).",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
    }
}


def test_all_refused_is_a_moderation_error(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(refused(0), refused(1, FinishReason.NO_IMAGE), status=JobStatus.SUCCEEDED)
    with pytest.raises(ModerationBlocked) as info:
        render_images_response(job, [], model, output=B64_PNG)
    assert render_error(info.value) == (400, MODERATION_BODY, {})


@pytest.mark.parametrize(
    ("slot", "says"),
    [
        (refused(0, FinishReason.NO_IMAGE), "(finish reason NO_IMAGE)"),
        (refused(0, FinishReason.PROHIBITED_CONTENT), "(finish reason PROHIBITED_CONTENT)"),
        (refused(0, None, block_reason="PROHIBITED_CONTENT"), "(block reason PROHIBITED_CONTENT)"),
        (refused(0, finish_message="Unable to show the generated image."), "Unable to show the generated image."),
        (refused(0, FinishReason.STOP, text="I can't draw that."), "(finish reason NO_IMAGE). The model said: I can't"),
        (refused(0, text="abc " * 200), "abc abc…"),
    ],
)
def test_refusal_reasons_are_named(slot: SlotResult, says: str, make_job: MakeJob, model: ModelSpec) -> None:
    with pytest.raises(ModerationBlocked) as info:
        render_images_response(make_job(slot), [], model, output=B64_PNG)
    assert says in info.value.message


def test_refusal_beats_failure(make_job: MakeJob, model: ModelSpec) -> None:
    with pytest.raises(ModerationBlocked):
        render_images_response(make_job(failed(0), refused(1)), [], model, output=B64_PNG)


def test_all_failed_raises_the_first_error(make_job: MakeJob, model: ModelSpec) -> None:
    job = make_job(failed(0), failed(1, "upstream_unavailable", "overloaded"), status=JobStatus.FAILED)
    with pytest.raises(UpstreamTimeout) as info:
        render_images_response(job, [], model, output=B64_PNG)
    status, body, _ = render_error(info.value)
    assert (status, body["error"]["code"], body["error"]["message"]) == (
        504,
        "timeout",
        "Gemini did not answer in 120 s.",
    )


def test_job_level_errors(make_job: MakeJob, model: ModelSpec) -> None:
    down = Job(
        id="j",
        key_id="k",
        model=model.id,
        status=JobStatus.FAILED,
        created_at=FINISHED_AT,
        error=JobError("upstream_unavailable", "no deployment is healthy"),
    )
    with pytest.raises(UpstreamUnavailable):
        render_images_response(down, [], model, output=B64_PNG)
    with pytest.raises(JobCancelled):
        render_images_response(make_job(status=JobStatus.CANCELLED), [], model, output=B64_PNG)
    with pytest.raises(InternalError):
        render_images_response(make_job(), [], model, output=B64_PNG)
    with pytest.raises(InternalError):  # an image was made but its bytes were not handed over
        render_images_response(make_job(delivered(0)), [], model, output=B64_PNG)
    with pytest.raises(InternalError):
        render_images_response(make_job(delivered(0)), [RenderedImage("file_0", 1, 1)], model, output=B64_PNG)


def test_the_sdk_raises_on_a_refusal(make_job: MakeJob, model: ModelSpec) -> None:
    with pytest.raises(ModerationBlocked) as info:
        render_images_response(make_job(refused(0)), [], model, output=B64_PNG)
    status, body, headers = render_error(info.value)
    client = sdk_client(lambda _: httpx.Response(status, json=body, headers=headers))
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="gemini-2.5-flash-image", prompt="something unsafe")
    assert (raised.value.code, raised.value.type, raised.value.param) == (
        "moderation_blocked",
        "image_generation_user_error",
        None,
    )


def test_running_task_shows_steps_and_paused_fleet_its_retry_delay(make_job: MakeJob, model: ModelSpec) -> None:
    from dataclasses import replace

    from imagegate.core.jobs import Progress
    from imagegate.dialects.openai_images.tasks import render_task
    from imagegate.errors import NoDeploymentAvailable

    running = replace(make_job(status=JobStatus.RUNNING), n=2, progress=Progress(6, 16), finished_at=None)
    body = render_task(running, model, [])
    assert body["status"] == "running" and body["progress"] == {"done": 6, "total": 16, "percent": 37.5}
    assert "progress" not in render_task(replace(running, progress=None), model, [])
    status, error, headers = render_error(NoDeploymentAvailable("every deployment is paused", retry_after_s=12.2))
    assert status == 503 and headers["retry-after"] == "13" and headers["x-should-retry"] == "true"
    assert (error["error"]["code"], error["error"]["type"]) == ("upstream_unavailable", "server_error")
