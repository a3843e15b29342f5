"""OpenAI's wording for bad fields, shared by every OpenAI dialect: the ``openai_param`` error type, JSON type
names (``a string``, ``an integer``) and value lists (``'a', 'b', and 'c'``) as OpenAI's 400 messages write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import PydanticCustomError

#: The error type every field validator raises; its context holds ``message`` and, when not the field, ``param``.
PARAM_ERROR = "openai_param"

_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),  # before int: a bool is an int to Python, never to JSON
    (int, "an integer"),
    (float, "a decimal"),
    (str, "a string"),
    (list, "an array"),
    (tuple, "an array"),
    (dict, "an object"),
)


def param_error(message: str, param: str | None = None) -> PydanticCustomError:
    context: dict[str, Any] = {"message": message}
    if param is not None:
        context["param"] = param
    return PydanticCustomError(PARAM_ERROR, "{message}", context)


def json_type(value: object) -> str:
    """How OpenAI names a value's JSON type in its messages (``a string``, ``an integer``, …)."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "an unknown type")


def quote_list(values: Sequence[str]) -> str:
    """``'a' and 'b'`` / ``'a', 'b', and 'c'``, as OpenAI lists supported values."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]
