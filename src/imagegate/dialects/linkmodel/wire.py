"""The ``POST /api/v1/image-generation`` body exactly as the linkmodel OpenAPI seed defines it, and its parsing.

Fields, enums and limits are the seed's: ``model`` (one id), ``prompt`` (1 to 100000 characters), ``images`` (at most
10 URL strings), ``quality`` (``1K``) and ``size`` (ten ``WxH`` ratios); only ``model`` and ``prompt`` are required.
Parsing is strict JSON: no coercion (``1`` is no string), and ``null`` is refused because the seed's OpenAPI 3.0
schema never marks a field ``nullable``. The schema sets no ``additionalProperties``, so by OpenAPI's default
unknown fields are allowed: they are accepted and ignored. The first failure becomes an ``InvalidRequest`` whose
message reads like the seed's own (``prompt is required``, ``size must be one of: 16x9, …``).
"""

from __future__ import annotations

import functools
import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from imagegate.core.capabilities import RESOLUTIONS
from imagegate.core.catalog import builtin_models
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
_ENUM = "linkmodel_enum"
_ENUMS: dict[str, tuple[str, ...]] = {"model": MODEL_IDS, "quality": QUALITIES, "size": SIZES}
_RATIO = re.compile(r"^\d{1,2}x\d{1,2}$")


@functools.cache
def family_model_ids() -> frozenset[str]:
    """Beyond the seed's one model: the shipped family (Nano Banana Pro and 2) by id and alias. For those, quality
    may be any resolution and size any ``WxH`` ratio; whether the model makes it is the capability check's call.
    The seed's schema for gemini-2.5-flash-image stays exactly as it is."""
    return frozenset(
        name for m in builtin_models() if m.id not in MODEL_IDS for name in (m.id, *m.aliases) if "/" not in name
    )


class ImageGenerationRequest(BaseModel):
    """One image-generation task as a caller asks for it; ``None`` means the field was left out."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    model: str
    prompt: str = Field(min_length=MIN_PROMPT_CHARS, max_length=MAX_PROMPT_CHARS)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)
    quality: str | None = None
    size: str | None = None

    @model_validator(mode="after")
    def _enums_of_the_model(self) -> ImageGenerationRequest:
        family = self.model in family_model_ids()
        if not family and self.model not in MODEL_IDS:
            raise PydanticCustomError(_ENUM, "model", {"field": "model"})
        if self.quality is not None and self.quality not in (RESOLUTIONS if family else QUALITIES):
            raise PydanticCustomError(_ENUM, "quality", {"field": "quality"})
        if self.size is not None and not (_RATIO.match(self.size) if family else self.size in SIZES):
            raise PydanticCustomError(_ENUM, "size", {"field": "size"})
        return self

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
        if first["type"] == _ENUM:  # raised for the whole body, about one field
            first = {**first, "loc": (str(first["ctx"]["field"]),), "type": "literal_error"}
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
    if kind in ("literal_error", "string_type") and top in _ENUMS:  # a closed set, whatever was sent
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
