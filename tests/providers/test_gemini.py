"""The ``gemini`` provider against recorded Google AI Studio exchanges (protocols.md §1-2), over MockTransport.

Every fixture below is shaped exactly like a real ``generateContent`` answer or ``google.rpc.Status`` error;
only the image bytes are small real PNGs made here. Tests assert what was sent as well as what came back.
"""

from __future__ import annotations

import base64
import io
import json
import random
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import Generation, JobSpec, Modality, PartInfo, Role, SearchGrounding, Turn, Usage
from imagegate.core.ports import ImageProvider
from imagegate.dialects.gemini.requests import parse_generate_request
from imagegate.dialects.gemini.requests import to_job_spec as gemini_spec
from imagegate.errors import (
    InvalidRequest,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from imagegate.providers.base import ProviderOptionsError, RetryPolicy
from imagegate.providers.gemini import GeminiOptions, GeminiProvider

KEY = "AIzaSyD-test-key-0123456789abcdefghijk"
MODEL = "gemini-2.5-flash-image"
PATH = f"/v1beta/models/{MODEL}:generateContent"


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A real PNG of noise, so its base64 uses every character (``+`` and ``/`` included)."""
    pixels = random.Random(seed).randbytes(width * height * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), pixels).save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


SQUARE = png(1024, 1024, seed=1)
WIDE = png(1344, 768, seed=2)
INPUT = png(48, 32, seed=3)
EARLIER = png(40, 40, seed=4)

# -- recorded answers (HTTP 200) -------------------------------------------------------------------------

TEXT_AND_IMAGE = {  # the live-note's prompt-only call: text part first, 1296 = 1290 image + 6 text tokens
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Here is your image: "},
                    {"inlineData": {"mimeType": "image/png", "data": b64(SQUARE)}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 16,
        "candidatesTokenCount": 1296,
        "totalTokenCount": 1312,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 16}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        "thoughtsTokenCount": 0,
        "cachedContentTokenCount": 0,
        "serviceTier": "standard",
    },
    "modelVersion": "gemini-2.5-flash-image",
    "responseId": "HN2XapOEKtL8nsEP27CN0Q0",
}

IMAGE_ONLY_EDIT = {  # an edit with one input image: 26 TEXT + 258 IMAGE in, one 16:9 image out
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"inlineData": {"mimeType": "image/png", "data": b64(WIDE)}}],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 284,
        "candidatesTokenCount": 1290,
        "totalTokenCount": 1574,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 26},
            {"modality": "IMAGE", "tokenCount": 258},
        ],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        "serviceTier": "standard",
    },
    "modelVersion": "gemini-2.5-flash-image",
    "responseId": "mt6XaZCuBrGJ7M8P1o6y8AU",
}

IMAGE_SAFETY = {
    "candidates": [
        {
            "finishReason": "IMAGE_SAFETY",
            "finishMessage": "Unable to show the generated image. The image was filtered out because it violated "
            "Google's Generative AI Prohibited Use policy. You will not be charged for blocked images. "
            "Try rephrasing the prompt.",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 18,
        "totalTokenCount": 18,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 18}],
        "serviceTier": "standard",
    },
    "modelVersion": "gemini-2.5-flash-image",
    "responseId": "Zt6XaaKjA4Tn7M8P_a2B0Qs",
}

NO_IMAGE = {  # unsafe prompt with responseModalities ["IMAGE"]
    "candidates": [{"content": {}, "finishReason": "NO_IMAGE", "index": 0}],
    "usageMetadata": {
        "promptTokenCount": 18,
        "totalTokenCount": 18,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 18}],
        "serviceTier": "standard",
    },
    "modelVersion": "gemini-2.5-flash-image",
    "responseId": "SN-XaYD3JsCM7M8PhcSJ-Ag",
}

PROMPT_BLOCKED = {
    "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
    "usageMetadata": {
        "promptTokenCount": 9,
        "totalTokenCount": 9,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}],
        "serviceTier": "standard",
    },
    "modelVersion": "gemini-2.5-flash-image",
    "responseId": "dN-XaeHnL5Sd7M8P0rKZ8A4",
}

# -- recorded errors (google.rpc.Status) -----------------------------------------------------------------

QUOTA_429 = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. "
        "Please retry in 34.286670503s.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash-preview-image"},
                        "quotaValue": "500",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"},
        ],
    }
}

CREDITS_DEPLETED_429 = {
    "error": {
        "code": 429,
        "message": "Your prepayment credits are depleted. Please go to AI Studio at https://ai.studio/projects "
        "to manage your project and billing.",
        "status": "RESOURCE_EXHAUSTED",
    }
}

OVERLOADED_503 = {
    "error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
}

BAD_ASPECT_400 = {
    "error": {
        "code": 400,
        "message": "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be "
        "one of '1:1', '1:4', '1:8', '2:3', '3:2', '3:4', '4:1', '4:3', '4:5', '5:4', '8:1', '9:16', '16:9', "
        "or '21:9'.\n",
        "status": "INVALID_ARGUMENT",
    }
}

UNKNOWN_FIELD_400 = {
    "error": {
        "code": 400,
        "message": "Invalid JSON payload received. Unknown name \"negativePrompt\" at 'generation_config': "
        "Cannot find field.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {
                        "field": "generation_config",
                        "description": 'Invalid JSON payload received. Unknown name "negativePrompt" at '
                        "'generation_config': Cannot find field.",
                    }
                ],
            }
        ],
    }
}

API_KEY_INVALID_400 = {
    "error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": "API key not valid. Please pass a valid API key.",
            },
        ],
    }
}

LOCATION_400 = {
    "error": {
        "code": 400,
        "message": "User location is not supported for the API use.",
        "status": "FAILED_PRECONDITION",
    }
}

MISSING_KEY_403 = {
    "error": {
        "code": 403,
        "message": "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
        "status": "PERMISSION_DENIED",
    }
}

NOT_FOUND_404 = {
    "error": {
        "code": 404,
        "message": "models/gemini-9-ultra-image is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their supported methods.",
        "status": "NOT_FOUND",
    }
}

INTERNAL_500 = {
    "error": {
        "code": 500,
        "message": "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        "status": "INTERNAL",
    }
}

DEADLINE_504 = {
    "error": {
        "code": 504,
        "message": "Deadline expired before operation could complete.",
        "status": "DEADLINE_EXCEEDED",
    }
}

BAD_GATEWAY_HTML = (
    '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
    "<title>502 Server Error</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
    "<h1>Error: Server Error</h1>\n<h2>The server encountered a temporary error and could not complete your "
    "request.<p>Please try again in 30 seconds.</h2>\n<h2></h2>\n</body></html>\n"
)

# -- harness ---------------------------------------------------------------------------------------------

Answer = Callable[[httpx.Request], httpx.Response]


def reply(code: int, body: Any) -> Answer:
    return lambda request: httpx.Response(code, json=body, headers={"x-gemini-service-tier": "standard"})


def html(code: int, page: str) -> Answer:
    return lambda request: httpx.Response(code, text=page, headers={"content-type": "text/html; charset=UTF-8"})


def raw(code: int, content: bytes) -> Answer:
    return lambda request: httpx.Response(code, content=content, headers={"content-type": "application/json"})


def fail(exc_type: type[httpx.TransportError]) -> Answer:
    def raise_it(request: httpx.Request) -> httpx.Response:
        raise exc_type("scripted failure", request=request)

    return raise_it


class Upstream:
    """Google as recorded: each request gets the next answer; the last one repeats for ever."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return (self.answers.pop(0) if len(self.answers) > 1 else self.answers[0])(request)

    def body(self, index: int = -1) -> dict[str, Any]:
        return dict(json.loads(self.requests[index].content))


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


Factory = Callable[..., tuple[GeminiProvider, Upstream, FakeSleep]]


@pytest.fixture
async def gemini() -> AsyncIterator[Factory]:
    clients: list[httpx.AsyncClient] = []

    def make(*answers: Answer, retry_policy: RetryPolicy | None = None) -> tuple[GeminiProvider, Upstream, FakeSleep]:
        upstream, sleep = Upstream(*answers), FakeSleep()
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(upstream)))
        provider = GeminiProvider(
            GeminiOptions(api_key=KEY), client=clients[-1], sleep=sleep, retry_policy=retry_policy
        )
        return provider, upstream, sleep

    yield make
    for client in clients:
        await client.aclose()


def spec(prompt: str = "A nano banana dish in a fancy restaurant", **changes: Any) -> JobSpec:
    return JobSpec(model=MODEL, turns=(Turn(Role.USER, (prompt,)),), **changes)


async def generate(provider: GeminiProvider, job: JobSpec | None = None) -> Generation:
    return await provider.generate(job or spec(), NANO_BANANA, MODEL)


# -- what is sent ----------------------------------------------------------------------------------------


async def test_sends_generate_content_with_the_key_header_and_camel_case_body(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, TEXT_AND_IMAGE))
    await generate(provider, spec(aspect_ratio="16:9", seed=42, temperature=0.7))
    request = upstream.requests[0]
    assert request.method == "POST"
    assert request.url.host == "generativelanguage.googleapis.com"
    assert request.url.path == PATH
    assert not request.url.query  # the key travels in the header, never in a URL that proxies log
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert upstream.body() == {
        "contents": [{"role": "user", "parts": [{"text": "A nano banana dish in a fancy restaurant"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
            "seed": 42,
            "temperature": 0.7,
        },
    }


async def test_no_aspect_seed_or_temperature_when_unset(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, IMAGE_ONLY_EDIT))
    await generate(provider, spec(modalities=frozenset({Modality.IMAGE})))
    assert upstream.body()["generationConfig"] == {"responseModalities": ["IMAGE"]}
    assert "systemInstruction" not in upstream.body()


async def test_multi_turn_roles_part_order_images_and_system_instruction(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, IMAGE_ONLY_EDIT))
    earlier, new = ImageInput.from_bytes(EARLIER), ImageInput.from_bytes(INPUT)
    job = JobSpec(
        model=MODEL,
        turns=(
            Turn(Role.USER, ("Draw a cat",)),
            Turn(Role.MODEL, ("Here is your cat: ", earlier)),
            Turn(Role.USER, (new, "Put this hat on the cat", "and make it blue")),
        ),
        system_instruction="You are a careful illustrator.",
    )
    await generate(provider, job)
    body = upstream.body()
    assert body["systemInstruction"] == {"parts": [{"text": "You are a careful illustrator."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Draw a cat"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Here is your cat: "},
                {"inlineData": {"mimeType": "image/png", "data": b64(EARLIER)}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"inlineData": {"mimeType": "image/png", "data": b64(INPUT)}},
                {"text": "Put this hat on the cat"},
                {"text": "and make it blue"},
            ],
        },
    ]
    sent = body["contents"][2]["parts"][0]["inlineData"]["data"]
    assert "+" in sent or "/" in sent
    assert sent.endswith("=") is (len(INPUT) % 3 != 0)
    assert "-" not in sent
    assert "_" not in sent
    assert base64.b64decode(sent, validate=True) == INPUT
    assert "_" not in json.dumps(body).replace("image/png", "")  # camelCase only: no snake_case keys at all


async def test_base_url_version_and_models_prefix(gemini: Factory) -> None:
    upstream = Upstream(reply(200, TEXT_AND_IMAGE))
    async with httpx.AsyncClient(transport=httpx.MockTransport(upstream)) as client:
        options = GeminiOptions(api_key=KEY, base_url="https://proxy.example/google/", api_version="v1")
        provider = GeminiProvider(options, client=client)
        await provider.generate(spec(), NANO_BANANA, f"models/{MODEL}")
    assert str(upstream.requests[0].url) == f"https://proxy.example/google/v1/models/{MODEL}:generateContent"


# -- what comes back -------------------------------------------------------------------------------------


async def test_text_and_image(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, TEXT_AND_IMAGE))
    result = await generate(provider)
    assert [(i.mime_type, i.width, i.height, i.data) for i in result.images] == [("image/png", 1024, 1024, SQUARE)]
    assert result.text == "Here is your image: "
    assert result.finish_reason == "STOP"
    assert result.finish_message is None
    assert result.block_reason is None
    assert result.model_version == "gemini-2.5-flash-image"
    assert result.usage == Usage(
        input_text_tokens=16, input_image_tokens=0, output_text_tokens=6, output_image_tokens=1290
    )
    assert result.usage.total_tokens == 1312


async def test_image_only_edit_usage_by_modality(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, IMAGE_ONLY_EDIT))
    result = await generate(provider)
    assert [(i.width, i.height) for i in result.images] == [(1344, 768)]
    assert result.text == ""
    assert result.usage == Usage(input_text_tokens=26, input_image_tokens=258, output_image_tokens=1290)


async def test_image_safety_is_a_refusal_with_its_message(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, IMAGE_SAFETY))
    result = await generate(provider)
    assert result.refused
    assert result.images == ()
    assert result.finish_reason == "IMAGE_SAFETY"
    assert result.finish_message is not None
    assert "You will not be charged" in result.finish_message
    assert result.usage == Usage(input_text_tokens=18)


async def test_no_image_with_empty_content(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, NO_IMAGE))
    result = await generate(provider)
    assert result.refused
    assert result.finish_reason == "NO_IMAGE"
    assert result.text == ""
    assert result.usage.input_tokens == 18
    assert result.usage.output_tokens == 0


async def test_empty_prompt_answer_with_no_token_counts(gemini: Factory) -> None:
    body = {
        "candidates": [{"finishReason": "NO_IMAGE", "index": 0}],
        "usageMetadata": {"serviceTier": "standard"},
    }
    provider, _, _ = gemini(reply(200, body))
    result = await generate(provider)
    assert result.finish_reason == "NO_IMAGE"
    assert result.usage == Usage()
    assert result.model_version is None


async def test_prompt_blocked_before_generation(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, PROMPT_BLOCKED))
    result = await generate(provider)
    assert result.refused
    assert result.block_reason == "PROHIBITED_CONTENT"
    assert result.finish_reason is None
    assert result.usage == Usage(input_text_tokens=9)


async def test_thoughts_signatures_and_unknown_finish_reasons_kept(gemini: Factory) -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "**Planning the scene** I will draw…", "thought": True},
                        {"inlineData": {"mimeType": "image/png", "data": b64(INPUT)}, "thought": True},
                        {"text": "A banana", "thoughtSignature": "c2lnbmF0dXJl"},
                        {"text": " for you."},
                        {
                            "inlineData": {
                                "mimeType": "image/png",
                                "data": base64.urlsafe_b64encode(SQUARE).decode().rstrip("="),
                            }
                        },
                    ],
                },
                "finishReason": "SOME_FUTURE_REASON",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 1300,
            "thoughtsTokenCount": 120,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1290}],
        },
    }
    provider, _, _ = gemini(reply(200, body))
    result = await generate(provider)
    assert result.text == "A banana for you."
    assert [i.data for i in result.images] == [SQUARE]  # URL-safe, unpadded base64 decoded all the same
    assert result.finish_reason == "SOME_FUTURE_REASON"
    assert result.usage == Usage(
        input_text_tokens=10, output_text_tokens=10, output_image_tokens=1290, thoughts_tokens=120
    )
    # the thoughts are kept apart from the answer (the interim image is no output), signatures where they were
    assert [(t.text, t.image.data if t.image else None) for t in result.thoughts] == [
        ("**Planning the scene** I will draw…", None),
        ("", INPUT),
    ]
    assert result.text_signature == b"signature"
    assert result.image_signatures == ()  # the image carried none


PRO_GROUNDED = {  # Nano Banana Pro with includeThoughts and googleSearch, shaped as Google answers
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "**Checking the forecast** Searching for today's weather in Paris.", "thought": True},
                    {"text": "Here is the forecast as a chart.", "thoughtSignature": b64(b"sig-text-1")},
                    {"inlineData": {"mimeType": "image/png", "data": b64(WIDE)}, "thoughtSignature": b64(b"sig-img-1")},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
            "groundingMetadata": {
                "searchEntryPoint": {"renderedContent": "<style>.container{}</style><div>…</div>"},
                "groundingChunks": [{"web": {"uri": "https://vertexaisearch.cloud.google.com/x", "title": "meteo.fr"}}],
                "webSearchQueries": ["weather Paris today"],
            },
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 20,
        "candidatesTokenCount": 1128,
        "totalTokenCount": 1348,
        "thoughtsTokenCount": 200,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}],
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
    },
    "modelVersion": "gemini-3-pro-image-preview",
}


async def test_grounding_metadata_and_signatures_of_a_pro_answer(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, PRO_GROUNDED))
    result = await generate(provider)
    assert [t.text for t in result.thoughts] == ["**Checking the forecast** Searching for today's weather in Paris."]
    assert result.text == "Here is the forecast as a chart."
    assert result.text_signature == b"sig-text-1"
    assert result.image_signatures == (b"sig-img-1",)
    assert result.grounding == PRO_GROUNDED["candidates"][0]["groundingMetadata"]  # type: ignore[index]
    assert result.usage.thoughts_tokens == 200


async def test_a_signature_that_is_not_base64_is_an_unreadable_answer(gemini: Factory) -> None:
    body = json.loads(json.dumps(PRO_GROUNDED))
    body["candidates"][0]["content"]["parts"][1]["thoughtSignature"] = "not base64!"
    provider, _, _ = gemini(reply(200, body))
    with pytest.raises(UpstreamUnavailable, match="thoughtSignature"):
        await generate(provider)


async def test_thoughts_signatures_thinking_and_search_go_upstream(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, PRO_GROUNDED))
    earlier = ImageInput.from_bytes(EARLIER)
    model_turn = Turn(
        Role.MODEL,
        ("planning", "Here you go", earlier),
        (PartInfo(thought=True), PartInfo(signature=b"sig-a"), PartInfo(signature=b"sig-b")),
    )
    job = JobSpec(
        model=MODEL,
        turns=(Turn(Role.USER, ("weather chart",)), model_turn, Turn(Role.USER, ("now in blue",))),
        include_thoughts=True,
        thinking_level="HIGH",
        grounding=SearchGrounding(web=True, images=True, time_range=("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")),
    )
    await generate(provider, job)
    body = upstream.body()
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "planning", "thought": True},
            {"text": "Here you go", "thoughtSignature": b64(b"sig-a")},
            {"inlineData": {"mimeType": "image/png", "data": b64(EARLIER)}, "thoughtSignature": b64(b"sig-b")},
        ],
    }
    assert body["contents"][2] == {"role": "user", "parts": [{"text": "now in blue"}]}
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "HIGH"}
    assert body["tools"] == [
        {
            "googleSearch": {
                "searchTypes": {"imageSearch": {}, "webSearch": {}},
                "timeRangeFilter": {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-02T00:00:00Z"},
            }
        }
    ]


async def test_image_size_goes_in_image_config(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, PRO_GROUNDED))
    await generate(provider, spec(aspect_ratio="16:9", image_size="4K"))
    assert upstream.body()["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "4K"}
    await generate(provider, spec(image_size="512"))
    assert upstream.body()["generationConfig"]["imageConfig"] == {"imageSize": "512"}


async def test_plain_web_search_is_an_empty_google_search(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, PRO_GROUNDED))
    await generate(provider, spec(grounding=SearchGrounding()))
    assert upstream.body()["tools"] == [{"googleSearch": {}}]
    assert "thinkingConfig" not in upstream.body()["generationConfig"]


async def test_the_real_type_is_sniffed_not_trusted(gemini: Factory) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (250, 200, 0)).save(out, format="JPEG")
    body = {
        "candidates": [
            {
                "content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": b64(out.getvalue())}}]},
                "finishReason": "STOP",
            }
        ]
    }
    provider, _, _ = gemini(reply(200, body))
    [image] = (await generate(provider)).images
    assert (image.mime_type, image.width, image.height) == ("image/jpeg", 64, 48)


# -- retries ---------------------------------------------------------------------------------------------


async def test_429_with_retry_info_waits_the_given_delay_then_succeeds(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(reply(429, QUOTA_429), reply(200, TEXT_AND_IMAGE))
    result = await generate(provider)
    assert len(result.images) == 1
    assert len(upstream.requests) == 2
    assert sleep.delays == [34.0]
    assert upstream.requests[0].content == upstream.requests[1].content


async def test_429_retries_exhausted(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(reply(429, QUOTA_429))
    with pytest.raises(UpstreamRateLimited) as caught:
        await generate(provider)
    assert caught.value.retry_after_s == 34.0
    assert "RESOURCE_EXHAUSTED" in caught.value.message
    assert len(upstream.requests) == 3
    assert sleep.delays == [34.0, 34.0]


async def test_fractional_retry_delay(gemini: Factory) -> None:
    body = json.loads(json.dumps(QUOTA_429))
    body["error"]["details"][2]["retryDelay"] = "1.5s"
    provider, _, sleep = gemini(reply(429, body), reply(200, TEXT_AND_IMAGE))
    await generate(provider)
    assert sleep.delays == [1.5]


async def test_429_without_retry_info_is_not_retried(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(reply(429, CREDITS_DEPLETED_429), reply(200, TEXT_AND_IMAGE))
    with pytest.raises(UpstreamRejected, match="prepayment credits are depleted"):
        await generate(provider)
    assert len(upstream.requests) == 1
    assert sleep.delays == []


async def test_503_twice_then_success_with_backoff(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(
        reply(503, OVERLOADED_503), reply(503, OVERLOADED_503), reply(200, TEXT_AND_IMAGE)
    )
    assert len((await generate(provider)).images) == 1
    assert len(upstream.requests) == 3
    # the default policy: 1 s then 2 s, each lengthened by up to 20 % jitter
    assert len(sleep.delays) == 2
    assert 1.0 <= sleep.delays[0] <= 1.2
    assert 2.0 <= sleep.delays[1] <= 2.4


async def test_503_forever(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(reply(503, OVERLOADED_503))
    with pytest.raises(UpstreamUnavailable, match="The model is overloaded"):
        await generate(provider)
    assert len(upstream.requests) == 2 + 1
    assert len(sleep.delays) == 2


async def test_max_retries_option_is_the_policy(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(500, INTERNAL_500), retry_policy=RetryPolicy(max_retries=0))
    with pytest.raises(UpstreamUnavailable, match="INTERNAL"):
        await generate(provider)
    assert len(upstream.requests) == 1


async def test_connect_error_is_retried(gemini: Factory) -> None:
    provider, upstream, sleep = gemini(fail(httpx.ConnectError), reply(200, TEXT_AND_IMAGE))
    assert len((await generate(provider)).images) == 1
    assert len(upstream.requests) == 2
    assert len(sleep.delays) == 1


async def test_read_timeout_is_not_retried(gemini: Factory) -> None:
    # Google may have made and billed the image already; asking again could pay for it twice
    provider, upstream, sleep = gemini(fail(httpx.ReadTimeout), reply(200, TEXT_AND_IMAGE))
    with pytest.raises(UpstreamTimeout) as caught:
        await generate(provider)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(upstream.requests) == 1
    assert sleep.delays == []


# -- errors ----------------------------------------------------------------------------------------------


async def test_invalid_argument_is_the_callers_fault_with_googles_message(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(400, BAD_ASPECT_400))
    with pytest.raises(InvalidRequest) as caught:
        await generate(provider, spec(aspect_ratio="7:3"))
    assert type(caught.value) is InvalidRequest
    assert caught.value.message.startswith("* GenerateContentRequest.generation_config.image_config.aspect_ratio")
    assert caught.value.message.endswith("or '21:9'.")  # Google's message, verbatim but for its trailing newline
    assert len(upstream.requests) == 1


async def test_unknown_field_names_the_field(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(400, UNKNOWN_FIELD_400))
    with pytest.raises(InvalidRequest, match="Unknown name") as caught:
        await generate(provider)
    assert caught.value.field == "generation_config"


async def test_invalid_api_key_is_the_operators_problem_and_never_echoed(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(400, API_KEY_INVALID_400))
    with pytest.raises(UpstreamRejected) as caught:
        await generate(provider)
    message = str(caught.value)
    assert "API key" in message
    assert "check the upstream key" in message
    assert KEY not in message
    assert KEY not in repr(caught.value.args)
    assert len(upstream.requests) == 1


async def test_a_key_quoted_by_google_is_redacted(gemini: Factory) -> None:
    body = {"error": {"code": 403, "message": f"API key {KEY} was deleted.", "status": "PERMISSION_DENIED"}}
    provider, _, _ = gemini(reply(403, body))
    with pytest.raises(UpstreamRejected) as caught:
        await generate(provider)
    assert KEY not in str(caught.value)
    assert "***" in str(caught.value)


async def test_missing_or_unauthorised_key(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(403, MISSING_KEY_403))
    with pytest.raises(UpstreamRejected, match="did not accept the gemini deployment's API key"):
        await generate(provider)


async def test_unsupported_location_is_not_the_callers_fault(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(400, LOCATION_400))
    with pytest.raises(UpstreamRejected, match="User location is not supported"):
        await generate(provider)


async def test_model_not_found_upstream(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(404, NOT_FOUND_404))
    with pytest.raises(UpstreamRejected, match=r"model 'gemini-9-ultra-image' not found upstream"):
        await provider.generate(spec(), NANO_BANANA, "gemini-9-ultra-image")
    assert len(upstream.requests) == 1


async def test_deadline_exceeded_is_a_timeout(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(504, DEADLINE_504))
    with pytest.raises(UpstreamTimeout, match="DEADLINE_EXCEEDED"):
        await generate(provider)
    assert len(upstream.requests) == 3


async def test_non_json_502_page(gemini: Factory) -> None:
    provider, upstream, _ = gemini(html(502, BAD_GATEWAY_HTML))
    with pytest.raises(UpstreamUnavailable, match=r"HTTP 502 \(no Google error body\)") as caught:
        await generate(provider)
    assert "<html>" not in caught.value.message
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(
    "content",
    [
        b"<html>Service Unavailable</html>",
        b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@@"}}]}}]}',
        b'{"candidates": "nope"}',
        b"[1, 2, 3]",
        b'{"unexpected": true}',
        b'{"candidates": [{"content": {"parts": "x"}}]}',
        b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}}]}',
    ],
)
async def test_garbage_200_body(gemini: Factory, content: bytes) -> None:
    provider, upstream, _ = gemini(raw(200, content))
    with pytest.raises(UpstreamUnavailable, match="Google AI Studio"):
        await generate(provider)
    assert len(upstream.requests) == 1


# -- options, registration ------------------------------------------------------------------------------


def test_from_options_requires_an_api_key() -> None:
    with pytest.raises(ProviderOptionsError, match="api_key: Field required"):
        GeminiProvider.from_options({})
    with pytest.raises(ProviderOptionsError, match="api_key"):
        GeminiProvider.from_options({"api_key": ""})


def test_from_options_refuses_unknown_options_without_echoing_values() -> None:
    with pytest.raises(ProviderOptionsError) as caught:
        GeminiProvider.from_options({"api_key": KEY, "apikey": "AIza-oops", "timeout_s": -1})
    message = str(caught.value)
    assert "apikey: Extra inputs are not permitted" in message
    assert "timeout_s" in message
    assert "AIza" not in message


def test_from_options_refuses_a_base_url_without_scheme() -> None:
    with pytest.raises(ProviderOptionsError, match="base_url"):
        GeminiProvider.from_options({"api_key": KEY, "base_url": "generativelanguage.googleapis.com"})


async def test_aclose_leaves_an_injected_client_open(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(200, TEXT_AND_IMAGE))
    await provider.aclose()
    assert len((await generate(provider)).images) == 1


async def test_an_error_status_without_a_message(gemini: Factory) -> None:
    provider, _, _ = gemini(reply(500, {"error": {"code": 500, "status": "INTERNAL"}}), retry_policy=RetryPolicy(0))
    with pytest.raises(UpstreamUnavailable) as caught:
        await generate(provider)
    assert caught.value.message == "Google AI Studio is unavailable (HTTP 500 INTERNAL)."


async def test_from_options_builds_a_working_provider() -> None:
    provider = GeminiProvider.from_options({"api_key": KEY, "max_retries": 0, "timeout_s": 30})
    assert isinstance(provider, ImageProvider)
    assert KEY not in repr(provider._options)
    await provider.aclose()


def test_registered_through_the_entry_point_group() -> None:
    [entry] = entry_points(group="imagegate.providers", name="gemini")
    assert entry.load() is GeminiProvider


#: Google's knobs as a caller writes them; the upstream must get exactly these back.
GOOGLE_KNOBS = {
    "safetySettings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"},
        {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"},
    ],
    "generationConfig": {
        "topP": 0.85,
        "topK": 32,
        "maxOutputTokens": 512,
        "stopSequences": ["END", "\n\n"],
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.25,
        "mediaResolution": "MEDIA_RESOLUTION_HIGH",
    },
}
KNOB_FIELDS = tuple(GOOGLE_KNOBS["generationConfig"])  # type: ignore[arg-type]


def knobbed_spec() -> JobSpec:
    """A job as the Gemini dialect makes it from a request that sets every Google knob."""
    body = {"contents": [{"parts": [{"text": "a red fox"}]}], **GOOGLE_KNOBS}
    return gemini_spec(parse_generate_request(body), NANO_BANANA)


async def test_safety_settings_and_sampling_reach_google_as_sent(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, PRO_GROUNDED))
    await generate(provider, knobbed_spec())
    body = upstream.body()
    assert body["safetySettings"] == GOOGLE_KNOBS["safetySettings"]
    config = body["generationConfig"]
    assert {k: config[k] for k in KNOB_FIELDS} == GOOGLE_KNOBS["generationConfig"]


async def test_unset_knobs_are_not_sent(gemini: Factory) -> None:
    provider, upstream, _ = gemini(reply(200, PRO_GROUNDED))
    await generate(provider, spec())
    assert "safetySettings" not in upstream.body()
    assert not set(KNOB_FIELDS) & set(upstream.body()["generationConfig"])
