"""Pure translation: the request to a ``JobSpec``, and any job to the seed's task envelope."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest

from imagegate.core.capabilities import ModelSpec
from imagegate.core.ids import new_uuid, order_id_of
from imagegate.core.images import ASPECT_RATIOS, ImageInput
from imagegate.core.jobs import FinishReason, Job, JobError, JobStatus, Role, SlotResult
from imagegate.dialects.linkmodel.translate import (
    DIALECT,
    aspect_ratio_of,
    check_input_limits,
    created_data,
    envelope,
    price_micros,
    price_number,
    task_data,
    task_status,
    to_job_spec,
)
from imagegate.dialects.linkmodel.wire import SIZES, ImageGenerationRequest, parse_request
from imagegate.errors import InvalidRequest

from .conftest import stored
from .seed import Seed

MakeJob = Callable[..., Job]
URL = "https://example.com/cat.png"
PNG_1PX = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)


def request(**fields: object) -> ImageGenerationRequest:
    return parse_request(json.dumps({"model": "gemini-2.5-flash-image", "prompt": "a banana", **fields}))


@pytest.mark.parametrize("size", SIZES)
def test_each_of_the_ten_sizes_is_one_of_the_models_aspect_ratios(size: str, model: ModelSpec) -> None:
    ratio = aspect_ratio_of(size)
    assert ratio == size.replace("x", ":")
    assert ratio in ASPECT_RATIOS and ratio in model.aspect_ratios
    assert to_job_spec(request(size=size), model).aspect_ratio == ratio


def test_a_left_out_size_lets_the_model_choose(model: ModelSpec) -> None:
    assert aspect_ratio_of(None) is None
    assert to_job_spec(request(), model).aspect_ratio is None


def test_the_job_spec_is_one_user_turn_prompt_first_then_the_images(model: ModelSpec) -> None:
    images = [ImageInput.from_bytes(PNG_1PX), ImageInput.from_bytes(PNG_1PX)]
    spec = to_job_spec(request(images=[URL, URL], quality="1K"), model, images)
    assert spec.dialect == DIALECT == "linkmodel"
    assert spec.model == model.id and spec.n == 1
    assert len(spec.turns) == 1 and spec.turns[0].role is Role.USER
    assert spec.prompt == "a banana"
    assert spec.input_images == tuple(images)


def test_more_images_than_the_model_takes_are_refused_before_fetching(model: ModelSpec) -> None:
    check_input_limits(request(images=[URL] * model.max_input_images), model)
    with pytest.raises(InvalidRequest, match=f"accepts at most {model.max_input_images} input images") as caught:
        check_input_limits(request(images=[URL] * (model.max_input_images + 1)), model)
    assert caught.value.field == "images"


def test_a_size_the_configured_model_lacks_is_refused(model: ModelSpec) -> None:
    narrow = replace(model, aspect_ratios=("1:1",))
    check_input_limits(request(size="1x1"), narrow)
    with pytest.raises(InvalidRequest, match="size: Aspect ratio 16:9 is not supported") as caught:
        check_input_limits(request(size="16x9"), narrow)
    assert caught.value.field == "size"


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING])
def test_a_job_on_its_way_is_processing(status: JobStatus, make_job: MakeJob) -> None:
    assert task_status(make_job(status)) == ("processing", "")


def test_a_job_with_images_succeeded(make_job: MakeJob) -> None:
    assert task_status(make_job(JobStatus.SUCCEEDED, SlotResult(0, images=(stored(),)))) == ("succeeded", "")


def test_a_refusal_is_failed_with_its_reason(make_job: MakeJob) -> None:
    refusal = SlotResult(0, finish_reason=FinishReason.IMAGE_SAFETY, finish_message="Unable to show the image.")
    assert task_status(make_job(JobStatus.SUCCEEDED, refusal)) == (
        "failed",
        "IMAGE_SAFETY: Unable to show the image.",
    )


@pytest.mark.parametrize(
    ("slot", "reason"),
    [
        (SlotResult(0, block_reason="PROHIBITED_CONTENT"), "blocked: PROHIBITED_CONTENT"),
        (SlotResult(0, error=JobError("upstream_timeout", "too slow")), "upstream_timeout: too slow"),
        (SlotResult(0, finish_reason=FinishReason.STOP, text="no"), "NO_IMAGE: the model returned no image"),
        (SlotResult(0, finish_reason=FinishReason.NO_IMAGE), "NO_IMAGE: the model returned no image"),
        (SlotResult(0), "NO_IMAGE: the model returned no image"),
    ],
)
def test_every_way_of_ending_without_an_image_says_why(slot: SlotResult, reason: str, make_job: MakeJob) -> None:
    assert task_status(make_job(JobStatus.SUCCEEDED, slot)) == ("failed", reason)


def test_failed_and_cancelled_jobs_are_failed(make_job: MakeJob) -> None:
    failed = make_job(JobStatus.FAILED, error=JobError("upstream_unavailable", "No deployment serves it."))
    assert task_status(failed) == ("failed", "upstream_unavailable: No deployment serves it.")
    assert task_status(make_job(JobStatus.FAILED)) == ("failed", "internal_error: the task failed")
    assert task_status(make_job(JobStatus.CANCELLED)) == ("failed", "cancelled: the task was cancelled")


def test_the_price_is_the_quote_then_the_settled_charge(make_job: MakeJob, model: ModelSpec) -> None:
    per_image = model.price_per_image
    assert price_micros(make_job(JobStatus.QUEUED, n=4), model) == 4 * per_image  # unmetered: the list price
    assert price_micros(replace(make_job(JobStatus.RUNNING, n=2), held=80_000), model) == 80_000  # what is held
    done = replace(make_job(JobStatus.SUCCEEDED, SlotResult(0, images=(stored("file_a"),))), charged=39_001)
    assert price_micros(done, model) == 39_001  # what billing settled, tokens included
    assert price_micros(replace(make_job(JobStatus.FAILED), charged=0), model) == 0
    assert price_micros(make_job(JobStatus.QUEUED), None) == 0


def test_the_price_is_a_json_number_with_the_exact_decimal() -> None:
    assert json.dumps(price_number(39_000)) == "0.039"
    assert json.dumps(price_number(74_000)) == "0.074"
    assert json.dumps(price_number(123_456_789_012)) == "123456.789012"
    assert json.dumps(price_number(0)) == "0.0"


def test_the_order_id_is_a_uuid_derived_from_the_job_id() -> None:
    first = order_id_of("job_0h3kQ2xAbCdEfGhIjKlMnOpQ")
    assert uuid.UUID(first).version == 5
    assert first == order_id_of("job_0h3kQ2xAbCdEfGhIjKlMnOpQ")
    assert first != order_id_of("job_0h3kQ2xAbCdEfGhIjKlMnOpR")


def test_the_create_answer_is_exactly_the_seeds_data(make_job: MakeJob, model: ModelSpec, seed: Seed) -> None:
    job = make_job(JobStatus.QUEUED)
    body = envelope(created_data(job, model), "250b66dd-e1fb-4bb6-b5f6-c668efadc35d")
    assert body == {
        "code": 0,
        "data": {"task_id": job.id, "order_id": order_id_of(job.id), "status": "processing", "price": 0.039},
        "msg": "success",
        "request_id": "250b66dd-e1fb-4bb6-b5f6-c668efadc35d",
    }
    seed.validate_response(200, body)


def test_the_seeds_own_example_answer_fits_its_schema(seed: Seed) -> None:
    schema = seed.response_schema(200)["properties"]
    example = {
        "code": schema["code"]["example"],
        "data": {name: prop["example"] for name, prop in schema["data"]["properties"].items()},
        "msg": schema["msg"]["example"],
        "request_id": schema["request_id"]["example"],
    }
    seed.validate_response(200, example)  # the validator and the strict copy hold the seed to its own word


def test_a_polled_task_lists_its_images_only_when_it_succeeded(make_job: MakeJob, model: ModelSpec, seed: Seed) -> None:
    urls = ["http://testserver/v1/files/file_1?expires=1&signature=x"]
    done = replace(make_job(JobStatus.SUCCEEDED, SlotResult(0, images=(stored(),))), charged=39_000)
    body = envelope(task_data(done, model, urls), new_uuid())
    assert body["data"] == {
        "task_id": done.id,
        "order_id": order_id_of(done.id),
        "status": "succeeded",
        "price": 0.039,
        "model": model.id,
        "output_images": urls,
        "msg": "",
    }
    seed.validate_poll(body)

    running = envelope(task_data(make_job(JobStatus.RUNNING), model, []), new_uuid())
    assert running["data"]["status"] == "processing" and running["data"]["output_images"] == []
    seed.validate_poll(running)

    refused = replace(make_job(JobStatus.SUCCEEDED, SlotResult(0, finish_reason=FinishReason.IMAGE_SAFETY)), charged=0)
    failed = envelope(task_data(refused, model, []), new_uuid())
    assert failed["data"]["status"] == "failed" and failed["data"]["msg"].startswith("IMAGE_SAFETY")
    assert failed["data"]["price"] == 0
    seed.validate_poll(failed)
