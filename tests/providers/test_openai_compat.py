"""The ``openai`` provider against OpenAI-Images exchanges (OpenAI's reference, Lumenfall, AIML, Pixapi).

Unit tests run over ``httpx.MockTransport`` with answers and errors shaped like the documented ones; the tests at
the end talk to a fake upstream (``fakes.openai_server``) over real loopback HTTP, so the multipart encoding,
the download and the timeouts meet a real server and parser.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from fakes.loopback import serve
from fakes.openai_server import FakeOpenAI
from PIL import Image

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.catalog import builtin_model
from imagegate.core.images import HEIC, ImageInput
from imagegate.core.jobs import Generation, JobSpec, Modality, Role, Turn, Usage
from imagegate.core.ports import ImageProvider
from imagegate.errors import (
    InvalidImage,
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import USER_AGENT, ProviderOptionsError, RetryPolicy
from imagegate.providers.openai_compat import OpenAICompatProvider, OpenAIOptions

KEY = "sk-proj-test-0123456789abcdefghijklmnopqrstuvwxyz"
MODEL = "gemini-2.5-flash-image"
API = "https://api.openai.com/v1"


def png(width: int, height: int, seed: int = 0) -> bytes:
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG")
    return out.getvalue()


def encoded(fmt: str, size: tuple[int, int] = (24, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


SQUARE = png(64, 64, seed=1)
WIDE = png(96, 54, seed=2)
INPUTS = [png(40, 30, seed=10 + i) for i in range(4)]
EARLIER = png(32, 32, seed=5)
JPEG_INPUT = encoded("JPEG")
WEBP_INPUT = encoded("WEBP")
GIF_INPUT = encoded("GIF")

# -- answers, as documented -----------------------------------------------------------------------------

GPT_IMAGE = {  # OpenAI's reference: b64_json always, usage split by modality
    "created": 1713833628,
    "data": [{"b64_json": b64(SQUARE)}],
    "background": "opaque",
    "output_format": "png",
    "quality": "high",
    "size": "1024x1024",
    "usage": {
        "total_tokens": 100,
        "input_tokens": 50,
        "output_tokens": 50,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
    },
}

WITH_OUTPUT_DETAILS = {
    "created": 1713833628,
    "data": [{"b64_json": b64(WIDE)}],
    "usage": {
        "input_tokens": 331,
        "input_tokens_details": {"text_tokens": 13, "image_tokens": 318},
        "output_tokens": 1310,
        "output_tokens_details": {"text_tokens": 20, "image_tokens": 1290},
        "total_tokens": 1641,
    },
}

CDN_URL = "https://cdn.lumenfall.ai/outputs/2f1c/image.png"
LUMENFALL_URL = {"created": 1234567890, "data": [{"url": CDN_URL, "revised_prompt": "A serene mountain landscape"}]}

AIML_IMAGES = {  # AIML's other shape for this model (its docs' example answer)
    "images": [
        {
            "url": "https://cdn.aimlapi.com/eagle/files/zebra/VVpZmbuvMBg3k7OqJ8UnP.jpeg",
            "content_type": "image/jpeg",
            "file_name": "output.jpeg",
            "file_size": None,
        }
    ],
    "description": "Sounds adorable! Here's a racoon enjoying some ice cream: ",
}

AIML_DATA = {"data": [{"url": None, "b64_json": b64(SQUARE)}], "meta": {"usage": {"tokens_used": 1290}}}

# -- errors, as documented ------------------------------------------------------------------------------

MODERATION_BLOCKED = {
    "error": {
        "message": "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        "help.openai.com and include the request ID req_4f0e. safety_violations=[violence].",
        "type": "image_generation_user_error",
        "param": None,
        "code": "moderation_blocked",
    }
}

CONTENT_POLICY = {
    "error": {
        "code": "content_policy_violation",
        "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that "
        "is not allowed by our safety system.",
        "param": None,
        "type": "invalid_request_error",
    }
}

INVALID_KEY = {
    "error": {
        "message": "Incorrect API key provided: sk-proj-********************************************wxyz. You can "
        "find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}

RATE_LIMITED = {
    "error": {
        "message": "Rate limit reached for gpt-image-1 in organization org-abc on images per minute (IPM): Limit 5, "
        "Used 5, Requested 1. Please try again in 12s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
}

INSUFFICIENT_QUOTA = {
    "error": {
        "message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
}

PROMPT_TOO_LONG = {
    "error": {
        "message": "Invalid 'prompt': string too long. Expected a string with maximum length 32000, but got a "
        "string with length 40000 instead.",
        "type": "invalid_request_error",
        "param": "prompt",
        "code": "string_above_max_length",
    }
}

UNKNOWN_PARAMETER = {
    "error": {
        "message": "Unknown parameter: 'response_format'.",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": "unknown_parameter",
    }
}

BAD_SIZE = {
    "error": {
        "message": "Invalid value: '1344x768'. Supported values are: '1024x1024', '1024x1536', '1536x1024', "
        "and 'auto'.",
        "type": "invalid_request_error",
        "param": "size",
        "code": "invalid_value",
    }
}

MODEL_NOT_FOUND = {
    "error": {
        "message": "The model `gpt-image-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
}

ORG_NOT_VERIFIED = {
    "error": {
        "message": "Your organization must be verified to use the model `gpt-image-1`.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
}

SERVER_ERROR = {
    "error": {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}

OVERLOADED = {
    "error": {
        "message": "The engine is currently overloaded, please try again later.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
}

CLOUDFLARE_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
)

# -- harness ---------------------------------------------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]


def reply(code: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    return lambda request: httpx.Response(code, json=body, headers=headers or {})


def raw(code: int, content: bytes, content_type: str = "application/json") -> Answer:
    return lambda request: httpx.Response(code, content=content, headers={"content-type": content_type})


def fail(exc_type: type[httpx.TransportError]) -> Answer:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc_type("scripted failure", request=request)

    return raise_it


class Upstream:
    """The API host answers in script order (the last answer repeats); other hosts are the CDN in ``files``."""

    def __init__(self, *answers: Answer, files: dict[str, Answer] | None = None) -> None:
        self.answers = list(answers)
        self.files = files or {}
        self.requests: list[httpx.Request] = []
        self.downloads: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) in self.files:
            self.downloads.append(request)
            return self.files[str(request.url)](request)
        self.requests.append(request)
        return (self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        return dict(json.loads(self.requests[index].content))


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def parts(request: httpx.Request) -> list[tuple[str, str | None, str | None, bytes]]:
    """A multipart/form-data body as ``(name, filename, content type, bytes)`` per part, in order."""
    match = re.search(r"boundary=([^;]+)", request.headers["content-type"])
    assert match is not None
    boundary = b"--" + match.group(1).encode()
    out = []
    for chunk in request.content.split(boundary)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line
        )  # Content-Disposition, Content-Type
        disposition = headers["Content-Disposition"]
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        assert name is not None
        out.append((name.group(1), filename.group(1) if filename else None, headers.get("Content-Type"), data[:-2]))
    return out


def fields_of(request: httpx.Request) -> dict[str, str]:
    return {name: data.decode() for name, filename, _, data in parts(request) if filename is None}


def files_of(request: httpx.Request) -> list[tuple[str, str | None, str | None, bytes]]:
    return [p for p in parts(request) if p[1] is not None]


Factory = Callable[..., tuple[OpenAICompatProvider, Upstream, FakeSleep]]


@pytest.fixture
async def openai() -> AsyncIterator[Factory]:
    clients: list[httpx.AsyncClient] = []

    def make(
        *answers: Answer,
        files: dict[str, Answer] | None = None,
        retry_policy: RetryPolicy | None = None,
        **options: Any,
    ) -> tuple[OpenAICompatProvider, Upstream, FakeSleep]:
        upstream, sleep = Upstream(*answers, files=files), FakeSleep()
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
        provider = OpenAICompatProvider(
            OpenAIOptions(api_key=KEY, **options),
            client=clients[-1],
            sleep=sleep,
            retry_policy=retry_policy,
            rand=lambda: 0.0,
        )
        return provider, upstream, sleep

    yield make
    for client in clients:
        await client.aclose()


def spec(prompt: str = "A nano banana dish in a fancy restaurant", *images: bytes, **changes: Any) -> JobSpec:
    parts_: tuple[str | ImageInput, ...] = (*(ImageInput.from_bytes(i) for i in images), prompt)
    return JobSpec(model=MODEL, turns=(Turn(Role.USER, parts_),), **changes)


async def generate(provider: OpenAICompatProvider, job: JobSpec | None = None) -> Generation:
    return await provider.generate(job or spec(), NANO_BANANA, MODEL)


# -- text to image: what is sent -------------------------------------------------------------------------


async def test_text_to_image_posts_json_to_generations_with_a_bearer_key(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    await generate(provider, spec(aspect_ratio="16:9", seed=7, temperature=0.5))
    [request] = upstream.requests
    assert request.method == "POST"
    assert str(request.url) == f"{API}/images/generations"  # nothing in the query, where proxies log
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert upstream.body() == {  # seed and temperature have no OpenAI Images field
        "model": MODEL,
        "prompt": "A nano banana dish in a fancy restaurant",
        "n": 1,
        "size": "1344x768",
        "response_format": "b64_json",
    }


async def test_no_size_when_the_job_leaves_the_ratio_open(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    await generate(provider)
    assert "size" not in upstream.body()
    assert "aspect_ratio" not in upstream.body()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"size_style": "aspect_ratio"}, {"aspect_ratio": "9:16"}),
        ({"size_style": "omit"}, {}),
        ({"sizes": {"9:16": "1024x1536"}}, {"size": "1024x1536"}),
        ({"sizes": {"1:1": "auto"}}, {"size": "768x1344"}),
    ],
)
async def test_size_styles(openai: Factory, options: dict[str, Any], expected: dict[str, str]) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), **options)
    await generate(provider, spec(aspect_ratio="9:16"))
    sent = {k: v for k, v in upstream.body().items() if k in ("size", "aspect_ratio")}
    assert sent == expected


async def test_response_format_can_be_left_out_for_gpt_image_models(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), response_format="omit")
    await generate(provider)
    assert "response_format" not in upstream.body()


async def test_extra_body_is_added_to_every_request(openai: Factory) -> None:
    provider, upstream, _ = openai(
        reply(200, GPT_IMAGE), reply(200, GPT_IMAGE), extra_body={"quality": "high", "moderation": "low"}
    )
    await generate(provider)
    assert upstream.body()["quality"] == "high"
    assert upstream.body()["moderation"] == "low"
    await generate(provider, spec("Edit", INPUTS[0]))
    assert fields_of(upstream.requests[-1])["quality"] == "high"


async def test_the_end_user_is_sent_as_user(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), reply(200, GPT_IMAGE))
    await generate(provider, replace(spec("A red kite"), end_user="customer-42"))
    assert upstream.body()["user"] == "customer-42"
    await generate(provider, spec("A red kite"))
    assert "user" not in upstream.body()


async def test_system_instruction_goes_before_the_prompt(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    await generate(provider, spec("A red kite", system_instruction="Draw in watercolour."))
    assert upstream.body()["prompt"] == "Draw in watercolour.\n\nA red kite"


async def test_base_url_of_a_compatible_upstream(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), base_url="https://api.lumenfall.ai/openai/v1/")
    await generate(provider)
    assert str(upstream.requests[0].url) == "https://api.lumenfall.ai/openai/v1/images/generations"
    assert provider.upstream == "api.lumenfall.ai"


# -- edits: what is sent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_edit_sends_multipart_with_one_image_part_per_input(openai: Factory, count: int) -> None:
    provider, upstream, _ = openai(reply(200, WITH_OUTPUT_DETAILS))
    result = await generate(provider, spec("Put a hat on the cat", *INPUTS[:count], aspect_ratio="16:9"))
    [request] = upstream.requests
    assert str(request.url) == f"{API}/images/edits"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert fields_of(request) == {
        "model": MODEL,
        "n": "1",
        "size": "1344x768",
        "response_format": "b64_json",
        "prompt": "Put a hat on the cat",
    }
    assert files_of(request) == [("image[]", f"image-{i}.png", "image/png", INPUTS[i - 1]) for i in range(1, count + 1)]
    assert result.images[0].data == WIDE


async def test_edit_keeps_each_images_own_type_and_converts_gif(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    await generate(provider, spec("Blend these", JPEG_INPUT, WEBP_INPUT, GIF_INPUT))
    files = files_of(upstream.requests[0])
    assert [(name, filename, kind) for name, filename, kind, _ in files] == [
        ("image[]", "image-1.jpg", "image/jpeg"),
        ("image[]", "image-2.webp", "image/webp"),
        ("image[]", "image-3.png", "image/png"),
    ]
    assert files[0][3] == JPEG_INPUT
    assert files[2][3].startswith(b"\x89PNG")  # the GIF, as a PNG of the same picture
    assert Image.open(io.BytesIO(files[2][3])).size == (24, 16)


async def test_heic_inputs_are_refused(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    heic = ImageInput(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16, HEIC)
    job = JobSpec(model=MODEL, turns=(Turn(Role.USER, (heic, "Edit")),))
    with pytest.raises(InvalidImage, match=r"PNG, JPEG and WEBP.*image/heic"):
        await generate(provider, job)
    assert upstream.requests == []


async def test_image_field_can_be_a_repeated_plain_image(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), image_field="image")
    await generate(provider, spec("Edit", *INPUTS[:2]))
    assert [name for name, *_ in files_of(upstream.requests[0])] == ["image", "image"]


async def test_edit_without_a_ratio_sends_no_size(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), response_format="omit")
    await generate(provider, spec("Edit", INPUTS[0]))
    assert fields_of(upstream.requests[0]) == {"model": MODEL, "n": "1", "prompt": "Edit"}


# -- flattening a conversation ---------------------------------------------------------------------------


def conversation(*own: bytes, earlier: int = 1) -> JobSpec:
    history: list[Turn] = []
    for i in range(earlier):
        history += [
            Turn(Role.USER, (f"Draw picture {i}",)),
            Turn(Role.MODEL, (f"Here is picture {i}", ImageInput.from_bytes(png(20, 20, seed=100 + i)))),
        ]
    request = Turn(Role.USER, (*(ImageInput.from_bytes(i) for i in own), "Now make it blue"))
    return JobSpec(model=MODEL, turns=(*history, request))


async def test_earlier_images_become_edit_inputs_in_conversation_order(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    await generate(provider, conversation(INPUTS[0], earlier=1))
    request = upstream.requests[0]
    assert fields_of(request)["prompt"] == "Now make it blue"  # earlier texts are not the request
    assert [data for *_, data in files_of(request)] == [png(20, 20, seed=100), INPUTS[0]]


async def test_the_oldest_earlier_images_are_left_out_when_they_do_not_fit(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))  # nano banana takes 3
    await generate(provider, conversation(INPUTS[0], earlier=4))
    sent = [data for *_, data in files_of(upstream.requests[0])]
    assert sent == [png(20, 20, seed=102), png(20, 20, seed=103), INPUTS[0]]


async def test_max_edit_images_limits_what_one_edit_carries(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), max_edit_images=1)
    await generate(provider, conversation(INPUTS[0], earlier=1))  # the turn's own image first
    assert [data for *_, data in files_of(upstream.requests[0])] == [INPUTS[0]]
    await generate(provider, conversation(earlier=2))  # no own image: the newest earlier one fits
    assert [data for *_, data in files_of(upstream.requests[1])] == [png(20, 20, seed=101)]
    # more own images than that never reach it: its capabilities say 1 (tests/routing/test_declared_caps.py)
    assert OpenAICompatProvider.capabilities({"api_key": "k", "max_edit_images": 1}).max_input_images == 1


async def test_a_conversation_without_a_user_turn_is_refused(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    with pytest.raises(InvalidRequest, match="no user turn"):
        await generate(provider, JobSpec(model=MODEL, turns=(Turn(Role.MODEL, ("hello",)),)))
    assert upstream.requests == []
    await generate(provider, spec(modalities=frozenset({Modality.IMAGE})))
    assert len(upstream.requests) == 1


# -- what comes back -------------------------------------------------------------------------------------


async def test_b64_answer_and_usage_by_modality(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, GPT_IMAGE))
    result = await generate(provider)
    assert [(i.mime_type, i.width, i.height, i.data) for i in result.images] == [("image/png", 64, 64, SQUARE)]
    assert result.finish_reason == "STOP"
    assert result.block_reason is None
    assert result.text == ""
    assert result.usage == Usage(input_text_tokens=10, input_image_tokens=40, output_image_tokens=50)


async def test_usage_with_output_details(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, WITH_OUTPUT_DETAILS))
    result = await generate(provider)
    assert result.usage == Usage(
        input_text_tokens=13, input_image_tokens=318, output_text_tokens=20, output_image_tokens=1290
    )
    assert result.usage.total_tokens == 1641


async def test_no_usage_reported(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, {"created": 1, "data": [{"b64_json": b64(SQUARE)}]}))
    assert (await generate(provider)).usage == Usage()


async def test_url_answer_is_downloaded_without_the_key(openai: Factory) -> None:
    files = {CDN_URL: lambda request: httpx.Response(200, content=WIDE, headers={"content-type": "image/png"})}
    provider, upstream, _ = openai(reply(200, LUMENFALL_URL), files=files, response_format="url")
    result = await generate(provider)
    assert upstream.body()["response_format"] == "url"
    assert [i.data for i in result.images] == [WIDE]
    assert (result.images[0].width, result.images[0].height) == (96, 54)
    [download] = upstream.downloads
    assert download.method == "GET"
    assert "authorization" not in download.headers
    assert result.text == ""  # a revised prompt is not the model's answer


async def test_url_download_follows_a_redirect(openai: Factory) -> None:
    signed = "https://storage.example/bucket/image.png?X-Signature=abc"
    files = {
        CDN_URL: lambda request: httpx.Response(302, headers={"location": signed}),
        signed: lambda request: httpx.Response(200, content=SQUARE),
    }
    provider, upstream, _ = openai(reply(200, LUMENFALL_URL), files=files)
    assert [i.data for i in (await generate(provider)).images] == [SQUARE]
    assert [str(r.url) for r in upstream.downloads] == [CDN_URL, signed]


async def test_aiml_images_and_description(openai: Factory) -> None:
    jpeg = encoded("JPEG", (48, 48))
    files = {AIML_IMAGES["images"][0]["url"]: lambda request: httpx.Response(200, content=jpeg)}  # type: ignore[index]
    provider, _, _ = openai(reply(200, AIML_IMAGES), files=files, base_url="https://api.aimlapi.com/v1")
    result = await provider.generate(spec(), NANO_BANANA, "google/gemini-2.5-flash-image")
    assert [(i.mime_type, i.width) for i in result.images] == [("image/jpeg", 48)]
    assert result.text == "Sounds adorable! Here's a racoon enjoying some ice cream: "


async def test_aiml_tokens_used(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, AIML_DATA))
    result = await generate(provider)
    assert result.usage == Usage(output_image_tokens=1290)
    assert len(result.images) == 1


async def test_a_data_url_in_place_of_a_url(openai: Factory) -> None:
    answer = {"data": [{"url": f"data:image/png;base64,{b64(SQUARE)}"}]}
    provider, upstream, _ = openai(reply(200, answer))
    assert [i.data for i in (await generate(provider)).images] == [SQUARE]
    assert upstream.downloads == []


async def test_model_version_when_the_upstream_names_it(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, {**GPT_IMAGE, "model": "gemini-2.5-flash-image"}))
    assert (await generate(provider)).model_version == "gemini-2.5-flash-image"


async def test_an_empty_data_list_is_an_answer_without_images(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, {"created": 1, "data": []}))
    result = await generate(provider)
    assert result.images == ()
    assert result.finish_reason is None  # no reason given: the router may try another deployment
    assert result.block_reason is None


# -- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [MODERATION_BLOCKED, CONTENT_POLICY])
async def test_moderation_is_a_refusal_not_an_error(openai: Factory, body: dict[str, Any]) -> None:
    provider, upstream, sleep = openai(reply(400, body))
    result = await generate(provider)
    assert result.refused
    assert result.block_reason == "SAFETY"
    assert result.finish_reason is None
    assert result.finish_message == body["error"]["message"]
    assert result.usage == Usage()
    assert len(upstream.requests) == 1
    assert sleep.delays == []


# -- retries ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"x-ratelimit-reset-requests": "12s", "x-ratelimit-reset-tokens": "250ms"}, 12.0),
        ({"x-ratelimit-reset-requests": "1m0.5s"}, 60.5),
    ],
)
async def test_429_waits_the_time_the_upstream_asks(openai: Factory, headers: dict[str, str], delay: float) -> None:
    provider, upstream, sleep = openai(
        reply(429, RATE_LIMITED, headers), reply(200, GPT_IMAGE), retry_policy=RetryPolicy(max_delay_s=120)
    )
    assert len((await generate(provider)).images) == 1
    assert sleep.delays == [delay]
    assert upstream.requests[0].content == upstream.requests[1].content


async def test_429_retries_exhausted_carries_the_delay(openai: Factory) -> None:
    provider, upstream, sleep = openai(reply(429, RATE_LIMITED, {"retry-after": "3"}))
    with pytest.raises(UpstreamRateLimited, match="rate_limit_exceeded") as caught:
        await generate(provider)
    assert caught.value.retry_after_s == 3.0
    assert len(upstream.requests) == 3
    assert sleep.delays == [3.0, 3.0]


async def test_a_delay_longer_than_the_policy_allows_is_returned_not_waited(openai: Factory) -> None:
    provider, upstream, sleep = openai(reply(429, RATE_LIMITED, {"retry-after": "600"}))
    with pytest.raises(UpstreamRateLimited) as caught:
        await generate(provider)
    assert caught.value.retry_after_s == 600.0
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_429_without_any_delay_backs_off(openai: Factory) -> None:
    provider, upstream, sleep = openai(reply(429, RATE_LIMITED), reply(200, GPT_IMAGE))
    await generate(provider)
    assert len(upstream.requests) == 2
    assert sleep.delays == [1.0]  # the policy's first backoff (jitter drawn as 0)


async def test_insufficient_quota_is_a_wall_not_a_rate(openai: Factory) -> None:
    provider, upstream, sleep = openai(reply(429, INSUFFICIENT_QUOTA), reply(200, GPT_IMAGE))
    with pytest.raises(UpstreamRejected, match="no quota left") as caught:
        await generate(provider)
    assert "You exceeded your current quota" in caught.value.message
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_5xx_backoff_then_success(openai: Factory) -> None:
    provider, upstream, sleep = openai(reply(503, OVERLOADED), reply(500, SERVER_ERROR), reply(200, GPT_IMAGE))
    assert len((await generate(provider)).images) == 1
    assert len(upstream.requests) == 3
    assert sleep.delays == [1.0, 2.0]


async def test_x_should_retry_is_honoured(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(503, OVERLOADED, {"x-should-retry": "false"}), reply(200, GPT_IMAGE))
    with pytest.raises(UpstreamUnavailable, match="overloaded"):
        await generate(provider)
    assert len(upstream.requests) == 1
    conflict = {"error": {"message": "Lock timeout", "type": "server_error"}}
    provider, upstream, _ = openai(reply(409, conflict, {"x-should-retry": "true"}), reply(200, GPT_IMAGE))
    assert len((await generate(provider)).images) == 1
    assert len(upstream.requests) == 2


async def test_connect_error_is_retried_but_a_read_timeout_is_not(openai: Factory) -> None:
    provider, upstream, _ = openai(fail(httpx.ConnectError), reply(200, GPT_IMAGE))
    assert len((await generate(provider)).images) == 1
    assert len(upstream.requests) == 2
    # the upstream may have made (and billed) the image already; asking again could pay for it twice
    provider, upstream, sleep = openai(fail(httpx.ReadTimeout), reply(200, GPT_IMAGE))
    with pytest.raises(UpstreamTimeout, match=r"api\.openai\.com did not answer in time") as caught:
        await generate(provider)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_a_failed_download_is_retried_a_missing_one_is_not(openai: Factory) -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, content=SQUARE)])
    provider, upstream, sleep = openai(reply(200, LUMENFALL_URL), files={CDN_URL: lambda request: next(answers)})
    assert [i.data for i in (await generate(provider)).images] == [SQUARE]
    assert len(upstream.downloads) == 2
    assert len(upstream.requests) == 1  # the image is not made twice
    assert sleep.delays == [1.0]
    provider, upstream, _ = openai(reply(200, LUMENFALL_URL), files={CDN_URL: lambda request: httpx.Response(404)})
    with pytest.raises(UpstreamUnavailable, match="failed with HTTP 404"):
        await generate(provider)
    assert len(upstream.downloads) == 1


async def test_a_download_over_the_limit_is_refused(openai: Factory) -> None:
    files = {CDN_URL: lambda request: httpx.Response(200, content=SQUARE)}
    provider, _, _ = openai(reply(200, LUMENFALL_URL), files=files, max_download_bytes=1000)
    with pytest.raises(UpstreamUnavailable, match="over the 1000-byte limit"):
        await generate(provider)
    provider, _, _ = openai(reply(200, GPT_IMAGE), max_download_bytes=1000)  # b64_json counts too
    with pytest.raises(UpstreamUnavailable, match="over 1000 bytes"):
        await generate(provider)


async def test_a_big_b64_json_is_read_from_the_answer_and_limited_by_its_own_length(openai: Factory) -> None:
    big = png(160, 160, seed=3)  # noise: ~77 KB, long enough to be lifted out before the JSON is parsed
    answer = {**GPT_IMAGE, "data": [{"b64_json": b64(big)}]}
    provider, _, _ = openai(reply(200, answer), max_download_bytes=len(big) - 10)
    with pytest.raises(UpstreamUnavailable, match=f"over {len(big) - 10} bytes"):
        await generate(provider)
    provider, _, _ = openai(reply(200, answer), max_download_bytes=len(big))
    (image,) = (await generate(provider)).images
    assert image.data == big and (image.width, image.height) == (160, 160)


async def test_an_image_url_that_is_not_https_is_not_fetched(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, {"data": [{"url": "file:///etc/passwd"}]}))
    with pytest.raises(UpstreamUnavailable, match="will not fetch"):
        await generate(provider)
    provider, upstream, _ = openai(reply(200, {"data": [{"url": "http://cdn.example/a.png"}]}))
    with pytest.raises(UpstreamUnavailable, match="will not fetch"):
        await generate(provider)
    assert upstream.downloads == []


# -- errors ----------------------------------------------------------------------------------------------


async def test_a_bad_prompt_is_the_callers_mistake_with_its_field(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(400, PROMPT_TOO_LONG))
    with pytest.raises(InvalidRequest) as caught:
        await generate(provider)
    assert type(caught.value) is InvalidRequest
    assert caught.value.message == PROMPT_TOO_LONG["error"]["message"]
    assert caught.value.field == "prompt"
    assert len(upstream.requests) == 1


@pytest.mark.parametrize("body", [UNKNOWN_PARAMETER, BAD_SIZE])
async def test_a_parameter_the_deployment_chose_is_not_blamed_on_the_caller(
    openai: Factory, body: dict[str, Any]
) -> None:
    provider, _, _ = openai(reply(400, body))
    with pytest.raises(UpstreamRejected, match="rejected a parameter this deployment sends"):
        await generate(provider, spec(aspect_ratio="16:9"))


async def test_a_rejected_extra_body_field_is_the_deployments(openai: Factory) -> None:
    body = {"error": {"message": "Invalid value: 'ultra'.", "type": "invalid_request_error", "param": "quality"}}
    provider, _, _ = openai(reply(400, body), extra_body={"quality": "ultra"})
    with pytest.raises(UpstreamRejected, match="Invalid value: 'ultra'"):
        await generate(provider)


async def test_invalid_key_is_the_operators_problem_and_no_part_of_a_key_is_echoed(openai: Factory) -> None:
    provider, _, _ = openai(reply(401, INVALID_KEY))
    with pytest.raises(UpstreamRejected) as caught:
        await generate(provider)
    message = str(caught.value)
    assert "did not accept the openai deployment's API key" in message
    assert "check the upstream key" in message
    assert "Incorrect API key provided" in message
    assert "wxyz" not in message
    assert "****" not in message.replace("***", "")
    assert KEY not in message


async def test_a_key_quoted_back_is_redacted(openai: Factory) -> None:
    body = {"error": {"message": f"Key {KEY} is disabled.", "type": "invalid_request_error", "code": None}}
    provider, _, _ = openai(reply(403, body))
    with pytest.raises(UpstreamRejected) as caught:
        await generate(provider)
    assert KEY not in str(caught.value)
    assert "Key *** is disabled" in str(caught.value)


@pytest.mark.parametrize(
    ("code", "body", "error", "words"),
    [
        (403, ORG_NOT_VERIFIED, UpstreamRejected, "organization must be verified"),
        (404, MODEL_NOT_FOUND, UpstreamRejected, "check the deployment's base_url and model name"),
        (402, {"error": {"message": "Insufficient balance"}}, UpstreamRejected, "Insufficient balance"),
        (500, SERVER_ERROR, UpstreamUnavailable, "had an error while processing"),
        (504, {"error": {"message": "Gateway timeout", "type": "server_error"}}, UpstreamTimeout, "timed out"),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}, InvalidRequest, "field required"),
        (400, {"error": "prompt is required"}, InvalidRequest, "prompt is required"),
        (400, {"statusCode": 400, "message": "Invalid aspect ratio"}, InvalidRequest, "Invalid aspect ratio"),
        (409, {"error": {"message": "Conflict"}}, UpstreamRejected, "Conflict"),
    ],
)
async def test_every_error_maps_to_one_domain_error(
    openai: Factory, code: int, body: Any, error: type[Exception], words: str
) -> None:
    provider, _, _ = openai(reply(code, body), retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(error, match=re.escape(words)) as caught:
        await generate(provider)
    assert type(caught.value) is error


async def test_an_html_error_page(openai: Factory) -> None:
    provider, upstream, _ = openai(raw(502, CLOUDFLARE_502.encode(), "text/html"))
    with pytest.raises(UpstreamUnavailable, match=r"HTTP 502 \(no error body\)") as caught:
        await generate(provider)
    assert "<html>" not in caught.value.message
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    "content",
    [
        b"<html>OK</html>",
        b"[1, 2]",
        b'{"created": 1}',
        b'{"data": "nope"}',
        b'{"data": [1]}',
        b'{"data": [{"b64_json": "@@@not base64"}]}',
        b'{"data": [{"b64_json": "AAAA"}]}',
        b'{"data": [{"revised_prompt": "no image at all"}]}',
        b'{"data": [{"url": "data:image/png,rawbytes"}]}',
    ],
)
async def test_garbage_200_body(openai: Factory, content: bytes) -> None:
    provider, upstream, _ = openai(raw(200, content))
    with pytest.raises(UpstreamUnavailable, match=r"api\.openai\.com"):
        await generate(provider)
    assert len(upstream.requests) == 1


async def test_an_unreadable_image(openai: Factory) -> None:
    broken = SQUARE[:40]  # a PNG signature and header, then nothing
    provider, _, _ = openai(reply(200, {"data": [{"b64_json": b64(broken)}]}))
    with pytest.raises(UpstreamUnavailable, match=r"returned an image \(image/png\) that cannot be read"):
        await generate(provider)


# -- options, registration -------------------------------------------------------------------------------


def test_from_options_requires_an_api_key() -> None:
    with pytest.raises(ProviderOptionsError, match="api_key: Field required"):
        OpenAICompatProvider.from_options({})
    with pytest.raises(ProviderOptionsError, match="api_key"):
        OpenAICompatProvider.from_options({"api_key": ""})


def test_from_options_refuses_mistakes_without_echoing_values() -> None:
    with pytest.raises(ProviderOptionsError) as caught:
        OpenAICompatProvider.from_options(
            {"api_key": KEY, "apikey": "sk-oops", "timeout_s": 0, "size_style": "inches", "base_url": "api.x.ai"}
        )
    message = str(caught.value)
    assert "apikey: Extra inputs are not permitted" in message
    assert "timeout_s" in message
    assert "size_style" in message
    assert "base_url" in message
    assert "sk-" not in message


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sizes": {"wide": "1536x1024"}}, "not an aspect ratio"),
        ({"sizes": {"16:9": "big"}}, "must be like '1536x1024'"),
        ({"extra_body": {"prompt": "x", "n": 2}}, "n, prompt cannot be set here"),
        ({"response_format": "png"}, "response_format"),
        ({"max_edit_images": -1}, "max_edit_images"),
        ({"image_field": "file"}, "image_field"),
    ],
)
def test_option_validation(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ProviderOptionsError, match=re.escape(words)):
        OpenAICompatProvider.from_options({"api_key": KEY, **options})


async def test_from_options_builds_a_working_provider() -> None:
    provider = OpenAICompatProvider.from_options({"api_key": KEY, "base_url": "https://api.aimlapi.com/v1"})
    assert isinstance(provider, ImageProvider)
    assert KEY not in repr(provider._options)
    await provider.aclose()


async def test_aclose_leaves_an_injected_client_open(openai: Factory) -> None:
    provider, _, _ = openai(reply(200, GPT_IMAGE))
    await provider.aclose()
    assert len((await generate(provider)).images) == 1


def test_registered_through_the_entry_point_group() -> None:
    [entry] = entry_points(group="imagegate.providers", name="openai")
    assert entry.load() is OpenAICompatProvider


# -- over real loopback HTTP -----------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    upstream = FakeOpenAI(KEY)
    with serve(upstream.app) as url:
        yield upstream, f"{url}/v1"


def live(base_url: str, **options: Any) -> OpenAICompatProvider:
    return OpenAICompatProvider.from_options({"api_key": KEY, "base_url": base_url, **options})


async def test_loopback_text_to_image(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    provider = live(base_url)
    try:
        result = await generate(provider, spec("A lighthouse at dusk", aspect_ratio="3:2"))
    finally:
        await provider.aclose()
    [seen] = upstream.seen
    assert seen.path == "/v1/images/generations"
    assert seen.headers["user-agent"] == USER_AGENT
    assert seen.json == {
        "model": MODEL,
        "prompt": "A lighthouse at dusk",
        "n": 1,
        "size": "1248x832",
        "response_format": "b64_json",
    }
    assert [(i.mime_type, i.width, i.height) for i in result.images] == [("image/png", 1248, 832)]
    assert result.usage == Usage(input_text_tokens=4, output_image_tokens=1056)


async def test_loopback_url_answer_is_downloaded_without_the_key(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    provider = live(base_url, response_format="url", size_style="aspect_ratio")
    try:
        result = await generate(provider, spec(aspect_ratio="9:16"))
    finally:
        await provider.aclose()
    assert upstream.seen[0].json is not None and upstream.seen[0].json["aspect_ratio"] == "9:16"
    assert [(i.width, i.height) for i in result.images] == [(768, 1344)]
    [download] = upstream.downloads
    assert "authorization" not in download


async def test_loopback_edit_with_three_images(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    provider = live(base_url)
    inputs = [png(40, 30, seed=1), encoded("JPEG", (30, 40)), encoded("WEBP", (20, 20))]
    try:
        result = await generate(provider, spec("Combine the three", *inputs))
    finally:
        await provider.aclose()
    [seen] = upstream.seen
    assert seen.path == "/v1/images/edits"
    assert seen.fields == {"model": MODEL, "n": "1", "response_format": "b64_json", "prompt": "Combine the three"}
    assert seen.files == [
        ("image[]", "image-1.png", "image/png", inputs[0]),
        ("image[]", "image-2.jpg", "image/jpeg", inputs[1]),
        ("image[]", "image-3.webp", "image/webp", inputs[2]),
    ]
    assert [(i.width, i.height) for i in result.images] == [(40, 30)]  # the first input's size
    assert result.usage.input_image_tokens == 195


async def test_loopback_retry_after_is_honoured(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    upstream.fail(429, RATE_LIMITED, {"retry-after": "1"})
    sleep = FakeSleep()
    async with httpx.AsyncClient() as client:
        provider = OpenAICompatProvider(OpenAIOptions(api_key=KEY, base_url=base_url), client=client, sleep=sleep)
        result = await generate(provider)
    assert len(result.images) == 1
    assert len(upstream.seen) == 2
    assert sleep.delays == [1.0]


async def test_loopback_timeout(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    upstream.delay_s = 0.8
    provider = live(base_url, timeout_s=0.2)
    try:
        with pytest.raises(UpstreamTimeout, match="did not answer in time"):
            await generate(provider)
    finally:
        await provider.aclose()
    assert len(upstream.seen) == 1  # not asked again: it may be making the image


async def test_loopback_wrong_key_and_malformed_body(fake: tuple[FakeOpenAI, str]) -> None:
    upstream, base_url = fake
    wrong = "sk-proj-wrong-key-0123456789-9876"
    provider = OpenAICompatProvider.from_options({"api_key": wrong, "base_url": base_url})
    try:
        with pytest.raises(UpstreamRejected, match="Incorrect API key provided: \\*\\*\\*") as caught:
            await generate(provider)
    finally:
        await provider.aclose()
    assert "sk-proj" not in str(caught.value)
    assert "9876" not in str(caught.value)
    upstream.fail(200, b"{not json")
    provider = live(base_url)
    try:
        with pytest.raises(UpstreamUnavailable, match="not JSON"):
            await generate(provider)
        upstream.fail(400, MODERATION_BLOCKED)
        refused = await generate(provider)
    finally:
        await provider.aclose()
    assert refused.block_reason == "SAFETY"


async def test_the_resolution_in_pixels_at_the_asked_size(openai: Factory) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE))
    pro = builtin_model("gemini-3-pro-image")
    await provider.generate(spec(aspect_ratio="16:9", image_size="4K"), pro, MODEL)
    assert upstream.body()["size"] == "x".join(map(str, pro.pixel_size("16:9", "4K") or ()))
    assert "resolution" not in upstream.body()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"size_style": "aspect_ratio", "resolution_field": "resolution"},
            {"aspect_ratio": "16:9", "resolution": "2K"},
        ),
        ({"size_style": "aspect_ratio", "resolution_field": "size"}, {"aspect_ratio": "16:9", "size": "2K"}),
    ],
)
async def test_the_resolution_in_the_gateways_own_field(
    openai: Factory, options: dict[str, Any], expected: dict[str, str]
) -> None:
    provider, upstream, _ = openai(reply(200, GPT_IMAGE), **options)
    await provider.generate(spec(aspect_ratio="16:9", image_size="2K"), builtin_model("gemini-3-pro-image"), MODEL)
    assert {k: upstream.body()[k] for k in expected} == expected


async def test_a_canonical_b64_json_is_kept_for_passing_on(openai: Factory) -> None:
    big = png(160, 160, seed=3)  # past the size whose base64 is lifted out of the answer
    text = b64(big)
    provider, _, _ = openai(reply(200, {"data": [{"b64_json": text}]}))
    [image] = (await generate(provider)).images
    assert image.data == big and image.base64 is not None and bytes(image.base64) == text.encode()
