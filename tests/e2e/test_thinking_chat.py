"""Nano Banana Pro's thinking and grounding through imagegate, end to end: the official google-genai SDK's
``client.chats`` against an imagegate server whose ``gemini`` deployment is a Google-shaped upstream on loopback.

Three turns of a chat: every answer's thought parts come back (includeThoughts), and every thoughtSignature the
upstream issued travels from imagegate to the SDK, back into the next request's history, and through imagegate
to the upstream again, byte for byte. Search grounding goes upstream and its groundingMetadata comes back; a
model without grounding refuses the tool with a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .fake_gemini import GROUNDING, FakeGemini
from .server import Server, start_server

pytestmark = pytest.mark.e2e

PRO = "gemini-3-pro-image"


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGemini]:
    upstream = FakeGemini("google").start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway(google: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("imagegate-thinking")
    config = home / "imagegate.toml"
    config.write_text(
        f"""
[[deployments]]
name = "google"
provider = "gemini"
models = {{ "{PRO}" = "gemini-3-pro-image-preview" }}
[deployments.options]
api_key = "upstream-key"
base_url = "{google.url}"
max_retries = 0
"""
    )
    running = start_server(home, config=Path(config))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(gateway: Server) -> genai.Client:
    return genai_client(gateway)


def _sent_model_turns(body: dict[str, object]) -> list[list[dict[str, object]]]:
    contents = body["contents"]
    assert isinstance(contents, list)
    return [c["parts"] for c in contents if c.get("role") == "model"]


def test_three_turn_chat_carries_thoughts_and_signatures(client: genai.Client, google: FakeGemini) -> None:
    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"], thinking_config=types.ThinkingConfig(include_thoughts=True)
    )
    chat = client.chats.create(model=PRO, config=config)
    start = len(google.bodies)
    prompts = ["a lighthouse at dusk", "add a red boat", "make it night"]
    for turn, prompt in enumerate(prompts):
        response = chat.send_message(prompt)
        parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
        thoughts = [p for p in parts if p.thought]  # type: ignore[union-attr]
        answer = [p for p in parts if not p.thought]  # type: ignore[union-attr]
        assert thoughts and thoughts[0].text and thoughts[1].inline_data  # text and an interim image
        issued_text, issued_image = google.issued[-1]
        assert [p.thought_signature for p in answer] == [issued_text, issued_image]
        assert response.text == "from google"  # the SDK's text leaves thoughts out
        assert response.usage_metadata.thoughts_token_count == 200  # type: ignore[union-attr]
        # what imagegate sent upstream for this turn: every earlier model turn with its signatures, in place
        sent = _sent_model_turns(google.bodies[start + turn])
        assert len(sent) == turn
        for earlier, parts_sent in enumerate(sent):
            text_sig, image_sig = google.issued[-1 - turn + earlier]
            signed = [p for p in parts_sent if "thoughtSignature" in p]
            assert [_bytes(p["thoughtSignature"]) for p in signed] == [text_sig, image_sig]
            assert [p.get("thought", False) for p in parts_sent] == [True, True, False, False]
        assert google.bodies[start + turn]["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}


def test_thoughts_are_hidden_unless_asked_but_signatures_still_come(client: genai.Client, google: FakeGemini) -> None:
    response = client.models.generate_content(model=PRO, contents="a lighthouse")
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert not any(p.thought for p in parts)  # type: ignore[union-attr]
    assert [p.thought_signature for p in parts] == list(google.issued[-1])  # type: ignore[union-attr]
    assert "thinkingConfig" not in google.bodies[-1]["generationConfig"]


def test_search_grounding_goes_upstream_and_its_metadata_comes_back(client: genai.Client, google: FakeGemini) -> None:
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    response = client.models.generate_content(model=PRO, contents="today's weather in Paris as a chart", config=config)
    assert google.bodies[-1]["tools"] == [{"googleSearch": {}}]
    grounding = response.candidates[0].grounding_metadata  # type: ignore[index]
    assert grounding is not None
    assert grounding.web_search_queries == GROUNDING["webSearchQueries"]
    assert grounding.search_entry_point.rendered_content == GROUNDING["searchEntryPoint"]["renderedContent"]  # type: ignore[union-attr, index]
    assert grounding.grounding_chunks[0].web.title == "example.org"  # type: ignore[index, union-attr]


def test_a_model_without_grounding_refuses_the_tool(client: genai.Client, google: FakeGemini) -> None:
    calls = google.calls
    config = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash-image", contents="weather", config=config)
    assert caught.value.code == 400 and "tools" in (caught.value.message or "")
    assert google.calls == calls  # refused before anything went upstream


def _bytes(value: object) -> bytes:
    import base64

    assert isinstance(value, str)
    return base64.b64decode(value)


def test_the_emulator_thinks_for_pro_and_refuses_search(server: Server) -> None:
    emulated = genai_client(server)
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    response = emulated.models.generate_content(model=PRO, contents="a lighthouse", config=config)
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    assert parts[0].thought and "imagegate emulator" in (parts[0].text or "")  # type: ignore[index]
    assert all(p.thought_signature for p in parts[1:])  # type: ignore[index, union-attr]
    search = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    with pytest.raises(errors.ClientError) as caught:
        emulated.models.generate_content(model=PRO, contents="today's weather", config=search)
    assert caught.value.code == 400 and "grounding" in (caught.value.message or "")
