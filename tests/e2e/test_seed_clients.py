"""Clients written from the seeds' own examples, unchanged: Lumenfall's base URL and answers, OpenRouter's lists."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from .images import open_bytes, png_bytes, solid
from .server import Server

pytestmark = pytest.mark.e2e


def test_lumenfall_python_example_verbatim(server: Server) -> None:
    client = openai.OpenAI(api_key=server.key, base_url=f"{server.url}/openai/v1", max_retries=0)
    response = client.images.generate(
        model="gemini-2.5-flash-image", prompt="A serene mountain landscape at sunset", size="1024x1024"
    )
    assert response.data is not None and response.data[0].url  # no response_format: a URL, as the seed reads it
    assert response.data[0].revised_prompt == "A serene mountain landscape at sunset"
    assert open_bytes(httpx.get(response.data[0].url, timeout=30).content).size == (1024, 1024)
    edited = client.images.edit(
        model="gemini-2.5-flash-image",
        image=("source.png", png_bytes(solid((10, 10, 200))), "image/png"),
        prompt="Add a starry night sky to this image",
        size="1024x1024",
    )
    assert edited.data is not None and edited.data[0].url and edited.data[0].revised_prompt
    task = httpx.post(
        f"{server.url}/openai/v1/async/images/generations",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"model": "gemini-2.5-flash-image", "prompt": "x"},
        timeout=30,
    )
    assert task.status_code in (200, 202), task.text
    assert client.models.list().data[0].id == "gemini-2.5-flash-image"
    missing = httpx.get(f"{server.url}/openai/v1/nothing", headers={"Authorization": f"Bearer {server.key}"})
    assert missing.status_code == 404 and "error" in missing.json() and "message" in missing.json()["error"]


def test_default_response_format_is_configurable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .server import start_server

    inline = start_server(
        tmp_path / "inline",
        env={
            "IMAGEGATE_OPENAI_IMAGES__DEFAULT_RESPONSE_FORMAT": "b64_json",
            "IMAGEGATE_OPENAI_IMAGES__REVISED_PROMPT": "false",
        },
    )
    try:
        client = openai.OpenAI(api_key=inline.key, base_url=f"{inline.url}/v1", max_retries=0)
        response = client.images.generate(model="gemini-2.5-flash-image", prompt="a cat")
        assert response.data is not None and response.data[0].b64_json and response.data[0].url is None
        assert response.data[0].revised_prompt is None
    finally:
        inline.stop()


def test_openrouter_model_list_names_image_output(server: Server) -> None:
    response = httpx.get(f"{server.url}/api/v1/models", headers={"Authorization": f"Bearer {server.key}"})
    assert response.status_code == 200
    first = response.json()["data"][0]
    assert "image" in first["architecture"]["output_modalities"]


def test_openai_images_stream_sends_the_completed_event(server: Server) -> None:
    client = openai.OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0)
    stream = client.images.generate(
        model="gemini-2.5-flash-image", prompt="a fox", stream=True, partial_images=2, size="1536x1024", n=2
    )
    events = list(stream)
    assert [e.type for e in events] == ["image_generation.completed"] * 2  # no partial images from this model
    for done in events:
        assert done.size == "1248x832" and done.usage.output_tokens >= 1290  # type: ignore[union-attr]
        assert open_bytes(base64.b64decode(done.b64_json)).size == (1248, 832)  # type: ignore[union-attr]
    edit = client.images.edit(
        model="gemini-2.5-flash-image",
        image=("a.png", png_bytes(solid((200, 10, 10))), "image/png"),
        prompt="make it blue",
        stream=True,
    )
    assert [e.type for e in edit] == ["image_edit.completed"]
    refused = client.images.generate(model="gemini-2.5-flash-image", prompt="emulate:image_safety", stream=True)
    with pytest.raises(openai.APIError) as failed:
        list(refused)
    assert "safety" in str(failed.value.message)
    with pytest.raises(openai.BadRequestError) as url:
        client.images.generate(model="gemini-2.5-flash-image", prompt="x", stream=True, response_format="url")
    assert url.value.param == "response_format"
