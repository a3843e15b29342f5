"""A real ``imagegate serve`` with a local model configured as in the README answers Gemini and OpenAI calls."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from conftest import Checkpoints
from imagegate.providers.local.provenance import DIGITAL_SOURCE_TYPE, read_provenance

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for the e2e server helper
from e2e.server import Server, start_server

pytestmark = pytest.mark.e2e

CONFIG = """
[[models]]
id = "sd-turbo"
display_name = "SD-Turbo (local)"
aliases = ["turbo"]
max_input_images = 1
price_per_image = "0.002"
price_per_million_input_tokens = "0"

[[deployments]]
name = "local-cpu"
provider = "diffusers"
models = {{ "sd-turbo" = "{source}" }}
options = {{ devices = ["cpu"], resolution = 64, cpu_threads = 1 }}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, checkpoints: Checkpoints) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("local-server")
    config = home / "imagegate.toml"
    config.write_text(CONFIG.format(source=checkpoints.sd_turbo))
    running = start_server(home, config=config, env={"HF_HUB_OFFLINE": "1"})
    yield running
    running.stop()


def test_gemini_generate_content_runs_the_local_model(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1beta/models/sd-turbo:generateContent",
        headers={"x-goog-api-key": server.key},
        json={
            "contents": [{"parts": [{"text": "a red bicycle"}]}],
            "generationConfig": {"imageConfig": {"aspectRatio": "16:9"}, "seed": 4},
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    parts = response.json()["candidates"][0]["content"]["parts"]
    data = base64.b64decode(next(p["inlineData"]["data"] for p in parts if "inlineData" in p))
    assert Image.open(io.BytesIO(data)).size == (88, 48)  # 16:9 at about 64² on SD's 8-pixel grid
    assert DIGITAL_SOURCE_TYPE in read_provenance(data)["xmp"]


def test_openai_edit_with_two_images_is_refused_with_the_models_limit(server: Server) -> None:
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(png, format="PNG")
    files = [("image[]", ("a.png", png.getvalue(), "image/png")), ("image[]", ("b.png", png.getvalue(), "image/png"))]
    response = httpx.post(
        f"{server.url}/v1/images/edits",
        headers={"authorization": f"Bearer {server.key}"},
        data={"model": "turbo", "prompt": "merge them"},
        files=files,
        timeout=120,
    )
    assert response.status_code == 400, response.text
    assert "1" in response.json()["error"]["message"]


def test_openai_diffusion_knobs_reach_the_local_model_or_are_refused_by_name(server: Server) -> None:
    headers = {"authorization": f"Bearer {server.key}"}
    body = {"model": "sd-turbo", "prompt": "a red bicycle", "response_format": "b64_json", "seed": 3}
    made = httpx.post(
        f"{server.url}/v1/images/generations",
        headers=headers,
        json={**body, "num_inference_steps": 3, "guidance_scale": 1.5},
        timeout=120,
    )
    assert made.status_code == 200, made.text
    models = httpx.get(f"{server.url}/v1/playground/models", headers=headers, timeout=10).json()["data"]
    turbo = next(m for m in models if m["id"] == "sd-turbo")
    assert (turbo["diffusion"], turbo["max_steps"]) == (["guidance", "steps"], 50)
    for extra, field, words in [
        ({"negative_prompt": "blurry"}, "negative_prompt", "takes no negative prompt"),
        ({"num_inference_steps": 51}, "num_inference_steps", "at most 50 steps"),
    ]:
        refused = httpx.post(f"{server.url}/v1/images/generations", headers=headers, json={**body, **extra}, timeout=30)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["param"] == field and words in error["message"], error
