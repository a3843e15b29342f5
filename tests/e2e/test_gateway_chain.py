"""imagegate in front of imagegate: the ``gemini`` provider of one server talks to a second one over loopback.

The front server has no emulator; every image, refusal and error it returns came through the real
Gemini wire protocol from the back server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .images import open_bytes, solid
from .server import Server, start_server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"


@pytest.fixture(scope="module")
def front(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("imagegate-front")
    config = home / "front.toml"
    config.write_text(
        "\n".join(
            [
                "[[deployments]]",
                'name = "google"',
                'provider = "gemini"',
                "[deployments.options]",
                f'api_key = "{server.key}"',
                f'base_url = "{server.url}"',
                "max_retries = 0",
            ]
        )
    )
    running = start_server(home, config=Path(config))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def front_client(front: Server) -> genai.Client:
    return genai_client(front)


def test_front_banner_names_the_gemini_deployment(front: Server) -> None:
    output = front.output()
    assert "google (gemini)" in output and "emulator" not in output.split("providers")[1].splitlines()[0]


def test_image_passes_through_with_size_and_usage(front_client: genai.Client, client: genai.Client) -> None:
    config = types.GenerateContentConfig(image_config=types.ImageConfig(aspect_ratio="21:9"))
    through = front_client.models.generate_content(model=MODEL, contents="a desert road", config=config)
    direct = client.models.generate_content(model=MODEL, contents="a desert road", config=config)
    image = next(p.inline_data.data for p in through.candidates[0].content.parts if p.inline_data)  # type: ignore[index, union-attr]
    assert open_bytes(image).size == (1536, 672)  # type: ignore[arg-type]
    assert "emulator" in (through.text or "")  # the back server's text, carried through
    assert through.usage_metadata.prompt_token_count == direct.usage_metadata.prompt_token_count  # type: ignore[union-attr]
    assert through.usage_metadata.candidates_token_count == direct.usage_metadata.candidates_token_count  # type: ignore[union-attr]


def test_edit_passes_the_image_upstream(front_client: genai.Client) -> None:
    response = front_client.models.generate_content(
        model=MODEL, contents=[solid((10, 10, 200), (1200, 900)), "a frame"]
    )
    image = next(p.inline_data.data for p in response.candidates[0].content.parts if p.inline_data)  # type: ignore[index, union-attr]
    assert open_bytes(image).size == (1184, 864)  # type: ignore[arg-type]  # 4:3 from the input


def test_refusals_pass_through(front_client: genai.Client) -> None:
    safety = front_client.models.generate_content(model=MODEL, contents="emulate:image_safety")
    assert safety.candidates[0].finish_reason == types.FinishReason.IMAGE_SAFETY  # type: ignore[index]
    blocked = front_client.models.generate_content(model=MODEL, contents="emulate:blocked")
    assert not blocked.candidates and blocked.prompt_feedback.block_reason is not None  # type: ignore[union-attr]


def test_upstream_errors_map_back_to_gemini_errors(front_client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as limited:
        front_client.models.generate_content(model=MODEL, contents="emulate:rate_limited")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ServerError) as down:
        front_client.models.generate_content(model=MODEL, contents="emulate:unavailable")
    assert down.value.code == 503


def test_wrong_upstream_key_is_the_operators_problem(server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("imagegate-badkey")
    config = home / "bad.toml"
    config.write_text(
        f'[[deployments]]\nname = "google"\nprovider = "gemini"\n[deployments.options]\n'
        f'api_key = "ig_wrong"\nbase_url = "{server.url}"\nmax_retries = 0\n'
    )
    bad = start_server(home, config=config)
    try:
        bad_client = genai_client(bad)  # keep a reference: a collected Client closes its HTTP client
        with pytest.raises(errors.ServerError) as caught:
            bad_client.models.generate_content(model=MODEL, contents="x")
        assert caught.value.code == 503 and "ig_wrong" not in (caught.value.message or "")
    finally:
        bad.stop()
