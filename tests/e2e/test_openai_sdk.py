"""The official openai SDK, unmodified, against a real imagegate on loopback (emulator provider)."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest

from .images import colour_share, content_area, open_bytes, png_bytes, solid
from .server import Server

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"


@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(api_key=server.key, base_url=f"{server.url}/v1", max_retries=0)


def test_generate_two_as_base64(oai: openai.OpenAI) -> None:
    result = oai.images.generate(model=MODEL, prompt="a lighthouse", n=2, size="1792x1024", response_format="b64_json")
    assert len(result.data) == 2
    images = [open_bytes(base64.b64decode(item.b64_json or "")) for item in result.data]
    assert all(image.size == (1344, 768) for image in images)  # 1792x1024 -> 16:9
    assert images[0].tobytes() != images[1].tobytes()
    assert result.created > 0 and result.size == "1344x768"
    assert result.usage is not None and result.usage.output_tokens_details.image_tokens == 2 * 1290  # type: ignore[union-attr]


def test_generate_as_urls_served_with_the_right_headers(oai: openai.OpenAI) -> None:
    result = oai.images.generate(
        model="nano-banana", prompt="a kite", n=2, response_format="url", output_format="jpeg", output_compression=80
    )
    for item in result.data:
        assert item.url and "/v1/files/" in item.url and "signature=" in item.url
        response = httpx.get(item.url, timeout=30)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "max-age" in response.headers["cache-control"]
        assert open_bytes(response.content).size == (1024, 1024)
        tampered = item.url.replace("signature=", "signature=x")
        assert httpx.get(tampered, timeout=30).status_code == 403


def test_aiml_extensions(server: Server) -> None:
    response = httpx.post(
        f"{server.url}/v1/images/generations",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"model": "google/gemini-2.5-flash-image", "prompt": "a fox", "num_images": 2, "aspect_ratio": "9:16"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 2 and body["meta"]["usage"]["tokens_used"] == body["usage"]["total_tokens"]
    # No response_format: a URL, as the AI/ML API documents (and OpenAI's Images API defaults to).
    assert open_bytes(httpx.get(body["data"][0]["url"], timeout=30).content).size == (768, 1344)


def test_edit_with_three_images(oai: openai.OpenAI) -> None:
    files = [
        ("red.png", png_bytes(solid((230, 20, 20))), "image/png"),
        ("green.png", png_bytes(solid((20, 200, 20))), "image/png"),
        ("blue", png_bytes(solid((20, 20, 230))), "application/octet-stream"),
    ]
    result = oai.images.edit(model=MODEL, image=files, prompt="side by side", response_format="b64_json")
    composed = open_bytes(base64.b64decode(result.data[0].b64_json or ""))
    for check in (
        lambda p: p[0] > 180 and p[1] < 80 and p[2] < 80,
        lambda p: p[1] > 150 and p[0] < 80 and p[2] < 80,
        lambda p: p[2] > 180 and p[0] < 80 and p[1] < 80,
    ):
        assert colour_share(content_area(composed), check) > 0.03


def test_edit_single_image_keeps_its_ratio(oai: openai.OpenAI) -> None:
    source = io.BytesIO(png_bytes(solid((200, 30, 30), (1600, 900))))
    source.name = "photo.png"
    result = oai.images.edit(model=MODEL, image=source, prompt="make it blue", response_format="b64_json")
    edited = open_bytes(base64.b64decode(result.data[0].b64_json or ""))
    assert edited.size == (1344, 768)
    assert colour_share(content_area(edited), lambda p: p[2] > p[0] + 40) > 0.5


def test_errors_raise_the_sdks_exceptions(server: Server, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="ig_wrong", base_url=f"{server.url}/v1", max_retries=0).images.generate(
            model=MODEL, prompt="x"
        )
    with pytest.raises(openai.NotFoundError):
        oai.images.generate(model="dall-e-9", prompt="x")
    with pytest.raises(openai.BadRequestError) as bad_size:
        oai.images.generate(model=MODEL, prompt="x", size="huge")  # type: ignore[arg-type]
    assert bad_size.value.param == "size"
    with pytest.raises(openai.BadRequestError) as transparent:
        oai.images.generate(model=MODEL, prompt="x", background="transparent")
    assert transparent.value.param == "background"
    with pytest.raises(openai.BadRequestError) as mask:
        oai.images.edit(
            model=MODEL,
            image=("a.png", png_bytes(solid((1, 1, 1))), "image/png"),
            mask=("m.png", png_bytes(solid((0, 0, 0))), "image/png"),
            prompt="x",
        )
    assert mask.value.param == "mask"
    with pytest.raises(openai.BadRequestError) as refused:
        oai.images.generate(model=MODEL, prompt="emulate:image_safety")
    assert refused.value.code == "moderation_blocked"
    with pytest.raises(openai.RateLimitError):
        oai.images.generate(model=MODEL, prompt="emulate:rate_limited")
    with pytest.raises(openai.InternalServerError) as down:
        oai.images.generate(model=MODEL, prompt="emulate:unavailable")
    assert down.value.status_code == 503


def test_json_edit_with_an_image_url(server: Server, oai: openai.OpenAI) -> None:
    first = oai.images.generate(model=MODEL, prompt="a red door", size="1024x1536", response_format="url")
    response = httpx.post(
        f"{server.url}/v1/images/edits",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"model": MODEL, "prompt": "make it greyscale", "image": first.data[0].url, "response_format": "b64_json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    edited = open_bytes(base64.b64decode(response.json()["data"][0]["b64_json"]))
    assert edited.size == (832, 1248)  # 2:3, from the fetched image
    assert colour_share(content_area(edited), lambda p: max(p) - min(p) > 12) < 0.01


def test_image_urls_into_private_networks_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .server import start_server

    guarded = start_server(tmp_path / "guarded")  # the default: no network allowed beyond the public internet
    try:
        for url in ("http://127.0.0.1:9/x.png", "http://169.254.169.254/latest/meta-data", "file:///etc/passwd"):
            response = httpx.post(
                f"{guarded.url}/v1/images/edits",
                headers={"Authorization": f"Bearer {guarded.key}"},
                json={"model": MODEL, "prompt": "x", "image": url},
                timeout=30,
            )
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == "image"
    finally:
        guarded.stop()
