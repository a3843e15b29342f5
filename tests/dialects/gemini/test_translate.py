"""Gemini requests: parsing with Google's error messages, and translation into a ``JobSpec``."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import ASPECT_RATIOS, JPEG, PNG, ImageInput, decode_base64
from imagegate.core.jobs import JobSpec, Modality, PartInfo, Role
from imagegate.dialects.gemini.translate import (
    file_references,
    parse_count_tokens_request,
    parse_generate_request,
    to_job_spec,
)
from imagegate.errors import InvalidImage, InvalidRequest, UnknownField

from ..images import encode_image

PROTO_ASPECT_MESSAGE = (
    "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of "
    "'1:1', '1:4', '1:8', '2:3', '3:2', '3:4', '4:1', '4:3', '4:5', '5:4', '8:1', '9:16', '16:9', or '21:9'."
)


def urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def image_part(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    return {"inlineData": {"mimeType": mime, "data": urlsafe(data)}}


def body_with(*parts: dict[str, Any], **config: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": list(parts)}]}
    if config:
        body["generationConfig"] = config
    return body


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def spec_of(body: object, model: ModelSpec) -> JobSpec:
    return to_job_spec(parse_generate_request(body), model)


def raised(exc_type: type[InvalidRequest], body: object, model: ModelSpec | None = None) -> InvalidRequest:
    """The error a body gets: from parsing alone, or from parsing and translating for ``model``."""

    def attempt() -> None:
        request = parse_generate_request(body)
        if model is not None:
            to_job_spec(request, model)

    with pytest.raises(exc_type) as info:
        attempt()
    return info.value


# --- google-genai's own bodies (protocols.md 3.3 and 3.5, captured; only the base64 is ours) -------------


def test_google_genai_3_4_canonical_body(png: bytes, model: ModelSpec) -> None:
    body = json.loads(
        '{"contents":[{"parts":[{"text":"Make it blue"},'
        '{"inlineData":{"data":"' + urlsafe(png) + '","mime_type":"image/png"}}],"role":"user"}],'
        '"systemInstruction":{"parts":[{"text":"be nice"}],"role":"user"},'
        '"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],'
        '"generationConfig":{"temperature":0.5,"candidateCount":1,"seed":42,"responseModalities":["TEXT","IMAGE"],'
        '"thinkingConfig":{"include_thoughts":false},"imageConfig":{"aspectRatio":"16:9"}}}'
    )
    spec = spec_of(body, model)
    assert spec.turns[0].role is Role.USER
    assert spec.turns[0].parts == ("Make it blue", ImageInput(png, PNG))
    assert spec.system_instruction == "be nice"
    assert spec.aspect_ratio == "16:9"
    assert spec.temperature == 0.5
    assert spec.seed == 42
    assert spec.modalities == {Modality.TEXT, Modality.IMAGE}
    assert (spec.n, spec.dialect, spec.model) == (1, "gemini", "gemini-2.5-flash-image")


def test_google_genai_1_40_camel_case_body(jpeg: bytes, model: ModelSpec) -> None:
    body = json.loads(
        '{"contents":[{"parts":[{"text":"Make it blue"},'
        '{"inlineData":{"data":"' + urlsafe(jpeg) + '","mimeType":"image/jpeg"}}],"role":"user"}],'
        '"systemInstruction":{"parts":[{"text":"be nice"}],"role":"user"},'
        '"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}],'
        '"generationConfig":{"temperature":0.5,"candidateCount":1,"seed":42,"responseModalities":["TEXT","IMAGE"],'
        '"thinkingConfig":{"includeThoughts":false},"imageConfig":{"aspectRatio":"16:9"}}}'
    )
    assert urlsafe(jpeg).startswith("_9j_4AAQ")  # the URL-safe alphabet really is exercised
    spec = spec_of(body, model)
    assert spec.input_images == (ImageInput(jpeg, JPEG),)


def test_chat_history_with_model_image_thought_and_signature(png: bytes, jpeg: bytes, model: ModelSpec) -> None:
    body = {
        "contents": [
            {"parts": [{"text": "draw a cat"}], "role": "user"},
            {
                "parts": [
                    {"text": "Let me plan the drawing", "thought": True},
                    {"text": "Here you go", "thoughtSignature": "c2lnbmF0dXJl"},
                    {"inlineData": {"data": urlsafe(png), "mime_type": "image/png"}, "thoughtSignature": "c2ln"},
                ],
                "role": "model",
            },
            {"parts": [{"text": "make it blue"}], "role": "user"},
        ],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }
    spec = spec_of(body, model)
    assert [t.role for t in spec.turns] == [Role.USER, Role.MODEL, Role.USER]
    # thoughts and signatures are kept, to go back upstream exactly as the model sent them
    assert spec.turns[1].parts == ("Let me plan the drawing", "Here you go", ImageInput(png, PNG))
    assert spec.turns[1].info == (
        PartInfo(thought=True),
        PartInfo(signature=b"signature"),
        PartInfo(signature=b"sig"),
    )
    assert spec.turns[1].answer_parts == ("Here you go", ImageInput(png, PNG))
    assert spec.turns[1].text == "Here you go"
    assert spec.turns[0].info == ()  # nothing marked: no info at all
    assert spec.prompt == "make it blue"
    assert spec.input_images == ()
    assert spec.context_images == (ImageInput(png, PNG),)
    assert spec.modalities == {Modality.IMAGE}


def _sdk_bodies() -> list[dict[str, Any]]:
    """Bodies the installed google-genai really sends, captured in process with httpx.MockTransport."""
    captured: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(json.loads(request.content))
        parts = [{"text": "ok"}]
        return httpx.Response(200, json={"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url="http://test", httpx_client=http))
    picture = Image.new("RGB", (8, 8), "green")
    canonical: list[types.PartUnionDict] = ["Make it blue", picture]
    client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents=canonical,
        config=types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=types.ImageConfig(aspect_ratio="16:9", image_size="1K"),
            temperature=0.5,
            seed=42,
            candidate_count=1,
            system_instruction="be nice",
            safety_settings=[types.SafetySetting(category="HARM_CATEGORY_HARASSMENT", threshold="BLOCK_NONE")],
            thinking_config=types.ThinkingConfig(include_thoughts=False),
        ),
    )
    chat = client.chats.create(model="gemini-2.5-flash-image")
    chat.send_message("draw a cat")
    chat.send_message(["make it blue", picture])
    return captured


def test_bodies_from_the_installed_sdk_translate(model: ModelSpec) -> None:
    canonical, _, chat = _sdk_bodies()
    spec = spec_of(canonical, model)
    assert spec.prompt == "Make it blue"
    assert spec.input_images[0].mime_type == PNG
    assert spec.aspect_ratio == "16:9"
    chat_spec = spec_of(chat, model)
    assert [t.role for t in chat_spec.turns] == [Role.USER, Role.MODEL, Role.USER]
    assert len(chat_spec.input_images) == 1


# --- parse errors, with Google's messages and the field path ---------------------------------------------


def test_unknown_field_message_and_snake_case_path() -> None:
    error = raised(UnknownField, body_with({"text": "a"}, negativePrompt="blurry"))
    assert error.message == (
        "Invalid JSON payload received. Unknown name \"negativePrompt\" at 'generation_config': Cannot find field."
    )
    assert error.field == "generation_config.negative_prompt"


def test_unknown_field_at_top_level_and_deep() -> None:
    top = raised(UnknownField, {"contents": [{"parts": [{"text": "a"}]}], "prompt": "x"})
    assert top.message == 'Invalid JSON payload received. Unknown name "prompt": Cannot find field.'
    assert top.field == "prompt"
    deep = raised(UnknownField, body_with({"text": "a"}, imageConfig={"personGeneration": "ALLOW_ALL"}))
    assert deep.message == (
        "Invalid JSON payload received. Unknown name \"personGeneration\" at 'generation_config.image_config': "
        "Cannot find field."
    )
    assert deep.field == "generation_config.image_config.person_generation"
    blob = raised(UnknownField, body_with({"inlineData": {"mime_type": "image/png", "url": "x"}}))
    assert blob.field == "contents[0].parts[0].inline_data.url"


def test_bad_modality_enum() -> None:
    error = raised(InvalidRequest, body_with({"text": "a"}, responseModalities=["BANANA"]))
    assert error.message == (
        "Invalid value at 'generation_config.response_modalities[0]' "
        '(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), "BANANA"'
    )
    assert error.field == "generation_config.response_modalities[0]"


@pytest.mark.parametrize("value", [["Image"], ["image"], ["IMAGE"]])
def test_modalities_case_insensitive(value: list[str], model: ModelSpec) -> None:
    assert spec_of(body_with({"text": "a"}, responseModalities=value), model).modalities == {Modality.IMAGE}


def test_audio_modality_is_valid_but_unsupported(model: ModelSpec) -> None:
    error = raised(InvalidRequest, body_with({"text": "a"}, responseModalities=["TEXT", "AUDIO"]), model)
    assert error.message == "Model does not support the requested response modalities: audio"
    assert error.field == "generation_config.response_modalities"


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        (
            body_with({"text": "a"}, temperature="hot"),
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
            "generation_config.temperature",
        ),
        (
            body_with({"text": "a"}, seed=1.5),
            "Invalid value at 'generation_config.seed' (TYPE_INT32), 1.5",
            "generation_config.seed",
        ),
        (
            body_with({"text": 5}),
            "Invalid value at 'contents[0].parts[0].text' (TYPE_STRING), 5",
            "contents[0].parts[0].text",
        ),
        (
            {"contents": "a cat"},
            "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"a cat\"",
            "contents",
        ),
        (
            {"contents": [{"parts": [{"text": "a"}]}], "generationConfig": []},
            'Invalid JSON payload received. Unknown name "generationConfig": '
            "Proto field is not repeating, cannot start list.",
            "generation_config",
        ),
        (
            body_with({"text": {"value": "a"}}),
            "Invalid JSON payload received. Unknown name \"text\" at 'contents[0].parts[0]': "
            "Starting an object on a scalar field.",
            "contents[0].parts[0].text",
        ),
    ],
)
def test_wrong_json_types_name_the_field(body: dict[str, Any], message: str, field: str) -> None:
    error = raised(InvalidRequest, body)
    assert (error.message, error.field) == (message, field)


@pytest.mark.parametrize("body", [[], "a cat", None, 3])
def test_body_must_be_an_object(body: object) -> None:
    error = raised(InvalidRequest, body)
    assert error.message == "Invalid JSON payload received. Root element must be a message."


@pytest.mark.parametrize("body", [{}, {"contents": []}, {"contents": None}, {"generationConfig": {}}])
def test_missing_contents(body: dict[str, Any]) -> None:
    error = raised(InvalidRequest, body)
    assert error.message == "* GenerateContentRequest.contents: contents is not specified"
    assert error.field == "contents"


@pytest.mark.parametrize(
    ("contents", "field"),
    [
        ([{"parts": []}], "contents[0].parts"),
        ([{"role": "user"}], "contents[0].parts"),
        ([{"parts": [{"text": "a"}]}, {"role": "model", "parts": []}], "contents[1].parts"),
        ([{"parts": [{"text": "thinking", "thought": True}]}], "contents"),
        ([{"parts": [{"functionCall": {"name": "f"}}, {}]}], "contents"),
    ],
)
def test_empty_input(contents: list[dict[str, Any]], field: str) -> None:
    error = raised(InvalidRequest, {"contents": contents})
    assert error.message == "Request has empty input."
    assert error.field == field


def test_empty_text_is_input(model: ModelSpec) -> None:
    # Google answers "" with a NO_IMAGE candidate, not a 400: the provider decides.
    assert spec_of(body_with({"text": ""}), model).prompt == ""


def test_bad_role() -> None:
    error = raised(InvalidRequest, {"contents": [{"role": "assistant", "parts": [{"text": "a"}]}]})
    assert error.message == "Please use a valid role: user, model."
    assert error.field == "contents[0].role"


def test_a_part_holds_one_kind_of_data(png: bytes) -> None:
    error = raised(InvalidRequest, body_with({"text": "a", **image_part(png)}))
    assert error.field == "contents[0].parts[0].inline_data"
    assert "Oneof field 'data' is already set" in error.message


def test_count_tokens_bodies(png: bytes) -> None:
    plain = parse_count_tokens_request({"contents": [{"parts": [{"text": "a"}, image_part(png)]}]})
    assert plain.contents is not None
    assert len(plain.contents[0].parts or ()) == 2
    wrapped = parse_count_tokens_request(
        {"generateContentRequest": {"model": "models/gemini-2.5-flash-image", "contents": [{"parts": [{"text": "a"}]}]}}
    )
    assert wrapped.model == "models/gemini-2.5-flash-image"
    with pytest.raises(InvalidRequest) as missing:
        parse_count_tokens_request({})
    assert missing.value.message == "* GenerateContentRequest.contents: contents is not specified"
    with pytest.raises(UnknownField):
        parse_count_tokens_request({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {}})
    with pytest.raises(InvalidRequest):
        parse_count_tokens_request({"contents": [{"parts": [{"text": "a"}]}], "generateContentRequest": {}})


# --- translation -----------------------------------------------------------------------------------------


def test_part_order_is_kept(png: bytes, model: ModelSpec) -> None:
    image = ImageInput(png, PNG)
    assert spec_of(body_with(image_part(png), {"text": "edit"}), model).turns[0].parts == (image, "edit")
    assert spec_of(body_with({"text": "edit"}, image_part(png)), model).turns[0].parts == ("edit", image)


def test_missing_role_is_user_and_defaults(model: ModelSpec) -> None:
    spec = spec_of({"contents": [{"parts": [{"text": "a cat"}]}]}, model)
    assert spec.turns[0].role is Role.USER
    assert spec.modalities == {Modality.TEXT, Modality.IMAGE}
    assert (spec.aspect_ratio, spec.seed, spec.temperature, spec.system_instruction) == (None, None, None, None)


def test_system_instruction_text(model: ModelSpec) -> None:
    body = body_with({"text": "a cat"})
    body["system_instruction"] = {"parts": [{"text": "be nice"}, {"text": "draw well"}]}
    assert spec_of(body, model).system_instruction == "be nice\ndraw well"


def test_system_instruction_images_are_refused(png: bytes, model: ModelSpec) -> None:
    body = body_with({"text": "a cat"})
    body["systemInstruction"] = {"parts": [image_part(png)]}
    assert raised(InvalidRequest, body, model).field == "system_instruction.parts[0]"


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.b64encode(b).decode().rstrip("="),
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.encodebytes(b).decode(),  # 76-column lines with \n
        lambda b: "\r\n ".join(_chunks(base64.b64encode(b).decode(), 10)) + "\n",
    ],
    ids=["standard", "urlsafe", "standard-unpadded", "urlsafe-unpadded", "newlines", "crlf-and-spaces"],
)
def test_base64_variants(encode: Any, model: ModelSpec) -> None:
    data = encode_image("PNG", size=(40, 30))
    body = body_with({"text": "a"}, {"inlineData": {"mimeType": "image/png", "data": encode(data)}})
    assert spec_of(body, model).input_images == (ImageInput(data, PNG),)


@given(st.binary(max_size=64))
def test_decode_base64_round_trips_every_spelling(data: bytes) -> None:
    for text in (
        base64.b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode(),
        base64.b64encode(data).decode().rstrip("="),
        base64.encodebytes(data).decode(),
    ):
        assert decode_base64(text) == data


@pytest.mark.parametrize("data", ["not base64!", "abcde", "ab=cd", "données"])
def test_non_base64_is_refused_naming_the_part(data: str, model: ModelSpec) -> None:
    error = raised(
        InvalidRequest, body_with({"text": "a"}, {"inlineData": {"mimeType": "image/png", "data": data}}), model
    )
    assert error.field == "contents[0].parts[1].inline_data.data"
    assert error.message.startswith("Invalid value at 'contents[0].parts[1].inline_data.data' (TYPE_BYTES)")


def test_data_uri_is_refused_with_a_hint(png: bytes, model: ModelSpec) -> None:
    data = "data:image/png;base64," + base64.b64encode(png).decode()
    error = raised(InvalidRequest, body_with({"inlineData": {"mimeType": "image/png", "data": data}}), model)
    assert "data:" in error.message
    assert error.field == "contents[0].parts[0].inline_data.data"


def test_sniffed_type_wins_over_declared(png: bytes, model: ModelSpec) -> None:
    spec = spec_of(body_with({"text": "a"}, image_part(png, mime="image/jpeg")), model)
    assert spec.input_images[0].mime_type == PNG


def test_non_image_bytes_are_refused(model: ModelSpec) -> None:
    body = body_with({"text": "a"}, image_part(b"%PDF-1.7 not an image", mime="application/pdf"))
    error = raised(InvalidImage, body, model)
    assert error.field == "contents[0].parts[1].inline_data.data"


@pytest.mark.parametrize(
    "uri",
    ["https://generativelanguage.googleapis.com/v1beta/files/abc", "http://127.0.0.1:8080/v1/files/abc", "files/abc"],
)
def test_file_data_names_an_uploaded_file(uri: str, model: ModelSpec) -> None:
    request = parse_generate_request(
        body_with({"text": "a"}, {"fileData": {"file_uri": uri, "mime_type": "image/png"}})
    )
    field = "contents[0].parts[1].file_data.file_uri"
    assert file_references(request) == [("abc", field)]
    image = ImageInput.from_bytes(encode_image("PNG"))
    spec = to_job_spec(request, model, {field: image})
    assert spec.input_images == (image,)


@pytest.mark.parametrize("uri", ["https://example.com/cat.png", "gs://bucket/files/", "", "files/a/b"])
def test_file_data_that_is_no_upload_is_refused(uri: str) -> None:
    request = parse_generate_request(body_with({"text": "a"}, {"fileData": {"fileUri": uri}}))
    with pytest.raises(InvalidRequest) as refused:
        file_references(request)
    assert refused.value.field == "contents[0].parts[1].file_data.file_uri"


@pytest.mark.parametrize("ratio", list(ASPECT_RATIOS))
def test_all_ten_ratios_are_accepted(ratio: str, model: ModelSpec) -> None:
    assert spec_of(body_with({"text": "a"}, imageConfig={"aspectRatio": ratio}), model).aspect_ratio == ratio


@pytest.mark.parametrize("ratio", ["1:4", "4:1", "1:8", "8:1"])
def test_api_ratios_this_model_does_not_support(ratio: str, model: ModelSpec) -> None:
    error = raised(InvalidRequest, body_with({"text": "a"}, imageConfig={"aspectRatio": ratio}), model)
    assert error.message == f"Aspect ratio {ratio} is not supported for this model"
    assert error.field == "generation_config.image_config.aspect_ratio"


@pytest.mark.parametrize("ratio", ["7:3", "16x9", "1:1 "])
def test_ratios_outside_the_api_enum(ratio: str, model: ModelSpec) -> None:
    error = raised(InvalidRequest, body_with({"text": "a"}, image_config={"aspect_ratio": ratio}), model)
    assert error.message == PROTO_ASPECT_MESSAGE
    assert error.field == "generation_config.image_config.aspect_ratio"


@pytest.mark.parametrize("size", ["8K", "2k", "huge"])
def test_an_image_size_google_does_not_know_gets_googles_message(size: str, model: ModelSpec) -> None:
    error = raised(InvalidRequest, body_with({"text": "a"}, imageConfig={"imageSize": size}), model)
    assert error.message == f"Unsupported image_size '{size}'. Supported values are: 1K, 2K, 4K, 512, 512P, 512PX."
    assert error.field == "generation_config.image_config.image_size"


def test_an_image_size_the_model_does_not_make_is_refused_naming_what_it_makes(model: ModelSpec) -> None:
    assert spec_of(body_with({"text": "a"}, imageConfig={"imageSize": "1K"}), model).image_size == "1K"
    error = raised(InvalidRequest, body_with({"text": "a"}, imageConfig={"imageSize": "4K"}), model)
    assert "does not make 4K images; it supports 1K" in error.message
    assert error.field == "generation_config.image_config.image_size"


def test_candidate_count(model: ModelSpec) -> None:
    assert spec_of(body_with({"text": "a"}, candidateCount=1), model).n == 1
    error = raised(InvalidRequest, body_with({"text": "a"}, candidateCount=2), model)
    assert error.message == "Multiple candidates is not enabled for this model"
    assert error.field == "generation_config.candidate_count"


def test_input_image_limit(png: bytes, model: ModelSpec) -> None:
    three = [image_part(png)] * 3
    assert len(spec_of(body_with({"text": "merge"}, *three), model).input_images) == 3
    error = raised(InvalidRequest, body_with({"text": "merge"}, *three, image_part(png)), model)
    assert error.message == "gemini-2.5-flash-image accepts at most 3 input images per request; got 4"
    assert error.field == "contents"


def test_image_limit_counts_only_the_request_turn(png: bytes, model: ModelSpec) -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "merge"}, *[image_part(png)] * 3]},
            {"role": "model", "parts": [image_part(png)]},
            {"role": "user", "parts": [{"text": "again"}, image_part(png)]},
        ]
    }
    spec = spec_of(body, model)
    assert (len(spec.input_images), len(spec.context_images)) == (1, 5)


def test_seed_and_temperature_copied(model: ModelSpec) -> None:
    spec = spec_of(body_with({"text": "a"}, seed="7", temperature=0.25), model)
    assert (spec.seed, spec.temperature) == (7, 0.25)
