"""The wire models accept both spellings of every field at every level, and nothing else."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel, ValidationError

from imagegate.dialects.gemini import wire
from imagegate.dialects.gemini.wire import CountTokensRequest, GenerateContentRequest, Part

WIRE_MODELS: list[type[wire.WireModel]] = [
    wire.Blob,
    wire.FileData,
    wire.Part,
    wire.Content,
    wire.ImageConfig,
    wire.ThinkingConfig,
    wire.GenerationConfig,
    wire.SafetySetting,
    wire.GenerateContentRequest,
    wire.CountTokensRequest,
]
FIELDS = [(cls, name) for cls in WIRE_MODELS for name in cls.model_fields]


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FIELDS])
def test_every_field_accepts_camel_and_snake_case(cls: type[BaseModel], name: str) -> None:
    alias = cls.model_fields[name].alias
    assert alias is not None
    assert alias[0].islower()
    assert "_" not in alias
    cls.model_validate({alias: None})
    cls.model_validate({name: None})


@pytest.mark.parametrize("cls", WIRE_MODELS, ids=lambda c: c.__name__)
def test_every_model_rejects_unknown_names(cls: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as info:
        cls.model_validate({"negativePrompt": "blurry"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def test_fully_camel_case_body(png: bytes) -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "Make it blue"}, {"inlineData": {"mimeType": "image/png", "data": _b64(png)}}],
            }
        ],
        "systemInstruction": {"parts": [{"text": "be nice"}]},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "1K"},
            "candidateCount": 1,
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "seed": 42,
            "maxOutputTokens": 8192,
            "stopSequences": [],
            "responseMimeType": "text/plain",
            "presencePenalty": 0,
            "frequencyPenalty": 0,
            "thinkingConfig": {"includeThoughts": False, "thinkingBudget": 0},
            "mediaResolution": "MEDIA_RESOLUTION_MEDIUM",
            "responseLogprobs": False,
            "logprobs": 0,
        },
        "tools": [],
        "toolConfig": {},
        "cachedContent": "cachedContents/x",
        "serviceTier": "standard",
        "store": False,
        "labels": {"team": "a"},
    }
    request = GenerateContentRequest.model_validate(body)
    assert request.contents is not None
    blob = request.contents[0].parts[1].inline_data  # type: ignore[index]
    assert blob is not None
    assert blob.mime_type == "image/png"
    config = request.generation_config
    assert config is not None
    assert config.image_config is not None
    assert config.image_config.aspect_ratio == "16:9"
    assert config.thinking_config is not None
    assert config.thinking_config.include_thoughts is False
    assert config.top_k == 64
    assert config.media_resolution == "MEDIA_RESOLUTION_MEDIUM"


def test_fully_snake_case_body(png: bytes) -> None:
    body = {
        "contents": [{"parts": [{"inline_data": {"mime_type": "image/png", "data": _b64(png)}}]}],
        "system_instruction": {"parts": [{"text": "be nice"}]},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "generation_config": {
            "response_modalities": ["IMAGE"],
            "image_config": {"aspect_ratio": "1:1", "image_size": "2K"},
            "candidate_count": 1,
            "top_p": 0.9,
            "top_k": 10,
            "max_output_tokens": 100,
            "stop_sequences": ["x"],
            "response_mime_type": "text/plain",
            "thinking_config": {"include_thoughts": True, "thinking_budget": 10},
            "media_resolution": "media_resolution_low",
        },
        "tool_config": {},
        "cached_content": "cachedContents/x",
        "service_tier": "standard",
    }
    request = GenerateContentRequest.model_validate(body)
    assert request.system_instruction is not None
    assert request.generation_config is not None
    assert request.generation_config.image_config is not None
    assert request.generation_config.image_config.image_size == "2K"
    assert request.generation_config.media_resolution == "MEDIA_RESOLUTION_LOW"
    assert request.generation_config.response_modalities == ["IMAGE"]


@pytest.mark.parametrize("value", ["Image", "image", "IMAGE", " text "])
def test_response_modalities_are_case_insensitive(value: str) -> None:
    config = wire.GenerationConfig.model_validate({"responseModalities": [value]})
    assert config.response_modalities == [value.strip().upper()]


@pytest.mark.parametrize("value", ["BANANA", 2, None])
def test_bad_modality_is_a_proto_enum_error(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        wire.GenerationConfig.model_validate({"responseModalities": [value]})
    error = info.value.errors()[0]
    assert error["type"] == wire.PROTO_ENUM_ERROR
    assert error["loc"] == ("responseModalities", 0)
    assert error.get("ctx") == {"proto_type": "GenerationConfig.Modality"}


def test_part_tolerates_fields_it_does_not_use() -> None:
    part = Part.model_validate(
        {
            "text": "thinking…",
            "thought": True,
            "thoughtSignature": "c2ln",
            "functionCall": {"name": "f", "args": {}},
            "function_response": {"name": "f", "response": {}},
            "executableCode": {"code": "1"},
            "codeExecutionResult": {"outcome": "OUTCOME_OK"},
            "videoMetadata": {"fps": 1},
            "mediaResolution": {"level": "MEDIA_RESOLUTION_HIGH"},
            "partMetadata": {"a": 1},
            "toolCall": {},
            "tool_response": {},
        }
    )
    assert part.thought is True
    assert part.thought_signature == "c2ln"


def test_enum_values_are_exactly_the_sdks() -> None:
    """Google refuses a value outside its enums; so does this server, and the lists track the google-genai SDK."""
    from google.genai import types

    assert {m.value for m in types.HarmCategory} == wire.HARM_CATEGORIES
    assert {m.value for m in types.MediaResolution} == wire.MEDIA_RESOLUTIONS
    assert {m.value for m in types.HarmBlockThreshold} == wire.HARM_BLOCK_THRESHOLDS
    setting = wire.SafetySetting.model_validate({"category": "harm_category_image_hate", "threshold": "off"})
    assert (setting.category, setting.threshold) == ("HARM_CATEGORY_IMAGE_HATE", "OFF")
    with pytest.raises(ValidationError):
        wire.SafetySetting.model_validate({"category": "HARM_CATEGORY_SOMETHING_NEW", "threshold": "OFF"})
    with pytest.raises(ValidationError):
        wire.GenerationConfig.model_validate({"mediaResolution": "MEDIA_RESOLUTION_ULTRA"})


def test_vertex_only_fields_are_unknown() -> None:
    with pytest.raises(ValidationError):
        wire.ImageConfig.model_validate({"personGeneration": "ALLOW_ALL"})
    with pytest.raises(ValidationError):
        wire.SafetySetting.model_validate({"category": "HARM_CATEGORY_HARASSMENT", "method": "SEVERITY"})


def test_count_tokens_request_both_forms() -> None:
    plain = CountTokensRequest.model_validate({"contents": [{"parts": [{"text": "hi"}]}]})
    assert plain.contents is not None
    wrapped = CountTokensRequest.model_validate(
        {
            "generateContentRequest": {
                "model": "models/gemini-2.5-flash-image",
                "contents": [{"parts": [{"text": "hi"}]}],
            }
        }
    )
    assert wrapped.generate_content_request is not None
    assert wrapped.generate_content_request.model == "models/gemini-2.5-flash-image"


def test_parsed_models_are_immutable() -> None:
    part = Part.model_validate({"text": "a"})
    with pytest.raises(ValidationError):
        part.text = "b"  # type: ignore[misc]
