"""Input images above Google's 7 MB inline limit are re-encoded to fit before the AI Studio and Vertex providers
send them; smaller ones travel byte for byte. ``imaging.shrink_to_fit`` on its own: type, transparency, size."""

from __future__ import annotations

import base64
import io
import json
import random
from typing import Any

import httpx
import pytest
from PIL import Image

from imagegate.core.capabilities import NANO_BANANA
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn
from imagegate.errors import InvalidImage
from imagegate.imaging import probe, shrink_to_fit
from imagegate.providers.gemini import GeminiOptions, GeminiProvider
from imagegate.providers.inline import GOOGLE_INLINE_IMAGE_BYTES, fit_inline_images
from imagegate.providers.vertex import VertexOptions, VertexProvider

MODEL = "gemini-2.5-flash-image"


def noise(width: int, height: int, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """Random pixels: they do not compress, so the file is as large as its pixels make it."""
    pixels = random.Random(width * height).randbytes(width * height * len(mode))
    out = io.BytesIO()
    Image.frombytes(mode, (width, height), pixels).save(out, format=fmt)
    return out.getvalue()


BIG = noise(1800, 1500)  # ~8.1 MB of PNG: over Google's inline limit, under imagegate's 20 MB
SMALL = noise(64, 48)


def answer() -> dict[str, Any]:
    image = base64.b64encode(noise(32, 32)).decode()
    part = {"inlineData": {"mimeType": "image/png", "data": image}}
    return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}]}


def edit(*images: bytes) -> JobSpec:
    parts = (*(ImageInput.from_bytes(data) for data in images), "make it blue")
    return JobSpec(model=MODEL, turns=(Turn(Role.USER, parts),))


def sent_images(request: httpx.Request) -> list[bytes]:
    parts = json.loads(request.content)["contents"][0]["parts"]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


@pytest.mark.parametrize("upstream", ["ai-studio", "vertex"])
async def test_an_input_over_seven_megabytes_is_sent_within_it_and_a_small_one_unchanged(upstream: str) -> None:
    assert len(BIG) > GOOGLE_INLINE_IMAGE_BYTES
    requests: list[httpx.Request] = []

    def google(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=answer())

    async with httpx.AsyncClient(transport=httpx.MockTransport(google)) as client:
        provider: GeminiProvider | VertexProvider
        if upstream == "ai-studio":
            provider = GeminiProvider(GeminiOptions(api_key="k"), client=client)
        else:
            provider = VertexProvider(VertexOptions(api_key="k"), client=client)
        generation = await provider.generate(edit(BIG, SMALL), NANO_BANANA, MODEL)
    assert generation.images
    big, small = sent_images(requests[0])
    assert len(big) <= GOOGLE_INLINE_IMAGE_BYTES
    assert probe(big) == (1800, 1500)  # the quality gave way first, not the pixels
    assert json.loads(requests[0].content)["contents"][0]["parts"][0]["inlineData"]["mimeType"] == "image/jpeg"
    assert small == SMALL


async def test_the_limit_is_a_deployment_option() -> None:
    spec = edit(SMALL)
    assert await fit_inline_images(spec, 10_000_000) is spec  # nothing to do: the very same job
    fitted = await fit_inline_images(edit(BIG), 2_000_000)
    [image] = fitted.context_images
    assert len(image.data) <= 2_000_000 and image.mime_type == "image/jpeg"
    with pytest.raises(ValueError, match="max_inline_image_bytes"):
        GeminiOptions(api_key="k", max_inline_image_bytes=10)


def test_pixels_shrink_when_quality_alone_is_not_enough() -> None:
    data, mime = shrink_to_fit(BIG, 300_000)
    width, height = probe(data)
    assert len(data) <= 300_000 and mime == "image/jpeg"
    assert width < 1800 and abs(width / height - 1800 / 1500) < 0.01  # the same picture, smaller


def test_transparency_is_kept_as_webp() -> None:
    data, mime = shrink_to_fit(noise(600, 600, mode="RGBA"), 400_000)
    assert mime == "image/webp" and len(data) <= 400_000
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGBA"


def test_an_image_within_the_limit_passes_untouched() -> None:
    assert shrink_to_fit(SMALL, len(SMALL)) == (SMALL, "image/png")


def test_damaged_bytes_are_the_requests_fault() -> None:
    with pytest.raises(InvalidImage):
        shrink_to_fit(b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 10)
