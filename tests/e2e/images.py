"""Small test pictures made with Pillow, and reading back what the server sent."""

from __future__ import annotations

import io

from PIL import Image


def solid(color: tuple[int, int, int], size: tuple[int, int] = (320, 320)) -> Image.Image:
    return Image.new("RGB", size, color)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def open_bytes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def content_area(image: Image.Image) -> Image.Image:
    """The picture without the emulator's coloured mark band (top) and caption band (bottom)."""
    width, height = image.size
    return image.crop((0, int(height * 0.15), width, int(height * 0.75)))


def colour_share(image: Image.Image, predicate) -> float:  # type: ignore[no-untyped-def]
    """The fraction of pixels (of a thumbnail) for which ``predicate((r, g, b))`` holds."""
    raw = image.convert("RGB").resize((64, 64)).tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    return sum(1 for p in pixels if predicate(p)) / len(pixels)
