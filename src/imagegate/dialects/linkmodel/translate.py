"""Pure translation for the linkmodel task API: a parsed request to a ``JobSpec``, and a ``Job`` to the envelope.

A task is an ordinary job (``task_id`` is the job id), so any job from any dialect renders here. Statuses collapse
to the seed's three: queued/running are ``processing``; succeeded is ``succeeded`` unless no image was delivered
(a refusal), which is ``failed`` with the reason; failed and cancelled are ``failed``. ``order_id`` is a UUID
derived from the job id (the seed types it ``format: uuid``), and ``price`` is a JSON number as the seed types it:
the quote (n times the model's per-image price) while processing, then what delivered images cost (failed: 0).
Billing proper comes later; this is the amount the rules of DESIGN.md would charge. No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import first_violation
from imagegate.core.ids import order_id_of
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Job, JobSpec, JobStatus, Role, SlotResult, Turn
from imagegate.core.money import format_amount
from imagegate.dialects.linkmodel.wire import ImageGenerationRequest
from imagegate.errors import InvalidRequest
from imagegate.services.billing import displayed_price

DIALECT = "linkmodel"
SUCCESS_CODE = 0
SUCCESS_MSG = "success"

PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"

#: Fixed forever: order ids must stay the same for a job across restarts and replicas.


def aspect_ratio_of(size: str | None) -> str | None:
    """The seed's ``16x9`` as imagegate's ``16:9``; None (left out) lets the model pick."""
    return None if size is None else size.replace("x", ":", 1)


#: The JobSpec fields as this dialect names them: ``core.checks`` violations name these.
FIELDS = {"input_images": "images", "aspect_ratio": "size", "image_size": "quality"}


def check_input_limits(request: ImageGenerationRequest, model: ModelSpec) -> None:
    """The one capability check, before any image URL is fetched (the images counted by their URLs)."""
    count = len(request.images)
    if (violation := first_violation(to_job_spec(request, model, ()), model, FIELDS)) is not None:
        raise InvalidRequest(f"{violation[0]}: {violation[1]}", field=violation[0])
    if count > model.max_input_images:
        raise InvalidRequest(
            f"images: {model.id} accepts at most {model.max_input_images} input images per request, got {count}",
            field="images",
        )


def to_job_spec(request: ImageGenerationRequest, model: ModelSpec, images: Sequence[ImageInput] = ()) -> JobSpec:
    """The job ``request`` asks of ``model``; ``images`` are those fetched for ``request.images``, in order.
    ``quality`` is the resolution (``1K``…``4K``; 2.5 Flash Image makes only ``1K``)."""
    return JobSpec(
        model=model.id,
        turns=(Turn(Role.USER, (request.prompt, *images)),),
        aspect_ratio=aspect_ratio_of(request.size),
        image_size=request.quality,
        dialect=DIALECT,
    )


def task_status(job: Job) -> tuple[str, str]:
    """The seed's status of ``job`` and, when it failed, why (``""`` otherwise)."""
    if not job.status.terminal:
        return PROCESSING, ""
    if job.status is JobStatus.SUCCEEDED:
        return (SUCCEEDED, "") if job.images else (FAILED, _refusal_reason(job.results))
    if job.status is JobStatus.CANCELLED:
        return FAILED, "cancelled: the task was cancelled"
    if job.error is None:
        return FAILED, "internal_error: the task failed"
    return FAILED, f"{job.error.code}: {job.error.message}"


def price_micros(job: Job, model: ModelSpec | None) -> int:
    """The quote (or hold) while the job runs, its final charge once it has ended."""
    return displayed_price(job, model)


def price_number(micros: int) -> float:
    """The seed types ``price`` as a JSON number. ``format_amount`` is exact, and a float's repr is the shortest
    text that reads back as the same value, so the JSON shows exactly that decimal (to 15 significant digits)."""
    return float(format_amount(micros))


def created_data(job: Job, model: ModelSpec | None) -> dict[str, Any]:
    """The seed's ``data`` of the 200 answer to a create: exactly ``task_id``, ``order_id``, ``status``, ``price``."""
    status, _ = task_status(job)
    return {
        "task_id": job.id,
        "order_id": order_id_of(job.id),
        "status": status,
        "price": price_number(price_micros(job, model)),
    }


def task_data(job: Job, model: ModelSpec | None, image_urls: Sequence[str]) -> dict[str, Any]:
    """A polled task: the create answer's fields, plus ``model``, ``output_images`` (when succeeded) and ``msg``.

    ``output_images`` and ``msg`` are the names linkmodel's own query endpoint uses for result URLs and the reason.
    """
    data = created_data(job, model)
    status, reason = task_status(job)
    data["model"] = job.model
    data["output_images"] = list(image_urls) if status == SUCCEEDED else []
    data["msg"] = reason
    return data


def envelope(data: dict[str, Any], request_id: str) -> dict[str, Any]:
    """``{"code": 0, "data": …, "msg": "success", "request_id": …}``: every 200 answer of this dialect."""
    return {"code": SUCCESS_CODE, "data": data, "msg": SUCCESS_MSG, "request_id": request_id}


def _refusal_reason(results: Sequence[SlotResult]) -> str:
    """Why a finished job holds no image: the first slot's block, error or finish reason, in that order."""
    for slot in results:
        if slot.block_reason:
            return f"blocked: {slot.block_reason}"
        if slot.error is not None:
            return f"{slot.error.code}: {slot.error.message}"
        if slot.finish_reason:
            # A normal stop without an image is, to the caller, the model declining to draw.
            reason = "NO_IMAGE" if slot.finish_reason == "STOP" else slot.finish_reason
            return f"{reason}: {slot.finish_message or 'the model returned no image'}"
    return "NO_IMAGE: the model returned no image"
