"""Parse an image answer's JSON without parsing its images: long base64 values are lifted out first.

A Nano Banana answer is ~2 MB of JSON, nearly all of it one base64 string. ``orjson.loads`` spends ~1.1 ms
making that string a Python ``str`` that is only decoded to bytes right after; finding the value's two quotes
costs ~0.1 ms. So the long values of a key (``"data"`` for Google's ``inlineData``) are cut out of the text,
replaced by a marker string, and decoded straight from the answer's bytes when the provider reads the image.

The cut is sound by JSON's own rules: inside a string every ``"`` is escaped, so an unescaped ``"data"``
followed by ``:`` and ``"`` is a key and the start of its string value; a value with no backslash in it ends at
the next ``"``. Anything else (a backslash in the value, an odd layout) stays in the text for orjson.
"""

from __future__ import annotations

import binascii
import secrets
from typing import Any

import orjson
import pybase64

from imagegate.core.images import decode_base64

#: Shorter values are parsed normally: lifting them saves nothing.
MIN_LIFTED_BYTES = 16 * 1024
_WHITESPACE = b" \t\r\n"


class Blobs:
    """The base64 values lifted out of one answer, by the marker string left in their place."""

    def __init__(self, content: bytes) -> None:
        self._content = memoryview(content)
        self._spans: dict[str, tuple[int, int]] = {}
        self._prefix = "\x00" + secrets.token_hex(8) + ":"  # NUL + a nonce: no upstream can send it by chance

    def lift(self, start: int, end: int) -> bytes:
        """Record ``content[start:end]`` and return the JSON text of its marker."""
        marker = f"{self._prefix}{len(self._spans)}"
        self._spans[marker] = (start, end)
        return orjson.dumps(marker)[1:-1]

    def encoded_length(self, value: str) -> int:
        """How long the base64 text of ``value`` is (a lifted one's, not its marker's)."""
        span = self._spans.get(value)
        return len(value) if span is None else span[1] - span[0]

    def decode(self, value: object) -> bytes:
        """The bytes of a base64 value: a lifted one from the answer's bytes, any other as ``decode_base64``.

        Raises ``TypeError`` for a value that is no string and ``ValueError`` for one that is no base64.
        """
        return self.decode_keeping(value)[0]

    def decode_keeping(self, value: object) -> tuple[bytes, memoryview | None]:
        """``decode``, and a lifted value's text when it was canonical (standard alphabet, padded, one line,
        the last character's spare bits zero): what a dialect can send on as it is (a view of the answer, not a
        copy). None for anything else, which is encoded afresh where it is sent."""
        if isinstance(value, str):
            span = self._spans.get(value)
            if span is None:
                return decode_base64(value), None
            text = self._content[span[0] : span[1]]
            try:  # canonical base64, straight from the buffer
                data = pybase64.b64decode(text, validate=True)
                return data, text if _zero_tail_bits(text) else None
            except (binascii.Error, ValueError):
                return decode_base64(bytes(text).decode("ascii")), None  # the lenient path (URL-safe, unpadded)
        raise TypeError("base64 data must be a string")


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _zero_tail_bits(text: memoryview) -> bool:
    """Whether the bits a padded text's last character carries past the data are zero, as an encoder writes
    them. Decoders differ: pybase64 ignores them, pydantic (and so google-genai) refuses the answer."""
    if len(text) < 2 or text[-1] != 0x3D:  # no "=": every bit is data
        return True
    padded = 2 if text[-2] == 0x3D else 1
    unused = 4 if padded == 2 else 2
    return _ALPHABET.index(text[-1 - padded]) % (1 << unused) == 0


def loads_lifting(content: bytes, key: bytes = b'"data"') -> tuple[Any, Blobs]:
    """``orjson.loads(content)``, with the long string values of ``key`` replaced by markers of ``Blobs``."""
    blobs = Blobs(content)
    pieces: list[bytes | memoryview] = []
    view = memoryview(content)
    copied = 0  # content[:copied] is in pieces already
    found = content.find(key)
    while found != -1:
        start = _value_start(content, found, key)
        if start is not None:
            end = content.find(b'"', start)
            if end - start >= MIN_LIFTED_BYTES and content.find(b"\\", start, end) == -1:
                pieces += (view[copied:start], blobs.lift(start, end))
                copied = end
            found = content.find(key, max(end, start))
        else:
            found = content.find(key, found + len(key))
    if not pieces:
        return orjson.loads(content), blobs
    pieces.append(view[copied:])
    return orjson.loads(b"".join(pieces)), blobs


def _value_start(content: bytes, found: int, key: bytes) -> int | None:
    """Where the string value of the key at ``found`` begins, or None when it is not a key with a string."""
    if found > 0 and content[found - 1] == 0x5C:  # a backslash: the quote is escaped, this is inside a string
        return None
    at = _skip_whitespace(content, found + len(key))
    if at >= len(content) or content[at] != 0x3A:  # ':'
        return None
    at = _skip_whitespace(content, at + 1)
    if at >= len(content) or content[at] != 0x22:  # '"'
        return None
    return at + 1


def _skip_whitespace(content: bytes, at: int) -> int:
    while at < len(content) and content[at] in _WHITESPACE:
        at += 1
    return at
