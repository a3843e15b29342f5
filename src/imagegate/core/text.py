"""Which caller text imagegate can store and pass on: no NUL characters, no lone UTF-16 surrogates.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` (SQLite would store it, so the two backends disagreed), and
a lone surrogate cannot be encoded as UTF-8 for any database, upstream or log. Both are refused at the door
with the caller's field named, the same on every backend and every dialect.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be accepted, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    position = found.start()
    if char == "\x00":
        return f"contains a NUL character (U+0000) at position {position}, which cannot be stored"
    return f"contains a lone UTF-16 surrogate (U+{ord(char):04X}) at position {position}, which is not valid Unicode"
