"""What a job's images will measure: the aspect ratio asked, else the one nearest the image being edited, and the
model's exact pixel size for it at the resolution asked.

One rule for every place that needs it: the capability check (a deployment's longest side), the emulator and
the local planner (the size they make).
"""

from __future__ import annotations

import math

from imagegate.core.capabilities import ModelSpec
from imagegate.core.image_header import displayed_dimensions
from imagegate.core.images import DEFAULT_ASPECT_RATIO, near_ratio
from imagegate.core.jobs import JobSpec


def output_ratio(spec: JobSpec, model: ModelSpec) -> str:
    """The aspect ratio of ``spec``'s images: the one asked; else, for an edit, the one of the model's nearest the
    edited image (the request's first, or the conversation's latest, as Gemini keeps an edit's shape); else 1:1
    (or the model's first ratio, for a model without 1:1)."""
    if spec.aspect_ratio is not None:
        return spec.aspect_ratio
    tier = model.resolution(spec.image_size) or model.default_tier
    ratios = tier.ratios or model.aspect_ratios
    fallback = DEFAULT_ASPECT_RATIO if DEFAULT_ASPECT_RATIO in ratios or not ratios else ratios[0]
    edited = spec.input_images[:1] or spec.context_images[-1:]
    if not edited:
        return fallback
    size = displayed_dimensions(edited[0].data, edited[0].mime_type)  # a portrait photo stored sideways too
    if size is None:  # a header that cannot be read: as for no image (the input checks refuse most of these)
        return fallback
    return near_ratio(size[0], size[1], ratios, tolerance=math.inf) or fallback


def output_size(spec: JobSpec, model: ModelSpec) -> tuple[int, int] | None:
    """Width and height of ``spec``'s images in the model's table; None when the table has no such size (a
    resolution or ratio the model lacks: the capability check refuses those)."""
    return model.pixel_size(output_ratio(spec, model), spec.image_size)
