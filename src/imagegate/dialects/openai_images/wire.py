"""The OpenAI Images request body (``/v1/images/generations`` and ``/v1/images/edits``) as one pydantic model.

The same model serves JSON bodies and multipart forms, so every field coerces what a form sends (numbers and
booleans as decimal strings) and checks the values the API defines, failing with OpenAI's own wording
(``Invalid value: 'xyz'. Supported values are: 'url' and 'b64_json'.``) through a ``PydanticCustomError`` of
type ``openai_param`` that ``requests`` turns into a domain error whose ``field`` is the param. Names it does
not define are refused by ``requests`` first (OpenAI's ``Unknown parameter``). The AI/ML API's extensions
(``num_images``, ``aspect_ratio``, ``provider``, ``image_urls``) ride along, and the diffusion knobs open-model
image APIs add (``seed``, ``negative_prompt``, ``num_inference_steps``, ``guidance_scale``). Images are not
parsed here: ``requests`` gathers them from files, URLs and data URLs and stores them on the model decoded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator

from imagegate.core.checks import MAX_GUIDANCE
from imagegate.core.images import GEMINI_API_RATIOS, ImageInput
from imagegate.dialects.openai_common.wire import PARAM_ERROR, json_type, param_error, quote_list

__all__ = ["PARAM_ERROR", "ImagesRequest", "json_type", "param_error", "quote_list"]

DEFAULT_MODEL = "gemini-2.5-flash-image"
MAX_PROMPT_CHARS = 32000
MAX_N = 10
MAX_NUM_IMAGES = 4  # the AI/ML API's own limit for its num_images
RESPONSE_FORMATS = ("url", "b64_json")
DEFAULT_RESPONSE_FORMAT = "url"  # OpenAI's own default; the server's setting overrides it
OUTPUT_FORMATS = ("png", "jpeg", "webp")
#: OpenAI's qualities, plus resolutions as Pixapi writes them ("2k"); ``requests`` maps each to a resolution.
QUALITIES = ("auto", "low", "medium", "high", "standard", "hd", "xhigh", "max", "512", "1k", "2k", "4k")
#: ``size`` may also be a resolution (Pixapi: "2K", "4K"), in any letter case.
RESOLUTION_SIZES = {"512": "512", "1k": "1K", "2k": "2K", "4k": "4K"}
BACKGROUNDS = ("auto", "opaque", "transparent")
MODERATIONS = ("low", "auto")
STYLES = ("vivid", "natural")
INPUT_FIDELITIES = ("high", "low")

_SIZE = re.compile(r"^(\d{1,6})\s*[x:]\s*(\d{1,6})$")


def parse_dimensions(text: str) -> tuple[int, int] | None:
    """``1536x1024``, ``16x9`` or ``16:9`` as positive ``(width, height)``; None when it is no such thing."""
    match = _SIZE.match(text.strip().lower())
    if match is None:
        return None
    width, height = int(match.group(1)), int(match.group(2))
    return (width, height) if width > 0 and height > 0 else None


def normalize_ratio(text: str) -> str:
    """``16x9`` and ``16:9`` both as ``16:9`` (the linkmodel seed writes ratios with an x)."""
    return text.strip().lower().replace("x", ":").replace(" ", "")


def _absent(value: object) -> bool:
    # Forms post empty strings for untouched inputs; JSON clients send null for "not given".
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: object, info: ValidationInfo) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise param_error(
            f"Invalid type for '{info.field_name}': expected a string, but got {json_type(value)} instead."
        )
    return value


def _prompt(value: object, info: ValidationInfo) -> str:
    text = _text(value, info)
    if text is None:
        raise param_error("Missing required parameter: 'prompt'.")
    if not text.strip():
        raise param_error(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise param_error(
            f"Invalid 'prompt': string too long. Expected a string with maximum length {MAX_PROMPT_CHARS}, "
            f"but got a string with length {len(text)} instead."
        )
    return text


def _model(value: object, info: ValidationInfo) -> str:
    text = _text(value, info)
    return DEFAULT_MODEL if text is None or not text.strip() else text.strip()


def _integer(low: int, high: int) -> Callable[[object, ValidationInfo], int | None]:
    def check(value: object, info: ValidationInfo) -> int | None:
        if _absent(value):
            return None
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)  # the AI/ML schema types num_images as a JSON number
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,10}\s*", value):
            number = int(value)  # multipart sends every number as text
        if number is None:
            raise param_error(
                f"Invalid type for '{info.field_name}': expected an integer, but got {json_type(value)} instead."
            )
        if number < low:
            raise param_error(
                f"Invalid '{info.field_name}': integer below minimum value. "
                f"Expected a value >= {low}, but got {number} instead."
            )
        if number > high:
            raise param_error(
                f"Invalid '{info.field_name}': integer above maximum value. "
                f"Expected a value <= {high}, but got {number} instead."
            )
        return number

    return check


def _number(low: float, high: float) -> Callable[[object, ValidationInfo], float | None]:
    def check(value: object, info: ValidationInfo) -> float | None:
        if _absent(value):
            return None
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?(\d+\.?\d*|\.\d+)\s*", value):
            number = float(value)  # multipart sends every number as text
        if number is None or not math.isfinite(number):
            raise param_error(
                f"Invalid type for '{info.field_name}': expected a number, but got {json_type(value)} instead."
            )
        if not low <= number <= high:
            raise param_error(
                f"Invalid '{info.field_name}': expected a value between {low:g} and {high:g}, but got {number:g}."
            )
        return number

    return check


def _choice(values: Sequence[str], aliases: dict[str, str] | None = None) -> Callable[[object, ValidationInfo], Any]:
    def check(value: object, info: ValidationInfo) -> str | None:
        if _absent(value):
            return None
        if not isinstance(value, str):
            raise param_error(
                f"Invalid type for '{info.field_name}': expected one of {quote_list(values)}, "
                f"but got {json_type(value)} instead."
            )
        key = value.strip().lower()
        key = (aliases or {}).get(key, key)
        if key not in values:
            raise param_error(f"Invalid value: '{value}'. Supported values are: {quote_list(values)}.")
        return key

    return check


def _boolean(value: object, info: ValidationInfo) -> bool | None:
    if _absent(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise param_error(f"Invalid type for '{info.field_name}': expected a boolean, but got {json_type(value)} instead.")


def _stream(value: object, info: ValidationInfo) -> bool:
    return bool(_boolean(value, info))


def _background(value: object, info: ValidationInfo) -> str | None:
    background: str | None = _choice(BACKGROUNDS)(value, info)
    if background == "transparent":
        raise param_error(
            "Invalid value: 'transparent'. This model cannot make transparent images; "
            "use background 'opaque' or 'auto' and remove the background afterwards."
        )
    return background


def _size(value: object, info: ValidationInfo) -> str | None:
    if _absent(value):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in RESOLUTION_SIZES:
            return RESOLUTION_SIZES[text]
        if text == "auto" or parse_dimensions(value) is not None:
            return text
    shown = value if isinstance(value, str) else json_type(value)
    raise param_error(
        f"Invalid value: '{shown}'. Supported values are: 'auto', a size 'WIDTHxHEIGHT' such as '1024x1024', "
        "'1536x1024' or '1024x1536', an aspect ratio such as '16:9', or a resolution '1K', '2K' or '4K'."
    )


def _aspect_ratio(value: object, info: ValidationInfo) -> str | None:
    if _absent(value):
        return None
    if isinstance(value, str):
        ratio = normalize_ratio(value)
        if ratio == "auto":
            return None  # fal/AIML edits: keep the input image's ratio, which is what None means
        if ratio in GEMINI_API_RATIOS:  # whether the model has it is core.checks' question
            return ratio
    shown = value if isinstance(value, str) else json_type(value)
    raise param_error(f"Invalid value: '{shown}'. Supported values are: {quote_list(GEMINI_API_RATIOS)}.")


Prompt = Annotated[str, BeforeValidator(_prompt)]
ModelName = Annotated[str, BeforeValidator(_model)]
Text = Annotated[str | None, BeforeValidator(_text)]
N = Annotated[int | None, BeforeValidator(_integer(1, MAX_N))]
NumImages = Annotated[int | None, BeforeValidator(_integer(1, MAX_NUM_IMAGES))]
Compression = Annotated[int | None, BeforeValidator(_integer(0, 100))]
PartialImages = Annotated[int | None, BeforeValidator(_integer(0, 3))]
# Not OpenAI's: fal's, Together's and other OpenAI-style image APIs take it; Google's seed is an int32.
Seed = Annotated[int | None, BeforeValidator(_integer(-(2**31), 2**31 - 1))]
# Not OpenAI's either: the diffusers names, which fal, DeepInfra and SiliconFlow's OpenAI-style APIs use too.
Steps = Annotated[int | None, BeforeValidator(_integer(1, 500))]
Guidance = Annotated[float | None, BeforeValidator(_number(0, MAX_GUIDANCE))]
ResponseFormat = Annotated[str | None, BeforeValidator(_choice(RESPONSE_FORMATS))]
OutputFormat = Annotated[str | None, BeforeValidator(_choice(OUTPUT_FORMATS, {"jpg": "jpeg"}))]
Quality = Annotated[str | None, BeforeValidator(_choice(QUALITIES))]
Background = Annotated[str | None, BeforeValidator(_background)]
Moderation = Annotated[str | None, BeforeValidator(_choice(MODERATIONS))]
Style = Annotated[str | None, BeforeValidator(_choice(STYLES))]
InputFidelity = Annotated[str | None, BeforeValidator(_choice(INPUT_FIDELITIES))]
Stream = Annotated[bool, BeforeValidator(_stream)]
Size = Annotated[str | None, BeforeValidator(_size)]
AspectRatioName = Annotated[str | None, BeforeValidator(_aspect_ratio)]


class ImagesRequest(BaseModel):
    """A generation or edit request, validated; ``images`` and ``image_urls`` are filled by ``requests``.

    ``images`` are decoded already (uploads, data URLs, inline base64), in the order given; ``image_urls`` are
    remote images for the route to fetch. ``count`` is how many images to make (``n`` or AIML's ``num_images``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    prompt: Prompt
    model: ModelName = DEFAULT_MODEL
    n: N = None
    num_images: NumImages = None
    size: Size = None
    aspect_ratio: AspectRatioName = None
    quality: Quality = None
    response_format: ResponseFormat = None  # None: the server's default (see ``requests.output_options``)
    output_format: OutputFormat = None  # None: png
    output_compression: Compression = None
    background: Background = None
    moderation: Moderation = None
    style: Style = None
    input_fidelity: InputFidelity = None
    user: Text = None
    safety_identifier: Text = None
    provider: Text = None  # AIML's routing override: the one deployment that may serve the job
    stream: Stream = False
    partial_images: PartialImages = None
    seed: Seed = None
    negative_prompt: Text = None
    num_inference_steps: Steps = None
    guidance_scale: Guidance = None
    image_urls: tuple[str, ...] = ()
    images: tuple[ImageInput, ...] = ()

    @model_validator(mode="after")
    def _one_count(self) -> ImagesRequest:
        if self.n is not None and self.num_images is not None and self.n != self.num_images:
            raise param_error(
                f"num_images ({self.num_images}) and n ({self.n}) disagree; send only one of them.", "num_images"
            )
        return self

    @property
    def count(self) -> int:
        return self.n or self.num_images or 1
