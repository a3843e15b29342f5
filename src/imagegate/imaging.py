"""Pillow helpers for the rest of imagegate: read an image's size, decode it safely, encode it reproducibly.

The core stays free of Pillow, so pixel work outside the providers goes through here. Decoding is defensive
(only the formats imagegate accepts, a pixel limit against decompression bombs, every decoder failure turned
into ``InvalidImage``) and encoding is deterministic (no timestamps, no metadata carried over), so the same
pixels always give the same bytes.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageOps

from imagegate.core.images import sniff_mime_type
from imagegate.errors import InvalidImage

#: Decoding refuses images with more pixels than this (a 50-megapixel photo decodes to ~200 MB of RGBA).
MAX_PIXELS = 50_000_000

#: The Pillow decoders we allow; the others (PSD, TGA, EPS…) are attack surface imagegate never needs.
_DECODERS = ("PNG", "JPEG", "WEBP", "GIF")

_ENCODERS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
_SHORT_NAMES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}
_DEFAULT_QUALITY = 90
_SHRINK_QUALITY = 80  # still faithful for a reference image, about half the bytes of 90

# EXIF orientations 5-8 turn the stored image by 90 degrees, so the displayed width and height swap.
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
_EXIF_ORIENTATION = 0x0112


def probe(data: bytes) -> tuple[int, int]:
    """The displayed (width, height) of an image, read from its header without decoding the pixels.

    EXIF orientation is honoured, so a portrait phone photo stored sideways reports its portrait size.
    Raises ``InvalidImage`` when the bytes are not a readable PNG, JPEG, WEBP or GIF.
    """
    if (size := _png_size(data)) is not None:
        return size
    try:
        with Image.open(io.BytesIO(data), formats=_DECODERS) as im:
            width, height = im.size
            # Read EXIF from what the header parse found: ``getexif()`` decodes a whole PNG to look for a
            # late eXIf chunk, which costs tens of milliseconds per megapixel on every image served.
            exif = Image.Exif()
            if raw := im.info.get("exif"):
                exif.load(raw)
            orientation = exif.get(_EXIF_ORIENTATION)
    except Exception as exc:  # Pillow raises many unrelated types on hostile headers
        raise InvalidImage("The image data could not be read.") from exc
    if width <= 0 or height <= 0:
        raise InvalidImage("The image has no pixels.")
    if orientation in _TRANSPOSED_ORIENTATIONS:
        return height, width
    return width, height


def open_image(data: bytes, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``data`` into an upright RGB image, or RGBA when it has transparency.

    The pixel count is checked from the header before anything is decoded; multi-frame images give their
    first frame. Raises ``InvalidImage`` for undecodable data or an image above ``max_pixels``.
    """
    try:
        im = Image.open(io.BytesIO(data), formats=_DECODERS)
    except Exception as exc:
        raise InvalidImage("The image data could not be read.") from exc
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise InvalidImage(
                f"The image is too large ({width}x{height} pixels); at most {max_pixels} pixels are accepted."
            )
        try:
            im.load()
            upright = ImageOps.exif_transpose(im)
            return _to_rgb_or_rgba(upright)
        except Exception as exc:
            raise InvalidImage("The image data is damaged and could not be decoded.") from exc


def encode(image: Image.Image, mime_type: str = "image/png", quality: int | None = None) -> bytes:
    """The image as PNG, JPEG or WEBP bytes, identical for identical pixels (no timestamps or metadata).

    ``mime_type`` may also be a short name (``png``, ``jpeg``, ``webp``). ``quality`` (0-100, default 90)
    applies to JPEG and WEBP; PNG is lossless and ignores it. JPEG has no alpha, so transparency is
    flattened onto white. Raises ``ValueError`` for another format or a quality outside 0-100.
    """
    mime = _normalise_mime(mime_type)
    if quality is not None and not 0 <= quality <= 100:
        raise ValueError(f"quality must be between 0 and 100, not {quality}")
    fmt = _ENCODERS[mime]
    prepared = _prepare_for(image, fmt)
    if prepared is image:
        prepared = image.copy()
    # Pillow writes ICC profiles, EXIF and XMP found in .info; a fresh info dict keeps the bytes pure pixels.
    prepared.info = {}
    buf = io.BytesIO()
    if fmt == "PNG":
        prepared.save(buf, format="PNG", optimize=False, compress_level=6)
    elif fmt == "JPEG":
        prepared.save(buf, format="JPEG", quality=_quality(quality), optimize=False, progressive=False)
    else:
        prepared.save(buf, format="WEBP", quality=_quality(quality), method=4)
    return buf.getvalue()


def enlarge_png(data: bytes, width: int, height: int) -> bytes:
    """A PNG scaled up (nearest neighbour) to exactly ``width`` x ``height``, fast: the emulator draws large
    outputs small and enlarges them.

    Each output row repeats a source row, so the repeats are written with PNG's "Up" filter as zero bytes. The
    deflate stream is built from independent, byte-aligned pieces (each flushed with ``Z_FULL_FLUSH`` from a
    fresh compressor), so a run of k repeated rows is compressed once per run length and reused: only the
    distinct rows cost compression time.
    """
    with Image.open(io.BytesIO(data), formats=("PNG",)) as im:
        small = im.convert("RGB")
    wide = small.resize((width, small.height), Image.Resampling.NEAREST).tobytes()  # cheap: still few rows
    stride = width * 3
    zero_row = b"\x02" + bytes(stride)  # filter "Up": the same as the row above
    runs: dict[int, bytes] = {}
    pieces: list[bytes] = []
    checksum = zlib.adler32(b"")
    y = 0
    while y < height:
        source = y * small.height // height
        row = b"\x00" + wide[source * stride : (source + 1) * stride]
        pieces.append(_deflate_piece(row))
        checksum = zlib.adler32(row, checksum)
        repeats = 0
        while y + 1 + repeats < height and (y + 1 + repeats) * small.height // height == source:
            repeats += 1
        if repeats:
            if repeats not in runs:
                runs[repeats] = _deflate_piece(zero_row * repeats)
            pieces.append(runs[repeats])
            checksum = _adler32_up_rows(checksum, stride, repeats)
        y += 1 + repeats
    pieces.append(b"\x03\x00")  # the final, empty fixed-Huffman block
    stream = b"\x78\x01" + b"".join(pieces) + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")


def _adler32_up_rows(checksum: int, stride: int, rows: int) -> int:
    """Adler-32 continued over ``rows`` rows of a 0x02 byte and ``stride`` zeros, without reading them: the
    0x02 adds 2 to the sum ``a`` and ``a`` to ``b``; each zero adds ``a`` to ``b`` again."""
    a, b = checksum & 0xFFFF, checksum >> 16
    for _ in range(rows):
        a = (a + 2) % _ADLER
        b = (b + a * (stride + 1)) % _ADLER
    return (b << 16) | a


_ADLER = 65521


def _deflate_piece(raw: bytes) -> bytes:
    """``raw`` as non-final raw-deflate blocks that end byte-aligned and refer to nothing before them."""
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    return packer.compress(raw) + packer.flush(zlib.Z_FULL_FLUSH)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def transcode(data: bytes, mime_type: str, quality: int | None) -> bytes:
    """``data`` re-encoded as ``mime_type`` (see ``encode``); bytes already in that format pass unchanged.

    The pass-through (same format, no ``quality`` asked) avoids a lossy or slow re-encode of what a provider
    already produced in the requested format.
    """
    mime = _normalise_mime(mime_type)
    if quality is None and sniff_mime_type(data) == mime:
        return data
    return encode(open_image(data), mime, quality)


def shrink_to_fit(data: bytes, max_bytes: int) -> tuple[bytes, str]:
    """``data`` re-encoded to at most ``max_bytes`` bytes, and its new type; bytes already small enough pass.

    Photos become JPEG (WEBP when they have transparency, which JPEG would flatten) at quality 90, then 80;
    when that is still too large, the image is scaled down by the square root of the overshoot (an encoded
    image's size grows with its pixel count) until it fits. Upstreams cap inline images (Google at 7 MB), and
    a smaller faithful copy serves a reference image better than a refusal.
    """
    if len(data) <= max_bytes:
        return data, sniff_mime_type(data) or "application/octet-stream"
    image = open_image(data)
    mime = "image/webp" if _has_alpha(image) else "image/jpeg"
    for quality in (_DEFAULT_QUALITY, _SHRINK_QUALITY):
        out = encode(image, mime, quality)
        if len(out) <= max_bytes:
            return out, mime
    while image.width > 1 or image.height > 1:
        # 0.9 of the estimate so that one step nearly always suffices; at least 0.5, so it ends quickly.
        scale = min(0.9, max(0.5, 0.9 * (max_bytes / len(out)) ** 0.5))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
        out = encode(image, mime, _SHRINK_QUALITY)
        if len(out) <= max_bytes:
            return out, mime
    raise InvalidImage(f"The image cannot be brought within {max_bytes} bytes.")


def _normalise_mime(mime_type: str) -> str:
    mime = mime_type.strip().lower()
    mime = _SHORT_NAMES.get(mime, mime)
    if mime not in _ENCODERS:
        raise ValueError(f"cannot encode {mime_type!r}; supported: image/png, image/jpeg, image/webp")
    return mime


def _quality(quality: int | None) -> int:
    return _DEFAULT_QUALITY if quality is None else quality


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info


def _to_rgb_or_rgba(im: Image.Image) -> Image.Image:
    if im.mode.startswith("I"):
        im = _sixteen_bit_to_l(im)
    if _has_alpha(im):
        return im if im.mode == "RGBA" else im.convert("RGBA")
    return im if im.mode == "RGB" else im.convert("RGB")


def _sixteen_bit_to_l(im: Image.Image) -> Image.Image:
    # Pillow's I -> L conversion clips instead of scaling, which turns 16-bit greyscale pictures white.
    wide = im.convert("I")
    _, high = wide.getextrema()
    if isinstance(high, (int, float)) and high > 255:
        wide = wide.point(lambda v: v / 256)
    return wide.convert("L")


def _prepare_for(image: Image.Image, fmt: str) -> Image.Image:
    if fmt == "JPEG":
        if _has_alpha(image):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if fmt == "WEBP":
        if _has_alpha(image):
            return image if image.mode == "RGBA" else image.convert("RGBA")
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
        return image
    return image.convert("RGBA" if _has_alpha(image) else "RGB")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's size straight from its IHDR chunk, or None to let Pillow decide (not a PNG, EXIF, anything odd).

    Every generated image is a PNG and goes through ``probe``; opening it with Pillow costs more than the rest
    of the check. The chunks before the first IDAT are walked (a few, all small) because an eXIf chunk there can
    turn the image, and the IHDR's checksum is verified as Pillow would.
    """
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 33:
        return None
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13 or zlib.crc32(data[12:29]) != struct.unpack_from(">I", data, 29)[0]:
        return None
    width, height = struct.unpack_from(">II", data, 16)
    if width == 0 or height == 0 or width > 0x7FFFFFFF or height > 0x7FFFFFFF:
        return None
    at = 33
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind == b"IDAT":
            return width, height
        if kind in (b"eXIf", b"IEND"):
            return None
        at += 12 + length
    return None
