"""Request bodies for ``/openapi.json``: routes that read their body themselves (to word errors in their dialect)
declare it here, so the generated docs, SDK generators and fuzzers (Schemathesis in CI) know what to send.

Schemas come from the dialects' own pydantic wire models where they exist, inlined (no ``$ref``) so each
operation is self-contained; the ``$defs`` of a model are resolved in place and a cycle becomes "any value".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]


def inline_schema(model: type[BaseModel]) -> JsonSchema:
    """``model``'s JSON schema (by alias) with every ``#/$defs/...`` reference replaced by its definition."""
    schema = model.model_json_schema(by_alias=True)
    definitions: dict[str, JsonSchema] = schema.pop("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name in seen or name not in definitions:
                    return {}
                return resolve(definitions[name], (*seen, name))
            return {key: resolve(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        return node

    resolved: JsonSchema = resolve(schema, ())
    return resolved


def json_body(schema: JsonSchema, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body of ``schema``."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}


def json_or_form_body(json_schema: JsonSchema, form_schema: JsonSchema) -> dict[str, Any]:
    """``openapi_extra`` for a body sent as JSON or as multipart/form-data (image uploads)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": json_schema},
                "multipart/form-data": {"schema": form_schema},
            },
        }
    }


#: POSTs that take no body: an empty JSON object, or nothing at all.
EMPTY_BODY = json_body({"type": "object", "maxProperties": 0}, required=False)

#: Raw bytes (the Gemini Files upload).
BINARY_BODY = {
    "requestBody": {
        "required": False,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


_IMAGE_OPTIONS: JsonSchema = {
    "prompt": {"type": "string", "minLength": 1},
    "model": {"type": "string"},
    "n": {"type": "integer", "minimum": 1, "maximum": 10},
    "num_images": {"type": "integer", "minimum": 1, "maximum": 10},
    "size": {"type": "string", "examples": ["1024x1024", "1536x1024", "16:9"]},
    "aspect_ratio": {"type": "string", "examples": ["1:1", "16:9"]},
    "quality": {"type": "string"},
    "response_format": {"type": "string", "enum": ["url", "b64_json"]},
    "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
    "output_compression": {"type": "integer", "minimum": 0, "maximum": 100},
    "user": {"type": "string"},
}
_WEBHOOK: JsonSchema = {"webhook_url": {"type": "string", "format": "uri"}}
_IMAGE_REFS: JsonSchema = {
    "image": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "images": {"type": "array", "items": {"type": "string"}},
    "image_urls": {"type": "array", "items": {"type": "string"}},
}


def openai_images_body(*, edit: bool, webhook: bool = False) -> dict[str, Any]:
    """The OpenAI Images body (AIML's extensions included); edits also as multipart with image files."""
    extra = _WEBHOOK if webhook else {}
    fields = {**_IMAGE_OPTIONS, **extra}
    if not edit:
        return json_body({"type": "object", "required": ["prompt"], "properties": fields})
    json_schema = {"type": "object", "required": ["prompt"], "properties": {**fields, **_IMAGE_REFS}}
    binary = {"type": "string", "format": "binary"}
    form = {
        "type": "object",
        "required": ["prompt", "image"],
        "properties": {
            **{name: {"type": "string"} for name in fields},
            "image": binary,
            "image[]": {"type": "array", "items": binary},
            "mask": binary,
        },
    }
    return json_or_form_body(json_schema, form)


CHAT_BODY = json_body(
    {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
                    },
                },
            },
            "modalities": {"type": "array", "items": {"type": "string", "enum": ["image", "text"]}},
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "stream": {"type": "boolean"},
            "image_config": {"type": "object"},
        },
    }
)
