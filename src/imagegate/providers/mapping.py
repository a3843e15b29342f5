"""How the Nano Banana family's options map onto upstreams that do not speak Gemini (fal, Replicate, OpenAI-style
gateways): their spelling of a resolution, of Search grounding and of a thinking level, and a clear refusal
(``InvalidRequest`` naming the caller's field) for what an upstream has no parameter for, never a silent drop.
"""

from __future__ import annotations

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import JobSpec
from imagegate.errors import InvalidRequest

#: fal's spelling of each resolution (its ``resolution`` enum: 0.5K, 1K, 2K, 4K).
FAL_RESOLUTIONS = {"512": "0.5K", "1K": "1K", "2K": "2K", "4K": "4K"}
#: Replicate's google/nano-banana-pro and google/nano-banana-2 take 1K, 2K, 4K (no 512).
REPLICATE_RESOLUTIONS = ("1K", "2K", "4K")
SIZE_FIELD = "image_size"
THOUGHTS_FIELD = "generation_config.thinking_config.include_thoughts"
LEVEL_FIELD = "generation_config.thinking_config.thinking_level"
SEARCH_FIELD = "tools.googleSearch"


def refuse_thoughts(spec: JobSpec, upstream: str) -> None:
    """These upstreams answer with images (and a description), never with the model's thought parts."""
    if spec.include_thoughts:
        raise InvalidRequest(
            f"{upstream} does not return the model's thoughts; leave includeThoughts out, or use a deployment "
            "that calls Google (gemini, vertex).",
            field=THOUGHTS_FIELD,
        )


def thinking_level(spec: JobSpec, upstream: str, levels: tuple[str, ...]) -> str | None:
    """The job's thinking level in ``upstream``'s lower-case spelling, when it is one of ``levels``."""
    if spec.thinking_level is None:
        return None
    level = spec.thinking_level.lower()
    if level not in levels:
        takes = f"takes {', '.join(levels)}" if levels else "has no thinking level"
        raise InvalidRequest(f"{upstream} {takes}; thinking_level {level!r} cannot be sent.", field=LEVEL_FIELD)
    return level


def search(spec: JobSpec, upstream: str, *, image_search: bool) -> tuple[bool, bool]:
    """(web, images) Search grounding for ``spec``; image search refused where the upstream has none."""
    grounding = spec.grounding
    if grounding is None:
        return False, False
    if grounding.time_range is not None:
        raise InvalidRequest(
            f"{upstream} has no time range for Search grounding.", field=f"{SEARCH_FIELD}.time_range_filter"
        )
    if grounding.images and not image_search:
        raise InvalidRequest(
            f"{upstream} grounds in web search only; image search cannot be sent.",
            field=f"{SEARCH_FIELD}.search_types",
        )
    return grounding.web, grounding.images


def replicate_resolution(spec: JobSpec, model: ModelSpec) -> str | None:
    """The ``resolution`` input for Replicate, always given for a model that has several: Replicate's own
    defaults differ from Google's (google/nano-banana-pro makes 2K unless told), and the hold quoted the model's."""
    if len(model.resolution_names) < 2:
        return None  # google/nano-banana has no resolution input
    resolution = spec.image_size or model.default_resolution
    if resolution not in REPLICATE_RESOLUTIONS:
        raise InvalidRequest(
            f"Replicate makes {model.id} at {', '.join(REPLICATE_RESOLUTIONS)} only; {resolution} cannot be asked.",
            field=SIZE_FIELD,
        )
    return resolution
