"""What a request's text and images must be before anything is held or stored: checked once, for every dialect.

Text: no NUL and no lone surrogate anywhere it will be stored or sent (``core.text``). Images: at most
``max_input_image_bytes`` each and ``max_input_pixels`` as their header declares (read without decoding, so a
decompression bomb costs nothing), and a format whose header can be read at all. The count is the model's.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagegate.core.image_header import image_dimensions
from imagegate.core.jobs import JobSpec
from imagegate.core.text import text_problem
from imagegate.errors import InvalidImage, InvalidRequest
from imagegate.services.context import ServiceConfig


def check_text(value: str, field: str) -> None:
    """``InvalidRequest`` naming ``field`` when ``value`` cannot be stored or passed on."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidRequest(f"{field} {problem}.", field=field)


def check_texts(values: Iterable[tuple[str, str | None]]) -> None:
    for field, value in values:
        if value is not None:
            check_text(value, field)


def check_spec_inputs(spec: JobSpec, config: ServiceConfig) -> None:
    """Every text part and image of ``spec`` against the limits; the first problem raises."""
    texts: list[tuple[str, str | None]] = [
        ("system_instruction", spec.system_instruction),
        ("negative_prompt", spec.negative_prompt),
    ]
    texts += [("prompt", part) for turn in spec.turns for part in turn.parts if isinstance(part, str)]
    check_texts(texts)
    for index, image in enumerate(spec.context_images):
        field = f"image[{index}]"
        if len(image.data) > config.max_input_image_bytes:
            raise InvalidImage(
                f"Input image {index + 1} is {len(image.data)} bytes; the largest accepted is "
                f"{config.max_input_image_bytes} bytes.",
                field=field,
            )
        size = image_dimensions(image.data, image.mime_type)
        if size is None:
            raise InvalidImage(f"Input image {index + 1} has a header that cannot be read.", field=field)
        width, height = size
        if width * height > config.max_input_pixels:
            raise InvalidImage(
                f"Input image {index + 1} is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
                f"the largest accepted is {config.max_input_pixels / 1e6:g} megapixels.",
                field=field,
            )
