"""Requests and pictures for the diffusers provider's tests."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Role, Turn

MODEL = ModelSpec(id="local-test", display_name="Local test model", max_input_images=3)


def ask(*parts: str | ImageInput, **fields: Any) -> JobSpec:
    return JobSpec(model=MODEL.id, turns=(Turn(Role.USER, parts),), **fields)


def picture(size: tuple[int, int], colour: tuple[int, int, int]) -> ImageInput:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return ImageInput.from_bytes(buf.getvalue())


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.copy()
