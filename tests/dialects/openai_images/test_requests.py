"""OpenAI Images requests: field rules with OpenAI's messages, image gathering, and translation into a ``JobSpec``."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import pytest

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import JPEG, PNG, WEBP, ImageInput
from imagegate.core.jobs import Role
from imagegate.dialects.openai_images.translate import (
    ImagesRequest,
    OutputOptions,
    check_input_limits,
    output_options,
    parse_edit_form,
    parse_edit_json,
    parse_generation_request,
    to_job_spec,
)
from imagegate.errors import InvalidImage, InvalidRequest, UnknownField

from .sdk import sdk_client

#: protocols.md 4.2: what openai-python 3.54 sent for a generate call with ``extra_body={"aspect_ratio": "16:9"}``.
CAPTURED_SDK_BODY = (
    '{"model":"gemini-2.5-flash-image","prompt":"a cat","background":"auto","moderation":"auto","n":1,'
    '"output_format":"png","quality":"high","response_format":"b64_json","size":"1024x1024","user":"u1",'
    '"aspect_ratio":"16:9"}'
)


def generation_error(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_generation_request(body)
    return info.value


# --- generations: the captured bodies -------------------------------------------------------------------------


def test_captured_sdk_body_verbatim(model: ModelSpec) -> None:
    request = parse_generation_request(json.loads(CAPTURED_SDK_BODY))
    assert (request.prompt, request.model, request.n, request.count) == ("a cat", "gemini-2.5-flash-image", 1, 1)
    assert (request.background, request.moderation, request.quality, request.user) == ("auto", "auto", "high", "u1")
    assert request.size == "1024x1024" and request.aspect_ratio == "16:9"
    assert output_options(request) == OutputOptions(response_format="b64_json", mime_type=PNG, quality=None)  # as sent
    spec = to_job_spec(request, model)
    assert spec.aspect_ratio == "16:9"  # AIML's aspect_ratio wins over size
    assert (spec.n, spec.dialect, spec.model, spec.prompt) == (1, "openai", model.id, "a cat")


def test_aiml_body(model: ModelSpec) -> None:
    body = {
        "model": "google/gemini-2.5-flash-image",
        "prompt": "Racoon eating ice-cream",
        "num_images": 3,
        "aspect_ratio": "9:16",
        "provider": "auto",
    }
    request = parse_generation_request(body)
    assert (request.model, request.count, request.provider) == ("google/gemini-2.5-flash-image", 3, "auto")
    spec = to_job_spec(request, model)
    assert (spec.n, spec.aspect_ratio) == (3, "9:16")


def test_defaults(model: ModelSpec) -> None:
    request = parse_generation_request({"prompt": "a cat"})
    assert request.model == "gemini-2.5-flash-image" and request.count == 1 and request.stream is False
    assert output_options(request) == OutputOptions("url", PNG, None)  # OpenAI's own default
    assert output_options(request, default_response_format="b64_json") == OutputOptions("b64_json", PNG, None)
    assert output_options(request, revised_prompt=True).revised_prompt == "a cat"
    spec = to_job_spec(request, model)
    assert spec.aspect_ratio is None and spec.output_mime_type == PNG and spec.output_quality is None
    assert len(spec.turns) == 1 and spec.turns[0].role is Role.USER and spec.turns[0].parts == ("a cat",)


def test_what_the_real_sdk_sends_parses(model: ModelSpec) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"created": 1, "data": []})

    client = sdk_client(handler)
    client.images.generate(
        model="gemini-2.5-flash-image",
        prompt="a kite",
        n=2,
        size="1536x1024",
        quality="low",
        output_format="webp",
        output_compression=70,
        response_format="url",
        safety_identifier="s1",
        extra_body={"aspect_ratio": None},
    )
    request = parse_generation_request(json.loads(sent[0].content))
    spec = to_job_spec(request, model)
    assert (spec.n, spec.aspect_ratio, spec.output_mime_type, spec.output_quality) == (2, "3:2", WEBP, 70)
    assert output_options(request).response_format == "url"


@pytest.mark.parametrize("name", ["complexity", "markup", "svg[model]", "frame_count", "style_preset"])
def test_unknown_fields_are_refused_by_name(name: str) -> None:
    error = generation_error({"prompt": "x", name: "?"})
    assert isinstance(error, UnknownField)
    assert (error.field, error.message) == (name, f"Unknown parameter: '{name}'.")


@pytest.mark.parametrize("body", [[], "a cat", None, 3])
def test_body_must_be_an_object(body: object) -> None:
    with pytest.raises(InvalidRequest, match="expected an object"):
        parse_generation_request(body)


# --- generations: field rules ---------------------------------------------------------------------------------


def test_prompt_rules() -> None:
    missing = generation_error({"model": "m"})
    assert (missing.field, missing.message) == ("prompt", "Missing required parameter: 'prompt'.")
    assert generation_error({"prompt": None}).message == "Missing required parameter: 'prompt'."
    assert generation_error({"prompt": "  "}).message.startswith("Invalid 'prompt': empty string.")
    too_long = generation_error({"prompt": "a" * 32001})
    assert too_long.field == "prompt"
    assert too_long.message == (
        "Invalid 'prompt': string too long. Expected a string with maximum length 32000, "
        "but got a string with length 32001 instead."
    )
    assert parse_generation_request({"prompt": "a" * 32000}).prompt == "a" * 32000
    wrong = generation_error({"prompt": ["a"]})
    assert wrong.message == "Invalid type for 'prompt': expected a string, but got an array instead."


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (10, 10), ("3", 3), (" 4 ", 4), (2.0, 2), (None, 1)])
def test_n_accepts_numbers_and_numeric_strings(value: object, expected: int) -> None:
    assert parse_generation_request({"prompt": "x", "n": value}).count == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        (11, "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead."),
        ("11", "Invalid 'n': integer above maximum value. Expected a value <= 10, but got 11 instead."),
        ("two", "Invalid type for 'n': expected an integer, but got a string instead."),
        (2.5, "Invalid type for 'n': expected an integer, but got a decimal instead."),
        (True, "Invalid type for 'n': expected an integer, but got a boolean instead."),
    ],
)
def test_n_rejects(value: object, message: str) -> None:
    error = generation_error({"prompt": "x", "n": value})
    assert (error.field, error.message) == ("n", message)


def test_num_images() -> None:
    assert parse_generation_request({"prompt": "x", "num_images": "4"}).count == 4
    assert parse_generation_request({"prompt": "x", "num_images": 2, "n": 2}).count == 2
    assert generation_error({"prompt": "x", "num_images": 5}).field == "num_images"
    conflict = generation_error({"prompt": "x", "num_images": 2, "n": 3})
    assert conflict.field == "num_images" and "disagree" in conflict.message


def test_response_format() -> None:
    assert output_options(parse_generation_request({"prompt": "x", "response_format": "url"})).response_format == "url"
    error = generation_error({"prompt": "x", "response_format": "xyz"})
    assert (error.field, error.message) == (
        "response_format",
        "Invalid value: 'xyz'. Supported values are: 'url' and 'b64_json'.",
    )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"output_format": "png", "output_compression": 50}, OutputOptions("b64_json", PNG, None)),
        ({"output_format": "jpeg", "output_compression": "80"}, OutputOptions("b64_json", JPEG, 80)),
        ({"output_format": "jpg"}, OutputOptions("b64_json", JPEG, None)),
        ({"output_format": "JPG", "output_compression": 0}, OutputOptions("b64_json", JPEG, 0)),
        ({"output_format": "webp", "output_compression": 100}, OutputOptions("b64_json", WEBP, 100)),
    ],
)
def test_output_format_and_compression(fields: dict[str, Any], expected: OutputOptions, model: ModelSpec) -> None:
    request = parse_generation_request({"prompt": "x", **fields})
    assert output_options(request, default_response_format="b64_json") == expected
    spec = to_job_spec(request, model)
    assert (spec.output_mime_type, spec.output_quality) == (expected.mime_type, expected.quality)


def test_output_format_and_compression_rejects() -> None:
    error = generation_error({"prompt": "x", "output_format": "gif"})
    assert (error.field, error.message) == (
        "output_format",
        "Invalid value: 'gif'. Supported values are: 'png', 'jpeg', and 'webp'.",
    )
    assert generation_error({"prompt": "x", "output_compression": 101}).field == "output_compression"
    assert generation_error({"prompt": "x", "output_compression": "-1"}).field == "output_compression"


@pytest.mark.parametrize("quality", ["auto", "low", "medium", "high", "standard", "hd", "xhigh", "max", "HIGH"])
def test_every_quality_is_accepted(quality: str) -> None:
    assert parse_generation_request({"prompt": "x", "quality": quality}).quality == quality.lower()


@pytest.mark.parametrize(
    ("field", "value"),
    [("quality", "ultra"), ("moderation", "none"), ("style", "retro"), ("input_fidelity", "max"), ("quality", 3)],
)
def test_enum_values_are_checked(field: str, value: object) -> None:
    error = generation_error({"prompt": "x", field: value})
    assert error.field == field
    assert "Supported values are" in error.message or "expected one of" in error.message


def test_background() -> None:
    assert parse_generation_request({"prompt": "x", "background": "auto"}).background == "auto"
    assert parse_generation_request({"prompt": "x", "background": "opaque"}).background == "opaque"
    error = generation_error({"prompt": "x", "background": "transparent"})
    assert error.field == "background" and "cannot make transparent images" in error.message


def test_stream() -> None:
    assert parse_generation_request({"prompt": "x", "stream": False}).stream is False
    assert parse_generation_request({"prompt": "x", "stream": "false", "partial_images": "2"}).partial_images == 2
    for value in (True, "true", "1"):
        assert parse_generation_request({"prompt": "x", "stream": value}).stream is True
    assert generation_error({"prompt": "x", "stream": "maybe"}).field == "stream"
    assert generation_error({"prompt": "x", "partial_images": 4}).field == "partial_images"


def test_strings_are_type_checked() -> None:
    assert parse_generation_request({"prompt": "x", "user": "u", "safety_identifier": "s"}).safety_identifier == "s"
    error = generation_error({"prompt": "x", "user": 42})
    assert (error.field, error.message) == (
        "user",
        "Invalid type for 'user': expected a string, but got an integer instead.",
    )
    assert generation_error({"prompt": "x", "model": {"id": "m"}}).field == "model"
    assert parse_generation_request({"prompt": "x", "model": " "}).model == "gemini-2.5-flash-image"


# --- size and aspect ratio ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("256x256", "1:1"),
        ("512x512", "1:1"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1792x1024", "16:9"),
        ("1024x1792", "9:16"),
        ("1344x768", "16:9"),
        ("2560x1080", "21:9"),
        ("16x9", "16:9"),
        ("16:9", "16:9"),
        ("4:5", "4:5"),
        ("1024X768", "4:3"),
        ("auto", None),
        ("AUTO", None),
        ("", None),
    ],
)
def test_size_maps_to_the_nearest_ratio(size: str, ratio: str | None, model: ModelSpec) -> None:
    assert to_job_spec(parse_generation_request({"prompt": "x", "size": size}), model).aspect_ratio == ratio


@pytest.mark.parametrize("size", ["big", "0x100", "100x0", "-5x3", "1024", "1024x", "x768", "10x10x10", "1e3x5", 1024])
def test_nonsense_sizes_are_refused(size: object) -> None:
    error = generation_error({"prompt": "x", "size": size})
    assert error.field == "size" and error.message.startswith("Invalid value: '")


def test_size_maps_only_onto_the_models_ratios() -> None:
    square_or_wide = ModelSpec(id="m", display_name="M", aspect_ratios=("1:1", "16:9"))
    assert to_job_spec(parse_generation_request({"prompt": "x", "size": "1792x1024"}), square_or_wide).aspect_ratio == (
        "16:9"
    )
    with pytest.raises(InvalidRequest) as info:  # 3:2 is more than 15 % from both 1:1 and 16:9
        to_job_spec(parse_generation_request({"prompt": "x", "size": "1536x1024"}), square_or_wide)
    assert info.value.field == "size" and "within 15%" in info.value.message
    with pytest.raises(InvalidRequest) as info:
        to_job_spec(parse_generation_request({"prompt": "x", "aspect_ratio": "3:2"}), square_or_wide)
    assert info.value.field == "aspect_ratio" and "'1:1' and '16:9'" in info.value.message


@pytest.mark.parametrize(("value", "ratio"), [("16x9", "16:9"), ("21:9", "21:9"), (" 3X4 ", "3:4"), ("auto", None)])
def test_aspect_ratio_spellings(value: str, ratio: str | None, model: ModelSpec) -> None:
    assert to_job_spec(parse_generation_request({"prompt": "x", "aspect_ratio": value}), model).aspect_ratio == ratio


@pytest.mark.parametrize("value", ["7:3", "wide", 1.5])
def test_unknown_aspect_ratios_are_refused(value: object) -> None:
    error = generation_error({"prompt": "x", "aspect_ratio": value})
    assert error.field == "aspect_ratio" and "'1:1'" in error.message and "'21:9'" in error.message


def test_a_ratio_the_model_lacks_is_refused_naming_what_it_has(model: ModelSpec) -> None:
    with pytest.raises(InvalidRequest) as info:  # 1:4 is Nano Banana 2's, not 2.5 Flash Image's
        to_job_spec(parse_generation_request({"prompt": "x", "aspect_ratio": "1:4"}), model)
    assert info.value.field == "aspect_ratio" and "Supported values are: '1:1'" in info.value.message


# --- images in JSON (AIML image_urls, JSON edits) -------------------------------------------------------------


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def test_generation_with_aiml_image_urls(png: bytes, jpeg: bytes, model: ModelSpec) -> None:
    body = {
        "model": "google/gemini-2.5-flash-image-edit",
        "prompt": "merge",
        "image_urls": ["https://example.com/a.png", data_url(png), base64.urlsafe_b64encode(jpeg).decode().rstrip("=")],
    }
    request = parse_generation_request(body)
    assert request.image_urls == ("https://example.com/a.png",)
    assert [img.mime_type for img in request.images] == [PNG, JPEG]
    fetched = ImageInput.from_bytes(png)
    spec = to_job_spec(request, model, [fetched])
    assert spec.input_images == (*request.images, fetched)  # inline first, then fetched, each in order
    assert spec.turns[0].parts[0] == "merge"


def test_data_url_type_is_sniffed_not_trusted(jpeg: bytes) -> None:
    request = parse_generation_request({"prompt": "x", "image_urls": [data_url(jpeg, "image/png")]})
    assert request.images[0].mime_type == JPEG


@pytest.mark.parametrize(
    ("value", "param", "error"),
    [
        (["https://a/x.png", "ftp://host/x.png"], "image_urls[1]", InvalidRequest),
        (["data:image/png,%89PNG"], "image_urls[0]", InvalidImage),
        (["data:image/png;base64,@@@"], "image_urls[0]", InvalidImage),
        ([base64.b64encode(b"not an image").decode()], "image_urls[0]", InvalidImage),
        ([42], "image_urls[0]", InvalidRequest),
    ],
)
def test_bad_image_references(value: list[object], param: str, error: type[InvalidRequest]) -> None:
    with pytest.raises(error) as info:
        parse_generation_request({"prompt": "x", "image_urls": value})
    assert info.value.field == param


@pytest.mark.parametrize("key", ["image", "images", "image[]", "image_urls"])
def test_json_edit_image_keys(key: str, png: bytes) -> None:
    single = parse_edit_json({"prompt": "x", key: "https://example.com/a.png"})
    assert single.image_urls == ("https://example.com/a.png",) and single.images == ()
    several = parse_edit_json({"prompt": "x", key: ["https://example.com/a.png", data_url(png)]})
    assert several.image_urls == ("https://example.com/a.png",) and len(several.images) == 1


def test_json_edit_openai_image_url_objects(png: bytes) -> None:
    request = parse_edit_json(
        {"prompt": "x", "images": [{"image_url": "https://example.com/a.png"}, {"image_url": {"url": data_url(png)}}]}
    )
    assert request.image_urls == ("https://example.com/a.png",) and request.images[0].mime_type == PNG
    with pytest.raises(InvalidRequest) as info:
        parse_edit_json({"prompt": "x", "images": [{"file_id": "file_1"}]})
    assert info.value.field == "images[0]"


def test_json_edit_needs_an_image_and_refuses_a_mask(png: bytes) -> None:
    with pytest.raises(InvalidRequest) as missing:
        parse_edit_json({"prompt": "x", "image": []})
    assert (missing.value.field, missing.value.message) == ("image", "Missing required parameter: 'image'.")
    with pytest.raises(InvalidRequest) as mask:
        parse_edit_json({"prompt": "x", "image": data_url(png), "mask": {"image_url": data_url(png)}})
    assert mask.value.field == "mask"


# --- multipart edits ------------------------------------------------------------------------------------------


def test_form_edit_single_image(png: bytes, model: ModelSpec) -> None:
    request = parse_edit_form([("prompt", "make it blue"), ("n", "2"), ("size", "1024x1536")], [("image", png)])
    spec = to_job_spec(request, model)
    assert spec.turns[0].parts == ("make it blue", ImageInput(png, PNG))
    assert (spec.n, spec.aspect_ratio) == (2, "2:3")


def test_form_edit_keeps_the_order_sent(png: bytes, jpeg: bytes, webp: bytes) -> None:
    request = parse_edit_form([("prompt", "x")], [("image[]", jpeg), ("image[]", png), ("image[]", webp)])
    assert [img.mime_type for img in request.images] == [JPEG, PNG, WEBP]
    mixed = parse_edit_form([("prompt", "x")], [("image", webp), ("image[]", png)])
    assert [img.mime_type for img in mixed.images] == [WEBP, PNG]


def test_form_edit_numbered_images_follow_their_index(png: bytes, jpeg: bytes, webp: bytes) -> None:
    request = parse_edit_form([("prompt", "x")], [("image[2]", webp), ("image[0]", jpeg), ("image[1]", png)])
    assert [img.mime_type for img in request.images] == [JPEG, PNG, WEBP]


def test_form_edit_string_fields(png: bytes) -> None:
    fields = [
        ("prompt", "x"),
        ("model", "nano-banana"),
        ("n", "3"),
        ("output_compression", "55"),
        ("output_format", "webp"),
        ("stream", "false"),
        ("input_fidelity", "high"),
        ("response_format", "url"),
    ]
    request = parse_edit_form(fields, [("image", png), ("unrelated_file", b"..")])
    assert (request.model, request.count, request.input_fidelity) == ("nano-banana", 3, "high")
    assert output_options(request) == OutputOptions("url", WEBP, 55)
    with pytest.raises(InvalidRequest) as info:
        parse_edit_form([("prompt", "x"), ("n", "eleven")], [("image", png)])
    assert info.value.field == "n"
    with pytest.raises(UnknownField) as unknown:  # a form field OpenAI does not define is refused, not dropped
        parse_edit_form([("prompt", "x"), ("markup", "yes")], [("image", png)])
    assert unknown.value.field == "markup"


def test_form_edit_sniffs_every_file(png: bytes) -> None:
    with pytest.raises(InvalidImage) as info:
        parse_edit_form([("prompt", "x")], [("image[]", png), ("image[]", b"%PDF-1.7 not an image")])
    assert info.value.field == "image[]"


def test_form_edit_mask_is_refused(png: bytes) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_edit_form([("prompt", "x")], [("image", png), ("mask", png)])
    assert info.value.field == "mask"
    assert info.value.message.startswith(
        "mask is not supported by gemini-2.5-flash-image; describe the edit in the prompt"
    )
    assert parse_edit_form([("prompt", "x")], [("image", png), ("mask", b"")]).images  # an empty file input


def test_form_edit_needs_an_image() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_edit_form([("prompt", "x")], [])
    assert (info.value.field, info.value.message) == ("image", "Missing required parameter: 'image'.")


def test_form_edit_image_as_url_text_field(png: bytes) -> None:
    fields = [("prompt", "x"), ("image", "https://example.com/a.png"), ("image[]", "")]
    request = parse_edit_form(fields, [("image[]", png)])
    assert request.image_urls == ("https://example.com/a.png",) and len(request.images) == 1


def test_too_many_images(png: bytes, model: ModelSpec) -> None:
    request = parse_edit_form([("prompt", "x")], [("image[]", png)] * 4)
    with pytest.raises(InvalidRequest) as info:
        to_job_spec(request, model)
    assert info.value.field == "image" and "at most 3" in info.value.message and "got 4" in info.value.message
    three = parse_edit_form([("prompt", "x")], [("image[]", png)] * 3)
    assert len(to_job_spec(three, model).input_images) == 3
    urls = parse_edit_json({"prompt": "x", "image_urls": [f"https://example.com/{i}.png" for i in range(4)]})
    with pytest.raises(InvalidRequest, match="at most 3"):
        check_input_limits(urls, model)
    with pytest.raises(InvalidRequest, match="at most 3"):
        to_job_spec(three, model, [ImageInput(png, PNG)])


def _form_of(request: httpx.Request) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    """Split a multipart body the way a server does, with the standard library's MIME parser."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(EmailMessage, policy=HTTP).parsebytes(head + request.content)
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, bytes]] = []
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        if part.get_filename() is not None:
            files.append((name, payload))
        else:
            fields.append((name, payload.decode()))
    return fields, files


def test_what_the_real_sdk_uploads_parses(png: bytes, jpeg: bytes, model: ModelSpec) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        sent.append(request)
        return httpx.Response(200, json={"created": 1, "data": []})

    client = sdk_client(handler)
    client.images.edit(
        model="gemini-2.5-flash-image", image=[("a.png", jpeg, "image/png"), png], prompt="merge", n=2, size="auto"
    )
    fields, files = _form_of(sent[0])
    assert [name for name, _ in files] == ["image[]", "image[]"]
    request = parse_edit_form(fields, files)
    assert isinstance(request, ImagesRequest)
    spec = to_job_spec(request, model)
    assert [img.mime_type for img in spec.input_images] == [JPEG, PNG]  # the declared image/png is not trusted
    assert (spec.n, spec.aspect_ratio, spec.prompt) == (2, None, "merge")
