"""The official google-genai SDK, unmodified, against a real imagegate on loopback (emulator provider)."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .images import colour_share, content_area, open_bytes, solid
from .server import Server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"

SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}


def image_of(response: types.GenerateContentResponse) -> bytes:
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    blobs = [p.inline_data for p in parts if p.inline_data]  # type: ignore[union-attr]
    assert len(blobs) == 1 and blobs[0].mime_type == "image/png"
    return blobs[0].data  # type: ignore[return-value]


@pytest.mark.parametrize("ratio", list(SIZES))
def test_text_to_image_in_every_ratio(client: genai.Client, ratio: str) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="a lighthouse at dusk",
        config=types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio=ratio)),
    )
    assert open_bytes(image_of(response)).size == SIZES[ratio]
    assert "emulator" in (response.text or "")
    assert response.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_token_count is not None and usage.candidates_token_count >= 1290
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count  # type: ignore[operator]


def test_default_is_square_and_image_only_when_asked(client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="a cat", config=types.GenerateContentConfig(response_modalities=["IMAGE"])
    )
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert [bool(p.inline_data) for p in parts] == [True]  # type: ignore[union-attr]
    assert open_bytes(image_of(response)).size == (1024, 1024)


def test_edit_one_image_keeps_its_ratio_and_applies_the_instruction(client: genai.Client) -> None:
    source = solid((220, 30, 30), (1600, 900))
    response = client.models.generate_content(model=MODEL, contents=[source, "make it blue"])
    edited = open_bytes(image_of(response))
    assert edited.size == (1344, 768)  # 16:9, taken from the input image
    assert colour_share(edited, lambda p: p[2] > p[0] + 40) > 0.3


def test_compose_three_images(client: genai.Client) -> None:
    inputs = [solid((230, 20, 20)), solid((20, 200, 20)), solid((20, 20, 230))]
    response = client.models.generate_content(model=MODEL, contents=["put these side by side", *inputs])
    composed = open_bytes(image_of(response))
    assert colour_share(composed, lambda p: p[0] > 180 and p[1] < 80 and p[2] < 80) > 0.03
    assert colour_share(composed, lambda p: p[1] > 150 and p[0] < 80 and p[2] < 80) > 0.03
    assert colour_share(composed, lambda p: p[2] > 180 and p[0] < 80 and p[1] < 80) > 0.03


def test_four_images_are_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents=["four", *[solid((9, 9, 9))] * 4])
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "3" in (caught.value.message or "")


def test_chat_of_three_turns_each_editing_the_last_image(client: genai.Client) -> None:
    chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]))
    first = open_bytes(image_of(chat.send_message("a red square on a white table")))
    second = open_bytes(image_of(chat.send_message("make it greyscale")))
    assert first.size == second.size == (1024, 1024)
    assert colour_share(content_area(second), lambda p: max(p) - min(p) > 12) < 0.01  # no colour left
    third = open_bytes(image_of(chat.send_message("rotate 90 degrees")))
    assert third.size == (1024, 1024)
    history = chat.get_history()
    assert [c.role for c in history] == ["user", "model", "user", "model", "user", "model"]
    assert third.tobytes() != second.tobytes()


def test_streaming_with_sse(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="a kite over the sea"))
    assert chunks, "no chunk arrived"
    images = [p.inline_data for c in chunks for p in (c.candidates[0].content.parts or []) if p.inline_data]  # type: ignore[index, union-attr]
    assert len(images) == 1 and open_bytes(images[0].data).size == (1024, 1024)  # type: ignore[arg-type]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert all(c.response_id == chunks[0].response_id for c in chunks)


def test_streaming_error_raises_the_sdk_error(client: genai.Client) -> None:
    with pytest.raises(errors.ServerError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents="emulate:unavailable please"))
    assert caught.value.code == 503


def test_count_tokens(client: genai.Client) -> None:
    text_only = client.models.count_tokens(model=MODEL, contents="a small red bicycle")
    with_image = client.models.count_tokens(model=MODEL, contents=["a small red bicycle", solid((1, 2, 3))])
    assert text_only.total_tokens and text_only.total_tokens > 0
    assert with_image.total_tokens == text_only.total_tokens + 258


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert "models/gemini-2.5-flash-image" in names
    model = client.models.get(model="nano-banana")
    assert model.name == "models/gemini-2.5-flash-image" and model.display_name == "Nano Banana"


def test_refusals_arrive_as_the_real_model_sends_them(client: genai.Client) -> None:
    safety = client.models.generate_content(model=MODEL, contents="emulate:image_safety a picture")
    assert safety.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY  # type: ignore[index]
    assert not (safety.candidates[0].content and safety.candidates[0].content.parts)  # type: ignore[index]
    blocked = client.models.generate_content(model=MODEL, contents="emulate:blocked a picture")
    assert not blocked.candidates
    assert blocked.prompt_feedback is not None and blocked.prompt_feedback.block_reason is not None
    no_image = client.models.generate_content(model=MODEL, contents="emulate:no_image")
    assert no_image.candidates[0].finish_reason == types.FinishReason.NO_IMAGE  # type: ignore[index]
    assert no_image.usage_metadata is not None and no_image.usage_metadata.prompt_token_count


def _raises(call, error_type, code: int, status: str):  # type: ignore[no-untyped-def]
    with pytest.raises(error_type) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert caught.value.status == status
    return caught.value


def test_error_classes_raise_the_sdks_exceptions(server: Server, client: genai.Client) -> None:
    bad_key = genai_client(server, key="ig_this-is-not-a-key")
    _raises(
        lambda: bad_key.models.generate_content(model=MODEL, contents="x"), errors.ClientError, 400, "INVALID_ARGUMENT"
    )
    error = _raises(
        lambda: client.models.generate_content(model="gemini-9-ultra-image", contents="x"),
        errors.ClientError,
        404,
        "NOT_FOUND",
    )
    assert "is not found for API version" in (error.message or "")
    _raises(
        lambda: client.models.generate_content(
            model=MODEL,
            contents="x",
            config=types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="7:3")),
        ),
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
    )
    _raises(
        lambda: client.models.generate_content(
            model=MODEL, contents="x", config=types.GenerateContentConfig(candidate_count=2)
        ),
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
    )
    unknown = _raises(
        lambda: client.models.generate_content(
            model=MODEL,
            contents="x",
            config=types.GenerateContentConfig(http_options=types.HttpOptions(extra_body={"negativePrompt": "dogs"})),
        ),
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
    )
    assert "negativePrompt" in (unknown.message or "")
    limited = _raises(
        lambda: client.models.generate_content(model=MODEL, contents="emulate:rate_limited"),
        errors.ClientError,
        429,
        "RESOURCE_EXHAUSTED",
    )
    assert any("RetryInfo" in d.get("@type", "") for d in limited.details["error"]["details"])
    _raises(
        lambda: client.models.generate_content(model=MODEL, contents="emulate:unavailable"),
        errors.ServerError,
        503,
        "UNAVAILABLE",
    )
    _raises(
        lambda: client.models.generate_content(model=MODEL, contents="emulate:timeout"),
        errors.ServerError,
        504,
        "DEADLINE_EXCEEDED",
    )


async def test_async_client_works_too(client: genai.Client) -> None:
    response = await client.aio.models.generate_content(model=MODEL, contents="a green kite")
    assert open_bytes(image_of(response)).size == (1024, 1024)
