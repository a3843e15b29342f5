"""The linkmodel task API over a real app: create, poll to the end, fetch the images, and every error body.

Every response body is validated against the seed's schema (see ``seed.py``).
"""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.core.ids import order_id_of
from imagegate.core.images import ASPECT_RATIOS
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.services.accounts import create_key
from imagegate.services.queries import get_job
from imagegate.services.submit import submit_job

from .harness import BASE_URL, CREATE, MODEL, Harness, open_harness
from .seed import Seed


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a banana on a desk", **fields}


def data_url(color: str = "red", size: tuple[int, int] = (32, 32)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def checked(response: httpx.Response, seed: Seed) -> dict[str, Any]:
    """The JSON body, validated against the seed for its status, its request id the response's own."""
    payload: dict[str, Any] = response.json()
    seed.validate_response(response.status_code, payload)
    if "x-request-id" in response.headers:
        assert payload["request_id"] == response.headers["x-request-id"]
    return payload


async def create_ok(harness: Harness, seed: Seed, **fields: Any) -> dict[str, Any]:
    response = await harness.create(body(**fields))
    assert response.status_code == 200, response.text
    return checked(response, seed)


async def finish(harness: Harness, seed: Seed, task_id: str) -> dict[str, Any]:
    response = await harness.until_done(task_id, validate=seed.validate_poll)
    payload: dict[str, Any] = response.json()
    assert payload["request_id"] == response.headers["x-request-id"]
    return payload


async def test_creating_answers_at_once_with_the_seeds_envelope(harness: Harness, seed: Seed) -> None:
    created = await create_ok(harness, seed)
    assert created["code"] == 0 and created["msg"] == "success"
    data = created["data"]
    assert set(data) == {"task_id", "order_id", "status", "price"}
    assert data["status"] == "processing"
    assert data["price"] == 0.039  # the quote: one image at the model's list price
    assert data["order_id"] == order_id_of(data["task_id"]) and uuid.UUID(data["order_id"])
    assert uuid.UUID(created["request_id"]) and uuid.UUID(data["task_id"]).version == 7


async def test_a_task_is_an_ordinary_imagegate_job(harness: Harness, seed: Seed) -> None:
    task_id = (await create_ok(harness, seed, size="4x5"))["data"]["task_id"]
    job = await get_job(harness.runtime.services, await harness.principal(), task_id)
    assert job.id == task_id and job.dialect == "linkmodel" and job.model == MODEL


async def test_polling_ends_succeeded_with_absolute_fetchable_image_urls(harness: Harness, seed: Seed) -> None:
    created = await create_ok(harness, seed, size="16x9", quality="1K")
    done = await finish(harness, seed, created["data"]["task_id"])
    data = done["data"]
    assert data["status"] == "succeeded" and data["msg"] == ""
    assert data["task_id"] == created["data"]["task_id"] and data["order_id"] == created["data"]["order_id"]
    assert 0.039 <= data["price"] < 0.0391 and data["model"] == MODEL  # the image plus its input tokens
    assert len(data["output_images"]) == 1
    url = data["output_images"][0]
    assert url.startswith(f"{BASE_URL}/v1/files/file_")
    image = await harness.client.get(url)  # signed: no key needed
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    ratio = ASPECT_RATIOS["16:9"]
    assert Image.open(io.BytesIO(image.content)).size == (ratio.width, ratio.height)


async def test_image_urls_are_fetched_and_given_to_the_model(harness: Harness, seed: Seed) -> None:
    created = await create_ok(harness, seed, images=[data_url("red"), data_url("blue")])
    done = await finish(harness, seed, created["data"]["task_id"])
    assert done["data"]["status"] == "succeeded" and len(done["data"]["output_images"]) == 1


async def test_a_refusal_ends_failed_with_its_reason_and_no_charge(harness: Harness, seed: Seed) -> None:
    created = await create_ok(harness, seed, prompt="emulate:image_safety please")
    done = await finish(harness, seed, created["data"]["task_id"])
    data = done["data"]
    assert data["status"] == "failed"
    assert data["msg"].startswith("IMAGE_SAFETY: ")
    assert data["output_images"] == [] and data["price"] == 0


async def test_an_upstream_failure_ends_failed_with_its_error(harness: Harness, seed: Seed) -> None:
    created = await create_ok(harness, seed, prompt="emulate:unavailable")
    data = (await finish(harness, seed, created["data"]["task_id"]))["data"]
    assert data["status"] == "failed" and data["msg"].startswith("upstream_unavailable: ")
    assert data["output_images"] == [] and data["price"] == 0


async def test_task_ids_are_accepted_in_any_uuid_spelling(harness: Harness, seed: Seed) -> None:
    task_id = (await create_ok(harness, seed))["data"]["task_id"]
    for spelling in (task_id.upper(), "{" + task_id + "}", task_id.replace("-", "")):
        response = await harness.poll(spelling)
        assert response.status_code == 200 and response.json()["data"]["task_id"] == task_id


async def test_undefined_methods_are_405_with_allow_and_the_request_id(harness: Harness) -> None:
    for method, path, allowed in (("GET", "/api/v1/image-generation", "POST"), ("DELETE", "/api/v1/tasks/x", "GET")):
        response = await harness.client.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == allowed
        body = response.json()
        assert body["code"] == 405 and body["request_id"] == response.headers["x-request-id"]


async def test_a_job_from_another_dialect_can_be_polled_here(harness: Harness, seed: Seed) -> None:
    spec = JobSpec(model=MODEL, turns=(Turn(Role.USER, ("two bananas",)),), n=2, dialect="openai")
    job = await submit_job(harness.runtime.services, await harness.principal(), spec)
    # That job's id is an imagegate id (job_…), not a UUID: the one place the lenient format check applies.
    response = await harness.until_done(job.id, validate=lambda body: seed.validate_poll(body, strict_uuid=False))
    data = response.json()["data"]
    assert data["task_id"] == job.id and data["status"] == "succeeded"
    assert len(data["output_images"]) == 2 and 0.078 <= data["price"] < 0.0781


@pytest.mark.parametrize(
    ("headers", "msg"),
    [
        ({}, "missing api key"),
        ({"Authorization": "Bearer not-a-key"}, "invalid api key"),
        ({"Authorization": "Bearer ig_" + "A" * 40}, "invalid api key"),
    ],
)
async def test_a_missing_or_invalid_key_is_the_seeds_401(
    harness: Harness, seed: Seed, headers: dict[str, str], msg: str
) -> None:
    for response in (
        await harness.client.post(CREATE, json=body(), headers=headers),
        await harness.client.get("/api/v1/tasks/job_0h3kQ2xAbCdEfGhIjKlMnOpQ", headers=headers),
    ):
        assert response.status_code == 401
        payload = checked(response, seed)
        assert payload == {"code": 401, "data": {}, "msg": msg, "request_id": response.headers["x-request-id"]}


@pytest.mark.parametrize(
    ("payload", "msg"),
    [
        ({"prompt": "a"}, "model is required"),
        (body(model="dall-e-3"), "model must be one of: gemini-2.5-flash-image"),
        (body(prompt=""), "prompt length must be between 1 and 100000"),
        (body(prompt="x" * 100_001), "prompt length must be between 1 and 100000"),
        (body(images=["https://example.com/a.png"] * 11), "images must have at most 10 items"),
        (body(quality="4K"), "quality must be one of: 1K"),
        (body(size="16:9"), "size must be one of: 16x9, 1x1, 21x9, 2x3, 3x2, 3x4, 4x3, 4x5, 5x4, 9x16"),
        (body(images=[data_url()] * 4), "images: gemini-2.5-flash-image accepts at most 3 input images"),
        (body(images=[data_url(), "ftp://example.com/a.png"]), "images[1]: The image URL uses ftp:"),
        (body(images=["data:image/png;base64,aGVsbG8="]), "images[0]: The image data is not a supported image"),
        (body(images=["https://127.0.0.1/a.png"]), "images[0]: The image URL's host 127.0.0.1 is a loopback"),
    ],
)
async def test_an_invalid_request_is_the_seeds_400(
    harness: Harness, seed: Seed, payload: dict[str, Any], msg: str
) -> None:
    response = await harness.create(payload)
    assert response.status_code == 400, response.text
    assert checked(response, seed)["msg"].startswith(msg)


async def test_a_body_that_is_not_json_is_the_seeds_400(harness: Harness, seed: Seed) -> None:
    response = await harness.client.post(
        CREATE, content=b"{not json", headers={**harness.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert checked(response, seed)["msg"] == "request body is not valid JSON"


async def test_another_keys_task_and_an_unknown_one_are_the_same_400(harness: Harness, seed: Seed) -> None:
    task_id = (await create_ok(harness, seed))["data"]["task_id"]
    other = await create_key(harness.runtime.services, name="someone else")
    theirs = await harness.poll(task_id, key=other.key)
    unknown = await harness.poll("job_0h3kQ2xAbCdEfGhIjKlMnOpQ")
    for response, wanted in ((theirs, task_id), (unknown, "job_0h3kQ2xAbCdEfGhIjKlMnOpQ")):
        assert response.status_code == 400
        assert checked(response, seed)["msg"] == f"task {wanted} not found"


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/"])
async def test_polling_without_a_task_id_is_the_seeds_own_400(harness: Harness, seed: Seed, path: str) -> None:
    response = await harness.client.get(path, headers=harness.auth())
    assert response.status_code == 400
    assert checked(response, seed)["msg"] == "task_id is required"


async def test_a_callers_uuid_request_id_is_the_body_request_id(harness: Harness, seed: Seed) -> None:
    request_id = str(uuid.uuid4())
    response = await harness.client.post(CREATE, json=body(), headers={**harness.auth(), "x-request-id": request_id})
    assert checked(response, seed)["request_id"] == request_id
    failed = await harness.client.post(CREATE, json={}, headers={**harness.auth(), "x-request-id": request_id})
    assert failed.status_code == 400 and checked(failed, seed)["request_id"] == request_id


async def test_a_rate_limit_is_the_seeds_500_with_retry_after(tmp_path: Path, seed: Seed) -> None:
    async with open_harness(tmp_path, rate_limit_per_minute=1) as harness:
        assert (await harness.create(body())).status_code == 200
        response = await harness.create(body())
    assert response.status_code == 500
    assert checked(response, seed)["msg"].startswith("create task failed: rate limit: ")
    assert int(response.headers["retry-after"]) >= 1


async def test_an_unexpected_error_is_the_seeds_500_and_leaks_nothing(
    harness: Harness, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("imagegate.dialects.linkmodel.routes.submit_job", broken)
    request_id = str(uuid.uuid4())
    response = await harness.client.post(CREATE, json=body(), headers={**harness.auth(), "x-request-id": request_id})
    assert response.status_code == 500
    payload = checked(response, seed)
    assert payload == {"code": 500, "msg": "create task failed: internal error", "request_id": request_id}
