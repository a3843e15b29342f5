"""The provenance of local outputs: the invisible watermark and the AI-generated metadata of each format."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("imwatermark", reason="the watermark needs the local extra (invisible-watermark)")

from imagegate.providers.local.provenance import (
    DIGITAL_SOURCE_TYPE,
    MARK,
    MARK_BITS,
    Provenance,
    encode,
    has_watermark,
    read_provenance,
    watermark,
    xmp_packet,
)


def scene(size: tuple[int, int] = (320, 256)) -> Image.Image:
    """Something photo-like: shapes in mid tones under colour grain.

    The DWT-DCT mark lives in the colour (U) channel's texture, as in photos and generated images; a flat or
    grey picture cannot hold it (see docs/local-models.md).
    """
    im = Image.new("RGB", size, (120, 130, 110))
    draw = ImageDraw.Draw(im)
    draw.ellipse((40, 40, 200, 180), fill=(190, 160, 80))
    draw.rectangle((180, 120, 300, 240), fill=(70, 110, 170))
    grain = Image.fromarray((np.random.default_rng(0).random((size[1], size[0], 3)) * 255).astype(np.uint8))
    return Image.blend(im, grain, 0.25)


def test_the_mark_is_48_bits_of_a_fixed_text() -> None:
    assert (
        len(MARK_BITS) == 48
        and bytes(int("".join("1" if b else "0" for b in MARK_BITS[i : i + 8]), 2) for i in range(0, 48, 8)) == MARK
    )


def test_a_watermarked_image_is_detected_and_an_unmarked_one_is_not() -> None:
    original = scene()
    marked = watermark(original)
    assert has_watermark(marked) and not has_watermark(original)
    # invisible: brightness, which the eye follows, stays as it was (the mark is in the colour channel)
    luma = np.abs(np.asarray(original.convert("L"), dtype=int) - np.asarray(marked.convert("L"), dtype=int))
    assert luma.mean() < 1.5


def test_the_watermark_survives_jpeg_encoding() -> None:
    data = encode(scene(), Provenance("org/model", 1), "image/jpeg", 90)
    assert has_watermark(Image.open(io.BytesIO(data)))


def test_small_images_are_left_unmarked_but_keep_their_metadata() -> None:
    small = scene((128, 128))
    assert watermark(small) is small and not has_watermark(small)
    declared = read_provenance(encode(small, Provenance("org/model", 7), "image/png", None))
    assert declared["DigitalSourceType"] == DIGITAL_SOURCE_TYPE


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/webp"])
def test_every_format_declares_its_ai_origin(mime: str) -> None:
    data = encode(scene(), Provenance("Qwen/Qwen-Image-Edit-2509", 12345), mime, None)
    declared = read_provenance(data)
    assert DIGITAL_SOURCE_TYPE in declared["xmp"] and 'imagegate:Seed="12345"' in declared["xmp"]
    assert declared["Software"] == "imagegate"
    assert declared["Description"] == "AI-generated image (model: Qwen/Qwen-Image-Edit-2509, seed: 12345)"


def test_the_same_pixels_give_the_same_bytes() -> None:
    first = encode(scene(), Provenance("m", 1), "image/png", None)
    assert encode(scene(), Provenance("m", 1), "image/png", None) == first


def test_model_names_cannot_break_the_xmp() -> None:
    packet = xmp_packet(Provenance('evil" onload="x<&>', 1)).decode()
    assert "evil&quot; onload=&quot;x&lt;&amp;&gt;" in packet


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode(scene(), Provenance("m", 1), "image/gif", None)
