"""The ``POST /api/v1/image-generation`` body exactly as the linkmodel OpenAPI seed defines it, and its parsing.

Fields, enums and limits are the seed's: ``model`` (one id), ``prompt`` (1 to 100000 characters), ``images`` (at most
10 URL strings), ``quality`` (``1K``) and ``size`` (ten ``WxH`` ratios); only ``model`` and ``prompt`` are required.
Parsing is strict JSON: no coercion (``1`` is no string), and ``null`` is refused because the seed's OpenAPI 3.0
schema never marks a field ``nullable``. The schema sets no ``additionalProperties``, so by OpenAPI's default
unknown fields are allowed: they are accepted and ignored. The first failure becomes an ``InvalidRequest`` whose
message reads like the seed's own (``prompt is required``, ``size must be one of: 16x9, …``).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from imagegate.errors import InvalidRequest

ModelId = Literal["gemini-2.5-flash-image"]
Quality = Literal["1K"]
Size = Literal["16x9", "1x1", "21x9", "2x3", "3x2", "3x4", "4x3", "4x5", "5x4", "9x16"]

MODEL_IDS: tuple[str, ...] = get_args(ModelId)
QUALITIES: tuple[str, ...] = get_args(Quality)
SIZES: tuple[str, ...] = get_args(Size)
MIN_PROMPT_CHARS = 1
MAX_PROMPT_CHARS = 100_000
MAX_IMAGES = 10

_NOT_NULL = "linkmodel_not_null"
_ENUMS: dict[str, tuple[str, ...]] = {"model": MODEL_IDS, "quality": QUALITIES, "size": SIZES}


class ImageGenerationRequest(BaseModel):
    """One image-generation task as a caller asks for it; ``None`` means the field was left out."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    model: ModelId
    prompt: str = Field(min_length=MIN_PROMPT_CHARS, max_length=MAX_PROMPT_CHARS)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    quality: Quality | None = None
    size: Size | None = None

    @field_validator("images", "quality", "size", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out is fine; an explicit null is not a value the seed's schema allows.
        if value is None:
            raise PydanticCustomError(_NOT_NULL, "must not be null")
        return value


def parse_request(body: bytes | str) -> ImageGenerationRequest:
    """The request in ``body`` (raw JSON); ``InvalidRequest`` naming the first field that breaks the seed."""
    try:
        return ImageGenerationRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = _field_name(first["loc"])
        raise InvalidRequest(describe_error(first), field=field or None) from exc


def describe_error(error: ErrorDetails) -> str:
    """A pydantic error in the seed's words: the field, then what the seed's ``description`` says about it."""
    kind = error["type"]
    field = _field_name(error["loc"])
    top = field.split("[", 1)[0]
    if kind == "json_invalid" or (not field and kind == "json_type"):
        return "request body is not valid JSON"
    if not field:
        return "request body must be a JSON object"
    if kind == "missing":
        return f"{field} is required"
    if kind == _NOT_NULL:
        return f"{field} must not be null"
    if kind == "literal_error" and top in _ENUMS:
        return f"{field} must be one of: {', '.join(_ENUMS[top])}"
    if kind in ("string_too_short", "string_too_long"):
        return f"{field} length must be between {MIN_PROMPT_CHARS} and {MAX_PROMPT_CHARS}"
    if kind == "too_long":
        return f"{field} must have at most {MAX_IMAGES} items"
    if kind == "string_type":
        return f"{field} must be a string"
    if kind == "list_type":
        return f"{field} must be an array of strings"
    return f"{field} is invalid: {error['msg']}"


def _field_name(loc: tuple[int | str, ...]) -> str:
    """``("images", 3)`` -> ``images[3]``: how a caller finds the value in their own JSON."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name
