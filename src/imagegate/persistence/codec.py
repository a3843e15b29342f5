"""Converts a job's results and error to the JSON documents stored in the ``jobs`` table, and back.

The stored shape is explicit (field by field, not ``dataclasses.asdict``) so that renaming a Python field
never silently changes what is on disk; decoding tolerates missing optional fields so that older rows still load.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from imagegate.core.attempts import Attempt
from imagegate.core.jobs import JobError, SlotResult, StoredImage, StoredThought, Usage

Document = dict[str, Any]


def encode_results(results: Sequence[SlotResult]) -> list[Document]:
    return [_encode_slot(slot) for slot in results]


def decode_results(doc: Sequence[Mapping[str, Any]] | None) -> tuple[SlotResult, ...]:
    return tuple(_decode_slot(slot) for slot in doc or ())


def encode_error(error: JobError | None) -> Document | None:
    if error is None:
        return None
    return {"code": error.code, "message": error.message, "retry_after_s": error.retry_after_s}


def decode_error(doc: Mapping[str, Any] | None) -> JobError | None:
    if doc is None:
        return None
    retry_after = doc.get("retry_after_s")
    return JobError(
        code=str(doc["code"]),
        message=str(doc["message"]),
        retry_after_s=None if retry_after is None else float(retry_after),
    )


def _encode_slot(slot: SlotResult) -> Document:
    return {
        "index": slot.index,
        "images": [_encode_image(image) for image in slot.images],
        "text": slot.text,
        "finish_reason": slot.finish_reason,
        "finish_message": slot.finish_message,
        "block_reason": slot.block_reason,
        "usage": _encode_usage(slot.usage),
        "model_version": slot.model_version,
        "error": encode_error(slot.error),
        "deployment": slot.deployment,
        "attempts": [_encode_attempt(attempt) for attempt in slot.attempts],
        "seed": slot.seed,
        "thoughts": [_encode_thought(thought) for thought in slot.thoughts],
        "text_signature": _encode_bytes(slot.text_signature),
        "image_signatures": [_encode_bytes(signature) for signature in slot.image_signatures],
        "grounding": slot.grounding,
    }


def _decode_slot(doc: Mapping[str, Any]) -> SlotResult:
    return SlotResult(
        index=int(doc["index"]),
        images=tuple(_decode_image(image) for image in doc.get("images") or ()),
        text=str(doc.get("text") or ""),
        finish_reason=_optional_str(doc.get("finish_reason")),
        finish_message=_optional_str(doc.get("finish_message")),
        block_reason=_optional_str(doc.get("block_reason")),
        usage=_decode_usage(doc.get("usage") or {}),
        model_version=_optional_str(doc.get("model_version")),
        error=decode_error(doc.get("error")),
        deployment=_optional_str(doc.get("deployment")),
        attempts=tuple(_decode_attempt(attempt) for attempt in doc.get("attempts") or ()),
        seed=int(doc["seed"]) if doc.get("seed") is not None else None,
        thoughts=tuple(_decode_thought(thought) for thought in doc.get("thoughts") or ()),
        text_signature=_decode_bytes(doc.get("text_signature")),
        image_signatures=tuple(_decode_bytes(signature) for signature in doc.get("image_signatures") or ()),
        grounding=doc.get("grounding"),
    )


def _encode_attempt(attempt: Attempt) -> Document:
    return {
        "deployment": attempt.deployment,
        "outcome": attempt.outcome,
        "latency_ms": attempt.latency_ms,
        "reason": attempt.reason,
    }


def _decode_attempt(doc: Mapping[str, Any]) -> Attempt:
    latency = doc.get("latency_ms")
    return Attempt(
        deployment=str(doc.get("deployment") or ""),
        outcome=str(doc.get("outcome") or ""),
        latency_ms=float(latency) if latency is not None else None,
        reason=_optional_str(doc.get("reason")),
    )


def _encode_thought(thought: StoredThought) -> Document:
    return {
        "text": thought.text,
        "image": _encode_image(thought.image) if thought.image is not None else None,
        "signature": _encode_bytes(thought.signature),
    }


def _decode_thought(doc: Mapping[str, Any]) -> StoredThought:
    image = doc.get("image")
    return StoredThought(
        text=str(doc.get("text") or ""),
        image=_decode_image(image) if image is not None else None,
        signature=_decode_bytes(doc.get("signature")),
    )


def _encode_bytes(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _decode_bytes(value: Any) -> bytes | None:
    return None if value is None else base64.b64decode(str(value))


def _encode_image(image: StoredImage) -> Document:
    return {
        "file_id": image.file_id,
        "mime_type": image.mime_type,
        "width": image.width,
        "height": image.height,
        "size_bytes": image.size_bytes,
    }


def _decode_image(doc: Mapping[str, Any]) -> StoredImage:
    return StoredImage(
        file_id=str(doc["file_id"]),
        mime_type=str(doc["mime_type"]),
        width=int(doc["width"]),
        height=int(doc["height"]),
        size_bytes=int(doc["size_bytes"]),
    )


def _encode_usage(usage: Usage) -> Document:
    return {
        "input_text_tokens": usage.input_text_tokens,
        "input_image_tokens": usage.input_image_tokens,
        "output_text_tokens": usage.output_text_tokens,
        "output_image_tokens": usage.output_image_tokens,
        "thoughts_tokens": usage.thoughts_tokens,
    }


def _decode_usage(doc: Mapping[str, Any]) -> Usage:
    return Usage(
        input_text_tokens=int(doc.get("input_text_tokens", 0)),
        input_image_tokens=int(doc.get("input_image_tokens", 0)),
        output_text_tokens=int(doc.get("output_text_tokens", 0)),
        output_image_tokens=int(doc.get("output_image_tokens", 0)),
        thoughts_tokens=int(doc.get("thoughts_tokens", 0)),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
