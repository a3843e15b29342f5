"""Chat Completions in and out: a parsed ``ChatRequest`` as a ``JobSpec``, a finished ``Job`` as a completion.

In: system and developer messages become the system instruction, user and assistant messages the turns (an
assistant's earlier images, echoed back, are context for the next edit); ``n`` fans out as in every dialect;
``modalities`` and ``image_config`` map onto the job. Out: one choice per slot, the images as data URLs in
``message.images`` the way OpenRouter returns them, the model's text in ``content``, OpenAI's ``usage``; for
``stream: true`` the same as ``chat.completion.chunk`` objects. A refusal is a choice with ``finish_reason``
``content_filter`` (OpenRouter's normalised reason, Gemini's own in ``native_finish_reason``); a job that made
nothing and refused nothing is raised as its error. Pure functions: images are handed in, never fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from imagegate.core.capabilities import ModelSpec
from imagegate.core.checks import check_job
from imagegate.core.images import ImageInput, base64_text, encode_base64
from imagegate.core.jobs import FinishReason, Job, JobSpec, Modality, Role, SlotResult, Turn, Usage
from imagegate.core.jobs import Part as TurnPart
from imagegate.dialects.openai_chat.wire import ChatMessage, ChatRequest, ImageUrl
from imagegate.errors import InvalidRequest, Unsupported, error_from_code
from imagegate.http.json_pieces import Base64Piece

DIALECT = "openai_chat"
#: The JobSpec fields as this dialect names them, for ``core.checks`` violations.
FIELDS = {
    "image_size": "image_config.image_size",
    "aspect_ratio": "image_config.aspect_ratio",
    "input_images": "messages",
    "prompt": "messages",
    "modalities": "modalities",
}
_ROLES = {"user": Role.USER, "assistant": Role.MODEL}
_FILTERED = {
    FinishReason.IMAGE_SAFETY,
    FinishReason.IMAGE_PROHIBITED_CONTENT,
    FinishReason.IMAGE_OTHER,
    FinishReason.SAFETY,
    FinishReason.PROHIBITED_CONTENT,
    FinishReason.RECITATION,
}


def check_input_limits(request: ChatRequest, model: ModelSpec) -> None:
    """Refuse more images in the last user message than ``model`` takes, before any of them is fetched."""
    last_user = next(m for m in reversed(request.messages) if m.role == "user")
    count = sum(isinstance(p, ImageUrl) for p in last_user.parts)
    if count > model.max_input_images:
        raise InvalidRequest(
            f"{model.id} accepts at most {model.max_input_images} input images per request; got {count}.",
            field="messages",
        )


def to_job_spec(request: ChatRequest, model: ModelSpec, images: Mapping[str, ImageInput]) -> JobSpec:
    """The job ``request`` asks of ``model``; ``images`` are the loaded image parts, by their field."""
    system = [p for m in request.messages if m.role in ("system", "developer") for p in m.parts]
    turns = tuple(_turn(m, images) for m in request.messages if m.role in _ROLES and m.parts)
    if request.max_tokens is not None and request.max_tokens < model.output_tokens_per_image:
        raise InvalidRequest(
            f"max_tokens {request.max_tokens} is too small for an image: each image is "
            f"{model.output_tokens_per_image} output tokens. Raise it or leave it out.",
            field="max_tokens",
        )
    spec = JobSpec(
        model=model.id,
        turns=turns,
        system_instruction="\n".join(str(p) for p in system) or None,
        aspect_ratio=request.aspect_ratio,
        image_size=request.image_size,
        modalities=_modalities(request.modalities),
        n=request.n,
        seed=request.seed,
        temperature=request.temperature,
        dialect=DIALECT,
        google=request.google,
        end_user=request.end_user,
    )
    for violation in check_job(spec, model)[:1]:  # what this model cannot do, named as the caller named it
        raise Unsupported(violation.explained + ".", field=FIELDS.get(violation.field, violation.field))
    return spec


def _turn(message: ChatMessage, images: Mapping[str, ImageInput]) -> Turn:
    parts: list[TurnPart] = [images[p.field] if isinstance(p, ImageUrl) else p for p in message.parts]
    return Turn(_ROLES[message.role], tuple(parts))


def _modalities(names: tuple[str, ...] | None) -> frozenset[Modality]:
    if names is None:
        return frozenset({Modality.TEXT, Modality.IMAGE})
    return frozenset(Modality(name.upper()) for name in names)


def render_model_list(models: Sequence[ModelSpec]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": "imagegate",
                "name": m.display_name,
                "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["image", "text"]},
            }
            for m in models
        ],
    }


def completion_id(job: Job) -> str:
    return f"chatcmpl-{job.id}"


def render_completion(
    job: Job, model: ModelSpec, image_bytes: Mapping[str, bytes], *, pieces: bool = False
) -> dict[str, Any]:
    """The ``chat.completion`` body of a finished job; raises its error when no slot answered at all.

    ``pieces``: each image's data URL is a ``Base64Piece``, for ``dumps_pieces`` (the wire); else a string."""
    _raise_if_nothing(job)
    return {
        "id": completion_id(job),
        "object": "chat.completion",
        "created": _created(job),
        "model": model.id,
        "choices": [_choice(slot, image_bytes, pieces) for slot in job.results],
        "usage": render_usage(job.usage),
    }


def stream_start(job: Job, model: ModelSpec) -> list[dict[str, Any]]:
    """The first chunk of every choice: the assistant role, sent before the images exist."""
    return [
        _chunk(job, model, [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for i in range(job.n)
    ]


def stream_rest(
    job: Job, model: ModelSpec, image_bytes: Mapping[str, bytes], *, include_usage: bool = False, pieces: bool = False
) -> list[dict[str, Any]]:
    """The chunks after the job finished: each choice's content and images, then its finish.

    The usage rides on the last chunk, as OpenRouter sends it; with ``stream_options.include_usage`` it comes the
    way OpenAI sends it instead: a chunk of its own after the rest, with no choices.
    """
    _raise_if_nothing(job)
    chunks: list[dict[str, Any]] = []
    for slot in job.results:
        choice = _choice(slot, image_bytes, pieces)
        message = choice["message"]
        delta: dict[str, Any] = {"role": "assistant", "content": message["content"] or ""}
        if message.get("images"):
            delta["images"] = message["images"]  # OpenRouter delivers the images whole in a delta
        chunks.append(_chunk(job, model, [{"index": slot.index, "delta": delta, "finish_reason": None}]))
        finish = {
            "index": slot.index,
            "delta": {},
            "finish_reason": choice["finish_reason"],
            "native_finish_reason": choice["native_finish_reason"],
        }
        if "error" in choice:
            finish["error"] = choice["error"]
        chunks.append(_chunk(job, model, [finish]))
    if include_usage:
        chunks.append(_chunk(job, model, []) | {"usage": render_usage(job.usage)})
    elif chunks:
        chunks[-1]["usage"] = render_usage(job.usage)
    return chunks


def render_usage(usage: Usage) -> dict[str, Any]:
    completion = usage.output_tokens + usage.thoughts_tokens  # reasoning counts as completion, as OpenAI counts it
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": completion,
        "total_tokens": usage.input_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": usage.input_image_tokens},
        "completion_tokens_details": {
            "reasoning_tokens": usage.thoughts_tokens,
            "image_tokens": usage.output_image_tokens,
        },
    }


def _data_url(mime_type: str, file_id: str, image_bytes: Mapping[str, bytes], pieces: bool) -> str | Base64Piece:
    if pieces:
        return Base64Piece(base64_text(image_bytes, file_id), prefix=f"data:{mime_type};base64,".encode())
    return f"data:{mime_type};base64,{encode_base64(image_bytes[file_id])}"


def _chunk(job: Job, model: ModelSpec, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": completion_id(job),
        "object": "chat.completion.chunk",
        "created": int(job.created_at.timestamp()),
        "model": model.id,
        "choices": choices,
    }


def _choice(slot: SlotResult, image_bytes: Mapping[str, bytes], pieces: bool) -> dict[str, Any]:
    images = [
        {
            "type": "image_url",
            "image_url": {"url": _data_url(img.mime_type, img.file_id, image_bytes, pieces)},
            "index": i,
        }
        for i, img in enumerate(slot.images)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": slot.text or None}
    if images:
        message["images"] = images
    choice: dict[str, Any] = {"index": slot.index, "message": message}
    if slot.error is not None:
        choice["finish_reason"] = "error"
        choice["native_finish_reason"] = slot.error.code
        choice["error"] = {"code": slot.error.code, "message": slot.error.message}
    else:
        choice["finish_reason"] = _finish_reason(slot)
        choice["native_finish_reason"] = slot.block_reason or slot.finish_reason or FinishReason.STOP
    return choice


def _finish_reason(slot: SlotResult) -> str:
    if slot.block_reason or slot.finish_reason in _FILTERED:
        return "content_filter"
    if slot.finish_reason == FinishReason.MAX_TOKENS:
        return "length"
    return "stop"


def _raise_if_nothing(job: Job) -> None:
    """A job whose every slot failed (or that never ran) has no choice to show: its error is the answer."""
    if job.results and any(slot.error is None for slot in job.results):
        return
    failed = next((slot.error for slot in job.results if slot.error is not None), None) or job.error
    if failed is None:
        raise error_from_code("internal_error", f"job {job.id} has no result to render")
    raise error_from_code(failed.code, failed.message, retry_after_s=failed.retry_after_s)


def _created(job: Job) -> int:
    return int((job.finished_at or job.created_at).timestamp())
