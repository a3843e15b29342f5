"""Input images brought within an upstream's inline limit before they are sent.

Google takes at most 7 MB per inline image on its image models (Vertex AI's model pages: "Maximum file size
per file for inline data: 7 MB"), while imagegate accepts inputs up to ``max_input_image_bytes`` (20 MB by
default). Rather than let Google refuse a valid photo, a larger one is re-encoded (``imaging.shrink_to_fit``)
off the event loop; images within the limit are sent byte for byte.
"""

from __future__ import annotations

import asyncio
import dataclasses

from imagegate.core.images import ImageInput
from imagegate.core.jobs import JobSpec, Part, Turn
from imagegate.imaging import shrink_to_fit

#: Google's per-image inline limit (7 MB, decimal as Google's pages count it).
GOOGLE_INLINE_IMAGE_BYTES = 7_000_000


async def fit_inline_images(spec: JobSpec, max_bytes: int) -> JobSpec:
    """``spec`` with every image larger than ``max_bytes`` re-encoded to fit; ``spec`` itself when none is."""
    if all(len(image.data) <= max_bytes for image in spec.context_images):
        return spec
    turns = await asyncio.to_thread(_fit_turns, spec.turns, max_bytes)
    return dataclasses.replace(spec, turns=turns)


def _fit_turns(turns: tuple[Turn, ...], max_bytes: int) -> tuple[Turn, ...]:
    return tuple(dataclasses.replace(turn, parts=tuple(_fit(part, max_bytes) for part in turn.parts)) for turn in turns)


def _fit(part: Part, max_bytes: int) -> Part:
    if not isinstance(part, ImageInput) or len(part.data) <= max_bytes:
        return part
    data, mime_type = shrink_to_fit(part.data, max_bytes)
    return ImageInput(data, mime_type)
