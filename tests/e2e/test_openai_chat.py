"""Chat Completions with image output, driven by the official openai SDK (as OpenRouter users call it)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from .images import colour_share, content_area, open_bytes, png_bytes, solid
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

MODEL = "google/gemini-2.5-flash-image"
IMAGE_OUT: dict[str, Any] = {"modalities": ["image", "text"]}


@pytest.fixture(scope="module")
def chat(server: Server) -> openai.OpenAI:
    return openai.OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0)


def _images(message: Any) -> list[Any]:
    extra = message.model_extra or {}
    return list(extra.get("images") or [])


def _decode(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header.startswith("data:image/png;base64")
    return base64.b64decode(payload)


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_text_to_image_with_image_config_and_n(chat: openai.OpenAI) -> None:
    completion = chat.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a lighthouse at dusk"}],
        n=2,
        extra_body={**IMAGE_OUT, "image_config": {"aspect_ratio": "16:9"}},
    )
    assert completion.object == "chat.completion" and len(completion.choices) == 2
    pictures = []
    for choice in completion.choices:
        assert choice.finish_reason == "stop" and choice.message.role == "assistant"
        (image,) = _images(choice.message)
        assert image["type"] == "image_url"
        pictures.append(open_bytes(_decode(image["image_url"]["url"])))
    assert all(p.size == (1344, 768) for p in pictures)
    assert pictures[0].tobytes() != pictures[1].tobytes()
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens >= 2 * 1290
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_openrouter_base_url_and_multi_turn_edit(server: Server) -> None:
    router = openai.OpenAI(api_key=server.key, base_url=f"{server.url}/api/v1", max_retries=0)
    red = _data_url(png_bytes(solid((230, 20, 20), (400, 600))))
    first = router.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "You are an illustrator."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "keep this picture"},
                    {"type": "image_url", "image_url": {"url": red}},
                ],
            },
        ],
        extra_body=IMAGE_OUT,
    )
    answer = first.choices[0].message
    (made,) = _images(answer)
    assert open_bytes(_decode(made["image_url"]["url"])).size == (832, 1248)  # 2:3 from the input's shape
    # The answer goes back into the history as OpenRouter returns it; the next turn edits it.
    history: list[Any] = [
        {"role": "user", "content": "keep this picture"},
        {"role": "assistant", "content": answer.content or "", "images": _images(answer)},
        {"role": "user", "content": "make it greyscale"},
    ]
    second = router.chat.completions.create(model=MODEL, messages=history, extra_body=IMAGE_OUT)
    (grey,) = _images(second.choices[0].message)
    edited = open_bytes(_decode(grey["image_url"]["url"]))
    assert colour_share(content_area(edited), lambda p: max(p) - min(p) > 12) < 0.01


def test_streaming_delivers_images_in_deltas(chat: openai.OpenAI) -> None:
    stream = chat.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a kite"}],
        stream=True,
        extra_body={**IMAGE_OUT, "image_config": {"aspect_ratio": "9:16"}},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    images = [img for c in chunks for ch in c.choices for img in (ch.delta.model_extra or {}).get("images") or []]
    assert len(images) == 1 and open_bytes(_decode(images[0]["image_url"]["url"])).size == (768, 1344)
    finishes = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1290


def test_include_usage_ends_the_stream_with_a_usage_chunk(chat: openai.OpenAI) -> None:
    """OpenAI's shape, as the SDK's own usage handling expects: every chunk but a final, choiceless one has none."""
    stream = chat.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "a kite"}],
        stream=True,
        stream_options={"include_usage": True},
        top_p=0.9,
        user="end-user-7",
        extra_body=IMAGE_OUT,
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens >= 1290
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_refusal_and_raw_framing(server: Server) -> None:
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"model": MODEL, "messages": [{"role": "user", "content": "emulate:image_safety"}], "stream": True},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert any('"finish_reason":"content_filter"' in line for line in lines)


def test_refused_inputs_are_openai_400s(chat: openai.OpenAI) -> None:
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": []}, "tools"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "n": 11}, "n"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature"),
    ]
    for body, param in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            chat.chat.completions.create(**body)  # type: ignore[call-overload]
        assert refused.value.param == param, refused.value.body
    with pytest.raises(openai.BadRequestError) as unknown:
        chat.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body={"colour": "red"}
        )
    assert unknown.value.code == "unknown_parameter" and "colour" in str(unknown.value.message)
    with pytest.raises(openai.BadRequestError) as ratio:
        chat.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"image_config": {"aspect_ratio": "7:3"}},
        )
    assert ratio.value.param == "image_config.aspect_ratio"


def test_upstream_failure_is_an_openai_error(chat: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as down:
        chat.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "emulate:unavailable"}])
    assert down.value.status_code == 503
    stream = chat.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "emulate:unavailable"}], stream=True
    )
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the default fetch policy: loopback and private addresses are never fetched."""
    running = start_server(tmp_path_factory.mktemp("guarded"))
    yield running
    running.stop()


def test_own_file_links_are_read_from_the_store_in_every_dialect(guarded: Server) -> None:
    oai = openai.OpenAI(api_key=guarded.key, base_url=f"{guarded.url}/v1", max_retries=0)
    made = oai.images.generate(model=MODEL, prompt="a blue door", size="1024x1536", response_format="url")
    link = made.data[0].url
    assert link and link.startswith("http://127.0.0.1")  # a loopback URL the fetcher would refuse
    completion = oai.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "again"}, {"type": "image_url", "image_url": {"url": link}}],
            }
        ],
        extra_body=IMAGE_OUT,
    )
    (image,) = _images(completion.choices[0].message)
    assert open_bytes(_decode(image["image_url"]["url"])).size == (832, 1248)
    auth = {"Authorization": f"Bearer {guarded.key}"}
    edit = httpx.post(
        f"{guarded.url}/v1/images/edits", headers=auth, json={"model": MODEL, "prompt": "x", "image": link}, timeout=60
    )
    assert edit.status_code == 200, edit.text
    task = httpx.post(
        f"{guarded.url}/api/v1/image-generation",
        headers=auth,
        json={"model": "gemini-2.5-flash-image", "prompt": "x", "images": [link]},
        timeout=60,
    )
    assert task.status_code == 200, task.text
    # A tampered signature is refused as the caller's mistake, and is never fetched either.
    bad = httpx.post(
        f"{guarded.url}/v1/images/edits",
        headers=auth,
        json={"model": MODEL, "prompt": "x", "image": link.replace("signature=", "signature=x")},
        timeout=60,
    )
    assert bad.status_code == 400 and "signature" in bad.json()["error"]["message"]
    # Another key may not use this key's image as an input.
    other = cli(guarded.home, "keys", "create", "--name", "other", "--json", env=guarded.extra_env)
    other_key = json.loads(other)["key"]
    stolen = httpx.post(
        f"{guarded.url}/v1/images/edits",
        headers={"Authorization": f"Bearer {other_key}"},
        json={"model": MODEL, "prompt": "x", "image": link},
        timeout=60,
    )
    assert stolen.status_code == 403, stolen.text
