"""imaging: header probing, safe decoding and deterministic encoding, on images made here with Pillow."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imagegate import imaging
from imagegate.core.images import sniff_mime_type
from imagegate.errors import InvalidImage


def make(fmt: str, size: tuple[int, int] = (40, 30), mode: str = "RGB", **save: object) -> bytes:
    image = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_probe_reads_the_size_of_each_format(fmt: str) -> None:
    assert imaging.probe(make(fmt, (40, 30))) == (40, 30)


def test_probe_honours_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, shown turned 90 degrees
    data = make("JPEG", (40, 30), exif=exif.tobytes())
    assert imaging.probe(data) == (30, 40)
    assert imaging.open_image(data).size == (30, 40)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_probe_rejects_garbage(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        imaging.probe(data)


def test_probe_refuses_formats_imagegate_does_not_accept() -> None:
    with pytest.raises(InvalidImage):
        imaging.probe(make("BMP"))


def test_open_image_gives_rgb_or_rgba() -> None:
    assert imaging.open_image(make("JPEG")).mode == "RGB"
    assert imaging.open_image(make("PNG", mode="L")).mode == "RGB"
    assert imaging.open_image(make("PNG", mode="RGBA")).mode == "RGBA"
    assert imaging.open_image(make("PNG", mode="P", transparency=0)).mode == "RGBA"


def test_open_image_scales_sixteen_bit_greyscale_instead_of_clipping() -> None:
    buf = io.BytesIO()
    Image.new("I;16", (4, 4), 32768).save(buf, format="PNG")
    assert imaging.open_image(buf.getvalue()).getpixel((0, 0)) == (128, 128, 128)


def test_open_image_refuses_too_many_pixels_before_decoding() -> None:
    with pytest.raises(InvalidImage, match="too large"):
        imaging.open_image(make("PNG", (100, 100)), max_pixels=9_999)


def test_open_image_refuses_truncated_data() -> None:
    data = make("PNG", (64, 64))
    with pytest.raises(InvalidImage):
        imaging.open_image(data[: len(data) // 2])


@pytest.mark.parametrize(("mime", "short"), [("image/png", "png"), ("image/jpeg", "jpeg"), ("image/webp", "webp")])
def test_encode_is_deterministic_and_metadata_free(mime: str, short: str) -> None:
    image = Image.new("RGB", (32, 32), (10, 120, 200))
    image.info["icc_profile"] = b"not a real profile"
    first = imaging.encode(image, mime)
    assert first == imaging.encode(image.copy(), short)
    assert sniff_mime_type(first) == mime
    assert b"not a real profile" not in first
    assert image.info["icc_profile"] == b"not a real profile"  # the caller's image is left alone


def test_encode_jpeg_flattens_transparency_onto_white() -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    decoded = Image.open(io.BytesIO(imaging.encode(clear, "image/jpeg")))
    r, g, b = decoded.getpixel((4, 4))  # type: ignore[misc]
    assert min(r, g, b) > 245


def test_encode_quality_changes_lossy_size() -> None:
    noisy = Image.effect_noise((128, 128), 60).convert("RGB")
    assert len(imaging.encode(noisy, "image/jpeg", 20)) < len(imaging.encode(noisy, "image/jpeg", 95))


@pytest.mark.parametrize(("mime", "quality"), [("image/gif", None), ("image/png", 101), ("image/jpeg", -1)])
def test_encode_rejects_what_it_cannot_do(mime: str, quality: int | None) -> None:
    with pytest.raises(ValueError, match=r"quality|cannot encode"):
        imaging.encode(Image.new("RGB", (4, 4)), mime, quality)


def test_transcode_changes_format_and_passes_same_format_through() -> None:
    png = make("PNG", (20, 10))
    as_jpeg = imaging.transcode(png, "jpeg", 80)
    assert sniff_mime_type(as_jpeg) == "image/jpeg"
    assert imaging.probe(as_jpeg) == (20, 10)
    assert imaging.transcode(png, "image/png", None) is png
    assert sniff_mime_type(imaging.transcode(png, "image/webp", None)) == "image/webp"


def test_probe_reads_a_png_header_itself_and_still_honours_its_exif_orientation() -> None:
    plain = make("PNG", (40, 30), mode="RGBA")
    assert imaging._png_size(plain) == (40, 30) == imaging.probe(plain)
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = make("PNG", (40, 30), exif=exif.tobytes())  # Pillow writes eXIf before the image data
    assert imaging._png_size(turned) is None  # left to Pillow, which turns it
    assert imaging.probe(turned) == (30, 40)


def test_probe_refuses_a_png_whose_header_checksum_is_wrong() -> None:
    data = bytearray(make("PNG", (40, 30)))
    data[20] ^= 0x01  # the height's low byte, so IHDR's CRC no longer matches
    assert imaging._png_size(bytes(data)) is None
    with pytest.raises(InvalidImage):
        imaging.probe(bytes(data))
