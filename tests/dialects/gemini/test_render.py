"""Gemini responses: the shapes Google sends, and proof that the real google-genai SDK parses them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types
from google.genai.models import _GenerateContentResponse_from_mldev

from imagegate.core.capabilities import NANO_BANANA, ModelSpec, estimate_usage
from imagegate.core.images import PNG
from imagegate.core.jobs import FinishReason, Job, JobError, SlotResult, StoredImage, Usage
from imagegate.dialects.gemini.errors import render_error
from imagegate.dialects.gemini.translate import (
    parse_count_tokens_request,
    parse_generate_request,
    render_count_tokens,
    render_model,
    render_model_list,
    render_response,
    render_stream_chunks,
    to_job_spec,
)
from imagegate.errors import ImagegateError, InternalError, InvalidRequest, UpstreamTimeout

from ..images import encode_image

MakeJob = Callable[[SlotResult], Job]
IMAGE_USAGE = Usage(input_text_tokens=16, input_image_tokens=258, output_text_tokens=6, output_image_tokens=1290)


def stored(file_id: str = "file_1", data: bytes = b"") -> StoredImage:
    return StoredImage(file_id=file_id, mime_type=PNG, width=1024, height=1024, size_bytes=len(data))


def success_slot(data: bytes, text: str = "Here is your image: ") -> SlotResult:
    return SlotResult(
        index=0, images=(stored("file_1", data),), text=text, finish_reason=FinishReason.STOP, usage=IMAGE_USAGE
    )


def assert_clean(value: object) -> None:
    """No nulls, no empty part lists, and camelCase keys only, at every level."""
    assert value is not None
    if isinstance(value, dict):
        for key, item in value.items():
            assert key == "@type" or "_" not in key, key
            assert item != [] or key != "parts"
            assert_clean(item)
    elif isinstance(value, list):
        for item in value:
            assert_clean(item)


def sdk_parse(body: dict[str, Any]) -> types.GenerateContentResponse:
    converted = _GenerateContentResponse_from_mldev(json.loads(json.dumps(body)))
    return types.GenerateContentResponse._from_response(response=converted, kwargs={})


# --- shapes ----------------------------------------------------------------------------------------------


def test_success_shape(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    body = render_response(make_job(success_slot(png)), {"file_1": png}, model, response_id="resp_1")
    assert body == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Here is your image: "},
                        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 274,
            "candidatesTokenCount": 1296,
            "totalTokenCount": 1570,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 16}, {"modality": "IMAGE", "tokenCount": 258}],
            "candidatesTokensDetails": [
                {"modality": "IMAGE", "tokenCount": 1290},
                {"modality": "TEXT", "tokenCount": 6},
            ],
        },
        "modelVersion": "gemini-2.5-flash-image",
        "responseId": "resp_1",
    }
    assert_clean(body)


def test_image_only_and_model_version(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, images=(stored("a", png), stored("b", png)), model_version="gemini-2.5-flash-image-001")
    body = render_response(make_job(slot), {"a": png, "b": png}, model, response_id="r")
    candidate = body["candidates"][0]
    assert [list(p) for p in candidate["content"]["parts"]] == [["inlineData"], ["inlineData"]]
    assert candidate["finishReason"] == "STOP"
    assert body["modelVersion"] == "gemini-2.5-flash-image-001"


def test_base64_out_is_standard_padded_one_line(model: ModelSpec, make_job: MakeJob) -> None:
    data = b"\xfb\xef\xbe" * 40 + b"\xff"  # forces '+' and '/' in the standard alphabet, and padding
    body = render_response(make_job(success_slot(data, text="")), {"file_1": data}, model, response_id="r")
    text = body["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
    assert "+" in text
    assert "/" in text
    assert "-" not in text
    assert "_" not in text
    assert text.endswith("=")
    assert "\n" not in text
    assert not text.startswith("data:")
    assert base64.b64decode(text, validate=True) == data


def test_no_image_refusal(model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, finish_reason=FinishReason.NO_IMAGE, usage=Usage(input_text_tokens=18))
    body = render_response(make_job(slot), {}, model, response_id="r")
    assert body["candidates"] == [{"finishReason": "NO_IMAGE", "index": 0}]
    assert body["usageMetadata"]["promptTokenCount"] == 18
    assert body["usageMetadata"]["totalTokenCount"] == 18
    assert "candidatesTokenCount" not in body["usageMetadata"]
    assert_clean(body)
    parsed = sdk_parse(body)
    assert parsed.candidates is not None
    assert parsed.candidates[0].finish_reason == types.FinishReason.NO_IMAGE
    assert parsed.text is None


def test_image_safety_refusal_with_message(model: ModelSpec, make_job: MakeJob) -> None:
    message = "Unable to show the generated image. You will not be charged for blocked images."
    slot = SlotResult(index=0, finish_reason=FinishReason.IMAGE_SAFETY, finish_message=message)
    body = render_response(make_job(slot), {}, model, response_id="r")
    assert body["candidates"] == [{"finishReason": "IMAGE_SAFETY", "finishMessage": message, "index": 0}]
    # google-genai 3.4.0's converter drops finishMessage (raw REST clients still see it); the body must parse.
    parsed = sdk_parse(body)
    assert parsed.candidates is not None
    assert parsed.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY


def test_text_refusal_keeps_its_sentence(model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, text="I can't create that image.", finish_reason=FinishReason.STOP)
    candidate = render_response(make_job(slot), {}, model, response_id="r")["candidates"][0]
    assert candidate["content"] == {"role": "model", "parts": [{"text": "I can't create that image."}]}
    assert candidate["finishReason"] == "STOP"


def test_blocked_prompt_has_no_candidates(model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, block_reason="PROHIBITED_CONTENT", usage=Usage(input_text_tokens=9))
    body = render_response(make_job(slot), {}, model, response_id="r")
    assert "candidates" not in body
    assert body["promptFeedback"] == {"blockReason": "PROHIBITED_CONTENT"}
    assert body["usageMetadata"]["promptTokenCount"] == 9
    parsed = sdk_parse(body)
    assert parsed.candidates is None
    assert parsed.prompt_feedback is not None
    assert parsed.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_thoughts_are_counted(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, images=(stored("file_1", png),), usage=Usage(input_text_tokens=4, thoughts_tokens=30))
    usage = render_response(make_job(slot), {"file_1": png}, model, response_id="r")["usageMetadata"]
    assert usage == {
        "promptTokenCount": 4,
        "totalTokenCount": 34,
        "thoughtsTokenCount": 30,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
    }


def test_failed_slot_raises_its_domain_error(model: ModelSpec, make_job: MakeJob) -> None:
    slot = SlotResult(index=0, error=JobError(code="upstream_timeout", message="No answer in 60 s."))
    with pytest.raises(UpstreamTimeout, match="No answer"):
        render_response(make_job(slot), {}, model, response_id="r")
    with pytest.raises(UpstreamTimeout):
        render_stream_chunks(make_job(slot), {}, model, response_id="r")


def test_missing_image_bytes_is_an_internal_error(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    with pytest.raises(InternalError):
        render_response(make_job(success_slot(png)), {}, model, response_id="r")


# --- streaming -------------------------------------------------------------------------------------------


def test_stream_text_then_image(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    chunks = render_stream_chunks(make_job(success_slot(png)), {"file_1": png}, model, response_id="r9")
    assert len(chunks) == 2
    first, last = chunks
    assert first["candidates"][0]["content"]["parts"] == [{"text": "Here is your image: "}]
    assert "finishReason" not in first["candidates"][0]
    assert last["candidates"][0]["content"]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    ]
    assert last["candidates"][0]["finishReason"] == "STOP"
    for chunk in chunks:
        assert (chunk["responseId"], chunk["modelVersion"]) == ("r9", "gemini-2.5-flash-image")
        assert chunk["usageMetadata"]["promptTokenCount"] == 274
        assert_clean(chunk)
    assert first["usageMetadata"]["totalTokenCount"] == 280
    assert (
        last["usageMetadata"]
        == render_response(make_job(success_slot(png)), {"file_1": png}, model, response_id="r9")["usageMetadata"]
    )


def test_stream_image_only_is_one_chunk(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    job = make_job(success_slot(png, text=""))
    chunks = render_stream_chunks(job, {"file_1": png}, model, response_id="r")
    assert chunks == [render_response(job, {"file_1": png}, model, response_id="r")]


@pytest.mark.parametrize(
    "slot",
    [
        SlotResult(index=0, finish_reason=FinishReason.NO_IMAGE),
        SlotResult(index=0, block_reason="SAFETY"),
        SlotResult(index=0, text="I can't draw that.", finish_reason=FinishReason.STOP),
    ],
)
def test_stream_refusal_is_one_chunk(slot: SlotResult, model: ModelSpec, make_job: MakeJob) -> None:
    job = make_job(slot)
    assert render_stream_chunks(job, {}, model, response_id="r") == [render_response(job, {}, model, response_id="r")]


# --- countTokens and models ------------------------------------------------------------------------------


def test_count_tokens() -> None:
    assert render_count_tokens(Usage(input_text_tokens=26, input_image_tokens=258)) == {
        "totalTokens": 284,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 26}, {"modality": "IMAGE", "tokenCount": 258}],
    }
    assert render_count_tokens(Usage()) == {"totalTokens": 0}


def test_model_resource(model: ModelSpec) -> None:
    assert render_model(model) == {
        "name": "models/gemini-2.5-flash-image",
        "baseModelId": "gemini-2.5-flash-image",
        "version": "2.0",
        "displayName": "Nano Banana",
        "description": model.description,
        "inputTokenLimit": 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
        "temperature": 1.0,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 1.0,
    }


MODELS = [ModelSpec(id=f"model-{i}", display_name=f"M{i}") for i in range(5)]


def test_model_list_pages() -> None:
    first = render_model_list(MODELS, page_size=2, page_token=None)
    assert [m["name"] for m in first["models"]] == ["models/model-0", "models/model-1"]
    second = render_model_list(MODELS, page_size=2, page_token=first["nextPageToken"])
    assert [m["name"] for m in second["models"]] == ["models/model-2", "models/model-3"]
    last = render_model_list(MODELS, page_size=2, page_token=second["nextPageToken"])
    assert [m["name"] for m in last["models"]] == ["models/model-4"]
    assert "nextPageToken" not in last
    exact = render_model_list(MODELS, page_size=5, page_token=None)
    assert len(exact["models"]) == 5
    assert "nextPageToken" not in exact


@pytest.mark.parametrize("size", [None, 0, 5000])
def test_model_list_default_and_maximum_page_size(size: int | None) -> None:
    many = [ModelSpec(id=f"m{i}", display_name="M") for i in range(1200)]
    expected = 1000 if size == 5000 else 50
    assert len(render_model_list(many, page_size=size, page_token=None)["models"]) == expected
    assert render_model_list(MODELS, page_size=size, page_token="")["models"][0]["name"] == "models/model-0"


@pytest.mark.parametrize("token", ["garbage", "bW9kZWxzOi0x", "x" * 40, "bW9kZWxzOg"])
def test_model_list_bad_token(token: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        render_model_list(MODELS, page_size=2, page_token=token)
    assert info.value.field == "page_token"


def test_model_list_negative_page_size() -> None:
    with pytest.raises(InvalidRequest):
        render_model_list(MODELS, page_size=-1, page_token=None)


# --- the real SDK, end to end in process (httpx.MockTransport stands in for the HTTP routes) -------------


class FakeServer:
    """Routes an SDK request through parse -> to_job_spec -> a canned answer -> render, as the routes will."""

    def __init__(self, make_job: MakeJob, image: bytes, *, text: str = "Here you go") -> None:
        self.make_job, self.image, self.text = make_job, image, text
        self.bodies: list[dict[str, Any]] = []

    def client(self) -> genai.Client:
        http = httpx.Client(transport=httpx.MockTransport(self.handle))
        options = types.HttpOptions(base_url="http://test", api_version="v1beta", httpx_client=http)
        return genai.Client(api_key="k", http_options=options)

    def handle(self, request: httpx.Request) -> httpx.Response:
        try:
            return self.route(request)
        except ImagegateError as exc:
            status, body, headers = render_error(exc)
            return httpx.Response(status, json=body, headers=headers)

    def route(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, request.url.params
        if request.method == "GET" and path.endswith("/models"):
            size = params.get("pageSize")
            page = render_model_list(
                [NANO_BANANA, *MODELS], page_size=int(size) if size else None, page_token=params.get("pageToken")
            )
            return httpx.Response(200, json=page)
        if request.method == "GET":
            return httpx.Response(200, json=render_model(NANO_BANANA))
        body = json.loads(request.content)
        self.bodies.append(body)
        if path.endswith(":countTokens"):
            spec = to_job_spec(parse_count_tokens_request(body), NANO_BANANA)
            return httpx.Response(200, json=render_count_tokens(estimate_usage(spec, NANO_BANANA)))
        spec = to_job_spec(parse_generate_request(body), NANO_BANANA)
        usage = estimate_usage(spec, NANO_BANANA, output_images=1, output_text=self.text)
        slot = SlotResult(index=0, images=(stored("f", self.image),), text=self.text, usage=usage)
        job = self.make_job(slot)
        if ":streamGenerateContent" in path:
            chunks = render_stream_chunks(job, {"f": self.image}, NANO_BANANA, response_id="stream-1")
            sse = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
            return httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=render_response(job, {"f": self.image}, NANO_BANANA, response_id="resp-1"))


def test_sdk_parses_the_rendered_success(png: bytes, model: ModelSpec, make_job: MakeJob) -> None:
    body = render_response(make_job(success_slot(png)), {"file_1": png}, model, response_id="resp_1")
    converted = _GenerateContentResponse_from_mldev(body)
    direct = types.GenerateContentResponse(**converted)
    assert direct.candidates is not None
    assert direct.candidates[0].content is not None
    assert direct.candidates[0].content.parts is not None
    assert direct.candidates[0].content.parts[1].inline_data is not None
    assert direct.candidates[0].content.parts[1].inline_data.data == png
    parsed = sdk_parse(body)
    assert parsed.response_id == "resp_1"
    assert parsed.usage_metadata is not None
    assert parsed.usage_metadata.candidates_token_count == 1296


def test_sdk_generate_content_round_trip(make_job: MakeJob) -> None:
    image = encode_image("PNG", size=(32, 18))
    server = FakeServer(make_job, image)
    contents: list[types.PartUnionDict] = [
        "Make it blue",
        types.Part.from_bytes(data=encode_image("JPEG"), mime_type="image/jpeg"),
    ]
    response = server.client().models.generate_content(
        model="gemini-2.5-flash-image",
        contents=contents,
        config=types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="16:9")),
    )
    assert response.text == "Here you go"
    assert response.parts is not None
    assert response.parts[1].inline_data is not None
    assert response.parts[1].inline_data.data == image
    picture = response.parts[1].as_image()
    assert picture is not None
    assert response.model_version == "gemini-2.5-flash-image"
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == 3 + 258


def test_sdk_stream_round_trip(png: bytes, make_job: MakeJob) -> None:
    chunks = list(
        FakeServer(make_job, png)
        .client()
        .models.generate_content_stream(model="gemini-2.5-flash-image", contents="a cat")
    )
    assert len(chunks) == 2
    assert chunks[0].text == "Here you go"
    last = chunks[-1]
    assert last.candidates is not None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.parts is not None
    assert last.parts[0].inline_data is not None
    assert last.parts[0].inline_data.data == png
    assert all(chunk.response_id == "stream-1" for chunk in chunks)


def test_sdk_chat_history_comes_back_and_translates(png: bytes, make_job: MakeJob) -> None:
    server = FakeServer(make_job, png)
    chat = server.client().chats.create(model="gemini-2.5-flash-image")
    chat.send_message("draw a cat")
    chat.send_message("make it blue")
    history = server.bodies[-1]["contents"]
    assert [turn["role"] for turn in history] == ["user", "model", "user"]
    assert base64.urlsafe_b64decode(history[1]["parts"][1]["inlineData"]["data"]) == png


def test_sdk_count_tokens_and_models(png: bytes, make_job: MakeJob) -> None:
    client = FakeServer(make_job, png).client()
    assert client.models.count_tokens(model="gemini-2.5-flash-image", contents="hello world!").total_tokens == 3
    names = [m.name for m in client.models.list(config={"page_size": 2})]
    assert names == ["models/gemini-2.5-flash-image", *[f"models/model-{i}" for i in range(5)]]
    fetched = client.models.get(model="gemini-2.5-flash-image")
    assert fetched.display_name == "Nano Banana"
    assert fetched.supported_actions == ["generateContent", "countTokens", "streamGenerateContent"]


def test_sdk_sees_request_errors(png: bytes, make_job: MakeJob) -> None:
    client = FakeServer(make_job, png).client()
    with pytest.raises(genai.errors.ClientError) as info:
        client.models.generate_content(model="gemini-2.5-flash-image", contents="a cat", config={"candidate_count": 2})
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert info.value.message == "Multiple candidates is not enabled for this model"
