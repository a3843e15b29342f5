"""Image values and the ten aspect ratios of gemini-2.5-flash-image.

Formats are sniffed from magic bytes (never trusted from a name or a declared MIME type); pixel work lives
in ``imagegate.imaging``, outside the core.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pybase64

from imagegate.errors import InvalidImage

PNG = "image/png"
JPEG = "image/jpeg"
WEBP = "image/webp"
GIF = "image/gif"
HEIC = "image/heic"
HEIF = "image/heif"

#: What an input image may be (Gemini's list, plus GIF which every client can produce).
INPUT_MIME_TYPES = frozenset({PNG, JPEG, WEBP, HEIC, HEIF, GIF})

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"heif"}


def sniff_mime_type(data: bytes) -> str | None:
    """The image type the bytes really are, or None when they are no image format we accept."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _HEIC_BRANDS:
            return HEIC
        if brand in _HEIF_BRANDS:
            return HEIF
    return None


_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_WHITESPACE = str.maketrans("", "", " \t\r\n\f\v")


def decode_base64(text: str) -> bytes:
    """Bytes from base64 in the standard or URL-safe alphabet, padded or not, with whitespace anywhere.

    The google-genai SDK sends URL-safe with padding, curl users paste standard with line breaks, and
    upstreams differ too; all are fine. Raises ``ValueError`` for anything else.
    """
    try:  # the common case, canonical padded standard base64: pybase64's SIMD decoder, ~50x binascii's speed
        return pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    compact = text.translate(_WHITESPACE).translate(_URLSAFE_TO_STANDARD).rstrip("=")
    if len(compact) % 4 == 1:
        raise ValueError("base64 text of impossible length")
    return pybase64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)


def encode_base64(data: bytes) -> str:
    """Standard padded base64 text: what every dialect and upstream sends images as."""
    return pybase64.b64encode_as_string(data)


class StoredImageBytes(dict[str, bytes]):
    """The bytes of a job's stored images by file id and, for those an upstream sent as canonical base64 that
    were stored as they came, that text (``base64``): an answer in base64 sends it on instead of encoding the
    same bytes again (``base64_text``)."""

    __slots__ = ("base64",)

    def __init__(self) -> None:
        super().__init__()
        self.base64: dict[str, memoryview] = {}


def base64_text(images: Mapping[str, bytes], file_id: str) -> bytes:
    """The standard padded base64 of an image, as ASCII bytes: the upstream's own text where it was kept, else
    encoded now. Raises ``KeyError`` for a file id ``images`` does not have."""
    kept = images.base64.get(file_id) if isinstance(images, StoredImageBytes) else None
    return bytes(kept) if kept is not None else pybase64.b64encode(images[file_id])


@dataclass(frozen=True, slots=True)
class ImageInput:
    """An image a caller sent, with its sniffed type."""

    data: bytes
    mime_type: str

    @classmethod
    def from_bytes(cls, data: bytes, *, field: str | None = None) -> ImageInput:
        if not data:
            raise InvalidImage("The image is empty.", field=field)
        mime = sniff_mime_type(data)
        if mime is None:
            raise InvalidImage(
                "The image data is not a supported image (PNG, JPEG, WEBP, HEIC, HEIF or GIF).", field=field
            )
        return cls(data=data, mime_type=mime)

    def __repr__(self) -> str:  # bytes are long; say what matters
        return f"ImageInput({self.mime_type}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class ImageOutput:
    """An image a provider made."""

    data: bytes
    mime_type: str
    width: int
    height: int
    # the canonical standard base64 an upstream sent ``data`` as (``Blobs.decode_keeping``), for passing on
    base64: memoryview | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"ImageOutput({self.mime_type}, {self.width}x{self.height}, {len(self.data)} bytes)"


@dataclass(frozen=True, slots=True)
class AspectRatio:
    name: str
    width: int
    height: int


#: The exact output size for each aspect ratio gemini-2.5-flash-image supports (Google's table).
ASPECT_RATIOS: dict[str, AspectRatio] = {
    r.name: r
    for r in (
        AspectRatio("1:1", 1024, 1024),
        AspectRatio("2:3", 832, 1248),
        AspectRatio("3:2", 1248, 832),
        AspectRatio("3:4", 864, 1184),
        AspectRatio("4:3", 1184, 864),
        AspectRatio("4:5", 896, 1152),
        AspectRatio("5:4", 1152, 896),
        AspectRatio("9:16", 768, 1344),
        AspectRatio("16:9", 1344, 768),
        AspectRatio("21:9", 1536, 672),
    )
}

#: Every ratio the Gemini API's enum knows; some are valid there but unsupported by a given model.
GEMINI_API_RATIOS = (
    "1:1",
    "1:4",
    "1:8",
    "2:3",
    "3:2",
    "3:4",
    "4:1",
    "4:3",
    "4:5",
    "5:4",
    "8:1",
    "9:16",
    "16:9",
    "21:9",
)

DEFAULT_ASPECT_RATIO = "1:1"


#: How far (in aspect) a requested ``WxH`` may be from a supported ratio and still mean it: 15 %, so 2:1 is
#: 16:9 and 1792x1024 is 16:9, while 3:1 on a model whose widest is 21:9 (or ``7x3000``) is refused.
RATIO_TOLERANCE = 0.15


def ratio_value(name: str) -> float:
    """``"16:9"`` -> 1.777…"""
    width, _, height = name.partition(":")
    return int(width) / int(height)


def near_ratio(width: int, height: int, allowed: tuple[str, ...], tolerance: float = RATIO_TOLERANCE) -> str | None:
    """The ratio of ``allowed`` closest to ``width:height`` on a log scale, or None when even that one is more
    than ``tolerance`` away (a size no supported ratio is near)."""
    if width <= 0 or height <= 0 or not allowed:
        return None
    target = math.log(width / height)
    best = min(allowed, key=lambda name: abs(math.log(ratio_value(name)) - target))
    return best if abs(math.log(ratio_value(best)) - target) <= math.log(1 + tolerance) else None
