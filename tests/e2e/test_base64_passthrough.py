"""An image's base64 goes back to callers canonical, whether passed on from the upstream or encoded afresh.

An upstream text whose last character carries bits past the data (which imagegate's decoder ignores) must not
be passed on: google-genai's decoder refuses such an answer. The passing on itself is unobservable on the wire
by design (the same bytes); tests/providers/test_blobs.py and tests/services/test_files.py see it.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from .conftest import genai_client
from .fake_gemini import FakeGemini
from .server import Server, start_server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"


def _noisy_png() -> bytes:
    """A PNG past the size whose base64 is lifted out of the answer (16 KiB), with padded base64."""
    for side in range(96, 140):
        sink = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(sink, "PNG")
        if len(sink.getvalue()) % 3 == 1:  # "==" padding: the last character has four unused bits
            return sink.getvalue()
    raise AssertionError("no PNG size gave padded base64")


PNG = _noisy_png()
CANONICAL = base64.b64encode(PNG).decode()
# the same bytes to any decoder, but not what an encoder writes: the last character's ignored bits set
ODD = CANONICAL[:-3] + chr(ord(CANONICAL[-3]) + 1) + "=="


@pytest.fixture(scope="module", params=["canonical", "odd"])
def google(request: pytest.FixtureRequest) -> Iterator[FakeGemini]:
    upstream = FakeGemini("google").start()
    upstream.image_b64 = CANONICAL if request.param == "canonical" else ODD
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def gateway(google: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("imagegate-passthrough")
    config = home / "imagegate.toml"
    config.write_text(
        f"""
[[deployments]]
name = "google"
provider = "gemini"
[deployments.options]
api_key = "upstream-key"
base_url = "{google.url}"
max_retries = 0
"""
    )
    running = start_server(home, config=Path(config))
    yield running
    running.stop()


def _post(gateway: Server, action: str, body: dict[str, object]) -> httpx.Response:
    url = f"{gateway.url}/v1beta/models/{MODEL}:{action}"
    return httpx.post(url, json=body, headers={"x-goog-api-key": gateway.key}, timeout=30)


def test_the_odd_text_decodes_to_the_same_image() -> None:
    assert ODD != CANONICAL and base64.b64decode(ODD) == PNG


def test_generate_content_answers_canonical_base64(gateway: Server) -> None:
    answer = _post(gateway, "generateContent", {"contents": [{"parts": [{"text": "noise"}]}]})
    assert answer.status_code == 200
    assert int(answer.headers["content-length"]) == len(answer.content)
    (image,) = [p for p in answer.json()["candidates"][0]["content"]["parts"] if "inlineData" in p]
    assert image["inlineData"]["data"] == CANONICAL


def test_the_stream_answers_it_too(gateway: Server) -> None:
    answer = _post(gateway, "streamGenerateContent?alt=sse", {"contents": [{"parts": [{"text": "noise"}]}]})
    events = [json.loads(line[len("data: ") :]) for line in answer.text.split("\r\n\r\n") if line]
    datas = [
        p["inlineData"]["data"] for e in events for p in e["candidates"][0]["content"]["parts"] if "inlineData" in p
    ]
    assert datas == [CANONICAL]


def test_the_sdk_reads_the_same_image(gateway: Server) -> None:
    client = genai_client(gateway)  # kept in a name: a client collected mid-call closes its connections
    answer = client.models.generate_content(model=MODEL, contents="noise")
    assert answer.candidates and answer.candidates[0].content and answer.candidates[0].content.parts
    images = [p.inline_data.data for p in answer.candidates[0].content.parts if p.inline_data]
    assert images == [PNG]
