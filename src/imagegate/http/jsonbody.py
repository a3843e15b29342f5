"""The one JSON parser for request bodies: bounded nesting, valid Unicode only, no NaN or Infinity.

``json.loads`` recurses once per nesting level, so a body of ten thousand ``[`` raised ``RecursionError`` (a 500);
it also accepts lone surrogates (``"\\ud800"``) that nothing downstream can encode. orjson stops at 1024 levels,
refuses both and is faster. Every problem is a ``ValueError`` that the dialect words as its own 400.
"""

from __future__ import annotations

from typing import Any

import orjson


def load_json(raw: bytes) -> Any:
    """The value of ``raw``; ``ValueError`` saying what is wrong with it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc
