"""The request body: every rule of the seed's request schema, and the wire model agreeing with that schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegate.dialects.linkmodel.wire import (
    MAX_IMAGES,
    MAX_PROMPT_CHARS,
    MODEL_IDS,
    QUALITIES,
    SIZES,
    ImageGenerationRequest,
    parse_request,
)
from imagegate.errors import InvalidRequest

from .seed import Seed, find_seed, load_spec

MODEL = "gemini-2.5-flash-image"
URL = "https://example.com/cat.png"


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "a banana", **fields}


def rejected(payload: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(json.dumps(payload))
    return caught.value


#: Bodies the seed accepts: the wire model must accept each, and the seed's schema too.
VALID = [
    pytest.param(body(), id="required-only"),
    pytest.param(body(prompt="x"), id="prompt-1-char"),
    pytest.param(body(prompt="x" * MAX_PROMPT_CHARS), id="prompt-100000-chars"),
    pytest.param(body(prompt="🍌" * MAX_PROMPT_CHARS), id="prompt-100000-code-points"),
    pytest.param(body(images=[]), id="no-images"),
    pytest.param(body(images=[URL] * MAX_IMAGES), id="10-images"),
    pytest.param(body(quality="1K"), id="quality-1K"),
    pytest.param(body(images=[URL], quality="1K", size="16x9"), id="every-field"),
    pytest.param(body(seed=7, n=2), id="unknown-fields-ignored"),
    *(pytest.param(body(size=size), id=f"size-{size}") for size in SIZES),
]

#: Bodies the seed refuses, with the message the caller reads and the field it names.
INVALID = [
    pytest.param({"prompt": "a"}, "model is required", "model", id="model-missing"),
    pytest.param({"model": MODEL}, "prompt is required", "prompt", id="prompt-missing"),
    pytest.param({}, "model is required", "model", id="both-missing"),
    pytest.param(
        body(model="gemini-2.5-flash-image-preview"),
        "model must be one of: gemini-2.5-flash-image",
        "model",
        id="model-alias-not-in-enum",
    ),
    pytest.param(body(model="GEMINI-2.5-FLASH-IMAGE"), "model must be one of", "model", id="model-case"),
    pytest.param(body(prompt=""), "prompt length must be between 1 and 100000", "prompt", id="prompt-0-chars"),
    pytest.param(
        body(prompt="x" * (MAX_PROMPT_CHARS + 1)),
        "prompt length must be between 1 and 100000",
        "prompt",
        id="prompt-100001-chars",
    ),
    pytest.param(body(prompt=5), "prompt must be a string", "prompt", id="prompt-number"),
    pytest.param(body(images=[URL] * 11), "images must have at most 10 items", "images", id="11-images"),
    pytest.param(body(images=URL), "images must be an array of strings", "images", id="images-string"),
    pytest.param(body(images=[URL, 3]), "images[1] must be a string", "images[1]", id="images-item-number"),
    pytest.param(body(quality="2K"), "quality must be one of: 1K", "quality", id="quality-2K"),
    pytest.param(body(quality="1k"), "quality must be one of: 1K", "quality", id="quality-lowercase"),
    pytest.param(body(size="16:9"), "size must be one of: 16x9, 1x1, 21x9", "size", id="size-colon"),
    pytest.param(body(size="1024x1024"), "size must be one of", "size", id="size-pixels"),
    pytest.param(body(size="9X16"), "size must be one of", "size", id="size-uppercase-x"),
    pytest.param(body(size=None), "size must not be null", "size", id="size-null"),
    pytest.param(body(quality=None), "quality must not be null", "quality", id="quality-null"),
    pytest.param(body(images=None), "images must not be null", "images", id="images-null"),
    pytest.param(body(model=None), "model must be one of", "model", id="model-null"),
    pytest.param(["a list"], "request body must be a JSON object", None, id="not-an-object"),
]


@pytest.mark.parametrize("payload", VALID)
def test_the_wire_model_accepts_what_the_seed_accepts(payload: dict[str, Any], seed: Seed) -> None:
    seed.validate_request(payload)
    parsed = parse_request(json.dumps(payload))
    assert parsed.model == MODEL
    assert parsed.prompt == payload["prompt"]


@pytest.mark.parametrize(("payload", "message", "field"), INVALID)
def test_the_wire_model_refuses_what_the_seed_refuses(
    payload: Any, message: str, field: str | None, seed: Seed
) -> None:
    assert seed.request_errors(payload), "the seed's schema must refuse this body too"
    error = rejected(payload)
    assert str(error).startswith(message)
    assert error.field == field


def test_every_one_of_the_ten_sizes_parses() -> None:
    assert SIZES == ("16x9", "1x1", "21x9", "2x3", "3x2", "3x4", "4x3", "4x5", "5x4", "9x16")
    for size in SIZES:
        assert parse_request(json.dumps(body(size=size))).size == size


def test_left_out_optional_fields_are_none_or_empty() -> None:
    parsed = parse_request(json.dumps(body()))
    assert parsed.images == [] and parsed.quality is None and parsed.size is None


def test_unknown_fields_are_ignored_as_the_schema_allows() -> None:
    parsed = parse_request(json.dumps(body(n=4, style="vivid")))
    assert not hasattr(parsed, "n") and not hasattr(parsed, "style")


@pytest.mark.parametrize("raw", ["", "not json", '{"model": ', "\x00"])
def test_a_body_that_is_not_json_is_an_invalid_request(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="request body is not valid JSON"):
        parse_request(raw)


def test_the_model_matches_the_seeds_fields_enums_and_limits(seed: Seed) -> None:
    schema = seed.request_schema
    properties = schema["properties"]
    fields = ImageGenerationRequest.model_fields
    assert set(fields) == set(properties)
    assert {name for name, info in fields.items() if info.is_required()} == set(schema["required"])
    assert list(MODEL_IDS) == properties["model"]["enum"]
    assert list(QUALITIES) == properties["quality"]["enum"]
    assert list(SIZES) == properties["size"]["enum"]
    assert (properties["prompt"]["minLength"], properties["prompt"]["maxLength"]) == (1, MAX_PROMPT_CHARS)
    assert properties["images"]["maxItems"] == MAX_IMAGES
    assert "additionalProperties" not in schema  # OpenAPI's default: unknown fields are allowed


_json_scalars = st.none() | st.booleans() | st.integers() | st.sampled_from(["", "x", "1K", "16x9", MODEL, URL])
_field_values = {
    "model": st.sampled_from([MODEL, "gemini-2.5-flash-image-preview", ""]) | _json_scalars,
    "prompt": st.text(max_size=3) | _json_scalars,
    "images": st.lists(st.sampled_from([URL, "x"]) | _json_scalars, max_size=12) | _json_scalars,
    "quality": st.sampled_from(["1K", "1k", "2K"]) | _json_scalars,
    "size": st.sampled_from([*SIZES, "16:9", "0x0"]) | _json_scalars,
    "extra": _json_scalars,
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=_field_values))
def test_the_wire_model_and_the_seed_agree_on_any_body(payload: dict[str, Any]) -> None:
    # Hypothesis does not mix with function-scoped fixtures; the seed is read once (load_spec caches it).
    path = find_seed()
    if path is None or not path.is_file():
        pytest.skip("the linkmodel seed is not beside this checkout")
    schema_accepts = not Seed(load_spec(path)).request_errors(payload)
    try:
        parse_request(json.dumps(payload))
        wire_accepts = True
    except InvalidRequest:
        wire_accepts = False
    assert wire_accepts == schema_accepts, payload
