"""Chat requests as jobs, and finished jobs as completions and stream chunks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import FinishReason, Job, JobError, JobStatus, Modality, Role, SlotResult, StoredImage, Usage
from imagegate.dialects.openai_chat.translate import (
    check_input_limits,
    render_completion,
    stream_rest,
    stream_start,
    to_job_spec,
)
from imagegate.dialects.openai_chat.wire import parse_chat_request
from imagegate.errors import InvalidRequest, UpstreamUnavailable

from ..images import encode_image

PNG = encode_image("PNG", color="red")


def _job(*slots: SlotResult) -> Job:
    return Job(
        id="job_1",
        key_id="k",
        model=NANO_BANANA.id,
        status=JobStatus.SUCCEEDED,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        finished_at=datetime(2025, 1, 1, 0, 0, 9, tzinfo=UTC),
        results=slots,
        n=len(slots),
    )


def _image_slot(index: int) -> SlotResult:
    usage = Usage(input_text_tokens=5, output_image_tokens=1290)
    return SlotResult(index, (StoredImage(f"f{index}", "image/png", 1, 1, len(PNG)),), "here", usage=usage)


def test_history_system_and_images_become_the_job() -> None:
    request = parse_chat_request(
        {
            "model": "nano-banana",
            "messages": [
                {"role": "system", "content": "style: flat"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:a"}}]},
                {"role": "assistant", "content": "done", "images": [{"image_url": {"url": "data:b"}}]},
                {"role": "user", "content": "bluer"},
            ],
            "modalities": ["image"],
            "n": 2,
            "image_config": {"aspect_ratio": "4:3"},
        }
    )
    image = ImageInput.from_bytes(PNG)
    loaded = {u.field: image for u in request.image_urls}
    spec = to_job_spec(request, NANO_BANANA, loaded)
    assert spec.system_instruction == "style: flat"
    assert [t.role for t in spec.turns] == [Role.USER, Role.MODEL, Role.USER]
    assert spec.turns[1].parts == ("done", image)
    assert spec.prompt == "bluer" and len(spec.context_images) == 2
    assert (spec.n, spec.aspect_ratio, spec.modalities) == (2, "4:3", frozenset({Modality.IMAGE}))


def test_input_limit_counts_the_last_user_message_before_fetching() -> None:
    parts = [{"type": "image_url", "image_url": {"url": f"https://h/{i}.png"}} for i in range(4)]
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": parts}]})
    with pytest.raises(InvalidRequest) as refused:
        check_input_limits(request, NANO_BANANA)
    assert refused.value.field == "messages"


def test_max_tokens_below_one_image_is_refused() -> None:
    request = parse_chat_request({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100})
    with pytest.raises(InvalidRequest) as refused:
        to_job_spec(request, NANO_BANANA, {})
    assert refused.value.field == "max_tokens"


def test_completion_has_a_choice_per_slot_with_data_url_images() -> None:
    refused = SlotResult(1, finish_reason=FinishReason.IMAGE_SAFETY, text="I can't")
    failed = SlotResult(2, error=JobError("upstream_unavailable", "down"))
    body = render_completion(_job(_image_slot(0), refused, failed), NANO_BANANA, {"f0": PNG})
    first, second, third = body["choices"]
    assert first["finish_reason"] == "stop" and first["message"]["content"] == "here"
    assert first["message"]["images"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")
    assert second["finish_reason"] == "content_filter" and second["native_finish_reason"] == "IMAGE_SAFETY"
    assert "images" not in second["message"] and second["message"]["content"] == "I can't"
    assert third["finish_reason"] == "error" and third["error"]["code"] == "upstream_unavailable"
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 1290,
        "total_tokens": 1295,
        "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 1290},
    }
    assert (body["object"], body["id"], body["created"]) == ("chat.completion", "chatcmpl-job_1", 1735689609)


def test_a_job_where_every_slot_failed_is_its_error() -> None:
    job = _job(SlotResult(0, error=JobError("upstream_unavailable", "down")))
    with pytest.raises(UpstreamUnavailable):
        render_completion(job, NANO_BANANA, {})
    with pytest.raises(UpstreamUnavailable):
        stream_rest(job, NANO_BANANA, {})


def test_stream_chunks_role_first_images_in_delta_usage_last() -> None:
    job = _job(_image_slot(0), _image_slot(1))
    start = stream_start(job, NANO_BANANA)
    assert [c["choices"][0]["delta"] for c in start] == [{"role": "assistant", "content": ""}] * 2
    rest = stream_rest(job, NANO_BANANA, {"f0": PNG, "f1": PNG})
    assert [c["choices"][0]["finish_reason"] for c in rest] == [None, "stop", None, "stop"]
    assert rest[0]["choices"][0]["delta"]["images"][0]["type"] == "image_url"
    assert all(c["object"] == "chat.completion.chunk" for c in start + rest)
    assert "usage" in rest[-1] and all("usage" not in c for c in rest[:-1])
    with_usage = stream_rest(job, NANO_BANANA, {"f0": PNG, "f1": PNG}, include_usage=True)
    assert with_usage[:-1] == [{k: v for k, v in c.items() if k != "usage"} for c in rest]
    assert with_usage[-1]["choices"] == [] and with_usage[-1]["usage"] == rest[-1]["usage"]


def test_image_size_goes_to_the_job_and_the_model_decides() -> None:
    for size, ok in (("1K", True), ("2K", False), ("0.5K", False)):
        request = parse_chat_request(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "image_config": {"image_size": size}}
        )
        if ok:
            assert to_job_spec(request, NANO_BANANA, {}).image_size == "1K"
        else:  # gemini-2.5-flash-image makes 1K only; the capability check names the caller's field
            with pytest.raises(InvalidRequest) as refused:
                to_job_spec(request, NANO_BANANA, {})
            assert refused.value.field == "image_config.image_size"
