"""An image's pixel size read from its header bytes alone (PNG IHDR, JPEG SOF, WEBP VP8/VP8L/VP8X, GIF, HEIF ispe),
and a JPEG's EXIF orientation for the size it is shown at.

Nothing is decoded: a 6 KB file that declares 49 megapixels is measured in microseconds and refused before any
decoder allocates for it. ``None`` means the header is too damaged to say, which callers treat as unreadable.
"""

from __future__ import annotations

import struct

from imagegate.core.images import GIF, HEIC, HEIF, JPEG, PNG, WEBP

# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})
_HEIF_SCAN_BYTES = 1 << 20  # the meta box with the ispe properties sits near the start
_ORIENTATION_TAG = 0x0112
_TRANSPOSED = frozenset({5, 6, 7, 8})  # orientations that turn the picture by 90 degrees
_MAX_IFD_ENTRIES = 256  # a hostile count cannot make the scan long


def image_dimensions(data: bytes, mime_type: str) -> tuple[int, int] | None:
    """(width, height) as the header declares them, or None when it cannot be read."""
    reader = _READERS.get(mime_type)
    if reader is None:
        return None
    try:
        size = reader(data)
    except (struct.error, IndexError):
        return None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def displayed_dimensions(data: bytes, mime_type: str) -> tuple[int, int] | None:
    """(width, height) as the image is shown: a JPEG whose EXIF orientation turns it by 90 degrees (a phone's
    portrait photo stored sideways) has them swapped. None when the header cannot be read."""
    size = image_dimensions(data, mime_type)
    if size is None or mime_type != JPEG:
        return size
    try:
        turned = _jpeg_orientation(data) in _TRANSPOSED
    except (struct.error, IndexError):
        turned = False  # a damaged EXIF block: the stored size, as a viewer would show it
    return (size[1], size[0]) if turned else size


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif(data: bytes) -> tuple[int, int] | None:
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    at = 2
    end = len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE_MARKERS:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        if length < 2:
            return None
        at += 2 + length
    return None


def _jpeg_orientation(data: bytes) -> int | None:
    """The EXIF Orientation (tag 0x0112 of IFD0) from the APP1 segment before the frame header, if any."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF or marker in _STANDALONE_MARKERS:  # a fill byte, or a marker without a length
            at += 1 if marker == 0xFF else 2
            continue
        if marker in _SOF_MARKERS or marker in (0xD9, 0xDA):
            return None
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker == 0xE1 and data[at + 4 : at + 10] == b"Exif\0\0":
            return _tiff_orientation(data[at + 10 : at + 2 + length])
        if length < 2:
            return None
        at += 2 + length
    return None


def _tiff_orientation(tiff: bytes) -> int | None:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return None
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for index in range(min(count, _MAX_IFD_ENTRIES)):
        entry = tiff[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
        tag, kind, _, value = struct.unpack(order + "HHI4s", entry)
        if tag == _ORIENTATION_TAG and kind == 3:  # a SHORT, stored in the entry itself
            return int(struct.unpack(order + "H", value[:2])[0])
    return None


def _heif(data: bytes) -> tuple[int, int] | None:
    """The largest ``ispe`` (image spatial extents) property: the full picture when it is a grid of tiles."""
    window = data[:_HEIF_SCAN_BYTES]
    best: tuple[int, int] | None = None
    at = window.find(b"ispe")
    while at != -1:
        width, height = struct.unpack(">II", window[at + 8 : at + 16])
        if best is None or width * height > best[0] * best[1]:
            best = (int(width), int(height))
        at = window.find(b"ispe", at + 4)
    return best


_READERS = {PNG: _png, GIF: _gif, WEBP: _webp, JPEG: _jpeg, HEIC: _heif, HEIF: _heif}
