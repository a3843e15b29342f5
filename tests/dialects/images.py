"""Small real images for the tests, made with Pillow (no files, no downloads)."""

from __future__ import annotations

import io

from PIL import Image


def encode_image(fmt: str, size: tuple[int, int] = (16, 16), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
