"""Gemini responses out: a finished ``Job`` as a ``GenerateContentResponse``, stream chunks, token counts, models.

Everything is a plain camelCase dict with no ``null`` values, exactly what Google sends and what
google-genai parses: a text part before the image parts, images as standard padded base64 without line
breaks, refusals as a candidate without ``parts`` (clients index ``parts``, so never ``parts: []``) or, for a
blocked prompt, no ``candidates`` at all. Pure functions: image bytes are looked up, never read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import base64_text, encode_base64
from imagegate.core.jobs import FinishReason, Job, SlotResult, StoredImage, Usage
from imagegate.errors import InternalError, InvalidRequest, error_from_code
from imagegate.http.json_pieces import Base64Piece

SUPPORTED_GENERATION_METHODS = ("generateContent", "countTokens", "streamGenerateContent")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_PAGE_TOKEN_PREFIX = "models:"


def render_response(
    job: Job, image_bytes: Mapping[str, bytes], model: ModelSpec, *, response_id: str, pieces: bool = False
) -> dict[str, Any]:
    """The ``GenerateContentResponse`` of a finished job (its first slot).

    ``pieces``: each image's data is a ``Base64Piece``, for ``dumps_pieces`` (the wire); else a string.
    A slot or job that failed is raised as its domain error, for the caller's error path to render.
    """
    slot = _first_slot(job)
    envelope = _envelope(slot, model, response_id, slot.usage)
    if slot.block_reason:
        return {"promptFeedback": {"blockReason": slot.block_reason}, **envelope}
    parts = _thought_parts(slot, image_bytes, pieces) + _text_parts(slot) + _image_parts(slot, image_bytes, pieces)
    return {"candidates": [_final_candidate(slot, parts)], **envelope}


def render_stream_chunks(
    job: Job, image_bytes: Mapping[str, bytes], model: ModelSpec, *, response_id: str, pieces: bool = False
) -> list[dict[str, Any]]:
    """The same answer as ``render_response``, as the complete chunks of ``streamGenerateContent``.

    Text first, then the image whole in the last chunk with the finish reason; usage is cumulative, so the
    last chunk's is the request's. Refusals and image-only answers are one chunk.
    """
    slot = _first_slot(job)
    if slot.block_reason or not slot.images or not (slot.text or slot.thoughts):
        return [render_response(job, image_bytes, model, response_id=response_id, pieces=pieces)]
    text_usage = replace(slot.usage, output_image_tokens=0)
    leading = _thought_parts(slot, image_bytes, pieces) + _text_parts(slot)  # what the model says before the image
    first = {
        "candidates": [{"content": {"role": "model", "parts": leading}, "index": 0}],
        **_envelope(slot, model, response_id, text_usage),
    }
    last = {
        "candidates": [_final_candidate(slot, _image_parts(slot, image_bytes, pieces))],
        **_envelope(slot, model, response_id, slot.usage),
    }
    return [first, last]


def render_count_tokens(usage: Usage) -> dict[str, Any]:
    """A ``CountTokensResponse``: the prompt's tokens only (any output counts in ``usage`` are not input)."""
    body: dict[str, Any] = {"totalTokens": usage.input_tokens}
    details = _modality_counts((("TEXT", usage.input_text_tokens), ("IMAGE", usage.input_image_tokens)))
    if details:
        body["promptTokensDetails"] = details
    return body


def render_model(model: ModelSpec) -> dict[str, Any]:
    """A ``Model`` resource as ``GET /{ver}/models/{id}`` returns it."""
    return {
        "name": f"models/{model.id}",
        "baseModelId": model.id,
        "version": model.version,
        "displayName": model.display_name,
        "description": model.description,
        "inputTokenLimit": model.input_token_limit,
        "outputTokenLimit": model.output_token_limit,
        "supportedGenerationMethods": list(SUPPORTED_GENERATION_METHODS),
        "temperature": model.temperature,
        "topP": model.top_p,
        "topK": model.top_k,
        "maxTemperature": model.max_temperature,
    }


def render_model_list(models: Sequence[ModelSpec], *, page_size: int | None, page_token: str | None) -> dict[str, Any]:
    """One page of ``GET /{ver}/models``; ``nextPageToken`` only when more remain (the SDK pages while it is set)."""
    if page_size is not None and page_size < 0:
        raise InvalidRequest(f"Invalid page_size {page_size}: it must not be negative.", field="page_size")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)  # Google coerces sizes above the maximum
    start = _decode_page_token(page_token) if page_token else 0
    body: dict[str, Any] = {"models": [render_model(m) for m in models[start : start + size]]}
    if start + size < len(models):
        body["nextPageToken"] = _encode_page_token(start + size)
    return body


def _first_slot(job: Job) -> SlotResult:
    if not job.results:
        if job.error is not None:
            raise error_from_code(job.error.code, job.error.message, retry_after_s=job.error.retry_after_s)
        raise InternalError(f"job {job.id} has no result to render")
    slot = job.results[0]
    if slot.error is not None:
        raise error_from_code(slot.error.code, slot.error.message, retry_after_s=slot.error.retry_after_s)
    return slot


def _envelope(slot: SlotResult, model: ModelSpec, response_id: str, usage: Usage) -> dict[str, Any]:
    return {
        "usageMetadata": _usage_metadata(usage),
        "modelVersion": slot.model_version or model.id,
        "responseId": response_id,
    }


def _final_candidate(slot: SlotResult, parts: list[dict[str, Any]]) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if parts:
        candidate["content"] = {"role": "model", "parts": parts}
    candidate["finishReason"] = slot.finish_reason or (FinishReason.STOP if parts else FinishReason.NO_IMAGE)
    if slot.finish_message:
        candidate["finishMessage"] = slot.finish_message
    if slot.grounding:
        candidate["groundingMetadata"] = slot.grounding
    candidate["index"] = 0
    return candidate


def _thought_parts(slot: SlotResult, image_bytes: Mapping[str, bytes], pieces: bool) -> list[dict[str, Any]]:
    """The model's thoughts, first as Google sends them (only kept when the request set includeThoughts)."""
    parts: list[dict[str, Any]] = []
    for thought in slot.thoughts:
        part: dict[str, Any] = (
            _inline(thought.image, image_bytes, pieces) if thought.image is not None else {"text": thought.text}
        )
        part["thought"] = True
        parts.append(_signed(part, thought.signature))
    return parts


def _text_parts(slot: SlotResult) -> list[dict[str, Any]]:
    return [_signed({"text": slot.text}, slot.text_signature)] if slot.text else []


def _image_parts(slot: SlotResult, image_bytes: Mapping[str, bytes], pieces: bool) -> list[dict[str, Any]]:
    signatures = slot.image_signatures or (None,) * len(slot.images)
    return [
        _signed(_inline(image, image_bytes, pieces), signature)
        for image, signature in zip(slot.images, signatures, strict=True)
    ]


def _inline(image: StoredImage, image_bytes: Mapping[str, bytes], pieces: bool) -> dict[str, Any]:
    data = image_bytes.get(image.file_id)
    if data is None:
        raise InternalError(f"the bytes of image {image.file_id} were not loaded")
    # Standard alphabet, padded, one line: google-genai's decoder rejects line breaks and data: prefixes.
    text = Base64Piece(base64_text(image_bytes, image.file_id)) if pieces else encode_base64(data)
    return {"inlineData": {"mimeType": image.mime_type, "data": text}}


def _signed(part: dict[str, Any], signature: bytes | None) -> dict[str, Any]:
    # the opaque thoughtSignature the model put on this part, for the caller to send back in the next turn
    if signature is not None:
        part["thoughtSignature"] = encode_base64(signature)
    return part


def _usage_metadata(usage: Usage) -> dict[str, Any]:
    # promptTokenCount stays on refusals (Google keeps it); zero counts are left out as proto3 JSON does.
    meta: dict[str, Any] = {"promptTokenCount": usage.input_tokens}
    if usage.output_tokens:
        meta["candidatesTokenCount"] = usage.output_tokens
    meta["totalTokenCount"] = usage.total_tokens
    if usage.thoughts_tokens:
        meta["thoughtsTokenCount"] = usage.thoughts_tokens
    prompt = _modality_counts((("TEXT", usage.input_text_tokens), ("IMAGE", usage.input_image_tokens)))
    if prompt:
        meta["promptTokensDetails"] = prompt
    candidates = _modality_counts((("IMAGE", usage.output_image_tokens), ("TEXT", usage.output_text_tokens)))
    if candidates:
        meta["candidatesTokensDetails"] = candidates
    return meta


def _modality_counts(counts: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"modality": modality, "tokenCount": n} for modality, n in counts if n > 0]


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PAGE_TOKEN_PREFIX}{offset}".encode()).decode("ascii").rstrip("=")


def _decode_page_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    offset = text.removeprefix(_PAGE_TOKEN_PREFIX)
    if text == offset or not offset.isdigit() or len(offset) > 9:
        raise InvalidRequest("Invalid page token.", field="page_token")
    return int(offset)
