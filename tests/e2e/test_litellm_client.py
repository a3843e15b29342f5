"""LiteLLM as a client: its OpenAI image route, its OpenRouter chat route and its Gemini route, each pointed at
imagegate with ``api_base`` as its docs say, against a real server over loopback."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest

from .images import colour_share, open_bytes, png_bytes, solid
from .server import Server

pytestmark = pytest.mark.e2e

# LiteLLM fetches its model price list from GitHub at import unless told to use the copy it ships with.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")


def _data_url_bytes(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header.startswith("data:image/")
    return base64.b64decode(payload)


def test_openai_image_generation(server: Server) -> None:
    response = litellm.image_generation(
        model="openai/gemini-2.5-flash-image",
        prompt="a lighthouse",
        size="1792x1024",
        api_base=f"{server.url}/v1",
        api_key=server.key,
    )
    [image] = response.data
    assert image.url and image.url.startswith(f"{server.url}/v1/files/")  # the Images default: a signed link
    assert open_bytes(httpx.get(image.url, timeout=30).content).size == (1344, 768)  # 16:9


def test_openai_image_generation_as_base64(server: Server) -> None:
    response = litellm.image_generation(
        model="openai/gemini-2.5-flash-image",
        prompt="two lighthouses",
        n=2,
        # LiteLLM refuses response_format for a model it does not know; extra_body carries it as sent.
        extra_body={"response_format": "b64_json"},
        api_base=f"{server.url}/openai/v1",  # Lumenfall's prefix works the same
        api_key=server.key,
    )
    assert len(response.data) == 2
    assert all(open_bytes(base64.b64decode(item.b64_json)).size == (1024, 1024) for item in response.data)


def test_openrouter_chat_with_image_output_and_input(server: Server) -> None:
    red = "data:image/png;base64," + base64.b64encode(png_bytes(solid((220, 20, 20)))).decode()
    response = litellm.completion(
        model="openrouter/google/gemini-2.5-flash-image",
        api_base=f"{server.url}/api/v1",
        api_key=server.key,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "this, wider"}, {"type": "image_url", "image_url": {"url": red}}],
            }
        ],
        modalities=["image", "text"],
        image_config={"aspect_ratio": "16:9"},
    )
    message = response.choices[0].message
    assert "imagegate emulator" in (message.content or "")
    images: list[Any] = message.images or []
    assert len(images) == 1
    picture = open_bytes(_data_url_bytes(images[0]["image_url"]["url"]))
    assert (
        picture.size == (1344, 768) and colour_share(picture, lambda p: p[0] > 180 and p[1] < 80) > 0.2
    )  # the input was seen
    assert response.usage.completion_tokens >= 1290  # one image's output tokens


def test_openrouter_chat_streaming(server: Server) -> None:
    chunks = list(
        litellm.completion(
            model="openrouter/google/gemini-2.5-flash-image",
            api_base=f"{server.url}/api/v1",
            api_key=server.key,
            messages=[{"role": "user", "content": "a boat"}],
            modalities=["image", "text"],
            stream=True,
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert "imagegate emulator" in text
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_gemini_route_chat_and_image_generation(server: Server) -> None:
    base = f"{server.url}/v1beta"  # LiteLLM's Gemini route appends /models/{model}:generateContent
    response = litellm.completion(
        model="gemini/gemini-2.5-flash-image",
        api_base=base,
        api_key=server.key,
        messages=[{"role": "user", "content": "a kite"}],
        modalities=["image", "text"],
    )
    message = response.choices[0].message
    [image] = message.images
    assert open_bytes(_data_url_bytes(image["image_url"]["url"])).size == (1024, 1024)

    generated = litellm.image_generation(
        model="gemini/gemini-2.5-flash-image", prompt="a wide kite", size="1792x1024", api_base=base, api_key=server.key
    )
    [item] = generated.data
    assert open_bytes(base64.b64decode(item.b64_json)).size == (1344, 768)
    assert generated.usage.output_tokens_details["image_tokens"] == 1290


def test_errors_come_back_as_litellm_exceptions(server: Server) -> None:
    with pytest.raises(litellm.BadRequestError) as refused:
        litellm.image_generation(
            model="openai/gemini-2.5-flash-image",
            prompt="x",
            size="7x3000",
            api_base=f"{server.url}/v1",
            api_key=server.key,
        )
    assert "size" in str(refused.value)
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(
            model="openrouter/google/gemini-2.5-flash-image",
            api_base=f"{server.url}/api/v1",
            api_key="sk-wrong",
            messages=[{"role": "user", "content": "x"}],
            modalities=["image", "text"],
        )
