"""The Nano Banana family through the official SDKs against a real server (emulator): Google's exact size for every
model x ratio x resolution, the reference-image limits, OpenAI ``size="2K"``, linkmodel ``quality``, what a 4K
image costs and counts, and a deployment without 4K skipped by the router."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from google import genai
from google.genai import errors, types
from openai import BadRequestError, OpenAI
from PIL import Image

from imagegate.core.catalog import builtin_models

from .conftest import genai_client
from .server import Server, cli, start_server

pytestmark = pytest.mark.e2e

CASES = [(m.id, tier.name, ratio, (w, h)) for m in builtin_models() for tier in m.tiers for ratio, w, h in tier.sizes]


def _size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _png(colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


def _generate(client: genai.Client, model: str, ratio: str, size: str) -> tuple[tuple[int, int], int]:
    response = client.models.generate_content(
        model=model,
        contents="a lighthouse",
        config=types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio=ratio, image_size=size)
        ),
    )
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    [image] = [p.inline_data.data for p in parts if p.inline_data and p.inline_data.data]  # type: ignore[union-attr]
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_tokens_details is not None
    [detail] = [d for d in usage.candidates_tokens_details if d.modality == types.MediaModality.IMAGE]
    return _size_of(image), int(detail.token_count or 0)


def test_every_model_ratio_and_resolution_has_googles_exact_size(client: genai.Client) -> None:
    assert len(CASES) == 10 + 30 + 56  # 2.5: 10 ratios x 1K; Pro: 10 x 3; Nano Banana 2: 14 x 4 (no 9:21)
    models = {m.id: m for m in builtin_models()}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda case: _generate(client, case[0], case[2], case[1]), CASES))
    for (model_id, tier, ratio, expected), (size, tokens) in zip(CASES, results, strict=True):
        assert size == expected, (model_id, tier, ratio)
        assert tokens == models[model_id].output_tokens(tier), (model_id, tier)


def test_a_resolution_suffixed_model_id_means_that_resolution(client: genai.Client) -> None:
    response = client.models.generate_content(model="gemini-3.1-flash-image-preview-2k", contents="a fox")
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    [image] = [p.inline_data.data for p in parts if p.inline_data and p.inline_data.data]  # type: ignore[union-attr]
    assert _size_of(image) == (2048, 2048)


@pytest.mark.parametrize(
    ("model", "accepted", "refused"),
    [("gemini-3-pro-image-preview", 14, 15), ("nano-banana-2", 14, 15), ("gemini-2.5-flash-image", 3, 4)],
)
def test_reference_image_limits(client: genai.Client, model: str, accepted: int, refused: int) -> None:
    image = types.Part.from_bytes(data=_png(), mime_type="image/png")
    ok = client.models.generate_content(model=model, contents=["combine these", *([image] * accepted)])
    assert ok.candidates and ok.candidates[0].content
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=model, contents=["combine these", *([image] * refused)])
    assert info.value.code == 400 and f"at most {accepted} input images" in str(info.value.message)


def test_a_resolution_the_model_lacks_is_a_400_naming_what_it_makes(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as info:
        _generate(client, "gemini-3-pro-image", "1:1", "512")
    assert info.value.code == 400 and "it supports 1K, 2K, 4K" in str(info.value.message)
    with pytest.raises(errors.ClientError) as info:
        _generate(client, "gemini-3.1-flash-image", "1:1", "2k")
    assert info.value.code == 400 and "Unsupported image_size '2k'" in str(info.value.message)


def test_openai_size_2k_and_quality(server: Server) -> None:
    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key)
    result = client.images.generate(
        model="gemini-3-pro-image", prompt="a bridge", size="2K", response_format="b64_json"
    )  # type: ignore[arg-type]
    assert result.data and _size_of(_b64(result.data[0].b64_json)) == (2048, 2048)
    wide = client.images.generate(
        model="nano-banana-2", prompt="a bridge", size="1536x1024", quality="4k", response_format="b64_json"
    )  # type: ignore[arg-type]
    assert wide.data and _size_of(_b64(wide.data[0].b64_json)) == (5056, 3392)  # 3:2 at 4K
    with pytest.raises(BadRequestError) as info:
        client.images.generate(model="nano-banana-2", prompt="a bridge", size="7x3000")  # type: ignore[arg-type]
    assert info.value.body["param"] == "size"  # type: ignore[index]
    with pytest.raises(BadRequestError) as info:
        client.images.generate(model="gemini-3-pro-image", prompt="a bridge", style="vivid")
    assert info.value.body["param"] == "style"  # type: ignore[index]


def _b64(text: str | None) -> bytes:
    import base64

    assert text is not None
    return base64.b64decode(text)


def test_linkmodel_quality(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.key}"}
    created = httpx.post(
        f"{server.url}/api/v1/image-generation",
        headers=headers,
        json={"model": "gemini-3-pro-image", "prompt": "a tower", "quality": "4K", "size": "16x9"},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["data"]["task_id"]
    for _ in range(600):
        task = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", headers=headers, timeout=30).json()["data"]
        if task["status"] != "processing":
            break
        httpx.get(f"{server.url}/healthz", timeout=5)  # a round trip between polls, not a sleep
    assert task["status"] == "succeeded"  # the seed's task schema has no field for the resolution
    image = httpx.get(task["output_images"][0], timeout=30)
    assert _size_of(image.content) == (5504, 3072)
    refused = httpx.post(
        f"{server.url}/api/v1/image-generation",
        headers=headers,
        json={"model": "gemini-2.5-flash-image", "prompt": "a tower", "quality": "4K"},
        timeout=30,
    )
    assert refused.status_code == 400 and "quality must be one of: 1K" in refused.text


def test_a_4k_request_is_charged_and_counted_at_4k(server: Server) -> None:
    admin = json.loads(cli(server.home, "keys", "create", "--name", "family-ops", "--admin", "--json"))["key"]
    created = httpx.post(
        f"{server.url}/v1/admin/keys",
        headers={"Authorization": f"Bearer {admin}"},
        json={"name": "4k-customer", "credits": "1"},
        timeout=30,
    ).json()
    client = genai_client(server, key=created["key"])
    response = client.models.generate_content(
        model="gemini-3-pro-image",
        contents="a harbour",
        config=types.GenerateContentConfig(image_config=types.ImageConfig(image_size="4K")),
    )
    usage = response.usage_metadata
    assert usage is not None and usage.candidates_tokens_details is not None
    image_tokens = [d.token_count for d in usage.candidates_tokens_details if d.modality == types.MediaModality.IMAGE]
    assert image_tokens == [2000]
    account = httpx.get(f"{server.url}/v1/account", headers={"Authorization": f"Bearer {created['key']}"}).json()
    spent = float(account["spent"])  # $0.24 the 4K image, plus a few input tokens at $2/M
    assert 0.24 <= spent < 0.2401 and account["held"] == "0"


NO_4K = """
[[deployments]]
name = "small"
provider = "emulator"
priority = 1
resolutions = ["1K", "2K"]

[[deployments]]
name = "big"
provider = "emulator"
priority = 2
"""


def test_a_deployment_without_4k_is_skipped_and_none_left_is_a_400(tmp_path: Path) -> None:
    config = tmp_path / "imagegate.toml"
    config.write_text(NO_4K)
    running = start_server(tmp_path / "home", config=config)
    try:
        client = OpenAI(base_url=f"{running.url}/v1", api_key=running.key)
        headers = {"Authorization": f"Bearer {running.key}"}

        def served_by(size: str) -> str:
            task = httpx.post(
                f"{running.url}/v1/async/images/generations",
                headers=headers,
                json={"model": "gemini-3-pro-image", "prompt": "a kite", "size": size},
                timeout=30,
            ).json()
            for _ in range(600):
                task = httpx.get(f"{running.url}/v1/tasks/{task['id']}", headers=headers, timeout=30).json()
                if task["status"] not in ("queued", "running"):
                    break
            assert task["status"] == "succeeded", task
            return str(task["deployment"])

        assert served_by("1K") == "small" and served_by("4K") == "big"
        assert client.images.generate(model="gemini-3-pro-image", prompt="x", size="2K").data  # type: ignore[arg-type]
    finally:
        running.stop()
    config.write_text(NO_4K.split('[[deployments]]\nname = "big"')[0])
    running = start_server(tmp_path / "home2", config=config)
    try:
        client = OpenAI(base_url=f"{running.url}/v1", api_key=running.key)
        with pytest.raises(BadRequestError) as info:
            client.images.generate(model="gemini-3-pro-image", prompt="x", size="4K")  # type: ignore[arg-type]
        assert "not served at 4K here; available: 1K, 2K" in str(info.value)
    finally:
        running.stop()
