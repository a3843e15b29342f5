"""How the Nano Banana family's options map onto upstreams that do not speak Gemini (fal, Replicate, OpenAI-style
gateways): their spelling of a resolution, of Search grounding and of a thinking level. What an upstream has no
parameter for is declared in its provider's ``capabilities`` and refused by the router before any call
(``core.checks``), so nothing here refuses and nothing is silently dropped.
"""

from __future__ import annotations

from imagegate.core.capabilities import ModelSpec
from imagegate.core.jobs import JobSpec

#: fal's spelling of each resolution (its ``resolution`` enum: 0.5K, 1K, 2K, 4K).
FAL_RESOLUTIONS = {"512": "0.5K", "1K": "1K", "2K": "2K", "4K": "4K"}
#: Replicate's google/nano-banana-pro and google/nano-banana-2 take 1K, 2K, 4K (no 512).
REPLICATE_RESOLUTIONS = frozenset({"1K", "2K", "4K"})
SIZE_FIELD = "image_size"


def thinking_level(spec: JobSpec) -> str | None:
    """The job's thinking level in the lower-case spelling fal uses."""
    return spec.thinking_level.lower() if spec.thinking_level is not None else None


def search(spec: JobSpec) -> tuple[bool, bool]:
    """(web, images) Search grounding for ``spec``."""
    grounding = spec.grounding
    if grounding is None:
        return False, False
    return grounding.web, grounding.images


def replicate_resolution(spec: JobSpec, model: ModelSpec) -> str | None:
    """The ``resolution`` input for Replicate, always given for a model that has several: Replicate's own
    defaults differ from Google's (google/nano-banana-pro makes 2K unless told), and the hold quoted the model's."""
    if len(model.resolution_names) < 2:
        return None  # google/nano-banana has no resolution input
    return spec.image_size or model.default_resolution  # one of REPLICATE_RESOLUTIONS: its capabilities say so
