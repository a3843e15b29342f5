"""OpenAI Images responses out: a finished ``Job`` as an ``ImagesResponse`` body, with the AI/ML ``meta`` beside it.

One ``data`` item per delivered image (``b64_json`` as standard padded base64 without line breaks, or a hosted
``url``), the real output ``size`` such as ``1344x768``, token ``usage`` summed over the job's slots, and
``meta.usage.tokens_used`` for AI/ML API clients; nulls are omitted. A partial success returns what was made.
A job that made nothing is raised as a domain error instead: a refusal as OpenAI's ``moderation_blocked``, a
failure as the first slot's own error. Pure functions: image bytes and URLs are handed in, never fetched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import JPEG, PNG, WEBP, base64_text, encode_base64
from imagegate.core.jobs import FinishReason, Job, JobStatus, SlotResult, StoredImage, Usage
from imagegate.dialects.openai_images.requests import OutputOptions
from imagegate.errors import ImagegateError, InternalError, JobCancelled, ModerationBlocked, error_from_code
from imagegate.http.json_pieces import Base64Piece

_FORMATS = {PNG: "png", JPEG: "jpeg", WEBP: "webp"}
_MAX_MODEL_TEXT = 300


@dataclass(frozen=True, slots=True)
class RenderedImage:
    """One delivered image as the route hands it over: inline base64 or a hosted URL, per ``response_format``."""

    file_id: str
    width: int
    height: int
    b64_json: str | Base64Piece | None = None  # a Base64Piece for the wire (``dumps_pieces``)
    url: str | None = None


def inline_images(job: Job, image_bytes: Mapping[str, bytes], *, pieces: bool = False) -> list[RenderedImage]:
    """``RenderedImage`` with ``b64_json`` for each of the job's images, in slot order (missing bytes skipped);
    with ``pieces`` each ``b64_json`` is a ``Base64Piece`` (an upstream's own text where it was kept)."""
    return [
        RenderedImage(
            img.file_id,
            img.width,
            img.height,
            b64_json=Base64Piece(base64_text(image_bytes, img.file_id))
            if pieces
            else encode_base64(image_bytes[img.file_id]),
        )
        for img in job.images
        if img.file_id in image_bytes
    ]


def hosted_images(job: Job, url_for: Callable[[StoredImage], str]) -> list[RenderedImage]:
    """``RenderedImage`` with a ``url`` (made by the caller's ``url_for``) for each of the job's images."""
    return [RenderedImage(img.file_id, img.width, img.height, url=url_for(img)) for img in job.images]


def render_images_response(
    job: Job, images: Sequence[RenderedImage], model: ModelSpec, *, output: OutputOptions
) -> dict[str, Any]:
    """The ``ImagesResponse`` body of a finished job; raises the job's domain error when no image was made."""
    if not images:
        raise nothing_delivered(job, model)
    usage = _usage(job.usage)
    first = images[0]
    finished = job.finished_at or job.created_at
    return {
        "created": int(finished.timestamp()),
        "data": [_item(image, output) for image in images],
        "background": "opaque",
        "output_format": _FORMATS.get(output.mime_type, "png"),
        "size": f"{first.width}x{first.height}",
        "usage": usage,
        "meta": {"usage": {"tokens_used": usage["total_tokens"]}},
    }


def render_stream_events(
    job: Job, images: Sequence[RenderedImage], model: ModelSpec, *, output: OutputOptions, edit: bool
) -> list[dict[str, Any]]:
    """OpenAI's image-generation event stream for a finished job: one ``image_generation.completed`` (or
    ``image_edit.completed``) event per image, its own slot's usage in each. This model makes no partial images,
    so ``partial_images`` adds no events; raises the job's domain error when no image was made."""
    if not images:
        raise nothing_delivered(job, model)
    created = int((job.finished_at or job.created_at).timestamp())
    usage_of = {img.file_id: slot.usage for slot in job.results for img in slot.images}
    kind = "image_edit.completed" if edit else "image_generation.completed"
    return [
        {
            "type": kind,
            "b64_json": image.b64_json,
            "background": "opaque",
            "created_at": created,
            "output_format": _FORMATS.get(output.mime_type, "png"),
            "quality": "auto",
            "size": f"{image.width}x{image.height}",
            "usage": _usage(usage_of.get(image.file_id, Usage())),
        }
        for image in images
    ]


def _item(image: RenderedImage, output: OutputOptions) -> dict[str, Any]:
    preferred, other = ("url", "b64_json") if output.response_format == "url" else ("b64_json", "url")
    for key in (preferred, other):
        value = getattr(image, key)
        if value:
            item = {key: value}
            if output.revised_prompt is not None:
                item["revised_prompt"] = output.revised_prompt
            return item
    raise InternalError(f"image {image.file_id} was handed over with neither base64 data nor a URL")


def _usage(usage: Usage) -> dict[str, Any]:
    # Gemini counts thinking apart from the answer; OpenAI counts reasoning as output, so totals still add up.
    output_tokens = usage.output_tokens + usage.thoughts_tokens
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"text_tokens": usage.input_text_tokens, "image_tokens": usage.input_image_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"text_tokens": usage.output_text_tokens, "image_tokens": usage.output_image_tokens},
        "total_tokens": usage.input_tokens + output_tokens,
    }


def nothing_delivered(job: Job, model: ModelSpec) -> ImagegateError:
    """Why a job has no image to show: a refusal beats an error, because it tells the caller what to change."""
    if job.images:
        return InternalError(f"the images of job {job.id} could not be loaded")
    refused = [slot for slot in job.results if slot.error is None]
    if refused:
        return ModerationBlocked(_refusal_message(refused[0], model))
    failed = next((slot.error for slot in job.results if slot.error is not None), None) or job.error
    if failed is not None:
        return error_from_code(failed.code, failed.message, retry_after_s=failed.retry_after_s)
    if job.status is JobStatus.CANCELLED:
        return JobCancelled("The request was cancelled.")
    return InternalError(f"job {job.id} has no image to render")


def _refusal_message(slot: SlotResult, model: ModelSpec) -> str:
    if slot.block_reason:
        reason = f"block reason {slot.block_reason}"
    elif slot.finish_reason in (None, FinishReason.STOP):
        reason = f"finish reason {FinishReason.NO_IMAGE}"  # a text-only answer: no image, whatever the label
    else:
        reason = f"finish reason {slot.finish_reason}"
    message = f"Your request was rejected by the safety system of {model.id}; no image was made ({reason})."
    if slot.finish_message:
        message += f" {slot.finish_message}"
    if slot.text.strip():
        # The model's own words usually say why ("I can't create images of ..."); worth a few hundred characters.
        text = " ".join(slot.text.split())
        cut = text if len(text) <= _MAX_MODEL_TEXT else text[:_MAX_MODEL_TEXT].rstrip() + "…"
        message += f" The model said: {cut}"
    return message
