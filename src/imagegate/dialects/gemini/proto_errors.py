"""Turn a pydantic validation error on a Gemini request into the domain error Google's proto parser would give.

Google reports malformed bodies in proto terms: unknown names as ``Unknown name "negativePrompt" at
'generation_config': Cannot find field.``, bad enum or scalar values as ``Invalid value at
'generation_config.response_modalities[0]' (<proto type>), "BANANA"``, with field paths in snake_case. This
module rebuilds those messages from pydantic's error location by walking the wire models, so every field is
covered without a hand-written table. Pure functions only.
"""

from __future__ import annotations

import json
import types
from collections.abc import Sequence
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.alias_generators import to_snake
from pydantic_core import ErrorDetails

from imagegate.dialects.gemini.wire import PROTO_ENUM_ERROR
from imagegate.errors import InvalidRequest, UnknownField

#: Prefix of proto message and enum type names in Google's messages.
PROTO_TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1beta."

_SCALAR_TYPES: dict[object, str] = {str: "TYPE_STRING", int: "TYPE_INT32", float: "TYPE_FLOAT", bool: "TYPE_BOOL"}
_MAX_VALUE_CHARS = 100  # echo enough of a bad value to recognise it, not a whole base64 image


def field_path(loc: Sequence[int | str]) -> str:
    """``("generationConfig", "responseModalities", 0)`` -> ``generation_config.response_modalities[0]``."""
    path = ""
    for item in loc:
        if isinstance(item, int):
            path += f"[{item}]"
        else:
            path += ("." if path else "") + to_snake(item)
    return path


def quote_value(value: object) -> str:
    """A value as Google echoes it: JSON, cut short when long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def domain_error(root: type[BaseModel], error: ErrorDetails) -> InvalidRequest:
    """The domain error for pydantic's first complaint about a body validated as ``root``."""
    loc = error["loc"]
    value = error.get("input")
    path = field_path(loc)
    if error["type"] == "extra_forbidden" and loc:
        return _unknown_name(root, loc)
    if error["type"] == PROTO_ENUM_ERROR:
        proto_type = str((error.get("ctx") or {}).get("proto_type", ""))
        return InvalidRequest(
            f"Invalid value at '{path}' ({PROTO_TYPE_PREFIX}{proto_type}), {quote_value(value)}", field=path
        )
    expected = _annotation_at(root, loc)
    repeated = get_origin(expected) is list
    name, parent = str(loc[-1]) if loc else "", field_path(loc[:-1])
    where = f" at '{parent}'" if parent else ""
    if isinstance(value, list) and not repeated and loc and not isinstance(loc[-1], int):
        return InvalidRequest(
            f'Invalid JSON payload received. Unknown name "{name}"{where}: '
            "Proto field is not repeating, cannot start list.",
            field=path,
        )
    if isinstance(value, dict) and _is_scalar(expected) and loc and not isinstance(loc[-1], int):
        return InvalidRequest(
            f'Invalid JSON payload received. Unknown name "{name}"{where}: Starting an object on a scalar field.',
            field=path,
        )
    return InvalidRequest(f"Invalid value at '{path}' ({_describe(expected)}), {quote_value(value)}", field=path)


def _unknown_name(root: type[BaseModel], loc: tuple[int | str, ...]) -> InvalidRequest:
    key, parent = str(loc[-1]), field_path(loc[:-1])
    where = f" at '{parent}'" if parent else ""
    field = f"{parent}.{to_snake(key)}" if parent else to_snake(key)
    if _annotation_at(root, loc) is not None:
        # A known field refused as extra: the body spelled it both ways (``inlineData`` and ``inline_data``).
        return InvalidRequest(
            f'Invalid JSON payload received. Field "{to_snake(key)}"{where} is given twice '
            "(once in camelCase, once in snake_case).",
            field=field,
        )
    return UnknownField(f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.', field=field)


def _unwrap(annotation: object) -> object:
    """Strip ``Annotated[...]`` and ``X | None`` down to the type that carries the value."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _annotation_at(root: type[BaseModel], loc: Sequence[int | str]) -> object | None:
    """The declared type at ``loc`` inside ``root`` (camelCase or snake_case names), or None if none is."""
    current: object = root
    for item in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(item, int):
            if origin is not list:
                return None
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(to_snake(item))
            if field is None:
                return None
            current = field.annotation
        elif origin is dict:
            current = get_args(current)[1]
        else:
            return None
    return _unwrap(current)


def _is_scalar(annotation: object) -> bool:
    return annotation in _SCALAR_TYPES


def _describe(annotation: object) -> str:
    """The proto type name Google prints for a field declared as ``annotation``."""
    annotation = _unwrap(annotation)
    if get_origin(annotation) is list:
        return _describe(get_args(annotation)[0])  # Google names the element type of a repeated field
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return PROTO_TYPE_PREFIX + annotation.__name__
    if get_origin(annotation) is dict or annotation is dict:
        return "type.googleapis.com/google.protobuf.Struct"
    scalar = _SCALAR_TYPES.get(annotation)
    return scalar if scalar is not None else "TYPE_MESSAGE"
